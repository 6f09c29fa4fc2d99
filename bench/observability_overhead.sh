#!/usr/bin/env bash
# Cost and volume of the access and activity logs on upload batches of 1 and 100 objects
# that are granted and store nothing (issue 19). Two lfsgate processes run side by side on the
# same configuration but for SERVER.access_log/activity_log (on: their defaults, stdout to a
# file; off), and wrk runs are alternated between them ROUNDS times. Measures per case:
#   - server CPU time per 1,000 requests (utime + stime from /proc/PID/stat around each wrk
#     run, ticks of 1/CLK_TCK s): steadier than req/s on a shared machine; the overhead of
#     logging is the ratio of the medians (target: <= 5%);
#   - log bytes per request written by the "on" process, all lines and ActivityLog lines
#     alone (target for a 100-object batch: about 1 KB of activity log or less);
#   - wrk req/s (medians), for scale;
#   - user-space instructions per 1-object request under callgrind, on and off.
# Every answer is checked: non-2xx answers, 200s carrying per-object errors (wrk_lua) and
# socket errors fail the script, as does a function missing from callgrind's output.
# Metrics are always on, so "off" still counts them.
# Usage: bench/observability_overhead.sh [ROUNDS] (default 5; LFSGATE_BIN to skip the build)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
rounds=${1:-5}
bench_need_tools wrk curl awk
bench_build "${LFSGATE_BIN:-}"
bench_workdir
wrk_threads=2 wrk_conns=16 wrk_duration=${DURATION:-4s} wrk_strict=1
for n in 1 100; do
    python3 - "$n" >"$work/body-$n.json" <<'PY'
import hashlib, json, sys
n = int(sys.argv[1])
print(json.dumps({"operation": "upload", "transfers": ["basic"],
                  "objects": [{"oid": hashlib.sha256(b"obs %d" % i).hexdigest(), "size": 100 + i}
                              for i in range(n)]}))
PY
    wrk_lua "$work/post-$n.lua" "$work/body-$n.json"
done
local_config "$work/on.yaml" "  - giftless.auth.allow_anon:read_write" "$work/store" "{access_log: true, activity_log: true}"
local_config "$work/off.yaml" "  - giftless.auth.allow_anon:read_write" "$work/store"
start_lfsgate on "$work/on.yaml" --threads 1
declare -A port pid
port[on]=$started_port pid[on]=$started_pid
start_lfsgate off "$work/off.yaml" --threads 1
port[off]=$started_port pid[off]=$started_pid
url() { echo "http://127.0.0.1:${port[$1]}/o/r.git/info/lfs/objects/batch"; }
for n in 1 100; do
    curl -sf -XPOST --data-binary @"$work/body-$n.json" -H 'Accept: application/vnd.git-lfs+json' \
        -H 'Content-Type: application/vnd.git-lfs+json' "$(url on)" >"$work/answer-$n.json" ||
        bench_die "the $n-object batch failed"
    python3 -c 'import json,sys; o=json.load(open(sys.argv[1]))["objects"]; sys.exit(not (len(o) == int(sys.argv[2]) and all("upload" in x["actions"] for x in o)))' \
        "$work/answer-$n.json" "$n" || bench_die "the $n-object batch answer does not grant every upload"
done
: >"$work/rows"
for n in 1 100; do
    for mode in on off; do wrk_duration=1s bench_wrk "warm-$mode-$n" "$(url $mode)" "$work/post-$n.lua" >/dev/null; done
    for _ in $(seq "$rounds"); do
        for mode in on off; do
            t0=$(cpu_ticks "${pid[$mode]}")
            b0=$(stat -c %s "$work/$mode.log")
            rate=$(bench_wrk "$mode-$n" "$(url $mode)" "$work/post-$n.lua")
            sleep 0.2 # the last lines are written at the end of a loop turn
            t1=$(cpu_ticks "${pid[$mode]}")
            reqs=$(cat "$work/wrk-$mode-$n.requests")
            ab=$(tail -c +$((b0 + 1)) "$work/$mode.log" | { grep '"ActivityLog"' || true; } | wc -c)
            b1=$(stat -c %s "$work/$mode.log")
            echo "$n $mode $rate $(awk -v t=$((t1 - t0)) -v q="$reqs" 'BEGIN { printf "%.2f", 1000 * t / q }') \
$(awk -v b=$((b1 - b0)) -v q="$reqs" 'BEGIN { printf "%.0f", b / q }') $(awk -v b="$ab" -v q="$reqs" 'BEGIN { printf "%.0f", b / q }')" >>"$work/rows"
        done
    done
