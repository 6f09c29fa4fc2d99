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
AWS_CREDS_FAKE=$E2E_REPO_ROOT/tests/fakes/aws_creds_fake.py
S3_BUCKET=lfs-bucket
S3_PREFIX=lfs/v1
S3_KEY_ID=AKIDLFSGATETEST
S3_SECRET=lfsgate/test+secret/key
S3_REGION=eu-west-1

# start_s3_fake [EXTRA ARGS...]: starts the stand-in on a free loopback port (or S3_PORT when
# set, to restart it there); sets S3_PORT, S3_URL.
start_s3_fake() {
    start_py_fake "s3_fake.$RANDOM" "$S3_FAKE" --access-key "$S3_KEY_ID" --secret-key "$S3_SECRET" \
        --bucket "$S3_BUCKET" --region "$S3_REGION" --port "${S3_PORT:-0}" "$@"
    S3_PORT=$FAKE_PORT
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
    store_config "$CONFIG" "$factory" "      storage_class: $class
      storage_options:
        bucket_name: $S3_BUCKET
        path_prefix: /$S3_PREFIX/
        endpoint: $S3_URL
$extra" "      action_lifetime: $lifetime"
}

# assert_upload_works SIZE WHAT: a new object of SIZE bytes uploads through the batch API
# and is in the stand-in's bucket.
assert_upload_works() {
    random_file "$E2E_TMP/up.$1" "$1"
    lfs_upload "$(lfs_url org repo)" "$E2E_TMP/up.$1"
    assert_fake_object "$E2E_TMP/up.$1" "$S3_PREFIX/org/repo/$(sha256_of "$E2E_TMP/up.$1")" "$2"
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
    # no credentials anywhere (IMDS turned off): every source tried is named, in order
    unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
    export HOME=$E2E_TMP/home AWS_EC2_METADATA_DISABLED=true
    bad_s3_config no_credentials "$o: no AWS credentials found; tried, in this order: AWS_ACCESS_KEY_ID \(not set\), the shared credentials file \"$E2E_TMP/home/.aws/credentials\".*, web identity \(AWS_WEB_IDENTITY_TOKEN_FILE/AWS_ROLE_ARN not set\), container credentials \(AWS_CONTAINER_CREDENTIALS_\*_URI not set\), the instance metadata service \(AWS_EC2_METADATA_DISABLED=true\)$" \
        "        bucket_name: b-1"
    # half a web identity, a role that is no ARN, plain http to a container endpoint elsewhere
    export AWS_WEB_IDENTITY_TOKEN_FILE=$E2E_TMP/token
    bad_s3_config half_web_identity "$o: AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not" \
        "        bucket_name: b-1"
    export AWS_ROLE_ARN=lfsgate
    bad_s3_config bad_role "$o: AWS_ROLE_ARN: \"lfsgate\" is not a role ARN" \
        "        bucket_name: b-1"
    export AWS_ROLE_ARN=arn:aws:iam::123456789012:role/lfsgate
    bad_s3_config missing_token "$o: AWS_WEB_IDENTITY_TOKEN_FILE \"$E2E_TMP/token\": No such file or directory" \
        "        bucket_name: b-1"
    unset AWS_WEB_IDENTITY_TOKEN_FILE AWS_ROLE_ARN
    export AWS_CONTAINER_CREDENTIALS_FULL_URI=http://192.0.2.1/creds
    bad_s3_config container_http "$o: AWS_CONTAINER_CREDENTIALS_FULL_URI: plain http is allowed only to a loopback address" \
        "        bucket_name: b-1"
    unset AWS_CONTAINER_CREDENTIALS_FULL_URI AWS_EC2_METADATA_DISABLED
    # IMDS is used only when it answers at startup: nothing listens there, so it is named too
    AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:$(free_port)
    export AWS_EC2_METADATA_SERVICE_ENDPOINT
    bad_s3_config no_imds "$o: no AWS credentials found; tried.*, the instance metadata service at $AWS_EC2_METADATA_SERVICE_ENDPOINT \(Couldn't connect to server\)$" \
        "        bucket_name: b-1"
    unset AWS_EC2_METADATA_SERVICE_ENDPOINT
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
    assert_upload_works 1000 "upload once the store is back"
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

# ---- temporary keys: web identity (STS), the container endpoint, IMDS ----

STS_MASTER=lfsgate-test-sts-master
ROLE_ARN=arn:aws:iam::123456789012:role/lfsgate

# start_aws_creds [ARGS...]: the STS / container / IMDS stand-in (aws_creds_fake.py) with the
# web identity token file $E2E_TMP/web-token, then the S3 stand-in trusting its keys; sets
# CREDS_URL and CREDS_PORT (CREDS_PORT when set: restart it there).
start_aws_creds() {
    [[ -f $E2E_TMP/web-token ]] || echo "eyJ.web-identity-token-1" >"$E2E_TMP/web-token"
    start_py_fake aws_creds_fake "$AWS_CREDS_FAKE" --master "$STS_MASTER" \
        --token-file "$E2E_TMP/web-token" --role-arn "$ROLE_ARN" --port "${CREDS_PORT:-0}" "$@"
    CREDS_PORT=$FAKE_PORT
    CREDS_URL=http://127.0.0.1:$CREDS_PORT
    [[ -n ${S3_URL:-} ]] || start_s3_fake --sts-master "$STS_MASTER"
}

# temporary_env: no long-term keys anywhere, IMDS off; the test adds its source.
temporary_env() {
    unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE
    export AWS_SHARED_CREDENTIALS_FILE=$E2E_TMP/no-such-credentials AWS_REGION=$S3_REGION
    export AWS_EC2_METADATA_DISABLED=true
}

# web_identity_env: lfsgate gets its keys through STS AssumeRoleWithWebIdentity.
web_identity_env() {
    temporary_env
    [[ -f $E2E_TMP/web-token ]] || echo "eyJ.web-identity-token-1" >"$E2E_TMP/web-token"
    export AWS_WEB_IDENTITY_TOKEN_FILE=$E2E_TMP/web-token AWS_ROLE_ARN=$ROLE_ARN
}

# assert_object_error CODE TEXT WHAT: the batch answered 200 with that error on its object.
assert_object_error() {
    assert_status 200
    assert_json "$HTTP_BODY" "d['objects'][0]['error']['code'] == $1" "$3 (code)"
    assert_file_contains "$HTTP_BODY" "$2" "$3"
}

# assert_no_temporary_secrets_logged: neither a web identity token nor a key of the stand-in.
assert_no_temporary_secrets_logged() {
    assert_file_lacks "$LFSGATE_LOG" "eyJ.web-identity" "lfsgate log"
    assert_file_lacks "$LFSGATE_LOG" "ASIA" "lfsgate log"
    assert_file_lacks "$LFSGATE_LOG" "X-Amz-Signature" "lfsgate log"
    assert_file_lacks "$LFSGATE_LOG" "X-Amz-Security-Token" "lfsgate log"
}

test_web_identity_push_clone() {
    start_aws_creds
    web_identity_env
    s3_config basic_external 900 s3 "        sts_endpoint: $CREDS_URL"
    start_lfsgate --config "$CONFIG"
    assert_file_contains "$LFSGATE_LOG" "key from STS AssumeRoleWithWebIdentity at $CREDS_URL for role $ROLE_ARN" "startup log"
    fake_push_clone org repo 2000 $((3 * MIB + 5))
    # one exchange served every HEAD and URL; every URL carries the session token
    assert_fake_stat "$CREDS_URL" sts 1 "STS"
    lfs_batch "$(lfs_url org repo)" upload "$(printf '%064d' 7)" 10
    assert_status 200
    assert_match "$(action_href "$HTTP_BODY" 0 upload)" 'X-Amz-Credential=ASIA[0-9A-F]{16}%2F.*X-Amz-Security-Token=ASIA' "upload href with temporary keys"
    [[ $(fake_stat "$S3_URL" temporary) -ge 4 ]] || fail "the store saw no requests with temporary keys: $(curl -sS --noproxy '*' "$S3_URL/_fake/stats")"
    assert_fake_stat "$S3_URL" expired_token 0 "S3"
    assert_no_temporary_secrets_logged
}

# push_run SECONDS streaming|external: uploads and checks a new object every 0.7 s for that
# long, through lfsgate (streaming) or presigned URLs (external); the 4th rotates the web
# identity token file. Counts on from PUSH_N.
PUSH_N=0
push_run() {
    local base t0 oid f
    base=$(lfs_url org repo)
    t0=$(date +%s)
    while (($(date +%s) < t0 + $1)); do
        PUSH_N=$((PUSH_N + 1))
        ((PUSH_N == 4)) && echo "eyJ.web-identity-token-2" >"$E2E_TMP/web-token"
        f=$E2E_TMP/s$PUSH_N
        random_file "$f" $((1000 + PUSH_N))
        oid=$(sha256_of "$f")
        if [[ $2 == streaming ]]; then
            http PUT "$base/objects/storage/$oid" -H 'Content-Type: application/octet-stream' -T "$f"
            assert_status 200
            http GET "$base/objects/storage/$oid"
            assert_status 200
            assert_same_file "$f" "$HTTP_BODY" "download $PUSH_N through lfsgate"
        else
            lfs_upload "$base" "$f"
        fi
        assert_fake_object "$f" "$S3_PREFIX/org/repo/$oid" "upload $PUSH_N"
        sleep 0.7
    done
}

test_web_identity_refresh() {
    # keys live 6 s: used until 1.5 s before they expire, fetched again from 3 s on; the
    # token file is rotated on the way and read again on each exchange. A run of pushes,
    # through presigned URLs and through lfsgate, has no failed request.
    start_aws_creds --lifetime 6
    web_identity_env
    s3_config basic_streaming 900 s3 "        sts_endpoint: $CREDS_URL"
    start_lfsgate --config "$CONFIG"
    push_run 16 streaming
    stop_lfsgate
    s3_config basic_external 900 s3 "        sts_endpoint: $CREDS_URL"
    start_lfsgate --config "$CONFIG"
    push_run 8 external
    [[ $(fake_stat "$CREDS_URL" sts) -ge 5 ]] || fail "expected the keys fetched again as they aged: $(curl -sS --noproxy '*' "$CREDS_URL/_fake/stats")"
    curl -sS --noproxy '*' "$CREDS_URL/_fake/stats" | python3 -c '
import json, sys
seen = json.load(sys.stdin)["tokens_seen"]
assert seen[0].endswith("-1") and seen[-1].endswith("-2"), seen' || fail "the rotated token file was not read again"
    # never a request signed with expired keys (the store's other refusals are the 404s of
    # the HEADs of new objects)
    assert_fake_stat "$S3_URL" expired_token 0 "S3"
    assert_fake_stat "$CREDS_URL" sts_refused 0 "STS"
    assert_no_temporary_secrets_logged
}

test_web_identity_shared_fetch() {
    # STS takes 1 s to answer: concurrent batches on both worker threads wait for one exchange
    start_aws_creds --latency-ms 1000
    web_identity_env
    s3_config basic_external 900 s3 "        sts_endpoint: $CREDS_URL"
    start_lfsgate --config "$CONFIG"
    concurrent_upload_batches 12 '"error" not in d["objects"][0] and "X-Amz-Security-Token=ASIA" in d["objects"][0]["actions"]["upload"]["href"]'
    assert_fake_stat "$CREDS_URL" sts 1 "STS"
}

test_web_identity_sts_down() {
    local base oid port
    # STS down: nothing listens on its port yet
    start_s3_fake --sts-master "$STS_MASTER"
    port=$(free_port)
    web_identity_env
    s3_config basic_external 900 s3 "        sts_endpoint: http://127.0.0.1:$port"
    start_lfsgate --config "$CONFIG"
    base=$(lfs_url org repo)
    oid=$(printf '%064d' 3)
    lfs_batch "$base" upload "$oid" 10
    assert_object_error 503 "s3 storage: cannot get temporary keys from STS AssumeRoleWithWebIdentity at http://127.0.0.1:$port" "batch error with STS down"
    lfs_post "$base/objects/storage/verify" "{\"oid\": \"$oid\", \"size\": 10}"
    assert_status 503
    assert_file_contains "$HTTP_BODY" "STS" "verify error with STS down"
    # STS back on its port: the same lfsgate gets keys and works
    CREDS_PORT=$port
    start_aws_creds
    assert_upload_works 1500 "upload once STS is back"
    stop_lfsgate
    # STS refusing the token: 503 naming STS, its code and what to check
    echo "eyJ.web-identity-token-other" >"$E2E_TMP/lfsgate-token"
    export AWS_WEB_IDENTITY_TOKEN_FILE=$E2E_TMP/lfsgate-token
    start_lfsgate --config "$CONFIG"
    base=$(lfs_url org repo)
    lfs_batch "$base" upload "$oid" 10
    assert_object_error 503 "HTTP 400 (InvalidIdentityToken)" "batch error with a refused token"
    assert_file_contains "$HTTP_BODY" "trust policy" "batch error with a refused token"
    assert_file_lacks "$HTTP_BODY" "web-identity-token-other" "batch error with a refused token"
    assert_no_temporary_secrets_logged
}

test_container_credentials() {
    local base
    echo "container-auth-token" >"$E2E_TMP/container-token"
    start_aws_creds --container-token container-auth-token
    temporary_env
    export AWS_CONTAINER_CREDENTIALS_FULL_URI=$CREDS_URL/creds
    export AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=$E2E_TMP/container-token
    s3_config basic_external
    start_lfsgate --config "$CONFIG"
    assert_file_contains "$LFSGATE_LOG" "key from the container credentials endpoint $CREDS_URL/creds" "startup log"
    fake_push_clone org repo 1234
    assert_fake_stat "$CREDS_URL" container 1 "container endpoint"
    stop_lfsgate
    # a wrong authorization token: 503 naming the endpoint and what to check
    echo "wrong-token" >"$E2E_TMP/container-token"
    start_lfsgate --config "$CONFIG"
    base=$(lfs_url org repo)
    lfs_batch "$base" upload "$(printf '%064d' 5)" 10
    assert_object_error 503 "container credentials endpoint $CREDS_URL/creds" "batch error with a refused token"
    assert_file_contains "$HTTP_BODY" "HTTP 401; check AWS_CONTAINER_AUTHORIZATION_TOKEN" "batch error with a refused token"
    assert_file_lacks "$HTTP_BODY" "wrong-token" "batch error with a refused token"
    assert_file_lacks "$LFSGATE_LOG" "container-auth-token" "lfsgate log"
    assert_no_temporary_secrets_logged
}

test_imds_credentials() {
    start_aws_creds
    temporary_env
    unset AWS_EC2_METADATA_DISABLED
    export AWS_EC2_METADATA_SERVICE_ENDPOINT=$CREDS_URL
    s3_config basic_streaming
    start_lfsgate --config "$CONFIG"
    assert_file_contains "$LFSGATE_LOG" "key from the instance metadata service (IMDSv2) at $CREDS_URL" "startup log"
    fake_push_clone org repo 4321
    # IMDSv2: a session token at startup (is it there?), then one more and the role's keys
    # with it; nothing without one
    assert_fake_stat "$CREDS_URL" imds_token 2 "IMDS"
    assert_fake_stat "$CREDS_URL" imds_credentials 1 "IMDS"
    assert_fake_stat "$CREDS_URL" imds_refused 0 "IMDS"
    assert_fake_stat "$S3_URL" expired_token 0 "S3"
    assert_no_temporary_secrets_logged
}

# basic_streaming above multipart_threshold (lowered to 16 MiB): a 40 MiB upload is hashed,
# then sent as a multipart upload of 3 parts completed by lfsgate; a corrupt one starts none.
test_streaming_multipart() {
    local base oid parts
    start_s3_fake
    s3_env
    s3_config basic_streaming 900 s3 "        multipart_threshold: 16M"
    start_lfsgate --config "$CONFIG"
    base=$(lfs_url org repo)
    random_file "$E2E_TMP/big" $((40 * MIB))
    oid=$(sha256_of "$E2E_TMP/big")
    # a body that is not the oid: refused before anything reaches the store
    random_file "$E2E_TMP/other" $((40 * MIB))
    http PUT "$base/objects/storage/$oid" -H 'Content-Type: application/octet-stream' -T "$E2E_TMP/other"
    assert_status 422
    assert_fake_stat "$S3_URL" parts 0 "S3 after a corrupt upload"
    assert_fake_only
    http PUT "$base/objects/storage/$oid" -H 'Content-Type: application/octet-stream' -T "$E2E_TMP/big"
    assert_status 200
    assert_fake_stat "$S3_URL" parts 3 "S3"
    assert_fake_stat "$S3_URL" completed 1 "S3"
    assert_fake_only "$S3_PREFIX/org/repo/$oid"
    assert_fake_object "$E2E_TMP/big" "$S3_PREFIX/org/repo/$oid" "object uploaded in parts"
    http GET "$base/objects/storage/$oid"
    assert_status 200
    assert_same_file "$E2E_TMP/big" "$HTTP_BODY" "download of the object uploaded in parts"
    parts=$(fake_stat "$S3_URL" parts)
    # at the threshold: one PUT
    random_file "$E2E_TMP/edge" $((16 * MIB))
    http PUT "$base/objects/storage/$(sha256_of "$E2E_TMP/edge")" -H 'Content-Type: application/octet-stream' -T "$E2E_TMP/edge"
    assert_status 200
    assert_fake_stat "$S3_URL" parts "$parts" "S3 after an upload at the threshold"
    assert_fake_object "$E2E_TMP/edge" "$S3_PREFIX/org/repo/$(sha256_of "$E2E_TMP/edge")" "object at the threshold"
    stop_lfsgate
    # a part the store fails: 503 naming the store, and the upload is aborted, not left
    S3_URL='' S3_PORT=''
    start_s3_fake --fail-part 2
    s3_config basic_streaming 900 s3 "        multipart_threshold: 16M"
    start_lfsgate --config "$CONFIG"
    base=$(lfs_url org repo)
    http PUT "$base/objects/storage/$oid" -H 'Content-Type: application/octet-stream' -T "$E2E_TMP/big"
    assert_status 503
    assert_file_contains "$HTTP_BODY" "s3 storage answered 500 (InternalError) to UploadPart of object $oid" "upload with a failing part"
    assert_fake_stat "$S3_URL" parts 1 "S3"
    assert_fake_stat "$S3_URL" aborted 1 "S3"
    assert_fake_stat "$S3_URL" completed 0 "S3"
    assert_fake_only
}

# ---- multipart-basic ----

# s3_multipart_config: $CONFIG with a multipart-basic adapter (5 MiB parts) besides "basic".
s3_multipart_config() {
    s3_config basic_external
    cat >>"$CONFIG" <<EOF
  multipart-basic:
    factory: giftless.transfer.multipart:factory
    options:
      storage_class: s3
      max_part_size: 5M
      storage_options:
        bucket_name: $S3_BUCKET
        path_prefix: $S3_PREFIX
        endpoint: $S3_URL
EOF
}

# mp_batch OID SIZE: a multipart-basic upload batch for one object.
mp_batch() {
    lfs_batch "$(lfs_url org repo)" upload "$1" "$2" '["multipart-basic", "basic"]'
    assert_status 200
}

test_multipart_resume() {
    local base oid big=$((12 * MIB + 500000)) noid
    # ListParts answers one part per page: the resume reads every page
    start_s3_fake --max-parts 1
    s3_env
    s3_multipart_config
    start_lfsgate --config "$CONFIG"
    base=$(lfs_url org repo)
    random_file "$E2E_TMP/m.bin" "$big"
    oid=$(sha256_of "$E2E_TMP/m.bin")
    # interrupted after 2 of 3 parts: nothing stored yet
    mp_client mp1 "$base" "$E2E_TMP/m.bin" --max-parts 2
    assert_json "$E2E_TMP/mp1.json" "d['transfer'] == 'multipart-basic' and d['parts'] == 3 and d['uploaded'] == 2" "first attempt"
    assert_json "$E2E_TMP/mp1.json" "set(d['actions']) == {'parts', 'abort', 'verify'}" "actions (lfsgate completes the upload at verify)"
    assert_fake_only
    assert_fake_stat "$S3_URL" parts 2 "S3"
    # verify now: the parts do not make the object yet
    lfs_post "$base/objects/storage/verify" "{\"oid\": \"$oid\", \"size\": $big}"
    assert_status 422
    assert_file_contains "$HTTP_BODY" "has 2 part(s) of $((10 * MIB)) bytes in all, not the $big bytes declared" "verify of an unfinished upload"
    # resumed: only the missing part is asked for; verify completes the upload
    mp_client mp2 "$base" "$E2E_TMP/m.bin"
    assert_json "$E2E_TMP/mp2.json" "d['parts'] == 1 and d['uploaded'] == 1 and d['verified']" "resumed attempt"
    assert_fake_stat "$S3_URL" parts 3 "S3"
    assert_fake_stat "$S3_URL" completed 1 "S3"
    assert_fake_only "$S3_PREFIX/org/repo/$oid"
    assert_fake_object "$E2E_TMP/m.bin" "$S3_PREFIX/org/repo/$oid" "completed object"
    # stored: no actions at all
    mp_client mp3 "$base" "$E2E_TMP/m.bin"
    assert_json "$E2E_TMP/mp3.json" "d['actions'] == []" "third attempt"
    # the batch answer: part sizes within S3's limits, Content-MD5, presigned UploadPart
    mp_batch "$(printf '%064x' 42)" $((11 * MIB))
    assert_json "$HTTP_BODY" "[p['size'] for p in d['objects'][0]['actions']['parts']] == [$((5 * MIB)), $((5 * MIB)), $MIB]" "parts"
    assert_json "$HTTP_BODY" "all(p['want_digest'] == 'contentMD5' and 'partNumber=%d&uploadId=' % (i + 1) in p['href'] and 'X-Amz-Signature=' in p['href'] for i, p in enumerate(d['objects'][0]['actions']['parts']))" "part hrefs"
    # a part whose body is not what its Content-MD5 says is refused by the store
    random_file "$E2E_TMP/p.bin" 1000
    expect_refused PUT "$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["objects"][0]["actions"]["parts"][2]["href"])' "$HTTP_BODY")" \
        400 BadDigest "a part with another body's Content-MD5" -H "Content-MD5: $(printf x | openssl dgst -md5 -binary | base64)" -T "$E2E_TMP/p.bin"
    # abort: the upload is gone, so the next plan starts afresh
    random_file "$E2E_TMP/n.bin" $((6 * MIB))
    noid=$(sha256_of "$E2E_TMP/n.bin")
    mp_client mp4 "$base" "$E2E_TMP/n.bin" --max-parts 1
    mp_batch "$noid" $((6 * MIB))
    assert_json "$HTTP_BODY" "len(d['objects'][0]['actions']['parts']) == 1" "plan after one part"
    http DELETE "$(action_href "$HTTP_BODY" 0 abort)"
    assert_status 204
    mp_batch "$noid" $((6 * MIB))
    assert_json "$HTTP_BODY" "len(d['objects'][0]['actions']['parts']) == 2" "plan after abort"
    assert_fake_only "$S3_PREFIX/org/repo/$oid"
}

# Batches of 8 objects or more first list the repository (one ListObjectsV2) and HEAD only
# what the listing did not reach: answers are the same as with one HEAD per object.
test_batch_listing() {
    local base body i heads lists f
    local -a oids=() sizes=()
    start_s3_fake
    s3_env
    s3_config basic_external
    # one worker: what it learns about a repository is per worker thread
    E2E_THREADS=1 start_lfsgate --config "$CONFIG"
    base=$(lfs_url org repo)
    for ((i = 0; i < 10; i++)); do
        f=$E2E_TMP/l$i
        random_file "$f" $((100 + i))
        lfs_upload "$base" "$f"
        oids+=("$(sha256_of "$f")")
        sizes+=($((100 + i)))
    done
    # 10 stored (one asked with a wrong size) and 4 absent: one listing, no HEAD
    body="{\"operation\": \"download\", \"objects\": ["
    for ((i = 0; i < 10; i++)); do
        body+="{\"oid\": \"${oids[$i]}\", \"size\": $((sizes[i] + (i == 3 ? 1 : 0)))}, "
    done
    for ((i = 1; i <= 4; i++)); do
        body+="{\"oid\": \"$(printf '%064x' "$i")\", \"size\": 1}$([[ $i == 4 ]] || echo ', ')"
    done
    heads=$(fake_stat "$S3_URL" HEAD)
    lists=$(fake_stat "$S3_URL" list)
    lfs_post "$base/objects/batch" "$body]}"
    assert_status 200
    assert_json "$HTTP_BODY" "len(d['objects']) == 14 and all('download' in o.get('actions', {}) for i, o in enumerate(d['objects'][:10]) if i != 3) and d['objects'][3]['error']['code'] == 422 and all(o['error']['code'] == 404 for o in d['objects'][10:])" "download batch answered from the listing"
    assert_fake_stat "$S3_URL" list $((lists + 1)) "S3"
    assert_fake_stat "$S3_URL" HEAD "$heads" "S3"
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
run_test s3_streaming_multipart test_streaming_multipart
run_test s3_multipart_resume test_multipart_resume
run_test s3_batch_listing test_batch_listing
run_test s3_web_identity_push_clone test_web_identity_push_clone
run_test s3_web_identity_refresh test_web_identity_refresh
run_test s3_web_identity_shared_fetch test_web_identity_shared_fetch
run_test s3_web_identity_sts_down test_web_identity_sts_down
run_test s3_container_credentials test_container_credentials
run_test s3_imds_credentials test_imds_credentials
e2e_finish
