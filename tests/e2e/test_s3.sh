#!/usr/bin/env bash
# tests/e2e/test_s3.sh: end-to-end tests of the S3 backend against tests/fakes/s3_fake.py, a
# loopback stand-in for S3 that accepts only SigV4 for its one key pair (no S3 server that
# checks signatures can be installed here). First botocore, AWS's own Python signer, proves
# the stand-in's check (its signatures pass, tampered and expired ones do not). Then real git +
# git-lfs push and clone through presigned URLs (basic_external) and through lfsgate
# (basic_streaming, with a range and a corrupt upload); a body that is not the oid refused by
# the store through the signed x-amz-checksum-sha256; tampered and expired URLs refused;
# temporary keys (session token); keys from the shared credentials file; Content-Disposition;
# config and credential errors; the store down, then back; a store that refuses the key.
# Run: LFSGATE_BIN=build/server/lfsgate tests/e2e/test_s3.sh   (see lib.sh for options)
# Test functions are called through run_test, which shellcheck cannot follow:
# shellcheck disable=SC2317
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MIB=1048576
S3_FAKE=$E2E_REPO_ROOT/tests/fakes/s3_fake.py
S3_BUCKET=lfs-bucket
S3_PREFIX=lfs/v1
S3_KEY_ID=AKIDLFSGATETEST
S3_SECRET=lfsgate/test+secret/key
S3_REGION=eu-west-1

# start_s3_fake [EXTRA ARGS...]: starts the stand-in on a free loopback port (or S3_PORT when
# set, to restart it there); sets S3_PORT, S3_URL, S3_PID.
start_s3_fake() {
    local out=$E2E_TMP/s3_fake.out.$RANDOM i
    python3 "$S3_FAKE" --access-key "$S3_KEY_ID" --secret-key "$S3_SECRET" --bucket "$S3_BUCKET" \
        --region "$S3_REGION" --port "${S3_PORT:-0}" "$@" \
        >"$out" 2>>"$E2E_TMP/s3_fake.log" </dev/null &
    S3_PID=$!
    bg_track "$S3_PID"
    S3_PORT=
    for ((i = 0; i < 100; i++)); do
        S3_PORT=$(head -n 1 "$out" 2>/dev/null || true)
        [[ -n $S3_PORT ]] && break
        kill -0 "$S3_PID" 2>/dev/null || fail "s3_fake.py exited: $(tail -n 3 "$E2E_TMP/s3_fake.log" | tr '\n' ' ')"
        sleep 0.1
    done
    [[ -n $S3_PORT ]] || fail "s3_fake.py did not print its port within 10 s"
    S3_URL=http://127.0.0.1:$S3_PORT
    FAKE_URL=$S3_URL FAKE_BUCKET=$S3_BUCKET FAKE_PREFIX=$S3_PREFIX
}

# s3_env: the key pair of the stand-in in the environment lfsgate starts with.
s3_env() {
    export AWS_ACCESS_KEY_ID=$S3_KEY_ID AWS_SECRET_ACCESS_KEY=$S3_SECRET AWS_REGION=$S3_REGION
    unset AWS_SESSION_TOKEN AWS_SHARED_CREDENTIALS_FILE AWS_PROFILE
}

# s3_config FACTORY [ACTION_LIFETIME] [STORAGE_CLASS] [EXTRA_STORAGE_OPTION_LINES]: writes
# $CONFIG for one "basic" adapter with S3 storage at the stand-in.
s3_config() {
    local factory=$1 lifetime=${2:-900} class=${3:-giftless.storage.amazon_s3:AmazonS3Storage} extra=${4:-}
    CONFIG=$E2E_TMP/lfsgate.yaml
    cat >"$CONFIG" <<EOF
AUTH_PROVIDERS:
  - giftless.auth.allow_anon:read_write
TRANSFER_ADAPTERS:
  basic:
    factory: giftless.transfer.$factory:factory
    options:
      action_lifetime: $lifetime
      storage_class: $class
      storage_options:
        bucket_name: $S3_BUCKET
        path_prefix: /$S3_PREFIX/
        endpoint: $S3_URL
$extra
EOF
}

# expect_refused METHOD URL STATUS CODE WHAT [curl args]: the stand-in answers STATUS with <Code>CODE</Code>.
expect_refused() {
    local method=$1 url=$2 status=$3 code=$4 what=$5
    shift 5
    http "$method" "$url" "$@"
    [[ $HTTP_STATUS == "$status" ]] || fail "$what: expected the store to refuse with $status, got $HTTP_STATUS: $(http_body_excerpt)"
    assert_file_contains "$HTTP_BODY" "<Code>$code</Code>" "$what"
}

