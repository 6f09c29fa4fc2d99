#!/usr/bin/env bash
# tests/e2e/test_gcs.sh: end-to-end tests of the Google Cloud Storage backend against
# tests/fakes/gcs_fake.py, a loopback stand-in for the GCS XML API that checks every V4
# signature with the public half of the dummy service-account key (no GCS emulator can be
# installed here). Real git + git-lfs push and clone through signed URLs (basic_external)
# and through lfsgate (basic_streaming, with ranges and a corrupt upload); tampered and
# expired URLs refused by the store; Content-Disposition from x-filename / extra.filename;
# config errors; an unreachable store and a store that refuses lfsgate's own signatures.
# Workload identity (serviceaccount_email, no key) against tests/fakes/google_auth_fake.py,
# the metadata server and IAM signBlob in one loopback process (signBlob signs with the same
# dummy key, so gcs_fake.py verifies the URLs; gcs_fake.py asks it whether a bearer token is
# live): push and clone both ways, token expiry and refresh, one signBlob per object of a
# batch, all at once, and none for a repeated batch, and the metadata server or IAM down.
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
GOOGLE_FAKE=$E2E_REPO_ROOT/tests/fakes/google_auth_fake.py
GCS_EMAIL=test-iam-credentials@dummy-project-id.iam.gserviceaccount.com
# How lfsgate authenticates (storage option lines): the key file, or workload identity.
GCS_CREDENTIALS="account_key_file: $GCS_KEY"

# start_gcs_fake [ARGS...]: starts the GCS fake on a free loopback port; sets GCS_PORT, GCS_URL.
start_gcs_fake() {
    start_py_fake gcs_fake "$GCS_FAKE" --key "$GCS_KEY" --bucket "$GCS_BUCKET" "$@"
    GCS_PORT=$FAKE_PORT
    GCS_URL=http://127.0.0.1:$GCS_PORT
    FAKE_URL=$GCS_URL FAKE_BUCKET=$GCS_BUCKET FAKE_PREFIX=$GCS_PREFIX
}

# start_workload_identity [GOOGLE_FAKE_ARGS...]: the metadata server and IAM stand-in, then
# the GCS fake trusting its tokens; exports GCE_METADATA_HOST for lfsgate; sets GOOGLE_URL and
# GCS_CREDENTIALS for gcs_config (serviceaccount_email, iam_endpoint, no key).
start_workload_identity() {
    start_py_fake google_auth_fake "$GOOGLE_FAKE" --key "$GCS_KEY" "$@"
    GOOGLE_URL=http://127.0.0.1:$FAKE_PORT
    export GCE_METADATA_HOST=127.0.0.1:$FAKE_PORT
    start_gcs_fake --tokeninfo "$GOOGLE_URL/tokeninfo"
    GCS_CREDENTIALS="serviceaccount_email: $GCS_EMAIL
        iam_endpoint: $GOOGLE_URL"
}

