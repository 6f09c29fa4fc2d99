#!/usr/bin/env python3
"""Mixed Git LFS traffic for bench/soak.sh, against one or more lfsgate servers until a
deadline: upload batches of 1 object and download batches of 100 with an RS256 token, small
(1-64 KiB) and 10 MiB uploads (batch, PUT, verify), whole and ranged downloads (every body
checked against its oid or its bytes), batches without a token (401 expected) and GETs of
objects that were never stored (404 expected). Each server gets THREADS threads, each with
its own kept-alive connection (reopened after a connection error, which is counted).

Every answer whose status is not the one expected, every body that does not match and every
connection error counts as unexpected. Writes the counts as JSON to OUT (and every 10 s while
it runs, so a crash leaves something); exits 1 when anything unexpected happened.

Usage: soak_traffic.py SECONDS THREADS TOKEN OUT URL [URL...]
  URL: a repository's LFS endpoint, e.g. http://127.0.0.1:8080/soak/repo.git/info/lfs
"""
import hashlib
import http.client
import json
import os
import random
import sys
import threading
import time
import urllib.parse

LFS = "application/vnd.git-lfs+json"
BIG = 10 * 1048576
KEEP = 2000  # stored objects remembered per server, for downloads
WEIGHTS = [("batch_1_upload", 20), ("batch_100_download", 10), ("put_small", 20),
           ("put_10mib", 2), ("get_full", 15), ("get_range", 15), ("unauthorized", 8),
           ("missing", 8)]

seconds, threads, token, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
urls = sys.argv[5:]
big_base = os.urandom(BIG)
lock = threading.Lock()
counts = {}  # "url kind" -> [ok, unexpected]
examples = []  # the first unexpected answers, for the report
stored = {u: [] for u in urls}  # url -> [(oid, size, first 64 bytes)]


def note(url, kind, ok, detail=""):
    with lock:
        c = counts.setdefault(f"{url} {kind}", [0, 0])
        c[0 if ok else 1] += 1
        if not ok and len(examples) < 20:
            examples.append(f"{url} {kind}: {detail}"[:300])


class Client:
    def __init__(self, url):
        self.url = url
        u = urllib.parse.urlsplit(url)
        self.host, self.port, self.base = u.hostname, u.port, u.path
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        """(status, headers dict, body bytes); raises on a connection error (reopened next)."""
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            self.conn.request(method, path, body=body, headers=headers or {})
            r = self.conn.getresponse()
            data = r.read()
            if r.getheader("connection", "").lower() == "close":
                self.conn.close()
                self.conn = None
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = None
            raise

    def batch(self, operation, objects, auth=True):
        h = {"Accept": LFS, "Content-Type": LFS}
        if auth:
            h["Authorization"] = "Bearer " + token
        body = json.dumps({"operation": operation, "transfers": ["basic"],
                           "objects": [{"oid": o, "size": s} for o, s in objects]})
        return self.request("POST", self.base + "/objects/batch", body, h)

    def action(self, action):
        path = urllib.parse.urlsplit(action["href"])
        target = path.path + ("?" + path.query if path.query else "")
        return target, dict(action.get("header", {}))


def random_oid():
    return os.urandom(32).hex()


def upload(c, data, kind):
    oid, size = hashlib.sha256(data).hexdigest(), len(data)
    st, _, body = c.batch("upload", [(oid, size)])
    if st != 200:
        return note(c.url, kind, False, f"batch {st} {body[:120]!r}")
    actions = json.loads(body)["objects"][0].get("actions", {})
    if "upload" not in actions:
        return note(c.url, kind, False, f"no upload action: {body[:160]!r}")
    path, h = c.action(actions["upload"])
    h["Content-Type"] = "application/octet-stream"
    st, _, body = c.request("PUT", path, data, h)
    if st != 200:
        return note(c.url, kind, False, f"PUT {st} {body[:120]!r}")
    if "verify" in actions:
        path, h = c.action(actions["verify"])
        h.update({"Accept": LFS, "Content-Type": LFS})
        st, _, body = c.request("POST", path, json.dumps({"oid": oid, "size": size}), h)
        if st != 200:
            return note(c.url, kind, False, f"verify {st} {body[:120]!r}")
    with lock:
        s = stored[c.url]
        s.append((oid, size, data[:64]))
        if len(s) > KEEP:
            del s[random.randrange(len(s))]
    note(c.url, kind, True)


