#!/usr/bin/env bash
# scripts/gpu-check.sh — the CUDA driver on an NVIDIA machine without
# network, from a copy of the working tree. Budget: < 6 minutes.
#
#   1. builds for the present GPU only (CMAKE_CUDA_ARCHITECTURES=native) in
#      build-gpu/ (no tests of other labels are run); or, with
#      `--prebuilt BUNDLE.tar.xz` (made by scripts/gpu-bundle.sh on a machine
#      with the CUDA toolkit), unpacks binaries and libraries built elsewhere:
#      for GPU machines that lack Ember's build dependencies
#   2. the driver conformance test (every op on cuda against cpu-ref), then
#      test_cuda_smoke on every golden case (f32/TF32 and bf16 against the
#      Hugging Face references), the f32 goldens with EMBER_DRIVER=cuda and
#      EMBER_CUDA_TF32=0 (full fp32 products: the strict 1e-4 bound), and the
#      bf16 goldens (test_golden CASE bf16) through the cuda driver
#   3. `ember bench` through the cuda driver (EMBER_DRIVER=cuda: the library
#      reads it when the caller leaves the driver to "auto") on models A and
#      B (bench/make_model) over the short, code and long workloads, in bf16
#      and f32 (TF32); the latency of one 16-token sequence (batch 1); the
#      peak GPU memory seen by nvidia-smi while the benches ran; text in,
#      vectors out (`ember embed`, model A with bge-small's tokenizer) with
#      and without tokenizing ahead
#   4. the kernels awaiting their first GPU run (EMBER_CUDA_ATTENTION=mma:
#      registers-only attention; EMBER_CUDA_VEC_ROWS=1: LayerNorm, linear
#      epilogue and GLU in 16-byte vectors): conformance and smoke (every
#      golden case) through them, then timed against the defaults, with
#      cuBLASLt's candidates timed at first use (EMBER_CUDA_LT_TUNE=1) and
#      BERT's exact GELU as cuBLASLt's fused tanh epilogue in bf16
#      (EMBER_CUDA_FUSED_GELU=1): each alone and all together, a summary
#      table of tokens/s and ratios, and what each product's timing found
#   5. `ember serve --device cuda` for 45 s under valid, hostile and slow
#      clients (answers checked, RSS and GPU memory watched), and a context
#      whose arena is capped (EMBER_CUDA_ARENA_LIMIT_MB) halving its passes
#
# Exit status: non-zero when a build step or a check failed.
#   env: JOBS (default: all CPUs), WORK (default build-gpu/work), REPS (3),
#        GPU_BATCH (sequences per pass, 512), GPU_TOKENS (tokens per pass, 65536),
#        GPU_CHECK_DEVICE (cuda; cpu = a dry run of the script without a GPU),
#        GPU_CHECK_TIMEOUT_SCALE (1), TEXT_LINES (40000)
set -uo pipefail
cd "$(dirname "$0")/.."
T0=$(date +%s)
JOBS=${JOBS:-$(nproc)}
B=build-gpu
WORK=${WORK:-$B/work}
REPS=${REPS:-3}
# GPU-sized passes: every workload is one or two passes
GPU_BATCH=${GPU_BATCH:-512}
GPU_TOKENS=${GPU_TOKENS:-65536}
# GPU_CHECK_DEVICE=cpu: a dry run of the script's plumbing on a machine
# without a GPU (slow; GPU_CHECK_TIMEOUT_SCALE multiplies every timeout)
DEV=${GPU_CHECK_DEVICE:-cuda}
TS=${GPU_CHECK_TIMEOUT_SCALE:-1}
fail=0
step() { printf '\n=== %s (%ds)\n' "$*" $(( $(date +%s) - T0 )); }

step "GPU"
if [ "$DEV" = cuda ]; then
  nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv,noheader || {
    echo "gpu-check: nvidia-smi failed: no usable NVIDIA GPU"; exit 1; }
else
  echo "dry run on $DEV (GPU_CHECK_DEVICE): every command of the script, no GPU; the steps that"
  echo "need one (test_cuda_smoke, the capped arena) fail, the rest checks the script itself"
fi

