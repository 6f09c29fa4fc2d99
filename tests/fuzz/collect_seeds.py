#!/usr/bin/env python3
"""Writes seed inputs for the fuzz targets into an output folder (one subfolder per target),
from real inputs: the test logs of e2e runs made with E2E_GIT_TRACE=1 E2E_KEEP=1 (git-lfs's
batch, verify and lock bodies, the server's answers, Authorization headers, request paths),
the repository's config files (tests/compat/configs, tests/unit/data/config, the Helm chart's
values, the configs the e2e runs wrote), the hostile paths of tests/e2e/test_basic.sh, and
store answers captured from Azurite (XML files given with --xml, already in fuzz_store_xml's
input form; raw HTTP answers given with --http, in fuzz_http_client's form). run.sh -merge then keeps only the seeds that add coverage to tests/fuzz/corpus.

  collect_seeds.py OUT [--e2e DIR...] [--xml DIR] [--http DIR]
"""
import argparse
import base64
import glob
import hashlib
import json
import os
import re

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


class Seeds:
    def __init__(self, out):
        self.out = out

    def add(self, target, data):
        if isinstance(data, str):
            data = data.encode()
        d = os.path.join(self.out, target)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
            f.write(data)


def from_e2e(seeds, dirs):
    tokens, paths, bodies = set(), set(), set()
    for d in dirs:
        for log in glob.glob(os.path.join(d, "test.log")):
            text = open(log, encoding="utf-8", errors="replace").read()
            for m in re.finditer(r"^[a-z]*\| (\{.*)$", text, re.M):
                body = re.sub(r"\d\d:\d\d:\d\d\.\d+ trace.*$", "", m.group(1))
                bodies.add(body)
            for m in re.finditer(r"> Authorization: (.*)$", text, re.M):
                tokens.add(m.group(1).strip())
        for log in glob.glob(os.path.join(d, "server.*.log")):
            for m in re.finditer(r'"path":"([^"]*)"', open(log, errors="replace").read()):
                paths.add(m.group(1))
        for cfg in glob.glob(os.path.join(d, "*.yaml")):
            seeds.add("config", open(cfg, "rb").read())
    for body in bodies:
        seeds.add("json_read", body)
        if body.startswith('{"operation"'):
            seeds.add("batch", body)
    for value in tokens:
        seeds.add("jwt", "0" + value)
        tok = value.split(" ", 1)[-1]
        seeds.add("jwt", "0" + "Basic " + base64.b64encode(b"_jwt:" + tok.encode()).decode())
        seeds.add("jwt", "0" + "\n" + tok)  # as ?jwt=
        parts = tok.split(".")
        if len(parts) == 3:
            header, claims = b64url_decode(parts[0]), b64url_decode(parts[1])
            seeds.add("jwt", b"1" + header + b"\0" + claims)
            seeds.add("json_read", claims)
            scopes = json.loads(claims).get("scopes")
            for s in scopes if isinstance(scopes, list) else [scopes] if scopes else []:
                seeds.add("scope", s)
            seeds.add("jwt", "2" + parts[0])
    for p in paths:
        seeds.add("route", "0" + p)
        seeds.add("route", "1" + p)


def from_repo(seeds):
    for pattern in ["tests/compat/configs/*.yaml", "tests/unit/data/config/*.yaml",
                    "helm/lfsgate/values.yaml", "helm/lfsgate/ci/*.yaml"]:
        for f in glob.glob(os.path.join(ROOT, pattern)):
            text = open(f, "rb").read()
            seeds.add("config", text)
            cors = re.findall(rb"(?:https?://[^\s\"',\]]+|\*)", text)
            if cors:
                seeds.add("cors", b"\n".join(cors[:4]) + b"\n\n" + cors[0])
    # layers and overrides, as the giftless docs use them
    local = open(os.path.join(ROOT, "tests/unit/data/config/giftless-local.yaml"), "rb").read()
    seeds.add("config", local + b"\0" + b'{"SERVER": {"threads": 2}}' + b"\0" +
              b"GIFTLESS_CONFIG_SERVER_THREADS=4\nGIFTLESS_TRANSFER_ADAPTERS_basic_options_"
              b"storage_options_path=/tmp/x\nGIFTLESS_CONFIG_LEGACY_ENDPOINTS=false")
    for f in glob.glob(os.path.join(ROOT, "tests/unit/data/*/*.json")):
        seeds.add("json_read", open(f, "rb").read()[:65536])
    oid = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
    basic = open(os.path.join(ROOT, "tests/e2e/test_basic.sh"), encoding="utf-8").read()
    for m in re.finditer(r"'([^']*)'", basic[basic.find("test_hostile_paths"):]):
        p = m.group(1)
        if p and " " not in p:
            oid = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
            seeds.add("route", "0/%s/repo.git/info/lfs/objects/storage/%s" % (p.lstrip("/"), oid))
            seeds.add("route", "1/%s/repo/objects/storage/%s" % (p.lstrip("/"), oid))
    # batch requests in the forms of the batch API spec that git-lfs traces do not show
    for body in [
        {"operation": "download", "transfers": ["basic", "multipart-basic"],
         "ref": {"name": "refs/heads/main"}, "hash_algo": "sha256",
         "objects": [{"oid": oid, "size": 3, "x-filename": "a.txt", "x-disposition": "inline"}]},
        {"operation": "upload", "objects": [{"oid": oid, "size": 3, "extra": {
            "filename": "caf\u00e9 \ud83d\ude00.txt", "disposition": "attachment"}}]},
        {"operation": "upload", "objects": [{"oid": "ABC", "size": -1}, {"oid": oid, "size": 1e3}],
         "hash_algo": "md5", "transfers": []},
    ]:
        seeds.add("batch", json.dumps(body))
        seeds.add("json_read", json.dumps(body, indent=1))
    # scopes: the grammar's forms (auth/scope.h)
    oid = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
    for s in ["obj:*", "obj:org/repo:read", "obj:org/*:read,write", "obj:a/b/repo/%s:verify" % oid,
              "obj:%s" % oid, "obj:a/b/*/*:metadata:read", "obj:org/repo/*:meta:*",
              "obj:org/repo\nobj:other/x:write"]:
        seeds.add("scope", s)
    # proxy headers: trust counts, scheme, object size, Host, then headers (fuzz_proxy.c)
    for trust, headers in [
        (b"\1\1\1\1\0", b"x-forwarded-proto: https\nx-forwarded-host: lfs.example.org\n"
                        b"x-forwarded-port: 8443\nx-forwarded-prefix: /git/lfs/"),
        (b"\0\0\0\0\1", b'forwarded: for=192.0.2.43;proto=https;host="lfs.example.org:443"'),
        (b"\2\2\0\0\2", b"x-forwarded-proto: http, https\nx-forwarded-host: a, [2001:db8::1]:8080"
                        b"\nforwarded: host=a, host=b\nrange: bytes=0-99"),
        (b"\0\0\0\0\0", b"range: bytes=-500\nrange: bytes=100-\nrange: bytes=0-0,5-9"),
    ]:
        seeds.add("proxy", trust + b"\1\x04\0" + b"127.0.0.1:8080\n" + headers)
    # CORS: the patterns of tests/unit/test_cors.c's kinds
    for allowed, origin in [("https://portal.example.org", "https://portal.example.org"),
                            ("https://*.example.org\nhttp://localhost:*", "https://a.example.org"),
                            ("*", "null"), ("https://*-dev.example.org", "https://x-dev.example.org")]:
        seeds.add("cors", allowed + "\n\n" + origin)