# gcs_config FACTORY [ACTION_LIFETIME] [EXTRA_STORAGE_OPTION_LINES]: writes $CONFIG for one
# "basic" adapter with GCS storage at the fake, authenticated as GCS_CREDENTIALS says.
gcs_config() {
    local factory=$1 lifetime=${2:-900} extra=${3:-}
    CONFIG=$E2E_TMP/lfsgate.yaml
    store_config "$CONFIG" "$factory" "      storage_class: giftless.storage.google_cloud:GoogleCloudStorage
      storage_options:
        project_name: dummy-project-id
        bucket_name: $GCS_BUCKET
        $GCS_CREDENTIALS
        path_prefix: /$GCS_PREFIX/
        endpoint: $GCS_URL
$extra" "      action_lifetime: $lifetime"
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

# check_gcs_config NAME STORAGE_OPTION_LINES: runs --check-config on a basic_external config
# with these GCS options (sets CMD_RC, CMD_ERR).
check_gcs_config() {
    local file=$E2E_TMP/$1.yaml
    cat >"$file" <<EOF
TRANSFER_ADAPTERS:
  basic:
    factory: giftless.transfer.basic_external:factory
    options:
      storage_class: giftless.storage.google_cloud:GoogleCloudStorage
      storage_options:
$2
EOF
    run_lfsgate_cmd 20 --check-config --config "$file"
}

# bad_gcs_config NAME REGEX STORAGE_OPTION_LINES: --check-config exits 2 and names REGEX.
bad_gcs_config() {
    local name=$1 re=$2
    check_gcs_config "$name" "$3"
    assert_eq 2 "$CMD_RC" "exit status of --check-config with $name"
    assert_file_matches "$CMD_ERR" "$re" "stderr of --check-config with $name"
    assert_file_lacks "$CMD_ERR" "PRIVATE KEY" "stderr of --check-config with $name"
}

test_config_errors() {
    local o='TRANSFER_ADAPTERS\.basic\.options\.storage_options' b64
    b64=$(base64 -w 76 "$GCS_KEY" | sed 's/^/          /')
    bad_gcs_config bad_email "$o\.serviceaccount_email: expected a service account's email" \
        "        project_name: p
        bucket_name: b-1
        serviceaccount_email: lfs at p"
    bad_gcs_config bad_iam_endpoint "$o\.iam_endpoint: expected http\(s\)://host\[:port\]" \
        "        bucket_name: b-1
        serviceaccount_email: lfs@p.iam.gserviceaccount.com
        iam_endpoint: iamcredentials.googleapis.com"
    GCE_METADATA_HOST='metadata/x' bad_gcs_config bad_metadata_host \
        "$o: the environment variable GCE_METADATA_HOST: expected host\[:port\]" \
        "        bucket_name: b-1
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

    # control: giftless's workload identity config (no key) starts, without asking anything of
    # the metadata server (none runs here)
    check_gcs_config workload_identity "        project_name: p
        bucket_name: b-1
        serviceaccount_email: lfs@p.iam.gserviceaccount.com"
    assert_eq 0 "$CMD_RC" "exit status of --check-config with serviceaccount_email"
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

# ---- workload identity: serviceaccount_email, no key ----

# assert_no_secrets_logged: lfsgate's log holds no access token and no signature.
assert_no_secrets_logged() {
    assert_file_lacks "$LFSGATE_LOG" "ya29." "lfsgate log"
    assert_file_lacks "$LFSGATE_LOG" "X-Goog-Signature" "lfsgate log"
}

test_wi_push_clone() {
    start_workload_identity
    gcs_config basic_external
    start_lfsgate --config "$CONFIG"
    fake_push_clone group/sub repo 1 $((3 * MIB + 7))
    # one token for the whole run (two worker threads share it), asked the way the metadata
    # server wants; every URL the clients used was signed by IAM as the service account (the
    # fake store checks them), lfsgate's own HEADs carried the token
    assert_fake_stat "$GOOGLE_URL" token_fetches 1 "metadata server"
    assert_fake_stat "$GOOGLE_URL" token_refused 0 "metadata server"
    assert_fake_stat "$GOOGLE_URL" signblob_refused 0 "IAM"
    [[ $(fake_stat "$GOOGLE_URL" signblob) -ge 4 ]] || fail "expected a signBlob per upload and download URL, got $(fake_stat "$GOOGLE_URL" signblob)"
    [[ $(fake_stat "$GCS_URL" signed) -ge 4 ]] || fail "expected the clients' PUTs and GETs on signed URLs"
    [[ $(fake_stat "$GCS_URL" bearer) -ge 2 ]] || fail "expected lfsgate's HEADs with the access token"
    assert_fake_stat "$GCS_URL" auth_refused 0 "GCS"
    assert_no_secrets_logged
}

test_wi_streaming_push_clone() {
    start_workload_identity
    gcs_config basic_streaming
    start_lfsgate --config "$CONFIG"
    fake_push_clone org repo 1 $((5 * MIB + 3))
    # objects went through lfsgate with the token: nothing to sign
    assert_fake_stat "$GOOGLE_URL" token_fetches 1 "metadata server"
    assert_fake_stat "$GOOGLE_URL" signblob 0 "IAM"
    assert_fake_stat "$GCS_URL" signed 0 "GCS"
    assert_fake_stat "$GCS_URL" auth_refused 0 "GCS"
    [[ $(fake_stat "$GCS_URL" PUT) -eq 2 && $(fake_stat "$GCS_URL" GET) -ge 2 ]] ||
        fail "expected lfsgate's PUTs and GETs with the token: $(curl -sS --noproxy '*' "$GCS_URL/_fake/stats")"
    assert_no_secrets_logged
}

test_wi_token_refresh() {
    local base oid fetches up
    # tokens live 3 s: lfsgate uses one until shortly before it expires, refreshes it from half
    # its life, and the IAM and GCS stand-ins refuse it once expired; actions live 3 s too
    start_workload_identity --token-lifetime 3
    gcs_config basic_external 3
    start_lfsgate --config "$CONFIG"
    base=$(lfs_url org repo)
    random_file "$E2E_TMP/a" 4000
    oid=$(sha256_of "$E2E_TMP/a")
    lfs_batch "$base" upload "$oid" 4000
    assert_status 200
    assert_fake_stat "$GOOGLE_URL" token_fetches 1 "metadata server after the first batch"
    up=$(action_href "$HTTP_BODY" 0 upload)
    assert_match "$up" 'X-Goog-Expires=3&' "upload href lifetime (short lifetimes are signed as asked)"
    lfs_upload "$base" "$E2E_TMP/a"
    assert_fake_object "$E2E_TMP/a" "$GCS_PREFIX/org/repo/$oid" "uploaded object"
    fetches=$(fake_stat "$GOOGLE_URL" token_fetches)
    sleep 4 # every token issued so far has expired, and so has the first upload URL
    http PUT "$up" -T "$E2E_TMP/a"
    assert_status 400
    assert_file_contains "$HTTP_BODY" "<Code>ExpiredToken</Code>" "an IAM-signed URL after its lifetime"
    lfs_download_href "$base" "$oid" 4000
    http GET "$DL_HREF"
    assert_status 200
    assert_same_file "$E2E_TMP/a" "$HTTP_BODY" "download after the token expired"
    assert_fake_stat "$GOOGLE_URL" token_fetches $((fetches + 1)) "metadata server after the token expired"
    # never an expired token sent: the store refused only the expired URL sent on purpose
    assert_fake_stat "$GOOGLE_URL" signblob_refused 0 "IAM"
    assert_fake_stat "$GCS_URL" auth_refused 1 "GCS"
    assert_no_secrets_logged
}

test_wi_token_shared() {
    local workers
    # the token takes 1 s to come: requests on both worker threads wait for the one fetch
    start_workload_identity --token-latency-ms 1000
    gcs_config basic_external
    start_lfsgate --config "$CONFIG"
    concurrent_upload_batches 16 '"X-Goog-Credential=test-iam-credentials%40" in d["objects"][0]["actions"]["upload"]["href"]'
    assert_fake_stat "$GOOGLE_URL" token_fetches 1 "metadata server"
    # both worker threads served some (request ids start with the worker's own prefix)
    workers=$(grep '"path":"/org/repo.git/info/lfs/objects/batch"' "$LFSGATE_LOG" |
        sed 's/.*"request_id":"\([0-9a-f]\{8\}\).*/\1/' | sort -u | wc -l)
    [[ $workers -ge 2 ]] || fail "expected the batches on both worker threads, saw $workers"
    assert_no_secrets_logged
}

test_wi_batch_concurrent_signing() {
    local base body n=8 i t0 t1 hrefs
    # each signBlob takes 800 ms: one after the other, 8 would take 6.4 s
    start_workload_identity --sign-latency-ms 800
    gcs_config basic_external 3600
    start_lfsgate --config "$CONFIG"
    base=$(lfs_url org repo)
    body='{"operation": "upload", "transfers": ["basic"], "objects": ['
    for ((i = 0; i < n; i++)); do
        body+="$( ((i > 0)) && echo ', '){\"oid\": \"$(printf '%064x' $((i + 1)))\", \"size\": $((100 + i))}"
    done
    body+=']}'
    # URLs are signed for windows of 450 s (3600 / 8): keep both batches in one window
    while (($(date +%s) % 450 > 430)); do sleep 1; done
    t0=$(date +%s%N)
    lfs_post "$base/objects/batch" "$body"
    t1=$(date +%s%N)
    assert_status 200
    cp "$HTTP_BODY" "$E2E_TMP/batch1.json"
    assert_json "$HTTP_BODY" "len(d['objects']) == $n and all('$GCS_URL/' in o['actions']['upload']['href'] and 'X-Goog-Credential=test-iam-credentials%40' in o['actions']['upload']['href'] for o in d['objects'])" "upload actions signed as the service account"
    assert_fake_stat "$GOOGLE_URL" token_fetches 1 "metadata server"
    assert_fake_stat "$GOOGLE_URL" signblob "$n" "IAM"
    assert_fake_stat "$GOOGLE_URL" signblob_inflight_max "$n" "IAM"
    (((t1 - t0) / 1000000 < 3000)) || fail "the batch took $(((t1 - t0) / 1000000)) ms: signBlob calls were not concurrent"
    # the same batch again: every signature from the cache, the same URLs
    lfs_post "$base/objects/batch" "$body"
    assert_status 200
    assert_fake_stat "$GOOGLE_URL" signblob "$n" "IAM after a repeated batch"
    hrefs="[o['actions']['upload']['href'] for o in d['objects']]"
    assert_eq "$(json "$E2E_TMP/batch1.json" "$hrefs")" "$(json "$HTTP_BODY" "$hrefs")" "hrefs of the repeated batch"
    # a URL from the cache works
    random_file "$E2E_TMP/x" 100 # not the oid: the store takes any bytes on a signed PUT
    http PUT "$(json "$HTTP_BODY" "d['objects'][0]['actions']['upload']['href']")" -T "$E2E_TMP/x"
    assert_status 200
    assert_no_secrets_logged
}

# upload_batch_fails OID MESSAGE WHAT: starts lfsgate with basic_external as GCS_CREDENTIALS
# say; an upload batch of OID (not stored) fails whole with 503 and MESSAGE.
upload_batch_fails() {
    gcs_config basic_external
    start_lfsgate --config "$CONFIG"
    lfs_batch "$(lfs_url org repo)" upload "$1" 10
    assert_status 503
    assert_json_error
    assert_file_contains "$HTTP_BODY" "$2" "$3"
}

test_wi_iam_down() {
    local oid port base_creds
    start_workload_identity
    base_creds=$GCS_CREDENTIALS
    oid=$(printf '%064d' 7)
    # nothing listens where IAM should be
    port=$(free_port)
    GCS_CREDENTIALS="serviceaccount_email: $GCS_EMAIL
        iam_endpoint: http://127.0.0.1:$port"
    upload_batch_fails "$oid" "IAM signBlob for $GCS_EMAIL failed: IAM Credentials API unreachable" "batch error with IAM down"
    stop_lfsgate
    # IAM answers 403 (the pod's account may not sign as this one)
    curl -sS --noproxy '*' -o /dev/null -X POST -d '{"iam": 403}' "$GOOGLE_URL/_fake/fail"
    GCS_CREDENTIALS=$base_creds
    upload_batch_fails "$oid" "IAM signBlob for $GCS_EMAIL at $GOOGLE_URL failed: HTTP 403 PERMISSION_DENIED; the pod's service account needs roles/iam.serviceAccountTokenCreator" "batch error with IAM refusing"
    # lfsgate's own calls do not need IAM: verify still answers (404: nothing is stored)
    lfs_post "$(lfs_url org repo)/objects/storage/verify" "{\"oid\": \"$oid\", \"size\": 10}"
    assert_status 404
    assert_no_secrets_logged
    assert_server_alive
}

test_wi_metadata_down() {
    local base oid
    start_workload_identity
    oid=$(printf '%064d' 8)
    # nothing listens where the metadata server should be
    GCE_METADATA_HOST=127.0.0.1:$(free_port)
    gcs_config basic_external
    start_lfsgate --config "$CONFIG"
    base=$(lfs_url org repo)
    lfs_batch "$base" download "$oid" 10
    assert_status 200
    assert_json "$HTTP_BODY" 'd["objects"][0]["error"]["code"] == 503' "batch object error code with the metadata server down"
    assert_json "$HTTP_BODY" '"cannot get an access token from the metadata server at http://'"$GCE_METADATA_HOST"': metadata server unreachable" in d["objects"][0]["error"]["message"]' "batch object error with the metadata server down"
    lfs_post "$base/objects/storage/verify" "{\"oid\": \"$oid\", \"size\": 10}"
    assert_status 503
    assert_json_error
    assert_file_contains "$HTTP_BODY" "cannot get an access token from the metadata server" "verify error with the metadata server down"
    stop_lfsgate
    # the metadata server answers 500
    GCE_METADATA_HOST=127.0.0.1:${GOOGLE_URL##*:}
    curl -sS --noproxy '*' -o /dev/null -X POST -d '{"metadata": 500}' "$GOOGLE_URL/_fake/fail"
    start_lfsgate --config "$CONFIG"
    base=$(lfs_url org repo)
    lfs_batch "$base" upload "$oid" 10
    assert_status 200
    assert_json "$HTTP_BODY" 'd["objects"][0]["error"]["code"] == 503 and "metadata server at http://'"$GCE_METADATA_HOST"': HTTP 500" in d["objects"][0]["error"]["message"]' "batch object error with the metadata server failing"
    # ... and recovers once it answers again
    curl -sS --noproxy '*' -o /dev/null -X POST -d '{"metadata": 0}' "$GOOGLE_URL/_fake/fail"
    lfs_batch "$base" upload "$oid" 10
    assert_status 200
    assert_json "$HTTP_BODY" '"upload" in d["objects"][0]["actions"]' "batch once the metadata server is back"
    assert_fake_stat "$GCS_URL" auth_refused 0 "GCS"
    assert_no_secrets_logged
}

run_test gcs_external_push_clone test_external_push_clone
run_test gcs_streaming_push_clone test_streaming_push_clone
run_test gcs_tampered_and_expired_refused test_tampered_and_expired_refused
run_test gcs_download_disposition test_download_disposition
run_test gcs_config_errors test_config_errors
run_test gcs_store_failures test_store_failures
run_test gcs_wi_push_clone test_wi_push_clone
run_test gcs_wi_streaming_push_clone test_wi_streaming_push_clone
run_test gcs_wi_token_refresh test_wi_token_refresh
run_test gcs_wi_token_shared test_wi_token_shared
run_test gcs_wi_batch_concurrent_signing test_wi_batch_concurrent_signing
run_test gcs_wi_iam_down test_wi_iam_down
run_test gcs_wi_metadata_down test_wi_metadata_down
e2e_finish
