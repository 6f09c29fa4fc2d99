#!/usr/bin/env bash
# tests/e2e/test_proxy.sh: lfsgate behind a reverse proxy, as portals deploy it: Debian's
# nginx in front, under the path prefix /giftless/ (nginx started per test on a free port
# with its own prefix dir, config and pid file, stopped by its pid; see start_nginx in
# lib.sh), with the X-Forwarded-Host/Proto/Port/Prefix headers and giftless's ProxyFix
# middleware config, or RFC 7239 Forwarded with SERVER.trust_forwarded:
#   - real git + git-lfs push and clone (1 B, 5 MB, 20 MB) through nginx, request bodies
#     streamed (proxy_request_buffering off); a 40 MB upload through a location where nginx
#     buffers the body; hrefs carry the public host:port and the prefix (current and legacy
#     routes); errors and ranged downloads pass through;
#   - nginx keeps its upstream connections to lfsgate alive across requests;
#   - a 401 sent before a large streamed body was read reaches the client as such;
#   - spoofed X-Forwarded-* / Forwarded headers sent straight to lfsgate without the
#     middleware are ignored (hrefs use the Host), with the middleware the trusted values
#     (rightmost per trusted proxy count) are used and bad ones refused;
#   - RFC 7239 Forwarded with trust_forwarded: 1 and 2, direct and through nginx.
# Run: LFSGATE_BIN=build/server/lfsgate tests/e2e/test_proxy.sh   (see lib.sh for options)
# Test functions are called through run_test, which shellcheck cannot follow:
# shellcheck disable=SC2317
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MIB=1048576

# A missing nginx fails (E2E_ALLOW_SKIP=1: a SKIP line, which run-all.sh counts as a failure).
if [[ ! -x $NGINX_BIN ]]; then
    if [[ ${E2E_ALLOW_SKIP:-0} == 1 ]]; then
        echo "SKIP test_proxy.sh: nginx not found ($NGINX_BIN); scripts/install-deps.sh --with-tests installs it"
        exit 0
    fi
    echo "FAIL proxy_prerequisites: nginx not found ($NGINX_BIN); scripts/install-deps.sh --with-tests installs it"
    exit 1
fi

# ---------------------------------------------------------------------------------------
# set-up

# proxy_site FILE: /giftless/ streams request bodies to lfsgate (proxy_request_buffering
# off, as large uploads need), /buffered/ lets nginx buffer them (its default); both with
# keep-alive connections to the upstream. The upstream's name is what lfsgate sees as Host.
proxy_site() {
    {
        echo "upstream lfsgate_upstream {"
        echo "    server 127.0.0.1:$LFSGATE_PORT;"
        echo "    keepalive 8;"
        echo "}"
        echo "server {"
        echo "    listen 127.0.0.1:@PORT@;"
        nginx_proxy_location /giftless lfsgate_upstream 'proxy_request_buffering off;' 'proxy_buffering off;'
        nginx_proxy_location /buffered lfsgate_upstream 'proxy_request_buffering on;'
        echo "}"
    } >"$1"
}

# proxied EXTRA_YAML: start_local_lfsgate EXTRA_YAML, then nginx in front (proxy_site); sets PUBLIC
# (the public origin, http://127.0.0.1:NGINX_PORT).
proxied() {
    start_local_lfsgate "$1"
    proxy_site "$E2E_TMP/site.conf"
    start_nginx "$E2E_TMP/site.conf"
    PUBLIC=http://127.0.0.1:$NGINX_PORT
}

# ---------------------------------------------------------------------------------------
# assertions

# assert_hrefs PREFIX WHAT: every href of the last batch answer starts with PREFIX (and
# there is at least one).
assert_hrefs() {
    assert_status 200
    assert_json "$HTTP_BODY" "[h for o in d['objects'] for a in o.get('actions', {}).values() for h in ([a['href']] if isinstance(a, dict) else [p['href'] for p in a])] != []" "$2: hrefs in the answer"
    local bad
    bad=$(python3 - "$HTTP_BODY" "$1" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1], "rb"))