done
col() { awk -v n="$1" -v m="$2" -v c="$3" '$1 == n && $2 == m { print $c }' "$work/rows" | median -; }
echo "logs on vs off, $(nproc) CPUs, lfsgate --threads 1, wrk -t2 -c16 -d$wrk_duration, median of $rounds alternated rounds"
printf '%-22s %12s %12s %16s %16s %9s %14s %16s\n' batch "req/s off" "req/s on" "ticks/1k off" "ticks/1k on" overhead "log B/req" "activity B/req"
for n in 1 100; do
    ton=$(col "$n" on 4) toff=$(col "$n" off 4)
    printf '%-22s %12.0f %12.0f %16.1f %16.1f %8.1f%% %14.0f %16.0f\n' "$n-object upload" \
        "$(col "$n" off 3)" "$(col "$n" on 3)" "$toff" "$ton" \
        "$(awk -v a="$ton" -v b="$toff" 'BEGIN { print 100 * (a - b) / b }')" "$(col "$n" on 5)" "$(col "$n" on 6)"
done
bench_stop "${pid[on]}"
bench_stop "${pid[off]}"

# Instructions per request under callgrind (1-object batches).
instr() { # MODE
    local p
    p=$(free_port)
    valgrind --tool=callgrind --callgrind-out-file="$work/cg.$1" -q "$bin" --config "$work/$1.yaml" \
        --listen "127.0.0.1:$p" --threads 1 >"$work/cg-$1.out" 2>"$work/cg-$1.err" &
    cpid=$!
    bench_track "$cpid"
    wait_http "http://127.0.0.1:$p/healthz" "$cpid" || bench_die "lfsgate under callgrind did not start"
    for _ in $(seq "$calls"); do
        curl -sf -XPOST --data-binary @"$work/body-1.json" "http://127.0.0.1:$p/o/r.git/info/lfs/objects/batch" >/dev/null ||
            bench_die "a batch under callgrind failed"
    done
    kill -INT "$cpid"
    wait "$cpid" 2>/dev/null || true
    bench_untrack "$cpid"
    callgrind_annotate --inclusive=yes "$work/cg.$1" 2>/dev/null |
        awk -v n="$calls" '/:worker_main / && !done { gsub(",", "", $1); print $1 / n; done = 1 }'
}
if command -v valgrind >/dev/null; then
    calls=50
    i_on=$(instr on)
    i_off=$(instr off)
    if [ -z "$i_on" ] || [ -z "$i_off" ]; then bench_die "worker_main is not in callgrind's output"; fi
    printf 'callgrind, worker thread instructions per 1-object request: logs off %.0f, logs on %.0f (+%.1f%%)\n' \
        "$i_off" "$i_on" "$(awk -v a="$i_on" -v b="$i_off" 'BEGIN { print 100 * (a - b) / b }')"
    callgrind_annotate --inclusive=yes --threshold=100 "$work/cg.on" 2>/dev/null |
        awk -v n="$calls" '/:(lfs_metrics_request|lfs_log_access|lfs_log_activity|lfs_log_batch|lfs_logs_thread_flush) / {
            gsub(",","",$1); for (i = 2; i <= NF; i++) if ($i ~ /:lfs_/) split($i, f, ":")
            if (!seen[f[2]]++) printf "  %-24s %7.0f instructions per request\n", f[2], $1 / n }'
else
    echo "valgrind is missing: no callgrind figures" >&2
    exit 1
fi
