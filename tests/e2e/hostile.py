#!/usr/bin/python3
"""Hostile requests for lfsgate, driven by tests/e2e/test_hostile.sh.

Sends raw HTTP/1.1 over loopback sockets (curl normalises some bytes; raw sockets send any
byte in the method, the path and the headers), one keep-alive connection reconnected when the
server closes it. Each case puts hostile bytes (>= 0x80, invalid UTF-8, control characters,
NUL, long multibyte strings) in one request field: the request line, a header, a JSON field of
a body or a token claim. After each case the server must still answer /healthz with 200 and
its stderr must hold no sanitizer report; each answer must have a status below 500, a body
that parses as JSON when its Content-Type says JSON, and no control bytes in its headers.
Every token sent is appended to the --tokens file (lib.sh's assert_logs_clean checks them).

  hostile.py groups
      the case groups, one per line
  hostile.py run GROUP --from N --port P --pid PID --stderr-log FILE --stdout-log FILE
                 --key PEM --iss ISS --aud AUD --store DIR --results FILE --tokens FILE
                 --state FILE
      runs the cases of GROUP from index N; one JSON line per case in RESULTS
      ({"case", "fails", "rids", "log"}). Exit 0: every case ran; 3: the server died (the
      index of the next case is in STATE: restart the server and run again from there).
  hostile.py check-logs --results FILE --stdout LOG... --stderr LOG...
      every stdout line is a JSON object (strict UTF-8) and every AccessLog line is complete;
      every answer with an X-Request-ID has its AccessLog line (unless that server died);
      every stderr line is valid UTF-8 without control characters. Failures are appended to
      RESULTS, attributed to the case whose request id the line names.
  hostile.py died --results FILE --status N
      the server that ran the last case ended with status N (as wait reported it): said in
      that case's failure
  hostile.py summary --results FILE
      prints a one-line summary, then one line per failure; exit 1 when a case failed.

Needs python3-jwt's sibling python3-cryptography (RS256 signing of hand-built tokens).
"""
import argparse
import base64
import hashlib
import json
import os
import re
import signal
import socket
import sys
import time
import urllib.parse

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mint_jwt import b64url  # noqa: E402

