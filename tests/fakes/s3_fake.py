#!/usr/bin/env python3
"""Loopback stand-in for Amazon S3 (path-style requests), for lfsgate's tests and benches.

No S3 server that checks AWS Signature Version 4 can be installed here, so this one serves
what lfsgate and its clients use: PUT, GET (single byte ranges), HEAD and DELETE on
/<bucket>/<key>, ListObjectsV2 (GET /<bucket>?list-type=2&prefix=...) and the multipart calls
(CreateMultipartUpload, UploadPart with Content-MD5, ListParts in pages of --max-parts,
ListMultipartUploads, CompleteMultipartUpload checking order, ETags and the 5 MiB minimum part,
AbortMultipartUpload; --fail-part N makes UploadPart of part N answer 500), objects in memory,
and accepts ONLY requests signed with SigV4 (AWS4-HMAC-SHA256) for its one key pair, in either
form: the Authorization header or a presigned URL (X-Amz-* query parameters). Like S3 it
refuses:
  - no signature at all (403 AccessDenied);
  - an unknown access key id (403 InvalidAccessKeyId);
  - a signature that does not match the canonical request it rebuilds from what it received,
    with the Host header as received (403 SignatureDoesNotMatch);
  - a credential scope other than <date>/<region>/s3/aws4_request (400
    AuthorizationHeaderMalformed / AuthorizationQueryParametersError);
  - an expired presigned URL (403 AccessDenied "Request has expired"), X-Amz-Expires outside
    1..604800 (400), a header-signed request dated more than 15 minutes off (403
    RequestTimeTooSkewed);
  - x-amz-* headers that are not signed (403 AccessDenied);
  - with --session-token (temporary keys): a request without that X-Amz-Security-Token (403
    InvalidToken);
  - with --sts-master: besides its key pair, the temporary keys aws_creds_fake.py issues with
    the same master secret (key ids "ASIA..."), each only with its own X-Amz-Security-Token
    (403 InvalidToken) and only until it expires (400 ExpiredToken, counted as
    "expired_token" in /_fake/stats);
  - a body whose SHA-256 differs from a signed x-amz-content-sha256 (400
    XAmzContentSHA256Mismatch) or from x-amz-checksum-sha256 (400 BadDigest): nothing is
    stored then.
response-content-disposition in a signed GET becomes the Content-Disposition header.

Usage: s3_fake.py --access-key ID --secret-key SECRET [--session-token T] [--sts-master M]
                  --bucket NAME...
                  [--region us-east-1] [--host 127.0.0.1] [--port 0] [--latency-ms N]
                  [--page-size N] [--quiet]
Prints the port it listens on as the first line of stdout. Extra, not S3 (no auth):
GET /_fake/objects lists {"<bucket>/<key>": size}, GET /_fake/object/<bucket>/<key> returns an
object's bytes, PUT /_fake/object/<bucket>/<key> replaces them (a store changed behind lfsgate's
back), GET /_fake/stats gives request counts. CopyObject (PUT with x-amz-copy-source, signed
like every x-amz-* header) copies within the fake.
Needs python3 and gcs_fake.py next to it: the HTTP plumbing, request counting, error bodies and
/_fake/ pages are that stand-in's (its dependency python3-cryptography included).
"""

import argparse
import base64
import calendar
import hashlib
import hmac
import sys
import time
from urllib.parse import quote, unquote
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape

import aws_creds_fake
import gcs_fake
from gcs_fake import Handler as GcsHandler
from gcs_fake import Refused, canonical_value, enc, parse_range
from loopback import serve

MAX_EXPIRES = 604800
CLOCK_SKEW = 900
UNSIGNED = "UNSIGNED-PAYLOAD"

# gcs_fake's state: its request counting, latency, /_fake/ pages and error bodies serve here too.
STATE = gcs_fake.STATE
STATE.update(access_key="", secret_key="", token=None, region="us-east-1", sts_master=None,
             uploads={}, max_parts=1000, fail_part=0)
STATE["stats"].update(expired_token=0, temporary=0, list=0, parts=0, completed=0, aborted=0)
LOCK = gcs_fake.LOCK


