#!/usr/bin/env bash
# tests/e2e/test_scrub.sh: `lfsgate scrub` on local storage, on Azurite and on the GCS and S3
# stand-ins of tests/fakes/ (their listings paging two keys at a time), with objects
# uploaded through lfsgate and then corrupted behind its back (same size, other bytes;
# truncated): scrub names exactly those (text and --json), exits 1, 0 when all is well, 2 on
# usage and config errors, 3 when the store cannot be read; --repo limits it to one
# repository; --quarantine moves the corrupt objects aside, after which a batch asks for
# their upload again and a re-upload makes the store whole.
# Run: LFSGATE_BIN=build/server/lfsgate tests/e2e/test_scrub.sh   (see lib.sh for options)
# shellcheck disable=SC2317
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CONTAINER=lfs
PREFIX=scrub/lfs

if [[ ! -x $AZURITE_BIN ]]; then
    echo "FAIL azurite: $AZURITE_BIN is missing (run: cd tests/e2e && npm ci)"
    exit 1
fi

# upload_objects: three objects through the running server: two in org/repo, one in
# org/sub/other. Sets OID1..OID3 and the files $E2E_TMP/o1..o3.
upload_objects() {
    local i
    for i in 1 2 3; do
        random_file "$E2E_TMP/o$i" $((i * 70000 + 13))
    done
    OID1=$(sha256_of "$E2E_TMP/o1")
    OID2=$(sha256_of "$E2E_TMP/o2")
    OID3=$(sha256_of "$E2E_TMP/o3")
    lfs_upload "$(lfs_url org repo)" "$E2E_TMP/o1"
    lfs_upload "$(lfs_url org repo)" "$E2E_TMP/o2"
    lfs_upload "$(lfs_url org/sub other)" "$E2E_TMP/o3"
}

# flip_byte FILE: the same size, one byte different.
flip_byte() {
    python3 - "$1" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(1000)
    b = f.read(1)
    f.seek(1000)
    f.write(bytes([b[0] ^ 0xFF]))
PY
}

# scrub ARGS...: lfsgate scrub with the test's config; CMD_RC, CMD_OUT, CMD_ERR.
scrub() { run_lfsgate_cmd 120 scrub --config "$CONFIG" "$@"; }

# assert_upload_wanted REPO OID FILE: a batch upload offers an upload action.
assert_upload_wanted() {
    lfs_batch "$(lfs_url org "$1")" upload "$2" "$(file_size "$3")"
    assert_status 200
    assert_json "$HTTP_BODY" "'upload' in d['objects'][0].get('actions', {})" "batch upload of $2 after quarantine"
}

