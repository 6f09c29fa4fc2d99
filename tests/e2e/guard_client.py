#!/usr/bin/env python3
"""Raw HTTP/1.1 scenarios for tests/e2e/test_guard.sh (the receive guard, server/guard.c).

curl cannot send two Content-Length headers, hold a body half-sent or trickle it, so these
talk to the server over plain sockets. Each scenario prints one JSON line with what it saw
and exits 0; the shell test asserts on it.

usage: guard_client.py PORT SCENARIO [ARGS...]
  framing                      ambiguous framings, one per connection (and one pipelined)
  budget OID                   hold an 800 kB body open, try a second one, then finish it
  slow OID SECONDS [BYTES]     trickle a body (declared 100000 bytes, or BYTES) at 10 bytes/s;
                               report when the server cut it
  flood PATH CONNECTIONS MIB   CONNECTIONS bodies of MIB MiB at once to PATH; statuses

Bodies over 4 MiB that the server reads as they arrive (tests/e2e/test_direct.sh); FILE is
the body, OID the oid in the URL (the file's own, or another for a mismatch), all under
/guard/repo.git:
  expect OID FILE              Expect: 100-continue; the interim answer, then the body
  watch OID FILE DIR           the body in 256 KiB pieces 20 ms apart; sizes of DIR/.OID.*
                               seen before the last piece was sent
  disconnect OID FILE          the head and half the body, then close
  refused_drain OID MIB [AUTH] a refused PUT of MIB MiB without Expect: no answer while half
                               the body is sent, the answer after the rest, then GET /healthz
                               on the same connection
  refused_expect OID MIB [AUTH]  the same with Expect: 100-continue: the answer at once
  pause OID FILE SECONDS       half the body, a pause of SECONDS, the rest; the answer
  keepalive OID1 FILE1 OID2 FILE2  two uploads on one connection, each answer read first,
                               the second with Expect: 100-continue, then GET /healthz
  pipelined OID FILE           an upload and a GET /healthz in one send
  direct_budget OID FILE       hold a body half-sent, try a second (8 MiB declared), finish
                               the first, then try again at once
  stall OID BYTES SENT SECONDS  declare BYTES, send SENT, then nothing; when the server
                               closed (null: not within SECONDS)
  head_only PATH BYTES         a PUT head declaring BYTES and no body; what comes back
  path_pair PATH MIB           a PUT of MIB MiB and one of 10 bytes to PATH (raw bytes as
                               given, \\xNN escapes decoded); both answers
"""
import glob
import json
import os
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


def parse_head(head):
    """(status, headers dict with lower-case names) of a response head (no blank line)."""
    lines = head.split(b"\r\n")
    hdrs = {}
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        hdrs[k.strip().lower().decode()] = v.strip().decode("latin-1")
    return int(lines[0].split()[1]), hdrs


def describe(status, hdrs, body):
    """What the scenarios report of one response."""
    try:
        doc = json.loads(body.decode("utf-8"))
    except ValueError:
        doc = None
    return {"status": status, "retry_after": hdrs.get("retry-after"),
            "content_type": hdrs.get("content-type"), "json": doc}


def responses(raw):
    """[(status, headers dict, body bytes)] of the responses in raw (Content-Length or
    chunked bodies)."""
    res = []
    while raw:
        head, sep, rest = raw.partition(b"\r\n\r\n")
        if not sep:
            break
        status, hdrs = parse_head(head)
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
    return {"responses": [describe(*r) for r in responses(raw)], "closed": closed}


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


def slow(oid, seconds, size="100000"):
    s = connect()
    s.sendall(put_head(oid, int(size)))
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


class Reader:
    """Reads one response at a time off a connection (1xx interim answers included)."""

    def __init__(self, s):
        self.s, self.buf, self.closed = s, b"", False

    def _fill(self, deadline):
        self.s.settimeout(max(0.01, deadline - time.time()))
        try:
            d = self.s.recv(65536)
        except socket.timeout:
            return False
        except ConnectionResetError:
            d = b""
        if not d:
            self.closed = True
            return False
        self.buf += d
        return True

    def response(self, timeout=10.0):
        """{status, retry_after, content_type, json} of the next response, or None when none
        came within timeout seconds (or the server closed first)."""
        deadline = time.time() + timeout
        while b"\r\n\r\n" not in self.buf:
            if self.closed or not self._fill(deadline):
                return None
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        status, hdrs = parse_head(head)
        n = int(hdrs.get("content-length", "0")) if status >= 200 else 0
        while len(self.buf) < n:
            if self.closed or not self._fill(deadline):
                return None
        body, self.buf = self.buf[:n], self.buf[n:]
        return describe(status, hdrs, body)

    def closes(self, timeout=3.0):
        """True when the server closes the connection within timeout seconds (and sends
        nothing more)."""
        deadline = time.time() + timeout
        while not self.closed and time.time() < deadline:
            if not self._fill(deadline) and not self.closed:
                return False
        return self.closed and self.buf == b""


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def expect(oid, path):
    body = read_file(path)
    s = connect()
    r = Reader(s)
    s.sendall(put_head(oid, len(body), b"Expect: 100-continue\r\nConnection: close\r\n"))
    interim = r.response(timeout=5)
    s.sendall(body)
    final = r.response(timeout=30)
    s.close()
    print(json.dumps({"interim": interim, "final": final}))


