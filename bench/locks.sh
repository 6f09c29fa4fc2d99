#!/usr/bin/env bash
# The File Locking API kept in the store (#15), on local storage, the S3 stand-in and Azurite
# (loopback):
#   - lock create and unlock latency: COUNT locks created one after the other, then unlocked
#     one after the other (median and p90 ms, tests/e2e/locks_client.py);
#   - GET locks?limit=1000 of a repository holding 1,000 locks: median of RUNS requests (ms),
#     and the store requests one such listing costs (Azure: counted in the log of a second
#     Azurite started with --debug, whose figures are not timed; local: one directory read
#     plus one read per lock, by construction);
#   - next to them, in the same run and on the same server, a 1-object download batch of an
#     object that is not stored (median of RUNS, ms): the cheapest request that asks the store;
#     on Azure also the same List Blobs sent straight to Azurite (the store's own share).
# lfsgate (anonymous read-write, logs off) and Azurite are started here on free loopback
# ports and stopped by their pids. Helpers: bench/lib.sh, tests/e2e/locks_client.py.
# Usage: bench/locks.sh [LFSGATE_BIN]     (default: builds build-release)
# Environment: COUNT (200), RUNS (20), THREADS (lfsgate worker threads, 2), SKIP_AZURE=1,
# SKIP_S3=1.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
count=${COUNT:-200}
runs=${RUNS:-20}
threads=${THREADS:-2}
client=tests/e2e/locks_client.py
bench_need_tools curl python3
bench_build "${1:-}"
bench_workdir

# ms_of CURL_ARGS...: the request's total time in ms.
ms_of() {
    curl -s -o /dev/null -w '%{time_total}\n' "$@" | awk '{ printf "%.2f\n", $1 * 1000 }'
}

# median_ms RUNS CURL_ARGS...: the median of RUNS timings of the request.
median_ms() {
    local n=$1 i
    shift
    for ((i = 0; i < n; i++)); do ms_of "$@"; done | median -
}

lfs_headers=(-H "Content-Type: application/vnd.git-lfs+json" -H "Accept: application/vnd.git-lfs+json")
batch_body='{"operation": "download", "objects": [{"oid": "00000000000000000000000000000000000000000000000000000000000000aa", "size": 5}]}'

# measure NAME BASE: the figures for the server at BASE (http://.../org).
measure() {
    local name=$1 base=$2 list_ms batch_ms n
    python3 "$client" time "$base/timed.git/info/lfs" --count "$count" >"$work/time-$name.json"
    python3 "$client" fill "$base/many.git/info/lfs" --count 1000 --prefix many/file
    n=$(curl -s "${lfs_headers[@]}" "$base/many.git/info/lfs/locks?limit=1000" |
        python3 -c 'import json, sys; d = json.load(sys.stdin); print(len(d["locks"]), "next_cursor" in d)')
    [ "$n" = "1000 False" ] || bench_die "$name: GET locks of 1,000 locks answered $n locks (expected 1000 False)"
    list_ms=$(median_ms "$runs" "${lfs_headers[@]}" "$base/many.git/info/lfs/locks?limit=1000")
    batch_ms=$(median_ms "$runs" "${lfs_headers[@]}" --data-binary "$batch_body" "$base/many.git/info/lfs/objects/batch")
    python3 - "$name" "$work/time-$name.json" "$list_ms" "$batch_ms" <<'EOF'
import json, sys
name, tfile, list_ms, batch_ms = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
t = json.load(open(tfile))
print("%-6s lock create  median %7.2f ms  p90 %7.2f ms  (%d locks, one after the other)"
      % (name, t["create"]["median_ms"], t["create"]["p90_ms"], t["count"]))
print("%-6s unlock       median %7.2f ms  p90 %7.2f ms" % (name, t["unlock"]["median_ms"], t["unlock"]["p90_ms"]))
print("%-6s GET locks of 1,000 locks  median %7.2f ms" % (name, list_ms))
print("%-6s 1-object batch (not stored)  median %7.2f ms  (GET locks / batch = %.1f)"
      % (name, batch_ms, list_ms / batch_ms if batch_ms else 0))
EOF
}

echo "lfsgate --threads $threads, loopback, logs off; COUNT=$count RUNS=$runs"
local_config "$work/local.yaml" "  - giftless.auth.allow_anon:read_write" "$work/store"
start_lfsgate local "$work/local.yaml" --threads "$threads"
measure local "http://127.0.0.1:$started_port/org"
echo "local  store requests of GET locks of 1,000 locks: 1 directory read + 1000 file reads (by construction)"
bench_stop "$started_pid"