LFS = b"application/vnd.git-lfs+json"
SANITIZER_RE = re.compile(rb"ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:")
RID_LOG_RE = re.compile(rb'"request_id":"([0-9a-f]+)"')
RID_ERR_RE = re.compile(rb"request ([0-9a-f]{20})")
JWT_RE = re.compile(rb"eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
IO_TIMEOUT = 15
# what an href's host may be: a DNS name or IPv4 address, or an IPv6 literal (urlsplit's
# .hostname drops the brackets)
HOST_RE = re.compile(r"^([A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$|^[0-9a-fA-F:.]*:[0-9a-fA-F:.]*$")

# The hostile values: (label, bytes). Labels name the case; they are ASCII.
VALUES = [
    ("high-bytes", b"\xff\xfe\x80"),
    ("lone-continuation", b"a\x80\xbfb"),
    ("overlong-slash", b"\xc0\xaf"),
    ("overlong-nul", b"\xc0\x80"),
    ("utf8-surrogates", b"\xed\xa0\x80\xed\xbf\xbf"),
    ("truncated-3byte", b"x\xe2\x82"),
    ("truncated-4byte", b"\xf0\x9d\x84"),
    ("above-u10ffff", b"\xf4\x90\x80\x80"),
    ("ctl-01", b"a\x01b"),
    ("esc", b"\x1b[31mred\x1b[0m"),
    ("del", b"a\x7fb"),
    ("cr", b"a\rb"),
    ("nul", b"a\x00b"),
    ("quote-backslash", b'a"b\\c'),
    ("ascii-3500", b"s" * 3500),
    ("a-e-acute-300", ("a" + "\u00e9" * 300).encode()),
    ("e-acute-5000", ("\u00e9" * 5000).encode()),
    ("g-clef-3000", ("\U0001d11e" * 3000).encode()),
]


def pct(b):
    """Every byte percent-encoded (the path and query forms that decode to the raw bytes)."""
    return "".join("%%%02X" % c for c in b).encode()


def printable(b, limit=100):
    """An ASCII rendering of bytes for messages (at most about `limit` characters):
    printable ASCII as is, the rest escaped."""
    s = b.decode("latin-1") if isinstance(b, bytes) else b
    out = "".join(c if " " <= c <= "~" else "\\x%02x" % ord(c) if ord(c) < 256 else "\\u%04x" % ord(c)
                  for c in s[:limit])
    return out[:limit] + "..." if len(out) > limit or len(s) > limit else out


# ---------------------------------------------------------------------------------------
# JSON with raw fragments


class Raw:
    """A JSON fragment written as is (hostile bytes inside a string, or broken JSON)."""

    def __init__(self, data):
        self.data = data


def dump(v):
    if isinstance(v, Raw):
        return v.data
    if isinstance(v, dict):
        return b"{" + b",".join(dump(k) + b":" + dump(x) for k, x in v.items()) + b"}"
    if isinstance(v, list):
        return b"[" + b",".join(dump(x) for x in v) + b"]"
    if isinstance(v, bytes):
        return b'"' + v + b'"'  # raw bytes in a string: not escaped on purpose
    return json.dumps(v).encode()


def json_forms(value):
    """The two JSON spellings of a hostile value: its raw bytes inside a string (invalid JSON
    when they are invalid UTF-8 or control bytes) and the \\u-escaped string (undecodable
    bytes as lone surrogate escapes \\udcXX, like Python's surrogateescape)."""
    return [("raw", Raw(b'"' + value + b'"')),
            ("escaped", Raw(json.dumps(value.decode("utf-8", "surrogateescape")).encode()))]


# ---------------------------------------------------------------------------------------
# HTTP/1.1 over a socket


class NoAnswer(Exception):
    def __init__(self, message, timeout=False):
        super().__init__(message)
        self.timeout = timeout


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # [(lowercase name str, value bytes)]
        self.body = body

    def header(self, name):
        for n, v in reversed(self.headers):
            if n == name:
                return v
        return None

    def closes(self):
        return (self.header("connection") or b"").lower() == b"close"


def build(method, target, headers=(), body=None, port=0, host=True):
    names = {n.lower() for n, _ in headers}
    lines = [method + b" " + target + b" HTTP/1.1"]
    if host and b"host" not in names:
        lines.append(b"Host: 127.0.0.1:%d" % port)
    lines += [n + b": " + v for n, v in headers]
    if body is not None and b"content-length" not in names and b"transfer-encoding" not in names:
        lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + (body or b"")


class Client:
    """One keep-alive connection; a new one when the server closed the last."""

    def __init__(self, port):
        self.port = port
        self.sock = None
        self.buf = b""

    def close(self):
        if self.sock is not None:
            self.sock.close()
        self.sock = None
        self.buf = b""

    def _recv(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError
        self.buf += data

    def _read_head(self):
        while b"\r\n\r\n" not in self.buf:
            self._recv()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        status = int(parts[1])
        headers = []
        for line in lines[1:]:
            n, _, v = line.partition(b":")
            headers.append((n.strip().lower().decode("latin-1"), v.strip()))
        return status, headers

    def _read_n(self, n):
        while len(self.buf) < n:
            self._recv()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def _read_line(self):
        while b"\r\n" not in self.buf:
            self._recv()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _read_response(self, head_request):
        while True:
            status, headers = self._read_head()
            if status >= 200:
                break
        r = Response(status, headers, b"")
        te = (r.header("transfer-encoding") or b"").lower()
        cl = r.header("content-length")
        if head_request or status in (204, 304):
            return r
        if b"chunked" in te:
            body = b""
            while True:
                size = int(self._read_line().split(b";")[0], 16)
                if size == 0:
                    while self._read_line() != b"":
                        pass
                    break
                body += self._read_n(size)
                self._read_n(2)
            r.body = body
        elif cl is not None:
            r.body = self._read_n(int(cl))
        else:
            try:
                while True:
                    self._recv()
            except EOFError:
                pass
            r.body, self.buf = self.buf, b""
            self.close()
        return r

    def exchange(self, raw, head_request=False):
        for attempt in range(2):
            fresh = self.sock is None
            if fresh:
                self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=IO_TIMEOUT)
            try:
                try:
                    self.sock.sendall(raw)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the server may have answered before reading everything
                r = self._read_response(head_request)
            except (EOFError, ConnectionResetError):
                self.close()
                if not fresh:
                    continue  # a kept-alive connection the server had closed: once more
                raise NoAnswer("connection closed without an answer")
            except socket.timeout:
                self.close()
                raise NoAnswer("no answer within %d s" % IO_TIMEOUT, timeout=True)
            except (ValueError, IndexError) as e:
                self.close()
                raise NoAnswer("unparsable answer: %s" % e)
            if r.closes():
                self.close()
            return r
        raise NoAnswer("connection closed without an answer")


# ---------------------------------------------------------------------------------------
# tokens


class Signer:
    def __init__(self, key_file, iss, aud, tokens_file):
        with open(key_file, "rb") as f:
            self.key = serialization.load_pem_private_key(f.read(), password=None)
        self.iss, self.aud = iss, aud
        self.tokens = open(tokens_file, "a")

    def remember(self, text):
        self.tokens.write(text + "\n")
        self.tokens.flush()

    def token(self, scopes=("obj:org/repo/*",), header=None, claims=None, raw_claims=()):
        """An RS256 token signed with the test key. header/claims: JSON values (Raw allowed)
        replacing or adding to the defaults; raw_claims: (Raw name, value) pairs, claims whose
        name is a JSON fragment. Returns str."""
        now = int(time.time())
        h = {"alg": "RS256", "typ": "JWT"}
        h.update(header or {})
        c = {"sub": "hostile-e2e", "iss": self.iss, "aud": self.aud, "iat": now, "exp": now + 600}
        if scopes is not None:
            c["scopes"] = list(scopes)
        c.update(claims or {})
        payload = dump(c)
        for name, value in raw_claims:
            payload = payload[:-1] + b"," + name.data + b":" + dump(value) + b"}"
        signing_input = b64url(dump(h)) + "." + b64url(payload)
        sig = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        t = signing_input + "." + b64url(sig)
        self.remember(t)
        return t

    def basic(self, user, password):
        cred = base64.b64encode(user + b":" + password).decode()
        self.remember(cred)
        return cred.encode()


# ---------------------------------------------------------------------------------------
# the run: cases, checks after each


class Run:
    def __init__(self, a):
        self.a = a
        self.port = a.port
        self.origin = "http://127.0.0.1:%d/" % a.port
        self.client = Client(a.port)
        self.signer = Signer(a.key, a.iss, a.aud, a.tokens)
        self.rw = self.signer.token().encode()
        self.ro = self.signer.token(scopes=("obj:org/repo/*:read",)).encode()
        self.stored = b"hostile-e2e stored object\n"
        self.stored_oid = hashlib.sha256(self.stored).hexdigest()
        os.makedirs(os.path.join(a.store, "org", "repo"), exist_ok=True)
        with open(os.path.join(a.store, "org", "repo", self.stored_oid), "wb") as f:
            f.write(self.stored)
        self.err_seen = os.path.getsize(a.stderr_log) if os.path.exists(a.stderr_log) else 0
        self.fails = []
        self.rids = []
        self.case = ""
        self.counter = 0

    # --- per request

    def fail(self, msg):
        self.fails.append(msg)

    def send(self, what, method, target, headers=(), body=None, expect=None, host=True, json_error=False):
        """Sends one request, checks the answer; returns the Response or None. expect: the
        statuses allowed (and an answer is required); json_error: a 4xx must be lfsgate's JSON
        error, not one from h2o's parser."""
        raw = build(method, target, headers, body, self.port, host)
        try:
            r = self.client.exchange(raw, head_request=method == b"HEAD")
        except NoAnswer as e:
            if e.timeout or expect is not None:
                self.fail("%s: %s" % (what, e))
            return None
        rid = r.header("x-request-id")
        if rid:
            self.rids.append(rid.decode("latin-1"))
        for t in JWT_RE.findall(r.body):  # action tokens the server minted: never to be logged
            self.signer.remember(t.decode())
        if r.status >= 500:
            self.fail("%s: status %d for client input: %s" % (what, r.status, printable(r.body[:200])))
        if expect is not None and r.status not in expect:
            self.fail("%s: expected status %s, got %d: %s" % (what, "/".join(map(str, expect)), r.status,
                                                                printable(r.body[:200])))
        ct = r.header("content-type") or b""
        if b"json" in ct.lower():
            try:
                d = json.loads(r.body.decode("utf-8", errors="strict"))
                if json_error and r.status >= 400 and not isinstance((d or {}).get("message"), str):
                    self.fail("%s: %d answer without a \"message\": %s" % (what, r.status, printable(r.body[:200])))
            except (UnicodeDecodeError, ValueError, AttributeError) as e:
                self.fail("%s: %d answer with Content-Type %s is not JSON (%s): %s"
                          % (what, r.status, printable(ct), e, printable(r.body[:200])))
        elif json_error and r.status >= 400:
            self.fail("%s: %d answer without a JSON Content-Type (%s)" % (what, r.status, printable(ct)))
        for n, v in r.headers:
            if any(c < 0x20 and c != 0x09 or c == 0x7F for c in v):
                self.fail("%s: answer header %s carries control bytes: %s" % (what, n, printable(v)))
        acao = r.header("access-control-allow-origin")
        if acao is not None and not all(0x21 <= c <= 0x7E for c in acao):
            self.fail("%s: Access-Control-Allow-Origin is not an ASCII origin: %s" % (what, printable(acao)))
        return r

    def expect_cors(self, r, origin):
        """The answer allows `origin` (bytes) by Access-Control-Allow-Origin, or no origin."""
        if r is None:
            return
        got = r.header("access-control-allow-origin")
        if origin is None and got is not None:
            self.fail("status %d: a CORS answer to an origin that allowed_origins does not allow: "
                      "Access-Control-Allow-Origin: %s" % (r.status, printable(got)))
        elif origin is not None and got != origin:
            self.fail("status %d: expected Access-Control-Allow-Origin: %s, got %s"
                      % (r.status, origin.decode(), printable(got) if got is not None else "none"))

    def lfs_headers(self, token=None, **over):
        """Accept, Content-Type and Authorization (Bearer rw token unless token/over say
        otherwise); over: header name (underscores for dashes) -> bytes, or None to drop."""
        h = {b"Accept": LFS, b"Content-Type": LFS,
             b"Authorization": b"Bearer " + (token if token is not None else self.rw)}
        for k, v in over.items():
            name = k.replace("_", "-").encode()
            h.pop(name, None)
            if v is not None:
                h[name] = v
        return list(h.items())

    def batch_body(self, op="upload", oid=None, size=1, **fields):
        obj = {"oid": oid or self.new_oid(), "size": size}
        obj.update(fields.pop("obj", {}))
        d = {"operation": op, "transfers": ["basic"], "ref": {"name": "refs/heads/main"},
             "objects": [obj], "hash_algo": "sha256"}
        d.update(fields)
        return dump(d)

    def download_body(self, **fields):
        """A batch download of the stored object."""
        return self.batch_body(op="download", oid=self.stored_oid, size=len(self.stored), **fields)

    def new_oid(self):
        self.counter += 1
        return hashlib.sha256(b"hostile %d %s" % (self.counter, self.case.encode())).hexdigest()

    def post_batch(self, what, body, headers=None, target=b"/org/repo.git/info/lfs/objects/batch",
                   expect=None, json_error=False):
        return self.send(what, b"POST", target, headers if headers is not None else self.lfs_headers(),
                         body, expect=expect, json_error=json_error)

    def expect_closed(self, what):
        """The server closed the connection after its last answer (nothing can follow it on
        a connection whose framing was in doubt)."""
        if self.client.sock is None:
            return
        self.client.sock.settimeout(3)
        try:
            data = self.client.sock.recv(1)
        except socket.timeout:
            data = None
        except OSError:
            data = b""
        self.client.close()
        if data != b"":
            self.fail("%s: the connection stayed open after the refusal" % what)

    def actions(self, r):
        """The actions of object 0 of a 200 batch answer ({} otherwise); hrefs are checked."""
        if r is None or r.status != 200:
            return {}
        try:
            d = json.loads(r.body.decode("utf-8"))
            acts = d["objects"][0].get("actions") or {}
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            return {}
        for name, a in acts.items():
            href = a.get("href", "") if isinstance(a, dict) else ""
            if not isinstance(href, str) or not href or not all("!" <= c <= "~" for c in href):
                self.fail("batch answer: the %s href is not printable ASCII: %s" % (name, printable(str(href))))
                continue
            try:
                parts = urllib.parse.urlsplit(href)
                ok = parts.scheme in ("http", "https") and HOST_RE.match(parts.hostname or "") and \
                    parts.port != 0  # .port raises ValueError when out of range
            except ValueError:
                ok = False
            if not ok:
                self.fail("batch answer: the %s href names no valid host and port: %s" % (name, printable(href)))
        return acts

    def follow(self, what, action, method, body=None, expect=(200,), extra=()):
        """Sends the request an action describes (its href on this server, its headers)."""
        href = action.get("href", "")
        parts = urllib.parse.urlsplit(href)
        target = (parts.path + ("?" + parts.query if parts.query else "")).encode("utf-8", "surrogateescape")
        headers = [(k.encode(), v.encode("utf-8", "surrogateescape"))
                   for k, v in (action.get("header") or {}).items()]
        for v in headers:
            if v[0].lower() == b"authorization" and v[1].startswith(b"Bearer "):
                self.signer.remember(v[1][7:].decode("latin-1"))
        q = urllib.parse.parse_qs(parts.query)
        for t in q.get("jwt", []):
            self.signer.remember(t)
        return self.send(what, method, target, headers + list(extra), body, expect=expect)

    # --- between cases

    def server_state(self):
        """None while the server runs; else a description of how it ended."""
        try:
            with open("/proc/%d/stat" % self.a.pid) as f:
                stat = f.read()
        except OSError:
            return "exited"
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z":
            return None
        code = int(fields[-1]) if fields[-1].isdigit() else 0
        if code & 0x7F:
            return "killed by signal %d" % (code & 0x7F)
        return "exited with status %d" % (code >> 8)

    def healthz(self):
        for _ in range(3):
            try:
                c = Client(self.port)
                r = c.exchange(build(b"GET", b"/healthz", port=self.port))
                c.close()
                if r.status == 200:
                    return True
            except (NoAnswer, OSError):
                pass
            if self.server_state() is not None:
                return False
            time.sleep(0.3)
        return False

    def new_stderr(self):
        try:
            with open(self.a.stderr_log, "rb") as f:
                f.seek(self.err_seen)
                data = f.read()
        except OSError:
            return b""
        self.err_seen += len(data)
        return data

    def sanitizer_excerpt(self, data):
        m = SANITIZER_RE.search(data)
        if m is None:
            return None
        lines = data[m.start():].split(b"\n")
        # the first line and the first frames, without addresses: "#0 render server/json_out.c:41"
        frames = [re.sub(rb"^(#\d+) 0x[0-9a-f]+ in (\S+) (\S+/)?(\S+/\S+).*", rb"\1 \2 \4", x.strip())
                  for x in lines[1:] if re.match(rb"\s*#\d+ ", x)]
        return printable(b" | ".join([lines[0].strip()] + frames[:5]), limit=500)

    def after_case(self):
        """Checks after each case; returns False when the server died."""
        alive = self.healthz()
        if not alive:
            self.client.close()
            time.sleep(0.5)  # let a dying server finish its report
        report = self.sanitizer_excerpt(self.new_stderr())
        if report:
            self.fail("sanitizer report: " + report)
        if alive:
            return True
        state = self.server_state()
        if state is None:
            self.fail("/healthz did not answer 200 after the case (the server still runs)")
            return True
        self.fail("the server died" + ("" if state == "exited" else " (%s)" % state))
        return False


# ---------------------------------------------------------------------------------------
# the cases: (name, function(run))

BATCH = b"/org/repo.git/info/lfs/objects/batch"
OBJECTS = b"/org/repo.git/info/lfs/objects/storage/"


def group_reproducers():
    cases = []

    def method(m):
        def f(run):
            run.send("GET /healthz with method %s" % printable(m), m, b"/healthz", expect=(405,), json_error=True)
            # the connection and the server keep serving
            run.send("GET /healthz after it", b"GET", b"/healthz", expect=(200,))
        return f

    cases.append(("method G\\xffT on /healthz", method(b"G\xffT")))
    cases.append(("method a+e-acute*300 on /healthz", method(("a" + "\u00e9" * 300).encode())))

    def long_sub(run):
        # The crash reproducer: a sub of 601 bytes, over lfsgate's 256-byte bound for a sub,
        # is refused with a JSON 401 naming the claim ...
        t = run.signer.token(scopes=("obj:org/repo/*:read",), claims={"sub": "a" + "\u00e9" * 300}).encode()
        r = run.post_batch("read-only token, sub a+e-acute*300, upload batch", run.batch_body(),
                           run.lfs_headers(t), expect=(401,), json_error=True)
        if r is not None and b"sub" not in r.body:
            run.fail("read-only token, sub a+e-acute*300: the 401 does not name the sub claim")
        # ... and a multi-byte sub within the bound reaches the 403 message that crashed
        t = run.signer.token(scopes=("obj:org/repo/*:read",), claims={"sub": "a" + "\u00e9" * 127}).encode()
        run.post_batch("read-only token, sub a+e-acute*127, upload batch", run.batch_body(),
                       run.lfs_headers(t), expect=(403,), json_error=True)

    cases.append(("jwt sub a+e-acute*300 read-only upload batch", long_sub))

    def raw_path(run):
        run.send("GET /\\xff\\xfe", b"GET", b"/\xff\xfe", expect=(400, 404), json_error=True)
        run.post_batch("batch under org \\xff\\xfe", run.batch_body(),
                       target=b"/\xff\xfe/repo.git/info/lfs/objects/batch", expect=(400, 404), json_error=True)

    cases.append(("path with raw \\xff\\xfe", raw_path))

    def long_path(run):
        run.send("GET of a 20000-byte path", b"GET", b"/" + b"a" * 19999, expect=(400, 404, 414))
        run.send("GET of a 20000-byte path of 2-byte characters", b"GET",
                 b"/" + ("\u00e9" * 9999).encode() + b"a", expect=(400, 404, 414))

    cases.append(("20000-byte path (AccessLog line complete)", long_path))

    def big_sub_put(run):
        # A 3500-byte sub (a 5.2 KB token, under the 8 KiB limit) used to get an upload whose
        # minted token was then refused: now the sub is refused up front (401) ...
        t = run.signer.token(claims={"sub": "s" * 3500}).encode()
        run.post_batch("upload batch, sub of 3500 bytes", run.batch_body(), run.lfs_headers(t),
                       expect=(401,), json_error=True)
        # ... and the largest sub allowed with a 3500-byte name gets an upload that works
        t = run.signer.token(claims={"sub": "s" * 256, "name": "n" * 3500}).encode()
        data = b"hostile-e2e 256-byte sub upload"
        oid = hashlib.sha256(data).hexdigest()
        r = run.post_batch("upload batch, sub of 256 bytes", run.batch_body(oid=oid, size=len(data)),
                           run.lfs_headers(t), expect=(200,))
        acts = run.actions(r)
        if "upload" not in acts:
            run.fail("upload batch, sub of 256 bytes: no upload action in the answer")
            return
        run.follow("PUT with the action token minted for that sub", acts["upload"], b"PUT", data,
                   expect=(200, 201), extra=[(b"Content-Type", b"application/octet-stream")])

    cases.append(("jwt sub of 3500 bytes refused, of 256 bytes: the granted upload works", big_sub_put))
    return cases


def group_framing():
    def two_lengths(run):
        body = run.download_body()
        h = run.lfs_headers() + [(b"Content-Length", b"%d" % len(body)), (b"Content-Length", b"5")]
        run.send("two Content-Length headers", b"POST", BATCH, h, body, expect=(400,))
        run.expect_closed("two Content-Length headers")

    def te_and_cl(run):
        body = run.download_body()
        chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
        h = run.lfs_headers() + [(b"Content-Length", b"%d" % len(body)), (b"Transfer-Encoding", b"chunked")]
        run.send("kept-alive request", b"GET", b"/healthz", expect=(200,))
        run.send("Transfer-Encoding: chunked with Content-Length", b"POST", BATCH, h, chunked, expect=(400,))
        run.expect_closed("Transfer-Encoding: chunked with Content-Length")

    return [("two Content-Length headers", two_lengths),
            ("Transfer-Encoding chunked and Content-Length", te_and_cl)]


def group_request_line():
    """Method; each path segment (raw bytes and percent-encoded); query parameters."""
    cases = []
    for label, v in VALUES:
        def method(run, v=v):
            run.send("method on /healthz", v, b"/healthz")
            run.send("method on batch", v, BATCH, run.lfs_headers(), run.batch_body())
            run.send("method on an object", v, OBJECTS + run.stored_oid.encode(), run.lfs_headers())

        cases.append(("method=%s" % label, method))
    targets = [
        ("org", b"POST", b"/%s/repo.git/info/lfs/objects/batch"),
        ("nested org", b"POST", b"/org/%s/repo.git/info/lfs/objects/batch"),
        ("repo", b"POST", b"/org/%s.git/info/lfs/objects/batch"),
        ("endpoint", b"POST", b"/org/repo.git/info/lfs/objects/%s"),
        ("oid", b"GET", b"/org/repo.git/info/lfs/objects/storage/%s"),
        ("oid of a PUT", b"PUT", b"/org/repo.git/info/lfs/objects/storage/%s"),
        ("locks", b"GET", b"/org/repo.git/info/lfs/locks/%s"),
        ("legacy org", b"POST", b"/%s/repo/objects/batch"),
        ("legacy repo", b"POST", b"/org/%s/objects/batch"),
        ("legacy oid", b"GET", b"/org/repo/objects/storage/%s"),
        ("after /healthz", b"GET", b"/healthz%s"),
        ("root", b"GET", b"/%s"),
    ]
    for seg, m, tmpl in targets:
        for label, v in VALUES:
            for form, b in (("raw", v), ("pct", pct(v))):
                def path(run, m=m, t=tmpl.replace(b"%s", b)):
                    body = run.batch_body() if m == b"POST" else (b"x" if m == b"PUT" else None)
                    run.send("%s %s" % (m.decode(), printable(t, 60)), m, t, run.lfs_headers(), body)

                cases.append(("path %s=%s (%s)" % (seg, label, form), path))
    queries = [
        ("batch ?jwt=", b"POST", BATCH + b"?jwt=%s", "no-auth"),
        ("object ?jwt=", b"GET", OBJECTS + b"@OID?jwt=%s", "no-auth"),
        ("object ?filename=", b"GET", OBJECTS + b"@OID?filename=%s&disposition=attachment", ""),
        ("object ?disposition=", b"GET", OBJECTS + b"@OID?filename=f.bin&disposition=%s", ""),
        ("query name", b"GET", OBJECTS + b"@OID?%s=1&jwt", ""),
        ("locks query", b"GET", b"/org/repo.git/info/lfs/locks?path=%s&id=%s&cursor=%s&limit=%s&refspec=%s", ""),
        ("legacy locks query", b"GET", b"/org/repo/locks?path=%s&cursor=%s", ""),
    ]
    for what, m, tmpl, auth in queries:
        for label, v in VALUES:
            for form, b in (("raw", v), ("pct", pct(v))):
                def query(run, m=m, tmpl=tmpl, b=b, auth=auth):
                    t = tmpl.replace(b"@OID", run.stored_oid.encode()).replace(b"%s", b)
                    h = run.lfs_headers(Authorization=None) if auth == "no-auth" else run.lfs_headers()
                    body = run.download_body() if m == b"POST" else None
                    run.send("%s %s" % (m.decode(), printable(t, 60)), m, t, h, body)

                cases.append(("query %s=%s (%s)" % (what, label, form), query))
    return cases


def group_headers():
    """Each header lfsgate reads, on a download batch (its download followed when the href
    is this server's) or on the request that reads it."""
    cases = []
    batch_headers = [
        ("Authorization: Bearer", lambda run, v: {"Authorization": b"Bearer " + v}),
        ("Authorization: Basic raw", lambda run, v: {"Authorization": b"Basic " + v}),
        ("Authorization: Basic base64", lambda run, v: {"Authorization": b"Basic " + base64.b64encode(v)}),
        ("Authorization: Basic _jwt:value",
         lambda run, v: {"Authorization": b"Basic " + run.signer.basic(b"_jwt", v)}),
        ("Authorization: Basic value:token",
         lambda run, v: {"Authorization": b"Basic " + run.signer.basic(v, run.rw)}),
        ("Authorization scheme", lambda run, v: {"Authorization": v + b" " + run.rw}),
        ("second Authorization", lambda run, v: [(b"Authorization", b"Bearer " + v)]),
        ("Accept", lambda run, v: {"Accept": v}),
        ("Content-Type", lambda run, v: {"Content-Type": v}),
        ("Origin", lambda run, v: {"Origin": v}),
        ("Origin under the pattern", lambda run, v: {"Origin": b"https://" + v + b".example.org"}),
        ("Origin with userinfo", lambda run, v: {"Origin": b"https://" + v + b"@x.example.org"}),
        ("X-Forwarded-Host", lambda run, v: {"X-Forwarded-Host": v}),
        ("X-Forwarded-Host port", lambda run, v: {"X-Forwarded-Host": b"portal.example:" + v}),
        ("X-Forwarded-Proto", lambda run, v: {"X-Forwarded-Proto": v}),
        ("X-Forwarded-Port", lambda run, v: {"X-Forwarded-Port": v}),
        ("X-Forwarded-Prefix", lambda run, v: {"X-Forwarded-Prefix": b"/" + v}),
        ("X-Forwarded-For", lambda run, v: {"X-Forwarded-For": v}),
        ("Forwarded host=", lambda run, v: {"Forwarded": b"for=192.0.2.1;host=" + v + b";proto=https"}),
        ("Forwarded quoted host", lambda run, v: {"Forwarded": b'host="' + v + b'"'}),
        ("Forwarded", lambda run, v: {"Forwarded": v}),
        ("Host", lambda run, v: {"Host": v}),
        ("header name", lambda run, v: [(b"X-" + v, b"1")]),
    ]
    for what, make in batch_headers:
        for label, v in VALUES:
            def header(run, what=what, make=make, v=v, label=label):
                h = make(run, v)
                h = run.lfs_headers() + h if isinstance(h, list) else run.lfs_headers(**h)
                dl = run.download_body()
                r = run.post_batch("batch with " + what, dl, h)
                acts = run.actions(r)
                if "download" in acts and acts["download"].get("href", "").startswith(run.origin):
                    run.follow("the download it granted", acts["download"], b"GET")
                if what.startswith("Origin ") and label != "ascii-3500":
                    # none of these is one DNS label of the pattern's "*" (a long one might be)
                    run.expect_cors(r, None)

            cases.append(("header %s=%s" % (what, label), header))
    obj_headers = [
        ("Range", b"GET", lambda v: [(b"Range", b"bytes=" + v)]),
        ("Range raw", b"GET", lambda v: [(b"Range", v)]),
        ("If-None-Match", b"GET", lambda v: [(b"If-None-Match", v)]),
        ("Content-Type of a PUT", b"PUT", lambda v: [(b"Content-Type", v)]),
    ]
    for what, m, make in obj_headers:
        for label, v in VALUES:
            def obj_header(run, m=m, make=make, v=v):
                h = run.lfs_headers(Content_Type=None) + make(v)
                run.send("%s of the stored object" % m.decode(), m, OBJECTS + run.stored_oid.encode(), h,
                         run.stored if m == b"PUT" else None)

            cases.append(("header %s=%s" % (what, label), obj_header))
    preflights = [
        ("Access-Control-Request-Method", lambda v: [(b"Origin", b"https://a.example.org"),
                                                     (b"Access-Control-Request-Method", v)]),
        ("Access-Control-Request-Headers", lambda v: [(b"Origin", b"https://a.example.org"),
                                                      (b"Access-Control-Request-Method", b"POST"),
                                                      (b"Access-Control-Request-Headers", v)]),
        ("Origin of a preflight", lambda v: [(b"Origin", b"https://" + v + b".example.org"),
                                             (b"Access-Control-Request-Method", b"POST")]),
    ]
    for what, make in preflights:
        for label, v in VALUES:
            def preflight(run, what=what, make=make, v=v, label=label):
                r = run.send("OPTIONS on batch", b"OPTIONS", BATCH, make(v))
                if what.startswith("Origin ") and label != "ascii-3500":
                    run.expect_cors(r, None)

            cases.append(("header %s=%s" % (what, label), preflight))
    # allowed_origins has https://portal.example.org and https://*.example.org: "*" is one
    # DNS label, nothing else
    for origin, allowed in [(b"https://portal.example.org", True), (b"https://ok.example.org", True),
                            (b"https://a-b.example.org", True), (b"https://evil.com@x.example.org", False),
                            (b"https://evil.com:1.example.org", False), (b"https://evil.com?.example.org", False),
                            (b"https://evil.com#.example.org", False), (b"https://evil.com/.example.org", False),
                            (b"https://a.b.example.org", False), (b"https://.example.org", False),
                            (b"https://example.org", False), (b"http://ok.example.org", False),
                            (b"https://ok.example.org.evil.com", False), (b"https://evilexample.org", False)]:
        def cors(run, origin=origin, allowed=allowed):
            r = run.post_batch("batch from " + origin.decode(), run.download_body(),
                               run.lfs_headers(Origin=origin))
            run.expect_cors(r, origin if allowed else None)
            r = run.send("preflight from " + origin.decode(), b"OPTIONS", BATCH,
                         [(b"Origin", origin), (b"Access-Control-Request-Method", b"POST")])
            run.expect_cors(r, origin if allowed else None)

        cases.append(("cors origin %s" % origin.decode(), cors))
    # forwarded values that are printable but no host or port (the issue's ]]]: and 99999)
    for what, h in [("X-Forwarded-Host", b"]]]:"), ("X-Forwarded-Host", b"[::1"), ("X-Forwarded-Host", b"h:99999"),
                    ("X-Forwarded-Host", b"a/b"), ("X-Forwarded-Port", b"99999"), ("X-Forwarded-Port", b"0"),
                    ("Forwarded", b"host=]]]:"), ("Host", b"]]]:"), ("Host", b"h:99999")]:
        def syntax(run, what=what, h=h):
            dl = run.download_body()
            run.actions(run.post_batch("batch with %s: %s" % (what, h.decode()), dl,
                                       run.lfs_headers(**{what.replace("-", "_"): h})))

        cases.append(("header %s=%s" % (what, h.decode()), syntax))
    return cases


def group_json_bodies():
    """Every JSON field of batch, verify and lock bodies, with the value's raw bytes in the
    string and \\u-escaped; key names too."""
    cases = []
    fields = [
        ("operation", lambda run, j: run.batch_body(op=j)),
        ("transfers[0]", lambda run, j: run.batch_body(transfers=[j])),
        ("ref.name", lambda run, j: run.batch_body(ref={"name": j})),
        ("objects[0].oid", lambda run, j: run.batch_body(oid=j)),
        ("objects[0].size", lambda run, j: run.batch_body(size=j)),
        ("hash_algo", lambda run, j: run.batch_body(hash_algo=j)),
        ("key name", lambda run, j: run.batch_body(k=1).replace(b'"k"', j.data)),
        ("objects[0] key name", lambda run, j: run.batch_body(obj={"k": 1}).replace(b'"k"', j.data)),
        ("1000 objects' x-filename", lambda run, j: b'{"operation":"upload","objects":[' + b",".join(
            dump({"oid": run.new_oid(), "size": 1, "x-filename": j}) for _ in range(1000)) + b"]}"),
        # a download of the stored object: its href carries the filename, followed
        ("objects[0].x-filename", lambda run, j: run.download_body(obj={"x-filename": j})),
        ("objects[0].x-disposition",
         lambda run, j: run.download_body(obj={"x-filename": "f.bin", "x-disposition": j})),
        ("objects[0].extra.filename", lambda run, j: run.download_body(obj={"extra": {"filename": j}})),
        ("objects[0].extra.disposition",
         lambda run, j: run.download_body(obj={"extra": {"filename": "f.bin", "disposition": j}})),
    ]
    for field, make in fields:
        for label, v in VALUES:
            for form, j in json_forms(v):
                def batch(run, make=make, j=j):
                    acts = run.actions(run.post_batch("batch", make(run, j)))
                    if "download" in acts:
                        run.follow("the download it granted", acts["download"], b"GET")

                cases.append(("json %s=%s (%s)" % (field, label, form), batch))
    others = [
        ("verify oid", b"/org/repo.git/info/lfs/objects/storage/verify", lambda run, j: dump({"oid": j, "size": 1})),
        ("verify size", b"/org/repo.git/info/lfs/objects/storage/verify",
         lambda run, j: dump({"oid": run.stored_oid, "size": j})),
        ("verify key name", b"/org/repo.git/info/lfs/objects/storage/verify",
         lambda run, j: dump({"oid": run.stored_oid, "size": len(run.stored), "k": 1}).replace(b'"k"', j.data)),
        ("lock path", b"/org/repo.git/info/lfs/locks", lambda run, j: dump({"path": j, "ref": {"name": j}})),
    ]
    for field, target, make in others:
        for label, v in VALUES:
            for form, j in json_forms(v):
                def other(run, target=target, make=make, j=j):
                    run.send("POST " + target.decode(), b"POST", target, run.lfs_headers(), make(run, j))

                cases.append(("json %s=%s (%s)" % (field, label, form), other))
    return cases


def group_token_claims():
    """Each claim (and header field) of a signed token, used as run.token_case does."""
    cases = []
    claim_sets = [
        ("sub", lambda j: {"claims": {"sub": j}}),
        ("name", lambda j: {"claims": {"name": j}}),
        ("email", lambda j: {"claims": {"email": j}}),
        ("iss", lambda j: {"claims": {"iss": j}}),
        ("aud", lambda j: {"claims": {"aud": j}}),
        ("aud list", lambda j: {"claims": {"aud": [j, "x"]}}),
        ("scopes string", lambda j: {"claims": {"scopes": j}}),
        ("scopes list", lambda j: {"claims": {"scopes": ["obj:org/repo/*", j]}}),
        ("scope repo", lambda j: {"claims": {"scopes": [Raw(j.data[:1] + b"obj:org/" + j.data[1:-1]
                                                               + b"/*" + j.data[-1:])]}}),
        ("header kid", lambda j: {"header": {"kid": j}}),
        ("header typ", lambda j: {"header": {"typ": j}}),
        ("header alg", lambda j: {"header": {"alg": j}}),
        ("claim name", lambda j: {"claim_name": j}),
    ]
    for what, make in claim_sets:
        for label, v in VALUES:
            for form, j in json_forms(v):
                def claim(run, what=what, spec=make(j)):
                    run.token_case(what, spec)

                cases.append(("token %s=%s (%s)" % (what, label, form), claim))
    return cases


def token_case(self, what, spec):
    """One token with a hostile claim: a read-only upload batch (the 403 path), a download
    batch and the download it grants, an upload batch and the PUT and verify it grants, the
    token as Basic password and as ?jwt=. A batch that grants an action must not hand out a
    token the server then refuses."""
    def tok(scopes):
        if "claim_name" in spec:
            return self.signer.token(scopes=scopes, raw_claims=[(spec["claim_name"], 1)]).encode()
        claims = spec.get("claims", {})
        return self.signer.token(scopes=None if "scopes" in claims else scopes, header=spec.get("header"),
                                 claims=claims).encode()

    ro, rw = tok(("obj:org/repo/*:read",)), tok(("obj:org/repo/*",))
    self.post_batch(what + ": read-only upload batch", self.batch_body(), self.lfs_headers(ro))
    acts = self.actions(self.post_batch(what + ": download batch", self.download_body(), self.lfs_headers(rw)))
    if "download" in acts:
        self.follow(what + ": the granted download", acts["download"], b"GET")
    data = b"hostile-e2e upload " + self.case.encode()
    oid = hashlib.sha256(data).hexdigest()
    acts = self.actions(self.post_batch(what + ": upload batch", self.batch_body(oid=oid, size=len(data)),
                                        self.lfs_headers(rw)))
    if "upload" in acts:
        self.follow(what + ": the granted upload", acts["upload"], b"PUT", data, expect=(200, 201),
                    extra=[(b"Content-Type", b"application/octet-stream")])
        if "verify" in acts:
            self.follow(what + ": the granted verify", acts["verify"], b"POST",
                        json.dumps({"oid": oid, "size": len(data)}).encode(),
                        extra=[(b"Content-Type", LFS), (b"Accept", LFS)])
    self.post_batch(what + ": as Basic password", self.download_body(),
                    self.lfs_headers(Authorization=b"Basic " + self.signer.basic(b"_jwt", ro)))
    self.send(what + ": as ?jwt=", b"GET", OBJECTS + self.stored_oid.encode() + b"?jwt=" + ro)


Run.token_case = token_case

GROUPS = {
    "reproducers": group_reproducers,
    "framing": group_framing,
    "request_line": group_request_line,
    "headers": group_headers,
    "json_bodies": group_json_bodies,
    "token_claims": group_token_claims,
}


# ---------------------------------------------------------------------------------------
# commands


def cmd_run(a):
    cases = GROUPS[a.group]()
    run = Run(a)
    with open(a.results, "a") as out:
        for i in range(a.start, len(cases)):
            name, fn = cases[i]
            run.case, run.fails, run.rids = name, [], []
            try:
                fn(run)
            except OSError as e:
                run.fail("cannot talk to the server: %s" % e)
            alive = run.after_case()
            rec = {"group": a.group, "case": name, "fails": run.fails, "rids": run.rids,
                   "log": a.stdout_log, "died": not alive}
            out.write(json.dumps(rec) + "\n")
            out.flush()
            for f in run.fails:
                print("case %s: %s" % (name, f), file=sys.stderr)
            if not alive:
                with open(a.state, "w") as s:
                    s.write("%d\n" % (i + 1))
                return 3
    print("%s: %d cases from %d" % (a.group, len(cases) - a.start, a.start), file=sys.stderr)
    return 0


def read_results(path):
    recs = []
    with open(path) as f:
        for line in f:
            recs.append(json.loads(line))
    return recs


def cmd_check_logs(a):
    recs = read_results(a.results)
    case_of = {}
    died_logs = set()
    for r in recs:
        for rid in r.get("rids", []):
            case_of[rid] = r["case"]
        if r.get("died"):
            died_logs.add(r["log"])
    fails = {}

    def add(rid, msg):
        case = case_of.get(rid.decode("latin-1") if rid else "", "(no case: request id %s)"
                           % (rid.decode("latin-1") if rid else "none"))
        fails.setdefault(case, []).append(msg)

    logged = set()
    for path in a.stdout:
        name = os.path.basename(path)
        data = open(path, "rb").read()
        lines = data.split(b"\n")
        if lines[-1] != b"":
            m = RID_LOG_RE.search(lines[-1])
            add(m.group(1) if m else None, "%s: last line not terminated: %s" % (name, printable(lines[-1][:160])))
        for n, line in enumerate(lines[:-1], 1):
            m = RID_LOG_RE.search(line)
            rid = m.group(1) if m else None
            try:
                d = json.loads(line.decode("utf-8", errors="strict"))
            except (UnicodeDecodeError, ValueError) as e:
                add(rid, "%s line %d (%d bytes) is not JSON in UTF-8 (%s): %s"
                    % (name, n, len(line), str(e)[:80], printable(line[:160])))
                continue
            if not isinstance(d, dict):
                add(rid, "%s line %d is not a JSON object" % (name, n))
                continue
            if d.get("_type") == "AccessLog":
                missing = [k for k in ("request_id", "method", "path", "status", "sub", "name") if k not in d]
                if missing:
                    add(rid, "%s line %d: AccessLog without %s" % (name, n, ", ".join(missing)))
                logged.add(d.get("request_id"))
    for r in recs:
        if r["log"] in died_logs or r["log"] not in a.stdout:
            continue
        for rid in r.get("rids", []):
            if rid not in logged:
                fails.setdefault(r["case"], []).append("no complete AccessLog line for request %s" % rid)
    for path in a.stderr:
        name = os.path.basename(path)
        for n, line in enumerate(open(path, "rb").read().split(b"\n")[:-1], 1):
            m = RID_ERR_RE.search(line)
            rid = m.group(1) if m else None
            try:
                text = line.decode("utf-8", errors="strict")
            except UnicodeDecodeError as e:
                add(rid, "%s line %d is not UTF-8 (%s): %s" % (name, n, str(e)[:80], printable(line[:160])))
                continue
            if any(ord(c) < 0x20 and c != "\t" or ord(c) == 0x7F for c in text):
                add(rid, "%s line %d holds control characters: %s" % (name, n, printable(line[:160])))
    with open(a.results, "a") as out:
        for case, msgs in fails.items():
            out.write(json.dumps({"group": "logs", "case": case, "fails": msgs, "rids": [], "log": ""}) + "\n")
            for msg in msgs:
                print("case %s: %s" % (case, msg), file=sys.stderr)
    return 0


def cmd_died(a):
    """Adds how the server ended (its status, as the shell's wait saw it) to the last case."""
    recs = read_results(a.results)
    sig = a.status - 128 if a.status > 128 else 0
    how = "status %d" % a.status
    if sig:
        how += " (%s)" % (signal.Signals(sig).name if sig in signal.valid_signals() else "signal %d" % sig)
    last = recs[-1]
    last["fails"] = [("the server died: " + how) if m.startswith("the server died") else m for m in last["fails"]]
    with open(a.results, "w") as out:
        for r in recs:
            out.write(json.dumps(r) + "\n")
    print("case %s: the server died: %s" % (last["case"], how), file=sys.stderr)
    return 0


def cmd_summary(a):
    recs = read_results(a.results)
    cases = {}
    for r in recs:
        if r["group"] != "logs":
            cases.setdefault(r["case"], [])
    for r in recs:
        cases.setdefault(r["case"], []).extend(r["fails"])
    # the worst first: a death or a sanitizer report says more than what followed it
    bad = [(c, sorted(f, key=lambda m: not m.startswith(("the server died", "sanitizer report"))))
           for c, f in cases.items() if f]
    if not bad:
        print("all %d cases passed" % len(cases))
        return 0
    first = "; ".join("%s: %s" % (c, f[0][:160]) for c, f in bad[:3])
    print("%d of %d cases failed: %s%s" % (len(bad), len(cases), first, "; ..." if len(bad) > 3 else ""))
    for c, f in bad:
        print("  FAILED CASE %s: %s%s" % (c, f[0][:300], " (+%d more)" % (len(f) - 1) if len(f) > 1 else ""))
    return 1


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("groups")
    r = sub.add_parser("run")
    r.add_argument("group", choices=sorted(GROUPS))
    r.add_argument("--from", dest="start", type=int, default=0)
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--pid", type=int, required=True)
    for name in ("stdout-log", "stderr-log", "key", "iss", "aud", "store", "results", "tokens", "state"):
        r.add_argument("--" + name, required=True)
    c = sub.add_parser("check-logs")
    c.add_argument("--results", required=True)
    c.add_argument("--stdout", nargs="*", default=[])
    c.add_argument("--stderr", nargs="*", default=[])
    d = sub.add_parser("died")
    d.add_argument("--results", required=True)
    d.add_argument("--status", type=int, required=True)
    s = sub.add_parser("summary")
    s.add_argument("--results", required=True)
    a = p.parse_args()
    if a.cmd == "groups":
        print("\n".join(GROUPS))
        return 0
    return {"run": cmd_run, "check-logs": cmd_check_logs, "died": cmd_died, "summary": cmd_summary}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
