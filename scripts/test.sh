#!/usr/bin/env bash
# Builds Ember with warnings as errors and runs the whole test suite.
#   scripts/test.sh              Release build in build/, gcc; then the Python package
#                                (pip install . into .venv, made by scripts/setup.sh)
#                                and pytest python/tests (the "distributed" ones:
#                                Ray, Spark, deploy/k8s, in a second run)
#   scripts/test.sh --sanitize   clang build in build-asan/ with AddressSanitizer and
#                                UndefinedBehaviorSanitizer; fuzz targets run as libFuzzer
#                                for a bounded time (EMBER_FUZZ_SECONDS, default 20 each);
#                                with nvcc, test_cuda_emu under the same sanitizers
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
if [ "${1:-}" = "--sanitize" ]; then
  # without the CUDA driver: its objects come from nvcc, outside the
  # sanitizers, and with them CMake links every program through the CUDA
  # host linker, which does not know -fsanitize=fuzzer (the gcc build above
  # compiles and tests it)
  CC=clang CXX=clang++ cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEMBER_WERROR=ON \
    -DEMBER_SANITIZE=ON -DEMBER_FUZZ=ON -DEMBER_TESTS=ON -DEMBER_CUDA=OFF >/dev/null
  cmake --build build-asan -j"$jobs"
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  ctest --test-dir build-asan --output-on-failure -j"$jobs"
  # the CPU emulation of the CUDA kernel bodies (host code compiled by nvcc)
  # under the host compiler's sanitizers: an out-of-bounds shared or global
  # access of a kernel body shows up here
  nvcc=$(command -v nvcc || true)
  [ -n "$nvcc" ] || [ ! -x /usr/local/cuda/bin/nvcc ] || nvcc=/usr/local/cuda/bin/nvcc
  if [ -n "$nvcc" ]; then
    "$nvcc" -std=c++17 -g -O1 -Isrc -Iinclude \
      -Xcompiler -fsanitize=address,-fsanitize=undefined,-fno-sanitize-recover=undefined,-fno-omit-frame-pointer \
      tests/test_cuda_emu.cu -o build-asan/test_cuda_emu_asan -lasan -lubsan -lpthread
    build-asan/test_cuda_emu_asan >/dev/null
    echo "test: test_cuda_emu under AddressSanitizer and UndefinedBehaviorSanitizer: passed"
  fi
else
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DEMBER_WERROR=ON -DEMBER_TESTS=ON >/dev/null
  cmake --build build -j"$jobs"
  ctest --test-dir build --output-on-failure -j"$jobs"
  if [ ! -x .venv/bin/python ]; then
    echo "test: .venv missing: run scripts/setup.sh first (it makes the Python test venv)" >&2
    exit 1
  fi
  # Incremental: scikit-build-core keeps its CMake tree in build/python/.
  CMAKE_BUILD_PARALLEL_LEVEL=$jobs .venv/bin/python -m pip install -q --no-build-isolation --disable-pip-version-check \
    --config-settings=cmake.define.EMBER_WERROR=ON .
  .venv/bin/python -m pytest -q -m "not distributed" python/tests
  # Ray Data, Spark (local mode) and the Kubernetes manifests (docs/deploy.md),
  # in a process of their own
  start=$SECONDS
  .venv/bin/python -m pytest -q -m distributed python/tests
  echo "test: distributed tests took $((SECONDS - start)) s"
  cat build/python/real_weights_report.txt 2>/dev/null || true
fi
