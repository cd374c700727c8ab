#!/bin/sh
# check_exports.sh — libember.so exports exactly the functions declared with
# EMBER_API in include/ember.h: nothing internal leaks (the library is built
# with -fvisibility=hidden) and nothing public is missing.
# Usage: check_exports.sh LIBEMBER_SO EMBER_H
# Names starting with "_" are ignored: _init/_fini and what sanitizer or
# coverage instrumentation adds (__asan_*, __sancov_*), not Ember's.
set -eu
LIB=$1
HDR=$2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# declarations: "EMBER_API <type> ember_name(" (the type may hold a '*')
grep -o 'EMBER_API[^(]*ember_[a-z0-9_]*(' "$HDR" | sed 's/($//; s/.*[ *]//' | sort -u > "$TMP/declared"
nm -D --defined-only "$LIB" | awk '{print $NF}' | sed 's/@.*//' | grep -v '^_' | sort -u > "$TMP/exported"

n_decl=$(wc -l < "$TMP/declared")
n_exp=$(wc -l < "$TMP/exported")
if [ "$n_decl" -eq 0 ]; then
    echo "check_exports: no EMBER_API declarations found in $HDR" >&2
    exit 1
fi
extra=$(comm -13 "$TMP/declared" "$TMP/exported")
missing=$(comm -23 "$TMP/declared" "$TMP/exported")
if [ -n "$extra" ]; then
    echo "check_exports: $LIB exports symbols that include/ember.h does not declare:" >&2
    echo "$extra" >&2
fi
if [ -n "$missing" ]; then
    echo "check_exports: functions declared in include/ember.h but not exported by $LIB:" >&2
    echo "$missing" >&2
fi
[ -z "$extra" ] && [ -z "$missing" ] || exit 1
echo "check_exports: $n_exp exported symbols, all declared in ember.h ($n_decl declared)"
