#!/usr/bin/env bash
# Ember on the fixed workload (bench/workloads, see its README.md): builds
# random-weight models of the two benchmark shapes (A: bge-small-en-v1.5,
# B: modernbert-embed-base) if needed, then runs `ember bench` on each regime
# and prints a table of real tokens/s. Compare with peers measured on the
# same machine, in the same session.
#
#   bench/run_ember.sh [MODELS] [REGIMES] [DTYPE]     e.g. bench/run_ember.sh AB short,code,long f32
#   env WORK=/tmp/ember-bench (models), REPS=3, THREADS=2
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${WORK:-/tmp/ember-bench}
models=${1:-AB}; regimes=${2:-short,code,long}; dtype=${3:-f32}
reps=${REPS:-3}; threads=${THREADS:-2}
[ -x build/ember ] || ./scripts/build.sh
mkdir -p "$WORK"
for m in $(echo "$models" | grep -o .); do
  [ -f "$WORK/model-$m/model.safetensors" ] || ./build/bench/make_model "$m" "$WORK/model-$m" >/dev/null
done
results=()
for m in $(echo "$models" | grep -o .); do
  args=()
  for r in ${regimes//,/ }; do args+=(-w "$r"); done
  while read -r line; do
    echo "$line"
    results+=("$m $line")
  done < <(./build/ember bench -m "$WORK/model-$m" "${args[@]}" --dtype "$dtype" --threads "$threads" \
             --reps "$reps" --json)
done
echo
printf '| model | regime | dtype | tokens/s | seq/s | GFLOP/s | MFU | peak RSS MB | check (min cosine) |\n'
printf '|---|---|---|---|---|---|---|---|---|\n'
for row in "${results[@]}"; do
  m=${row%% *}; j=${row#* }
  echo "$j" | python3 -c "
import json, sys
j = json.loads(sys.stdin.read())
print(f\"| $m | {j['workload']} | {j['dtype']} | {j['tokens_per_s']:,.0f} | {j['sequences_per_s']:,.1f} | {j['gflops']:.1f} | {100*j['mfu']:.0f}% | {j['peak_rss_mb']:,.0f} | {j['check_cosine_min']:.6f} |\")"
done
