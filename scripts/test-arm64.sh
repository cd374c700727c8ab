#!/usr/bin/env bash
# Cross-compiles Ember for arm64 and runs the kernel, golden and tokenizer
# tests under qemu-user: how the NEON kernels (src/drivers/cpu/arm/neon.c)
# are checked on an x86-64 machine. Not part of CI (no arm64 toolchain there).
#
#   scripts/test-arm64.sh            # needs: gcc-aarch64-linux-gnu qemu-user and the
#                                    # :arm64 packages libjansson-dev libutf8proc-dev
#                                    # libpcre2-dev libcurl4-openssl-dev libmicrohttpd-dev
#
# The test programs are linked statically: Debian 12's qemu-aarch64 (7.2)
# hangs in the first pthread_create of a dynamically linked aarch64 program.
# The golden and tokenizer tests never touch the network, so libcurl is
# replaced by stubs at that link (libcurl's own static dependencies are many).
set -euo pipefail
cd "$(dirname "$0")/.."
B=build-arm64
cmake -S . -B "$B" -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake -DCMAKE_BUILD_TYPE=Release \
  -DEMBER_TESTS=ON >/dev/null
cmake --build "$B" -j"$(nproc)" --target ember test_driver_ops test_golden test_tok_golden test_tok_units
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cat >"$TMP/curl_stubs.c" <<'EOF'
/* libcurl stubs for statically linked offline tests: every call fails. */
void *curl_easy_init(void) { return 0; }
void curl_easy_cleanup(void *c) { (void)c; }
int curl_easy_getinfo(void *c, int i, ...) { (void)c; (void)i; return 1; }
int curl_easy_perform(void *c) { (void)c; return 1; }
void curl_easy_reset(void *c) { (void)c; }
int curl_easy_setopt(void *c, int o, ...) { (void)c; (void)o; return 1; }
const char *curl_easy_strerror(int e) { (void)e; return "no network in this test build"; }
int curl_global_init(long f) { (void)f; return 0; }
void *curl_slist_append(void *l, const char *s) { (void)l; (void)s; return 0; }
void curl_slist_free_all(void *l) { (void)l; }
void *curl_version_info(int v) { (void)v; return 0; }
EOF
link() { # link NAME OBJECT
  aarch64-linux-gnu-gcc -static "$2" "$TMP/curl_stubs.c" "$B/libember.a" -ljansson -lutf8proc -lpcre2-8 \
    -lm -lpthread -o "$TMP/$1" 2> >(grep -v "statically linked applications\|: in function" >&2)
}
link test_driver_ops "$B/tests/CMakeFiles/test_driver_ops.dir/test_driver_ops.c.o"
link test_golden "$B/tests/CMakeFiles/test_golden.dir/test_golden.c.o"
link test_tok_golden "$B/tests/tokenizer/CMakeFiles/test_tok_golden.dir/test_tok_golden.c.o"
link test_tok_units "$B/tests/tokenizer/CMakeFiles/test_tok_units.dir/test_tok_units.c.o"
Q="qemu-aarch64"
$Q "$TMP/test_driver_ops" | tail -1
$Q "$TMP/test_tok_units" | tail -1
$Q "$TMP/test_tok_golden" tests/fixtures/tokenizer | tail -1
for c in bert-tiny-f32 modernbert-tiny-f32; do # about 1.5 and 4 minutes under emulation
  $Q "$TMP/test_golden" "tests/fixtures/goldens/$c" | tail -1
done