test_scrub_local() {
    start_local_lfsgate
    upload_objects
    scrub
    assert_eq 0 "$CMD_RC" "scrub of an intact store"
    assert_file_contains "$CMD_OUT" "scrub: 3 objects" "summary"
    # behind lfsgate's back: one object with a byte changed, one cut short, a temp file of an
    # interrupted upload (not an object: not checked)
    flip_byte "$STORE/org/repo/$OID1"
    truncate -s 5000 "$STORE/org/sub/other/$OID3"
    printf 'partial' >"$STORE/org/repo/.$OID2.Ab12Cd"
    scrub
    assert_eq 1 "$CMD_RC" "scrub exit status with corrupt objects"
    assert_file_contains "$CMD_OUT" "corrupt org/repo $OID1"
    assert_file_contains "$CMD_OUT" "corrupt org/sub/other $OID3"
    assert_file_lacks "$CMD_OUT" "$OID2"
    scrub --json --concurrency 3
    assert_eq 1 "$CMD_RC" "scrub --json exit status"
    assert_json "$CMD_OUT" "d['objects'] == 3 and d['ok'] == 1 and d['corrupt'] == 2 and d['quarantined'] == 0 and sorted(f['oid'] for f in d['findings']) == sorted(['$OID1', '$OID3']) and all(f['kind'] == 'corrupt' for f in d['findings'])" "scrub --json"
    # one repository only
    scrub --json --repo org/repo
    assert_eq 1 "$CMD_RC" "scrub --repo org/repo"
    assert_json "$CMD_OUT" "d['objects'] == 2 and [f['oid'] for f in d['findings']] == ['$OID1']" "scrub --repo org/repo"
    scrub --repo org/nothing-here
    assert_eq 0 "$CMD_RC" "scrub of an empty repository"
    # quarantine: moved aside, the next batch wants them again, a re-upload heals the store
    scrub --quarantine
    assert_eq 1 "$CMD_RC" "scrub --quarantine"
    assert_file_contains "$CMD_OUT" "1 intact, 2 corrupt, 0 size mismatches, 0 unreadable, 2 quarantined"
    assert_no_file "$STORE/org/repo/$OID1" "corrupt object after quarantine"
    assert_file_exists "$STORE/.lfsgate-quarantine/org/repo/$OID1" "quarantined object"
    assert_file_exists "$STORE/.lfsgate-quarantine/org/sub/other/$OID3" "quarantined object"
    assert_upload_wanted repo "$OID1" "$E2E_TMP/o1"
    assert_upload_wanted sub/other "$OID3" "$E2E_TMP/o3"
    lfs_upload "$(lfs_url org repo)" "$E2E_TMP/o1"
    lfs_upload "$(lfs_url org/sub other)" "$E2E_TMP/o3"
    scrub
    assert_eq 0 "$CMD_RC" "scrub after re-upload"
    assert_file_contains "$CMD_OUT" "3 objects"
    assert_same_file "$E2E_TMP/o1" "$STORE/org/repo/$OID1" "re-uploaded object"
    assert_server_alive
}

test_scrub_usage_errors() {
    CONFIG=$E2E_TMP/lfsgate.yaml
    write_config "$CONFIG" "$E2E_TMP/storage"
    local args
    for args in "--concurrency 0" "--repo nope" "--repo org/bad..name/x/" "--no-such-option" "extra"; do
        # shellcheck disable=SC2086
        scrub $args
        assert_eq 2 "$CMD_RC" "scrub $args"
        [[ -s $CMD_ERR ]] || fail "scrub $args: no message on stderr"
    done
    printf 'TRANSFER_ADAPTERS: [\n' >"$E2E_TMP/bad.yaml"
    run_lfsgate_cmd 30 scrub --config "$E2E_TMP/bad.yaml"
    assert_eq 2 "$CMD_RC" "scrub with a broken config"
    run_lfsgate_cmd 30 scrub --help
    assert_eq 0 "$CMD_RC" "scrub --help"
    assert_file_contains "$CMD_OUT" "--quarantine"
}

