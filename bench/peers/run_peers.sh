#!/usr/bin/env bash
# Ember beside its peers on the fixed workload (bench/workloads), one run,
# one table: Ember (build/ember bench) in fp32, bf16 and int8; ONNX Runtime
# fp32 and int8 (dynamic quantization); sentence-transformers on PyTorch.
#
#   bench/peers/run_peers.sh [MODELS] [REGIMES] [ENGINES]
#     MODELS   letters of bench/make_model presets (default AB): A, B, X (XLM-R-base
#              shapes), M (MPNet-base shapes), Q (Qwen3-Embedding-0.6B shapes, BF16
#              weights as that checkpoint ships: use ENGINES ember,ember-bf16,st,st-bf16)
#     REGIMES  short,code,long (default all)
#     ENGINES  comma list of ember,ember-bf16,ember-int8,ort,ort-int8,st,st-bf16
#              (default all but st-bf16; st-bf16: sentence-transformers in bf16)
#   env WORK=/tmp/ember-peers (models, ONNX files), REPS=3, THREADS=2, CHECK_SEQS=8 (ember's check),
#       SUBSET=N (the first N sequences of each regime only: for the 0.6B model),
#       EMBER_BIN=build/ember, VENV=bench/peers/.venv (onnxruntime from PyPI, made on first use),
#       REFPY=/tmp/refvenv/bin/python (torch + sentence-transformers, read-only:
#       exports the ONNX files and runs the sentence-transformers peer).
#
# Models A and B are bench/make_model's random-weight directories (the
# sentence-transformers layout); the ONNX files are their exports with the
# pooling inside. Every engine pads nothing it need not: the peers pad each
# batch of 32 to its longest, as sentence-transformers does; Ember packs.
# Engines run one after another per regime (interleaved), each in its own
# process, so background load hits them alike; the table gives real tokens/s
# (best of REPS passes) and each process's peak RSS.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here=$root/bench/peers
WORK=${WORK:-/tmp/ember-peers}; REPS=${REPS:-3}; THREADS=${THREADS:-2}
VENV=${VENV:-$here/.venv}; REFPY=${REFPY:-/tmp/refvenv/bin/python}
models=${1:-AB}; regimes=${2:-short,code,long}; engines=${3:-ember,ember-bf16,ember-int8,ort,ort-int8,st}
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
export THREADS
mkdir -p "$WORK"
[ -x "$root/build/ember" ] && [ -x "$root/build/bench/make_model" ] || {
  echo "build Ember first (cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build)" >&2; exit 1; }
if [[ $engines == *ort* ]] && ! "$VENV/bin/python" -c 'import onnxruntime' 2>/dev/null; then
  python3 -m venv "$VENV" && "$VENV/bin/pip" install -q onnxruntime numpy onnx >&2
fi
for m in $(echo "$models" | grep -o .); do
  d=$WORK/model-$m
  # with the tokenizer files of the model whose shapes it has (sentence-transformers wants one)
  tok=$root/tests/fixtures/tokenizer/BAAI--bge-small-en-v1.5
  [ "$m" = B ] && tok=$root/tests/fixtures/tokenizer/answerdotai--ModernBERT-base
  [ "$m" = X ] && tok=$root/tests/fixtures/tokenizer/spm-xlmr-nmt
  [ "$m" = M ] && tok=$root/tests/fixtures/tokenizer/google-bert--bert-base-uncased
  [ "$m" = Q ] && tok=$root/tests/fixtures/tokenizer/qwen3-bpe
  [ -f "$d/tokenizer.json" ] || "$root/build/bench/make_model" "$m" "$d" "$tok" >/dev/null
  if [[ $engines == *ort* ]]; then
    # torch.onnx needs the onnx package, which the read-only reference venv lacks:
    # a copy of it (no dependencies) beside the models, on PYTHONPATH for the export only
    [ -d "$WORK/onnx-pkgs/onnx" ] || "$VENV/bin/pip" install -q --no-deps --target "$WORK/onnx-pkgs" \
      "onnx==$("$VENV/bin/python" -c 'import onnx; print(onnx.__version__)')" ml_dtypes >&2
    [ -f "$WORK/model$m.onnx" ] || PYTHONPATH=$WORK/onnx-pkgs "$REFPY" "$here/export_onnx.py" "$d" "$WORK/model$m.onnx" >&2
    [ -f "$WORK/model$m-int8.onnx" ] ||
      "$VENV/bin/python" "$here/quantize_onnx.py" "$WORK/model$m.onnx" "$WORK/model$m-int8.onnx" >&2
  fi
