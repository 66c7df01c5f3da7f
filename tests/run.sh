#!/bin/sh
# Runs every unit test (cmocka) and every integration test, and ends with one line
# "N passed, N failed" that counts test cases of both kinds. Exit status 1 if any failed.
# BUILD: the build folder (build, or build-san under SANITIZE). ONLY=pattern runs a subset.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
case "$BUILD" in /*) export FG_BUILD="$BUILD" ;; *) export FG_BUILD="$PWD/$BUILD" ;; esac
export FABGRID_PROFILE_DIR="$PWD/config/profiles"
passed=0
failed=0
log=$(mktemp -d "${TMPDIR:-/tmp}/fabgrid-tests.XXXXXX")
trap 'rm -rf "$log"' EXIT

count() { # $1 = output file; sums cmocka's group summaries and the integration tests' PASS:/FAIL: lines
    p=$(awk '/^\[  PASSED  \] [0-9]+ test/ {n += $4} /^PASS: / {n++} END {print n + 0}' "$1")
    f=$(awk '/^\[  FAILED  \] [0-9]+ test/ {n += $4} /^FAIL: / {n++} END {print n + 0}' "$1")
    passed=$((passed + p))
    failed=$((failed + f))
    echo "$2: $p passed, $f failed"
}

for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    case "$name" in *${ONLY:-}*) ;; *) continue ;; esac
    out="$log/$name.out"
    "$t" >"$out" 2>&1
    rc=$?
    if [ $rc -ne 0 ] && ! grep -q -E '^\[  FAILED  \] [0-9]+ test' "$out"; then
        echo "FAIL: $name crashed (exit $rc)" >>"$out"
    fi
    count "$out" "$name"
    [ $rc -eq 0 ] || sed 's/^/    /' "$out" | tail -40
done

for t in tests/integration/test_*.py; do
    [ -f "$t" ] || continue
    name=$(basename "$t" .py)
    case "$name" in *${ONLY:-}*) ;; *) continue ;; esac
    out="$log/$name.out"
    /usr/bin/python3 "$t" >"$out" 2>&1
    rc=$?
    if [ $rc -ne 0 ] && ! grep -q '^FAIL: ' "$out"; then
        echo "FAIL: $name exited $rc" >>"$out"
    fi
    count "$out" "$name"
    [ $rc -eq 0 ] || sed 's/^/    /' "$out" | tail -60
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