for o in d["objects"]:
    for name, a in o.get("actions", {}).items():
        for x in (a if isinstance(a, list) else [a]):
            if not x["href"].startswith(sys.argv[2]):
                print(f"{name}: {x['href']}")
EOF
)
    [[ -z $bad ]] || fail "$2: expected every href to start with $1, got: $(tr '\n' ' ' <<<"$bad")"
}

# batch_hrefs_are BASE PREFIX WHAT [CURL_ARGS...]: upload batch of a new object (upload and
# verify hrefs) and download batch of a stored one ($STORED_OID, $STORED_SIZE) through BASE
# with the curl arguments; all hrefs start with PREFIX.
batch_hrefs_are() {
    local base=$1 prefix=$2 what=$3 oid
    shift 3
    oid=$(printf '%s' "$what $RANDOM" | sha256sum | cut -d ' ' -f 1)
    batch_with "$base" upload "$oid" 10 "$@"
    assert_hrefs "$prefix/objects/storage/" "$what (upload)"
    assert_json "$HTTP_BODY" "d['objects'][0]['actions']['upload']['href'] == '$prefix/objects/storage/$oid'" "$what: upload href"
    assert_json "$HTTP_BODY" "d['objects'][0]['actions']['verify']['href'] == '$prefix/objects/storage/verify'" "$what: verify href"
    batch_with "$base" download "$STORED_OID" "$STORED_SIZE" "$@"
    assert_hrefs "$prefix/objects/storage/" "$what (download)"
    assert_json "$HTTP_BODY" "d['objects'][0]['actions']['download']['href'].split('?')[0] == '$prefix/objects/storage/$STORED_OID'" "$what: download href"
}

# batch_with BASE OPERATION OID SIZE [CURL_ARGS...]: lfs_batch (transfers ["basic"]) with
# extra curl arguments (forwarding headers).
batch_with() {
    local base=$1 op=$2 oid=$3 size=$4 transfers='["basic"]'
    shift 4
    lfs_post "$base/objects/batch" \
        "{\"operation\": \"$op\", \"transfers\": $transfers, \"ref\": {\"name\": \"refs/heads/main\"}, \"objects\": [{\"oid\": \"$oid\", \"size\": $size}], \"hash_algo\": \"sha256\"}" "$@"
}

# store_one BASE: uploads a small object through BASE; sets STORED_OID, STORED_SIZE.
store_one() {
    random_file "$E2E_TMP/stored.bin" 4321
    STORED_OID=$(sha256_of "$E2E_TMP/stored.bin")
    STORED_SIZE=4321
    lfs_upload "$1" "$E2E_TMP/stored.bin"
}

# upstream_conn_ports: the ephemeral ports of every TCP socket between a client and lfsgate's
# port (any state but LISTEN, TIME_WAIT included), one per line, from /proc/net/tcp.
upstream_conn_ports() {
    python3 - "$LFSGATE_PORT" <<'EOF'
import sys
port = int(sys.argv[1])
ports = set()
with open("/proc/net/tcp") as f:
    next(f)
    for line in f:
        fields = line.split()
        local, remote, state = fields[1], fields[2], fields[3]
        lport, rport = int(local.split(":")[1], 16), int(remote.split(":")[1], 16)
        if state == "0A":  # LISTEN
            continue
        if rport == port:
            ports.add(lport)       # nginx's side
        elif lport == port:
            ports.add(rport)       # lfsgate's side of the same connection
for p in sorted(ports):
    print(p)
EOF
}

# ---------------------------------------------------------------------------------------
# tests