# ---------------------------------------------------------------------------------------

# botocore (AWS's signer) against the stand-in: what it signs passes, tampering does not.
test_stand_in_checked_by_botocore() {
    python3 -c 'import botocore' 2>/dev/null ||
        fail "python3-botocore is missing (scripts/install-deps.sh --with-tests installs it)"
    start_s3_fake
    python3 - "$S3_URL" "$S3_KEY_ID" "$S3_SECRET" "$S3_REGION" "$S3_BUCKET" <<'EOF' || fail "botocore check of the stand-in failed (see the test log)"
import sys, time, urllib.request, urllib.error
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

url, key_id, secret, region, bucket = sys.argv[1:]
creds = Credentials(key_id, secret)
obj = url + "/" + bucket + "/dir/a%20b~.bin"

def send(req):
    r = urllib.request.Request(req.url, data=req.body or None, method=req.method,
                               headers=dict(req.headers.items()))
    try:
        with urllib.request.urlopen(r) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()

def check(what, got, status, code=None):
    ok = got[0] == status and (code is None or b"<Code>%s</Code>" % code.encode() in got[1])
    print("%s: %s %s" % ("ok" if ok else "FAIL", what, got[0]), file=sys.stderr)
    if not ok:
        print(got[1][:400], file=sys.stderr)
        sys.exit(1)

# header authorization, a signed payload
put = AWSRequest("PUT", obj, data=b"hello")
S3SigV4Auth(creds, "s3", region).add_auth(put)
check("botocore header-signed PUT", send(put.prepare()), 200)
get = AWSRequest("GET", obj)
S3SigV4Auth(creds, "s3", region).add_auth(get)
got = send(get.prepare())
check("botocore header-signed GET", got, 200)
assert got[1] == b"hello"
# the same request with a wrong secret, another region, a body that is not the signed one
bad = AWSRequest("GET", obj)
S3SigV4Auth(Credentials(key_id, secret + "x"), "s3", region).add_auth(bad)
check("wrong secret", send(bad.prepare()), 403, "SignatureDoesNotMatch")
bad = AWSRequest("GET", obj)
S3SigV4Auth(creds, "s3", "us-east-2").add_auth(bad)
check("wrong region", send(bad.prepare()), 400, "AuthorizationHeaderMalformed")
bad = AWSRequest("PUT", obj, data=b"hello")
S3SigV4Auth(creds, "s3", region).add_auth(bad)
p = bad.prepare()
p.body = b"HELLO"
check("body not the signed one", send(p), 400, "XAmzContentSHA256Mismatch")
# presigned (query authorization)
pre = AWSRequest("GET", obj, params={"response-content-disposition": "attachment"})
S3SigV4QueryAuth(creds, "s3", region, expires=60).add_auth(pre)
check("botocore presigned GET", send(pre.prepare()), 200)
tampered = pre.prepare()
tampered.url = tampered.url.replace("attachment", "inline")
check("tampered presigned GET", send(tampered), 403, "SignatureDoesNotMatch")
old = AWSRequest("GET", obj)
S3SigV4QueryAuth(creds, "s3", region, expires=1).add_auth(old)
prepared = old.prepare()
time.sleep(2.2)
check("expired presigned GET", send(prepared), 403, "AccessDenied")
unsigned = AWSRequest("GET", obj)
check("unsigned GET", send(unsigned.prepare()), 403, "AccessDenied")
EOF
}

test_external_push_clone() {
    start_s3_fake
    s3_env
    s3_config basic_external
    start_lfsgate --config "$CONFIG"
    fake_push_clone group/sub repo 1 $((3 * MIB + 7)) $((12 * MIB + 1))
    # the clients went to the store directly: lfsgate served no object bytes
    if grep -qE '/objects/storage/[0-9a-f]{64}' "$LFSGATE_LOG"; then
        fail "lfsgate served object bytes with basic_external: $(grep -m 1 -E '/objects/storage/[0-9a-f]{64}' "$LFSGATE_LOG")"
    fi
    assert_file_contains "$LFSGATE_LOG" '/objects/storage/verify' "lfsgate access log"
    assert_file_lacks "$LFSGATE_LOG" "$S3_SECRET" "lfsgate log"
}

test_streaming_push_clone() {
    start_s3_fake
    s3_env
    # the native name of the backend, and the path_prefix
    s3_config basic_streaming 900 s3
    start_lfsgate --config "$CONFIG"
    # 40 MiB: spilled to a temp file by h2o on upload, streamed with pause/resume on download
    fake_push_clone org repo 1 $((3 * MIB + 7)) $((40 * MIB + 13))

    fake_streaming_range_and_corrupt_upload
}

