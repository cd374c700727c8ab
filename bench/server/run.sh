#!/usr/bin/env bash
# Load test of `ember serve` on model A (bge-small-en-v1.5 shapes, random
# weights, the real tokenizer): requests/s and p50/p90/p99 latency for
# single-sentence requests (1 and 32 concurrent clients) and 32-sentence
# batches (8 concurrent clients), OpenAI route, keep-alive connections; then
# the server's peak RSS (VmHWM). Bounded: DURATION seconds per scenario
# (default 10) after a 2 s warm-up.
#
#   bench/server/run.sh                 # uses build/, model in /tmp/ember-model-a
#   BUILD=build DURATION=5 SERVER_ARGS="--workers 2 --threads 1" bench/server/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
MODEL=${MODEL:-/tmp/ember-model-a}
DURATION=${DURATION:-10}
SERVER_ARGS=${SERVER_ARGS:-}
EMBER="$BUILD/ember"
[ -x "$EMBER" ] || { echo "run.sh: build first ($EMBER missing)" >&2; exit 1; }
if [ ! -f "$MODEL/model.safetensors" ]; then
  "$BUILD/bench/make_model" A "$MODEL" tests/fixtures/goldens/e2e-bert >/dev/null
fi
TMP=$(mktemp -d)
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT
${CC:-cc} -O2 -pthread bench/server/loadgen.c -o "$TMP/loadgen"

# shellcheck disable=SC2086 # SERVER_ARGS is a list of options
"$EMBER" serve -m "$MODEL" --port 0 --quiet --max-concurrent 1024 $SERVER_ARGS 2>"$TMP/server.log" &
SERVER_PID=$!
for _ in $(seq 1 600); do
  grep -q "listening on" "$TMP/server.log" && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$TMP/server.log" >&2; exit 1; }
  sleep 0.05
done
PORT=$(grep -o 'listening on http://[^ ]*' "$TMP/server.log" | sed 's/.*://')
echo "server: $(head -1 "$TMP/server.log" | sed 's/^ember serve: //')"
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"

run() { "$TMP/loadgen" --port "$PORT" --duration "$DURATION" --warmup 2 "$@"; }
run --concurrency 1 --batch 1
run --concurrency 32 --batch 1
run --concurrency 8 --batch 32
echo "{\"peak_rss_mb\":$(awk '/VmHWM/ {printf "%.1f", $2/1024}' /proc/$SERVER_PID/status)}"
kill -TERM "$SERVER_PID"
wait "$SERVER_PID"
SERVER_PID=