if [ "${1:-}" = "--prebuilt" ]; then
  step "unpack prebuilt bundle ${2:?--prebuilt needs the bundle file}"
  rm -rf "$B" && mkdir -p "$B/tests" "$B/bench" && tar -C "$B" -xJf "$2" || exit 1
  for t in test_cuda_smoke test_golden test_driver_conformance test_e2e; do mv "$B/bin/$t" "$B/tests/"; done
  mv "$B/bin/make_model" "$B/bench/" && mv "$B/bin/ember" "$B/"
  # cuBLASLt (dlopened by the CUDA driver on first use of the GPU, under the
  # soname of the build's CUDA major version): packed in lib/
  # (BUNDLE_CUBLASLT=1), else this machine's, the toolkit's or a Python
  # wheel's copy; its directory goes on LD_LIBRARY_PATH, where dlopen looks
  soname=$(grep -ao 'libcublasLt\.so\.[0-9][0-9]*' "$B/lib/libember.so.0" | sort -u | head -n1)
  if [ -n "$soname" ] && [ -f "$B/lib/$soname" ]; then
    cublas=$PWD/$B/lib/$soname
  else
    cublas=$(find /usr/local/cuda*/lib* /usr/local/cuda*/targets /usr/lib /opt /usr/local/lib \
               -name "${soname:-libcublasLt.so.1[0-9]*}" 2>/dev/null | head -1)
  fi
  [ -n "$cublas" ] || { echo "gpu-check: no ${soname:-libcublasLt} on this machine"; exit 1; }
  echo "cuBLASLt: $cublas"
  export LD_LIBRARY_PATH="$PWD/$B/lib:$(dirname "$cublas")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
else
  step "build (native architecture, $JOBS jobs)"
  cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=Release -DEMBER_TESTS=ON -DEMBER_CUDA=ON \
        -DCMAKE_CUDA_ARCHITECTURES=native >"$B.configure.log" 2>&1 || {
    tail -30 "$B.configure.log"; exit 1; }
  cmake --build "$B" -j"$JOBS" --target ember_cli test_cuda_smoke test_golden \
        test_driver_conformance test_e2e make_model \
        >"$B.build.log" 2>&1 || { grep -E "error|Error" "$B.build.log" | head -30; exit 1; }
fi

step "driver conformance: every op on cuda against cpu-ref (full fp32 products)"
EMBER_CUDA_TF32=0 timeout $((120 * TS)) "$B/tests/test_driver_conformance" >"$B.conformance.log" 2>&1 \
  || { echo "FAILED: conformance"; fail=1; }
grep -v "^FAIL" "$B.conformance.log" | grep -E "^(cuda|test_driver)" ; grep "^FAIL" "$B.conformance.log" | head -60

