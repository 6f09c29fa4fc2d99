#!/usr/bin/env python3
"""Small Azure Blob client for the e2e tests: talks to Azurite with Shared Key auth
(devstoreaccount1), independently of lfsgate's own signing code.

Commands (ENDPOINT is http://127.0.0.1:PORT/devstoreaccount1):
  mkcontainer ENDPOINT CONTAINER         create a container (ok if it exists)
  list ENDPOINT CONTAINER                one line per blob: "<name> <size>"
  blocks ENDPOINT CONTAINER BLOB         uncommitted blocks: "<decoded id> <size>"
  get ENDPOINT CONTAINER BLOB OUT        download a blob to OUT
  put ENDPOINT CONTAINER BLOB FILE       upload FILE as a block blob
Exit status 0 on success, 1 with a message on stderr otherwise.
"""
import base64
import email.utils
import hashlib
import hmac
import sys
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

ACCOUNT = "devstoreaccount1"
KEY = base64.b64decode(
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
VERSION = "2021-08-06"


def request(method, url, body=b"", headers=None):
    headers = dict(headers or {})
    headers["x-ms-date"] = email.utils.formatdate(usegmt=True)
    headers["x-ms-version"] = VERSION
    if body:
        headers["Content-Length"] = str(len(body))
    if method in ("PUT", "POST"):
        # urllib would add a form Content-Type of its own, outside the signature.
        headers.setdefault("Content-Type", "application/octet-stream")
    u = urllib.parse.urlsplit(url)
    std = ["Content-Encoding", "Content-Language", "Content-Length", "Content-MD5",
           "Content-Type", "Date", "If-Modified-Since", "If-Match", "If-None-Match",
           "If-Unmodified-Since", "Range"]
    lower = {k.lower(): v for k, v in headers.items()}
    lines = [method] + [lower.get(h.lower(), "") for h in std]
    xms = sorted((k.lower(), v.strip()) for k, v in headers.items() if k.lower().startswith("x-ms-"))
    canon_headers = "".join(f"{k}:{v}\n" for k, v in xms)
    resource = f"/{ACCOUNT}{u.path}"
    params = {}
    for k, v in urllib.parse.parse_qsl(u.query, keep_blank_values=True):
        params.setdefault(k.lower(), []).append(v)
    for k in sorted(params):
        resource += f"\n{k}:{','.join(sorted(params[k]))}"
    sts = "\n".join(lines) + "\n" + canon_headers + resource
    sig = base64.b64encode(hmac.new(KEY, sts.encode(), hashlib.sha256).digest()).decode()
    headers["Authorization"] = f"SharedKey {ACCOUNT}:{sig}"
    req = urllib.request.Request(url, data=body if method in ("PUT", "POST") else None,
                                 method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def fail(msg):
    print(msg, file=sys.stderr)
    sys.exit(1)


def main(argv):
    if len(argv) < 3:
        fail(__doc__)
    cmd, endpoint, container = argv[0], argv[1].rstrip("/"), argv[2]
    base = f"{endpoint}/{container}"
    if cmd == "mkcontainer":
        status, body = request("PUT", f"{base}?restype=container")
        if status not in (201, 409):
            fail(f"create container: {status} {body[:300]!r}")
    elif cmd == "list":
        marker = ""
        while True:
            q = "restype=container&comp=list" + (f"&marker={urllib.parse.quote(marker)}" if marker else "")
            status, body = request("GET", f"{base}?{q}")
            if status != 200:
                fail(f"list: {status} {body[:300]!r}")
            root = ET.fromstring(body)
            for b in root.iter("Blob"):
                print(b.findtext("Name"), b.findtext("Properties/Content-Length"))
            marker = root.findtext("NextMarker") or ""
            if not marker:
                break
    elif cmd == "blocks":
        blob = urllib.parse.quote(argv[3])
        status, body = request("GET", f"{base}/{blob}?comp=blocklist&blocklisttype=uncommitted")
        if status == 404:
            return
        if status != 200:
            fail(f"blocks: {status} {body[:300]!r}")
        for b in ET.fromstring(body).iter("Block"):
            print(base64.b64decode(b.findtext("Name")).decode(errors="replace"), b.findtext("Size"))
    elif cmd == "get":
        status, body = request("GET", f"{base}/{urllib.parse.quote(argv[3])}")
        if status != 200:
            fail(f"get: {status} {body[:300]!r}")
        with open(argv[4], "wb") as f:
            f.write(body)
    elif cmd == "put":
        with open(argv[4], "rb") as f:
            data = f.read()
        status, body = request("PUT", f"{base}/{urllib.parse.quote(argv[3])}", data,
                               {"x-ms-blob-type": "BlockBlob",
                                "Content-Type": "application/octet-stream"})
        if status != 201:
            fail(f"put: {status} {body[:300]!r}")
    else:
        fail(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
