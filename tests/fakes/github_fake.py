#!/usr/bin/env python3
"""Loopback stand-in for the parts of the GitHub REST API that lfsgate's github auth provider
calls, for lfsgate's tests. It counts every call so the tests can prove what was asked.

The world it serves comes from a JSON file (--world):
  {"users": {"<token>": {"login": "alice", "id": 1, "name": "Alice", "email": "a@x"}},
   "permissions": {"<org>/<repo>": {"<login>": "admin" | "write" | "read" | "none"}},
   "installations": {"<token>": {"id": 7, "app_id": 70, "app_slug": "lfs-bot",
                                 "client_id": "Iv1.abc", "org": "<org>",
                                 "contents": "write" | "read",
                                 "repositories": "all" | ["<repo>", ...]}}}
API (authenticated with "Authorization: Bearer <token>" or "token <token>"; an unknown token
gets 401 {"message": "Bad credentials"}, as GitHub):
  GET /user                                          a user token's user
  GET /repos/<org>/<repo>/collaborators/<login>/permission
                                                     {"permission", "role_name", "user"};
                                                     404 when the repository is unknown or
                                                     the caller cannot see it
  GET /orgs/<org>/installations                      {"total_count", "installations": [...]}
                                                     of the installations on <org>, each with
                                                     id, app_id, app_slug, client_id,
                                                     permissions.contents, repository_selection
  GET /installation/repositories?per_page=N&page=P   an installation token's repositories,
                                                     paginated with a Link header (rel="next",
                                                     rel="last")
Not GitHub, for the tests:
  GET  /_fake/stats   {"calls": {"<endpoint>": n}, "total": n, "max_inflight": n}, endpoints
                      "user", "permission", "org_installations", "installation_repositories"
  POST /_fake/reset   zeroes the counters
  POST /_fake/mode    {"delay_ms": N (every API answer waits that long),
                       "fail": HTTP status or 0 (answer that status instead of serving),
                       "rate_limit": seconds or 0 (answer 403 with x-ratelimit-remaining: 0,
                       x-ratelimit-reset and retry-after as GitHub's secondary limit)}
                      keys left out keep their value.

Usage: github_fake.py --world WORLD.json [--host 127.0.0.1] [--port 0] [--per-page-max 100]
                      [--quiet]
Prints the port it listens on as the first line of stdout. Needs python3 only.
"""

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, unquote, urlsplit

from loopback import serve

