#!/usr/bin/env bash
# tests/e2e/test_compat.sh: giftless configurations, as written for giftless, against
# lfsgate (issue #13).
#   - compat_<name>: every file of tests/compat/configs (each config of giftless's docs,
#     docs/source/*.md; the partial sections of issue #13; the ConfigMap of the deployment in
#     our users' notes, rendered) through `lfsgate --check-config`. Each file's header says
#     where it comes from, what was changed (placeholders only), and what must happen:
#       # expect: start              exit 0
#       # expect: refused ERE        exit 2, stderr matches ERE (the key path, and for what
#                                    lfsgate lacks, the giftless feature: storage class,
#                                    Python middleware)
#       # warns: ERE                 (repeatable) stderr matches ERE as well
#       # quiet: ERE                 (repeatable) stderr must not match ERE
#       # env: NAME=VALUE            (repeatable) set for the run
#       # mode: GIFTLESS_CONFIG_STR  the file's text is passed in that variable, not --config
#     Placeholders replaced at run time: @GCS_KEY_BASE64@ (the dummy GCS key, base64). Runs
#     in a directory holding the files the docs' configs name relatively (jwt-rs256.key.pub,
#     giftless-gcp-key.json, credentials.json); a config naming /etc/ssh/ runs in a private
#     mount namespace whose /etc/ssh holds jwt-rs256.key.pub.
#   - cors_middleware_*: giftless's documented CORS (wsgi_cors_middleware:CorsMiddleware)
#     served the way lfsgate maps it; CORS configured twice, unknown kwargs: refused;
#     cors_native_methods: the CORS section's defaults and allowed_methods.
#   - portal_configmap_flow: the portal's flow on the rendered ConfigMap exactly as written
#     (only its BlobEndpoint points at this test's Azurite): an RS256 JWT batch through nginx
#     under a path prefix (ProxyFix), the upload straight to Azurite with the SAS href, verify
#     through the proxy with the action token (signed with the ConfigMap's private_key), and
#     the download.
# Run: LFSGATE_BIN=build/server/lfsgate tests/e2e/test_compat.sh   (see lib.sh for options)
# Test functions are called through run_test, which shellcheck cannot follow:
# shellcheck disable=SC2317
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CONFIGS=$E2E_REPO_ROOT/tests/compat/configs
GCS_KEY=$E2E_REPO_ROOT/tests/unit/data/gcs/test_service_account.not-a-test.json
MINT_PY=python3
if ! python3 -c 'import jwt, cryptography' 2>/dev/null && [[ -x /usr/bin/python3 ]]; then
    MINT_PY=/usr/bin/python3
fi
mint() { "$MINT_PY" "$E2E_DIR/mint_jwt.py" "$@"; }

# ---------------------------------------------------------------------------------------
# helpers

# header_values FILE KEY: the values of the "# KEY: value" lines of FILE's header.
header_values() {
    sed -n "s/^# $2: //p" "$1"
}

# etc_ssh_wrapper DIR: a script in $E2E_TMP that runs lfsgate with DIR mounted on /etc/ssh in
# a private mount namespace (the pid stays lfsgate's: unshare and sh exec it). Prints its
# path. Needs root (CAP_SYS_ADMIN), as CI runs.
etc_ssh_wrapper() {
    local w=$E2E_TMP/lfsgate-etc-ssh
    unshare -m true 2>/dev/null ||
        fail "unshare -m is not permitted here (needs root): the ConfigMap reads /etc/ssh/jwt-rs256.key.pub"
    cat >"$w" <<EOF
#!/bin/sh
exec unshare -m sh -c 'mount --bind "\$0" /etc/ssh && exec "\$@"' "$1" "$LFSGATE_BIN" "\$@"
EOF
    chmod +x "$w"
    printf '%s\n' "$w"
}

