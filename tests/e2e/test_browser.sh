#!/usr/bin/env bash
# tests/e2e/test_browser.sh: the portal flow in a real browser. Headless Chromium (Debian's
# chromium, driven by npm playwright-core: tests/e2e/browser/drive.mjs) opens a page served on
# loopback by python3's http.server, from another origin than lfsgate
# (tests/e2e/browser/index.html + ckan-lfs.js). The page makes the requests the CKAN
# JavaScript SDK makes: it generates a file, hashes it with WebCrypto, calls the legacy batch
# route through nginx (lfsgate under /giftless/, ProxyFix) with an RS256 JWT minted here
# (scope obj:{org}/{dataset}/*:read,write), uploads straight to Azurite through the SAS hrefs
# (basic: one PUT; multipart-basic: the parts, then the commit), calls verify, then downloads
# the object through a fresh batch, checks the Content-Disposition carries the filename and
# compares the bytes. A 401 answer is readable by the page (CORS headers on errors); a page
# from an origin lfsgate does not allow is refused by the browser. Azurite's CORS rules are
# set by the test (Set Blob Service Properties, browser/azure_cors.py). Each test keeps a
# screenshot of the page in its temp dir and copies it to tests/e2e/artifacts/.
# Every component is started per test on free loopback ports and stopped by its pid.
# Run: LFSGATE_BIN=build/server/lfsgate tests/e2e/test_browser.sh   (see lib.sh for options)
# Test functions are called through run_test, which shellcheck cannot follow:
# shellcheck disable=SC2317
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MIB=1048576
BROWSER_DIR=$E2E_DIR/browser
ARTIFACTS=$E2E_DIR/artifacts
CONTAINER=lfs
PREFIX=portal/lfs
ORG=ckan-org
DATASET=rainfall-2024
: "${CHROMIUM_BIN:=/usr/bin/chromium}"
# The python that has PyJWT and cryptography: the Debian one when python3 on PATH is another.
MINT_PY=python3
if ! python3 -c 'import jwt, cryptography' 2>/dev/null && [[ -x /usr/bin/python3 ]]; then
    MINT_PY=/usr/bin/python3
fi

# ---------------------------------------------------------------------------------------
# prerequisites: installed by scripts/install-deps.sh --with-tests (chromium, nginx,
# python3-jwt; npm ci in tests/e2e for playwright-core and azurite). A missing one is a
# failure (run-all.sh would otherwise report a green run that proved nothing here);
# E2E_ALLOW_SKIP=1 turns it into a SKIP line for a developer running this file alone, and
# run-all.sh counts a SKIP line as a failure all the same.

if [[ ! -d $E2E_DIR/node_modules/playwright-core || ! -x $AZURITE_BIN ]] && command -v npm >/dev/null 2>&1; then
    (cd "$E2E_DIR" && npm ci --no-audit --no-fund --loglevel=error) >&2 || true
