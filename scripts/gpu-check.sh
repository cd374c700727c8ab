#!/usr/bin/env bash
# scripts/gpu-check.sh — the CUDA driver on an NVIDIA machine without
# network, from a copy of the working tree. Budget: < 6 minutes.
#
#   1. builds for the present GPU only (CMAKE_CUDA_ARCHITECTURES=native) in
#      build-gpu/ (no tests of other labels are run)
#   2. test_cuda_smoke on every golden case (f32/TF32 and bf16 against the
#      Hugging Face references), the f32 goldens with EMBER_DRIVER=cuda and
#      EMBER_CUDA_TF32=0 (full fp32 products: the strict 1e-4 bound), and the
#      bf16 goldens (test_golden CASE bf16) through the cuda driver
#   3. `ember bench` through the cuda driver (EMBER_DRIVER=cuda: the library
#      reads it when the caller leaves the driver to "auto") on models A and
#      B (bench/make_model) over the short, code and long workloads, in bf16
#      and f32 (TF32); the latency of one 16-token sequence (batch 1); the
#      peak GPU memory seen by nvidia-smi while the benches ran
#
# Exit status: non-zero when a build step or a check failed.
#   env: JOBS (default: all CPUs), WORK (default build-gpu/work), REPS (2)
set -uo pipefail
cd "$(dirname "$0")/.."
T0=$(date +%s)
JOBS=${JOBS:-$(nproc)}
B=build-gpu
WORK=${WORK:-$B/work}
REPS=${REPS:-2}
fail=0
step() { printf '\n=== %s (%ds)\n' "$*" $(( $(date +%s) - T0 )); }

step "GPU"
nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv,noheader || {
  echo "gpu-check: nvidia-smi failed: no usable NVIDIA GPU"; exit 1; }

step "build (native architecture, $JOBS jobs)"
cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=Release -DEMBER_TESTS=ON -DEMBER_CUDA=ON \
      -DCMAKE_CUDA_ARCHITECTURES=native >"$B.configure.log" 2>&1 || {
  tail -30 "$B.configure.log"; exit 1; }
cmake --build "$B" -j"$JOBS" --target ember_cli test_cuda_smoke test_golden make_model \
      >"$B.build.log" 2>&1 || { grep -E "error|Error" "$B.build.log" | head -30; exit 1; }

G=tests/fixtures/goldens
step "test_cuda_smoke: every golden case, f32 (TF32) and bf16"
cases=$(ls -d $G/*/ | grep -v e2e- | sed 's#/$##')
timeout 120 "$B/tests/test_cuda_smoke" $cases || { echo "FAILED: test_cuda_smoke"; fail=1; }

step "goldens through the cuda driver: f32 with full-fp32 products (strict bounds)"
for c in $cases; do
  case $c in *bf16*|*f16*) continue ;; esac
  EMBER_DRIVER=cuda EMBER_CUDA_TF32=0 timeout 60 "$B/tests/test_golden" "$c" f32 >/dev/null 2>"$B.golden.err" \
    && echo "ok   $c" || { echo "FAIL $c: $(tail -3 "$B.golden.err")"; fail=1; }
done
step "goldens through the cuda driver: bf16"
for c in $cases; do
  EMBER_DRIVER=cuda timeout 60 "$B/tests/test_golden" "$c" bf16 >/dev/null 2>"$B.golden.err" \
    && echo "ok   $c" || { echo "FAIL $c: $(tail -3 "$B.golden.err")"; fail=1; }
done

step "bench models A and B"
mkdir -p "$WORK"
for m in A B; do
  [ -f "$WORK/model-$m/model.safetensors" ] || "$B/bench/make_model" "$m" "$WORK/model-$m" >/dev/null || fail=1
done
# one 16-token sequence: [CLS] 14 words [SEP]
echo "101 2023 2003 1037 2460 6251 2005 1996 11891 1997 2028 5537 1999 1037 2309 102" >"$WORK/one16.txt"
# peak GPU memory while the benches run
nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 >"$WORK/mem.log" 2>/dev/null &
SMI=$!
for m in A B; do
  for dt in bf16 f32; do
    step "bench model $m, $dt"
    EMBER_DRIVER=cuda timeout 90 ./"$B"/ember bench -m "$WORK/model-$m" -w short -w code -w long \
      --dtype "$dt" --reps "$REPS" --check-seqs 4 -b 32 || { echo "FAILED: bench $m $dt"; fail=1; }
    EMBER_DRIVER=cuda timeout 30 ./"$B"/ember bench -m "$WORK/model-$m" -w "$WORK/one16.txt" \
      --dtype "$dt" --reps 20 --check-seqs 1 -b 1 --json \
      | sed 's/^/latency of one 16-token sequence: /' || fail=1
  done
done
kill "$SMI" 2>/dev/null; wait "$SMI" 2>/dev/null
base=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1)
peak=$(sort -n "$WORK/mem.log" | tail -1)
echo "peak GPU memory used during the benches: ${peak:-?} MiB (idle now: ${base:-?} MiB)"

step "done: $([ $fail = 0 ] && echo all checks passed || echo SOME CHECKS FAILED)"
exit $fail
