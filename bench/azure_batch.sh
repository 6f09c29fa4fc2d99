#!/usr/bin/env bash
# Batch latency with the Azure backend (basic_external) against Azurite on loopback: the
# median (and p90) of RUNS sequential upload batches of 100 objects next to batches of 1
# object (objects not stored, so every object costs one Shared Key HEAD to the store and one
# SAS signature; the HEADs of a batch go out at once), the ratio of the medians (target:
# under 3), and the rate of 1-object batches with wrk. For scale it also times RUNS rounds
# of 100 concurrent signed HEADs sent straight to Azurite by a thread per request: Azurite
# (one Node.js process) serves requests one after another, ~1.5 ms each, so on loopback a
# 100-object batch cannot be faster than that floor, whatever the client does. LATENCY_MS
# puts a delay proxy between lfsgate and Azurite that holds every answer that long (a
# network round trip to a real store); the floor is then measured through it too.
# Azurite (npm, tests/e2e) and lfsgate are started here on free loopback ports and stopped
# by their pids.
# Usage: bench/azure_batch.sh [LFSGATE_BIN]     (default: builds build-release)
# Environment: RUNS (30), THREADS (lfsgate worker threads, 2), DURATION (wrk, 5s),
#   CONNECTIONS (wrk, 16), LATENCY_MS (0).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bin=${1:-build-release/server/lfsgate}
runs=${RUNS:-30}
threads=${THREADS:-2}
duration=${DURATION:-5s}
conns=${CONNECTIONS:-16}
latency=${LATENCY_MS:-0}
azurite=$root/tests/e2e/node_modules/.bin/azurite-blob
for tool in wrk curl python3; do
    command -v "$tool" >/dev/null || ./scripts/install-deps.sh --with-tests
done
[ -x "$azurite" ] || (cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
if [ ! -x "$bin" ]; then
    [ -d build-release ] || meson setup build-release --buildtype=release -Dtests=disabled >/dev/null
    ninja -C build-release >/dev/null
fi
work=$(mktemp -d)
az_pid=
srv_pid=
proxy_pid=
cleanup() {
    [ -z "$srv_pid" ] || kill "$srv_pid" 2>/dev/null || true
    [ -z "$proxy_pid" ] || kill "$proxy_pid" 2>/dev/null || true
    [ -z "$az_pid" ] || kill "$az_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
    for _ in $(seq 300); do
        python3 -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1', $1)))" && return 0
        sleep 0.1
    done
    echo "nothing listens on port $1" >&2
    return 1
}

az_port=$(free_port)
(cd "$work" && exec "$azurite" --blobHost 127.0.0.1 --blobPort "$az_port" --inMemoryPersistence \
    --disableTelemetry --skipApiVersionCheck --silent) >"$work/azurite.log" 2>&1 </dev/null &
az_pid=$!
wait_port "$az_port"
python3 tests/e2e/azurite.py mkcontainer "http://127.0.0.1:$az_port/devstoreaccount1" bench
store_port=$az_port
if [ "$latency" != 0 ]; then
    # Delay proxy: every chunk from Azurite is passed on LATENCY_MS after it arrived.
    cat >"$work/delay_proxy.py" <<'PY'
import asyncio, sys
listen, upstream, delay = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]) / 1000
async def pipe(reader, writer, lag):
    loop = asyncio.get_running_loop()
    q = asyncio.Queue()
    async def feed():
        while data := await reader.read(65536):
            await q.put((loop.time() + lag, data))
        await q.put((0, b""))
    task = asyncio.create_task(feed())
    try:
        while True:
            due, data = await q.get()
            if not data:
                break
            await asyncio.sleep(max(0, due - loop.time()))
            writer.write(data)
            await writer.drain()
    finally:
        task.cancel()
        writer.close()
async def serve(cr, cw):
    ur, uw = await asyncio.open_connection("127.0.0.1", upstream)
    await asyncio.gather(pipe(cr, uw, 0), pipe(ur, cw, delay), return_exceptions=True)
async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", listen, backlog=1024)
    async with server:
        await server.serve_forever()
asyncio.run(main())
PY
    store_port=$(free_port)
    python3 "$work/delay_proxy.py" "$store_port" "$az_port" "$latency" 2>"$work/proxy.log" &
    proxy_pid=$!
    wait_port "$store_port"
fi
endpoint=http://127.0.0.1:$store_port/devstoreaccount1

