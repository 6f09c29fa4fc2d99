#!/usr/bin/env python3
"""Loopback stand-in for the endpoints that hand out temporary AWS keys, for lfsgate's tests
(no STS, ECS agent or EC2 instance can run here): STS AssumeRoleWithWebIdentity, the container
credentials endpoint and IMDSv2. Keys are short-lived and derived from a master secret that
s3_fake.py is given too (--sts-master), so the S3 stand-in accepts exactly the keys issued here,
checks the session token that comes with them, and refuses them once expired:
    key id   ASIA<16 hex digits, random>
    secret   base64(HMAC-SHA256(master, "secret:" + key id))
    token    "<key id>.<expiry, unix seconds>.<hex HMAC-SHA256(master, key id + "|" + expiry)>"
(derive_secret and check_token below; s3_fake.py imports them.)

  POST /  (form) Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=..&
       RoleSessionName=..&WebIdentityToken=..  (unsigned, as AWS takes it). The token must be
       what --token-file holds at that moment (read per request: the tests rotate it) and
       RoleArn must be --role-arn; refused with STS's XML errors otherwise
       (InvalidIdentityToken, AccessDenied, ValidationError). Answers the Credentials XML.
  GET  /creds  the container endpoint: needs "Authorization: <--container-token>" when given
       (401 otherwise); answers {"AccessKeyId", "SecretAccessKey", "Token", "Expiration"}.
  PUT  /latest/api/token  IMDSv2: needs X-aws-ec2-metadata-token-ttl-seconds (400 without);
       answers a session token.
  GET  /latest/meta-data/iam/security-credentials/[<role>]  needs X-aws-ec2-metadata-token
       (401 without, as IMDSv2-only instances); the role name, then its keys (JSON with
       "Code": "Success").
Not AWS, for the tests:
  GET /_fake/stats  {"sts", "sts_refused", "container", "container_refused", "imds_token",
                     "imds_credentials", "imds_refused", "tokens_seen": [web identity tokens
                     accepted, in order]}

Usage: aws_creds_fake.py --master SECRET [--token-file F] [--role-arn ARN]
                         [--container-token T] [--lifetime 3600] [--latency-ms N]
                         [--host 127.0.0.1] [--port 0] [--quiet]
Prints the port it listens on as the first line of stdout. Needs python3 only.
"""

import argparse
import base64
import hashlib
import hmac
import json
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from loopback import serve

IMDS_ROLE = "lfsgate-test-role"
ROLE_PATH = "/latest/meta-data/iam/security-credentials/"

STATE = {"master": "", "token_file": None, "role_arn": None, "container_token": None,
         "lifetime": 3600, "latency": 0.0, "quiet": False, "imds_tokens": set(),
         "stats": {"sts": 0, "sts_refused": 0, "container": 0, "container_refused": 0,
                   "imds_token": 0, "imds_credentials": 0, "imds_refused": 0, "tokens_seen": []}}
LOCK = threading.Lock()


def _mac(master, msg):
    return hmac.new(master.encode(), msg.encode(), hashlib.sha256)


def derive_secret(master, key_id):
    """The secret key of a key id issued with master."""
    return base64.b64encode(_mac(master, "secret:" + key_id).digest()).decode()


def issue(master, lifetime):
    """A new (key id, secret, token, expiry) valid for lifetime seconds."""
    key_id = "ASIA" + secrets.token_hex(8).upper()
    expiry = int(time.time()) + lifetime
    token = "%s.%d.%s" % (key_id, expiry, _mac(master, "%s|%d" % (key_id, expiry)).hexdigest())
    return key_id, derive_secret(master, key_id), token, expiry