test_git_through_nginx() {
    local url f oid
    local -a files=(one.bin five.bin data/twenty.bin) stored=()
    proxied "$PROXYFIX_YAML"
    url=$PUBLIC/giftless/group/sub/repo.git/info/lfs
    setup_repo work "$url"
    random_file "$REPO_DIR/one.bin" 1
    random_file "$REPO_DIR/five.bin" $((5 * MIB + 3))
    random_file "$REPO_DIR/data/twenty.bin" $((20 * MIB + 1))
    mkdir -p "$E2E_TMP/orig/data"
    for f in "${files[@]}"; do
        cp "$REPO_DIR/$f" "$E2E_TMP/orig/$f"
    done
    tgit -C "$REPO_DIR" add -A
    tgit -C "$REPO_DIR" commit -q -m "three LFS files"
    git_push "$REPO_DIR"
    for f in "${files[@]}"; do
        oid=$(sha256_of "$E2E_TMP/orig/$f")
        assert_same_file "$E2E_TMP/orig/$f" "$STORE/group/sub/repo/$oid" "stored object of $f"
        stored+=("group/sub/repo/$oid")
        # the upload went through nginx, under the prefix, and lfsgate took it
        assert_file_matches "$NGINX_ACCESS_LOG" "^PUT /giftless/group/sub/repo\.git/info/lfs/objects/storage/$oid 200 up=200\$" "nginx access log (upload of $f)"
    done
    assert_only_files "$STORE" "${stored[@]}"
    assert_file_matches "$NGINX_ACCESS_LOG" '^POST /giftless/group/sub/repo\.git/info/lfs/objects/batch 200 up=200$' "nginx access log (batch)"
    assert_file_matches "$NGINX_ACCESS_LOG" '^POST /giftless/group/sub/repo\.git/info/lfs/objects/storage/verify 200 up=200$' "nginx access log (verify)"

    clone_repo "$REPO_BARE" "$E2E_TMP/clone" "$url"
    for f in "${files[@]}"; do
        assert_same_file "$E2E_TMP/orig/$f" "$E2E_TMP/clone/$f" "cloned $f"
        oid=$(sha256_of "$E2E_TMP/orig/$f")
        assert_file_matches "$NGINX_ACCESS_LOG" "^GET /giftless/group/sub/repo\.git/info/lfs/objects/storage/$oid(\\?[^ ]*)? 200 up=200\$" "nginx access log (download of $f)"
    done
    # nginx removed the prefix: lfsgate saw its own paths only
    assert_file_contains "$LFSGATE_LOG" '"path":"/group/sub/repo.git/info/lfs/objects/batch"' "lfsgate access log"
    assert_file_lacks "$LFSGATE_LOG" '/giftless' "lfsgate access log"

    # the hrefs: public host:port and prefix, current and legacy routes
    STORED_OID=$(sha256_of "$E2E_TMP/orig/five.bin")
    STORED_SIZE=$((5 * MIB + 3))
    batch_hrefs_are "$url" "$url" "batch through nginx"
    mkdir -p "$STORE/org/repo"
    cp "$STORE/group/sub/repo/$STORED_OID" "$STORE/org/repo/$STORED_OID"
    batch_hrefs_are "$PUBLIC/giftless/org/repo" "$PUBLIC/giftless/org/repo.git/info/lfs" "legacy batch through nginx"

    # a ranged download and an error answer pass through nginx unchanged
    http GET "$url/objects/storage/$STORED_OID" -H 'Range: bytes=100-199'
    assert_status 206
    assert_eq "bytes 100-199/$STORED_SIZE" "$(http_header Content-Range)" "Content-Range through nginx"
    head -c 200 "$E2E_TMP/orig/five.bin" | tail -c 100 >"$E2E_TMP/range.expected"
    assert_same_file "$E2E_TMP/range.expected" "$HTTP_BODY" "ranged download through nginx"
    random_file "$E2E_TMP/x.bin" $((2 * MIB))
    random_file "$E2E_TMP/y.bin" $((2 * MIB))
    http PUT "$url/objects/storage/$(sha256_of "$E2E_TMP/x.bin")" -H 'Content-Type: application/octet-stream' -T "$E2E_TMP/y.bin"
    assert_status 422
    assert_json_error
    assert_no_file "$STORE/group/sub/repo/$(sha256_of "$E2E_TMP/x.bin")" "object of a corrupt upload through nginx"

    # 40 MB through the location where nginx buffers the request body: more than lfsgate
    # keeps in memory (it spools), nginx sends it with a Content-Length
    random_file "$E2E_TMP/forty.bin" $((40 * MIB + 5))
    lfs_batch "$PUBLIC/buffered/org/repo.git/info/lfs" upload "$(sha256_of "$E2E_TMP/forty.bin")" $((40 * MIB + 5))
    assert_hrefs "$PUBLIC/buffered/org/repo.git/info/lfs/objects/storage/" "batch through the buffering location"
    lfs_upload "$PUBLIC/buffered/org/repo.git/info/lfs" "$E2E_TMP/forty.bin"
    assert_same_file "$E2E_TMP/forty.bin" "$STORE/org/repo/$(sha256_of "$E2E_TMP/forty.bin")" "40 MB object uploaded through the buffering location"
    lfs_download_href "$PUBLIC/buffered/org/repo.git/info/lfs" "$(sha256_of "$E2E_TMP/forty.bin")" $((40 * MIB + 5))
    http GET "$DL_HREF" "${DL_HEADERS[@]}"
    assert_status 200
    assert_same_file "$E2E_TMP/forty.bin" "$HTTP_BODY" "40 MB object downloaded through nginx"
    rm -f "$HTTP_BODY"
    assert_file_lacks "$NGINX_ERROR_LOG" '[error]' "nginx error log"
    assert_file_lacks "$NGINX_ERROR_LOG" '[crit]' "nginx error log"
    stop_nginx
    assert_server_alive
}

