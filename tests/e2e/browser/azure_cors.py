#!/usr/bin/env python3
"""Sets the CORS rules of an Azure Blob service (Azurite) with Set Blob Service Properties,
signed with Shared Key by tests/e2e/azurite.py, then reads them back to check.

  azure_cors.py ENDPOINT ORIGIN [ORIGIN...]

ENDPOINT is http://127.0.0.1:PORT/devstoreaccount1. One rule: the listed origins, the
methods a browser upload and download use, any request header, and the response headers a
page reads (Content-Disposition among them) exposed. Exit status 0 on success, 1 with a
message on stderr otherwise.
"""
import os
import sys
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from azurite import request  # noqa: E402

EXPOSED = "content-disposition,content-type,content-length,content-md5,etag,last-modified,x-ms-*"


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 1
    endpoint, origins = argv[0].rstrip("/"), argv[1:]
    body = (
        '<?xml version="1.0" encoding="utf-8"?>'
        "<StorageServiceProperties><Cors><CorsRule>"
        f"<AllowedOrigins>{escape(','.join(origins))}</AllowedOrigins>"
        "<AllowedMethods>GET,HEAD,PUT,POST,DELETE,OPTIONS</AllowedMethods>"
        "<MaxAgeInSeconds>60</MaxAgeInSeconds>"
        f"<ExposedHeaders>{EXPOSED}</ExposedHeaders>"
        "<AllowedHeaders>*</AllowedHeaders>"
        "</CorsRule></Cors></StorageServiceProperties>"
    ).encode()
    url = f"{endpoint}/?restype=service&comp=properties"
    status, resp = request("PUT", url, body, {"Content-Type": "application/xml"})
    if status != 202:
        print(f"set service properties: {status} {resp[:300]!r}", file=sys.stderr)
        return 1
    status, resp = request("GET", url)
    if status != 200:
        print(f"get service properties: {status} {resp[:300]!r}", file=sys.stderr)
        return 1
    rules = ET.fromstring(resp).findall("./Cors/CorsRule")
    if len(rules) != 1 or rules[0].findtext("AllowedOrigins") != ",".join(origins):
        print(f"service properties read back: {resp[:500]!r}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
