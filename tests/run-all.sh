#!/usr/bin/env bash
# tests/run-all.sh: the single test entry point (README, CI, .ci/run).
#
# 1. configures (if needed) and builds ./build, runs the cmocka unit suite
#    (`meson test --suite unit`) and every tests/e2e/test_*.sh against build/server/lfsgate;
# 2. unless LFSGATE_SANITIZE=0, does the same with ./build-asan
#    (-Db_sanitize=address,undefined) with ASan/UBSan set to abort on the first error;
# 3. fuzzes every tests/fuzz target briefly with clang-14 in ./build-fuzz (tests/fuzz/run.sh).
# Ends with exactly one line "N passed, N failed" (all suites) and exits non-zero if any
# test failed. A failed build counts as one failure and skips that tree's tests.
# Extra environment: E2E_FILTER (regex over e2e test names, see tests/e2e/lib.sh),
# LFSGATE_E2E=0 to skip the e2e suite, LFSGATE_UNIT=0 the unit suite, LFSGATE_HELM=0 the chart,
# LFSGATE_FORMAT=0 the clang-format check, LFSGATE_FAULTS=0 the fault-injection suite,
# LFSGATE_FUZZ=0 the fuzz step (tests/fuzz/run.sh; LFSGATE_FUZZ_SECONDS per target, default 15).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1

TOTAL_PASSED=0
TOTAL_FAILED=0
SUMMARY=()

note() { printf '\n==== %s ====\n' "$*"; }

# build DIR [MESON_SETUP_ARGS...]: meson setup (when not configured yet) + ninja.
build() {
    local dir=$1
    shift
    note "build $dir"
    if [[ ! -f $dir/build.ninja ]]; then
        local -a wipe=()
        [[ -d $dir/meson-private ]] && wipe=(--wipe)
        meson setup "${wipe[@]}" "$dir" "$@" || return 1
    fi
    ninja -C "$dir" || return 1
}

# unit_suite DIR LABEL: meson test --suite unit; counts from meson's summary.
unit_suite() {
    local dir=$1 label=$2 out ok fail rc=0
    note "unit tests ($label)"
    out=$(mktemp)
    meson test -C "$dir" --suite unit --print-errorlogs 2>&1 | tee "$out" || rc=$?
    ok=$(awk '/^Ok:/ { print $2 }' "$out" | tail -n 1)
    fail=$(awk '/^(Fail|Timeout|Unexpected Pass):/ { s += $NF } END { print s + 0 }' "$out")
    if [[ -z $ok ]]; then
        if grep -qE '^No (suitable )?tests defined' "$out"; then
            echo "warning: no tests in suite 'unit' in $dir"
            ok=0
        else
            echo "error: meson test did not print a summary (status $rc)"
            ok=0
            fail=$((fail + 1))
        fi
    elif [[ $rc != 0 && $fail == 0 ]]; then
        echo "error: meson test exited with status $rc"
        fail=1
    fi
    rm -f "$out"
    count "unit ($label)" "$ok" "$fail"
}

# read_counts OUT RC NAME: sets PASS_N/FAIL_N from the PASS/FAIL lines of a test script's
# output. A SKIP line (tests that could not run, e.g. a missing prerequisite with
# E2E_ALLOW_SKIP=1) counts as a failure: tests that did not run prove nothing. A non-zero exit
# without a FAIL line is one failure.
read_counts() {
    local out=$1 rc=$2 name=$3 skip
    PASS_N=$(grep -c '^PASS ' "$out")
    FAIL_N=$(grep -c '^FAIL ' "$out")
    skip=$(grep -c '^SKIP ' "$out")
    if ((skip > 0)); then
        echo "error: $name skipped tests ($skip SKIP lines): counted as failed"
        FAIL_N=$((FAIL_N + skip))
    fi
    if [[ $rc != 0 && $FAIL_N == 0 ]]; then
        echo "error: $name exited with status $rc without reporting a failed test"
        FAIL_N=1
    fi
}

# e2e_suite BIN LABEL [SUITE]: runs every tests/SUITE/test_*.sh (default e2e; faults: the
# fault-injection suite), counts PASS/FAIL lines (read_counts).
e2e_suite() {
    local bin=$1 label=$2 suite=${3:-e2e} f out rc passed=0 failed=0
    note "$suite tests ($label)"
    if [[ ! -x $bin ]]; then
        echo "error: $bin not built"
        count "$suite ($label)" 0 1
        return
    fi
    for f in "$ROOT"/tests/"$suite"/test_*.sh; do
        [[ -e $f ]] || continue
        echo "--- ${f#"$ROOT"/}"
        out=$(mktemp)
        rc=0
        LFSGATE_BIN=$bin bash "$f" 2>&1 | tee "$out" || rc=$?
        read_counts "$out" "$rc" "${f##*/}"
        rm -f "$out"
        passed=$((passed + PASS_N))
        failed=$((failed + FAIL_N))
    done
    count "$suite ($label)" "$passed" "$failed"
}

