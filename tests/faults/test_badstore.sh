#!/usr/bin/env bash
# tests/faults/test_badstore.sh: a misbehaving store (tests/faults/bad_store.py, a loopback
# stand-in the Azure backend's BlobEndpoint points at) that accepts and never answers, answers
# one byte a second, resets the connection mid-body, answers truncated XML, or 500s one
# request in three. Expected: errors within the configured timeout (request_timeout: 2 s here)
# naming the store, a truncated listing or block list never taken for an answer, a download cut mid-stream reported to the client as an error (never a
# 200 with its full Content-Length and a short body), and the one worker thread answering
# other requests while it waits.
# Run: LFSGATE_BIN=build/server/lfsgate bash tests/faults/test_badstore.sh  (see tests/e2e/lib.sh)
# shellcheck disable=SC2317
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BAD_STORE=$FAULTS_DIR/bad_store.py
E2E_THREADS=1 # one worker: it must answer others while a store request hangs
STORE_NAME='azure storage'

# start_bad_store MODE [ARGS...]: sets BAD_PORT.
start_bad_store() {
    local pid i
    python3 "$BAD_STORE" "$@" >"$E2E_TMP/bad_store.port" 2>"$E2E_TMP/bad_store.err" &
    pid=$!
    bg_track "$pid"
    for ((i = 0; i < 100; i++)); do
        [[ -s $E2E_TMP/bad_store.port ]] && break
        sleep 0.05
    done
    BAD_PORT=$(head -n 1 "$E2E_TMP/bad_store.port")
    [[ -n $BAD_PORT ]] || fail "bad_store.py did not start: $(cat "$E2E_TMP/bad_store.err")"
}

# start_against_store PORT: lfsgate with basic_streaming and multipart over Azure at PORT.
start_against_store() {
    local cs="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$DEV_KEY;BlobEndpoint=http://127.0.0.1:$1/devstoreaccount1;"
    CONFIG=$E2E_TMP/lfsgate.yaml
    faults_azure_config "$CONFIG" "$cs" "request_timeout: 2"
    start_lfsgate --config "$CONFIG"
}

OID=$(printf 'c%.0s' {1..64})