# scrub_store STORE_NAME: scrub against a remote store (lfsgate started on $CONFIG; the test
# defines store_put NAME FILE, which writes an object behind lfsgate's back, store_list, which
# prints "<name> <size>" lines, and sets STORE_PORT): intact, an object outside the prefix and
# a name that is not an object left alone, one object corrupted (same size, other bytes),
# --json, --repo, --quarantine (the next batch asks for the upload), healed by a re-upload,
# and the store gone (exit 3, naming STORE_NAME).
scrub_store() {
    local name
    start_lfsgate --config "$CONFIG"
    upload_objects
    name=$PREFIX/org/repo/$OID2
    printf 'other' >"$E2E_TMP/other"
    store_put "elsewhere/org/repo/$OID1" "$E2E_TMP/other"
    store_put "$PREFIX/org/repo/notes.txt" "$E2E_TMP/other"
    scrub --json
    assert_eq 0 "$CMD_RC" "scrub of an intact store"
    assert_json "$CMD_OUT" "d['objects'] == 3 and d['ok'] == 3 and d['bytes'] == $((70013 + 140013 + 210013))" "scrub --json of an intact store"
    cp "$E2E_TMP/o2" "$E2E_TMP/bad2"
    flip_byte "$E2E_TMP/bad2"
    store_put "$name" "$E2E_TMP/bad2"
    scrub --json --concurrency 2
    assert_eq 1 "$CMD_RC" "scrub with a corrupt object"
    assert_json "$CMD_OUT" "d['objects'] == 3 and d['corrupt'] == 1 and d['ok'] == 2 and d['findings'][0]['oid'] == '$OID2' and d['findings'][0]['org_path'] == 'org' and d['findings'][0]['repo'] == 'repo'" "scrub --json with a corrupt object"
    scrub --json --repo org/sub/other
    assert_eq 0 "$CMD_RC" "scrub --repo of an intact repository"
    assert_json "$CMD_OUT" "d['objects'] == 1" "scrub --repo org/sub/other"
    scrub --quarantine
    assert_eq 1 "$CMD_RC" "scrub --quarantine"
    assert_file_contains "$CMD_OUT" "1 quarantined" "scrub --quarantine summary"
    store_list >"$E2E_TMP/names"
    assert_file_lacks "$E2E_TMP/names" "$name " "store after quarantine"
    assert_file_contains "$E2E_TMP/names" "$PREFIX/.lfsgate-quarantine/org/repo/$OID2 140013" "store after quarantine"
    assert_upload_wanted repo "$OID2" "$E2E_TMP/o2"
    lfs_upload "$(lfs_url org repo)" "$E2E_TMP/o2"
    scrub
    assert_eq 0 "$CMD_RC" "scrub after re-upload"
    assert_file_contains "$CMD_OUT" "scrub: 3 objects" "scrub after re-upload"
    stop_lfsgate
    for pid in "${E2E_BG_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for _ in $(seq 50); do port_is_open "$STORE_PORT" 2>/dev/null || break; sleep 0.1; done
    scrub
    assert_eq 3 "$CMD_RC" "scrub with the store down"
    assert_file_contains "$CMD_OUT" "$1" "scrub with the store down"
}

test_scrub_azure() {
    start_azurite
    STORE_PORT=$AZ_PORT
    store_put() { python3 "$AZ_TOOL" put "$AZ_ENDPOINT" "$CONTAINER" "$1" "$2"; }
    store_list() { python3 "$AZ_TOOL" list "$AZ_ENDPOINT" "$CONTAINER"; }
    CONFIG=$E2E_TMP/lfsgate.yaml
    azure_config "$CONFIG" giftless.transfer.basic_streaming:factory
    scrub_store "azure storage"
}

# ---- the stand-ins of tests/fakes/ (GCS, S3) ----

GCS_KEY=$E2E_REPO_ROOT/tests/unit/data/gcs/test_service_account.not-a-test.json
FAKE_BUCKET=lfs-bucket

# store_put NAME FILE, store_list: scrub_store's hooks for the stand-ins (at FAKE_URL).
fake_store_hooks() {
    STORE_PORT=$FAKE_PORT
    store_put() {
        curl -sS --noproxy '*' -f -X PUT --data-binary "@$2" \
            "$FAKE_URL/_fake/object/$FAKE_BUCKET/$1" >/dev/null || fail "could not write $1 into the stand-in"
    }
    store_list() {
        curl -sS --noproxy '*' "$FAKE_URL/_fake/objects" | python3 -c '
import json, sys
for k, v in sorted(json.load(sys.stdin).items()):
    print(k.partition("/")[2], v)'
    }
}

# gcs_storage: the storage option lines for the GCS stand-in at FAKE_URL.
gcs_storage() {
    cat <<EOF
      storage_class: giftless.storage.google_cloud:GoogleCloudStorage
      storage_options:
        project_name: dummy-project-id
        bucket_name: $FAKE_BUCKET
        ${GCS_CREDENTIALS:-account_key_file: $GCS_KEY}
        path_prefix: $PREFIX
        endpoint: $FAKE_URL
EOF
}

