#!/usr/bin/env python3
"""A misbehaving object store on loopback, for tests/faults/test_badstore.sh: lfsgate's Azure
backend is pointed at it (BlobEndpoint) and must turn each misbehaviour into a bounded error
that names the store.

  bad_store.py MODE [--upstream URL]

Prints its port on the first line of stdout, then serves until killed. MODE:
  hang     accepts, reads the request, never answers
  slow     answers a HEAD/GET one byte per second
  reset    HEAD: a 4 MiB blob; GET: the asked length as Content-Length, 1 MiB of it, then a
           TCP reset
  badxml   List Blobs and Get Block List: 200 with truncated XML; HEAD: a 5-byte blob
  flaky    one request in three (at random) answers 500; the others are forwarded to
           --upstream (Azurite)
"""
import argparse
import http.client
import random
import socket
import struct
import sys
import threading
import time
import urllib.parse

BLOB = 4 << 20


def read_head(conn):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None, None, b""
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    method, target = lines[0].split(" ")[:2]
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0"))
    while len(rest) < n:
        chunk = conn.recv(65536)
        if not chunk:
            break
        rest += chunk
    return (method, target, headers), headers, rest


def blob_headers(length, status="200 OK"):
    return (f"HTTP/1.1 {status}\r\nContent-Length: {length}\r\nContent-Type: application/octet-stream\r\n"
            "ETag: \"0x1\"\r\nLast-Modified: Sat, 05 Dec 2026 12:00:00 GMT\r\nx-ms-blob-type: BlockBlob\r\n"
            "x-ms-version: 2021-08-06\r\n\r\n").encode()


def asked_range(headers):
    r = headers.get("x-ms-range") or headers.get("range") or ""
    if r.startswith("bytes="):
        a, _, b = r[6:].partition("-")
        return int(a), (int(b) if b else BLOB - 1)
    return 0, BLOB - 1


def reset(conn):
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


class Modes:
    def __init__(self, upstream):
        self.random = random.Random(18)
        self.lock = threading.Lock()
        self.upstream = upstream

    def hang(self, conn, req, headers, body):
        time.sleep(3600)

    def slow(self, conn, req, headers, body):
        for b in blob_headers(BLOB) + b"x" * BLOB:
            conn.sendall(bytes([b]))
            time.sleep(1)

    def reset(self, conn, req, headers, body):
        method = req[0]
        if method == "HEAD":
            conn.sendall(blob_headers(BLOB))
            return True
        a, b = asked_range(headers)
        n = b - a + 1
        conn.sendall(blob_headers(n, "206 Partial Content" if n != BLOB else "200 OK"))
        conn.sendall(b"r" * min(n // 2, 1 << 20))
        time.sleep(0.2)
        reset(conn)
        return False

    def badxml(self, conn, req, headers, body):
        method, target = req[0], req[1]
        if method == "HEAD":
            conn.sendall(blob_headers(5))
            return True
        xml = (b'<?xml version="1.0" encoding="utf-8"?><EnumerationResults><Blobs><Blob><Name>p/org/'
               b'repo/0000<Properties><Content-Length>12')
        conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: {len(xml)}\r\n\r\n"
                     .encode() + xml)
        return True

    def flaky(self, conn, req, headers, body):
        with self.lock:
            fail = self.random.random() < 1 / 3
        if fail:
            msg = b"<?xml version=\"1.0\"?><Error><Code>InternalError</Code></Error>"
            conn.sendall(b"HTTP/1.1 500 Server Error\r\nContent-Type: application/xml\r\n"
                         + f"Content-Length: {len(msg)}\r\n\r\n".encode() + msg)
            return True
        u = urllib.parse.urlsplit(self.upstream)
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        fwd = {k: v for k, v in headers.items() if k not in ("host", "connection")}
        c.request(req[0], req[1], body=body if body else None, headers=fwd)
        r = c.getresponse()
        data = r.read()
        out = f"HTTP/1.1 {r.status} {r.reason}\r\n".encode()
        for k, v in r.getheaders():
            if k.lower() in ("transfer-encoding", "connection", "content-length"):
                continue
            out += f"{k}: {v}\r\n".encode()
        length = r.getheader("content-length") if req[0] == "HEAD" else str(len(data))
        if length is not None:
            out += f"Content-Length: {length}\r\n".encode()
        conn.sendall(out + b"\r\n" + (b"" if req[0] == "HEAD" else data))
        c.close()
        return True


def serve_conn(conn, handler):
    try:
        while True:
            req, headers, body = read_head(conn)
            if req is None:
                break
            print(req[0], req[1], file=sys.stderr, flush=True)  # what was asked, for the test
            if not handler(conn, req, headers, body):
                return
    except OSError:
        pass
    finally:
        try:
            conn.close()
        except OSError:
            pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["hang", "slow", "reset", "badxml", "flaky"])
    ap.add_argument("--upstream")
    a = ap.parse_args()
    handler = getattr(Modes(a.upstream), a.mode)
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(512)
    print(srv.getsockname()[1], flush=True)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve_conn, args=(conn, handler), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
