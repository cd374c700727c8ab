#!/usr/bin/env bash
# Builds Ember with warnings as errors and runs the whole test suite.
#   scripts/test.sh              Release build in build/, gcc
#   scripts/test.sh --sanitize   clang build in build-asan/ with AddressSanitizer and
#                                UndefinedBehaviorSanitizer; fuzz targets run as libFuzzer
#                                for a bounded time (EMBER_FUZZ_SECONDS, default 20 each)
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
if [ "${1:-}" = "--sanitize" ]; then
  CC=clang CXX=clang++ cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEMBER_WERROR=ON \
    -DEMBER_SANITIZE=ON -DEMBER_FUZZ=ON -DEMBER_TESTS=ON >/dev/null
  cmake --build build-asan -j"$jobs"
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  ctest --test-dir build-asan --output-on-failure -j"$jobs"
else
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DEMBER_WERROR=ON -DEMBER_TESTS=ON >/dev/null
  cmake --build build -j"$jobs"
  ctest --test-dir build --output-on-failure -j"$jobs"
fi