def download_action(c, kind):
    with lock:
        s = stored[c.url]
        pick = random.choice(s) if s else None
    if pick is None:
        return None
    oid, size, head = pick
    st, _, body = c.batch("download", [(oid, size)])
    if st != 200:
        note(c.url, kind, False, f"batch {st} {body[:120]!r}")
        return None
    actions = json.loads(body)["objects"][0].get("actions", {})
    if "download" not in actions:
        note(c.url, kind, False, f"no download action: {body[:160]!r}")
        return None
    return oid, size, head, actions["download"]


def one(c, kind):
    if kind == "batch_1_upload":
        st, _, body = c.batch("upload", [(random_oid(), random.randint(1, 1 << 20))])
        ok = st == 200 and "upload" in json.loads(body)["objects"][0].get("actions", {})
        note(c.url, kind, ok, f"{st} {body[:160]!r}")
    elif kind == "batch_100_download":
        with lock:
            known = [(o, s) for o, s, _ in random.sample(stored[c.url], min(50, len(stored[c.url])))]
        objs = known + [(random_oid(), 100) for _ in range(100 - len(known))]
        st, _, body = c.batch("download", objs)
        ok = st == 200 and len(json.loads(body)["objects"]) == 100
        note(c.url, kind, ok, f"{st} {body[:160]!r}")
    elif kind == "put_small":
        upload(c, os.urandom(random.randint(1024, 65536)), kind)
    elif kind == "put_10mib":
        upload(c, os.urandom(16) + big_base[16:], kind)
    elif kind in ("get_full", "get_range"):
        got = download_action(c, kind)
        if got is None:
            return
        oid, size, head, action = got
        path, h = c.action(action)
        if kind == "get_full":
            st, _, body = c.request("GET", path, None, h)
            ok = st == 200 and hashlib.sha256(body).hexdigest() == oid
            note(c.url, kind, ok, f"{st}, {len(body)} bytes")
        else:
            first = random.randrange(min(size, 64))
            last = min(size, 64) - 1
            h["Range"] = f"bytes={first}-{last}"
            st, _, body = c.request("GET", path, None, h)
            ok = st == 206 and body == head[first:last + 1]
            note(c.url, kind, ok, f"{st}, {len(body)} bytes")
    elif kind == "unauthorized":
        st, _, body = c.batch("upload", [(random_oid(), 10)], auth=False)
        note(c.url, kind, st == 401, f"{st} {body[:120]!r}")
    elif kind == "missing":
        st, _, body = c.request("GET", c.base + "/objects/storage/" + random_oid(), None,
                                {"Authorization": "Bearer " + token})
        note(c.url, kind, st == 404, f"{st} {body[:120]!r}")


def worker(url, deadline):
    c = Client(url)
    kinds = [k for k, w in WEIGHTS for _ in range(w)]
    while time.time() < deadline:
        kind = random.choice(kinds)
        try:
            one(c, kind)
        except (OSError, http.client.HTTPException, ValueError, KeyError) as e:
            note(url, kind, False, f"{type(e).__name__}: {e}")


def write():
    with lock:
        doc = {"counts": counts, "examples": examples,
               "requests": sum(a + b for a, b in counts.values()),
               "unexpected": sum(b for _, b in counts.values())}
    with open(out + ".tmp", "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
    os.replace(out + ".tmp", out)
    return doc


deadline = time.time() + seconds
pool = [threading.Thread(target=worker, args=(u, deadline), daemon=True)
        for u in urls for _ in range(threads)]
for t in pool:
    t.start()
while any(t.is_alive() for t in pool):
    time.sleep(min(10, max(0.1, deadline - time.time() + 0.1)))
    write()
doc = write()
sys.exit(1 if doc["unexpected"] else 0)
