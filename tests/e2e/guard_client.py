#!/usr/bin/env python3
"""Raw HTTP/1.1 scenarios for tests/e2e/test_guard.sh (the receive guard, server/guard.c).

curl cannot send two Content-Length headers, hold a body half-sent or trickle it, so these
talk to the server over plain sockets. Each scenario prints one JSON line with what it saw
and exits 0; the shell test asserts on it.

usage: guard_client.py PORT SCENARIO [ARGS...]
  framing                      ambiguous framings, one per connection (and one pipelined)
  budget OID                   hold an 800 kB body open, try a second one, then finish it
  slow OID SECONDS             trickle a body at 10 bytes/s; report when the server cut it
  flood PATH CONNECTIONS MIB   CONNECTIONS bodies of MIB MiB at once to PATH; statuses
"""
import json
import socket
import sys
import threading
import time

PORT = int(sys.argv[1])


def connect():
    s = socket.create_connection(("127.0.0.1", PORT))
    s.settimeout(10)
    return s


def read_all(s, timeout=5.0):
    """Everything until the server closes (or the timeout); (bytes, closed)."""
    s.settimeout(timeout)
    out = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                return out, True
            out += d
    except (socket.timeout, ConnectionResetError):
        return out, False


def responses(raw):
    """[(status, headers dict, body bytes)] of the responses in raw (Content-Length or
    chunked bodies)."""
    res = []
    while raw:
        head, sep, rest = raw.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            hdrs[k.strip().lower().decode()] = v.strip().decode("latin-1")
        if "content-length" in hdrs:
            n = int(hdrs["content-length"])
            body, raw = rest[:n], rest[n:]
        elif hdrs.get("transfer-encoding") == "chunked":
            body = b""
            while True:
                size_line, _, rest = rest.partition(b"\r\n")
                n = int(size_line, 16)
                body += rest[:n]
                rest = rest[n + 2:]
                if n == 0:
                    break
            raw = rest
        else:
            body, raw = rest, b""
        res.append((status, hdrs, body))
    return res


def summary(raw, closed):
    out = []
    for status, hdrs, body in responses(raw):
        try:
            doc = json.loads(body.decode("utf-8"))
        except ValueError:
            doc = None
        out.append({"status": status, "retry_after": hdrs.get("retry-after"),
                    "content_type": hdrs.get("content-type"), "json": doc})
    return {"responses": out, "closed": closed}


def put_head(oid, size, extra=b""):
    return (b"PUT /guard/repo.git/info/lfs/objects/storage/" + oid.encode() +
            b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " + str(size).encode() +
            b"\r\n" + extra + b"\r\n")


def framing():
    cases = {
        "two_content_length": b"PUT /guard/repo.git/info/lfs/objects/storage/" + b"a" * 64 +
        b" HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 10\r\n\r\nhelloGET "
        b"/healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        "same_content_length_twice": b"POST /guard/repo.git/info/lfs/objects/batch HTTP/1.1\r\n"
        b"Host: x\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\n{}",
        "length_and_chunked": b"POST /guard/repo.git/info/lfs/objects/batch HTTP/1.1\r\nHost: x"
        b"\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "two_transfer_encodings": b"POST /guard/repo.git/info/lfs/objects/batch HTTP/1.1\r\n"
        b"Host: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "pipelined_after_good": b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nPOST /healthz HTTP/1.1"
        b"\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx",
        # the head alone after a good request, asking for 100 Continue: h2o re-arms its
        # reader the same way as after sending "100 Continue"
        "pipelined_expect_after_good": b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nPUT /guard/repo"
        b".git/info/lfs/objects/storage/" + b"a" * 64 + b" HTTP/1.1\r\nHost: x\r\nExpect: "
        b"100-continue\r\nContent-Length: 5\r\nContent-Length: 9\r\n\r\n",
        "good_chunked": b"POST /guard/repo.git/info/lfs/objects/batch HTTP/1.1\r\nHost: x\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
    }
    out = {}
    for name, raw in cases.items():
        s = connect()
        s.sendall(raw)
        out[name] = summary(*read_all(s))
        s.close()
    print(json.dumps(out))


def budget(oid):
    size = 800_000
    first = connect()
    first.sendall(put_head(oid, size) + b"x" * 1000)
    time.sleep(0.3)
    second = connect()
    second.sendall(put_head(oid, size) + b"x" * 1000)
    refused = summary(*read_all(second))
    second.close()
    small = connect()  # a small body still fits the budget
    small.sendall(b"POST /guard/repo.git/info/lfs/objects/batch HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Length: 2\r\nConnection: close\r\n\r\n{}")
    small_res = summary(*read_all(small))
    small.close()
    first.sendall(b"x" * (size - 1000) + b"")
    first_res = summary(*read_all(first, timeout=2))
    first.close()
    time.sleep(1.2)  # two sweeps: the finished body no longer counts
    third = connect()
    third.sendall(put_head(oid, size, b"Connection: close\r\n") + b"x" * size)
    third_res = summary(*read_all(third))
    third.close()
    print(json.dumps({"refused": refused, "small": small_res, "first": first_res,
                      "after": third_res}))


def slow(oid, seconds):
    s = connect()
    s.sendall(put_head(oid, 100_000))
    s.settimeout(0.1)
    start = time.time()
    cut_after = None
    while time.time() - start < float(seconds):
        try:
            s.sendall(b"y" * 10)
            d = s.recv(1000)
            if d == b"":
                cut_after = time.time() - start
                break
        except socket.timeout:
            pass
        except (BrokenPipeError, ConnectionResetError):
            cut_after = time.time() - start
            break
        time.sleep(0.1)
    s.close()
    print(json.dumps({"cut_after": cut_after}))


def flood(path, connections, mib):
    body = b"z" * (int(mib) << 20)
    results = []

    def one():
        try:
            s = connect()
            s.sendall(b"PUT " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                      b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n")
            s.sendall(body)
            res = summary(*read_all(s, timeout=30))
            results.append(res["responses"][0]["status"] if res["responses"] else 0)
            s.close()
        except OSError as e:
            results.append(str(e))

    threads = [threading.Thread(target=one) for _ in range(int(connections))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps({"statuses": sorted(map(str, results))}))


{"framing": framing, "budget": budget, "slow": slow, "flood": flood}[sys.argv[2]](*sys.argv[3:])
