#!/usr/bin/env bash
# tests/fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]: builds the libFuzzer targets (clang-14,
# ASan + UBSan, in build-fuzz unless FUZZ_BUILD names another tree) when needed and fuzzes
# each target for SECONDS_PER_TARGET seconds (default 60), one after the other, starting from
# tests/fuzz/corpus/<target> and tests/fuzz/regressions/<target> (all of which are replayed
# first, so a regression that comes back fails here too). New inputs go to a work corpus in
# the build tree, never into the repository, unless FUZZ_MERGE=1: then the inputs of the run
# that add coverage to a target's committed corpus are merged into it (-merge=1).
#
# Prints a "PASS fuzz_<target>" or "FAIL fuzz_<target>" line per target, a table (target,
# executions, exec/s, coverage edges, features, corpus inputs and bytes, crashes) and
# "N passed, N failed". A crash, leak, sanitizer report, timeout or out-of-memory fails the
# target and leaves the reproducer in $FUZZ_BUILD/fuzz-artifacts/<target>/ (replay it with
# the target binary, or in the gcc build with build/tests/fuzz/fuzz_<target>_replay FILE);
# fix the cause and add the file to tests/fuzz/regressions/<target>/.
# Environment: FUZZ_BUILD, FUZZ_MERGE, FUZZ_NICE (niceness, default 0), CC (default clang-14).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT" || exit 1
SECONDS_PER_TARGET=${1:-60}
shift || true
BUILD=${FUZZ_BUILD:-build-fuzz}
WORK=$BUILD/fuzz-work
ARTIFACTS=$BUILD/fuzz-artifacts

if [[ ! $SECONDS_PER_TARGET =~ ^[0-9]+$ ]] || ((SECONDS_PER_TARGET < 1)); then
    echo "usage: tests/fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]" >&2
    exit 2
fi
if (($# > 0)); then
    targets=("$@")
else
    targets=()
    for f in tests/fuzz/fuzz_*.c; do
        t=${f#tests/fuzz/fuzz_}
        [[ $t == util.c ]] || targets+=("${t%.c}")
    done
fi

# build: a -Dfuzz=true tree with clang (libFuzzer needs it), only the fuzz targets.
if [[ ! -f $BUILD/build.ninja ]]; then
    wipe=()
    [[ -d $BUILD/meson-private ]] && wipe=(--wipe)
    if ! CC=${CC:-clang-14} meson setup "${wipe[@]}" "$BUILD" -Dfuzz=true >"$BUILD.setup.log" 2>&1; then
        cat "$BUILD.setup.log"
        echo "FAIL fuzz build: meson setup of $BUILD failed (is clang-14 installed? scripts/install-deps.sh --with-tests)"
        echo "0 passed, 1 failed"
        exit 1
    fi
    rm -f "$BUILD.setup.log"
fi
if ! ninja -C "$BUILD" "${targets[@]/#/tests/fuzz/fuzz_}"; then
    echo "FAIL fuzz build: ninja -C $BUILD failed"
    echo "0 passed, 1 failed"
    exit 1
fi

passed=0
failed=0
rows=()
for t in "${targets[@]}"; do
    bin=$BUILD/tests/fuzz/fuzz_$t
    work=$WORK/$t
    art=$ARTIFACTS/$t
    mkdir -p "$work" "$art"
    rm -f "$art"/crash-* "$art"/leak-* "$art"/timeout-* "$art"/oom-* "$art"/slow-unit-*
    log=$BUILD/fuzz-$t.log
    args=(-max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 -timeout=10
        -rss_limit_mb=2048 -artifact_prefix="$art/")
    [[ -f tests/fuzz/dict/$t.dict ]] && args+=(-dict="tests/fuzz/dict/$t.dict")
    inputs=("$work")
    for d in tests/fuzz/corpus/$t tests/fuzz/regressions/$t; do
        [[ -d $d ]] && inputs+=("$d")
    done
    echo "--- fuzz_$t: ${SECONDS_PER_TARGET}s"
    rc=0
    nice -n "${FUZZ_NICE:-0}" "$bin" "${args[@]}" "${inputs[@]}" >"$log" 2>&1 || rc=$?
    execs=$(awk '/^stat::number_of_executed_units:/ { print $2 }' "$log")
    speed=$(awk '/^stat::average_exec_per_sec:/ { print $2 }' "$log")
    cov=$(grep -oE ' cov: [0-9]+' "$log" | tail -n 1 | awk '{ print $2 }')
    ft=$(grep -oE ' ft: [0-9]+' "$log" | tail -n 1 | awk '{ print $2 }')
    corp=$(grep -oE ' corp: [0-9]+/[0-9]+[a-zA-Z]*' "$log" | tail -n 1 | awk '{ print $2 }')
    crashes=$(find "$art" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o \
        -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
    if [[ $rc != 0 || $crashes != 0 || -z $execs ]]; then
        failed=$((failed + 1))
        echo "FAIL fuzz_$t (exit status $rc; log: $log)"
        grep -E 'ERROR:|runtime error|property failed|verdicts differ|SUMMARY' "$log" | head -n 5
        find "$art" -maxdepth 1 -type f -printf '    reproducer: %p\n'
        ((crashes == 0)) && crashes=1
    else
        passed=$((passed + 1))
        echo "PASS fuzz_$t"
    fi
    rows+=("$(printf '%-10s %12s %8s %6s %7s %14s %7s' "$t" "${execs:--}" "${speed:--}" \
        "${cov:--}" "${ft:--}" "${corp:--}" "$crashes")")
    if [[ ${FUZZ_MERGE:-0} == 1 && $rc == 0 ]]; then
        # Inputs already in the first directory are kept (the real-world seeds stay); of the
        # work corpus only those that add features are copied in.
        mkdir -p tests/fuzz/corpus/"$t"
        "$bin" -merge=1 tests/fuzz/corpus/"$t" "$work" >"$BUILD/fuzz-$t.merge.log" 2>&1 ||
            echo "warning: merging the corpus of $t failed (see $BUILD/fuzz-$t.merge.log)"
    fi
done

echo
printf '%-10s %12s %8s %6s %7s %14s %7s\n' target executions exec/s cov features corpus crashes
printf '%s\n' "${rows[@]}"
echo "fuzz: $passed passed, $failed failed"
((failed == 0))
