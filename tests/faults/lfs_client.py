#!/usr/bin/env python3
"""The LFS client of the fault-injection suite (tests/faults/): uploads many objects at once
while the test breaks something, records what the server told it, and checks afterwards what
the server serves.

  lfs_client.py upload LFS_URL OUT_JSONL --count N --min BYTES --max BYTES [--seed S]
                [--transfer basic|multipart-basic] [--threads T]
      Makes N random objects (sizes uniform in [min, max]) and uploads them on T threads as
      git-lfs does: batch, then the upload (PUT, or parts + commit for multipart-basic), then
      verify. Appends one JSON line per object to OUT_JSONL as soon as it is known:
      {"oid", "size", "phase" (the last step reached: batch, upload, commit, verify, done),
      "stored" (true only when every step answered 2xx), "status", "error"}.
      With --until-refused a thread stops at its first batch that got no answer (the server
      was killed). Exits 0 whatever the server did: failures are the point.
  lfs_client.py check LFS_URL OIDS_FILE OUT_JSON
      OIDS_FILE: lines "oid size reported" (reported: 1 when an upload was told it was
      stored). Asks for every object in download batches of 100, downloads each one offered
      and hashes it. Writes {"checked", "visible", "intact", "corrupt": [...],
      "lost": [reported oids not offered or not intact]} and exits 1 when corrupt or lost is
      not empty.
  lfs_client.py scan-local STORE_DIR OUT_JSON [--names-only]
      Walks a local store: every file must be named by a valid oid and hash to it (with
      --names-only: only the names are checked, which is fast). Writes
      {"objects", "bytes", "blocks_bytes" (allocated), "corrupt": [...], "stray": [...]}
      and exits 1 when corrupt or stray (a temporary file, anything else) is not empty.
"""
import argparse
import base64
import hashlib
import http.client
import json
import os
import random
import sys
import threading
import urllib.error
import urllib.request

MEDIA = "application/vnd.git-lfs+json"
TIMEOUT = 60


def send(method, url, body=None, headers=None):
    """Returns (status, body); status 0 and the error text when no answer came."""
    req = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        try:
            return e.code, e.read()
        except (OSError, http.client.HTTPException) as e2:
            return e.code, str(e2).encode()
    except (OSError, http.client.HTTPException, urllib.error.URLError) as e:
        return 0, repr(e).encode()


def batch(lfs_url, op, objects, transfers):
    body = json.dumps({"operation": op, "transfers": transfers,
                       "ref": {"name": "refs/heads/main"}, "objects": objects,
                       "hash_algo": "sha256"}).encode()
    return send("POST", lfs_url.rstrip("/") + "/objects/batch", body,
                {"Accept": MEDIA, "Content-Type": MEDIA})


def action(act, default_method, body):
    method = act.get("method", default_method)
    if body is None and act.get("body") is not None:
        body = act["body"].encode()
    if body is None:
        body = b""
    return send(method, act["href"], body, act.get("header") or {})


def upload_one(lfs_url, data, transfer):
    oid = hashlib.sha256(data).hexdigest()
    rec = {"oid": oid, "size": len(data), "phase": "batch", "stored": False, "status": 0,
           "error": ""}
    transfers = [transfer] if transfer == "basic" else [transfer, "basic"]
    st, body = batch(lfs_url, "upload", [{"oid": oid, "size": len(data)}], transfers)
    rec["status"] = st
    if st != 200:
        rec["error"] = body[:300].decode("utf-8", "replace")
        return rec
    o = json.loads(body)["objects"][0]
    if "error" in o:
        rec["error"] = json.dumps(o["error"])
        return rec
    acts = o.get("actions") or {}
    rec["phase"] = "upload"
    if "upload" in acts:
        st, body = action(acts["upload"], "PUT", data)
    for part in acts.get("parts", []):
        pos = part.get("pos", 0)
        chunk = data[pos:pos + part.get("size", len(data) - pos)]
        h = dict(part.get("header") or {})
        if part.get("want_digest") == "contentMD5":
            h["Content-MD5"] = base64.b64encode(hashlib.md5(chunk).digest()).decode()
        st, body = send(part.get("method", "PUT"), part["href"], chunk, h)
        if not 200 <= st < 300:
            break
    if acts and not 200 <= st < 300:
        rec["status"], rec["error"] = st, body[:300].decode("utf-8", "replace")
        return rec
    if "commit" in acts:
        rec["phase"] = "commit"
        st, body = action(acts["commit"], "POST", None)
        if not 200 <= st < 300:
            rec["status"], rec["error"] = st, body[:300].decode("utf-8", "replace")
            return rec
    if "verify" in acts:
        rec["phase"] = "verify"
        h = dict(acts["verify"].get("header") or {})
        h.setdefault("Content-Type", MEDIA)
        h.setdefault("Accept", MEDIA)
        st, body = send("POST", acts["verify"]["href"],
                        json.dumps({"oid": oid, "size": len(data)}).encode(), h)
        if st != 200:
            rec["status"], rec["error"] = st, body[:300].decode("utf-8", "replace")
            return rec
    rec["phase"], rec["stored"], rec["status"] = "done", True, 200
    return rec