# nginx keeps its upstream connections alive: 60 requests through it (each from a new
# client connection) use one or two connections to lfsgate, not 60. Connections are counted
# in /proc/net/tcp (TIME_WAIT included); 5 direct requests first show that each new
# connection is seen.
test_keepalive_upstream() {
    local before mid after i
    proxied "$PROXYFIX_YAML"
    store_one "$PUBLIC/giftless/org/repo.git/info/lfs"
    before=$(upstream_conn_ports)
    [[ -n $before ]] || fail "no connection from nginx to lfsgate in /proc/net/tcp after an upload through nginx"
    for ((i = 0; i < 5; i++)); do
        http GET "http://127.0.0.1:$LFSGATE_PORT/healthz"
        assert_status 200
    done
    mid=$(upstream_conn_ports)
    assert_new_conns "$before" "$mid" 5 7 "5 direct requests to lfsgate (control)"
    for ((i = 0; i < 30; i++)); do
        lfs_batch "$PUBLIC/giftless/org/repo.git/info/lfs" download "$STORED_OID" "$STORED_SIZE"
        assert_status 200
        http GET "$PUBLIC/giftless/org/repo.git/info/lfs/objects/storage/$STORED_OID"
        assert_status 200
    done
    after=$(upstream_conn_ports)
    assert_new_conns "$mid" "$after" 0 2 "60 requests through nginx (upstream keep-alive)"
    [[ $(grep -c ' up=200$' "$NGINX_ACCESS_LOG") -ge 60 ]] || fail "nginx access log: expected 60 requests answered 200 by lfsgate"
    stop_nginx
    assert_server_alive
}

# assert_new_conns BEFORE AFTER MIN MAX WHAT: the number of connection ports in AFTER that
# are not in BEFORE (lists from upstream_conn_ports) is within [MIN, MAX].
assert_new_conns() {
    local n=0 p
    for p in $2; do
        grep -qx "$p" <<<"$1" || n=$((n + 1))
    done
    echo "$5: $n new connections (before: $(tr '\n' ' ' <<<"$1"); after: $(tr '\n' ' ' <<<"$2"))" >&2
    ((n >= $3 && n <= $4)) || fail "$5: expected $3 to $4 new TCP connections to lfsgate, saw $n"
}

