#!/usr/bin/env bash
# Configures and builds Ember (Release) into ./build; the binary is build/ember.
# Usage: scripts/build.sh [extra cmake -D options]
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DEMBER_TESTS=OFF "$@" >/dev/null
cmake --build build -j"$(nproc)"
echo "built build/ember"
