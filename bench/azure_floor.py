#!/usr/bin/env python3
"""The store's own floor for the Azure batch benchmarks: RUNS rounds of N concurrent
Shared Key HEADs of absent blobs sent straight to Azurite (or through the delay proxy) on
127.0.0.1:PORT, one thread and one kept-alive connection per request; the threads are
started and have signed their request before the clock starts, then are released at once
(the first round, which opens the connections, is not counted). Prints one line per N:
  store floor: N concurrent HEADs straight to Azurite: median M ms
or, with --raw, "N M".

Usage: azure_floor.py [--raw] PORT RUNS N...
"""
import base64
import email.utils
import hashlib
import hmac
import http.client
import os
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
import azurite as A  # noqa: E402

args = sys.argv[1:]
raw = args[:1] == ["--raw"]
if raw:
    args = args[1:]
port, runs, sizes = int(args[0]), int(args[1]), [int(n) for n in args[2:]]


def head(conn, i, out, start):
    path = f"/devstoreaccount1/bench/floor/{i:064x}"
    h = {"x-ms-date": email.utils.formatdate(usegmt=True), "x-ms-version": A.VERSION}
    sts = "HEAD\n" + "\n" * 11 + "".join(f"{k}:{v}\n" for k, v in sorted(h.items())) + f"/{A.ACCOUNT}{path}"
    h["Authorization"] = "SharedKey %s:%s" % (A.ACCOUNT, base64.b64encode(
        hmac.new(A.KEY, sts.encode(), hashlib.sha256).digest()).decode())
    start.wait()
    conn.request("HEAD", path, headers=h)
    r = conn.getresponse()
    r.read()
    out[i] = r.status


for n in sizes:
    conns = [http.client.HTTPConnection("127.0.0.1", port) for _ in range(n)]
    times = []
    for k in range(runs + 1):
        out = [None] * n
        start = threading.Barrier(n + 1)
        ts = [threading.Thread(target=head, args=(conns[i], i, out, start)) for i in range(n)]
        for x in ts:  # started and signed before the clock starts
            x.start()
        start.wait()
        t = time.perf_counter()
        for x in ts:
            x.join()
        if k > 0:  # the first round opens the connections
            times.append((time.perf_counter() - t) * 1000)
        if set(out) != {404}:
            sys.exit(f"store floor: expected 404 for every HEAD, got {sorted(set(map(str, out)))}")
    for c in conns:
        c.close()
    m = statistics.median(times)
    print(f"{n} {m:.3f}" if raw else f"store floor: {n:3d} concurrent HEADs straight to Azurite: median {m:7.2f} ms")
