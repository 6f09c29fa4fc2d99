#!/usr/bin/env bash
# Latency of a 100-object download batch through lfsgate with the GCS backend
# (basic_external) against tests/fakes/gcs_fake.py, with --threads 1 and 2. Each object of a
# download batch costs two RSA-2048 signatures (lfsgate's own HEAD, then the client's GET
# URL) and one HEAD to the store; the HEADs of a batch go out at once. Prints, per thread
# count: the median and p90 of sequential batches, and the throughput of CONC concurrent
# clients (batches/s), which is where a second worker thread can help.
# Usage: bench/gcs_batch.sh [LFSGATE_BIN]
# Environment: RUNS (sequential batches, default 30), CONC (concurrent clients, default 4),
#   SECONDS_CONC (duration of the concurrent run, default 5), LATENCY_MS (delay the fake adds
#   to each answer, default 0), THREADS ("1 2").
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
runs=${RUNS:-30}
conc=${CONC:-4}
secs=${SECONDS_CONC:-5}
latency=${LATENCY_MS:-0}
threads_list=${THREADS:-1 2}
key=tests/unit/data/gcs/test_service_account.not-a-test.json
bench_build "${1:-}"
bench_workdir

python3 tests/fakes/gcs_fake.py --key "$key" --bucket bench-bucket --quiet --latency-ms "$latency" \
    >"$work/fake.out" 2>"$work/fake.log" &
bench_track $!
for _ in $(seq 50); do [ -s "$work/fake.out" ] && break; sleep 0.1; done
gcs_port=$(head -n 1 "$work/fake.out")
[ -n "$gcs_port" ] || bench_die "the GCS fake did not start: $(tail -n 3 "$work/fake.log")"

start_server() { # THREADS
    external_config "$work/config.yaml" giftless.storage.google_cloud:GoogleCloudStorage "\
        project_name: bench
        bucket_name: bench-bucket
        account_key_file: $PWD/$key
        endpoint: http://127.0.0.1:$gcs_port"
    start_lfsgate server "$work/config.yaml" --threads "$1"
    port=$started_port
    srv_pid=$started_pid
}

stop_server() { bench_stop "$srv_pid"; }

# The driver: uploads 100 objects once (batch + signed PUTs), then times download batches.
cat >"$work/drive.py" <<'PY'
import hashlib, http.client, json, os, statistics, sys, threading, time, urllib.request
port, runs, conc, secs, upload = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5] == "1"
path = "/bench/repo.git/info/lfs/objects/batch"
hdrs = {"Accept": "application/vnd.git-lfs+json", "Content-Type": "application/vnd.git-lfs+json"}
blobs = [("object %d of the gcs batch bench" % i).encode() * 32 for i in range(100)]
objs = [{"oid": hashlib.sha256(b).hexdigest(), "size": len(b)} for b in blobs]

failures = []

def batch(conn, op):
    """One batch; every answer is checked: a 200 whose objects carry errors is a failure."""
    conn.request("POST", path, json.dumps({"operation": op, "objects": objs}), hdrs)
    r = conn.getresponse()
    body = r.read()
    if r.status != 200:
        raise RuntimeError("batch %s: HTTP %d %s" % (op, r.status, body[:200]))
    d = json.loads(body)
    bad = [o for o in d["objects"] if "error" in o]
    if len(d["objects"]) != len(objs) or bad:
        raise RuntimeError("batch %s: %d objects answered, %d with errors: %s"
                           % (op, len(d["objects"]), len(bad), bad[:1]))
    return d

conn = http.client.HTTPConnection("127.0.0.1", port)
if upload:
    d = batch(conn, "upload")
    for o, b in zip(d["objects"], blobs):
        a = o.get("actions", {}).get("upload")
        if a:
            urllib.request.urlopen(urllib.request.Request(a["href"], data=b, method="PUT")).read()
d = batch(conn, "download")
bad = [o for o in d["objects"] if "actions" not in o]
if bad:
    sys.exit("download batch: %d objects without actions: %s" % (len(bad), bad[0]))
for _ in range(3):
    batch(conn, "download")  # warm the store connections
lat = []
for _ in range(runs):
    t = time.perf_counter()
    batch(conn, "download")
    lat.append((time.perf_counter() - t) * 1000)
lat.sort()
done = [0] * conc
stop = time.perf_counter() + secs
def worker(i):
    c = http.client.HTTPConnection("127.0.0.1", port)
    try:
        while time.perf_counter() < stop:
            batch(c, "download")
            done[i] += 1
    except Exception as e:  # reported by the main thread
        failures.append(str(e))
ts = [threading.Thread(target=worker, args=(i,)) for i in range(conc)]
t0 = time.perf_counter()
for t in ts: t.start()
for t in ts: t.join()
el = time.perf_counter() - t0
if failures:
    sys.exit("%d clients failed; the first: %s" % (len(failures), failures[0]))
print("median %.1f ms  p90 %.1f ms  min %.1f ms  (%d sequential batches)  |  %d clients: %.1f batches/s (%.0f objects/s)"
      % (statistics.median(lat), lat[int(0.9 * (len(lat) - 1))], lat[0], runs, conc, sum(done) / el, 100 * sum(done) / el))
PY

echo "gcs download batch of 100 objects, fake GCS on loopback (+${latency} ms per answer), $(nproc) CPUs"
first=1
for t in $threads_list; do
    start_server "$t"
    printf -- '--threads %s: ' "$t"
    python3 "$work/drive.py" "$port" "$runs" "$conc" "$secs" "$first"
    first=0
    stop_server
done