# compat_workdir: the directory the compat configs run in, with the files they name.
compat_workdir() {
    local d=$E2E_TMP/srv
    mkdir -p "$d" "$E2E_TMP/etc-ssh"
    mint keygen "$E2E_TMP/jwt-rs256.key" "$d/jwt-rs256.key.pub"
    cp "$d/jwt-rs256.key.pub" "$E2E_TMP/etc-ssh/jwt-rs256.key.pub"
    cp "$GCS_KEY" "$d/giftless-gcp-key.json"
    cp "$GCS_KEY" "$d/credentials.json"
}

# check_compat FILE: runs FILE through --check-config as its header says.
check_compat() {
    local file=$1 expect re bin=$LFSGATE_BIN config=$E2E_TMP/config.yaml
    local -a env_args=() args=(--check-config)
    expect=$(header_values "$file" expect)
    [[ $expect == start || $expect == refused\ * ]] || fail "$file: no '# expect: start|refused ERE' line"
    compat_workdir
    sed "s|@GCS_KEY_BASE64@|$(base64 -w0 "$GCS_KEY")|g" "$file" >"$config"
    while IFS= read -r line; do
        [[ -n $line ]] && env_args+=("$line")
    done < <(header_values "$file" env)
    if grep -q '^# mode: GIFTLESS_CONFIG_STR' "$file"; then
        env_args+=("GIFTLESS_CONFIG_STR=$(cat "$config")")
    else
        args+=(--config "$config")
    fi
    if grep -q '^[^#]*/etc/ssh/' "$config"; then
        bin=$(etc_ssh_wrapper "$E2E_TMP/etc-ssh")
    fi
    E2E_HTTP_N=$((E2E_HTTP_N + 1))
    CMD_OUT=$E2E_TMP/cmd.$E2E_HTTP_N.out
    CMD_ERR=$E2E_TMP/cmd.$E2E_HTTP_N.err
    CMD_RC=0
    # env -i: no GIFTLESS_* variable of the caller's environment leaks into the check (the
    # sanitizers' settings of an ASan run do)
    (cd "$E2E_TMP/srv" && exec env -i PATH="$PATH" ASAN_OPTIONS="${ASAN_OPTIONS:-}" \
        LSAN_OPTIONS="${LSAN_OPTIONS:-}" UBSAN_OPTIONS="${UBSAN_OPTIONS:-}" "${env_args[@]}" \
        timeout 30 "$bin" "${args[@]}") \
        >"$CMD_OUT" 2>"$CMD_ERR" </dev/null || CMD_RC=$?
    echo "check: $(basename "$file") -> rc $CMD_RC; stderr: $(head -c 600 "$CMD_ERR" | tr '\n' ' ')" >&2
    assert_no_sanitizer_report "$CMD_ERR" "lfsgate --check-config"
    if [[ $expect == start ]]; then
        assert_eq 0 "$CMD_RC" "exit status of --check-config (expected it to start; stderr: $(tail -n 1 "$CMD_ERR"))"
    else
        re=${expect#refused }
        assert_eq 2 "$CMD_RC" "exit status of --check-config (expected a refusal)"
        assert_file_matches "$CMD_ERR" "$re" "the refusal"
    fi
    while IFS= read -r re; do
        [[ -z $re ]] || assert_file_matches "$CMD_ERR" "$re" "a warning"
    done < <(header_values "$file" warns)
    while IFS= read -r re; do
        [[ -z $re ]] || ! grep -Eq -- "$re" "$CMD_ERR" || fail "stderr matches '$re': $(grep -E -- "$re" "$CMD_ERR" | head -n 1)"
    done < <(header_values "$file" quiet)
}

# ---------------------------------------------------------------------------------------
# giftless's CORS middleware

CORS_MIDDLEWARE='MIDDLEWARE:
  - class: wsgi_cors_middleware:CorsMiddleware
    kwargs:
      origin: https://www.example.com
      headers: [Content-type, Accept, Authorization]
      methods: [GET, POST, PUT]
      max_age: 120'

# batch BASE OPERATION OID SIZE [CURL_ARGS...]: one-object basic batch with extra curl
# arguments (headers).
batch() {
    local base=$1 op=$2 oid=$3 size=$4
    shift 4
    lfs_post "$base/objects/batch" \
        "{\"operation\": \"$op\", \"transfers\": [\"basic\"], \"objects\": [{\"oid\": \"$oid\", \"size\": $size}]}" "$@"
}

# preflight ORIGIN: OPTIONS on the batch route as a browser sends it.
preflight() {
    http OPTIONS "$(lfs_url org repo)/objects/batch" -H "Origin: $1" \
        -H 'Access-Control-Request-Method: POST' \
        -H 'Access-Control-Request-Headers: content-type, authorization'
}

test_cors_middleware_headers() {
    write_config "$E2E_TMP/lfsgate.yaml" "$E2E_TMP/storage" "$CORS_MIDDLEWARE"
    start_lfsgate --config "$E2E_TMP/lfsgate.yaml"
    preflight https://www.example.com
    assert_status 204
    assert_eq https://www.example.com "$(http_header access-control-allow-origin)" "Allow-Origin of the preflight"
    assert_eq 'GET, POST, PUT' "$(http_header access-control-allow-methods)" "Allow-Methods (kwargs methods)"
    assert_eq 'Content-type, Accept, Authorization' "$(http_header access-control-allow-headers)" "Allow-Headers (kwargs headers)"
    assert_eq 120 "$(http_header access-control-max-age)" "Max-Age (kwargs max_age)"
    # a real request from the origin: the answer carries the origin, no credentials
    batch "$(lfs_url org repo)" upload "$(printf x | sha256sum | cut -d ' ' -f 1)" 1 -H 'Origin: https://www.example.com'
    assert_status 200
    assert_eq https://www.example.com "$(http_header access-control-allow-origin)" "Allow-Origin of the batch answer"
    assert_eq '' "$(http_header access-control-allow-credentials)" "Allow-Credentials (credentials not set)"
    # another origin: no CORS headers, so the browser refuses the answer
    preflight https://evil.example
    assert_eq '' "$(http_header access-control-allow-origin)" "Allow-Origin for another origin"
    assert_eq '' "$(http_header access-control-allow-methods)" "Allow-Methods for another origin"
}

test_cors_middleware_defaults() {
    # no kwargs: the middleware's own defaults (any origin, no headers, no methods beyond the
    # simple ones, max_age 600)
    write_config "$E2E_TMP/lfsgate.yaml" "$E2E_TMP/storage" 'MIDDLEWARE:
  - class: wsgi_cors_middleware:CorsMiddleware'
    start_lfsgate --config "$E2E_TMP/lfsgate.yaml"
    preflight https://anywhere.example
    assert_eq https://anywhere.example "$(http_header access-control-allow-origin)" "Allow-Origin with origin \"*\""
    assert_eq 600 "$(http_header access-control-max-age)" "default Max-Age"
    grep -qi $'^access-control-allow-methods: *\r$' "$HTTP_HEADERS" || fail "expected an empty Allow-Methods, got '$(http_header access-control-allow-methods)'"
}

test_cors_middleware_refusals() {
    local config=$E2E_TMP/lfsgate.yaml
    write_config "$config" "$E2E_TMP/storage" "$CORS_MIDDLEWARE
CORS: {allowed_origins: [https://www.example.com]}"
    run_lfsgate_cmd 20 --check-config --config "$config"
    assert_eq 2 "$CMD_RC" "exit status with CORS configured twice"
    assert_file_matches "$CMD_ERR" 'config: CORS: CORS is configured twice, here and as wsgi_cors_middleware:CorsMiddleware at MIDDLEWARE\[0\]' "CORS twice"
    write_config "$config" "$E2E_TMP/storage" 'MIDDLEWARE:
  - class: wsgi_cors_middleware:CorsMiddleware
    kwargs: {origin: https://www.example.com, allow_headers: [Accept]}'
    run_lfsgate_cmd 20 --check-config --config "$config"
    assert_eq 2 "$CMD_RC" "exit status with an unknown kwarg"
    assert_file_matches "$CMD_ERR" 'config: MIDDLEWARE\[0\]\.kwargs\.allow_headers: unknown key; valid keys: origin, headers, methods, expose_headers, credentials, max_age' "unknown kwarg"
    write_config "$config" "$E2E_TMP/storage" 'MIDDLEWARE:
  - class: wsgi_cors_middleware:CorsMiddleware
    kwargs: {credentials: true}'
    run_lfsgate_cmd 20 --check-config --config "$config"
    assert_eq 2 "$CMD_RC" "exit status with credentials for any origin"
    assert_file_matches "$CMD_ERR" 'MIDDLEWARE\[0\]\.kwargs\.credentials: browsers refuse credentials with any origin' "credentials with origin *"
}

# lfsgate's own CORS section keeps its defaults, and takes allowed_methods like the
# middleware's methods.
test_cors_native_methods() {
    write_config "$E2E_TMP/lfsgate.yaml" "$E2E_TMP/storage" 'CORS: {allowed_origins: [https://www.example.com]}'
    start_lfsgate --config "$E2E_TMP/lfsgate.yaml"
    preflight https://www.example.com
    assert_eq 'GET, HEAD, PUT, POST, OPTIONS' "$(http_header access-control-allow-methods)" "default Allow-Methods"
    assert_eq 'Authorization, Content-Type, Accept, Range, X-Requested-With' "$(http_header access-control-allow-headers)" "default Allow-Headers"
    write_config "$E2E_TMP/lfsgate.yaml" "$E2E_TMP/storage" 'CORS: {allowed_origins: [https://www.example.com], allowed_methods: [GET, PUT]}'
    start_lfsgate --config "$E2E_TMP/lfsgate.yaml"
    preflight https://www.example.com
    assert_eq 'GET, PUT' "$(http_header access-control-allow-methods)" "configured Allow-Methods"
}

# ---------------------------------------------------------------------------------------
# the portal's flow on the rendered ConfigMap

CM_KEY='dTNZcTdXeWJOMmtMOXBSZg=='
CONTAINER=portal-lfs

# portal_site FILE: nginx in front of lfsgate under /giftless (X-Forwarded-* headers).
portal_site() {
    {
        echo "server {"
        echo "    listen 127.0.0.1:@PORT@;"
        nginx_proxy_location /giftless "127.0.0.1:$LFSGATE_PORT" 'proxy_request_buffering off;'
        echo "}"
    } >"$1"
}

test_portal_configmap_flow() {
    local config=$E2E_TMP/configmap.yaml token base legacy oid size href vhref dhref public changed
    local -a hdr=()
    [[ -x $NGINX_BIN ]] || fail "nginx not found ($NGINX_BIN); scripts/install-deps.sh --with-tests installs it"
    [[ -x $AZURITE_BIN ]] || fail "azurite not found; cd tests/e2e && npm ci"
    start_azurite
    compat_workdir
    # the rendered ConfigMap, only its BlobEndpoint moved to this Azurite's port
    sed "s|BlobEndpoint=http://127.0.0.1:10000/|BlobEndpoint=http://127.0.0.1:$AZ_PORT/|" \
        "$CONFIGS/portal-configmap.yaml" >"$config"
    changed=$(diff "$CONFIGS/portal-configmap.yaml" "$config" | grep -c '^>') || true
    assert_eq 1 "$changed" "lines of the ConfigMap changed (only its connection string)"
    LFSGATE_BIN=$(etc_ssh_wrapper "$E2E_TMP/etc-ssh") start_lfsgate --config "$config"
    assert_file_matches "$LFSGATE_LOG" 'storage_options\.path: ignored' "the warning about giftless's default path"
    assert_file_lacks "$LFSGATE_LOG" 'random key' "the log (the ConfigMap's private_key must sign)"
    portal_site "$E2E_TMP/site.conf"
    start_nginx "$E2E_TMP/site.conf"
    public=http://127.0.0.1:$NGINX_PORT/giftless
    base=$public/portal-org/dataset-1.git/info/lfs
    legacy=$public/portal-org/dataset-1
    token=$(mint mint --key "$E2E_TMP/jwt-rs256.key" --scope 'obj:portal-org/dataset-1/*')

    random_file "$E2E_TMP/data.bin" 300000
    oid=$(sha256_of "$E2E_TMP/data.bin")
    size=$(file_size "$E2E_TMP/data.bin")
    # without a token: 401 through the proxy
    batch "$legacy" upload "$oid" "$size"
    assert_status 401
    # the batch on the legacy route, as CKAN's client sends it
    batch "$legacy" upload "$oid" "$size" -H "Authorization: Bearer $token"
    assert_status 200
    cp "$HTTP_BODY" "$E2E_TMP/upload-batch.json"
    href=$(action_href "$E2E_TMP/upload-batch.json" 0 upload)
    vhref=$(action_href "$E2E_TMP/upload-batch.json" 0 verify)
    assert_match "$href" "^http://127\.0\.0\.1:$AZ_PORT/devstoreaccount1/$CONTAINER/giftless/portal-org/dataset-1/$oid\?.*sig=" "upload href (SAS, path_prefix giftless)"
    assert_eq "$base/objects/storage/verify" "$vhref" "verify href (public origin and prefix)"
    mapfile -t hdr < <(action_header_args "$E2E_TMP/upload-batch.json" 0 upload)
    http PUT "$href" "${hdr[@]}" -T "$E2E_TMP/data.bin"
    assert_status 201
    # verify through the proxy with the action token, which the ConfigMap's key signed
    mapfile -t hdr < <(action_header_args "$E2E_TMP/upload-batch.json" 0 verify)
    "$MINT_PY" - "$CM_KEY" "${hdr[1]#Authorization: Bearer }" <<'EOF' || fail "the action token is not HS256-signed with the ConfigMap's private_key"
import sys, jwt
claims = jwt.decode(sys.argv[2], sys.argv[1], algorithms=["HS256"])
assert jwt.get_unverified_header(sys.argv[2])["kid"] == "giftless-internal-jwt-key"
EOF
    lfs_post "$vhref" "{\"oid\": \"$oid\", \"size\": $size}" "${hdr[@]}"
    assert_status 200
    lfs_post "$vhref" "{\"oid\": \"$oid\", \"size\": $((size + 1))}" "${hdr[@]}"
    assert_status 422
    # download: a new batch on the current route, then the SAS href
    batch "$base" download "$oid" "$size" -H "Authorization: Bearer $token"
    assert_status 200
    dhref=$(action_href "$HTTP_BODY" 0 download)
    assert_match "$dhref" "^http://127\.0\.0\.1:$AZ_PORT/devstoreaccount1/$CONTAINER/giftless/portal-org/dataset-1/$oid\?" "download href"
    mapfile -t hdr < <(action_header_args "$HTTP_BODY" 0 download)
    http GET "$dhref" "${hdr[@]}"
    assert_status 200
    assert_same_file "$E2E_TMP/data.bin" "$HTTP_BODY" "downloaded object"
    # the object is stored once, as the upload action said
    batch "$base" upload "$oid" "$size" -H "Authorization: Bearer $token"
    assert_status 200
    assert_json "$HTTP_BODY" "'actions' not in d['objects'][0]" "upload batch of a stored object"
    stop_nginx
    stop_lfsgate
}

# ---------------------------------------------------------------------------------------

for f in "$CONFIGS"/*.yaml; do
    name=$(basename "$f" .yaml)
    eval "test_compat_${name//-/_}() { check_compat '$f'; }"
    run_test "compat_${name//-/_}" "test_compat_${name//-/_}"
done
run_test cors_middleware_headers test_cors_middleware_headers
run_test cors_middleware_defaults test_cors_middleware_defaults
run_test cors_middleware_refusals test_cors_middleware_refusals
run_test cors_native_methods test_cors_native_methods
run_test portal_configmap_flow test_portal_configmap_flow
e2e_finish