test_checksum_refuses_other_body() {
    local base oid href
    local -a hdr=()
    start_s3_fake
    s3_env
    s3_config basic_external
    start_lfsgate --config "$CONFIG"
    base=$(lfs_url org repo)
    random_file "$E2E_TMP/a" 5000
    random_file "$E2E_TMP/b" 5000
    oid=$(sha256_of "$E2E_TMP/a")
    lfs_batch "$base" upload "$oid" 5000
    assert_status 200
    href=$(action_href "$HTTP_BODY" 0 upload)
    mapfile -t hdr < <(action_header_args "$HTTP_BODY" 0 upload)
    assert_eq "-H|x-amz-checksum-sha256: $(openssl dgst -sha256 -binary "$E2E_TMP/a" | base64)" \
        "$(IFS='|'; echo "${hdr[*]}")" "upload action header"
    # another body under the oid's URL: the store checks the signed checksum and stores nothing
    http PUT "$href" "${hdr[@]}" -T "$E2E_TMP/b"
    assert_status 400
    assert_file_contains "$HTTP_BODY" "<Code>BadDigest</Code>" "PUT of another body"
    # the checksum cannot be dropped (it is signed) nor replaced by the other body's
    expect_refused PUT "$href" 403 SignatureDoesNotMatch "PUT without the signed checksum header" -T "$E2E_TMP/b"
    expect_refused PUT "$href" 403 SignatureDoesNotMatch "PUT with the other body's checksum" \
        -H "x-amz-checksum-sha256: $(openssl dgst -sha256 -binary "$E2E_TMP/b" | base64)" -T "$E2E_TMP/b"
    assert_fake_only
    http PUT "$href" "${hdr[@]}" -T "$E2E_TMP/a"
    assert_status 200
    assert_fake_only "$S3_PREFIX/org/repo/$oid"
}

test_tampered_and_expired_refused() {
    local base oid other href up t1
    start_s3_fake
    s3_env
    s3_config basic_external 3
    start_lfsgate --config "$CONFIG"
    base=$(lfs_url org repo)
    random_file "$E2E_TMP/a" 5000
    oid=$(sha256_of "$E2E_TMP/a")
    lfs_upload "$base" "$E2E_TMP/a"
    assert_fake_object "$E2E_TMP/a" "$S3_PREFIX/org/repo/$oid" "uploaded object"

    lfs_download_href "$base" "$oid" 5000
    href=$DL_HREF
    [[ $href == "$S3_URL/$S3_BUCKET/$S3_PREFIX/org/repo/$oid?"* ]] || fail "download href does not point at the store: $href"
    assert_match "$href" 'X-Amz-Expires=3&' "download href lifetime"
    http GET "$href"
    assert_status 200
    assert_same_file "$E2E_TMP/a" "$HTTP_BODY" "download through the presigned URL"

    # tampered: another object, a longer lifetime, another key id, a forged signature
    other=$(printf '%064d' 0)
    expect_refused GET "${href/$oid/$other}" 403 SignatureDoesNotMatch "a URL with another object name"
    expect_refused GET "${href/X-Amz-Expires=3/X-Amz-Expires=604800}" 403 SignatureDoesNotMatch "a URL with a longer lifetime"
    expect_refused GET "${href/$S3_KEY_ID/AKIDSOMEONEELSE}" 403 InvalidAccessKeyId "a URL naming another key"
    expect_refused GET "${href%X-Amz-Signature=*}X-Amz-Signature=$(printf '%064d' 0)" 403 SignatureDoesNotMatch "a forged signature"
    expect_refused GET "${href%%\?*}" 403 AccessDenied "the object without a signature"
    # the signed Host includes the port: the same URL sent with another Host is refused
    expect_refused GET "$href" 403 SignatureDoesNotMatch "the URL with another Host header" -H "Host: 127.0.0.1"

    # a tampered upload URL stores nothing
    random_file "$E2E_TMP/c" 3000
    t1=$(date +%s)
    lfs_batch "$base" upload "$(sha256_of "$E2E_TMP/c")" 3000
    assert_status 200
    up=$(action_href "$HTTP_BODY" 0 upload)
    mapfile -t hdr < <(action_header_args "$HTTP_BODY" 0 upload)
    http PUT "${up/$(sha256_of "$E2E_TMP/c")/$other}" "${hdr[@]}" -T "$E2E_TMP/c"
    assert_status 403
    assert_fake_only "$S3_PREFIX/org/repo/$oid"

    # expired: the 3 s lifetime of the actions is the URL's own (both URLs are older than t1)
    while (($(date +%s) < t1 + 5)); do sleep 0.5; done
    expect_refused GET "$href" 403 AccessDenied "the download URL after its lifetime"
    assert_file_contains "$HTTP_BODY" "Request has expired" "the download URL after its lifetime"
    expect_refused PUT "$up" 403 AccessDenied "the upload URL after its lifetime" "${hdr[@]}" -T "$E2E_TMP/c"
    assert_fake_only "$S3_PREFIX/org/repo/$oid"
}