# while_waiting CMD...: runs CMD in the background and, while it waits on the store, checks
# that /healthz is answered within 1 s each time; then waits for CMD. Sets WAITED (seconds).
while_waiting() {
    local pid t0 i code
    t0=$(date +%s%N)
    "$@" &
    pid=$!
    sleep 0.3
    for ((i = 0; i < 3; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        code=$(curl -s --noproxy '*' --max-time 1 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$LFSGATE_PORT/healthz") || true
        [[ $code == 200 ]] || fail "/healthz while a store request hangs: got '$code' within 1 s"
        sleep 0.3
    done
    wait "$pid"
    WAITED=$((($(date +%s%N) - t0) / 1000000))
}

# bounded_store_error WHAT MAX_MS: the last batch/GET answered in time with a store error.
assert_bounded() { # WHAT MAX_MS
    ((WAITED <= $2)) || fail "$1: answered after $WAITED ms (bound $2 ms)"
}

batch_one() { lfs_batch "$(lfs_url org repo)" "$1" "$OID" 100 >/dev/null 2>&1; cp "$HTTP_BODY" "$E2E_TMP/batch.json"; echo "$HTTP_STATUS" >"$E2E_TMP/batch.status"; }
get_object() {
    local rc=0
    timeout 60 curl -sS --noproxy '*' -o "$E2E_TMP/get.body" -D "$E2E_TMP/get.headers" \
        -w '%{http_code}' "$@" "http://127.0.0.1:$LFSGATE_PORT/org/repo.git/info/lfs/objects/storage/$OID" \
        >"$E2E_TMP/get.status" 2>"$E2E_TMP/get.err" || rc=$?
    echo "$rc" >"$E2E_TMP/get.rc"
}

# The store's per-object error in the last batch: code in 502..504, message names the store.
assert_store_error() { # FILE CODES_REGEX
    local code msg
    code=$(json "$1" "d['objects'][0].get('error', {}).get('code', 0)")
    msg=$(json "$1" "d['objects'][0].get('error', {}).get('message', '')")
    [[ $code =~ $2 ]] || fail "expected a per-object error $2, got $code: $(head -c 300 "$1")"
    [[ $msg == *"$STORE_NAME"* ]] || fail "the error does not name the store: $msg"
}

silent_store_case() { # MODE
    start_bad_store "$1"
    start_against_store "$BAD_PORT"
    while_waiting batch_one download
    assert_eq 200 "$(cat "$E2E_TMP/batch.status")" "batch status"
    assert_store_error "$E2E_TMP/batch.json" '^504$'
    assert_file_contains "$E2E_TMP/batch.json" 'timed out' "batch error"
    assert_bounded "batch against a $1 store" 4500
    while_waiting get_object
    assert_eq 504 "$(cat "$E2E_TMP/get.status")" "GET status against a $1 store"
    assert_file_contains "$E2E_TMP/get.body" "$STORE_NAME" "GET error"
    assert_bounded "GET against a $1 store" 4500
    figures "$1" "batch and GET answered 504 within $WAITED ms"
}

test_hang() { silent_store_case hang; }
test_slow() { silent_store_case slow; }

# Reset mid-body: lfsgate sent 200 and a Content-Length before the store broke off; the
# client must see a failed transfer, not a short body it could take for the object.
test_reset_mid_body() {
    local rc len
    start_bad_store reset
    start_against_store "$BAD_PORT"
    for range in "" "-H Range:bytes=100-3000000"; do
        # shellcheck disable=SC2086
        get_object $range
        rc=$(cat "$E2E_TMP/get.rc")
        len=$(file_size "$E2E_TMP/get.body")
        echo "GET ${range:-whole}: status $(cat "$E2E_TMP/get.status"), curl rc $rc, $len bytes" >&2
        [[ $rc != 0 ]] || fail "download cut by the store (${range:-whole}): curl saw a complete response of $len bytes"
        grep -qi '^content-length: ' "$E2E_TMP/get.headers" && ((len < $(grep -i '^content-length: ' "$E2E_TMP/get.headers" | tr -dc 0-9))) ||
            fail "the cut download does not show as short: $(cat "$E2E_TMP/get.headers" | tr '\r\n' '  ')"
    done
    http GET "http://127.0.0.1:$LFSGATE_PORT/healthz"
    assert_status 200
    assert_server_alive
}

test_bad_xml() {
    local objs i
    start_bad_store badxml
    start_against_store "$BAD_PORT"
    # 10 objects: lfsgate lists the repository first (one List Blobs); the listing comes back
    # truncated and must not be taken for an answer: each object is asked for (HEAD) instead
    objs=$(for ((i = 0; i < 10; i++)); do printf '{"oid": "%064x", "size": 5},' "$i"; done)
    lfs_post "$(lfs_url org repo)/objects/batch" "{\"operation\": \"download\", \"transfers\": [\"basic\"], \"objects\": [${objs%,}]}"
    assert_status 200
    assert_json "$HTTP_BODY" "all('download' in o.get('actions', {}) for o in d['objects'])" "every object, from its HEAD"
    assert_file_contains "$E2E_TMP/bad_store.err" 'comp=list' "requests the store saw"
    # a multipart upload plan reads Get Block List (the parts already staged): truncated too.
    # It must not be taken for staged parts (the object would be committed with holes): every
    # part is asked for again.
    lfs_batch "$(lfs_url org repo)" upload "$OID" $((3 * 1048576)) '["multipart-basic"]'
    assert_status 200
    assert_file_contains "$E2E_TMP/bad_store.err" 'comp=blocklist' "requests the store saw"
    assert_json "$HTTP_BODY" "len(d['objects'][0]['actions']['parts']) == 3" "parts asked for after a truncated block list"
    assert_server_alive
}

# 500 one request in three, in front of a real Azurite: every answer is either right or an
# error naming the store; nothing hangs; nothing wrong is served.
test_flaky() {
    local i f oid ok=0 err=0 code
    start_azurite
    start_bad_store flaky --upstream "http://127.0.0.1:$AZ_PORT"
    start_against_store "$BAD_PORT"
    random_file "$E2E_TMP/o.bin" 300000
    oid=$(sha256_of "$E2E_TMP/o.bin")
    python3 "$AZ_TOOL" put "$AZ_ENDPOINT" "$CONTAINER" "org/repo/$oid" "$E2E_TMP/o.bin"
    for ((i = 0; i < 30; i++)); do
        lfs_batch "$(lfs_url org repo)" download "$oid" 300000
        assert_status 200
        if json_ok "$HTTP_BODY" "'actions' in d['objects'][0]"; then
            http GET "$(action_href "$HTTP_BODY" 0 download)"
            if [[ $HTTP_STATUS == 200 ]]; then
                assert_same_file "$E2E_TMP/o.bin" "$HTTP_BODY" "download through a flaky store"
                ok=$((ok + 1))
            else
                [[ $HTTP_STATUS =~ ^50[234]$ ]] || fail "GET through a flaky store: $HTTP_STATUS"
                assert_json_error
                err=$((err + 1))
            fi
        else
            assert_store_error "$HTTP_BODY" '^50[234]$'
            err=$((err + 1))
        fi
    done
    ((ok > 0 && err > 0)) || fail "flaky store: expected both successes and errors, got $ok and $err"
    figures flaky "$ok intact downloads, $err store errors reported, of 30"
}

run_test badstore_hang test_hang
run_test badstore_slow test_slow
run_test badstore_reset_mid_body test_reset_mid_body
run_test badstore_bad_xml test_bad_xml
if [[ -x $AZURITE_BIN ]]; then
    run_test badstore_flaky test_flaky
else
    echo "FAIL badstore_flaky: $AZURITE_BIN is missing (run: cd tests/e2e && npm ci)"
fi
e2e_finish