# Without the middleware (giftless's default), forwarding headers are client input and are
# ignored: hrefs are built from the Host header.
test_spoofed_headers_ignored() {
    local direct base
    local -a spoof=(-H 'X-Forwarded-Host: evil.example:666' -H 'X-Forwarded-Proto: https'
        -H 'X-Forwarded-Port: 8443' -H 'X-Forwarded-Prefix: /evil' -H 'X-Forwarded-For: 192.0.2.66'
        -H 'Forwarded: for=192.0.2.66;host=evil.example;proto=https')
    proxied ""
    direct=http://127.0.0.1:$LFSGATE_PORT
    store_one "$direct/org/repo.git/info/lfs"
    batch_hrefs_are "$direct/org/repo.git/info/lfs" "$direct/org/repo.git/info/lfs" "spoofed headers, no middleware" "${spoof[@]}"
    batch_hrefs_are "$direct/org/repo" "$direct/org/repo.git/info/lfs" "spoofed headers, no middleware, legacy route" "${spoof[@]}"
    # the Host header is what counts
    batch_hrefs_are "$direct/org/repo.git/info/lfs" "http://files.example:9000/org/repo.git/info/lfs" "Host header, spoofed headers" \
        -H 'Host: files.example:9000' "${spoof[@]}"
    # and the href built from the Host works
    random_file "$E2E_TMP/a.bin" 777
    batch_with "$direct/org/repo.git/info/lfs" upload "$(sha256_of "$E2E_TMP/a.bin")" 777 "${spoof[@]}"
    http PUT "$(action_href "$HTTP_BODY" 0 upload)" -H 'Content-Type: application/octet-stream' -T "$E2E_TMP/a.bin"
    assert_status 200
    assert_same_file "$E2E_TMP/a.bin" "$STORE/org/repo/$(sha256_of "$E2E_TMP/a.bin")" "object uploaded through the Host-based href"
    # behind nginx without the middleware, nginx's X-Forwarded-* are ignored just the same:
    # the hrefs name the Host nginx sent (the upstream's name), not the public address
    base=$PUBLIC/giftless/org/repo.git/info/lfs
    batch_hrefs_are "$base" "http://lfsgate_upstream/org/repo.git/info/lfs" "through nginx, no middleware"
    stop_nginx
}