STATE = {
    "world": {"users": {}, "permissions": {}, "installations": {}},
    "mode": {"delay_ms": 0, "fail": 0, "rate_limit": 0},
    "calls": {"user": 0, "permission": 0, "org_installations": 0, "installation_repositories": 0},
    "inflight": 0,
    "max_inflight": 0,
    "quiet": False,
    "per_page_max": 100,
}
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "github-fake"
    # Headers and body go out in two writes: without this, Nagle's algorithm and the
    # client's delayed ACK add ~40 ms to every answer, which the benchmark would count.
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        if not STATE["quiet"]:
            sys.stderr.write("github_fake: " + (fmt % args) + "\n")

    def send_json(self, status, doc, headers=None):
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def token(self):
        auth = self.headers.get("Authorization") or ""
        scheme, _, value = auth.partition(" ")
        if scheme.lower() in ("bearer", "token") and value.strip():
            return value.strip()
        return None

    # ---- admin ----

    def do_POST(self):
        path = urlsplit(self.path).path
        if path == "/_fake/reset":
            self.read_body()
            with LOCK:
                for k in STATE["calls"]:
                    STATE["calls"][k] = 0
                STATE["max_inflight"] = 0
            self.send_json(200, {})
        elif path == "/_fake/mode":
            doc = json.loads(self.read_body() or b"{}")
            with LOCK:
                for k in ("delay_ms", "fail", "rate_limit"):
                    if k in doc:
                        STATE["mode"][k] = int(doc[k])
                mode = dict(STATE["mode"])
            self.send_json(200, mode)
        else:
            self.send_json(404, {"message": "Not Found"})

    def do_GET(self):
        url = urlsplit(self.path)
        path = url.path
        if path == "/_fake/stats":
            with LOCK:
                calls = dict(STATE["calls"])
                doc = {"calls": calls, "total": sum(calls.values()),
                       "max_inflight": STATE["max_inflight"]}
            self.send_json(200, doc)
            return
        parts = [unquote(p) for p in path.strip("/").split("/")]
        endpoint = None
        if parts == ["user"]:
            endpoint = "user"
        elif len(parts) == 6 and parts[0] == "repos" and parts[3] == "collaborators" \
                and parts[5] == "permission":
            endpoint = "permission"
        elif len(parts) == 3 and parts[0] == "orgs" and parts[2] == "installations":
            endpoint = "org_installations"
        elif parts == ["installation", "repositories"]:
            endpoint = "installation_repositories"
        if endpoint is None:
            self.send_json(404, {"message": "Not Found"})
            return
        with LOCK:
            STATE["calls"][endpoint] += 1
            STATE["inflight"] += 1
            STATE["max_inflight"] = max(STATE["max_inflight"], STATE["inflight"])
            mode = dict(STATE["mode"])
        try:
            if mode["delay_ms"]:
                time.sleep(mode["delay_ms"] / 1000.0)
            self.api(endpoint, parts, parse_qs(url.query), mode)
        finally:
            with LOCK:
                STATE["inflight"] -= 1

    # ---- the API ----

    def api(self, endpoint, parts, query, mode):
        if mode["rate_limit"]:
            reset = int(time.time()) + mode["rate_limit"]
            self.send_json(403, {"message": "API rate limit exceeded"},
                           {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset),
                            "retry-after": str(mode["rate_limit"])})
            return
        if mode["fail"]:
            self.send_json(mode["fail"], {"message": "Server Error"})
            return
        if self.headers.get("Accept") != "application/vnd.github+json":
            self.send_json(415, {"message": "send Accept: application/vnd.github+json"})
            return
        world = STATE["world"]
        tok = self.token()
        user = world["users"].get(tok) if tok else None
        inst = world["installations"].get(tok) if tok else None
        if user is None and inst is None:
            self.send_json(401, {"message": "Bad credentials"})
            return
        if endpoint == "user":
            if user is None:  # an installation token has no user
                self.send_json(403, {"message": "Resource not accessible by integration"})
                return
            self.send_json(200, dict(user, type="User"))
        elif endpoint == "permission":
            org, repo, login = parts[1], parts[2], parts[4]
            perms = world["permissions"].get(f"{org}/{repo}")
            if perms is None or (user is not None and user["login"] not in perms):
                # GitHub hides repositories the caller cannot see behind a 404
                self.send_json(404, {"message": "Not Found"})
                return
            p = perms.get(login, "none")
            self.send_json(200, {"permission": p, "role_name": p, "user": {"login": login}})
        elif endpoint == "org_installations":
            org = parts[1]
            found = [
                {"id": i["id"], "app_id": i["app_id"], "app_slug": i["app_slug"],
                 "client_id": i.get("client_id", ""), "account": {"login": org},
                 "permissions": {"contents": i["contents"]},
                 "repository_selection": "all" if i["repositories"] == "all" else "selected"}
                for i in world["installations"].values() if i["org"] == org]
            self.send_json(200, {"total_count": len(found), "installations": found})
        else:
            if inst is None:
                self.send_json(403, {"message": "This endpoint needs an installation token"})
                return
            names = inst["repositories"]
            if names == "all":
                names = sorted({k.split("/", 1)[1] for k in world["permissions"]
                                if k.split("/", 1)[0] == inst["org"]})
            per_page = min(int(query.get("per_page", ["30"])[0]), STATE["per_page_max"])
            page = int(query.get("page", ["1"])[0])
            last = max(1, (len(names) + per_page - 1) // per_page)
            chunk = names[(page - 1) * per_page:page * per_page]
            base = f"http://{self.headers.get('Host')}/installation/repositories?per_page={per_page}"
            links = []
            if page < last:
                links.append(f'<{base}&page={page + 1}>; rel="next"')
            links.append(f'<{base}&page={last}>; rel="last"')
            self.send_json(200, {
                "total_count": len(names),
                "repositories": [{"name": n, "full_name": f"{inst['org']}/{n}",
                                  "owner": {"login": inst["org"]}} for n in chunk]},
                {"Link": ", ".join(links)})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--world", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--per-page-max", type=int, default=100)
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    with open(args.world, encoding="utf-8") as f:
        world = json.load(f)
    for k in ("users", "permissions", "installations"):
        STATE["world"][k] = world.get(k, {})
    STATE["quiet"] = args.quiet
    STATE["per_page_max"] = args.per_page_max
    serve(Handler, args.host, args.port)


if __name__ == "__main__":
    main()
