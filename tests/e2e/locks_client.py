#!/usr/bin/python3
"""Concurrent File Locking API clients for tests/e2e/test_locks.sh and bench/locks.sh.

  locks_client.py race PATH URL [URL...] --clients N
      N clients at once (threads, spread over the URLs in turn) POST {"path": PATH} to
      <URL>/locks; prints one JSON line {"created": [...ids], "conflicts": [...ids named
      by the 409s], "other": [...statuses]}.
  locks_client.py unlock-race ID URL [URL...] --clients N
      N clients at once POST {"force": true} to <URL>/locks/ID/unlock; prints one JSON line
      {"statuses": [...]}.
  locks_client.py fill URL --count N --prefix P
      creates N locks P0000..P{N-1} (16 at a time); exit 1 unless every one got 201.
  locks_client.py time URL --count N [--token T]
      creates N locks then unlocks them, one after the other; prints JSON with the median and
      p90 milliseconds of each.
Every request carries the LFS media type; with --token, an "Authorization: Bearer" header.
"""
import argparse
import concurrent.futures
import json
import statistics
import sys
import threading
import time
import urllib.error
import urllib.request

MEDIA = "application/vnd.git-lfs+json"


def post(url, body, token=None):
    data = json.dumps(body).encode()
    headers = {"Content-Type": MEDIA, "Accept": MEDIA}
    if token:
        headers["Authorization"] = "Bearer " + token
    req = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, {"raw": raw.decode("latin-1")}


def race(args):
    start = threading.Barrier(args.clients)

    def one(i):
        url = args.urls[i % len(args.urls)] + "/locks"
        start.wait()
        return post(url, {"path": args.path, "ref": {"name": "refs/heads/main"}}, args.token)

    with concurrent.futures.ThreadPoolExecutor(args.clients) as ex:
        results = list(ex.map(one, range(args.clients)))
    out = {"created": [], "conflicts": [], "other": []}
    for status, body in results:
        if status == 201:
            out["created"].append(body["lock"]["id"])
        elif status == 409:
            out["conflicts"].append(body.get("lock", {}).get("id"))
        else:
            out["other"].append([status, body])
    print(json.dumps(out))


def unlock_race(args):
    start = threading.Barrier(args.clients)

    def one(i):
        url = "%s/locks/%s/unlock" % (args.urls[i % len(args.urls)], args.id)
        start.wait()
        return post(url, {"force": True}, args.token)[0]

    with concurrent.futures.ThreadPoolExecutor(args.clients) as ex:
        print(json.dumps({"statuses": sorted(ex.map(one, range(args.clients)))}))


def fill(args):
    def one(i):
        return post(args.url + "/locks", {"path": "%s%04d" % (args.prefix, i)}, args.token)[0]

    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        statuses = list(ex.map(one, range(args.count)))
    bad = [s for s in statuses if s != 201]
    if bad:
        print("fill: %d of %d not created: %s" % (len(bad), args.count, sorted(set(bad))), file=sys.stderr)
        sys.exit(1)


def timing(args):
    create, unlock = [], []
    ids = []
    for i in range(args.count):
        t = time.monotonic()
        status, body = post(args.url + "/locks", {"path": "timed/%04d.bin" % i}, args.token)
        create.append((time.monotonic() - t) * 1000)
        if status != 201:
            sys.exit("create %d: %d %s" % (i, status, body))
        ids.append(body["lock"]["id"])
    for lid in ids:
        t = time.monotonic()
        status, body = post(args.url + "/locks/%s/unlock" % lid, {}, args.token)
        unlock.append((time.monotonic() - t) * 1000)
        if status != 200:
            sys.exit("unlock %s: %d %s" % (lid, status, body))

    def summary(v):
        v = sorted(v)
        return {"median_ms": round(statistics.median(v), 2), "p90_ms": round(v[int(len(v) * 0.9) - 1], 2)}

    print(json.dumps({"create": summary(create), "unlock": summary(unlock), "count": args.count}))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("race")
    r.add_argument("path")
    r.add_argument("urls", nargs="+")
    r.add_argument("--clients", type=int, default=20)
    r.add_argument("--token")
    u = sub.add_parser("unlock-race")
    u.add_argument("id")
    u.add_argument("urls", nargs="+")
    u.add_argument("--clients", type=int, default=10)
    u.add_argument("--token")
    f = sub.add_parser("fill")
    f.add_argument("url")
    f.add_argument("--count", type=int, required=True)
    f.add_argument("--prefix", default="many/file")
    f.add_argument("--token")
    t = sub.add_parser("time")
    t.add_argument("url")
    t.add_argument("--count", type=int, default=50)
    t.add_argument("--token")
    args = p.parse_args()
    {"race": race, "unlock-race": unlock_race, "fill": fill, "time": timing}[args.cmd](args)


if __name__ == "__main__":
    main()
