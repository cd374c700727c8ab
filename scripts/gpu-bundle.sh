#!/usr/bin/env bash
# scripts/gpu-bundle.sh — builds the CUDA-enabled binaries here and packs
# them, with the shared libraries they need that a bare GPU machine may
# lack, into one compressed file for `scripts/gpu-check.sh --prebuilt`.
#
# Why: a GPU machine without network (a rented node, a CI runner with a
# card) often has nvcc and cuBLAS but not Ember's other dependencies
# (jansson, utf8proc, pcre2, libcurl, libmicrohttpd) and nothing to install
# them from. Building here (CUDA toolkit present, no GPU needed) and
# carrying the result works when this machine's glibc is not newer than the
# GPU machine's (Debian 12's 2.36 runs on Ubuntu 22.04 / 24.04).
#
#   scripts/gpu-bundle.sh [OUT.tar.xz]     (default .gpu/ember-gpu.tar.xz)
#   env: CUDA_ARCHS (default "80;86;89;90"), JOBS (default nproc),
#        BUNDLE_CUBLASLT=1 (pack libcublasLt too)
#
# The bundle holds bin/ (ember, test_cuda_smoke, test_golden,
# test_driver_conformance, test_e2e, make_model) and lib/ (the non-glibc shared
# libraries of their closure). The CUDA runtime is linked statically.
# cuBLASLt is not linked: the CUDA driver dlopens it (libcublasLt.so.N, N
# the build's CUDA major version) when it first uses a device, so ldd does
# not list it. It is not packed by default (over 500 MB): gpu-check.sh
# finds that soname on the GPU machine and puts its directory on
# LD_LIBRARY_PATH, where dlopen looks. BUNDLE_CUBLASLT=1 packs this
# toolkit's copy into lib/ (first on LD_LIBRARY_PATH there) for a GPU
# machine without it.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-.gpu/ember-gpu.tar.xz}
B=build-gpu-bundle
JOBS=${JOBS:-$(nproc)}
cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=Release -DEMBER_TESTS=ON -DEMBER_CUDA=ON \
      -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCHS:-80;86;89;90}" >/dev/null
cmake --build "$B" -j"$JOBS" --target ember_cli test_cuda_smoke test_golden \
      test_driver_conformance test_e2e make_model >/dev/null

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/lib"
cp "$B/ember" "$B/tests/test_cuda_smoke" "$B/tests/test_golden" "$B/tests/test_e2e" \
   "$B/tests/test_driver_conformance" "$B/bench/make_model" "$stage/bin/"
cp -L "$B"/libember.so.0 "$stage/lib/"
# the closure, minus glibc's own libraries (the GPU machine's must be used)
# and cuBLAS (found there, or packed below)
for bin in "$stage"/bin/* "$stage/lib/libember.so.0"; do
  ldd "$bin" | awk '/=> \// { print $1, $3 }'
done | sort -u | while read -r name path; do
  case $name in
    libc.so*|libm.so*|libdl.so*|libpthread.so*|librt.so*|libresolv.so*|libutil.so*|libnss*|ld-linux*|libgcc_s.so*|libstdc++.so*) ;;
    libcublas*|libember*) ;;
    *) cp -L "$path" "$stage/lib/$name" ;;
  esac
done
# the soname the loader asks for (src/drivers/cuda/cublaslt_loader.c)
soname=$(grep -ao 'libcublasLt\.so\.[0-9][0-9]*' "$stage/lib/libember.so.0" | sort -u | head -n1 || true)
[ -n "$soname" ] || {
  echo "gpu-bundle: libember.so.0 names no libcublasLt soname" >&2; exit 1; }
if [ "${BUNDLE_CUBLASLT:-0}" = 1 ]; then
  lt=$(sed -n 's/^CUDAToolkit_LIBRARY_DIR:[A-Z]*=//p' "$B/CMakeCache.txt")/$soname
  [ -f "$lt" ] || { echo "gpu-bundle: no $lt" >&2; exit 1; }
  cp -L "$lt" "$stage/lib/$soname"
fi
mkdir -p "$(dirname "$OUT")"
tar -C "$stage" -cJf "$OUT" bin lib
echo "gpu-bundle: $OUT ($(du -h "$OUT" | cut -f1)); on the GPU machine: scripts/gpu-check.sh --prebuilt $OUT"