test_session_token_and_credentials_file() {
    local base oid
    # temporary keys: the stand-in wants the token on every request
    start_s3_fake --session-token 'FQoGZXIvYXdz/token+value='
    s3_env
    s3_config basic_external
    start_lfsgate --config "$CONFIG"
    base=$(lfs_url org repo)
    random_file "$E2E_TMP/a" 2000
    oid=$(sha256_of "$E2E_TMP/a")
    # without the token lfsgate's own HEAD is refused: a 502 naming the store and the code
    lfs_batch "$base" upload "$oid" 2000
    assert_status 200
    assert_json "$HTTP_BODY" 'd["objects"][0]["error"]["code"] == 502' "batch without the session token"
    # (a HEAD's answer has no body, so no error code: S3 does the same)
    assert_json "$HTTP_BODY" '"s3 storage answered 403 to HEAD" in d["objects"][0]["error"]["message"]' "batch error without the session token"
    stop_lfsgate
    # with it (from the shared credentials file, profile from AWS_PROFILE): pushes work
    unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
    cat >"$E2E_TMP/credentials" <<EOF
[default]
aws_access_key_id = AKIDWRONG
aws_secret_access_key = wrong
[lfs]
aws_access_key_id = $S3_KEY_ID
aws_secret_access_key = $S3_SECRET
aws_session_token = FQoGZXIvYXdz/token+value=
EOF
    export AWS_SHARED_CREDENTIALS_FILE=$E2E_TMP/credentials AWS_PROFILE=lfs
    start_lfsgate --config "$CONFIG"
    assert_file_lacks "$LFSGATE_LOG" "$S3_SECRET" "lfsgate log"
    base=$(lfs_url org repo)
    lfs_upload "$base" "$E2E_TMP/a"
    lfs_download_href "$base" "$oid" 2000
    assert_match "$DL_HREF" 'X-Amz-Security-Token=FQoGZXIvYXdz%2Ftoken%2Bvalue%3D&' "download href token"
    http GET "$DL_HREF"
    assert_status 200
    assert_same_file "$E2E_TMP/a" "$HTTP_BODY" "download with temporary keys"
    expect_refused GET "${DL_HREF/X-Amz-Security-Token=FQoGZXIvYXdz/X-Amz-Security-Token=other}" 403 SignatureDoesNotMatch "a URL with another token"
}

test_download_disposition() {
    local base oid href
    start_s3_fake
    s3_env
    s3_config basic_external
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

    lfs_download_href "$base" "$oid" 777
    assert_file_lacks <(echo "$DL_HREF") "response-content-disposition" "download href without a filename"
}

# bad_s3_config NAME REGEX STORAGE_OPTION_LINES: --check-config exits 2 and names REGEX.
bad_s3_config() {
    local name=$1 re=$2 options=$3 file=$E2E_TMP/$1.yaml
    cat >"$file" <<EOF
TRANSFER_ADAPTERS:
  basic:
    factory: giftless.transfer.basic_external:factory
    options:
      storage_class: giftless.storage.amazon_s3:AmazonS3Storage
      storage_options:
$options
EOF
    run_lfsgate_cmd 20 --check-config --config "$file"
    assert_eq 2 "$CMD_RC" "exit status of --check-config with $name"
    assert_file_matches "$CMD_ERR" "$re" "stderr of --check-config with $name"
    assert_file_lacks "$CMD_ERR" "$S3_SECRET" "stderr of --check-config with $name"
}

