#!/usr/bin/env python3
"""Loopback stand-in for the Google Cloud Storage XML API, for lfsgate's tests and benches.

No GCS emulator can be installed here, so this serves what lfsgate and its clients use:
HEAD, GET (with single byte ranges), PUT (a copy with x-goog-copy-source: /<bucket>/<object>)
and DELETE on /<bucket>/<object> and the object
listing GET /<bucket>?prefix=&marker=&max-keys= (ListBucketResult), objects kept in memory
with a generation each (x-goog-generation on answers; x-goog-if-generation-match on PUT and
DELETE is checked as GCS does: 0 means "does not exist", a mismatch is 412 PreconditionFailed),
authenticated by V4 query-string signatures (GOOG4-RSA-SHA256) or, with --tokeninfo, by an
OAuth access token ("Authorization: Bearer", as lfsgate's own calls use it with workload
identity) that the tokeninfo URL given (google_auth_fake.py's) says is live; a token it does not
know or that expired gets 401 AuthenticationRequired. Like GCS it refuses:
  - a signature that does not verify with the service account's public key over the
    canonical request it rebuilds from what it received (403 SignatureDoesNotMatch);
  - a credential naming another account, or a scope that is not <date>/auto/storage/
    goog4_request (403 AccessDenied / 400 AuthorizationQueryParametersError);
  - an expired URL (400 ExpiredToken, as GCS answers), one dated in the future, or
    X-Goog-Expires outside 1..604800 (400);
  - no signature at all (403 AccessDenied, anonymous caller).
The signed host is the Host header as received (port included). response-content-disposition
(and response-content-type) in a valid signed GET become the response headers.

Usage: gcs_fake.py --key SERVICE_ACCOUNT.json --bucket NAME [--bucket NAME...]
                   [--host 127.0.0.1] [--port 0] [--latency-ms N] [--tokeninfo URL] [--quiet]
Prints the port it listens on as the first line of stdout. Extra, not GCS:
GET /_fake/objects lists {"<bucket>/<object>": size}, GET /_fake/object/<bucket>/<object>
returns an object's bytes, PUT /_fake/object/<bucket>/<object> replaces them (unauthenticated: a
store changed behind lfsgate's back), GET /_fake/stats gives request counts, among them "signed" and
"bearer" (requests authenticated each way) and "auth_refused" (all without auth).
Needs python3 and python3-cryptography only.
"""

import argparse
import calendar
import hashlib
import json
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler
from urllib.parse import quote, unquote, urlencode
from xml.sax.saxutils import escape

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from loopback import serve

MAX_EXPIRES = 604800
CLOCK_SKEW = 900  # seconds a URL may be dated in the future

STATE = {
    "objects": {},  # "bucket/object" -> bytes
    "generations": {},  # "bucket/object" -> int
    "next_generation": 1733400000000001,
    "buckets": set(),
    "email": "",
    "public_key": None,
    "latency": 0.0,
    "quiet": False,
    "stats": {"requests": 0, "refused": 0, "HEAD": 0, "GET": 0, "PUT": 0, "max_inflight": 0,
              "signed": 0, "bearer": 0, "auth_refused": 0},
    "tokeninfo": None,
    "page_size": 1000,
    "inflight": 0,
}
LOCK = threading.Lock()


def enc(s):
    """RFC 3986 percent-encoding, unreserved characters kept (what V4 signing uses)."""
    return quote(s, safe="-_.~")


def canonical_value(v):
    return " ".join(v.replace("\t", " ").split())


