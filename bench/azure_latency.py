#!/usr/bin/env python3
"""Latency of sequential upload batches of 1 and of 100 objects through lfsgate (any
backend; made for basic_external + Azure), on one kept-alive connection: one warm-up batch
of each size (it opens lfsgate's connections to the store), then RUNS batches of each size,
alternating 1 and 100 so that noise hits both alike. Every batch names fresh random oids, so
nothing can be answered from a cache. What the store receives depends on the repository, not
on this script: with the Azure backend a 1-object batch costs one HEAD; a batch of 8 objects
or more first lists the repository (one List Blobs), which in a new or small repository
answers every object, so no HEAD follows; only in a repository larger than the listing
reaches does every object cost a HEAD (sent concurrently). Each answer must be a 200 with an
upload action for every object (a per-object error fails the run).

Writes the latencies (ms, one a line) to OUT.1 and OUT.100 (appending) when OUT is given;
prints the median and p90 of each size and the ratio of the medians.

Usage: azure_latency.py URL RUNS [OUT]
"""
import http.client
import json
import os
import statistics
import sys
import time
import urllib.parse

url, runs = sys.argv[1], int(sys.argv[2])
out = sys.argv[3] if len(sys.argv) > 3 else None
u = urllib.parse.urlsplit(url)
conn = http.client.HTTPConnection(u.hostname, u.port)
hdr = {"Accept": "application/vnd.git-lfs+json", "Content-Type": "application/vnd.git-lfs+json"}


def batch(n):
    body = json.dumps({"operation": "upload", "objects": [
        {"oid": os.urandom(32).hex(), "size": 1000 + i} for i in range(n)]})
    t = time.perf_counter()
    conn.request("POST", u.path, body, hdr)
    r = conn.getresponse()
    data = r.read()
    dt = (time.perf_counter() - t) * 1000
    try:
        d = json.loads(data)
        ok = r.status == 200 and len(d["objects"]) == n and all("upload" in o["actions"] for o in d["objects"])
    except (ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        sys.exit(f"{n}-object upload batch: expected 200 with an upload action per object, "
                 f"got {r.status}: {data[:300]!r}")
    return dt


for n in (1, 100):
    batch(n)
res = {1: [], 100: []}
for _ in range(runs):
    for n in (1, 100):
        res[n].append(batch(n))
for n in (1, 100):
    xs = sorted(res[n])
    if out:
        with open(f"{out}.{n}", "a") as f:
            f.writelines(f"{x:.3f}\n" for x in xs)
    print(f"{n:3d}-object upload batch: median {statistics.median(xs):7.2f} ms, "
          f"p90 {xs[int(0.9 * (len(xs) - 1))]:7.2f} ms ({runs} runs)")
print(f"ratio 100/1 (medians): {statistics.median(res[100]) / statistics.median(res[1]):.2f} (target < 3)")
