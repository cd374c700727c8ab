#!/usr/bin/env bash
# Ember beside its peers on the fixed workload (bench/workloads), one run,
# one table: Ember (build/ember bench) in fp32, bf16 and int8; ONNX Runtime
# fp32 and int8 (dynamic quantization); sentence-transformers on PyTorch;
# fastembed (ONNX Runtime + its own numpy pooling); llama.cpp (llama-cpp-python)
# on GGUF files in f16 and q8_0 made by llama.cpp's own convert_hf_to_gguf.py.
#
#   bench/peers/run_peers.sh [MODELS] [REGIMES] [ENGINES]
#     MODELS   letters of bench/make_model presets (default AB): A, B, X (XLM-R-base
#              shapes), M (MPNet-base shapes), Q (Qwen3-Embedding-0.6B shapes, BF16
#              weights as that checkpoint ships: use ENGINES ember,ember-bf16,st,st-bf16)
#     REGIMES  short,code,long (default all)
#     ENGINES  comma list of ember,ember-bf16,ember-int8,ort,ort-int8,st,st-bf16,
#              fastembed,llama-f16,llama-q8_0 (default all but st-bf16; st-bf16:
#              sentence-transformers in bf16). fastembed (f32) counts among the fp32
#              peers; llama-q8_0 among the int8 peers; llama-f16 is its own dtype (f16),
#              in "vs best fp32 peer" only. fastembed and llama-* are tried on A and B.
#   env WORK=/tmp/ember-peers (models, ONNX files), REPS=3, THREADS=2, CHECK_SEQS=8 (ember's check),
#       ROUNDS=1 (ROUNDS=N: the whole sequence of engines N times over, each engine's best pass of all
#       its rounds in the table: a VM whose speed drifts over minutes then hits every engine alike),
#       SUBSET=N (the first N sequences of each regime only: for the 0.6B model),
#       EMBER_BIN=build/ember, VENV=bench/peers/.venv (onnxruntime, fastembed, llama-cpp-python
#       from PyPI, made or extended on first use; llama-cpp-python builds llama.cpp from
#       source, CPU only, -march=native: 10-20 minutes on 2 cores), LLAMA_NBATCH=512,
#       LLAMA_PACK=64 (tokens per llama_decode; a longer sequence alone), LLAMA_FLASH_ATTN=0, LLAMA_EXTRA_BUFTS=0,
#       REFPY=/tmp/refvenv/bin/python (torch + sentence-transformers, read-only:
#       exports the ONNX files and runs the sentence-transformers peer).
#
# Models A and B are bench/make_model's random-weight directories (the
# sentence-transformers layout); the ONNX files are their exports with the
# pooling inside (fastembed's, $WORK/fastembed-<letter>/model.onnx, without: it pools
# itself). Every engine pads nothing it need not: the peers pad each batch of
# 32 to its longest, as sentence-transformers does; Ember and llama.cpp pack.
# All are fed token ids (tokenization is not timed; see bench_peer.py for how
# fastembed and llama.cpp are). fastembed and llama.cpp are checked once per
# model against the ONNX Runtime fp32 peer (cosine on 8 sequences, in the notes).
# Engines run one after another per regime (interleaved), each in its own
# process, so background load hits them alike; the table gives real tokens/s
# (best of REPS passes) and each process's peak RSS.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here=$root/bench/peers
WORK=${WORK:-/tmp/ember-peers}; REPS=${REPS:-3}; THREADS=${THREADS:-2}; ROUNDS=${ROUNDS:-1}
VENV=${VENV:-$here/.venv}; REFPY=${REFPY:-/tmp/refvenv/bin/python}
models=${1:-AB}; regimes=${2:-short,code,long}
engines=${3:-ember,ember-bf16,ember-int8,ort,ort-int8,st,fastembed,llama-f16,llama-q8_0}
has() { [[ ",$engines," == *",$1,"* ]]; }
for e in ${engines//,/ }; do
  case $e in ember|ember-bf16|ember-int8|ort|ort-int8|st|st-bf16|fastembed|llama-f16|llama-q8_0) ;;
    *) echo "unknown engine $e" >&2; exit 2 ;; esac
done
has_llama() { has llama-f16 || has llama-q8_0; }
need_ort=; { has ort || has ort-int8 || has fastembed || has_llama; } && need_ort=1  # fastembed, llama: checked against ort
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
export THREADS
mkdir -p "$WORK"
[ -x "$root/build/ember" ] && [ -x "$root/build/bench/make_model" ] || {
  echo "build Ember first (cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build)" >&2; exit 1; }
