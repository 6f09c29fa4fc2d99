#!/usr/bin/env bash
# tests/e2e/test_gcs.sh: end-to-end tests of the Google Cloud Storage backend against
# tests/fakes/gcs_fake.py, a loopback stand-in for the GCS XML API that checks every V4
# signature with the public half of the dummy service-account key (no GCS emulator can be
# installed here). Real git + git-lfs push and clone through signed URLs (basic_external)
# and through lfsgate (basic_streaming, with ranges and a corrupt upload); tampered and
# expired URLs refused by the store; Content-Disposition from x-filename / extra.filename;
# config errors; an unreachable store and a store that refuses lfsgate's own signatures.
# Run: LFSGATE_BIN=build/server/lfsgate tests/e2e/test_gcs.sh   (see lib.sh for options)
# Test functions are called through run_test, which shellcheck cannot follow:
# shellcheck disable=SC2317
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MIB=1048576
GCS_FAKE=$E2E_REPO_ROOT/tests/fakes/gcs_fake.py
GCS_KEY=$E2E_REPO_ROOT/tests/unit/data/gcs/test_service_account.not-a-test.json
GCS_BUCKET=lfs-bucket
GCS_PREFIX=lfs/v1

# start_gcs_fake: starts the fake on a free loopback port; sets GCS_PORT, GCS_URL.
start_gcs_fake() {
    local out=$E2E_TMP/gcs_fake.out i pid
    python3 "$GCS_FAKE" --key "$GCS_KEY" --bucket "$GCS_BUCKET" --port 0 \
        >"$out" 2>"$E2E_TMP/gcs_fake.log" </dev/null &
    pid=$!
    bg_track "$pid"
    for ((i = 0; i < 100; i++)); do
        GCS_PORT=$(head -n 1 "$out" 2>/dev/null || true)
        [[ -n $GCS_PORT ]] && break
        kill -0 "$pid" 2>/dev/null || fail "gcs_fake.py exited: $(tail -n 3 "$E2E_TMP/gcs_fake.log" | tr '\n' ' ')"
        sleep 0.1
    done
    [[ -n $GCS_PORT ]] || fail "gcs_fake.py did not print its port within 10 s"
    GCS_URL=http://127.0.0.1:$GCS_PORT
    FAKE_URL=$GCS_URL FAKE_BUCKET=$GCS_BUCKET FAKE_PREFIX=$GCS_PREFIX
}

# gcs_config FACTORY [ACTION_LIFETIME] [EXTRA_STORAGE_OPTION_LINES]: writes $CONFIG for one
# "basic" adapter with GCS storage at the fake.
gcs_config() {
    local factory=$1 lifetime=${2:-900} extra=${3:-}
    CONFIG=$E2E_TMP/lfsgate.yaml
    cat >"$CONFIG" <<EOF
AUTH_PROVIDERS:
  - giftless.auth.allow_anon:read_write
TRANSFER_ADAPTERS:
  basic:
    factory: giftless.transfer.$factory:factory
    options:
      action_lifetime: $lifetime
      storage_class: giftless.storage.google_cloud:GoogleCloudStorage
      storage_options:
        project_name: dummy-project-id
        bucket_name: $GCS_BUCKET
        account_key_file: $GCS_KEY
        path_prefix: /$GCS_PREFIX/
        endpoint: $GCS_URL
$extra
EOF
}

# ---------------------------------------------------------------------------------------

test_external_push_clone() {
    start_gcs_fake
    gcs_config basic_external
    start_lfsgate --config "$CONFIG"
    fake_push_clone group/sub repo 1 $((3 * MIB + 7)) $((12 * MIB + 1))
    # the clients went to the store directly: lfsgate served no object bytes
    if grep -qE '/objects/storage/[0-9a-f]{64}' "$LFSGATE_LOG"; then
        fail "lfsgate served object bytes with basic_external: $(grep -m 1 -E '/objects/storage/[0-9a-f]{64}' "$LFSGATE_LOG")"
    fi
    assert_file_contains "$LFSGATE_LOG" '/objects/storage/verify' "lfsgate access log"
}