# With the middleware, the trusted values are used: the rightmost one per trusted proxy
# (x_* = 1), across repeated header lines; bad values are refused.
test_proxyfix_trusted_values() {
    local direct d
    start_local_lfsgate "$PROXYFIX_YAML"
    direct=http://127.0.0.1:$LFSGATE_PORT
    d=$direct/org/repo.git/info/lfs
    store_one "$d"
    batch_hrefs_are "$d" "https://portal.example/giftless/org/repo.git/info/lfs" "all four headers, default port" \
        -H 'X-Forwarded-Host: portal.example' -H 'X-Forwarded-Proto: https' -H 'X-Forwarded-Port: 443' -H 'X-Forwarded-Prefix: /giftless'
    batch_hrefs_are "$direct/org/repo" "https://portal.example:8443/giftless/org/repo.git/info/lfs" "legacy route, other port" \
        -H 'X-Forwarded-Host: portal.example' -H 'X-Forwarded-Proto: https' -H 'X-Forwarded-Port: 8443' -H 'X-Forwarded-Prefix: /giftless'
    batch_hrefs_are "$d" "http://portal.example:9443/a/b/org/repo.git/info/lfs" "host with port, nested prefix with a trailing slash" \
        -H 'X-Forwarded-Host: portal.example:9443' -H 'X-Forwarded-Prefix: /a/b/'
    batch_hrefs_are "$d" "https://portal.example/giftless/org/repo.git/info/lfs" "lists: the rightmost value (one trusted proxy)" \
        -H 'X-Forwarded-Host: evil.example, portal.example' -H 'X-Forwarded-Proto: http, https' \
        -H 'X-Forwarded-Prefix: /evil, /giftless'
    batch_hrefs_are "$d" "https://portal.example/giftless/org/repo.git/info/lfs" "repeated lines: the last one (appended by the proxy)" \
        -H 'X-Forwarded-Host: evil.example' -H 'X-Forwarded-Host: portal.example' -H 'X-Forwarded-Proto: https' \
        -H 'X-Forwarded-Prefix: /evil' -H 'X-Forwarded-Prefix: /giftless'
    batch_hrefs_are "$d" "$d" "no forwarding headers: the Host"
    # Forwarded is not read unless SERVER.trust_forwarded says so
    batch_hrefs_are "$d" "$d" "Forwarded without trust_forwarded" -H 'Forwarded: host=evil.example;proto=https'

    # values that would make broken or foreign hrefs are refused
    batch_with "$d" upload "$STORED_OID" 1 -H 'X-Forwarded-Proto: javascript'
    assert_status 400
    assert_json_error
    batch_with "$d" upload "$STORED_OID" 1 -H 'X-Forwarded-Prefix: /giftless/../admin'
    assert_status 400
    assert_json_error
    batch_with "$d" upload "$STORED_OID" 1 -H 'X-Forwarded-Port: 80a'
    assert_status 400
    assert_json_error
    batch_with "$d" upload "$STORED_OID" 1 -H 'X-Forwarded-Host: evil.example/path?'
    assert_status 400
    assert_json_error
    # issue #12: trusted values that are no host or port reached hrefs as they were
    batch_with "$d" upload "$STORED_OID" 1 -H 'X-Forwarded-Host: ]]]:'
    assert_status 400
    assert_json_error
    batch_with "$d" upload "$STORED_OID" 1 -H 'X-Forwarded-Port: 99999'
    assert_status 400
    assert_json_error

    # x_prefix not given (werkzeug default 0): the prefix header is ignored, X-Forwarded-Proto
    # is trusted (werkzeug default x_proto 1), the port too when x_port is given
    stop_lfsgate
    start_local_lfsgate 'MIDDLEWARE:
  - class: werkzeug.middleware.proxy_fix:ProxyFix
    kwargs: {x_host: 1}'
    d=http://127.0.0.1:$LFSGATE_PORT/org/repo.git/info/lfs
    batch_hrefs_are "$d" "https://portal.example/org/repo.git/info/lfs" "x_host only" \
        -H 'X-Forwarded-Host: portal.example' -H 'X-Forwarded-Proto: https' -H 'X-Forwarded-Port: 8443' -H 'X-Forwarded-Prefix: /giftless'
    # two trusted proxies: the second value from the right
    stop_lfsgate
    start_local_lfsgate 'MIDDLEWARE:
  - class: werkzeug.middleware.proxy_fix:ProxyFix
    kwargs: {x_host: 2, x_prefix: 2}'
    d=http://127.0.0.1:$LFSGATE_PORT/org/repo.git/info/lfs
    batch_hrefs_are "$d" "http://portal.example/giftless/org/repo.git/info/lfs" "x_host: 2" \
        -H 'X-Forwarded-Host: evil.example, portal.example, inner.proxy' -H 'X-Forwarded-Prefix: /giftless, /inner'
    # fewer values than trusted proxies: ignored, as werkzeug does
    batch_hrefs_are "$d" "$d" "x_host: 2 with one value" -H 'X-Forwarded-Host: evil.example' -H 'X-Forwarded-Prefix: /evil'
}

