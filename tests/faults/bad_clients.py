#!/usr/bin/env python3
"""Bad clients for tests/faults/test_clients.sh, all on one selector loop (500 connections
cost no threads):

  bad_clients.py load PORT --slowloris N --idle N --seconds S OUT_JSON
      N connections sending a request head one byte a second (never finishing it) and N
      keep-alive connections that made one request and then stay idle, for S seconds.
      Writes {"slowloris": {"opened", "closed_by_server", "first_close_s"}, "idle": {...}}.
  bad_clients.py latency URL --n N OUT_JSON
      N sequential GETs of URL on fresh connections; writes {"n", "failed", "p50_ms",
      "p99_ms", "max_ms"}.
  bad_clients.py hold PORT N OUT_JSON
      Opens N connections one after another, each sending a complete request; writes how
      many were answered 200 / 503 / closed without an answer, then keeps the open ones until
      killed (SIGTERM).
"""
import json
import os
import selectors
import signal
import socket
import sys
import time
import urllib.parse


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.setblocking(False)
    return s


def cmd_load(port, n_slow, n_idle, seconds, out):
    sel = selectors.DefaultSelector()
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nUser-Agent: slowloris\r\nX-Pad: " + b"a" * 4096
    conns = []  # [sock, kind, sent, closed_at]
    t0 = time.monotonic()
    for _ in range(n_slow):
        conns.append([connect(port), "slowloris", 0, None])
    for _ in range(n_idle):
        s = connect(port)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        conns.append([s, "idle", 0, None])
    for c in conns:
        sel.register(c[0], selectors.EVENT_READ, c)
    next_byte = time.monotonic()
    while time.monotonic() - t0 < seconds:
        now = time.monotonic()
        if now >= next_byte:
            for c in conns:
                if c[1] == "slowloris" and c[3] is None and c[2] < len(head):
                    try:
                        c[0].send(head[c[2]:c[2] + 1])
                        c[2] += 1
                    except OSError:
                        c[3] = now - t0
            next_byte = now + 1
        for key, _ in sel.select(timeout=max(0.0, next_byte - time.monotonic())):
            c = key.data
            try:
                data = c[0].recv(65536)
            except OSError:
                data = b""
            if not data:
                c[3] = time.monotonic() - t0
                sel.unregister(c[0])
    res = {}
    for kind in ("slowloris", "idle"):
        mine = [c for c in conns if c[1] == kind]
        closed = [c[3] for c in mine if c[3] is not None]
        res[kind] = {"opened": len(mine), "closed_by_server": len(closed),
                     "first_close_s": round(min(closed), 2) if closed else None,
                     "last_close_s": round(max(closed), 2) if closed else None}
    for c in conns:
        c[0].close()
    with open(out, "w") as f:
        json.dump(res, f)


def one_get(u):
    s = socket.create_connection((u.hostname, u.port), timeout=10)
    try:
        s.sendall(f"GET {u.path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return data.startswith(b"HTTP/1.1 200")
    finally:
        s.close()


def cmd_latency(url, n, out):
    u = urllib.parse.urlsplit(url)
    times, failed = [], 0
    for _ in range(n):
        t = time.monotonic()
        try:
            ok = one_get(u)
        except OSError:
            ok = False
        times.append((time.monotonic() - t) * 1000)
        failed += not ok
    times.sort()
    res = {"n": n, "failed": failed, "p50_ms": round(times[n // 2], 2),
           "p99_ms": round(times[min(n - 1, (n * 99) // 100)], 2), "max_ms": round(times[-1], 2)}
    with open(out, "w") as f:
        json.dump(res, f)


def cmd_hold(port, n, out):
    kept, res = [], {"200": 0, "503": 0, "closed": 0, "other": 0}
    for _ in range(n):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            data = s.recv(65536)
        except OSError:
            data = b""
            s = None
        if data.startswith(b"HTTP/1.1 200"):
            res["200"] += 1
            kept.append(s)
        elif data.startswith(b"HTTP/1.1 503"):
            res["503"] += 1
            if b"max_connections" not in data:
                res["other"] += 1
        elif not data:
            res["closed"] += 1
        else:
            res["other"] += 1
    with open(out, "w") as f:
        json.dump(res, f)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    while True:
        time.sleep(1)


def main(argv):
    if argv[0] == "load":
        cmd_load(int(argv[1]), int(argv[3]), int(argv[5]), float(argv[7]), argv[8])
    elif argv[0] == "latency":
        cmd_latency(argv[1], int(argv[3]), argv[4])
    elif argv[0] == "hold":
        cmd_hold(int(argv[1]), int(argv[2]), argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