done
rows=()
for m in $(echo "$models" | grep -o .); do
  for r in ${regimes//,/ }; do
    inp=$root/bench/workloads/$r.txt; w=$r
    if [ -n "${SUBSET:-}" ]; then
      w=$WORK/$r-first$SUBSET.txt; head -n "$SUBSET" "$inp" >"$w"; inp=$w
    fi
    for e in ${engines//,/ }; do
      case $e in
        ember|ember-bf16|ember-int8)
          # plain "ember": the library's default (auto: fp32 arithmetic, a BF16 checkpoint kept BF16)
          dt=f32; arg=auto; [ "$e" = ember-bf16 ] && dt=bf16; [ "$e" = ember-int8 ] && dt=int8
          [ "$e" != ember ] && arg=$dt
          line=$("${EMBER_BIN:-$root/build/ember}" bench -m "$WORK/model-$m" -w "$w" --dtype "$arg" --threads "$THREADS" \
                   --reps "$REPS" --check-seqs "${CHECK_SEQS:-8}" --json | tail -1)
          tps=$(echo "$line" | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["tokens_per_s"], j["peak_rss_mb"])')
          rows+=("$m $r ember $dt $tps") ;;
        ort|ort-int8)
          f=$WORK/model$m.onnx; dt=f32; [ "$e" = ort-int8 ] && { f=$WORK/model$m-int8.onnx; dt=int8; }
          line=$("$VENV/bin/python" "$here/bench_peer.py" ort "$f" "$inp" "$REPS")
          tps=$(echo "$line" | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["tokens"]/j["min"], j["peak_rss_mb"])')
          rows+=("$m $r onnxruntime $dt $tps") ;;
        st|st-bf16)
          dt=f32; sdt=float32; [ "$e" = st-bf16 ] && { dt=bf16; sdt=bfloat16; }
          line=$(ST_DTYPE=$sdt "$REFPY" "$here/bench_peer.py" st "$WORK/model-$m" "$inp" "$REPS")
          tps=$(echo "$line" | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["tokens"]/j["min"], j["peak_rss_mb"])')
          rows+=("$m $r sentence-transformers $dt $tps") ;;
        *) echo "unknown engine $e" >&2; exit 2 ;;
      esac
      echo "$m $r $e: $line" >&2
    done
  done
done
ortv=$("$VENV/bin/python" -c 'import onnxruntime as o; print(o.__version__)' 2>/dev/null || echo -)
stv=$("$REFPY" -c 'import sentence_transformers as s, torch as t; print(s.__version__, "/ torch", t.__version__)' 2>/dev/null || echo -)
echo "## $(date -u +%Y-%m-%d): $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) vCPUs, $THREADS threads"
echo "flags: $(grep -m1 flags /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|fma|avx512(f|bw|vl|dq|_bf16|_vnni|_fp16)|amx_(bf16|int8|tile))$' | tr '\n' ' ')"
echo "onnxruntime $ortv; sentence-transformers $stv; REPS=$REPS (best pass)${SUBSET:+; first $SUBSET sequences of each regime}"
echo "load average (1/5/15 min) before: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
printf '| model | regime | engine | dtype | tokens/s | vs best fp32 peer | vs best peer, same dtype | peak RSS MB |\n|---|---|---|---|---|---|---|---|\n'
printf '%s\n' "${rows[@]}" | python3 -c '
import sys
rows = [l.split() for l in sys.stdin if l.strip()]
best = {}
for m, r, e, d, t, rss in rows:
    if e != "ember":
        best[(m, r, d)] = max(best.get((m, r, d), 0.0), float(t))
for m, r, e, d, t, rss in rows:
    b, s = best.get((m, r, "f32")), best.get((m, r, d))
    ratio = f"{float(t) / b:.2f}x" if b else "-"
    same = f"{float(t) / s:.2f}x" if s else "-"
    print(f"| {m} | {r} | {e} | {d} | {float(t):,.0f} | {ratio} | {same} | {float(rss):,.0f} |")
'