# RFC 7239 Forwarded with SERVER.trust_forwarded: N (the N-th element from the right).
test_rfc7239_forwarded() {
    local d site
    start_local_lfsgate 'SERVER:
  trust_forwarded: 1'
    d=http://127.0.0.1:$LFSGATE_PORT/org/repo.git/info/lfs
    store_one "$d"
    batch_hrefs_are "$d" "https://portal.example/org/repo.git/info/lfs" "Forwarded host and proto" \
        -H 'Forwarded: for=192.0.2.60;proto=https;host=portal.example'
    batch_hrefs_are "$d" "https://portal.example:8443/org/repo.git/info/lfs" "quoted values, IPv6 for, upper-case names" \
        -H 'Forwarded: for="[2001:db8:cafe::17]:4711";Host="portal.example:8443";PROTO=https'
    batch_hrefs_are "$d" "https://portal.example/org/repo.git/info/lfs" "several elements: the rightmost" \
        -H 'Forwarded: host=evil.example;proto=http, for=192.0.2.1;host=portal.example;proto=https'
    batch_hrefs_are "$d" "https://portal.example/org/repo.git/info/lfs" "repeated lines: the last" \
        -H 'Forwarded: host=evil.example' -H 'Forwarded: host=portal.example;proto=https'
    batch_hrefs_are "$d" "$d" "no Forwarded: the Host"
    batch_hrefs_are "$d" "http://portal.example/org/repo.git/info/lfs" "X-Forwarded-* ignored without the middleware" \
        -H 'Forwarded: host=portal.example' -H 'X-Forwarded-Host: evil.example' -H 'X-Forwarded-Prefix: /evil' -H 'X-Forwarded-Proto: https'
    batch_with "$d" upload "$STORED_OID" 1 -H 'Forwarded: host=portal.example;proto=gopher'
    assert_status 400
    assert_json_error

    stop_lfsgate
    start_local_lfsgate 'SERVER:
  trust_forwarded: 2'
    d=http://127.0.0.1:$LFSGATE_PORT/org/repo.git/info/lfs
    batch_hrefs_are "$d" "https://portal.example/org/repo.git/info/lfs" "trust_forwarded: 2" \
        -H 'Forwarded: host=evil.example, host=portal.example;proto=https, host=inner.proxy;proto=http'
    batch_hrefs_are "$d" "$d" "trust_forwarded: 2 with one element" -H 'Forwarded: host=evil.example;proto=https'

    # through nginx sending Forwarded (and the prefix as X-Forwarded-Prefix, trusted by the
    # middleware): uploads and downloads through the hrefs
    stop_lfsgate
    start_local_lfsgate 'SERVER:
  trust_forwarded: 1
MIDDLEWARE:
  - class: werkzeug.middleware.proxy_fix:ProxyFix
    kwargs: {x_prefix: 1, x_proto: 0}'
    site=$E2E_TMP/site.conf
    cat >"$site" <<EOF
upstream lfsgate_upstream {
    server 127.0.0.1:$LFSGATE_PORT;
    keepalive 4;
}
server {
    listen 127.0.0.1:@PORT@;
    location /fwd/ {
        proxy_pass http://lfsgate_upstream/;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Forwarded 'for=\$remote_addr;host="\$http_host";proto=\$scheme';
        proxy_set_header X-Forwarded-Prefix /fwd;
        client_max_body_size 0;
        proxy_request_buffering off;
    }
}
EOF
    start_nginx "$site"
    d=http://127.0.0.1:$NGINX_PORT/fwd/org/repo.git/info/lfs
    batch_hrefs_are "$d" "$d" "Forwarded from nginx"
    # a client's own Forwarded is replaced by nginx's
    batch_hrefs_are "$d" "$d" "client Forwarded through nginx" -H 'Forwarded: host=evil.example;proto=https'
    random_file "$E2E_TMP/b.bin" $((3 * MIB))
    lfs_upload "$d" "$E2E_TMP/b.bin"
    assert_same_file "$E2E_TMP/b.bin" "$STORE/org/repo/$(sha256_of "$E2E_TMP/b.bin")" "object uploaded through nginx (Forwarded)"
    lfs_download_href "$d" "$(sha256_of "$E2E_TMP/b.bin")" $((3 * MIB))
    assert_match "$DL_HREF" "^$d/objects/storage/" "download href through nginx (Forwarded)"
    http GET "$DL_HREF" "${DL_HEADERS[@]}"
    assert_status 200
    assert_same_file "$E2E_TMP/b.bin" "$HTTP_BODY" "object downloaded through nginx (Forwarded)"
    assert_file_matches "$NGINX_ACCESS_LOG" "^PUT /fwd/org/repo\.git/info/lfs/objects/storage/$(sha256_of "$E2E_TMP/b.bin") 200 up=200\$" "nginx access log"
    stop_nginx
}

