#!/usr/bin/env python3
"""Loopback stand-in for what GCS workload identity talks to: the GCE metadata server's token
endpoint and the IAM Credentials API's signBlob, for lfsgate's tests (no emulator exists).

One process serves both (and a tokeninfo endpoint for gcs_fake.py), so the IAM side knows
exactly which tokens the metadata side issued:
  GET  /computeMetadata/v1/instance/service-accounts/default/token
       needs "Metadata-Flavor: Google" (403 without, as the real server); answers
       {"access_token": "ya29.fake-<n>-<random>", "expires_in": --token-lifetime,
        "token_type": "Bearer"}; every call issues a new token (n counts them).
  POST /v1/projects/-/serviceAccounts/<email>:signBlob
       needs "Authorization: Bearer <a token issued above and not expired>" (401
       UNAUTHENTICATED otherwise); <email> must be the key's client_email (403
       PERMISSION_DENIED otherwise); body {"payload": base64}; answers {"keyId",
       "signedBlob": base64 of the RSA-SHA256 (PKCS #1 v1.5) signature of the payload} made
       with the service-account key given, so gcs_fake.py verifies the URLs built with it.
  GET  /tokeninfo?access_token=T  (as oauth2.googleapis.com/tokeninfo): 200 {"expires_in",
       "email"} for a live token, 400 {"error": "invalid_token"} otherwise.
Not Google, for the tests:
  GET  /_fake/stats   {"token_fetches", "token_refused", "signblob", "signblob_refused",
                       "signblob_inflight_max", "tokeninfo"}
  POST /_fake/fail    {"metadata": status or 0, "iam": status or 0}: answer that HTTP status
                      (with a Google-style error body) instead of serving; 0 serves again.

Usage: google_auth_fake.py --key SERVICE_ACCOUNT.json [--host 127.0.0.1] [--port 0]
                           [--token-lifetime 3599] [--token-latency-ms N] [--sign-latency-ms N]
                           [--quiet]
Prints the port it listens on as the first line of stdout. Needs python3 and
python3-cryptography only.
"""

import argparse
import base64
import json
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, unquote

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from loopback import serve

TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"
SIGN_PREFIX = "/v1/projects/-/serviceAccounts/"

STATE = {
    "tokens": {},  # token -> expiry (time.time())
    "issued": 0,
    "lifetime": 3599,
    "sign_latency": 0.0,
    "token_latency": 0.0,
    "key": None,
    "key_id": "",
    "email": "",
    "quiet": False,
    "fail": {"metadata": 0, "iam": 0},
    "inflight": 0,
    "stats": {"token_fetches": 0, "token_refused": 0, "signblob": 0, "signblob_refused": 0,
              "signblob_inflight_max": 0, "tokeninfo": 0},
}
LOCK = threading.Lock()