# start_gcs_fake [ARGS...]: the GCS stand-in; sets FAKE_URL.
start_gcs_fake() {
    start_py_fake gcs_fake "$E2E_REPO_ROOT/tests/fakes/gcs_fake.py" --key "$GCS_KEY" \
        --bucket "$FAKE_BUCKET" "$@"
    FAKE_URL=http://127.0.0.1:$FAKE_PORT
    fake_store_hooks
}

# verify_content_store [behind]: with verify_content (lfsgate started on $CONFIG), a same-size
# corrupt object answers the verify action 422 and is moved aside, so the next batch asks for
# the upload again, which then verifies. The corrupt bytes go through the signed upload URL;
# with "behind", straight into the store between the batch and the verify (S3's signed URL
# carries the checksum, so the store itself refuses other bytes there).
verify_content_store() {
    local oid batch
    local -a hdr=()
    random_file "$E2E_TMP/good.bin" 300000
    cp "$E2E_TMP/good.bin" "$E2E_TMP/bad.bin"
    flip_byte "$E2E_TMP/bad.bin"
    oid=$(sha256_of "$E2E_TMP/good.bin")
    start_lfsgate --config "$CONFIG"
    if [[ ${1:-} == behind ]]; then
        lfs_batch "$(lfs_url org repo)" upload "$oid" 300000
        assert_status 200
        batch=$HTTP_BODY
        store_put "$PREFIX/org/repo/$oid" "$E2E_TMP/bad.bin"
        mapfile -t hdr < <(action_header_args "$batch" 0 verify)
        lfs_post "$(action_href "$batch" 0 verify)" "{\"oid\": \"$oid\", \"size\": 300000}" "${hdr[@]}"
    else
        lfs_upload_as "$(lfs_url org repo)" "$E2E_TMP/good.bin" "$E2E_TMP/bad.bin"
        assert_eq verify "$UPLOAD_STEP" "upload steps"
    fi
    assert_status 422
    assert_file_contains "$HTTP_BODY" "$(sha256_of "$E2E_TMP/bad.bin")" "verify message"
    assert_file_lacks "$HTTP_BODY" "could not be removed" "verify message"
    store_list >"$E2E_TMP/names"
    assert_file_lacks "$E2E_TMP/names" "$PREFIX/org/repo/$oid " "store after verify"
    assert_file_contains "$E2E_TMP/names" "$PREFIX/.lfsgate-quarantine/org/repo/$oid 300000" "store after verify"
    assert_upload_wanted repo "$oid" "$E2E_TMP/good.bin"
    lfs_upload "$(lfs_url org repo)" "$E2E_TMP/good.bin"
    assert_server_alive
}

test_scrub_gcs() {
    start_gcs_fake --page-size 2
    CONFIG=$E2E_TMP/lfsgate.yaml
    store_config "$CONFIG" basic_streaming "$(gcs_storage)"
    scrub_store "gcs storage"
}

