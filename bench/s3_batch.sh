#!/usr/bin/env bash
# Batch latency with the S3 backend (basic_external) against tests/fakes/s3_fake.py, the
# SigV4-checking S3 stand-in, on loopback: the median (and p90) of RUNS sequential upload
# batches of 100 objects next to batches of 1 object, alternated (fresh random oids, not
# stored, so every object costs one SigV4-signed HEAD to the store and one presigned PUT URL;
# the HEADs of a batch go out at once) and the ratio of the medians (bench/azure_latency.py,
# which works for any backend), once per LATENCIES entry: the stand-in holds every answer
# that many ms (a network round trip to a real store). Then the rate of 1-object upload
# batches with wrk, with the stand-in answering at once. The stand-in (Python, threaded)
# checks every signature itself, so it is the floor here, not lfsgate. lfsgate and the
# stand-in are started on free loopback ports and stopped by their pids.
# Usage: bench/s3_batch.sh [LFSGATE_BIN]     (default: builds build-release)
# Environment: RUNS (30), THREADS (lfsgate worker threads, 2), LATENCIES ("0 20"),
#   DURATION (wrk, 5s), CONNECTIONS (wrk, 16).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
runs=${RUNS:-30}
threads=${THREADS:-2}
latencies=${LATENCIES:-0 20}
wrk_duration=${DURATION:-5s}
wrk_conns=${CONNECTIONS:-16}
wrk_threads=2
bench_need_tools wrk python3
bench_build "${1:-}"
bench_workdir
export AWS_ACCESS_KEY_ID=AKIDBENCH AWS_SECRET_ACCESS_KEY=bench-secret AWS_REGION=us-east-1
unset AWS_SESSION_TOKEN AWS_WEB_IDENTITY_TOKEN_FILE AWS_CONTAINER_CREDENTIALS_FULL_URI

# start_s3_lfsgate: lfsgate on the stand-in at s3_url; sets url, srv_pid.
start_s3_lfsgate() {
    external_config "$work/config.yaml" s3 "\
        bucket_name: bench
        path_prefix: bench
        endpoint: $s3_url"
    start_lfsgate lfsgate "$work/config.yaml" --threads "$threads"
    srv_pid=$started_pid
    url=http://127.0.0.1:$started_port/org/repo.git/info/lfs/objects/batch
}

echo "store: s3_fake.py on loopback (SigV4 checked per request); lfsgate --threads $threads, $(nproc) CPUs"
for latency in $latencies; do
    start_s3_fake "s3-$latency" --latency-ms "$latency" # each answer held that long
    start_s3_lfsgate
    echo "answers delayed by $latency ms:"
    python3 bench/azure_latency.py "$url" "$runs"
    if [ "$latency" = 0 ]; then
        echo '{"operation": "upload", "objects": [{"oid": "00000000000000000000000000000000000000000000000000000000000000aa", "size": 5}]}' >"$work/body.json"
        wrk_lua "$work/post.lua" "$work/body.json"
        wrk_strict=0
        rate=$(bench_wrk s3 "$url" "$work/post.lua")
        grep -E "Latency|Non-2xx|Socket errors" "$work/wrk-s3.out" || true
        echo "1-object upload batches with wrk -t2 -c$wrk_conns -d$wrk_duration: $rate requests/s"
    fi
    bench_stop "$srv_pid"
    bench_stop "$s3_pid"
done