test_streaming_push_clone() {
    start_gcs_fake
    gcs_config basic_streaming
    start_lfsgate --config "$CONFIG"
    # 40 MiB: spilled to a temp file by h2o on upload, streamed with pause/resume on download
    fake_push_clone org repo 1 $((3 * MIB + 7)) $((40 * MIB + 13))

    fake_streaming_range_and_corrupt_upload
}

# expect_refused URL STATUS CODE WHAT [curl args]: the fake answers STATUS with <Code>CODE</Code>.
expect_refused() {
    local url=$1 status=$2 code=$3 what=$4
    shift 4
    http GET "$url" "$@"
    [[ $HTTP_STATUS == "$status" ]] || fail "$what: expected the store to refuse with $status, got $HTTP_STATUS: $(http_body_excerpt)"
    assert_file_contains "$HTTP_BODY" "<Code>$code</Code>" "$what"
}

test_tampered_and_expired_refused() {
    local base oid other href up t1
    start_gcs_fake
    gcs_config basic_external 3
    start_lfsgate --config "$CONFIG"
    base=$(lfs_url org repo)
    random_file "$E2E_TMP/a" 5000
    oid=$(sha256_of "$E2E_TMP/a")
    lfs_upload "$base" "$E2E_TMP/a"
    assert_fake_object "$E2E_TMP/a" "$GCS_PREFIX/org/repo/$oid" "uploaded object"

    lfs_download_href "$base" "$oid" 5000
    href=$DL_HREF
    [[ $href == "$GCS_URL/$GCS_BUCKET/$GCS_PREFIX/org/repo/$oid?"* ]] || fail "download href does not point at the store: $href"
    assert_match "$href" 'X-Goog-Expires=3&' "download href lifetime"
    http GET "$href"
    assert_status 200
    assert_same_file "$E2E_TMP/a" "$HTTP_BODY" "download through the signed URL"

    # tampered: another object, a longer lifetime, another account, a forged signature
    other=$(printf '%064d' 0)
    expect_refused "${href/$oid/$other}" 403 SignatureDoesNotMatch "a URL with another object name"
    expect_refused "${href/X-Goog-Expires=3/X-Goog-Expires=604800}" 403 SignatureDoesNotMatch "a URL with a longer lifetime"
    expect_refused "${href/test-iam-credentials/someone-else}" 403 AccessDenied "a URL naming another account"
    expect_refused "${href%X-Goog-Signature=*}X-Goog-Signature=$(printf '%0512d' 0)" 403 SignatureDoesNotMatch "a forged signature"
    expect_refused "${href%%\?*}" 403 AccessDenied "the object without a signature"
    # the signed Host includes the port: the same URL sent with another Host is refused
    expect_refused "$href" 403 SignatureDoesNotMatch "the URL with another Host header" -H "Host: 127.0.0.1"

    # a tampered upload URL stores nothing
    random_file "$E2E_TMP/c" 3000
    t1=$(date +%s)
    lfs_batch "$base" upload "$(sha256_of "$E2E_TMP/c")" 3000
    assert_status 200
    up=$(action_href "$HTTP_BODY" 0 upload)
    http PUT "${up/$(sha256_of "$E2E_TMP/c")/$other}" -T "$E2E_TMP/c"
    assert_status 403
    assert_fake_only "$GCS_PREFIX/org/repo/$oid"

    # expired: the 3 s lifetime of the actions is the URL's own (both URLs are older than t1)
    while (($(date +%s) < t1 + 5)); do sleep 0.5; done
    expect_refused "$href" 400 ExpiredToken "the download URL after its lifetime"
    http PUT "$up" -T "$E2E_TMP/c"
    assert_status 400
    assert_file_contains "$HTTP_BODY" "<Code>ExpiredToken</Code>" "the upload URL after its lifetime"
    assert_fake_only "$GCS_PREFIX/org/repo/$oid"
}