# Workload identity (no key: lfsgate's own calls carry a bearer token from the metadata
# server stand-in, which gcs_fake.py asks google_auth_fake.py about): the listing and the
# quarantine's copy and delete authorize that way too.
test_scrub_gcs_workload_identity() {
    start_py_fake google_auth_fake "$E2E_REPO_ROOT/tests/fakes/google_auth_fake.py" --key "$GCS_KEY"
    local google=http://127.0.0.1:$FAKE_PORT
    export GCE_METADATA_HOST=127.0.0.1:$FAKE_PORT
    GCS_CREDENTIALS="serviceaccount_email: test-iam-credentials@dummy-project-id.iam.gserviceaccount.com
        iam_endpoint: $google"
    start_gcs_fake --page-size 2 --tokeninfo "$google/tokeninfo"
    CONFIG=$E2E_TMP/lfsgate.yaml
    store_config "$CONFIG" basic_streaming "$(gcs_storage)"
    unset GCS_CREDENTIALS
    start_lfsgate --config "$CONFIG"
    upload_objects
    cp "$E2E_TMP/o3" "$E2E_TMP/bad3"
    flip_byte "$E2E_TMP/bad3"
    store_put "$PREFIX/org/sub/other/$OID3" "$E2E_TMP/bad3"
    scrub --json --quarantine
    assert_eq 1 "$CMD_RC" "scrub --quarantine with workload identity"
    assert_json "$CMD_OUT" "d['objects'] == 3 and d['corrupt'] == 1 and d['quarantined'] == 1 and d['findings'][0]['oid'] == '$OID3'" "scrub --json --quarantine with workload identity"
    store_list >"$E2E_TMP/names"
    assert_file_lacks "$E2E_TMP/names" "$PREFIX/org/sub/other/$OID3 " "store after quarantine"
    assert_file_contains "$E2E_TMP/names" "$PREFIX/.lfsgate-quarantine/org/sub/other/$OID3 210013" "store after quarantine"
    [[ $(fake_stat "$FAKE_URL" bearer) -gt 0 && $(fake_stat "$FAKE_URL" signed) -eq 0 ]] ||
        fail "lfsgate's calls were not all made with the bearer token: $(curl -sS --noproxy '*' "$FAKE_URL/_fake/stats")"
}

test_verify_content_gcs() {
    start_gcs_fake
    CONFIG=$E2E_TMP/lfsgate.yaml
    store_config "$CONFIG" basic_external "$(gcs_storage)" "      verify_content: true"
    verify_content_store
}

# s3_storage: the storage option lines for the S3 stand-in at FAKE_URL (keys: s3_env).
s3_storage() {
    cat <<EOF
      storage_class: giftless.storage.amazon_s3:AmazonS3Storage
      storage_options:
        bucket_name: $FAKE_BUCKET
        path_prefix: $PREFIX
        endpoint: $FAKE_URL
EOF
}

# start_s3_fake [ARGS...]: the S3 stand-in, its key pair in the environment lfsgate (and
# lfsgate scrub) start with; sets FAKE_URL.
start_s3_fake() {
    local key=AKIDLFSGATESCRUB secret=lfsgate/scrub+secret
    start_py_fake s3_fake "$E2E_REPO_ROOT/tests/fakes/s3_fake.py" --access-key "$key" \
        --secret-key "$secret" --bucket "$FAKE_BUCKET" --region eu-west-1 "$@"
    export AWS_ACCESS_KEY_ID=$key AWS_SECRET_ACCESS_KEY=$secret AWS_REGION=eu-west-1
    unset AWS_SESSION_TOKEN AWS_SHARED_CREDENTIALS_FILE AWS_PROFILE
    FAKE_URL=http://127.0.0.1:$FAKE_PORT
    fake_store_hooks
}

test_scrub_s3() {
    start_s3_fake --page-size 2
    CONFIG=$E2E_TMP/lfsgate.yaml
    store_config "$CONFIG" basic_streaming "$(s3_storage)"
    scrub_store "s3 storage"
}

test_verify_content_s3() {
    start_s3_fake
    CONFIG=$E2E_TMP/lfsgate.yaml
    store_config "$CONFIG" basic_external "$(s3_storage)" "      verify_content: true"
    verify_content_store behind
}

run_test scrub_local test_scrub_local
run_test scrub_usage_errors test_scrub_usage_errors
run_test scrub_azure test_scrub_azure
run_test scrub_gcs test_scrub_gcs
run_test scrub_verify_content_gcs test_verify_content_gcs
run_test scrub_gcs_workload_identity test_scrub_gcs_workload_identity
run_test scrub_s3 test_scrub_s3
run_test scrub_verify_content_s3 test_verify_content_s3
e2e_finish