def cmd_upload(a):
    rnd = random.Random(a.seed)
    sizes = [rnd.randint(a.min, a.max) for _ in range(a.count)]
    lock = threading.Lock()
    todo = list(enumerate(sizes))

    def worker():
        while True:
            with lock:
                if not todo:
                    return
                i, size = todo.pop(0)
            data = os.urandom(size)
            rec = upload_one(a.lfs_url, data, a.transfer)
            with lock, open(a.out, "a") as f:
                f.write(json.dumps(rec) + "\n")
            if a.until_refused and rec["status"] == 0 and rec["phase"] == "batch":
                return  # the server is gone: this thread is done

    threads = [threading.Thread(target=worker) for _ in range(a.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def cmd_check(a):
    want = []
    with open(a.oids) as f:
        for line in f:
            oid, size, reported = line.split()
            want.append((oid, int(size), reported == "1"))
    res = {"checked": 0, "visible": 0, "intact": 0, "corrupt": [], "lost": [], "errors": []}
    for i in range(0, len(want), 100):
        chunk = want[i:i + 100]
        st, body = batch(a.lfs_url, "download", [{"oid": o, "size": s} for o, s, _ in chunk],
                         ["basic"])
        if st != 200:
            res["errors"].append(f"download batch answered {st}: {body[:200]!r}")
            continue
        objs = {o["oid"]: o for o in json.loads(body)["objects"]}
        for oid, size, reported in chunk:
            res["checked"] += 1
            o = objs.get(oid, {})
            dl = (o.get("actions") or {}).get("download")
            if dl is None:
                if reported:
                    res["lost"].append(oid)
                continue
            res["visible"] += 1
            st, data = send("GET", dl["href"], None, dl.get("header") or {})
            if st == 200 and hashlib.sha256(data).hexdigest() == oid and len(data) == size:
                res["intact"] += 1
            else:
                res["corrupt"].append(f"{oid}: GET {st}, {len(data)} bytes")
                if reported:
                    res["lost"].append(oid)
    with open(a.out, "w") as f:
        json.dump(res, f)
    sys.exit(1 if res["corrupt"] or res["lost"] or res["errors"] else 0)


def cmd_scan_local(a):
    res = {"objects": 0, "bytes": 0, "blocks_bytes": 0, "corrupt": [], "stray": []}
    for dirpath, _, files in os.walk(a.store):
        for name in files:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            res["blocks_bytes"] += st.st_blocks * 512
            if len(name) != 64 or any(c not in "0123456789abcdef" for c in name):
                res["stray"].append(os.path.relpath(path, a.store))
                continue
            res["objects"] += 1
            res["bytes"] += st.st_size
            if a.names_only:
                continue
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            if h.hexdigest() != name:
                res["corrupt"].append(os.path.relpath(path, a.store))
    with open(a.out, "w") as f:
        json.dump(res, f)
    sys.exit(1 if res["corrupt"] or res["stray"] else 0)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("upload")
    u.add_argument("lfs_url")
    u.add_argument("out")
    u.add_argument("--count", type=int, default=8)
    u.add_argument("--min", type=int, default=1000)
    u.add_argument("--max", type=int, default=1 << 20)
    u.add_argument("--seed", type=int, default=None)
    u.add_argument("--threads", type=int, default=4)
    u.add_argument("--transfer", default="basic")
    u.add_argument("--until-refused", action="store_true",
                   help="a thread stops at its first batch that gets no answer")
    c = sub.add_parser("check")
    c.add_argument("lfs_url")
    c.add_argument("oids")
    c.add_argument("out")
    s = sub.add_parser("scan-local")
    s.add_argument("store")
    s.add_argument("out")
    s.add_argument("--names-only", action="store_true")
    a = ap.parse_args()
    {"upload": cmd_upload, "check": cmd_check, "scan-local": cmd_scan_local}[a.cmd](a)


if __name__ == "__main__":
    main()