def watch(oid, path, directory):
    body = read_file(path)
    piece = 256 * 1024
    s = connect()
    r = Reader(s)
    s.sendall(put_head(oid, len(body), b"Connection: close\r\n"))
    sizes = []
    for i in range(0, len(body), piece):
        s.sendall(body[i:i + piece])
        if i + piece >= len(body):
            break  # the last piece: what was seen so far was seen before it
        time.sleep(0.02)
        for f in glob.glob(os.path.join(directory, "." + oid + ".*")):
            try:
                sizes.append(os.stat(f).st_size)
            except FileNotFoundError:
                pass
    final = r.response(timeout=30)
    s.close()
    print(json.dumps({"sizes": sizes, "total": len(body), "final": final}))


def disconnect(oid, path):
    body = read_file(path)
    s = connect()
    s.sendall(put_head(oid, len(body)) + body[:len(body) // 2])
    time.sleep(0.3)
    s.close()
    print(json.dumps({"sent": len(body) // 2, "declared": len(body)}))


def auth_header(auth):
    return b"Authorization: " + auth.encode() + b"\r\n" if auth else b""


def refused_drain(oid, mib, auth=""):
    size = int(mib) << 20
    s = connect()
    r = Reader(s)
    s.sendall(put_head(oid, size, auth_header(auth)) + b"r" * (size // 2))
    early = r.response(timeout=0.5)  # nothing yet: the server waits for the body
    s.sendall(b"r" * (size - size // 2))
    answer = r.response(timeout=10)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    after = r.response(timeout=5)
    s.close()
    print(json.dumps({"early": early, "answer": answer, "after": after}))


def refused_expect(oid, mib, auth=""):
    size = int(mib) << 20
    s = connect()
    r = Reader(s)
    start = time.time()
    s.sendall(put_head(oid, size, b"Expect: 100-continue\r\n" + auth_header(auth)))
    answer = r.response(timeout=5)
    elapsed = time.time() - start
    closed = r.closes(timeout=3)
    s.close()
    print(json.dumps({"answer": answer, "elapsed": elapsed, "closed": closed}))


def pause(oid, path, seconds):
    body = read_file(path)
    s = connect()
    r = Reader(s)
    s.sendall(put_head(oid, len(body), b"Connection: close\r\n") + body[:len(body) // 2])
    time.sleep(float(seconds))
    s.sendall(body[len(body) // 2:])
    print(json.dumps({"final": r.response(timeout=30)}))
    s.close()


def keepalive(oid1, path1, oid2, path2):
    s = connect()
    r = Reader(s)
    out = []
    body = read_file(path1)
    s.sendall(put_head(oid1, len(body)) + body)
    out.append(r.response(timeout=30))
    body = read_file(path2)  # this one waits for "100 Continue"
    s.sendall(put_head(oid2, len(body), b"Expect: 100-continue\r\n"))
    out.append(r.response(timeout=5))
    s.sendall(body)
    out.append(r.response(timeout=30))
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    out.append(r.response(timeout=5))
    s.close()
    print(json.dumps({"answers": out}))


def pipelined(oid, path):
    body = read_file(path)
    s = connect()
    s.sendall(put_head(oid, len(body)) + body + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    out = summary(*read_all(s, timeout=10))
    s.close()
    print(json.dumps(out))


def direct_budget(oid, path):
    body = read_file(path)
    first = connect()
    first_r = Reader(first)
    first.sendall(put_head(oid, len(body)) + body[:len(body) // 2])
    time.sleep(0.3)
    second = connect()
    second.sendall(put_head(oid, 8 << 20, b"Connection: close\r\n") + b"x" * 1000)
    refused = summary(*read_all(second))
    second.close()
    first.sendall(body[len(body) // 2:])
    first_res = first_r.response(timeout=30)
    first.close()
    # At once, not after a sweep: the end of a body read as it arrived releases its share
    # before the handler answers.
    third = connect()
    third.sendall(put_head(oid, len(body), b"Connection: close\r\n") + body)
    third_res = summary(*read_all(third, timeout=30))
    third.close()
    print(json.dumps({"refused": refused, "first": first_res, "after": third_res}))


def stall(oid, size, sent, seconds):
    s = connect()
    s.sendall(put_head(oid, int(size)) + b"s" * int(sent))
    start = time.time()
    closed = Reader(s).closes(timeout=float(seconds))
    s.close()
    print(json.dumps({"closed_after": time.time() - start if closed else None}))


def head_only(path, size):
    s = connect()
    s.sendall(b"PUT " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: " +
              size.encode() + b"\r\n\r\n")
    out = summary(*read_all(s, timeout=5))
    s.close()
    print(json.dumps(out))


def path_pair(path, mib):
    raw = path.encode("latin-1").decode("unicode_escape").encode("latin-1")
    out = {}
    for name, size in (("large", int(mib) << 20), ("small", 10)):
        s = connect()
        s.sendall(b"PUT " + raw + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                  b"Content-Length: " + str(size).encode() + b"\r\n\r\n")
        try:
            s.sendall(b"h" * size)
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered and closed before the whole body: read what came
        out[name] = summary(*read_all(s, timeout=10))
        s.close()
    print(json.dumps(out))


{"framing": framing, "budget": budget, "slow": slow, "flood": flood, "expect": expect,
 "watch": watch, "disconnect": disconnect, "refused_drain": refused_drain,
 "refused_expect": refused_expect, "keepalive": keepalive, "pipelined": pipelined,
 "direct_budget": direct_budget, "head_only": head_only,
 "path_pair": path_pair, "pause": pause, "stall": stall}[sys.argv[2]](*sys.argv[3:])
