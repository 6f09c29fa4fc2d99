#!/usr/bin/env bash
# Cost of the access and activity logs on the 1-object upload batch rate (issue: production).
# Two measures: wrk req/s with logs on (stdout to a file) and off, alternated ROUNDS times,
# medians; and user-space instructions per request under callgrind (stable on a noisy machine).
# Metrics are always on, so the "off" run still counts them; their cost shows in the
# callgrind profile as lfs_metrics_* (printed at the end).
# Usage: bench/observability_overhead.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
rounds=${1:-5}
bench_need_tools wrk curl bc
bench_build ""
bench_workdir
wrk_threads=2 wrk_conns=16 wrk_duration=4s wrk_strict=0
oid=$(head -c 32 /dev/urandom | sha256sum | cut -c1-64)
printf '{"operation":"upload","transfers":["basic"],"objects":[{"oid":"%s","size":100}]}' "$oid" > "$work/body.json"
cat > "$work/post.lua" <<LUA
local f = io.open("$work/body.json"); local body = f:read("*a"); f:close()
wrk.method = "POST"; wrk.body = body
wrk.headers["Content-Type"] = "application/vnd.git-lfs+json"
wrk.headers["Accept"] = "application/vnd.git-lfs+json"
LUA
config() { # LOGS(true|false)
    cat <<YAML
AUTH_PROVIDERS: [giftless.auth.allow_anon:read_write]
TRANSFER_ADAPTERS:
  basic:
    factory: giftless.transfer.basic_streaming:factory
    options: {storage_options: {path: $work/store}}
PRE_AUTHORIZED_ACTION_PROVIDER: {factory: giftless.auth.jwt:factory, options: {algorithm: HS256, private_key: "0123456789abcdef0123456789abcdef"}}
SERVER: {access_log: $1, activity_log: $1}
YAML
}
config true > "$work/on.yaml"
config false > "$work/off.yaml"
start() { # CONFIG PORT [WRAPPER...]: sets pid
    local cfg=$1 p=$2
    shift 2
    "$@" "$bin" --config "$cfg" --listen "127.0.0.1:$p" >"$work/stdout.log" 2>"$work/stderr.log" &
    pid=$!
    bench_track "$pid"
    wait_http "http://127.0.0.1:$p/healthz" "$pid" || bench_die "server did not start"
}
rate() { # PORT
    bench_wrk batch "http://127.0.0.1:$1/o/r.git/info/lfs/objects/batch" "$work/post.lua"
}
on=() off=()
for _ in $(seq "$rounds"); do
    for mode in on off; do
        p=$(free_port)
        start "$work/$mode.yaml" "$p"
        v=$(rate "$p")
        bench_stop "$pid"
        if [ $mode = on ]; then on+=("$v"); else off+=("$v"); fi
    done
done
m_on=$(printf '%s\n' "${on[@]}" | median -)
m_off=$(printf '%s\n' "${off[@]}" | median -)
printf 'wrk 1-object upload batch, median of %d: logs off %.0f req/s, logs on %.0f req/s, overhead %.1f%%\n' \
    "$rounds" "$m_off" "$m_on" "$(echo "100 * ($m_off - $m_on) / $m_off" | bc -l)"
# Instructions per request under callgrind.
instr() { # MODE
    local p
    p=$(free_port)
    start "$work/$1.yaml" "$p" valgrind --tool=callgrind --callgrind-out-file="$work/cg.$1" -q
    for _ in $(seq "$calls"); do curl -s -XPOST --data-binary @"$work/body.json" "http://127.0.0.1:$p/o/r.git/info/lfs/objects/batch" >/dev/null; done
    kill -INT "$pid"; wait "$pid" 2>/dev/null || true
    bench_untrack "$pid"
    callgrind_annotate --inclusive=yes "$work/cg.$1" 2>/dev/null |
        awk -v n="$calls" '/:worker_main / && !done {gsub(",","",$1); print $1 / n; done = 1}'
}
calls=50
instr on >"$work/i_on"
instr off >"$work/i_off"
i_on=$(cat "$work/i_on")
i_off=$(cat "$work/i_off")
printf 'callgrind, worker thread instructions per request: logs off %.0f, logs on %.0f (+%.1f%%)\n' \
    "$i_off" "$i_on" "$(echo "100 * ($i_on - $i_off) / $i_off" | bc -l)"
callgrind_annotate --inclusive=yes --threshold=100 "$work/cg.on" 2>/dev/null |
    awk -v n="$calls" '/:(lfs_metrics_request|lfs_log_access|lfs_log_activity|lfs_logs_thread_flush) / {
        gsub(",","",$1); for (i = 2; i <= NF; i++) if ($i ~ /:lfs_/) split($i, f, ":")
        printf "  %-24s %7.0f instructions per request\n", f[2], $1 / n }'