class Refused(Exception):
    def __init__(self, status, code, message, details=None, extra=None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details, self.extra = details, extra or {}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "gcs-fake"

    def log_message(self, fmt, *args):
        if not STATE["quiet"]:
            sys.stderr.write("gcs_fake: " + (fmt % args) + "\n")

    # ---- plumbing ----

    def split(self):
        path, _, query = self.path.partition("?")
        return path, query

    def read_body(self):
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            chunks = []
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.read(2)
            return b"".join(chunks)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def send(self, status, body=b"", headers=None, head=False):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.send_header("x-goog-request-id", "fake-%d" % STATE["stats"]["requests"])
        self.end_headers()
        if body and not head:
            self.wfile.write(body)

    def send_error_xml(self, e, head=False):
        parts = ["<?xml version='1.0' encoding='UTF-8'?><Error><Code>%s</Code><Message>%s</Message>"
                 % (e.code, escape(e.message))]
        if e.details:
            parts.append("<Details>%s</Details>" % escape(e.details))
        for k, v in e.extra.items():
            parts.append("<%s>%s</%s>" % (k, escape(v), k))
        parts.append("</Error>")
        with LOCK:
            STATE["stats"]["refused"] += 1
        self.send(e.status, "".join(parts).encode(), {"Content-Type": "application/xml; charset=UTF-8"},
                  head=head)

    # ---- V4 query-string authentication ----

    def authenticate(self, method, raw_path, raw_query):
        try:
            return self._authenticate(method, raw_path, raw_query)
        except Refused:
            with LOCK:
                STATE["stats"]["auth_refused"] += 1
            raise

    def _authenticate(self, method, raw_path, raw_query):
        params = []
        for item in raw_query.split("&") if raw_query else []:
            name, _, value = item.partition("=")
            params.append((unquote(name), unquote(value)))
        p = dict(params)
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer ") and "X-Goog-Signature" not in p:
            self.check_token(auth[7:])
            with LOCK:
                STATE["stats"]["bearer"] += 1
            return p
        p = self.check_signature(method, raw_path, params)
        with LOCK:
            STATE["stats"]["signed"] += 1
        return p

    def check_token(self, token):
        """Asks the token's issuer (tokeninfo) whether it is live, as GCS asks Google's."""
        refused = Refused(401, "AuthenticationRequired", "Authentication required.",
                          "Invalid Credentials")
        if not STATE["tokeninfo"]:
            raise refused
        try:
            with urllib.request.urlopen(STATE["tokeninfo"] + "?" + urlencode({"access_token": token}),
                                        timeout=10) as r:
                info = json.load(r)
        except (urllib.error.URLError, ValueError):
            raise refused
        if int(info.get("expires_in", 0)) < 0:
            raise refused

    def check_signature(self, method, raw_path, params):
        p = dict(params)
        if "X-Goog-Signature" not in p:
            raise Refused(403, "AccessDenied", "Access denied.",
                          "Anonymous caller does not have storage.objects access.")
        for req in ("X-Goog-Algorithm", "X-Goog-Credential", "X-Goog-Date", "X-Goog-Expires",
                    "X-Goog-SignedHeaders"):
            if req not in p:
                raise Refused(400, "AuthorizationQueryParametersError",
                              "Query-string authentication requires %s." % req)
        if p["X-Goog-Algorithm"] != "GOOG4-RSA-SHA256":
            raise Refused(400, "InvalidArgument", "Invalid argument.",
                          "Unsupported X-Goog-Algorithm.")
        try:
            date = time.strptime(p["X-Goog-Date"], "%Y%m%dT%H%M%SZ")
            start = calendar.timegm(date)
            expires = int(p["X-Goog-Expires"])
        except ValueError:
            raise Refused(400, "InvalidArgument", "Invalid argument.",
                          "X-Goog-Date or X-Goog-Expires is malformed.")
        if expires < 1 or expires > MAX_EXPIRES:
            raise Refused(400, "InvalidArgument", "Invalid argument.",
                          "Max allowed expiration interval is seven days (%d seconds)." % MAX_EXPIRES)
        cred = p["X-Goog-Credential"].split("/")
        if len(cred) != 5 or cred[1] != p["X-Goog-Date"][:8] or cred[2:] != ["auto", "storage", "goog4_request"]:
            raise Refused(400, "AuthorizationQueryParametersError",
                          "Error parsing the X-Goog-Credential parameter; the credential scope "
                          "must be <date>/auto/storage/goog4_request.")
        if cred[0] != STATE["email"]:
            raise Refused(403, "AccessDenied", "Access denied.",
                          "The credential does not name a known service account.")
        signed = p["X-Goog-SignedHeaders"].split(";")
        if "host" not in signed or signed != sorted(signed):
            raise Refused(400, "MalformedSecurityHeader",
                          "Your request has a malformed header.", "SignedHeaders must list host.")
        lines = []
        for name in signed:
            values = self.headers.get_all(name)
            if values is None:
                raise Refused(400, "MalformedSecurityHeader", "Your request has a malformed header.",
                              "Signed header %s is missing." % name)
            lines.append("%s:%s\n" % (name, ",".join(canonical_value(v) for v in values)))
        payload = "UNSIGNED-PAYLOAD"
        if "x-goog-content-sha256" in signed:
            payload = self.headers.get("x-goog-content-sha256")
        query = "&".join("%s=%s" % (enc(k), enc(v)) for k, v in
                         sorted((k, v) for k, v in params if k != "X-Goog-Signature"))
        creq = "\n".join([method, quote(unquote(raw_path), safe="/-_.~"), query, "".join(lines),
                          ";".join(signed), payload])
        sts = "\n".join(["GOOG4-RSA-SHA256", p["X-Goog-Date"], "/".join(cred[1:]),
                         hashlib.sha256(creq.encode()).hexdigest()])
        try:
            sig = bytes.fromhex(p["X-Goog-Signature"])
            STATE["public_key"].verify(sig, sts.encode(), padding.PKCS1v15(), hashes.SHA256())
        except (ValueError, InvalidSignature):
            raise Refused(403, "SignatureDoesNotMatch",
                          "The request signature we calculated does not match the signature you "
                          "provided. Check your Google secret key and signing method.",
                          None, {"StringToSign": sts, "CanonicalRequest": creq})
        # Only a URL signed as received can be "expired": a tampered one is refused above.
        now = time.time()
        if now > start + expires:
            raise Refused(400, "ExpiredToken", "Invalid argument.",
                          "Request has expired: %d" % (start + expires))
        if now + CLOCK_SKEW < start:
            raise Refused(400, "InvalidArgument", "Invalid argument.", "Request is not yet valid.")
        return p

    # ---- methods ----

    def handle_object(self, method):
        with LOCK:
            STATE["stats"]["requests"] += 1
            STATE["stats"][method] = STATE["stats"].get(method, 0) + 1
            STATE["inflight"] += 1
            STATE["stats"]["max_inflight"] = max(STATE["stats"]["max_inflight"], STATE["inflight"])
        try:
            if STATE["latency"]:
                time.sleep(STATE["latency"])
            self._handle_object(method)
        finally:
            with LOCK:
                STATE["inflight"] -= 1

    def _handle_object(self, method):
        raw_path, raw_query = self.split()
        head = method == "HEAD"
        body = self.read_body() if method == "PUT" else b""
        if raw_path.startswith("/_fake/") and method == "GET":
            return self.fake_admin(raw_path)
        bucket, _, obj = unquote(raw_path).lstrip("/").partition("/")
        try:
            params = self.authenticate(method, raw_path, raw_query)
            if bucket not in STATE["buckets"]:
                raise Refused(404, "NoSuchBucket", "The specified bucket does not exist.")
            if not obj and method == "GET":
                return self.list_objects(bucket, params)
            if not obj:
                raise Refused(400, "InvalidArgument", "Invalid argument.", "An object name is required.")
        except Refused as e:
            return self.send_error_xml(e, head=head)
        key = bucket + "/" + obj
        source = self.headers.get("x-goog-copy-source")
        if method == "PUT" and source is not None:
            # a copy within the store: the body comes from the source object (same bucket)
            with LOCK:
                body = STATE["objects"].get(unquote(source).lstrip("/"))
            if body is None:
                return self.send_error_xml(Refused(404, "NoSuchKey",
                                                   "The specified key does not exist."))
        if method in ("PUT", "DELETE"):
            return self.write_object(method, key, body)
        with LOCK:
            data = STATE["objects"].get(key)
            generation = STATE["generations"].get(key)
        if data is None:
            return self.send_error_xml(Refused(404, "NoSuchKey", "The specified key does not exist."),
                                       head=head)
        headers = {"Content-Type": params.get("response-content-type", "application/octet-stream"),
                   "ETag": '"%s"' % hashlib.md5(data).hexdigest(),
                   "x-goog-generation": str(generation),
                   "Accept-Ranges": "bytes"}
        if "response-content-disposition" in params:
            headers["Content-Disposition"] = params["response-content-disposition"]
        status, start, end = 200, 0, len(data) - 1
        rng = self.headers.get("Range")
        if rng and not head:
            r = parse_range(rng, len(data))
            if r is None:
                headers["Content-Range"] = "bytes */%d" % len(data)
                return self.send_error_xml(Refused(416, "InvalidRange",
                                                   "The requested range cannot be satisfied."))
            if r != "ignore":
                status, (start, end) = 206, r
                headers["Content-Range"] = "bytes %d-%d/%d" % (start, end, len(data))
        part = data[start:end + 1]
        headers["Content-Length"] = str(len(part))
        self.send(status, part, headers, head=head)

    def write_object(self, method, key, body):
        """PUT or DELETE, with x-goog-if-generation-match checked and applied atomically."""
        want = self.headers.get("x-goog-if-generation-match")
        if want is not None and not want.isdigit():
            return self.send_error_xml(Refused(400, "InvalidArgument", "Invalid argument.",
                                               "x-goog-if-generation-match must be an integer."))
        err, generation = None, None
        with LOCK:
            current = STATE["generations"].get(key)
            if want is not None and ((int(want) == 0 and current is not None) or
                                     (int(want) != 0 and current != int(want))):
                err = Refused(412, "PreconditionFailed",
                              "At least one of the pre-conditions you specified did not hold.")
            elif method == "DELETE" and current is None:
                err = Refused(404, "NoSuchKey", "The specified key does not exist.")
            elif method == "DELETE":
                del STATE["objects"][key]
                del STATE["generations"][key]
            else:
                generation = STATE["next_generation"]
                STATE["next_generation"] += 1
                STATE["objects"][key] = body
                STATE["generations"][key] = generation
        if err is not None:
            return self.send_error_xml(err)
        if method == "DELETE":
            return self.send(204)
        return self.send(200, b"", {"ETag": '"%s"' % hashlib.md5(body).hexdigest(),
                                    "x-goog-generation": str(generation)})

    def list_objects(self, bucket, params):
        """GET /<bucket>: the XML API listing, names after `marker` that start with `prefix`."""
        prefix, marker = params.get("prefix", ""), params.get("marker", "")
        try:
            max_keys = min(int(params.get("max-keys", "1000")), STATE["page_size"])
        except ValueError:
            raise Refused(400, "InvalidArgument", "Invalid argument.", "max-keys must be an integer.")
        with LOCK:
            STATE["stats"]["LIST"] = STATE["stats"].get("LIST", 0) + 1
            names = sorted(k[len(bucket) + 1:] for k in STATE["objects"] if k.startswith(bucket + "/"))
            rows = [(n, STATE["generations"][bucket + "/" + n], len(STATE["objects"][bucket + "/" + n]))
                    for n in names if n.startswith(prefix) and n > marker]
        page, truncated = rows[:max_keys], len(rows) > max_keys
        parts = ["<?xml version='1.0' encoding='UTF-8'?><ListBucketResult "
                 "xmlns='http://doc.s3.amazonaws.com/2006-03-01'><Name>%s</Name><Prefix>%s</Prefix>"
                 "<Marker>%s</Marker>" % (escape(bucket), escape(prefix), escape(marker))]
        if truncated:
            parts.append("<NextMarker>%s</NextMarker>" % escape(page[-1][0]))
        parts.append("<IsTruncated>%s</IsTruncated>" % ("true" if truncated else "false"))
        for name, generation, size in page:
            parts.append("<Contents><Key>%s</Key><Generation>%d</Generation><Size>%d</Size></Contents>"
                         % (escape(name), generation, size))
        parts.append("</ListBucketResult>")
        self.send(200, "".join(parts).encode(), {"Content-Type": "application/xml; charset=UTF-8"})

    def fake_admin(self, raw_path):
        if raw_path.startswith("/_fake/object/"):
            with LOCK:
                data = STATE["objects"].get(unquote(raw_path[len("/_fake/object/"):]))
            if data is None:
                return self.send(404, b"no such object\n", {"Content-Type": "text/plain"})
            return self.send(200, data, {"Content-Type": "application/octet-stream"})
        with LOCK:
            if raw_path == "/_fake/objects":
                doc = {k: len(v) for k, v in STATE["objects"].items()}
            else:
                doc = dict(STATE["stats"])
        self.send(200, json.dumps(doc).encode(), {"Content-Type": "application/json"})

    def do_HEAD(self):
        self.handle_object("HEAD")

    def do_GET(self):
        self.handle_object("GET")

    def do_PUT(self):
        raw_path, _ = self.split()
        if raw_path.startswith("/_fake/object/"):
            # Not GCS: replaces an object's bytes behind lfsgate's back (keeps its generation
            # sequence), for tests of what lfsgate does with a corrupt object.
            body = self.read_body()
            with LOCK:
                key = unquote(raw_path[len("/_fake/object/"):])
                STATE["objects"][key] = body
                STATE["generations"][key] = STATE["next_generation"]
                STATE["next_generation"] += 1
            return self.send(200)
        self.handle_object("PUT")

    def refuse_method(self):
        self.read_body()
        self.send_error_xml(Refused(405, "MethodNotAllowed", "The method is not allowed by this fake."))

    def do_DELETE(self):
        self.handle_object("DELETE")

    do_POST = do_PATCH = refuse_method


def parse_range(value, size):
    """(start, end) for a single satisfiable range, None if unsatisfiable, "ignore" otherwise."""
    if not value.startswith("bytes=") or "," in value:
        return "ignore"
    a, sep, b = value[6:].partition("-")
    if not sep:
        return "ignore"
    try:
        if a == "":
            n = int(b)
            if n == 0 or size == 0:
                return None
            return (max(0, size - n), size - 1)
        start = int(a)
        end = int(b) if b else size - 1
    except ValueError:
        return "ignore"
    if end < start:
        return "ignore"
    if start >= size:
        return None
    return (start, min(end, size - 1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--key", required=True, help="service-account JSON key (its public half verifies)")
    ap.add_argument("--bucket", action="append", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--latency-ms", type=float, default=0.0, help="delay before each answer")
    ap.add_argument("--tokeninfo", help="URL that vouches for bearer tokens (google_auth_fake.py's "
                    "/tokeninfo); without it only signed URLs are accepted")
    ap.add_argument("--page-size", type=int, default=1000,
                    help="most keys a listing answers with (GCS: 1000), to make listings page")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    STATE["tokeninfo"] = args.tokeninfo
    STATE["page_size"] = max(1, min(1000, args.page_size))
    with open(args.key, "rb") as f:
        sa = json.load(f)
    private = serialization.load_pem_private_key(sa["private_key"].encode(), password=None)
    STATE["public_key"] = private.public_key()
    STATE["email"] = sa["client_email"]
    STATE["buckets"] = set(args.bucket)
    STATE["latency"] = args.latency_ms / 1000.0
    STATE["quiet"] = args.quiet
    del private, sa
    serve(Handler, args.host, args.port)


if __name__ == "__main__":
    main()