# S3: tests/fakes/s3_fake.py (SigV4 checked per request, in Python: its figures are the
# stand-in's, not S3's); store requests and the most in flight at once from its counters.
if [ "${SKIP_S3:-0}" != 1 ]; then
    export AWS_ACCESS_KEY_ID=AKIDBENCHLOCKS AWS_SECRET_ACCESS_KEY=bench-locks-secret AWS_REGION=us-east-1
    unset AWS_SESSION_TOKEN AWS_WEB_IDENTITY_TOKEN_FILE AWS_CONTAINER_CREDENTIALS_FULL_URI
    start_s3_fake s3
    printf '%s\n' 'AUTH_PROVIDERS: [giftless.auth.allow_anon:read_write]' 'TRANSFER_ADAPTERS:' '  basic:' \
        '    factory: giftless.transfer.basic_streaming:factory' '    options:' '      storage_class: s3' \
        '      storage_options:' '        bucket_name: bench' '        path_prefix: bench' \
        "        endpoint: $s3_url" 'SERVER: {access_log: false, activity_log: false}' >"$work/s3.yaml"
    start_lfsgate s3 "$work/s3.yaml" --threads "$threads"
    measure s3 "http://127.0.0.1:$started_port/org"
    curl -s "$s3_url/_fake/stats" >"$work/s3-before.json"
    curl -s -o /dev/null "${lfs_headers[@]}" "http://127.0.0.1:$started_port/org/many.git/info/lfs/locks?limit=1000"
    curl -s "$s3_url/_fake/stats" >"$work/s3-after.json"
    python3 - "$work/s3-before.json" "$work/s3-after.json" <<'EOF'
import json, sys
b, a = (json.load(open(f)) for f in sys.argv[1:3])
# the second /_fake/stats GET counts itself
lists, own = a.get("list", 0) - b.get("list", 0), 1
print("s3     store requests of GET locks of 1,000 locks: %d (%d ListObjectsV2 + %d GetObject);"
      " most requests in flight at the stand-in over the run: %d"
      % (a["requests"] - b["requests"] - own, lists, a.get("GET", 0) - b.get("GET", 0) - lists - own,
         a["max_inflight"]))
EOF
    bench_stop "$started_pid"
    bench_stop "$s3_pid"
fi

[ "${SKIP_AZURE:-0}" != 1 ] || exit 0
start_azurite
azure_config "$work/azure.yaml" "http://127.0.0.1:$az_port/devstoreaccount1" \
    'SERVER: {access_log: false, activity_log: false}'
start_lfsgate azure "$work/azure.yaml" --threads "$threads"
measure azure "http://127.0.0.1:$started_port/org"
# The store's own share: the same List Blobs with metadata sent straight to Azurite.
(cd tests/e2e && python3 - "http://127.0.0.1:$az_port/devstoreaccount1" "$runs" <<'EOF'
import statistics, sys, time
import azurite
endpoint, runs = sys.argv[1], int(sys.argv[2])
query = "restype=container&comp=list&include=metadata&maxresults=1000&prefix=bench%2Forg%2Fmany%2Flocks%2F"
times, size = [], 0
for _ in range(runs):
    t = time.monotonic()
    status, body = azurite.request("GET", "%s/bench?%s" % (endpoint, query))
    times.append((time.monotonic() - t) * 1000)
    if status != 200:
        sys.exit("List Blobs: %d" % status)
    size = len(body)
print("azure  store floor: that List Blobs straight to Azurite (%d bytes), median %7.2f ms"
      % (size, statistics.median(times)))
EOF
)
bench_stop "$started_pid"
bench_stop "$az_pid"

# Store requests of one listing: a second Azurite, with its debug log, and 1,000 locks.
azurite=$bench_root/tests/e2e/node_modules/.bin/azurite-blob
mkdir -p "$work/azurite-debug"
az_port=$(free_port)
(cd "$work/azurite-debug" && exec "$azurite" --blobHost 127.0.0.1 --blobPort "$az_port" --inMemoryPersistence \
    --disableTelemetry --skipApiVersionCheck --silent --debug "$work/azurite-debug.log") \
    >"$work/azurite-debug.out" 2>&1 </dev/null &
az_pid=$!
bench_track "$az_pid"
wait_port "$az_port" "$az_pid" || bench_die "Azurite (debug) did not start"
python3 tests/e2e/azurite.py mkcontainer "http://127.0.0.1:$az_port/devstoreaccount1" bench
azure_config "$work/azure-debug.yaml" "http://127.0.0.1:$az_port/devstoreaccount1" \
    'SERVER: {access_log: false, activity_log: false}'
start_lfsgate azure-debug "$work/azure-debug.yaml" --threads "$threads"
base=http://127.0.0.1:$started_port/org/many.git/info/lfs
python3 "$client" fill "$base" --count 1000 --prefix many/file
# requests: the requests Azurite has logged, once its log has stopped growing (it is written
# behind the requests) for a second.
requests() {
    local n m
    n=$(grep -c 'BlobStorageContextMiddleware: RequestMethod=' "$work/azurite-debug.log" || true)
    while sleep 1; do
        m=$(grep -c 'BlobStorageContextMiddleware: RequestMethod=' "$work/azurite-debug.log" || true)
        [ "$m" != "$n" ] || break
        n=$m
    done
    echo "$n"
}
before=$(requests)
curl -s -o /dev/null "${lfs_headers[@]}" "$base/locks?limit=1000"
after=$(requests)
echo "azure  store requests of GET locks of 1,000 locks: $((after - before)) (List Blobs with metadata)"
curl -s -o /dev/null "${lfs_headers[@]}" --data-binary '{"path": "one/more.bin"}' "$base/locks"
before=$after
after=$(requests)
echo "azure  store requests of one lock create: $((after - before))"