test_config_errors() {
    local o='TRANSFER_ADAPTERS\.basic\.options\.storage_options'
    s3_env
    bad_s3_config no_bucket "$o\.bucket_name: required key is missing" \
        "        path_prefix: x"
    bad_s3_config bad_endpoint "$o\.endpoint: expected http\(s\)://host\[:port\]" \
        "        bucket_name: b-1
        endpoint: ftp://example.com"
    bad_s3_config bad_style "$o\.addressing_style: expected \"path\" or \"virtual\"" \
        "        bucket_name: b-1
        addressing_style: dns"
    # no credentials anywhere: the sources tried are named, and those not built
    unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
    export HOME=$E2E_TMP/home AWS_WEB_IDENTITY_TOKEN_FILE=$E2E_TMP/token
    bad_s3_config no_credentials "$o: no AWS credentials found; tried AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY \(not set\) and the shared credentials file \"$E2E_TMP/home/.aws/credentials\".*web identity \(STS AssumeRoleWithWebIdentity\) is not supported yet.*container and instance credentials" \
        "        bucket_name: b-1"
    unset AWS_WEB_IDENTITY_TOKEN_FILE
    export AWS_ACCESS_KEY_ID=$S3_KEY_ID
    bad_s3_config half_key "$o: AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not" \
        "        bucket_name: b-1"

    # control: a giftless config with only its own options is accepted
    s3_env
    cat >"$E2E_TMP/good.yaml" <<EOF
TRANSFER_ADAPTERS:
  basic:
    factory: giftless.transfer.basic_external:factory
    options:
      storage_class: giftless.storage.amazon_s3:AmazonS3Storage
      storage_options:
        bucket_name: b-1
        path_prefix: lfs
EOF
    run_lfsgate_cmd 20 --check-config --config "$E2E_TMP/good.yaml"
    assert_eq 0 "$CMD_RC" "exit status of --check-config with a giftless S3 config"
}

test_store_failures() {
    local base oid port
    s3_env
    # nothing listens: every object of a batch gets a 502 naming the store
    port=$(free_port)
    S3_URL=http://127.0.0.1:$port
    s3_config basic_external
    start_lfsgate --config "$CONFIG"
    base=$(lfs_url org repo)
    oid=$(printf '%064d' 1)
    lfs_batch "$base" download "$oid" 10
    assert_status 200
    assert_json "$HTTP_BODY" 'd["objects"][0]["error"]["code"] == 502' "batch object error code with the store down"
    assert_json "$HTTP_BODY" '"s3 storage" in d["objects"][0]["error"]["message"]' "batch object error message"
    lfs_post "$base/objects/storage/verify" "{\"oid\": \"$oid\", \"size\": 10}"
    assert_status 502
    assert_json_error
    assert_file_contains "$HTTP_BODY" "s3 storage" "verify error with the store down"
    # the store comes back on that port: the same server works again
    S3_PORT=$port
    start_s3_fake
    random_file "$E2E_TMP/a" 1000
    lfs_upload "$base" "$E2E_TMP/a"
    assert_fake_object "$E2E_TMP/a" "$S3_PREFIX/org/repo/$(sha256_of "$E2E_TMP/a")" "upload once the store is back"
    stop_lfsgate

    # a store that does not know lfsgate's secret: its own HEADs and PUTs are refused (403)
    export AWS_SECRET_ACCESS_KEY=not-the-secret
    s3_config basic_streaming
    start_lfsgate --config "$CONFIG"
    base=$(lfs_url org repo)
    lfs_batch "$base" upload "$oid" 10
    assert_status 200
    assert_json "$HTTP_BODY" 'd["objects"][0]["error"]["code"] == 502' "batch object error code with a refused key"
    assert_json "$HTTP_BODY" '"s3 storage answered 403 to HEAD" in d["objects"][0]["error"]["message"]' "batch object error message with a refused key"
    random_file "$E2E_TMP/b" 1000
    http PUT "$base/objects/storage/$(sha256_of "$E2E_TMP/b")" -H 'Content-Type: application/octet-stream' -T "$E2E_TMP/b"
    assert_status 502
    assert_json_error
    assert_file_contains "$HTTP_BODY" "s3 storage answered 403 (SignatureDoesNotMatch) to upload" "upload error with a refused key"
    assert_file_lacks "$HTTP_BODY" "StringToSign" "upload error with a refused key"
    assert_file_lacks "$HTTP_BODY" "not-the-secret" "upload error with a refused key"
    assert_server_alive
}

run_test s3_stand_in_checked_by_botocore test_stand_in_checked_by_botocore
run_test s3_external_push_clone test_external_push_clone
run_test s3_streaming_push_clone test_streaming_push_clone
run_test s3_checksum_refuses_other_body test_checksum_refuses_other_body
run_test s3_tampered_and_expired_refused test_tampered_and_expired_refused
run_test s3_session_token_and_credentials_file test_session_token_and_credentials_file
run_test s3_download_disposition test_download_disposition
run_test s3_config_errors test_config_errors
run_test s3_store_failures test_store_failures
e2e_finish