def from_xml(seeds, d):
    for f in glob.glob(os.path.join(d, "*")):
        data = open(f, "rb").read()
        seeds.add("store_xml", data)
    seeds.add("store_xml", b"e<?xml version='1.0' encoding='UTF-8'?><Error><Code>NoSuchKey</Code>"
                           b"<Message>The specified key does not exist.</Message></Error>")
    seeds.add("store_xml", b"e<?xml version='1.0' encoding='UTF-8'?><Error><Code>AccessDenied"
                           b"</Code><Message>Access denied.</Message><Details>SignatureDoesNotMatch"
                           b"</Details></Error>")


def from_http(seeds, d):
    for f in glob.glob(os.path.join(d, "*")) if d else []:
        seeds.add("http_client", open(f, "rb").read())
    body = b"hello world"
    for answer in [
        b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nETag: \"0x8D\"\r\nContent-Type: "
        b"application/octet-stream\r\nx-ms-request-id: 5f3e\r\n\r\n" + body,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nx-goog-request-id: g1\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n"
        b"x-amz-request-id: a1\r\n\r\n",
        b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-4/11\r\nContent-Length: 5\r\n"
        b"\r\nhello",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + body,  # truncated
        b"HTTP/1.0 404 Not Found\r\n\r\n<?xml version='1.0' encoding='UTF-8'?><Error><Code>"
        b"NoSuchKey</Code></Error>",
    ]:
        for mode in (b"0", b"1", b"2"):
            seeds.add("http_client", mode + answer)


def store_auth(seeds):
    """Credential answers and files, in the forms of tests/fakes/google_auth_fake.py, the
    unit tests' data and the e2e suites' files (fuzz_store_auth.c's input form)."""
    seeds.add("store_auth", b't{"access_token": "ya29.fake-1-abcdef", "expires_in": 3599, '
                            b'"token_type": "Bearer"}')
    seeds.add("store_auth", b's{"keyId": "0123abcd", "signedBlob": "' +
              base64.b64encode(bytes(range(256))) + b'"}')
    key = os.path.join(ROOT, "tests/unit/data/gcs/test_service_account.not-a-test.json")
    seeds.add("store_auth", b"k" + open(key, "rb").read())
    seeds.add("store_auth", b"plfs\n# comment\n[default]\naws_access_key_id = AKIDWRONG\n"
                            b"aws_secret_access_key = wrong\n[lfs]\naws_access_key_id = AKIDLFS\n"
                            b"aws_secret_access_key = 0123456789abcdefSECRET\r\n"
                            b"aws_session_token = FQoGZXIvYXdz/token+value=\n[role]\n"
                            b"role_arn = arn:aws:iam::1:role/x\n")
    for f in glob.glob(os.path.join(ROOT, "tests/compat/configs/*.yaml")):
        for m in re.finditer(rb"connection_string: *(\S+)", open(f, "rb").read()):
            seeds.add("store_auth", b"c" + m.group(1))
    seeds.add("store_auth", b"cUseDevelopmentStorage=true")
    seeds.add("store_auth", b"cDefaultEndpointsProtocol=https;AccountName=acct;AccountKey="
                            b"c2VjcmV0LWtleS0wMTIzNDU2Nzg5;EndpointSuffix=core.windows.net")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--e2e", nargs="*", default=[])
    ap.add_argument("--xml")
    ap.add_argument("--http")
    a = ap.parse_args()
    seeds = Seeds(a.out)
    from_e2e(seeds, a.e2e)
    from_repo(seeds)
    if a.xml:
        from_xml(seeds, a.xml)
    from_http(seeds, a.http)
    store_auth(seeds)


if __name__ == "__main__":
    main()