def check_token(master, key_id, token):
    """None when token is the live session token of key_id; else (status, code, message)."""
    if not token:
        return 403, "InvalidToken", "Temporary keys need X-Amz-Security-Token."
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != key_id or not parts[1].isdigit() or not hmac.compare_digest(
            parts[2], _mac(master, "%s|%s" % (key_id, parts[1])).hexdigest()):
        return 403, "InvalidToken", "The provided token is malformed or otherwise invalid."
    if time.time() >= int(parts[1]):
        return 400, "ExpiredToken", "The provided token has expired."
    return None


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class Handler(BaseHTTPRequestHandler):
    server_version = "aws-creds-fake"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        if not STATE["quiet"]:
            sys.stderr.write("aws_creds_fake: " + (fmt % args) + "\n")

    def send(self, status, body, ctype):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def count(self, name):
        with LOCK:
            STATE["stats"][name] += 1

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def sts_error(self, status, code, message):
        self.count("sts_refused")
        body = ("<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error>"
                "<Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error>"
                "<RequestId>fake</RequestId></ErrorResponse>" % (code, escape(message)))
        self.send(status, body.encode(), "text/xml")

    def do_POST(self):
        if STATE["latency"]:
            time.sleep(STATE["latency"])
        form = {k: v[0] for k, v in parse_qs(self.body().decode(errors="replace")).items()}
        if self.path != "/" or form.get("Action") != "AssumeRoleWithWebIdentity":
            return self.sts_error(400, "InvalidAction", "Only AssumeRoleWithWebIdentity is served.")
        if form.get("Version") != "2011-06-15" or not form.get("RoleSessionName"):
            return self.sts_error(400, "ValidationError", "Version and RoleSessionName are required.")
        if form.get("RoleArn") != STATE["role_arn"]:
            return self.sts_error(403, "AccessDenied", "Not authorized to perform "
                                  "sts:AssumeRoleWithWebIdentity")
        try:
            with open(STATE["token_file"], encoding="utf-8") as f:
                want = f.read().strip()
        except OSError:
            want = None
        got = form.get("WebIdentityToken", "")
        if want is None or not hmac.compare_digest(got.encode(), want.encode()):
            return self.sts_error(400, "InvalidIdentityToken", "Couldn't verify the token.")
        key_id, secret, token, expiry = issue(STATE["master"], STATE["lifetime"])
        with LOCK:
            STATE["stats"]["sts"] += 1
            STATE["stats"]["tokens_seen"].append(got)
        body = ("<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/"
                "2011-06-15/\"><AssumeRoleWithWebIdentityResult><Credentials>"
                "<AccessKeyId>%s</AccessKeyId><SecretAccessKey>%s</SecretAccessKey>"
                "<SessionToken>%s</SessionToken><Expiration>%s</Expiration></Credentials>"
                "<AssumedRoleUser><Arn>%s</Arn></AssumedRoleUser></AssumeRoleWithWebIdentityResult>"
                "</AssumeRoleWithWebIdentityResponse>"
                % (key_id, secret, token, iso(expiry), escape(STATE["role_arn"] or "")))
        self.send(200, body.encode(), "text/xml")

    def json_keys(self, extra):
        key_id, secret, token, expiry = issue(STATE["master"], STATE["lifetime"])
        doc = dict(extra, AccessKeyId=key_id, SecretAccessKey=secret, Token=token,
                   Expiration=iso(expiry))
        self.send(200, json.dumps(doc).encode(), "application/json")

    def imds_authorized(self):
        with LOCK:
            ok = self.headers.get("X-aws-ec2-metadata-token") in STATE["imds_tokens"]
        if not ok:
            self.count("imds_refused")
            self.send(401, b"", "text/plain")
        return ok

    def do_PUT(self):
        self.body()
        if self.path != "/latest/api/token":
            return self.send(404, b"not found\n", "text/plain")
        if not self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
            self.count("imds_refused")
            return self.send(400, b"", "text/plain")
        token = "imds-" + secrets.token_hex(16)
        with LOCK:
            STATE["imds_tokens"].add(token)
            STATE["stats"]["imds_token"] += 1
        self.send(200, token.encode(), "text/plain")

    def do_GET(self):
        if STATE["latency"]:
            time.sleep(STATE["latency"])
        if self.path == "/_fake/stats":
            with LOCK:
                doc = json.dumps(STATE["stats"])
            return self.send(200, doc.encode(), "application/json")
        if self.path == "/creds":
            want = STATE["container_token"]
            got = self.headers.get("Authorization", "")
            if want is not None and not hmac.compare_digest(got.encode(), want.encode()):
                self.count("container_refused")
                return self.send(401, b'{"message": "unauthorized"}', "application/json")
            self.count("container")
            return self.json_keys({})
        if self.path == ROLE_PATH:
            if self.imds_authorized():
                self.send(200, IMDS_ROLE.encode(), "text/plain")
            return None
        if self.path == ROLE_PATH + IMDS_ROLE:
            if self.imds_authorized():
                self.count("imds_credentials")
                self.json_keys({"Code": "Success", "Type": "AWS-HMAC",
                                "LastUpdated": iso(time.time())})
            return None
        self.send(404, b"not found\n", "text/plain")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--master", required=True, help="derives the keys (give s3_fake.py the same)")
    ap.add_argument("--token-file", help="STS: the web identity token it accepts, read per request")
    ap.add_argument("--role-arn", default="arn:aws:iam::123456789012:role/lfsgate")
    ap.add_argument("--container-token", help="the container endpoint's Authorization value")
    ap.add_argument("--lifetime", type=int, default=3600, help="seconds the keys live")
    ap.add_argument("--latency-ms", type=float, default=0.0, help="delay before each answer")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    STATE.update(master=args.master, token_file=args.token_file, role_arn=args.role_arn,
                 container_token=args.container_token, lifetime=args.lifetime,
                 latency=args.latency_ms / 1000.0, quiet=args.quiet)
    serve(Handler, args.host, args.port)


if __name__ == "__main__":
    main()