fi
missing=()
[[ -x $CHROMIUM_BIN ]] || missing+=("chromium ($CHROMIUM_BIN)")
command -v node >/dev/null 2>&1 || missing+=(node)
[[ -d $E2E_DIR/node_modules/playwright-core ]] || missing+=("playwright-core (cd tests/e2e && npm ci)")
[[ -x $AZURITE_BIN ]] || missing+=("azurite (cd tests/e2e && npm ci)")
[[ -x $NGINX_BIN ]] || missing+=("nginx ($NGINX_BIN)")
"$MINT_PY" -c 'import jwt, cryptography' 2>/dev/null || missing+=("python3-jwt, python3-cryptography")
if ((${#missing[@]} > 0)); then
    msg="missing: ${missing[*]}; scripts/install-deps.sh --with-tests installs them"
    if [[ ${E2E_ALLOW_SKIP:-0} == 1 ]]; then
        echo "SKIP test_browser.sh: $msg"
        exit 0
    fi
    echo "FAIL browser_prerequisites: $msg"
    exit 1
fi

# ---------------------------------------------------------------------------------------
# components

mint() { "$MINT_PY" "$E2E_DIR/mint_jwt.py" "$@"; }

# start_azurite_with_cors: start_azurite (lib.sh), then CORS rules for the allowed page
# origin ($PAGE_ORIGIN).
start_azurite_with_cors() {
    start_azurite
    python3 "$BROWSER_DIR/azure_cors.py" "$AZ_ENDPOINT" "$PAGE_ORIGIN" ||
        fail "could not set Azurite's CORS rules"
}

# start_page_server: python3 http.server serving tests/e2e/browser on a free loopback port;
# sets PS_PORT.
start_page_server() {
    local port pid i log
    for _ in 1 2 3; do
        port=$(free_port)
        log=$E2E_TMP/pages.$port.log
        python3 -m http.server --bind 127.0.0.1 --directory "$BROWSER_DIR" "$port" >"$log" 2>&1 </dev/null &
        pid=$!
        for ((i = 0; i < 100; i++)); do
            port_is_open "$port" 2>/dev/null && break
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if port_is_open "$port" 2>/dev/null; then
            bg_track "$pid"
            PS_PORT=$port
            return 0
        fi
        kill -KILL "$pid" 2>/dev/null || true
    done
    fail "the page server did not start: $(tail -n 3 "$log" | tr '\n' ' ')"
}

# start_pages: the page from two origins: PAGE_ORIGIN (allowed by lfsgate and Azurite) and
# DENIED_ORIGIN (allowed by neither).
start_pages() {
    start_page_server
    PAGE_ORIGIN=http://127.0.0.1:$PS_PORT
    start_page_server
    DENIED_ORIGIN=http://127.0.0.1:$PS_PORT
    http GET "$PAGE_ORIGIN/ckan-lfs.js"
    assert_status 200
}

# portal_setup MODE: keys and tokens, pages, lfsgate (jwt auth, ProxyFix, CORS for the page
# origin) and nginx in front under /giftless/. MODE: "external" (basic_external over
# Azurite), "multipart" (that and multipart-basic over Azurite) or "streaming"
# (basic_streaming over local storage in $STORE, no Azurite). Sets MODE, TOKEN, BAD_TOKEN
# (another key), READ_ONLY_TOKEN, LFS_SERVER (what a portal configures as lfsServerUrl).
portal_setup() {
    local storage site factory=giftless.transfer.basic_external:factory
    MODE=$1
    KEYS=$E2E_TMP/keys
    mkdir -p "$KEYS"
    mint keygen "$KEYS/rsa.pem" "$KEYS/rsa.pub.pem"
    mint keygen "$KEYS/other.pem" "$KEYS/other.pub.pem"
    TOKEN=$(mint mint --key "$KEYS/rsa.pem" --sub portal-user --name "Portal User" --scope "obj:$ORG/$DATASET/*:read,write")
    BAD_TOKEN=$(mint mint --key "$KEYS/other.pem" --sub intruder --scope "obj:$ORG/$DATASET/*:read,write")
    READ_ONLY_TOKEN=$(mint mint --key "$KEYS/rsa.pem" --sub reader --scope "obj:$ORG/$DATASET/*:read")
    start_pages
    if [[ $MODE == streaming ]]; then
        STORE=$E2E_TMP/storage
        factory=giftless.transfer.basic_streaming:factory
        storage="      storage_class: giftless.storage.local_storage:LocalStorage
      storage_options:
        path: $STORE"
    else
        start_azurite_with_cors
        storage="      storage_class: giftless.storage.azure:AzureBlobsStorage
      storage_options:
        connection_string: \"$AZ_CS\"
        container_name: $CONTAINER
        path_prefix: $PREFIX"
    fi
    {
        cat <<EOF
AUTH_PROVIDERS:
  - factory: giftless.auth.jwt:factory
    options:
      algorithm: RS256
      public_key_file: $KEYS/rsa.pub.pem
TRANSFER_ADAPTERS:
  basic:
    factory: $factory
    options:
$storage
EOF
        if [[ $MODE == multipart ]]; then
            cat <<EOF
  multipart-basic:
    factory: giftless.transfer.multipart:factory
    options:
      max_part_size: 1M
$storage
EOF
        fi
        cat <<EOF
MIDDLEWARE:
  - class: werkzeug.middleware.proxy_fix:ProxyFix
    kwargs: {x_host: 1, x_port: 1, x_prefix: 1, x_proto: 1}
LEGACY_ENDPOINTS: true
CORS:
  allowed_origins:
    - $PAGE_ORIGIN
  max_age: 60
EOF
    } >"$E2E_TMP/lfsgate.yaml"
    start_lfsgate --config "$E2E_TMP/lfsgate.yaml"
    site=$E2E_TMP/site.conf
    {
        echo "upstream lfsgate_upstream {"
        echo "    server 127.0.0.1:$LFSGATE_PORT;"
        echo "    keepalive 8;"
        echo "}"
        echo "server {"
        echo "    listen 127.0.0.1:@PORT@;"
        nginx_proxy_location /giftless lfsgate_upstream 'proxy_request_buffering off;'
        echo "}"
    } >"$site"
    start_nginx "$site"
    LFS_SERVER=http://127.0.0.1:$NGINX_PORT/giftless
}

# check_preflights: what the browser will ask, asked with curl first through nginx: the
# allowed origin gets the CORS answer, the other one none.
check_preflights() {
    local url=$LFS_SERVER/$ORG/$DATASET/objects/batch
    http OPTIONS "$url" -H "Origin: $PAGE_ORIGIN" -H 'Access-Control-Request-Method: POST' \
        -H 'Access-Control-Request-Headers: authorization,content-type'
    assert_status_2xx
    assert_eq "$PAGE_ORIGIN" "$(http_header Access-Control-Allow-Origin)" "preflight of the legacy batch route: Access-Control-Allow-Origin"
    assert_match "$(http_header Access-Control-Allow-Headers)" '(^|[ ,])Authorization([ ,]|$)' "preflight: Access-Control-Allow-Headers"
    assert_match "$(http_header Access-Control-Allow-Methods)" 'POST' "preflight: Access-Control-Allow-Methods"
    http OPTIONS "$url" -H "Origin: $DENIED_ORIGIN" -H 'Access-Control-Request-Method: POST' \
        -H 'Access-Control-Request-Headers: authorization,content-type'
    assert_eq "" "$(http_header Access-Control-Allow-Origin)" "preflight from a denied origin: Access-Control-Allow-Origin"
    assert_eq "" "$(http_header Access-Control-Allow-Headers)" "preflight from a denied origin: Access-Control-Allow-Headers"
}

# run_browser NAME UPLOADS_JSON: drive.mjs with the page at PAGE_ORIGIN (uploads, downloads, a
# 401) and at DENIED_ORIGIN; sets RESULT (the JSON it wrote). Keeps the screenshot in
# $E2E_TMP/screenshot.png (and the denied page's in screenshot-denied.png) and copies them to
# tests/e2e/artifacts/browser-NAME.png and browser-NAME-denied-origin.png.
run_browser() {
    local name=$1 uploads=$2 rc=0 shot
    RESULT=$E2E_TMP/result.json
    python3 - "$E2E_TMP/drive.json" <<EOF
import json, sys
json.dump({
    "chromium": "$CHROMIUM_BIN",
    "profileDir": "$E2E_TMP/chromium-profile",
    "pageUrl": "$PAGE_ORIGIN/index.html",
    "deniedPageUrl": "$DENIED_ORIGIN/index.html",
    "lfsServerUrl": "$LFS_SERVER",
    "org": "$ORG",
    "dataset": "$DATASET",
    "token": "$TOKEN",
    "badToken": "$BAD_TOKEN",
    "readOnlyToken": "$READ_ONLY_TOKEN",
    "uploads": __import__('json').loads('''$uploads'''),
    "screenshot": "$E2E_TMP/screenshot.png",
    "deniedScreenshot": "$E2E_TMP/screenshot-denied.png",
    "timeoutMs": 240000,
}, open(sys.argv[1], "w"))
EOF
    timeout 300 node "$BROWSER_DIR/drive.mjs" "$E2E_TMP/drive.json" "$RESULT" >"$E2E_TMP/drive.log" 2>&1 || rc=$?
    sed 's/^/drive| /' "$E2E_TMP/drive.log" >&2
    if [[ $rc == 3 ]]; then
        fail "chromium could not be started: $(tail -n 3 "$E2E_TMP/drive.log" | tr '\n' ' ')"
    fi
    [[ -f $RESULT ]] || fail "drive.mjs wrote no result (status $rc): $(tail -n 3 "$E2E_TMP/drive.log" | tr '\n' ' ')"
    python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print("\n".join(d["console"] + d["page_errors"]))' "$RESULT" | sed 's/^/page| /' >&2
    [[ $rc == 0 ]] || fail "drive.mjs failed (status $rc): $(json "$RESULT" 'd.get("driver_error", "")')"
    assert_json "$RESULT" 'd["page_errors"] == []' "page errors"
    # the screenshots: PNGs, kept as artefacts
    mkdir -p "$ARTIFACTS"
    for shot in screenshot screenshot-denied; do
        assert_file_exists "$E2E_TMP/$shot.png" "$shot"
        [[ $(head -c 8 "$E2E_TMP/$shot.png" | od -An -tx1 | tr -d ' \n') == 89504e470d0a1a0a ]] ||
            fail "$shot: $E2E_TMP/$shot.png is not a PNG"
        (($(file_size "$E2E_TMP/$shot.png") > 5000)) || fail "$shot: suspiciously small ($(file_size "$E2E_TMP/$shot.png") bytes)"
    done
    cp "$E2E_TMP/screenshot.png" "$ARTIFACTS/browser-$name.png"
    cp "$E2E_TMP/screenshot-denied.png" "$ARTIFACTS/browser-$name-denied-origin.png"
}

# ---------------------------------------------------------------------------------------
# assertions on the result

# rassert PY_EXPR WHAT: assert_json on the result, with `u` bound to d["uploads"][$UPLOAD].
rassert() {
    assert_json "$RESULT" "(lambda u: $1)(d['uploads']['$UPLOAD'])" "$UPLOAD: $2"
}

# assert_upload NAME TRANSFER STEPS FILENAME: the upload NAME went as the SDK does it and the
# object round-tripped. STEPS: the expected (step, method, status) sequence as a Python list.
assert_upload() {
    local oid blob_name batch_url data_url stored steps=$3 filename=$4
    UPLOAD=$1
    rassert "u['upload'].get('error') is None and u['upload'].get('object_error') is None" "upload completed without error: $(json "$RESULT" "d['uploads']['$UPLOAD']['upload'].get('error') or d['uploads']['$UPLOAD']['upload'].get('object_error')")"
    rassert "u['upload']['transfer'] == '$2'" "negotiated transfer"
    rassert "[(t['step'].split(' ')[0], t['method'], t.get('status')) for t in u['upload']['trace']] == $steps" \
        "requests made (got $(json "$RESULT" "[(t['step'], t['method'], t.get('status'), t.get('error')) for t in d['uploads']['$UPLOAD']['upload']['trace']]"))"
    oid=$(json "$RESULT" "d['uploads']['$UPLOAD']['upload']['oid']")
    batch_url=$LFS_SERVER/$ORG/$DATASET/objects/batch
    blob_name=$PREFIX/$ORG/$DATASET/$oid
    if [[ $MODE == streaming ]]; then
        data_url=$LFS_SERVER/$ORG/$DATASET.git/info/lfs/objects/storage/$oid
    else
        data_url="$AZ_ENDPOINT/$CONTAINER/$blob_name?"
    fi
    # where each request went: the legacy batch route and verify through nginx under the
    # prefix, the data straight to the blob store (or to lfsgate through nginx, streaming)
    rassert "u['upload']['trace'][0]['url'] == '$batch_url'" "batch URL"
    rassert "all(t['url'].startswith('$data_url') for t in u['upload']['trace'] if t['step'].split(' ')[0] in ('upload', 'part', 'commit'))" "data requests go to $data_url"
    rassert "u['upload']['trace'][-1]['url'].startswith('$LFS_SERVER/$ORG/$DATASET.git/info/lfs/')" "verify href (public host, prefix)"
    # what chromium sent for the batch: the SDK's headers and body
    assert_json "$RESULT" "[(n['headers'].get('authorization'), n['headers'].get('accept'), n['headers'].get('content-type')) for n in d['network'] if n['url'] == '$batch_url' and n['method'] == 'POST' and __import__('json').loads(n['body'])['objects'][0]['oid'] == '$oid' and __import__('json').loads(n['body'])['operation'] == 'upload'] == [('Bearer $TOKEN', '$LFS_MEDIA_TYPE', '$LFS_MEDIA_TYPE')]" \
        "$UPLOAD: the batch request's headers on the wire"
    assert_json "$RESULT" "[__import__('json').loads(n['body']) for n in d['network'] if n['url'] == '$batch_url' and n['method'] == 'POST' and __import__('json').loads(n['body'])['objects'][0]['oid'] == '$oid' and __import__('json').loads(n['body'])['operation'] == 'upload'] == [{'operation': 'upload', 'transfers': ['multipart-basic', 'basic'], 'ref': {'name': 'refs/heads/master'}, 'objects': [{'oid': '$oid', 'size': $(json "$RESULT" "d['uploads']['$UPLOAD']['upload']['size']"), 'extra': {'filename': '$filename'}}]}]" \
        "$UPLOAD: the batch request's body on the wire"
    # the store holds the bytes the page hashed
    stored=$E2E_TMP/$UPLOAD.blob
    if [[ $MODE == streaming ]]; then
        stored=$STORE/$ORG/$DATASET/$oid
        assert_file_exists "$stored" "$UPLOAD: stored object"
    else
        python3 "$AZ_TOOL" get "$AZ_ENDPOINT" "$CONTAINER" "$blob_name" "$stored" || fail "$UPLOAD: blob $blob_name cannot be read"
    fi
    assert_eq "$oid" "$(sha256_of "$stored")" "$UPLOAD: sha256 of the stored object vs the page's WebCrypto hash"
    rassert "u['upload']['size'] == $(file_size "$stored")" "size of the stored object"
    # the download through a fresh batch
    rassert "u['download'] is not None and u['download'].get('error') is None" "download completed: $(json "$RESULT" "(d['uploads']['$UPLOAD']['download'] or {}).get('error')")"
    rassert "u['download']['status'] == 200 and u['download']['same_bytes'] is True and u['download']['sha256'] == '$oid'" "downloaded bytes"
    rassert "u['download']['href'].startswith('$data_url')" "download href"
    rassert "u['download']['content_disposition'] is not None and 'filename=\"$filename\"' in u['download']['content_disposition']" \
        "Content-Disposition carries the filename (got $(json "$RESULT" "d['uploads']['$UPLOAD']['download']['content_disposition']"))"
    # nginx saw the legacy batch route (and its preflight) and the verify, under /giftless/
    assert_file_matches "$NGINX_ACCESS_LOG" "^OPTIONS /giftless/$ORG/$DATASET/objects/batch 204 up=204\$" "nginx access log (preflight)"
    assert_file_matches "$NGINX_ACCESS_LOG" "^POST /giftless/$ORG/$DATASET/objects/batch 200 up=200\$" "nginx access log (batch)"
    assert_file_matches "$NGINX_ACCESS_LOG" "^POST /giftless/$ORG/$DATASET\\.git/info/lfs/objects/storage/verify 200 up=200\$" "nginx access log (verify)"
}

# assert_refusals: the 401 (token of another key) and the 403 (read-only token asking to
# upload) are readable by the page (status, message, LFS-Authenticate); the page from the
# denied origin saw its fetch rejected.
assert_refusals() {
    assert_json "$RESULT" "d['error401']['rejected'] is False and d['error401']['status'] == 401" \
        "a batch with a bad token: the page reads the 401 (got $(json "$RESULT" "[d['error401'].get('status'), d['error401'].get('error')]"))"
    assert_json "$RESULT" "isinstance(d['error401']['message'], str) and d['error401']['message'] != ''" "the 401's message readable by the page"
    assert_json "$RESULT" "'lfs-authenticate' in d['error401']['headers']" "the 401's LFS-Authenticate header exposed to the page"
    assert_json "$RESULT" "d['error403']['rejected'] is False and d['error403']['status'] == 403 and isinstance(d['error403']['message'], str) and d['error403']['message'] != ''" \
        "an upload batch with a read-only token: the page reads the 403 and its message (got $(json "$RESULT" "[d['error403'].get('status'), d['error403'].get('message'), d['error403'].get('error')]"))"
    assert_json "$RESULT" "d['denied']['rejected'] is True and d['denied']['error_name'] == 'TypeError'" \
        "a page from $DENIED_ORIGIN: the browser refuses the batch (got $(json "$RESULT" "[d['denied'].get('status'), d['denied'].get('error')]"))"
    # the browser stopped at the preflight: lfsgate never saw the denied page's POST
    assert_json "$RESULT" "any(n['page'] == 'denied' and n['method'] == 'POST' for n in d['network'])" "the denied page tried the batch"
    [[ $(grep -c '^POST /giftless/'"$ORG/$DATASET"'/objects/batch ' "$NGINX_ACCESS_LOG") == "$EXPECTED_BATCH_POSTS" ]] ||
        fail "nginx access log: expected $EXPECTED_BATCH_POSTS batch POSTs (uploads, downloads, the 401 and 403), got $(grep -c '^POST /giftless/'"$ORG/$DATASET"'/objects/batch ' "$NGINX_ACCESS_LOG")"
}

# ---------------------------------------------------------------------------------------
# tests

# basic only on the server: the SDK's ["multipart-basic", "basic"] gets basic, one SAS PUT
# with the file's type.
test_browser_basic() {
    local filename='survey data 2024.csv'
    portal_setup external
    check_preflights
    run_browser basic "[{\"name\": \"csv\", \"size\": $((3 * MIB + 123)), \"filename\": \"$filename\", \"type\": \"text/csv\"}]"
    assert_upload csv basic "[('batch', 'POST', 200), ('upload', 'PUT', 201), ('verify', 'POST', 200)]" "$filename"
    rassert "u['upload']['action_names'] == ['upload', 'verify']" "actions"
    rassert "u['upload']['trace'][1]['request_headers'].get('Content-type') == 'text/csv' and u['upload']['trace'][1]['request_headers'].get('x-ms-blob-type') == 'BlockBlob'" "the PUT's headers (Content-type and the action's)"
    rassert "u['download']['content_type'] == 'text/csv'" "Content-Type of the download"
    EXPECTED_BATCH_POSTS=4
    assert_refusals
    stop_nginx
    assert_server_alive
}

# multipart-basic on the server: the parts (1 MiB each), then the commit, then verify.
test_browser_multipart() {
    local filename='rainfall readings.json'
    portal_setup multipart
    check_preflights
    run_browser multipart "[{\"name\": \"json\", \"size\": $((3 * MIB + 500000)), \"filename\": \"$filename\", \"type\": \"application/json\"}, {\"name\": \"small\", \"size\": 2000, \"filename\": \"notes.txt\", \"type\": \"text/plain\"}]"
    assert_upload json multipart-basic "[('batch', 'POST', 200)] + [('part', 'PUT', 201)] * 4 + [('commit', 'PUT', 201), ('verify', 'POST', 200)]" "$filename"
    rassert "sorted(u['upload']['action_names']) == ['abort', 'commit', 'parts', 'verify']" "actions"
    assert_upload small multipart-basic "[('batch', 'POST', 200), ('part', 'PUT', 201), ('commit', 'PUT', 201), ('verify', 'POST', 200)]" notes.txt
    EXPECTED_BATCH_POSTS=6
    assert_refusals
    stop_nginx
    assert_server_alive
}

# basic_streaming over local storage: the data goes to lfsgate through nginx too (preflights
# of the object and verify routes, the download's Content-Disposition exposed by lfsgate).
test_browser_streaming() {
    local filename='station list.txt'
    portal_setup streaming
    check_preflights
    run_browser streaming "[{\"name\": \"txt\", \"size\": $((2 * MIB + 77)), \"filename\": \"$filename\", \"type\": \"text/plain\"}]"
    assert_upload txt basic "[('batch', 'POST', 200), ('upload', 'PUT', 200), ('verify', 'POST', 200)]" "$filename"
    assert_only_files "$STORE" "$ORG/$DATASET/$(json "$RESULT" "d['uploads']['txt']['upload']['oid']")"
    assert_file_matches "$NGINX_ACCESS_LOG" "^OPTIONS /giftless/$ORG/$DATASET\\.git/info/lfs/objects/storage/[0-9a-f]{64}(\\?[^ ]*)? 204 up=204\$" "nginx access log (preflight of the PUT)"
    assert_file_matches "$NGINX_ACCESS_LOG" "^PUT /giftless/$ORG/$DATASET\\.git/info/lfs/objects/storage/[0-9a-f]{64}(\\?[^ ]*)? 200 up=200\$" "nginx access log (PUT)"
    assert_file_matches "$NGINX_ACCESS_LOG" "^GET /giftless/$ORG/$DATASET\\.git/info/lfs/objects/storage/[0-9a-f]{64}(\\?[^ ]*)? 200 up=200\$" "nginx access log (download)"
    EXPECTED_BATCH_POSTS=4
    assert_refusals
    stop_nginx
    assert_server_alive
}

run_test browser_basic_upload_azurite test_browser_basic
run_test browser_multipart_upload_azurite test_browser_multipart
run_test browser_streaming_upload_local test_browser_streaming
e2e_finish