echo "store: Azurite on loopback, answers delayed by ${latency} ms; lfsgate --threads $threads"
python3 - "$root/tests/e2e" "$store_port" "$runs" <<'EOF'
# The store's own floor: 100 (and 1) concurrent signed HEADs, a kept-alive connection each.
import base64, email.utils, hashlib, hmac, http.client, statistics, sys, threading, time
sys.path.insert(0, sys.argv[1])
import azurite as A
port, runs = int(sys.argv[2]), int(sys.argv[3])
def head(conn, i, out):
    path = f"/devstoreaccount1/bench/floor/{i:064x}"
    h = {"x-ms-date": email.utils.formatdate(usegmt=True), "x-ms-version": A.VERSION}
    sts = "HEAD\n" + "\n" * 11 + "".join(f"{k}:{v}\n" for k, v in sorted(h.items())) + f"/{A.ACCOUNT}{path}"
    h["Authorization"] = "SharedKey %s:%s" % (A.ACCOUNT, base64.b64encode(
        hmac.new(A.KEY, sts.encode(), hashlib.sha256).digest()).decode())
    conn.request("HEAD", path, headers=h)
    r = conn.getresponse()
    r.read()
    out[i] = r.status
for n in (1, 100):
    conns = [http.client.HTTPConnection("127.0.0.1", port) for _ in range(n)]
    times = []
    for k in range(runs + 1):
        out = [None] * n
        ts = [threading.Thread(target=head, args=(conns[i], i, out)) for i in range(n)]
        t = time.perf_counter()
        for x in ts:
            x.start()
        for x in ts:
            x.join()
        if k > 0:  # the first round opens the connections
            times.append((time.perf_counter() - t) * 1000)
        assert set(out) == {404}, out
    print(f"store floor: {n:3d} concurrent HEADs straight to Azurite: median {statistics.median(times):7.2f} ms")
EOF

port=$(free_port)
cat >"$work/config.yaml" <<YAML
AUTH_PROVIDERS: [giftless.auth.allow_anon:read_write]
TRANSFER_ADAPTERS:
  basic:
    factory: giftless.transfer.basic_external:factory
    options:
      storage_class: giftless.storage.azure:AzureBlobsStorage
      storage_options:
        connection_string: "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=$endpoint;"
        container_name: bench
        path_prefix: bench
YAML
"$bin" --config "$work/config.yaml" --listen "127.0.0.1:$port" --threads "$threads" \
    >"$work/lfsgate.log" 2>&1 </dev/null &
srv_pid=$!
wait_port "$port"
url=http://127.0.0.1:$port/org/repo.git/info/lfs/objects/batch

python3 - "$url" "$runs" <<'EOF'
import http.client, json, statistics, sys, time, urllib.parse
url, runs = sys.argv[1], int(sys.argv[2])
u = urllib.parse.urlsplit(url)
conn = http.client.HTTPConnection(u.hostname, u.port)
hdr = {"Accept": "application/vnd.git-lfs+json", "Content-Type": "application/vnd.git-lfs+json"}
def body(n, seed):
    return json.dumps({"operation": "upload", "objects": [
        {"oid": "%064x" % (seed * 1000 + i), "size": 1000 + i} for i in range(n)]})
def batch(n, seed):
    b = body(n, seed)
    t = time.perf_counter()
    conn.request("POST", u.path, b, hdr)
    r = conn.getresponse()
    data = r.read()
    dt = time.perf_counter() - t
    d = json.loads(data)
    assert r.status == 200 and len(d["objects"]) == n and all("upload" in o["actions"] for o in d["objects"]), data[:300]
    return dt * 1000
for n in (1, 100):  # warm-up: connections to the store are opened once and kept
    batch(n, 0)
res = {}
for n in (1, 100):
    xs = sorted(batch(n, k + 1) for k in range(runs))
    res[n] = xs
    print(f"{n:3d}-object upload batch: median {statistics.median(xs):7.2f} ms, p90 {xs[int(0.9 * (len(xs) - 1))]:7.2f} ms ({runs} runs)")
print(f"ratio 100/1 (medians): {statistics.median(res[100]) / statistics.median(res[1]):.2f} (target < 3)")
EOF

cat >"$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Accept"] = "application/vnd.git-lfs+json"
wrk.headers["Content-Type"] = "application/vnd.git-lfs+json"
wrk.body = '{"operation": "upload", "objects": [{"oid": "00000000000000000000000000000000000000000000000000000000000000aa", "size": 5}]}'
LUA
echo "1-object upload batches with wrk -t2 -c$conns -d$duration (lfsgate --threads $threads):"
wrk -t2 -c"$conns" -d"$duration" -s "$work/post.lua" "$url" | grep -E "Requests/sec|Latency|Non-2xx|Socket errors" || true