G=tests/fixtures/goldens
step "test_cuda_smoke: every golden case, f32 (TF32) and bf16"
cases=$(ls -d $G/*/ | grep -v -e e2e- -e rerank- -e realshape- | sed 's#/$##')
timeout $((120 * TS)) "$B/tests/test_cuda_smoke" $cases || { echo "FAILED: test_cuda_smoke"; fail=1; }

step "goldens through the cuda driver: f32 with full-fp32 products (strict bounds)"
for c in $cases; do
  case $c in *bf16*|*f16*) continue ;; esac
  EMBER_DRIVER=$DEV EMBER_CUDA_TF32=0 timeout $((60 * TS)) "$B/tests/test_golden" "$c" f32 >/dev/null 2>"$B.golden.err" \
    && echo "ok   $c" || { echo "FAIL $c: $(tail -3 "$B.golden.err")"; fail=1; }
done
step "goldens through the cuda driver: bf16"
for c in $cases; do
  EMBER_DRIVER=$DEV timeout $((60 * TS)) "$B/tests/test_golden" "$c" bf16 >/dev/null 2>"$B.golden.err" \
    && echo "ok   $c" || { echo "FAIL $c: $(tail -3 "$B.golden.err")"; fail=1; }
done

step "text in, vectors out through the cuda driver (tokenized ahead in blocks, f32 strict bounds)"
for c in e2e-bert e2e-modernbert e2e-mistral; do
  EMBER_DRIVER=$DEV EMBER_CUDA_TF32=0 timeout $((60 * TS)) "$B/tests/test_e2e" "$G/$c" f32 >"$B.e2e.log" 2>&1 \
    && echo "ok   $c: $(grep -c . "$B.e2e.log") lines, $(grep 'tokenize ahead 1' "$B.e2e.log")" \
    || { echo "FAIL $c: $(grep FAIL "$B.e2e.log" | head -3)"; fail=1; }
done

step "real-shape goldens through the cuda driver (Qwen3-0.6B / EmbeddingGemma-300m shapes; f32 strict, bf16)"
mkdir -p "$WORK"
for c in q2 g2 g2-bf16weights q g; do
  # the model is not stored: make_model writes it, its hash must be the golden's
  d=$WORK/realshape-$c; gold=$G/realshape-$c
  preset=$(grep -o '"preset": "[A-Z0-9]*"' "$gold/meta.json" | cut -d'"' -f4)
  dtype=$(grep -o '"dtype": "[A-Z0-9]*"' "$gold/meta.json" | head -1 | cut -d'"' -f4)
  want=$(grep -o '"model.safetensors": "[0-9a-f]*"' "$gold/meta.json" | cut -d'"' -f4)
  rm -rf "$d"; mkdir -p "$d"
  "$B/bench/make_model" "$preset" "$d" --dtype "$dtype" >/dev/null || { echo "FAIL $c: make_model"; fail=1; continue; }
  [ "$(sha256sum "$d/model.safetensors" | cut -d' ' -f1)" = "$want" ] || { echo "FAIL $c: make_model's bytes differ from the golden's"; fail=1; continue; }
  EMBER_DRIVER=$DEV EMBER_CUDA_TF32=0 timeout $((120 * TS)) "$B/tests/test_golden" "$gold" f32 --model "$d" --quick >/dev/null \
    2>"$B.golden.err" && echo "ok   $c f32" || { echo "FAIL $c f32: $(tail -3 "$B.golden.err")"; fail=1; }
  EMBER_DRIVER=$DEV timeout $((120 * TS)) "$B/tests/test_golden" "$gold" bf16 --model "$d" --quick >/dev/null \
    2>"$B.golden.err" && echo "ok   $c bf16" || { echo "FAIL $c bf16: $(tail -3 "$B.golden.err")"; fail=1; }
  rm -rf "$d"
done

step "bench models A and B"
mkdir -p "$WORK"
for m in A B; do
  [ -f "$WORK/model-$m/model.safetensors" ] || "$B/bench/make_model" "$m" "$WORK/model-$m" >/dev/null || fail=1
done
"$B/ember" info -m "$WORK/model-A" --device "$DEV" 2>&1 | head -30 || true
# one 16-token sequence: [CLS] 14 words [SEP]
echo "101 2023 2003 1037 2460 6251 2005 1996 11891 1997 2028 5537 1999 1037 2309 102" >"$WORK/one16.txt"
# peak GPU memory while the benches run
SMI=
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 >"$WORK/mem.log" 2>/dev/null &
  SMI=$!
fi
for m in A B; do
  for dt in bf16 f32; do
    step "bench model $m, $dt"
    EMBER_DRIVER=$DEV timeout $((90 * TS)) ./"$B"/ember bench -m "$WORK/model-$m" -w short -w code -w long \
      --dtype "$dt" --reps "$REPS" --check-seqs 4 -b "$GPU_BATCH" --max-batch-tokens "$GPU_TOKENS" || { echo "FAILED: bench $m $dt"; fail=1; }
    EMBER_DRIVER=$DEV timeout $((30 * TS)) ./"$B"/ember bench -m "$WORK/model-$m" -w "$WORK/one16.txt" \
      --dtype "$dt" --reps 20 --check-seqs 1 -b 1 --json \
      | sed 's/^/latency of one 16-token sequence: /' || fail=1
  done
done
step "text in, vectors out: ember embed on model A with bge-small's tokenizer, bf16, next block tokenized ahead (default on a GPU) and not"
# tokenizing runs on the host; tokenized ahead, it overlaps the GPU's passes
[ -f "$WORK/model-At/model.safetensors" ] || "$B/bench/make_model" A "$WORK/model-At" \
  tests/fixtures/tokenizer/BAAI--bge-small-en-v1.5 >/dev/null || fail=1
# ${TEXT_LINES:-40000} lines of 8-120 words (about 3M tokens), the same every run
awk -v lines="${TEXT_LINES:-40000}" 'BEGIN { srand(11); nw = split("the of and to in is that for it as with was on be by this are from or at an which have not but all can more one their has will its also new been other some time when only into two may most these such first than then used them well made many like world between both under over each through where after people system data model function return value error file code", w, " ");
  for (l = 0; l < lines; l++) { n = 8 + int(rand() * 113); s = w[1 + int(rand() * nw)]; for (i = 1; i < n; i++) s = s " " w[1 + int(rand() * nw)]; print s } }' >"$WORK/texts.txt"
echo "one" >"$WORK/one.txt"
now() { date +%s.%N; }
for ahead in 1 0 1 0; do
  t0=$(now)
  EMBER_DRIVER=$DEV timeout $((60 * TS)) ./"$B"/ember embed -m "$WORK/model-At" -i "$WORK/one.txt" --dtype bf16 \
    --output-format npy -o "$WORK/one.npy" || fail=1
  t1=$(now)
  EMBER_DRIVER=$DEV EMBER_TOKENIZE_AHEAD=$ahead timeout $((120 * TS)) ./"$B"/ember embed -m "$WORK/model-At" \
    -i "$WORK/texts.txt" --dtype bf16 --output-format npy -o "$WORK/texts.npy" -v 2>"$WORK/embed.err" || { cat "$WORK/embed.err"; fail=1; }
  t2=$(now)
  tokens=$(grep -o '[0-9]* tokens' "$WORK/embed.err" | cut -d' ' -f1)
  awk -v a="$ahead" -v t0="$t0" -v t1="$t1" -v t2="$t2" -v n="${tokens:-0}" 'BEGIN {
    run = (t2 - t1) - (t1 - t0); printf "tokenize ahead %s: %d tokens in %.2f s (%.2f s whole run less %.2f s to load and embed one text): %.0f tokens/s\n", a, n, run, t2 - t1, t1 - t0, (run > 0 ? n / run : 0) }'
done

step "A/B: model A, code, bf16, with the SIMT attention kernel instead of the tensor-core one"
EMBER_DRIVER=$DEV EMBER_CUDA_ATTENTION=simt timeout $((60 * TS)) ./"$B"/ember bench -m "$WORK/model-A" -w code \
  --dtype bf16 --reps "$REPS" --check-seqs 4 || { echo "FAILED: SIMT A/B"; fail=1; }

step "switches awaiting their first GPU run (EMBER_CUDA_ATTENTION=mma, EMBER_CUDA_VEC_ROWS=1, EMBER_CUDA_LT_TUNE=1, EMBER_CUDA_FUSED_GELU=1): checks, then A/B"
# correctness first: the conformance test (bf16 attention, layer_norm,
# linear epilogues, glu) and every golden case through test_cuda_smoke (f32
# and bf16 against the Hugging Face references), all four on. Should that
# fail (or hang), each switch is checked alone, and the A/B below times only
# the switches that passed: a hung kernel must not eat the device budget.
SWITCHES="mma:EMBER_CUDA_ATTENTION=mma vec:EMBER_CUDA_VEC_ROWS=1 tune:EMBER_CUDA_LT_TUNE=1 gelu:EMBER_CUDA_FUSED_GELU=1"
ALL=$(for s in $SWITCHES; do printf '%s ' "${s#*:}"; done)
declare -A switch_ok=([mma]=1 [vec]=1 [tune]=1 [gelu]=1)
all_ok=1
if env $ALL EMBER_CUDA_TF32=0 timeout $((60 * TS)) "$B/tests/test_driver_conformance" >"$B.conformance-next.log" 2>&1; then
  echo "ok   conformance (all four switches on)"
else
  echo "FAIL conformance (all four switches on; exit $?)"; grep "^FAIL" "$B.conformance-next.log" | head -20
  all_ok=0; fail=1
fi
if [ $all_ok = 1 ]; then
  if env $ALL timeout $((90 * TS)) "$B/tests/test_cuda_smoke" $cases >"$B.smoke-next.log" 2>&1; then
    echo "ok   test_cuda_smoke (all four switches on)"
  else
    echo "FAIL test_cuda_smoke (all four switches on)"; grep FAIL "$B.smoke-next.log" | head -20
    all_ok=0; fail=1
  fi
fi
if [ $all_ok = 0 ]; then
  for s in $SWITCHES; do
    name=${s%%:*}
    if env "${s#*:}" EMBER_CUDA_TF32=0 timeout $((30 * TS)) "$B/tests/test_driver_conformance" >/dev/null 2>&1 &&
       env "${s#*:}" timeout $((60 * TS)) "$B/tests/test_cuda_smoke" $cases >/dev/null 2>&1; then
      echo "     ... ${s#*:} alone passes"
    else
      echo "     ... ${s#*:} alone FAILS: left out of the A/B"; switch_ok[$name]=0
    fi
  done
  if [ "${switch_ok[mma]}" = 0 ]; then # which part of the mma kernel
    EMBER_CUDA_ATTENTION=mma EMBER_CUDA_MMA_LDSM=0 EMBER_CUDA_TF32=0 timeout $((30 * TS)) \
      "$B/tests/test_driver_conformance" >/dev/null 2>&1 \
      && echo "     ... mma passes with EMBER_CUDA_MMA_LDSM=0 (the ldmatrix loads are at fault)"
    EMBER_CUDA_ATTENTION=mma EMBER_CUDA_MMA_ASYNC=0 EMBER_CUDA_TF32=0 timeout $((30 * TS)) \
      "$B/tests/test_driver_conformance" >/dev/null 2>&1 \
      && echo "     ... mma passes with EMBER_CUDA_MMA_ASYNC=0 (the cp.async tile pipeline is at fault)"
  fi
fi
# one A/B bench: model, label, the switch it needs ("-" none, "all"), then
# the VAR=value settings of the run; its code and long tokens/s also go to
# $AB for the summary below
AB="$WORK/ab.tsv"
: >"$AB"
ab() {
  local m=$1 label=$2 need=$3 out code long
  shift 3
  if { [ "$need" = all ] && [ $all_ok = 0 ]; } || { [ "$need" != all ] && [ "$need" != - ] &&
     [ "${switch_ok[$need]}" = 0 ]; }; then
    echo "--- model $m, $label: skipped (failed its checks above)"; return
  fi
  echo "--- model $m, bf16, $label${1:+ ($*)}"
  out=$(env EMBER_DRIVER=$DEV "$@" timeout $((60 * TS)) ./"$B"/ember bench -m "$WORK/model-$m" -w code -w long \
    --dtype bf16 --reps "$REPS" --check-seqs 4 -b "$GPU_BATCH" --max-batch-tokens "$GPU_TOKENS") \
    || { echo "FAILED: bench $m $label"; fail=1; }
  echo "$out" | grep -E "tokens/s|time per op"
  code=$(echo "$out" | awk '/^code:/ { getline; print $1; exit }')
  long=$(echo "$out" | awk '/^long:/ { getline; print $1; exit }')
  printf '%s\t%s\t%s\t%s\n' "$m" "$label" "${code:-0}" "${long:-0}" >>"$AB"
}
for m in A B; do
  ab "$m" defaults -
  ab "$m" "mma attention" mma EMBER_CUDA_ATTENTION=mma
  ab "$m" "vector rows" vec EMBER_CUDA_VEC_ROWS=1
  ab "$m" "cuBLASLt tuned" tune EMBER_CUDA_LT_TUNE=1
  # B's GELU is inside its GeGLU (the glu kernel), not a linear epilogue
  [ "$m" = B ] || ab "$m" "fused GELU" gelu EMBER_CUDA_FUSED_GELU=1
  ab "$m" "all of them" all $ALL
done

step "what cuBLASLt's candidates gave per product (EMBER_CUDA_LT_TUNE=1, ember bench -v -v)"
for m in A B; do
  [ "${switch_ok[tune]}" = 1 ] || { echo "skipped (tuning failed its checks above)"; break; }
  echo "--- model $m"
  EMBER_DRIVER=$DEV EMBER_CUDA_LT_TUNE=1 timeout $((60 * TS)) ./"$B"/ember bench -v -v -m "$WORK/model-$m" -w code \
    --dtype bf16 --reps 1 --check-seqs 0 -b "$GPU_BATCH" --max-batch-tokens "$GPU_TOKENS" 2>&1 \
    | grep -E "first choice" | sed 's/^ember: debug: //' | sort -u | head -12
done

step "A/B summary: bf16 tokens/s, and the ratio to the defaults"
awk -F'\t' '
  { row[NR] = $0; if ($2 == "defaults") { bc[$1] = $3; bl[$1] = $4 } }
  END {
    printf "%-5s %-16s %12s %12s %7s %7s\n", "model", "kernels", "code", "long", "x code", "x long"
    for (i = 1; i <= NR; i++) {
      split(row[i], f, "\t")
      printf "%-5s %-16s %12d %12d %7.2f %7.2f\n", f[1], f[2], f[3], f[4],
             (bc[f[1]] > 0 ? f[3] / bc[f[1]] : 0), (bl[f[1]] > 0 ? f[4] / bl[f[1]] : 0)
    }
  }' "$AB"

step "CUDA graphs for larger passes: the short workload (one pass of 4,096 tokens in 16-token sequences) recorded up to 2,048 tokens (default: not recorded) and up to 8,192"
for m in A B; do
  for g in 2048 8192; do
    echo "--- model $m, EMBER_GRAPH_MAX_TOKENS=$g"
    EMBER_DRIVER=$DEV EMBER_GRAPH_MAX_TOKENS=$g timeout $((60 * TS)) ./"$B"/ember bench -m "$WORK/model-$m" -w short \
      --dtype bf16 --reps 5 --check-seqs 4 -b "$GPU_BATCH" --max-batch-tokens "$GPU_TOKENS" \
      | grep -E "tokens/s" || { echo "FAILED: graphs $m $g"; fail=1; }
  done
done

step "long inputs: one 8,192-token sequence on model B (bf16), one 32,768-token on model Q (Qwen3-0.6B shapes, bf16)"
awk 'BEGIN { srand(7); for (i = 0; i < 8190; i++) printf "%d ", 1000 + int(rand() * 40000); print "" }' >"$WORK/long8k.txt"
EMBER_DRIVER=$DEV timeout $((60 * TS)) ./"$B"/ember bench -m "$WORK/model-B" -w "$WORK/long8k.txt" --dtype bf16 \
  --reps 3 --check-seqs 1 -b 1 --max-batch-tokens 8192 || { echo "FAILED: 8K on B"; fail=1; }
[ -f "$WORK/model-Q/model.safetensors" ] || "$B/bench/make_model" Q "$WORK/model-Q" >/dev/null || fail=1
awk 'BEGIN { srand(9); for (i = 0; i < 32767; i++) printf "%d ", 1000 + int(rand() * 100000); print "151643" }' >"$WORK/long32k.txt"
EMBER_DRIVER=$DEV timeout $((90 * TS)) ./"$B"/ember bench -m "$WORK/model-Q" -w "$WORK/long32k.txt" --dtype bf16 \
  --reps 2 --check-seqs 0 -b 1 --max-batch-tokens 32768 || { echo "FAILED: 32K on Q"; fail=1; }
# the same with the mma kernel: attention is 94% of this pass, so the ratio
# of the two is the ratio of the kernels on a long causal GQA input
echo "--- the same, EMBER_CUDA_ATTENTION=mma"
if [ "${switch_ok[mma]}" = 1 ]; then
  EMBER_DRIVER=$DEV EMBER_CUDA_ATTENTION=mma timeout $((60 * TS)) ./"$B"/ember bench -m "$WORK/model-Q" \
    -w "$WORK/long32k.txt" --dtype bf16 --reps 2 --check-seqs 0 -b 1 --max-batch-tokens 32768 \
    || { echo "FAILED: 32K on Q (mma)"; fail=1; }
else
  echo "skipped (the mma kernel failed its checks above)"
fi

step "ember serve on the GPU for 45 s: valid, hostile and slow clients (bench/server/soak.py; the 10-minute soak is the same with --seconds 600)"
if command -v python3 >/dev/null; then
  timeout $((120 * TS)) python3 bench/server/soak.py "$B/ember" "$WORK/model-At" --device "$DEV" --min-cosine 0.9999 \
    --seconds 45 --interval 15 || { echo "FAILED: server soak"; fail=1; }
else
  echo "skipped: no python3 on this machine"
fi

step "device memory short: the activation arena capped at 512 MiB (EMBER_CUDA_ARENA_LIMIT_MB), the context halves its passes"
out=$(EMBER_DRIVER=$DEV EMBER_CUDA_ARENA_LIMIT_MB=512 timeout $((60 * TS)) ./"$B"/ember bench -v -m "$WORK/model-B" -w code \
  --dtype bf16 --reps 1 --check-seqs 4 -b "$GPU_BATCH" --max-batch-tokens "$GPU_TOKENS" 2>&1)
rc=$?
echo "$out" | grep -E "memory is short|tokens/s|rror" | head -8
if [ $rc = 0 ] && echo "$out" | grep -q "memory is short"; then
  echo "ok   halved its passes and answered (cosine checked above)"
else
  echo "FAIL the capped arena (exit $rc)"; fail=1
fi
[ -z "$SMI" ] || { kill "$SMI" 2>/dev/null; wait "$SMI" 2>/dev/null; }
base=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits 2>/dev/null | head -1)
peak=$(sort -n "$WORK/mem.log" 2>/dev/null | tail -1)
echo "peak GPU memory used during the benches: ${peak:-?} MiB (idle now: ${base:-?} MiB)"

step "done: $([ $fail = 0 ] && echo all checks passed || echo SOME CHECKS FAILED)"
exit $fail