def hmac256(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signature(secret, date, sts):
    k = hmac256(("AWS4" + secret).encode(), date)
    for part in (STATE["region"], "s3", "aws4_request"):
        k = hmac256(k, part)
    return hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()


class Handler(GcsHandler):
    server_version = "s3-fake"
    # Headers and body go out in two writes: without this, Nagle's algorithm and the peer's
    # delayed ACK hold every answer with a body ~40 ms (the bench would measure that).
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        if not STATE["quiet"]:
            sys.stderr.write("s3_fake: " + (fmt % args) + "\n")

    # ---- SigV4 ----

    def authenticate(self, method, raw_path, params, body):
        """Checks the request's signature; returns the presigned parameters (or {})."""
        q = dict(params)
        auth = self.headers.get("Authorization")
        presigned = "X-Amz-Signature" in q
        if auth is None and not presigned:
            raise Refused(403, "AccessDenied", "Access Denied")
        if presigned:
            for req in ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
                        "X-Amz-SignedHeaders"):
                if req not in q:
                    raise Refused(400, "AuthorizationQueryParametersError",
                                  "Query-string authentication version 4 requires the "
                                  "X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, "
                                  "X-Amz-SignedHeaders, and X-Amz-Expires parameters.")
            algorithm, credential, amz_date = q["X-Amz-Algorithm"], q["X-Amz-Credential"], q["X-Amz-Date"]
            signed, sig = q["X-Amz-SignedHeaders"].split(";"), q["X-Amz-Signature"]
            token = q.get("X-Amz-Security-Token")
            payload = q.get("X-Amz-Content-Sha256", UNSIGNED)
            bad_scope = "AuthorizationQueryParametersError"
        else:
            algorithm, _, rest = auth.partition(" ")
            fields = {}
            for part in rest.split(","):
                k, _, v = part.strip().partition("=")
                fields[k] = v
            if not {"Credential", "SignedHeaders", "Signature"} <= set(fields):
                raise Refused(400, "AuthorizationHeaderMalformed",
                              "The authorization header is malformed.")
            credential, signed, sig = fields["Credential"], fields["SignedHeaders"].split(";"), fields["Signature"]
            amz_date = self.headers.get("x-amz-date", "")
            token = self.headers.get("x-amz-security-token")
            payload = self.headers.get("x-amz-content-sha256")
            if payload is None:
                raise Refused(400, "InvalidRequest", "Missing required header for this request: "
                              "x-amz-content-sha256")
            bad_scope = "AuthorizationHeaderMalformed"
        if algorithm != "AWS4-HMAC-SHA256":
            raise Refused(400, "InvalidArgument", "Unsupported algorithm: expected AWS4-HMAC-SHA256.")
        cred = credential.split("/")
        if len(cred) != 5:
            raise Refused(400, bad_scope, "Error parsing the Credential.")
        secret, temporary = STATE["secret_key"], False
        if STATE["sts_master"] is not None and cred[0].startswith("ASIA"):
            refused = aws_creds_fake.check_token(STATE["sts_master"], cred[0], token)
            if refused is not None:
                if refused[1] == "ExpiredToken":
                    with LOCK:
                        STATE["stats"]["expired_token"] += 1
                raise Refused(*refused)
            secret, temporary = aws_creds_fake.derive_secret(STATE["sts_master"], cred[0]), True
        elif cred[0] != STATE["access_key"]:
            raise Refused(403, "InvalidAccessKeyId",
                          "The AWS Access Key Id you provided does not exist in our records.")
        if cred[1] != amz_date[:8] or cred[3:] != ["s3", "aws4_request"]:
            raise Refused(400, bad_scope, "The credential scope is not <date>/<region>/s3/aws4_request.")
        if cred[2] != STATE["region"]:
            raise Refused(400, bad_scope,
                          "The authorization header is malformed; the region '%s' is wrong; "
                          "expecting '%s'" % (cred[2], STATE["region"]), extra={"Region": STATE["region"]})
        if "host" not in signed or signed != sorted(signed):
            raise Refused(400, bad_scope, "SignedHeaders must include host and be sorted.")
        for name in self.headers.keys():
            if name.lower().startswith("x-amz-") and name.lower() not in signed:
                raise Refused(403, "AccessDenied",
                              "There were headers present in the request which were not signed",
                              extra={"HeadersNotSigned": name.lower()})
        lines = []
        for name in signed:
            values = self.headers.get_all(name)
            if values is None:
                raise Refused(403, "SignatureDoesNotMatch", "Signed header %s is missing." % name)
            lines.append("%s:%s\n" % (name, ",".join(canonical_value(v) for v in values)))
        query = "&".join("%s=%s" % (enc(k), enc(v)) for k, v in
                         sorted((k, v) for k, v in params if k != "X-Amz-Signature"))
        creq = "\n".join([method, quote(unquote(raw_path), safe="/-_.~"), query, "".join(lines),
                          ";".join(signed), payload])
        sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, "/".join(cred[1:]),
                         hashlib.sha256(creq.encode()).hexdigest()])
        if not hmac.compare_digest(signature(secret, cred[1], sts), sig):
            raise Refused(403, "SignatureDoesNotMatch",
                          "The request signature we calculated does not match the signature you "
                          "provided. Check your key and signing method.",
                          extra={"StringToSign": sts, "CanonicalRequest": creq})
        if temporary:
            with LOCK:
                STATE["stats"]["temporary"] += 1
        elif STATE["token"] is not None and token != STATE["token"]:
            raise Refused(403, "InvalidToken", "The provided token is malformed or otherwise invalid.")
        try:
            start = calendar.timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))
        except ValueError:
            raise Refused(400, "AccessDenied", "X-Amz-Date must be in the ISO8601 Long Format.")
        now = time.time()
        if presigned:
            try:
                expires = int(q["X-Amz-Expires"])
            except ValueError:
                raise Refused(400, "AuthorizationQueryParametersError", "X-Amz-Expires is not a number.")
            if expires < 1 or expires > MAX_EXPIRES:
                raise Refused(400, "AuthorizationQueryParametersError",
                              "X-Amz-Expires must be less than a week (in seconds) that is 604800")
            if now > start + expires:
                raise Refused(403, "AccessDenied", "Request has expired",
                              extra={"X-Amz-Expires": str(expires)})
            if now + CLOCK_SKEW < start:
                raise Refused(403, "AccessDenied", "Request is not valid yet.")
        elif abs(now - start) > CLOCK_SKEW:
            raise Refused(403, "RequestTimeTooSkewed",
                          "The difference between the request time and the current time is too large.")
        if payload != UNSIGNED and hashlib.sha256(body).hexdigest() != payload:
            raise Refused(400, "XAmzContentSHA256Mismatch",
                          "The provided 'x-amz-content-sha256' header does not match what was computed.")
        return q if presigned else {}

    # ---- methods ----

    def _handle_object(self, method):
        raw_path, raw_query = self.split()
        head = method == "HEAD"
        body = self.read_body() if method in ("PUT", "POST") else b""
        if raw_path.startswith("/_fake/") and method == "GET":
            return self.fake_admin(raw_path)
        params = []
        for item in raw_query.split("&") if raw_query else []:
            name, _, value = item.partition("=")
            params.append((unquote(name), unquote(value)))
        bucket, _, key = unquote(raw_path).lstrip("/").partition("/")
        try:
            signed = self.authenticate(method, raw_path, params, body)
            if bucket not in STATE["buckets"]:
                raise Refused(404, "NoSuchBucket", "The specified bucket does not exist.",
                              extra={"BucketName": bucket})
            q = dict(params)
            if not key:
                if method == "GET" and q.get("list-type") == "2":
                    return self.list_objects(bucket, q)
                if method == "GET" and "uploads" in q:
                    return self.list_uploads(bucket, q)
                raise Refused(405, "MethodNotAllowed", "The specified method is not allowed "
                              "against this resource (the fake serves objects and ListObjectsV2).")
            if "uploads" in q or "uploadId" in q:
                return self.multipart(method, bucket, key, q, body)
            if method == "PUT":
                checksum = self.headers.get("x-amz-checksum-sha256")
                if checksum is not None and checksum != base64.b64encode(hashlib.sha256(body).digest()).decode():
                    raise Refused(400, "BadDigest",
                                  "The SHA256 you specified did not match the calculated checksum.")
        except Refused as e:
            return self.send_error_xml(e, head=head)
        name = bucket + "/" + key
        source = self.headers.get("x-amz-copy-source")
        if method == "PUT" and source is not None:
            # CopyObject: "<bucket>/<key>" (a leading '/' allowed), URL-encoded
            with LOCK:
                data = STATE["objects"].get(unquote(source).lstrip("/"))
                if data is not None:
                    STATE["objects"][name] = data
            if data is None:
                return self.send_error_xml(Refused(404, "NoSuchKey", "The specified key does not exist."))
            etag = hashlib.md5(data).hexdigest()
            return self.send(200, ("<CopyObjectResult><ETag>&quot;%s&quot;</ETag></CopyObjectResult>"
                                   % etag).encode(), {"Content-Type": "application/xml"})
        if self.conditional(method, name, body):
            return
        if method == "PUT":
            with LOCK:
                STATE["objects"][name] = body
            return self.send(200, b"", {"ETag": '"%s"' % hashlib.md5(body).hexdigest()})
        if method == "DELETE":
            with LOCK:
                STATE["objects"].pop(name, None)
            return self.send(204)
        with LOCK:
            data = STATE["objects"].get(name)
        if data is None:
            return self.send_error_xml(Refused(404, "NoSuchKey", "The specified key does not exist."),
                                       head=head)
        headers = {"Content-Type": "application/octet-stream",
                   "ETag": '"%s"' % hashlib.md5(data).hexdigest(), "Accept-Ranges": "bytes"}
        if "response-content-disposition" in signed:
            headers["Content-Disposition"] = signed["response-content-disposition"]
        status, start, end = 200, 0, len(data) - 1
        rng = self.headers.get("Range")
        if rng and not head:
            r = parse_range(rng, len(data))
            if r is None:
                return self.send_error_xml(Refused(416, "InvalidRange",
                                                   "The requested range is not satisfiable"))
            if r != "ignore":
                status, (start, end) = 206, r
                headers["Content-Range"] = "bytes %d-%d/%d" % (start, end, len(data))
        part = data[start:end + 1]
        headers["Content-Length"] = str(len(part)) if not head else str(len(data))
        self.send(status, part, headers, head=head)

    def conditional(self, method, name, body):
        """A PutObject with If-None-Match: * or a DeleteObject with If-Match: <etag>, as S3
        does them (conditional deletes since 2024): the check and the write under one lock, so
        of racing conditional writes exactly one wins. 412 PreconditionFailed when the object
        exists (PUT) or has another ETag (DELETE); 404 NoSuchKey for a DELETE of nothing.
        True when the request was such a call and has been answered."""
        none_match, match = self.headers.get("If-None-Match"), self.headers.get("If-Match")
        if not ((method == "PUT" and none_match is not None) or (method == "DELETE" and match is not None)):
            return False
        if method == "PUT" and none_match != "*":
            self.send_error_xml(Refused(501, "NotImplemented", "If-None-Match on PUT takes only *."))
            return True
        with LOCK:
            data = STATE["objects"].get(name)
            etag = None if data is None else '"%s"' % hashlib.md5(data).hexdigest()
            if method == "PUT" and data is None:
                STATE["objects"][name] = body
                etag = '"%s"' % hashlib.md5(body).hexdigest()
                refused = None
            elif method == "PUT":
                refused = Refused(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
            elif data is None:
                refused = Refused(404, "NoSuchKey", "The specified key does not exist.")
            elif match not in (etag, "*"):
                refused = Refused(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
            else:
                del STATE["objects"][name]
                refused = None
            STATE["stats"]["conditional"] = STATE["stats"].get("conditional", 0) + 1
        if refused is not None:
            self.send_error_xml(refused)
        elif method == "PUT":
            self.send(200, b"", {"ETag": etag})
        else:
            self.send(204)
        return True

    def list_objects(self, bucket, q):
        with LOCK:
            STATE["stats"]["list"] = STATE["stats"].get("list", 0) + 1
        prefix = q.get("prefix", "")
        limit = max(1, min(STATE["page_size"], int(q.get("max-keys", "1000"))))
        after = q.get("continuation-token") or q.get("start-after") or ""
        with LOCK:
            keys = sorted((k[len(bucket) + 1:], len(v)) for k, v in STATE["objects"].items()
                          if k.startswith(bucket + "/" + prefix))
        keys = [kv for kv in keys if kv[0] > after]
        page, more = keys[:limit], len(keys) > limit
        parts = ["<?xml version='1.0' encoding='UTF-8'?><ListBucketResult><Name>%s</Name>"
                 "<Prefix>%s</Prefix><KeyCount>%d</KeyCount><MaxKeys>%d</MaxKeys>"
                 "<IsTruncated>%s</IsTruncated>" % (escape(bucket), escape(prefix), len(page), limit,
                                                    "true" if more else "false")]
        for k, size in page:
            parts.append("<Contents><Key>%s</Key><Size>%d</Size></Contents>" % (escape(k), size))
        if more:
            parts.append("<NextContinuationToken>%s</NextContinuationToken>" % escape(page[-1][0]))
        parts.append("</ListBucketResult>")
        self.send(200, "".join(parts).encode(), {"Content-Type": "application/xml"})

    # ---- multipart uploads ----

    def multipart(self, method, bucket, key, q, body):
        """CreateMultipartUpload, UploadPart, ListParts, CompleteMultipartUpload and
        AbortMultipartUpload on bucket/key (the caller authenticated the request)."""
        xml = {"Content-Type": "application/xml"}
        if method == "POST" and "uploads" in q:
            upload = "upload-" + hashlib.sha256(("%s/%s/%f" % (bucket, key, time.time())).encode()).hexdigest()[:32]
            with LOCK:
                STATE["uploads"][upload] = {"bucket": bucket, "key": key, "parts": {},
                                            "initiated": time.time()}
            return self.send(200, ("<InitiateMultipartUploadResult><Bucket>%s</Bucket><Key>%s</Key>"
                                   "<UploadId>%s</UploadId></InitiateMultipartUploadResult>"
                                   % (escape(bucket), escape(key), upload)).encode(), xml)
        with LOCK:
            up = STATE["uploads"].get(q.get("uploadId", ""))
        if up is None or up["bucket"] != bucket or up["key"] != key:
            raise Refused(404, "NoSuchUpload", "The specified multipart upload does not exist.")
        if method == "PUT":
            try:
                number = int(q.get("partNumber", ""))
            except ValueError:
                number = 0
            if not 1 <= number <= 10000:
                raise Refused(400, "InvalidArgument", "Part number must be an integer between 1 and 10000.")
            if number == STATE["fail_part"]:
                raise Refused(500, "InternalError", "We encountered an internal error. Please try again.")
            md5 = self.headers.get("Content-MD5")
            if md5 is not None and md5 != base64.b64encode(hashlib.md5(body).digest()).decode():
                raise Refused(400, "BadDigest", "The Content-MD5 you specified did not match what we received.")
            with LOCK:
                up["parts"][number] = body
                STATE["stats"]["parts"] = STATE["stats"].get("parts", 0) + 1
            return self.send(200, b"", {"ETag": '"%s"' % hashlib.md5(body).hexdigest()})
        if method == "GET":
            marker = int(q.get("part-number-marker") or 0)
            limit = max(1, min(1000, int(q.get("max-parts") or STATE["max_parts"])))
            with LOCK:
                numbers = sorted(n for n in up["parts"] if n > marker)
                page = [(n, up["parts"][n]) for n in numbers[:limit]]
            more = len(numbers) > limit
            out = ["<ListPartsResult><Bucket>%s</Bucket><Key>%s</Key><UploadId>%s</UploadId>"
                   "<IsTruncated>%s</IsTruncated>" % (escape(bucket), escape(key), q["uploadId"],
                                                     "true" if more else "false")]
            if more:
                out.append("<NextPartNumberMarker>%d</NextPartNumberMarker>" % page[-1][0])
            for n, data in page:
                out.append("<Part><PartNumber>%d</PartNumber><ETag>&quot;%s&quot;</ETag><Size>%d</Size></Part>"
                           % (n, hashlib.md5(data).hexdigest(), len(data)))
            out.append("</ListPartsResult>")
            return self.send(200, "".join(out).encode(), xml)
        if method == "DELETE":
            with LOCK:
                STATE["uploads"].pop(q["uploadId"], None)
                STATE["stats"]["aborted"] += 1
            return self.send(204)
        if method != "POST":
            raise Refused(405, "MethodNotAllowed", "The specified method is not allowed against this resource.")
        try:
            root = ET.fromstring(body)
            asked = [(int(p.findtext("PartNumber")), (p.findtext("ETag") or "").strip('"'))
                     for p in root.findall("Part")]
        except (ET.ParseError, TypeError, ValueError):
            raise Refused(400, "MalformedXML", "The XML you provided was not well-formed.")
        if not asked or [n for n, _ in asked] != sorted({n for n, _ in asked}):
            raise Refused(400, "InvalidPartOrder", "The list of parts was not in ascending order.")
        with LOCK:
            parts = dict(up["parts"])
        for i, (n, etag) in enumerate(asked):
            if n not in parts or hashlib.md5(parts[n]).hexdigest() != etag:
                raise Refused(400, "InvalidPart", "One or more of the specified parts could not be found.")
            if i < len(asked) - 1 and len(parts[n]) < 5 * 1024 * 1024:
                raise Refused(400, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed object size.")
        data = b"".join(parts[n] for n, _ in asked)
        etag = "%s-%d" % (hashlib.md5(b"".join(hashlib.md5(parts[n]).digest() for n, _ in asked)).hexdigest(), len(asked))
        with LOCK:
            STATE["objects"][bucket + "/" + key] = data
            STATE["uploads"].pop(q["uploadId"], None)
            STATE["stats"]["completed"] = STATE["stats"].get("completed", 0) + 1
        self.send(200, ("<CompleteMultipartUploadResult><Bucket>%s</Bucket><Key>%s</Key>"
                        "<ETag>&quot;%s&quot;</ETag></CompleteMultipartUploadResult>"
                        % (escape(bucket), escape(key), etag)).encode(), xml)

    def list_uploads(self, bucket, q):
        prefix = q.get("prefix", "")
        with LOCK:
            ups = sorted((u["key"], u["initiated"], uid) for uid, u in STATE["uploads"].items()
                         if u["bucket"] == bucket and u["key"].startswith(prefix))
        out = ["<ListMultipartUploadsResult><Bucket>%s</Bucket><Prefix>%s</Prefix>"
               "<IsTruncated>false</IsTruncated>" % (escape(bucket), escape(prefix))]
        for k, _, uid in ups:
            out.append("<Upload><Key>%s</Key><UploadId>%s</UploadId></Upload>" % (escape(k), uid))
        out.append("</ListMultipartUploadsResult>")
        self.send(200, "".join(out).encode(), {"Content-Type": "application/xml"})

    def do_DELETE(self):
        self.handle_object("DELETE")

    def do_POST(self):
        self.handle_object("POST")

    do_PATCH = GcsHandler.refuse_method


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--access-key", required=True)
    ap.add_argument("--secret-key", required=True)
    ap.add_argument("--session-token", help="the keys are temporary: require this token")
    ap.add_argument("--sts-master", help="also accept aws_creds_fake.py's keys made with this")
    ap.add_argument("--bucket", action="append", required=True)
    ap.add_argument("--max-parts", type=int, default=1000, help="ListParts page size")
    ap.add_argument("--fail-part", type=int, default=0, help="UploadPart of this part number answers 500")
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--latency-ms", type=float, default=0.0, help="delay before each answer")
    ap.add_argument("--page-size", type=int, default=1000,
                    help="most keys a ListObjectsV2 page holds (S3: 1000), to make listings page")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    STATE.update(access_key=args.access_key, secret_key=args.secret_key, token=args.session_token,
                 sts_master=args.sts_master, max_parts=args.max_parts, fail_part=args.fail_part,
                 buckets=set(args.bucket), region=args.region, latency=args.latency_ms / 1000.0,
                 quiet=args.quiet, page_size=max(1, min(1000, args.page_size)))
    serve(Handler, args.host, args.port)


if __name__ == "__main__":
    main()