test_download_disposition() {
    local base oid href
    start_gcs_fake
    gcs_config basic_external
    start_lfsgate --config "$CONFIG"
    base=$(lfs_url org repo)
    random_file "$E2E_TMP/a" 777
    oid=$(sha256_of "$E2E_TMP/a")
    lfs_upload "$base" "$E2E_TMP/a"

    lfs_post "$base/objects/batch" "{\"operation\": \"download\", \"objects\": [{\"oid\": \"$oid\", \"size\": 777, \"x-filename\": \"report 2024.csv\"}]}"
    assert_status 200
    href=$(action_href "$HTTP_BODY" 0 download)
    http GET "$href"
    assert_status 200
    assert_eq "attachment; filename=\"report 2024.csv\"; filename*=UTF-8''report%202024.csv" "$(http_header Content-Disposition)" "Content-Disposition from x-filename"
    assert_same_file "$E2E_TMP/a" "$HTTP_BODY" "download with x-filename"

    # the CKAN SDK's form: extra.filename, here with x-disposition inline and a non-ASCII name
    lfs_post "$base/objects/batch" "{\"operation\": \"download\", \"objects\": [{\"oid\": \"$oid\", \"size\": 777, \"extra\": {\"filename\": \"d\\u00e9j\\u00e0.txt\"}, \"x-disposition\": \"inline\"}]}"
    assert_status 200
    href=$(action_href "$HTTP_BODY" 0 download)
    http GET "$href"
    assert_status 200
    assert_eq "inline; filename=\"d__j__.txt\"; filename*=UTF-8''d%C3%A9j%C3%A0.txt" "$(http_header Content-Disposition)" "Content-Disposition from extra.filename"

    # no filename: no Content-Disposition, and the parameter is not in the URL
    lfs_download_href "$base" "$oid" 777
    assert_file_lacks <(echo "$DL_HREF") "response-content-disposition" "download href without a filename"
    http GET "$DL_HREF"
    assert_status 200
    assert_eq "" "$(http_header Content-Disposition)" "Content-Disposition without a filename"
}

# bad_gcs_config NAME REGEX STORAGE_OPTION_LINES: --check-config exits 2 and names REGEX.
bad_gcs_config() {
    local name=$1 re=$2 options=$3 file=$E2E_TMP/$1.yaml
    cat >"$file" <<EOF
TRANSFER_ADAPTERS:
  basic:
    factory: giftless.transfer.basic_external:factory
    options:
      storage_class: giftless.storage.google_cloud:GoogleCloudStorage
      storage_options:
$options
EOF
    run_lfsgate_cmd 20 --check-config --config "$file"
    assert_eq 2 "$CMD_RC" "exit status of --check-config with $name"
    assert_file_matches "$CMD_ERR" "$re" "stderr of --check-config with $name"
    assert_file_lacks "$CMD_ERR" "PRIVATE KEY" "stderr of --check-config with $name"
}

test_config_errors() {
    local o='TRANSFER_ADAPTERS\.basic\.options\.storage_options' b64
    b64=$(base64 -w 76 "$GCS_KEY" | sed 's/^/          /')
    bad_gcs_config workload_identity "$o\.serviceaccount_email: .*not supported yet" \
        "        project_name: p
        bucket_name: b-1
        serviceaccount_email: lfs@p.iam.gserviceaccount.com"
    bad_gcs_config no_key "$o\.account_key_file: .*account_key_base64" \
        "        bucket_name: b-1"
    bad_gcs_config both_keys "$o: give exactly one of account_key_file and account_key_base64" \
        "        bucket_name: b-1
        account_key_file: $GCS_KEY
        account_key_base64: eyJ9"
    bad_gcs_config missing_key_file "$o\.account_key_file: cannot read \"$E2E_TMP/nope.json\"" \
        "        bucket_name: b-1
        account_key_file: $E2E_TMP/nope.json"
    bad_gcs_config bad_base64 "$o\.account_key_base64: not valid base64" \
        "        bucket_name: b-1
        account_key_base64: '!!!'"
    printf '{"client_email": "a@b", "private_key": "-----BEGIN PRIVATE KEY-----\\nAAAA\\n-----END PRIVATE KEY-----\\n"}' >"$E2E_TMP/badkey.json"
    bad_gcs_config bad_key "$o\.account_key_file: \"private_key\" is not a PEM private key" \
        "        bucket_name: b-1
        account_key_file: $E2E_TMP/badkey.json"
    bad_gcs_config no_bucket "$o\.bucket_name: required" \
        "        account_key_file: $GCS_KEY"
    bad_gcs_config bad_endpoint "$o\.endpoint: expected http\(s\)://host\[:port\]" \
        "        bucket_name: b-1
        account_key_file: $GCS_KEY
        endpoint: ftp://example.com"

    # control: the key as base64 (wrapped, as `base64` prints it) is accepted
    cat >"$E2E_TMP/good.yaml" <<EOF
TRANSFER_ADAPTERS:
  basic:
    factory: giftless.transfer.basic_external:factory
    options:
      storage_class: gcs
      storage_options:
        project_name: p
        bucket_name: b-1
        account_key_base64: |
$b64
EOF
    run_lfsgate_cmd 20 --check-config --config "$E2E_TMP/good.yaml"
    assert_eq 0 "$CMD_RC" "exit status of --check-config with account_key_base64"
}

