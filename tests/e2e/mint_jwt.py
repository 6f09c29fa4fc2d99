#!/usr/bin/python3
"""Test tokens for lfsgate's jwt provider (tests/e2e/test_jwt.sh, bench/jwt_batch.sh).

Needs the Debian packages python3-jwt (PyJWT 2.6) and python3-cryptography. Every token is
printed on stdout, nothing else.

  mint_jwt.py keygen PRIVATE_PEM PUBLIC_PEM [--bits 2048]
      a fresh RSA key pair (PKCS#8 private key, SubjectPublicKeyInfo public key)
  mint_jwt.py mint --key PRIVATE_PEM [options]
      a signed token; options:
        --alg RS256              the header's alg and the signing algorithm
        --scope S                a scope (repeatable); no --scope: no `scopes` claim
        --scopes-string          the claim is one string (the scopes joined by spaces; for
                                 giftless, one scope) instead of a list
        --sub/--name/--email     identity claims (sub defaults to "e2e-user")
        --iss/--aud              issuer / audience (--aud repeatable: a list when > 1)
        --exp-in N               exp = now + N seconds (default 600; may be negative)
        --nbf-in N / --iat-in N  nbf / iat relative to now (default: iat = now, no nbf)
        --no-exp                 leave exp out
        --kid K                  header kid
        --pad N                  add a claim "pad" of N characters (a large signed token)
        --unsigned               alg "none" and an empty signature (RFC 7519 section 6)
        --hmac-key-file F        sign with HMAC (the --alg must be HS*) using the bytes of F
                                 as the secret: "HS256 signed with the RSA public key PEM"
  mint_jwt.py tamper TOKEN --scope S [...]
      TOKEN's header and signature around a new payload: TOKEN's claims with the given
      scopes (the signature no longer matches)
  mint_jwt.py claims TOKEN
      the payload of TOKEN as JSON, signature not checked
"""
import argparse
import base64
import hashlib
import hmac
import json
import sys
import time

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def compact_json(obj):
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")


def keygen(args):
    key = rsa.generate_private_key(public_exponent=65537, key_size=args.bits)
    with open(args.private, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(args.public, "wb") as f:
        f.write(key.public_key().public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo))


def claims_from(args):
    now = int(time.time())
    claims = {"sub": args.sub, "iat": now + args.iat_in}
    if args.name is not None:
        claims["name"] = args.name
    if args.email is not None:
        claims["email"] = args.email
    if not args.no_exp:
        claims["exp"] = now + args.exp_in
    if args.nbf_in is not None:
        claims["nbf"] = now + args.nbf_in
    if args.iss is not None:
        claims["iss"] = args.iss
    if args.aud:
        claims["aud"] = args.aud[0] if len(args.aud) == 1 else args.aud
    if args.scope:
        claims["scopes"] = " ".join(args.scope) if args.scopes_string else args.scope
    if args.pad:
        claims["pad"] = "p" * args.pad
    return claims


def mint(args):
    claims = claims_from(args)
    header = {"typ": "JWT"}
    if args.kid is not None:
        header["kid"] = args.kid
    if args.unsigned or args.hmac_key_file:
        # PyJWT refuses both on purpose, so the JWS is assembled here.
        header["alg"] = "none" if args.unsigned else args.alg
        signing_input = b64url(compact_json(header)) + "." + b64url(compact_json(claims))
        if args.unsigned:
            return signing_input + "."
        digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[args.alg]
        with open(args.hmac_key_file, "rb") as f:
            secret = f.read()
        sig = hmac.new(secret, signing_input.encode("ascii"), digest).digest()
        return signing_input + "." + b64url(sig)
    with open(args.key, "rb") as f:
        key = f.read()
    return jwt.encode(claims, key, algorithm=args.alg, headers=header)


def tamper(args):
    head, payload, sig = args.token.split(".")
    claims = json.loads(b64url_decode(payload))
    claims["scopes"] = args.scope
    return head + "." + b64url(compact_json(claims)) + "." + sig


def show_claims(args):
    return json.dumps(json.loads(b64url_decode(args.token.split(".")[1])))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    k = sub.add_parser("keygen")
    k.add_argument("private")
    k.add_argument("public")
    k.add_argument("--bits", type=int, default=2048)
    m = sub.add_parser("mint")
    m.add_argument("--key")
    m.add_argument("--alg", default="RS256")
    m.add_argument("--scope", action="append", default=[])
    m.add_argument("--scopes-string", action="store_true")
    m.add_argument("--sub", default="e2e-user")
    m.add_argument("--name")
    m.add_argument("--email")
    m.add_argument("--iss")
    m.add_argument("--aud", action="append", default=[])
    m.add_argument("--exp-in", type=int, default=600)
    m.add_argument("--nbf-in", type=int)
    m.add_argument("--iat-in", type=int, default=0)
    m.add_argument("--no-exp", action="store_true")
    m.add_argument("--kid")
    m.add_argument("--pad", type=int, default=0)
    m.add_argument("--unsigned", action="store_true")
    m.add_argument("--hmac-key-file")
    t = sub.add_parser("tamper")
    t.add_argument("token")
    t.add_argument("--scope", action="append", default=[])
    c = sub.add_parser("claims")
    c.add_argument("token")
    args = p.parse_args()
    if args.cmd == "keygen":
        keygen(args)
        return
    if args.cmd == "mint":
        if not (args.key or args.unsigned or args.hmac_key_file):
            p.error("mint needs --key, --unsigned or --hmac-key-file")
        out = mint(args)
    elif args.cmd == "tamper":
        out = tamper(args)
    else:
        out = show_claims(args)
    sys.stdout.write(out + "\n")


if __name__ == "__main__":
    main()