if [ -n "$need_ort" ] && ! "$VENV/bin/python" -c 'import onnxruntime' 2>/dev/null; then
  { [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"; } && "$VENV/bin/pip" install -q onnxruntime numpy onnx >&2 ||
    { echo "could not install onnxruntime into $VENV" >&2; exit 1; }
fi
if has fastembed && ! "$VENV/bin/python" -c 'import fastembed' 2>/dev/null; then
  echo "installing fastembed into $VENV" >&2
  nice -n 10 "$VENV/bin/pip" install -q 'fastembed>=0.9,<0.10' >&2 ||
    { echo "engine fastembed: could not install fastembed into $VENV" >&2; exit 1; }
fi
if has_llama && ! "$VENV/bin/python" -c 'import llama_cpp' 2>/dev/null; then
  echo "installing llama-cpp-python into $VENV: builds llama.cpp from source (CPU only), 10-20 minutes" >&2
  CMAKE_ARGS="-DLLAVA_BUILD=OFF -DGGML_NATIVE=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF" \
    CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2} nice -n 10 "$VENV/bin/pip" install -q 'llama-cpp-python>=0.3,<0.4' >&2 ||
    { echo "engines llama-*: could not build llama-cpp-python into $VENV" >&2; exit 1; }
fi
if has_llama; then
  # llama.cpp's own converter, from the sdist of the installed llama-cpp-python (vendor/llama.cpp),
  # run by the reference Python (torch, transformers) with the vendored gguf-py
  llv=$("$VENV/bin/python" -c 'import llama_cpp; print(llama_cpp.__version__)')
  lcpp=$WORK/llama-sdist/llama_cpp_python-$llv/vendor/llama.cpp
  if [ ! -f "$lcpp/convert_hf_to_gguf.py" ]; then
    mkdir -p "$WORK/llama-sdist"
    "$VENV/bin/pip" download -q --no-binary :all: --no-deps "llama-cpp-python==$llv" -d "$WORK/llama-sdist" >&2 &&
      tar xzf "$WORK/llama-sdist/llama_cpp_python-$llv.tar.gz" -C "$WORK/llama-sdist" ||
      { echo "engines llama-*: could not get the llama-cpp-python $llv sdist (for convert_hf_to_gguf.py)" >&2; exit 1; }
  fi
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
  if [ -n "$need_ort" ]; then
    # torch.onnx needs the onnx package, which the read-only reference venv lacks:
    # a copy of it (no dependencies) beside the models, on PYTHONPATH for the export only
    [ -d "$WORK/onnx-pkgs/onnx" ] || "$VENV/bin/pip" install -q --no-deps --target "$WORK/onnx-pkgs" \
      "onnx==$("$VENV/bin/python" -c 'import onnx; print(onnx.__version__)')" ml_dtypes >&2
    [ -f "$WORK/model$m.onnx" ] || PYTHONPATH=$WORK/onnx-pkgs "$REFPY" "$here/export_onnx.py" "$d" "$WORK/model$m.onnx" >&2
    [ -f "$WORK/model$m-int8.onnx" ] ||
      "$VENV/bin/python" "$here/quantize_onnx.py" "$WORK/model$m.onnx" "$WORK/model$m-int8.onnx" >&2
  fi
  if has fastembed; then
    # fastembed pools itself: the transformer alone (last_hidden_state), beside the tokenizer
    # files (fastembed loads a tokenizer, unused here) and the pooling / normalize config
    fd=$WORK/fastembed-$m; mkdir -p "$fd"
    [ -f "$fd/model.onnx" ] || PYTHONPATH=$WORK/onnx-pkgs "$REFPY" "$here/export_onnx.py" "$d" "$fd/model.onnx" --plain >&2
    for f in "$d"/*.json "$d"/*.txt "$d/1_Pooling"; do [ -e "$f" ] && ln -sfn "$f" "$fd/"; done
  fi
  for t in f16 q8_0; do
    has llama-$t || continue
    [ -f "$WORK/model$m-$t.gguf" ] || PYTHONPATH=$lcpp/gguf-py nice -n 10 "$REFPY" "$lcpp/convert_hf_to_gguf.py" "$d" \
      --outtype "$t" --outfile "$WORK/model$m-$t.gguf" >"$WORK/model$m-$t.gguf.log" 2>&1 ||
      { echo "engine llama-$t: convert_hf_to_gguf.py failed on $d (see $WORK/model$m-$t.gguf.log)" >&2; exit 1; }
  done
done
# ModernBERT: this llama.cpp's converter writes norm_eps as an RMS-norm epsilon and its loader
# wants modern-bert.attention.layer_norm_epsilon: give it at load time (llama.cpp's --override-kv)
llama_kv() {
  python3 -c 'import json, sys; c = json.load(open(sys.argv[1]))
if c.get("model_type") == "modernbert": print("modern-bert.attention.layer_norm_epsilon=float:%r" % c.get("norm_eps", 1e-5))' \
    "$WORK/model-$1/config.json"
}
rows=(); notes=()
# fastembed and llama.cpp compute what the ONNX Runtime fp32 peer does (once per model, first regime)
r0=${regimes%%,*}
for m in $(echo "$models" | grep -o .); do
  for e in ${engines//,/ }; do
    case $e in fastembed) k=fastembed; f=$WORK/fastembed-$m; min=0.9999 ;;
      llama-f16) k=llama; f=$WORK/model$m-f16.gguf; min=0.999 ;; llama-q8_0) k=llama; f=$WORK/model$m-q8_0.gguf; min=0 ;;
      *) continue ;; esac
    line=$(LLAMA_KV_OVERRIDES=$(llama_kv "$m") "$VENV/bin/python" "$here/bench_peer.py" check $k "$f" \
             "$root/bench/workloads/$r0.txt" "$WORK/model$m.onnx") ||
      { echo "engine $e: check run failed on model $m" >&2; exit 1; }
    echo "$m check $e: $line" >&2
    notes+=("$(echo "$line" | python3 -c '
import json, sys
j = json.load(sys.stdin); m, e, lo = sys.argv[1:4]; c, cm, v, n = j["cos_min"], j["cos_mean"], j["version"], j["seqs"]
reg = j["regime"].split(".")[0]; bad = c < float(lo)
print(f"model {m}, {e} ({v}) vs onnxruntime fp32 on {n} {reg} sequences: cosine min {c:.6f}, mean {cm:.6f}"
      + (f" **BELOW {lo}: NOT THE SAME COMPUTATION**" if bad else ""))' "$m" "$e" "$min")")
  done
done
for round in $(seq "$ROUNDS"); do
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
        fastembed)
          line=$("$VENV/bin/python" "$here/bench_peer.py" fastembed "$WORK/fastembed-$m" "$inp" "$REPS")
          tps=$(echo "$line" | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["tokens"]/j["min"], j["peak_rss_mb"])')
          rows+=("$m $r fastembed f32 $tps") ;;
        llama-f16|llama-q8_0)
          t=${e#llama-}; dt=f16; [ "$t" = q8_0 ] && dt=int8
          line=$(LLAMA_KV_OVERRIDES=$(llama_kv "$m") "$VENV/bin/python" "$here/bench_peer.py" llama "$WORK/model$m-$t.gguf" "$inp" "$REPS")
          tps=$(echo "$line" | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["tokens"]/j["min"], j["peak_rss_mb"])')
          rows+=("$m $r llama.cpp-$t $dt $tps") ;;
      esac
      echo "$m $r $e (round $round): $line" >&2
    done
  done
done
done
ortv=$("$VENV/bin/python" -c 'import onnxruntime as o; print(o.__version__)' 2>/dev/null || echo -)
stv=$("$REFPY" -c 'import sentence_transformers as s, torch as t; print(s.__version__, "/ torch", t.__version__)' 2>/dev/null || echo -)
fev=$("$VENV/bin/python" -c 'import fastembed as f; print(f.__version__)' 2>/dev/null || echo -)
llv=$("$VENV/bin/python" -c 'import llama_cpp as l; print(l.__version__)' 2>/dev/null || echo -)
echo "## $(date -u +%Y-%m-%d): $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) vCPUs, $THREADS threads"
echo "flags: $(grep -m1 flags /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|fma|avx512(f|bw|vl|dq|_bf16|_vnni|_fp16)|amx_(bf16|int8|tile))$' | tr '\n' ' ')"
echo "onnxruntime $ortv; sentence-transformers $stv; fastembed $fev; llama-cpp-python $llv; REPS=$REPS (best pass)${ROUNDS:+, ROUNDS=$ROUNDS}${SUBSET:+; first $SUBSET sequences of each regime}"
echo "load average (1/5/15 min) before: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
printf '| model | regime | engine | dtype | tokens/s | vs best fp32 peer | vs best peer, same dtype | peak RSS MB |\n|---|---|---|---|---|---|---|---|\n'
printf '%s\n' "${rows[@]}" | python3 -c '
import sys
# ROUNDS > 1: one row per engine, its best tokens/s and largest peak RSS over the rounds
merged = {}
for m, r, e, d, t, rss in (l.split() for l in sys.stdin if l.strip()):
    k = (m, r, e, d)
    pt, prss = merged.get(k, (0.0, 0.0))
    merged[k] = (max(pt, float(t)), max(prss, float(rss)))
rows = [(*k, v[0], v[1]) for k, v in merged.items()]
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
if has llama-f16 || has llama-q8_0; then
  echo
  echo "llama.cpp-f16 (f16 weights) is its own dtype: compared in \"vs best fp32 peer\" only; llama.cpp-q8_0"
  echo "(GGUF q8_0 weights, int8 dot products) counts as an int8 peer. LLAMA_EXTRA_BUFTS=${LLAMA_EXTRA_BUFTS:-0}"
  echo "(0: llama.cpp without extra weight buffer types, as its AMX q8_0 matmul segfaulted in llama-cpp-python"
  echo "0.3.36 on an AMX Xeon); at most ${LLAMA_PACK:-64} tokens per llama_decode."
fi
for n in "${notes[@]}"; do echo "- $n"; done