def google_error(status, reason, message):
    return {"error": {"code": status, "message": message, "status": reason}}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "google-auth-fake"

    def log_message(self, fmt, *args):
        if not STATE["quiet"]:
            sys.stderr.write("google_auth_fake: " + (fmt % args) + "\n")

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def reply(self, status, doc, content_type="application/json; charset=UTF-8"):
        data = (json.dumps(doc) if not isinstance(doc, str) else doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def count(self, name, n=1):
        with LOCK:
            STATE["stats"][name] += n

    # ---- the metadata server ----

    def token(self):
        if STATE["token_latency"]:
            time.sleep(STATE["token_latency"])
        with LOCK:
            failing = STATE["fail"]["metadata"]
        if failing:
            self.count("token_refused")
            return self.reply(failing, "metadata server failing on purpose\n", "text/plain")
        if self.headers.get("Metadata-Flavor") != "Google":
            self.count("token_refused")
            return self.reply(403, "Missing required header \"Metadata-Flavor\": \"Google\"\n",
                              "text/plain")
        with LOCK:
            STATE["issued"] += 1
            STATE["stats"]["token_fetches"] += 1
            token = "ya29.fake-%d-%s" % (STATE["issued"], secrets.token_urlsafe(24))
            lifetime = STATE["lifetime"]
            STATE["tokens"][token] = time.time() + lifetime
        self.reply(200, {"access_token": token, "expires_in": lifetime, "token_type": "Bearer"})

    def live_token(self, token):
        with LOCK:
            expiry = STATE["tokens"].get(token)
        return expiry is not None and time.time() < expiry, expiry

    # ---- IAM Credentials signBlob ----

    def sign_blob(self, path):
        raw = self.body()
        with LOCK:
            STATE["inflight"] += 1
            STATE["stats"]["signblob_inflight_max"] = max(STATE["stats"]["signblob_inflight_max"],
                                                          STATE["inflight"])
        try:
            if STATE["sign_latency"]:
                time.sleep(STATE["sign_latency"])
            status, doc = self._sign_blob(path, raw)
        finally:
            with LOCK:
                STATE["inflight"] -= 1
        self.count("signblob" if status == 200 else "signblob_refused")
        self.reply(status, doc)

    def _sign_blob(self, path, raw):
        with LOCK:
            failing = STATE["fail"]["iam"]
        if failing:
            return failing, google_error(failing, "UNAVAILABLE" if failing >= 500 else
                                         "PERMISSION_DENIED", "IAM failing on purpose")
        auth = self.headers.get("Authorization", "")
        live, expiry = self.live_token(auth[7:]) if auth.startswith("Bearer ") else (False, None)
        if not live:
            why = "expired" if expiry is not None else "not issued by the metadata server"
            return 401, google_error(401, "UNAUTHENTICATED",
                                     "Request had invalid authentication credentials (token %s)."
                                     % why)
        email = unquote(path[len(SIGN_PREFIX):-len(":signBlob")])
        if email != STATE["email"]:
            return 403, google_error(403, "PERMISSION_DENIED",
                                     "Permission 'iam.serviceAccounts.signBlob' denied on "
                                     "resource (or it may not exist).")
        try:
            payload = base64.b64decode(json.loads(raw)["payload"], validate=True)
        except (ValueError, KeyError, TypeError):
            return 400, google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        sig = STATE["key"].sign(payload, padding.PKCS1v15(), hashes.SHA256())
        return 200, {"keyId": STATE["key_id"], "signedBlob": base64.b64encode(sig).decode()}

    # ---- routes ----

    def do_GET(self):
        path, _, query = self.path.partition("?")
        if path == TOKEN_PATH:
            return self.token()
        if path == "/tokeninfo":
            self.count("tokeninfo")
            token = parse_qs(query).get("access_token", [""])[0]
            live, expiry = self.live_token(token)
            if not live:
                return self.reply(400, {"error": "invalid_token",
                                        "error_description": "Invalid Value"})
            return self.reply(200, {"expires_in": str(int(expiry - time.time())),
                                    "email": STATE["email"]})
        if path == "/_fake/stats":
            with LOCK:
                return self.reply(200, dict(STATE["stats"]))
        self.reply(404, google_error(404, "NOT_FOUND", "no such path in this fake"))

    def do_POST(self):
        path = self.path.partition("?")[0]
        if path.startswith(SIGN_PREFIX) and path.endswith(":signBlob"):
            return self.sign_blob(path)
        raw = self.body()
        if path == "/_fake/fail":
            doc = json.loads(raw or b"{}")
            with LOCK:
                for k in ("metadata", "iam"):
                    if k in doc:
                        STATE["fail"][k] = int(doc[k])
            return self.reply(200, dict(STATE["fail"]))
        self.reply(404, google_error(404, "NOT_FOUND", "no such path in this fake"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--key", required=True, help="service-account JSON key signBlob signs with")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--token-lifetime", type=int, default=3599, help="expires_in of each token")
    ap.add_argument("--token-latency-ms", type=float, default=0.0, help="delay of each token")
    ap.add_argument("--sign-latency-ms", type=float, default=0.0, help="delay of each signBlob")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    with open(args.key, "rb") as f:
        sa = json.load(f)
    STATE["key"] = serialization.load_pem_private_key(sa["private_key"].encode(), password=None)
    STATE["key_id"] = sa.get("private_key_id", "fake-key")
    STATE["email"] = sa["client_email"]
    STATE["lifetime"] = args.token_lifetime
    STATE["sign_latency"] = args.sign_latency_ms / 1000.0
    STATE["token_latency"] = args.token_latency_ms / 1000.0
    STATE["quiet"] = args.quiet
    serve(Handler, args.host, args.port)


if __name__ == "__main__":
    main()
