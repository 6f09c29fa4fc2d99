#!/usr/bin/env bash
# Allocator churn on 100-object upload batches (issue 19): server CPU time per 1,000 requests
# and memory-management system calls per request, for lfsgate as built and for the same
# binary started with GLIBC_TUNABLES that keep glibc from trimming or mapping per request
# (the reference: what the answer path costs without allocator churn). A third process,
# OTHER_BIN (e.g. a build of an older commit), is measured alongside when given.
#   - CPU: the processes run side by side (--threads 1, logs off); wrk runs are alternated
#     between them ROUNDS times; utime + stime from /proc/PID/stat around each run divided by
#     the requests made; medians. Every answer is checked (wrk_lua: no per-object errors).
#   - minor page faults per request over the same runs (/proc/PID/stat);
#   - System calls: strace -f -c over CALLS sequential batches (curl), per request.
# Usage: bench/alloc_churn.sh [ROUNDS]  (default 5; LFSGATE_BIN, OTHER_BIN, CALLS=200,
#   DURATION=4s)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
rounds=${1:-5}
calls=${CALLS:-200}
tuned=glibc.malloc.mmap_threshold=4194304:glibc.malloc.trim_threshold=67108864
bench_need_tools wrk curl strace awk
bench_build "${LFSGATE_BIN:-}"
bench_workdir
wrk_threads=2 wrk_conns=16 wrk_duration=${DURATION:-4s} wrk_strict=1
python3 - >"$work/body.json" <<'PY'
import hashlib, json
print(json.dumps({"operation": "upload", "transfers": ["basic"],
                  "objects": [{"oid": hashlib.sha256(b"churn %d" % i).hexdigest(), "size": 1000 + i}
                              for i in range(100)]}))
PY
wrk_lua "$work/post.lua" "$work/body.json"
local_config "$work/config.yaml" "  - giftless.auth.allow_anon:read_write" "$work/store"
names=(built tuned)
declare -A bins envs port pid
bins[built]=$bin envs[built]=
bins[tuned]=$bin envs[tuned]=$tuned
if [ -n "${OTHER_BIN:-}" ]; then
    [ -x "$OTHER_BIN" ] || bench_die "OTHER_BIN $OTHER_BIN is not an executable"
    names+=(other)
    bins[other]=$OTHER_BIN envs[other]=
fi
path=/o/r.git/info/lfs/objects/batch
post() { # PORT
    curl -sf -XPOST --data-binary @"$work/body.json" -H 'Accept: application/vnd.git-lfs+json' \
        -H 'Content-Type: application/vnd.git-lfs+json' "http://127.0.0.1:$1$path"
}
for n in "${names[@]}"; do
    bin=${bins[$n]} GLIBC_TUNABLES=${envs[$n]} start_lfsgate "$n" "$work/config.yaml" --threads 1
    port[$n]=$started_port pid[$n]=$started_pid
    post "${port[$n]}" >"$work/answer.json" || bench_die "$n: the 100-object batch failed"
    python3 -c 'import json,sys; o=json.load(sys.stdin)["objects"]; sys.exit(not (len(o) == 100 and all("upload" in x["actions"] for x in o)))' <"$work/answer.json" ||
        bench_die "$n: the 100-object batch answer does not grant every upload"
    wrk_duration=1s bench_wrk "warm-$n" "http://127.0.0.1:${port[$n]}$path" "$work/post.lua" >/dev/null
done
: >"$work/rows"
for _ in $(seq "$rounds"); do
    for n in "${names[@]}"; do
        t0=$(cpu_ticks "${pid[$n]}") f0=$(minor_faults "${pid[$n]}")
        rate=$(bench_wrk "$n" "http://127.0.0.1:${port[$n]}$path" "$work/post.lua")
        t1=$(cpu_ticks "${pid[$n]}") f1=$(minor_faults "${pid[$n]}")
        q=$(cat "$work/wrk-$n.requests")
        echo "$n $rate $(awk -v t=$((t1 - t0)) -v f=$((f1 - f0)) -v q="$q" 'BEGIN { printf "%.2f %.2f", 1000 * t / q, f / q }')" >>"$work/rows"
    done
done
for n in "${names[@]}"; do bench_stop "${pid[$n]}"; done
col() { awk -v n="$1" -v c="$2" '$1 == n { print $c }' "$work/rows" | median -; }

# System calls per request under strace (a fresh process each, after one warm-up batch).
syscalls() { # NAME
    local p spid
    p=$(free_port)
    GLIBC_TUNABLES=${envs[$1]} strace -f -c -o "$work/strace-$1" -e trace=mmap,munmap,brk,madvise,mprotect \
        "${bins[$1]}" --config "$work/config.yaml" --listen "127.0.0.1:$p" --threads 1 >/dev/null 2>&1 &
    spid=$!
    bench_track "$spid"
    wait_http "http://127.0.0.1:$p/healthz" "$spid" || bench_die "lfsgate under strace did not start"
    for _ in $(seq "$calls"); do post "$p" >/dev/null || bench_die "a batch under strace failed"; done
    # strace passes no SIGINT on to the command it started: stop lfsgate itself (its child)
    kill -TERM "$(pgrep -P "$spid")"
    wait "$spid" 2>/dev/null || true
    bench_untrack "$spid"
    # startup costs some calls too: they are spread over the requests, a few hundredths each
    awk -v n="$calls" '$NF ~ /^(mmap|munmap|brk|madvise|mprotect)$/ { c[$NF] = $4 }
        END { printf "mmap %.2f munmap %.2f brk %.2f madvise %.2f mprotect %.2f", c["mmap"] / n, c["munmap"] / n, c["brk"] / n, c["madvise"] / n, c["mprotect"] / n }' "$work/strace-$1"
}
echo "100-object upload batches (answer $(wc -c <"$work/answer.json") bytes), $(nproc) CPUs, lfsgate --threads 1, wrk -t2 -c16 -d$wrk_duration, median of $rounds alternated rounds"
printf '%-8s %10s %14s %12s   %s\n' process "req/s" "ticks/1k req" "faults/req" "calls per request (strace -f -c, $calls sequential batches)"
for n in "${names[@]}"; do
    printf '%-8s %10.0f %14.1f %12.1f   %s\n' "$n" "$(col "$n" 2)" "$(col "$n" 3)" "$(col "$n" 4)" "$(syscalls "$n")"
done
echo "tuned = GLIBC_TUNABLES=$tuned"