test_store_failures() {
    local base oid port
    # nothing listens: every object of a batch gets a 502 naming the store
    port=$(free_port)
    GCS_URL=http://127.0.0.1:$port
    gcs_config basic_external
    start_lfsgate --config "$CONFIG"
    base=$(lfs_url org repo)
    oid=$(printf '%064d' 1)
    lfs_batch "$base" download "$oid" 10
    assert_status 200
    assert_json "$HTTP_BODY" 'd["objects"][0]["error"]["code"] == 502' "batch object error code with the store down"
    assert_json "$HTTP_BODY" '"gcs storage" in d["objects"][0]["error"]["message"]' "batch object error message"
    lfs_post "$base/objects/storage/verify" "{\"oid\": \"$oid\", \"size\": 10}"
    assert_status 502
    assert_json_error
    assert_file_contains "$HTTP_BODY" "gcs storage" "verify error with the store down"
    assert_file_lacks "$HTTP_BODY" "X-Goog-Signature" "verify error with the store down"
    stop_lfsgate

    # a store that does not know lfsgate's key: lfsgate's own HEADs are refused (403)
    openssl genrsa -out "$E2E_TMP/other.pem" 2048 2>/dev/null
    python3 - "$E2E_TMP/other.pem" "$E2E_TMP/other.json" <<'EOF'
import json, sys
pem = open(sys.argv[1]).read()
json.dump({"type": "service_account", "client_email": "test-iam-credentials@dummy-project-id.iam.gserviceaccount.com",
           "private_key": pem}, open(sys.argv[2], "w"))
EOF
    start_gcs_fake
    gcs_config basic_streaming
    sed -i "s|account_key_file: .*|account_key_file: $E2E_TMP/other.json|" "$CONFIG"
    start_lfsgate --config "$CONFIG"
    base=$(lfs_url org repo)
    lfs_batch "$base" upload "$oid" 10
    assert_status 200
    assert_json "$HTTP_BODY" 'd["objects"][0]["error"]["code"] == 502' "batch object error code with a refused key"
    assert_json "$HTTP_BODY" '"HTTP 403" in d["objects"][0]["error"]["message"]' "batch object error message with a refused key"
    # ... and so are its uploads: the store's error code is passed on, its details are not
    random_file "$E2E_TMP/a" 1000
    http PUT "$base/objects/storage/$(sha256_of "$E2E_TMP/a")" -H 'Content-Type: application/octet-stream' -T "$E2E_TMP/a"
    assert_status 502
    assert_json_error
    assert_file_contains "$HTTP_BODY" "gcs storage: upload of object" "upload error with a refused key"
    assert_file_contains "$HTTP_BODY" "HTTP 403 SignatureDoesNotMatch" "upload error with a refused key"
    assert_file_lacks "$HTTP_BODY" "StringToSign" "upload error with a refused key"
    assert_fake_only
    assert_server_alive
}

run_test gcs_external_push_clone test_external_push_clone
run_test gcs_streaming_push_clone test_streaming_push_clone
run_test gcs_tampered_and_expired_refused test_tampered_and_expired_refused
run_test gcs_download_disposition test_download_disposition
run_test gcs_config_errors test_config_errors
run_test gcs_store_failures test_store_failures
e2e_finish