count() {
    TOTAL_PASSED=$((TOTAL_PASSED + $2))
    TOTAL_FAILED=$((TOTAL_FAILED + $3))
    SUMMARY+=("$(printf '%-18s %4d passed, %d failed' "$1:" "$2" "$3")")
}

# script_suite LABEL COMMAND...: runs a test script that prints a "PASS name" or "FAIL name"
# line per test and counts them (read_counts).
script_suite() {
    local label=$1 out rc=0
    shift
    out=$(mktemp)
    "$@" 2>&1 | tee "$out" || rc=$?
    read_counts "$out" "$rc" "$*"
    rm -f "$out"
    count "$label" "$PASS_N" "$FAIL_N"
}

# helm_suite BIN: renders and validates the Helm chart (tests/helm), checking the rendered
# config with the binary.
helm_suite() {
    note "helm chart"
    script_suite "helm" env LFSGATE_BIN="$1" bash "$ROOT/tests/helm/test_chart.sh"
}

# format_check: every tracked C file is as clang-format (the repo's .clang-format) writes it.
format_check() {
    local f bad=0
    note "clang-format"
    while IFS= read -r f; do
        if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
            echo "not clang-formatted: $f (run: clang-format -i $f)"
            bad=$((bad + 1))
        fi
    done < <(git ls-files '*.c' '*.h')
    if ((bad == 0)); then count "clang-format" 1 0; else count "clang-format" 0 "$bad"; fi
}

# fuzz_suite: tests/fuzz/run.sh with a short budget per target (LFSGATE_FUZZ_SECONDS, default
# 15): builds ./build-fuzz with clang-14 (-Dfuzz=true), replays every target's corpus and
# regressions and fuzzes on from them; one PASS/FAIL per target, a crash fails it and leaves
# the reproducer under build-fuzz/fuzz-artifacts/. (The gcc trees replay the same inputs in
# their unit suites.)
fuzz_suite() {
    note "fuzz (${LFSGATE_FUZZ_SECONDS:-15} s per target)"
    script_suite "fuzz" env FUZZ_BUILD=build-fuzz bash "$ROOT/tests/fuzz/run.sh" \
        "${LFSGATE_FUZZ_SECONDS:-15}"
}

# run_tree DIR LABEL [MESON_SETUP_ARGS...]
run_tree() {
    local dir=$1 label=$2
    shift 2
    if ! build "$dir" "$@"; then
        echo "error: the build of $dir failed"
        count "build ($label)" 0 1
        return
    fi
    [[ ${LFSGATE_UNIT:-1} == 0 ]] || unit_suite "$dir" "$label"
    [[ ${LFSGATE_E2E:-1} == 0 ]] || e2e_suite "$ROOT/$dir/server/lfsgate" "$label"
    [[ ${LFSGATE_FAULTS:-1} == 0 ]] || e2e_suite "$ROOT/$dir/server/lfsgate" "$label" faults
}

start=$SECONDS
note "set-up"
if ! "$ROOT/scripts/install-deps.sh" --with-tests; then
    echo "error: installing the build and test dependencies failed"
    count "set-up" 0 1
fi
[[ ${LFSGATE_FORMAT:-1} == 0 ]] || format_check
run_tree build plain
[[ ${LFSGATE_HELM:-1} == 0 ]] || helm_suite "$ROOT/build/server/lfsgate"
if [[ ${LFSGATE_SANITIZE:-1} != 0 ]]; then
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
    export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
    # Leaks inside third-party libraries that cannot be fixed here go in tests/lsan.supp.
    if [[ -f $ROOT/tests/lsan.supp ]]; then
        export LSAN_OPTIONS=suppressions=$ROOT/tests/lsan.supp:print_suppressions=0
    fi
    # the faults suite's kill -9 rounds: a quarter of them here (the plain tree runs them all)
    export KILL9_ROUNDS_PERCENT=25
    run_tree build-asan asan -Db_sanitize=address,undefined -Db_lundef=false
    unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS KILL9_ROUNDS_PERCENT
fi
[[ ${LFSGATE_FUZZ:-1} == 0 ]] || fuzz_suite

note "summary ($((SECONDS - start)) s)"
printf '%s\n' "${SUMMARY[@]}"
echo "$TOTAL_PASSED passed, $TOTAL_FAILED failed"
[[ $TOTAL_FAILED == 0 ]]
