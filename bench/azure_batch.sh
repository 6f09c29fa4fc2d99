#!/usr/bin/env bash
# Batch latency with the Azure backend (basic_external) against Azurite on loopback: the
# median (and p90) of RUNS sequential upload batches of 100 objects next to batches of 1
# object, alternated (fresh random oids, not stored), the ratio of the medians (target:
# under 3), and the rate of 1-object batches with wrk. What Azurite receives: a 1-object batch
# costs one Shared Key HEAD; the 100-object batch, in this new repository, one List Blobs
# (the listing covers the repository, so no object costs a HEAD); each granted object costs a
# SAS signature. bench/run.sh has the rows of a 2000-object repository, where a batch costs a
# HEAD per object. Every answer is checked: a per-object error fails the script. For scale it
# also times RUNS rounds of 100 concurrent signed HEADs sent straight to Azurite by a thread
# per request: Azurite (one Node.js process) serves requests one after another, ~1.5 ms
# each, so on loopback a 100-object batch cannot be faster than that floor, whatever the
# client does. LATENCY_MS puts a delay proxy between lfsgate and Azurite that holds every
# answer that long (a network round trip to a real store); the floor is then measured
# through it too. Azurite (npm, tests/e2e) and lfsgate are started here on free loopback
# ports and stopped by their pids. Helpers: bench/lib.sh, azure_floor.py, azure_latency.py,
# delay_proxy.py.
# Usage: bench/azure_batch.sh [LFSGATE_BIN]     (default: builds build-release)
# Environment: RUNS (30), THREADS (lfsgate worker threads, 2), DURATION (wrk, 5s),
#   CONNECTIONS (wrk, 16), LATENCY_MS (0).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
runs=${RUNS:-30}
threads=${THREADS:-2}
wrk_duration=${DURATION:-5s}
wrk_conns=${CONNECTIONS:-16}
wrk_threads=2
latency=${LATENCY_MS:-0}
bench_need_tools wrk curl python3
bench_build "${1:-}"
bench_workdir

start_azurite
store_port=$az_port
if [ "$latency" != 0 ]; then
    start_delay_proxy "$az_port" "$latency"
    store_port=$proxy_port
fi
endpoint=http://127.0.0.1:$store_port/devstoreaccount1

echo "store: Azurite on loopback, answers delayed by ${latency} ms; lfsgate --threads $threads"
python3 bench/azure_floor.py "$store_port" "$runs" 1 100

azure_config "$work/config.yaml" "$endpoint"
start_lfsgate lfsgate "$work/config.yaml" --threads "$threads"
url=http://127.0.0.1:$started_port/org/repo.git/info/lfs/objects/batch

python3 bench/azure_latency.py "$url" "$runs"

echo '{"operation": "upload", "objects": [{"oid": "00000000000000000000000000000000000000000000000000000000000000aa", "size": 5}]}' >"$work/body.json"
wrk_lua "$work/post.lua" "$work/body.json"
echo "1-object upload batches with wrk -t2 -c$wrk_conns -d$wrk_duration (lfsgate --threads $threads):"
wrk_strict=1 # a non-2xx answer, a per-object error or a socket error fails the script
rate=$(bench_wrk azure "$url" "$work/post.lua")
grep -E "Latency|Non-2xx|Socket errors" "$work/wrk-azure.out" || true
echo "Requests/sec: $rate"
