#!/usr/bin/env python3
"""A minimal multipart-basic client (giftless's transfer extension; the stock git-lfs client
does not speak it), for the e2e tests.

  multipart_client.py LFS_URL FILE [--max-parts N] [--bearer TOKEN] [--filename NAME]
                      [--content OTHER_FILE]

Asks LFS_URL/objects/batch to upload FILE with transfers ["multipart-basic", "basic"], then
follows the answer as the spec says: init (if any), each part (PUT by default, the file's
bytes [pos, pos+size), Content-MD5 when want_digest is contentMD5), commit, verify. With
--max-parts N it stops after uploading N parts, as an interrupted upload would. With
--content, the parts carry OTHER_FILE's bytes (a corrupted upload) under FILE's oid and size.
Prints one JSON line: {"transfer", "parts" (parts offered), "uploaded", "committed",
"verified", "actions" (names)} and exits 0; exits 1 with a message when a step fails.
"""
import argparse
import base64
import hashlib
import json
import os
import sys
import urllib.error
import urllib.request

MEDIA = "application/vnd.git-lfs+json"


def send(method, url, body=None, headers=None):
    req = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def fail(msg):
    print(msg, file=sys.stderr)
    sys.exit(1)


def action_request(name, action, default_method, body=None):
    method = action.get("method", default_method)
    if body is None and action.get("body") is not None:
        body = action["body"].encode()
    if body is None and method in ("PUT", "POST"):
        body = b""
    status, resp = send(method, action["href"], body, action.get("header") or {})
    if not 200 <= status < 300:
        fail(f"{name}: {method} answered {status}: {resp[:300]!r}")
    return status


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("lfs_url")
    ap.add_argument("file")
    ap.add_argument("--max-parts", type=int, default=-1)
    ap.add_argument("--bearer")
    ap.add_argument("--filename")
    ap.add_argument("--content")
    a = ap.parse_args()
    with open(a.file, "rb") as f:
        data = f.read()
    oid = hashlib.sha256(data).hexdigest()
    if a.content:
        with open(a.content, "rb") as f:
            data = f.read()
    obj = {"oid": oid, "size": len(data)}
    if a.filename:
        obj["extra"] = {"filename": a.filename}
    headers = {"Accept": MEDIA, "Content-Type": MEDIA}
    if a.bearer:
        headers["Authorization"] = f"Bearer {a.bearer}"
    status, body = send("POST", a.lfs_url.rstrip("/") + "/objects/batch",
                        json.dumps({"operation": "upload",
                                    "transfers": ["multipart-basic", "basic"],
                                    "ref": {"name": "refs/heads/main"},
                                    "objects": [obj], "hash_algo": "sha256"}).encode(),
                        headers)
    if status != 200:
        fail(f"batch: {status} {body[:300]!r}")
    answer = json.loads(body)
    o = answer["objects"][0]
    if "error" in o:
        fail(f"batch object error: {o['error']}")
    actions = o.get("actions") or {}
    result = {"transfer": answer.get("transfer"), "parts": len(actions.get("parts", [])),
              "uploaded": 0, "committed": False, "verified": False,
              "actions": sorted(actions)}
    if not actions:
        print(json.dumps(result))
        return
    if "init" in actions:
        action_request("init", actions["init"], "POST")
    for part in actions.get("parts", []):
        if 0 <= a.max_parts <= result["uploaded"]:
            print(json.dumps(result))
            return
        pos = part.get("pos", 0)
        size = part.get("size", len(data) - pos)
        chunk = data[pos:pos + size]
        h = dict(part.get("header") or {})
        if part.get("want_digest") == "contentMD5":
            h["Content-MD5"] = base64.b64encode(hashlib.md5(chunk).digest()).decode()
        status, resp = send(part.get("method", "PUT"), part["href"], chunk, h)
        if not 200 <= status < 300:
            fail(f"part at {pos}: answered {status}: {resp[:300]!r}")
        result["uploaded"] += 1
    if "commit" in actions:
        action_request("commit", actions["commit"], "POST")
        result["committed"] = True
    if "verify" in actions:
        v = actions["verify"]
        vh = dict(v.get("header") or {})
        vh.setdefault("Content-Type", MEDIA)
        vh.setdefault("Accept", MEDIA)
        status, resp = send("POST", v["href"], json.dumps({"oid": oid, "size": len(data)}).encode(), vh)
        if status != 200:
            fail(f"verify: {status} {resp[:300]!r}")
        result["verified"] = True
    print(json.dumps(result))


if __name__ == "__main__":
    main()