# A refusal that lfsgate sends before it has read a large body (no token: 401) reaches the
# client through nginx as such, not as a 502, with nginx streaming the body; an authorized
# upload through the same location works.
test_early_refusals_through_nginx() {
    local py=python3 token oid url href
    local -a hdr=()
    python3 -c 'import jwt, cryptography' 2>/dev/null || py=/usr/bin/python3
    "$py" "$E2E_DIR/mint_jwt.py" keygen "$E2E_TMP/rsa.pem" "$E2E_TMP/rsa.pub.pem"
    token=$("$py" "$E2E_DIR/mint_jwt.py" mint --key "$E2E_TMP/rsa.pem" --scope 'obj:org/repo/*:read,write')
    STORE=$E2E_TMP/storage
    cat >"$E2E_TMP/lfsgate.yaml" <<EOF
AUTH_PROVIDERS:
  - factory: giftless.auth.jwt:factory
    options:
      algorithm: RS256
      public_key_file: $E2E_TMP/rsa.pub.pem
TRANSFER_ADAPTERS:
  basic:
    factory: giftless.transfer.basic_streaming:factory
    options:
      storage_class: giftless.storage.local_storage:LocalStorage
      storage_options:
        path: $STORE
$PROXYFIX_YAML
EOF
    start_lfsgate --config "$E2E_TMP/lfsgate.yaml"
    proxy_site "$E2E_TMP/site.conf"
    start_nginx "$E2E_TMP/site.conf"
    url=http://127.0.0.1:$NGINX_PORT/giftless/org/repo.git/info/lfs
    random_file "$E2E_TMP/big.bin" $((30 * MIB))
    oid=$(sha256_of "$E2E_TMP/big.bin")
    http PUT "$url/objects/storage/$oid" -H 'Content-Type: application/octet-stream' -T "$E2E_TMP/big.bin"
    assert_status 401
    assert_json_error
    [[ -n $(http_header LFS-Authenticate) ]] || fail "$HTTP_WHAT: 401 through nginx without LFS-Authenticate"
    assert_only_files "$STORE"
    # with the token: batch, PUT through nginx
    random_file "$E2E_TMP/ok.bin" $((15 * MIB))
    oid=$(sha256_of "$E2E_TMP/ok.bin")
    batch_with "$url" upload "$oid" $((15 * MIB)) -H "Authorization: Bearer $token"
    assert_hrefs "$url/objects/storage/" "batch with a token through nginx"
    href=$(action_href "$HTTP_BODY" 0 upload)
    mapfile -t hdr < <(action_header_args "$HTTP_BODY" 0 upload)
    http PUT "$href" "${hdr[@]}" -H 'Content-Type: application/octet-stream' -T "$E2E_TMP/ok.bin"
    assert_status 200
    assert_same_file "$E2E_TMP/ok.bin" "$STORE/org/repo/$oid" "object uploaded with a token through nginx"
    assert_file_lacks "$NGINX_ACCESS_LOG" ' 502 ' "nginx access log"
    stop_nginx
    assert_server_alive
}

run_test proxy_git_push_clone test_git_through_nginx
run_test proxy_keepalive_upstream test_keepalive_upstream
run_test proxy_spoofed_headers_ignored test_spoofed_headers_ignored
run_test proxy_fix_trusted_values test_proxyfix_trusted_values
run_test proxy_rfc7239_forwarded test_rfc7239_forwarded
run_test proxy_early_refusals test_early_refusals_through_nginx
e2e_finish
