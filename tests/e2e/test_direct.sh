#!/usr/bin/env bash
# tests/e2e/test_direct.sh: uploads over 4 MiB that the server reads as they arrive (the
# receive guard keeps an eligible PUT's body back from h2o, server/guard.c "bodies the handler
# reads as they arrive"; server/objects.c writes each piece to the local store's temporary
# file), over curl and raw sockets (guard_client.py):
#   - stored with and without Expect: 100-continue ("100 Continue" comes before the body);
#   - the temporary file .<oid>.* grows in the object's directory while the body arrives;
#   - a hash mismatch (422), a client gone mid-body ("interrupted") leave nothing behind;
#   - an upload refused before its body (401, 403) is answered after the body was drained,
#     and the connection then serves the next request; with Expect: 100-continue it is
#     answered at once, without "100 Continue", and closed;
#   - two uploads on one keep-alive connection (the second with Expect); a request pipelined behind an upload is not
#     read as one (the connection is closed after the upload's answer);
#   - SERVER.min_receive_rate cuts a trickled body, SERVER.receive_budget counts one while it
#     arrives and frees it at its end;
#   - a reload during an upload; over max_upload_size: JSON 413; hostile paths: the same answers as for a small body.
# Run: LFSGATE_BIN=build/server/lfsgate tests/e2e/test_direct.sh   (see lib.sh for options)
# Test functions are called through run_test, which shellcheck cannot follow:
# shellcheck disable=SC2317
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

client() { timeout 120 python3 "$E2E_DIR/guard_client.py" "$LFSGATE_PORT" "$@"; }

MIB=1048576

# start_direct [SERVER_YAML_LINES [AUTH_PROVIDER_YAML]]: local storage in $STORE (objects of
# guard/repo in $OBJ_DIR), max_upload_size 16 MiB, spool_dir $E2E_TMP/spool, anonymous
# read-write unless AUTH_PROVIDER_YAML is given.
start_direct() {
    STORE=$E2E_TMP/store
    OBJ_DIR=$STORE/guard/repo
    mkdir -p "$E2E_TMP/spool"
    write_config "$E2E_TMP/lfsgate.yaml" "$STORE" "SERVER:
  spool_dir: $E2E_TMP/spool
  max_upload_size: $((16 * MIB))
${1:-}" "${2:-  - giftless.auth.allow_anon:read_write}"
    start_lfsgate --config "$E2E_TMP/lfsgate.yaml"
}

# blob NAME MIB: a random file $E2E_TMP/NAME of MIB MiB; prints its oid.
blob() {
    random_file "$E2E_TMP/$1" $(($2 * MIB))
    sha256_of "$E2E_TMP/$1"
}

# refusals REASON: the lfsgate_requests_refused_total counter for REASON.
refusals() {
    curl -s --noproxy '*' "http://127.0.0.1:$LFSGATE_PORT/metrics" |
        awk -v r="reason=\"$1\"" 'index($0, "lfsgate_requests_refused_total{" r "}") == 1 { print $2 }'
}

# assert_activity ACTION RESULT OID SIZE: the server log has an ActivityLog line for OID with
# that action, result and size.
assert_activity() {
    python3 - "$LFSGATE_LOG" "$@" <<'PY' && return 0
import json, sys
log, action, result, oid, size = sys.argv[1:]
for line in open(log, encoding="utf-8", errors="replace"):
    if line.startswith("{") and '"ActivityLog"' in line:
        r = json.loads(line)
        if (r.get("action"), r.get("result"), r.get("oid"), r.get("size")) == \
                (action, result, oid, int(size)):
            sys.exit(0)
sys.exit(1)
PY
    fail "no ActivityLog line {action: $1, result: $2, oid: $3, size: $4} in $LFSGATE_LOG; its last ones: $(grep -F ActivityLog "$LFSGATE_LOG" | tail -n 3 | tr '\n' ' ' || true)"
}

# wait_only_files DIR [RELPATH...]: assert_only_files, allowing the server 2 s to clean up.
wait_only_files() {
    local i
    for ((i = 0; i < 20; i++)); do
        (assert_only_files "$@") 2>/dev/null && return 0
        sleep 0.1
    done
    assert_only_files "$@"
}

test_store_with_and_without_expect() {
    start_direct
    local a b c url
    a=$(blob a 9)
    b=$(blob b 7)
    c=$(blob c 6)
    url=$(lfs_url guard repo)/objects/storage
    # curl sends Expect: 100-continue for bodies over 1 MiB; -H 'Expect:' suppresses it.
    http PUT "$url/$a" --data-binary "@$E2E_TMP/a"
    assert_status 200
    http PUT "$url/$b" -H 'Expect:' --data-binary "@$E2E_TMP/b"
    assert_status 200
    client expect "$c" "$E2E_TMP/c" >"$E2E_TMP/expect.json"
    assert_json "$E2E_TMP/expect.json" "d['interim'] is not None and d['interim']['status'] == 100" "raw Expect: 100-continue: 100 Continue before the body"
    assert_json "$E2E_TMP/expect.json" "d['final']['status'] == 200" "raw Expect: 100-continue: 200 after the body"
    assert_same_file "$E2E_TMP/a" "$OBJ_DIR/$a" "upload with Expect"
    assert_same_file "$E2E_TMP/b" "$OBJ_DIR/$b" "upload without Expect"
    assert_same_file "$E2E_TMP/c" "$OBJ_DIR/$c" "raw upload after 100 Continue"
    assert_only_files "$STORE" "guard/repo/$a" "guard/repo/$b" "guard/repo/$c"
    assert_activity store stored "$a" $((9 * MIB))
    # the stored object downloads whole
    http GET "$url/$a"
    assert_status 200
    assert_same_file "$E2E_TMP/a" "$HTTP_BODY" "download of the upload"
}

test_writes_while_receiving() {
    start_direct
    local oid
    oid=$(blob w 12)
    client watch "$oid" "$E2E_TMP/w" "$OBJ_DIR" >"$E2E_TMP/watch.json"
    assert_json "$E2E_TMP/watch.json" "d['final']['status'] == 200" "slow upload answered 200"
    # Before its last piece was sent, the temporary file existed and held part of the body.
    assert_json "$E2E_TMP/watch.json" "any(0 < s < d['total'] for s in d['sizes'])" "temporary file written while the body arrived"
    assert_json "$E2E_TMP/watch.json" "d['sizes'] == sorted(d['sizes']) and d['sizes'][-1] > d['sizes'][0]" "temporary file grows during the upload"
    assert_same_file "$E2E_TMP/w" "$OBJ_DIR/$oid" "object stored"
    assert_only_files "$STORE" "guard/repo/$oid"
    assert_only_files "$E2E_TMP/spool"
}

test_hash_mismatch() {
    start_direct
    local oid wrong
    oid=$(blob m 6)
    wrong=$(printf 'e%.0s' {1..64})
    http PUT "$(lfs_url guard repo)/objects/storage/$wrong" --data-binary "@$E2E_TMP/m"
    assert_status 422
    assert_json_error
    assert_only_files "$STORE"
    assert_activity store refused "$wrong" $((6 * MIB))
    assert_server_alive
}

test_client_disconnect() {
    start_direct
    local oid
    oid=$(blob d 8)
    client disconnect "$oid" "$E2E_TMP/d" >"$E2E_TMP/disconnect.json"
    wait_only_files "$STORE"
    assert_activity store interrupted "$oid" $((8 * MIB))
    http GET "http://127.0.0.1:$LFSGATE_PORT/healthz"
    assert_status 200
    # the same object uploads afterwards
    http PUT "$(lfs_url guard repo)/objects/storage/$oid" --data-binary "@$E2E_TMP/d"
    assert_status 200
    assert_only_files "$STORE" "guard/repo/$oid"
}

# An upload refused before its body is read (the jwt provider; 401 without a token, 403 with a
# read-only one), 6 MiB declared: without Expect the answer waits for the body (drained) and
# the connection serves the next request; with Expect: 100-continue the answer comes at once,
# no "100 Continue" first, and the connection is closed.
test_refused_before_body() {
    "$MINT_PY" -c 'import jwt, cryptography' ||
        fail "python3-jwt and python3-cryptography are needed (scripts/install-deps.sh --with-tests)"
    jwt_provider
    start_direct "" "$JWT_PROVIDER_YAML"
    local oid code f e
    oid=$(printf 'f%.0s' {1..64})
    local -A auth=([401]="" [403]="Bearer $(user_token --scope 'obj:guard/repo/*:read')")
    for code in 401 403; do
        f=$E2E_TMP/drain.$code.json
        e=$E2E_TMP/expect.$code.json
        client refused_drain "$oid" 6 "${auth[$code]}" >"$f"
        client refused_expect "$oid" 6 "${auth[$code]}" >"$e"
        assert_json "$f" "d['early'] is None" "$code: no answer while the body is still arriving"
        assert_json "$f" "d['answer']['status'] == $code and d['answer']['content_type'].startswith('application/vnd.git-lfs+json') and d['answer']['json']['message']" "$code: JSON error after the body"
        assert_json "$f" "d['after'] is not None and d['after']['status'] == 200" "$code: the connection then serves GET /healthz"
        # at once (not after a timeout), no 100 Continue first, then the connection closed
        assert_json "$e" "d['answer'] is not None and d['answer']['status'] == $code and d['answer']['json']['message'] and d['elapsed'] < 3" "$code with Expect: 100-continue: JSON error at once"
        assert_json "$e" "d['closed']" "$code with Expect: 100-continue: connection closed after the answer"
    done
    assert_only_files "$STORE"
    assert_logs_clean
    assert_server_alive
}

# A reload (SIGHUP) moving the store while an upload is half received: the upload ends in the
# store it began with; the next one goes to the new store.
test_reload_during_upload() {
    start_direct
    local a b pid
    a=$(blob a 8)
    b=$(blob b 5)
    client pause "$a" "$E2E_TMP/a" 2 >"$E2E_TMP/pause.json" &
    pid=$!
    sleep 0.5
    sed -i "s|path: $STORE\$|path: $E2E_TMP/store2|" "$E2E_TMP/lfsgate.yaml"
    kill -HUP "$LFSGATE_PID"
    wait_for_log "$LFSGATE_LOG" 'configuration reloaded'
    wait "$pid" || fail "guard_client.py pause failed"
    assert_json "$E2E_TMP/pause.json" "d['final']['status'] == 200" "upload across the reload"
    assert_same_file "$E2E_TMP/a" "$OBJ_DIR/$a" "upload across the reload, in the store it began with"
    http PUT "$(lfs_url guard repo)/objects/storage/$b" --data-binary "@$E2E_TMP/b"
    assert_status 200
    assert_same_file "$E2E_TMP/b" "$E2E_TMP/store2/guard/repo/$b" "upload after the reload, in the new store"
    assert_only_files "$STORE" "guard/repo/$a"
    assert_only_files "$E2E_TMP/store2" "guard/repo/$b"
}

test_keepalive_two_uploads() {
    start_direct
    local a b
    a=$(blob a 6)
    b=$(blob b 5)
    client keepalive "$a" "$E2E_TMP/a" "$b" "$E2E_TMP/b" >"$E2E_TMP/keepalive.json"
    assert_json "$E2E_TMP/keepalive.json" "[r and r['status'] for r in d['answers']] == [200, 100, 200, 200]" "two uploads on one connection (the second after 100 Continue), then GET /healthz"
    assert_same_file "$E2E_TMP/a" "$OBJ_DIR/$a" "first upload"
    assert_same_file "$E2E_TMP/b" "$OBJ_DIR/$b" "second upload"
    assert_only_files "$STORE" "guard/repo/$a" "guard/repo/$b"
}

test_pipelined_after_upload() {
    start_direct
    local oid
    oid=$(blob p 6)
    client pipelined "$oid" "$E2E_TMP/p" >"$E2E_TMP/pipelined.json"
    # The bytes after the body are not read as a request (no 400): the connection closes.
    assert_json "$E2E_TMP/pipelined.json" "[r['status'] for r in d['responses']] == [200] and d['closed']" "upload answered 200, pipelined request not answered, connection closed"
    assert_same_file "$E2E_TMP/p" "$OBJ_DIR/$oid" "object stored"
    assert_only_files "$STORE" "guard/repo/$oid"
    assert_server_alive
}

test_slow_direct_body() {
    start_direct "  min_receive_rate: 1000
  receive_grace: 1"
    local oid
    oid=$(printf 'd%.0s' {1..64})
    client slow "$oid" 10 $((8 * MIB)) >"$E2E_TMP/slow.json"
    assert_json "$E2E_TMP/slow.json" "d['cut_after'] is not None and d['cut_after'] < 5" "a large body at 10 bytes/s is cut within 5 s"
    assert_file_contains "$LFSGATE_LOG" "slower than SERVER.min_receive_rate"
    assert_eq 1 "$(refusals slow)" "slow refusals in /metrics"
    wait_only_files "$STORE"
    assert_activity store interrupted "$oid" $((8 * MIB))
    http GET "http://127.0.0.1:$LFSGATE_PORT/healthz"
    assert_status 200
}

test_direct_budget() {
    start_direct "  receive_budget: 10000000
  min_receive_rate: 0"
    local oid
    oid=$(blob g 8)
    client direct_budget "$oid" "$E2E_TMP/g" >"$E2E_TMP/budget.json"
    assert_json "$E2E_TMP/budget.json" "d['refused']['responses'][0]['status'] == 503 and d['refused']['responses'][0]['retry_after'] and 'receive_budget' in d['refused']['responses'][0]['json']['message']" "a second large body while one arrives: JSON 503 with Retry-After"
    assert_json "$E2E_TMP/budget.json" "d['first']['status'] == 200" "the first body completes"
    assert_json "$E2E_TMP/budget.json" "d['after']['responses'][0]['status'] == 200" "as soon as the first is answered, a large body is admitted again"
    assert_eq 1 "$(refusals busy)" "busy refusals in /metrics"
    assert_same_file "$E2E_TMP/g" "$OBJ_DIR/$oid" "object stored"
    assert_only_files "$STORE" "guard/repo/$oid"
}

test_over_max_upload_size() {
    start_direct
    local oid
    oid=$(printf 'a%.0s' {1..64})
    client head_only "/guard/repo.git/info/lfs/objects/storage/$oid" $((16 * MIB + 1)) >"$E2E_TMP/413.json"
    assert_json "$E2E_TMP/413.json" "d['responses'][0]['status'] == 413 and d['responses'][0]['content_type'].startswith('application/vnd.git-lfs+json') and d['responses'][0]['json']['message']" "over max_upload_size: JSON 413"
    # at the limit it is taken (and refused for its hash after the body)
    random_file "$E2E_TMP/max" $((16 * MIB))
    http PUT "$(lfs_url guard repo)/objects/storage/$oid" -H 'Expect:' --data-binary "@$E2E_TMP/max"
    assert_status 422
    assert_only_files "$STORE"
}

test_hostile_paths() {
    start_direct
    local p oid
    oid=$(printf 'b%.0s' {1..64})
    local -a paths=(
        "/guard/repo.git/info/lfs/objects/storage/${oid:0:63}z"
        "/guard/repo.git/info/lfs/objects/storage/${oid:0:63}"
        "/guard/repo.git/info/lfs/objects/storage/%00${oid:0:63}"
        "/guard/repo.git/info/lfs/objects/storage/${oid:0:32}%2f${oid:0:32}"
        "/guard/repo.git/info/lfs/objects/storage/${oid:0:63}%"
        "/guard/re\\xffpo.git/info/lfs/objects/storage/$oid"
        "/guard/%ZZrepo.git/info/lfs/objects/storage/$oid"
        "/guard/repo.git/info/lfs/objects/storage/$oid/extra"
        "/guard/../repo.git/info/lfs/objects/storage/$oid"
    )
    local i=0
    for p in "${paths[@]}"; do
        i=$((i + 1))
        client path_pair "$p" 6 >"$E2E_TMP/path$i.json"
        assert_json "$E2E_TMP/path$i.json" "d['large']['responses'] and d['large']['responses'][0]['status'] in (400, 404) and d['large']['responses'][0]['status'] == d['small']['responses'][0]['status'] and d['large']['responses'][0]['json'] is not None" "large PUT to $p: the small PUT's JSON 400/404"
        assert_server_alive
    done
    assert_only_files "$STORE"
    http GET "http://127.0.0.1:$LFSGATE_PORT/healthz"
    assert_status 200
}

# A body that stops arriving is cut after SERVER.request_timeout (h2o's timeout, the guard's sweep for the body read as it
# arrives), with
# min_receive_rate off: a 2 MiB body (h2o reads it) and a 6 MiB one (read as it arrives).
test_request_timeout_stalled_body() {
    start_direct "  request_timeout: 2
  min_receive_rate: 0"
    local oid
    oid=$(printf 'c%.0s' {1..64})
    client stall "$oid" $((2 * MIB)) "$MIB" 6 >"$E2E_TMP/stall2.json"
    assert_json "$E2E_TMP/stall2.json" "d['closed_after'] is not None and d['closed_after'] < 4" "a 2 MiB body stalled after 1 MiB is cut after request_timeout"
    client stall "$oid" $((6 * MIB)) "$MIB" 6 >"$E2E_TMP/stall6.json"
    assert_json "$E2E_TMP/stall6.json" "d['closed_after'] is not None and d['closed_after'] < 4" "a 6 MiB body stalled after 1 MiB is cut after request_timeout"
    wait_only_files "$STORE"
}

run_test direct_store_expect_or_not test_store_with_and_without_expect
run_test direct_writes_while_receiving test_writes_while_receiving
run_test direct_hash_mismatch test_hash_mismatch
run_test direct_client_disconnect test_client_disconnect
run_test direct_refused_before_body test_refused_before_body
run_test direct_reload_during_upload test_reload_during_upload
run_test direct_keepalive_two_uploads test_keepalive_two_uploads
run_test direct_pipelined_after_upload test_pipelined_after_upload
run_test direct_slow_body test_slow_direct_body
run_test direct_receive_budget test_direct_budget
run_test direct_over_max_upload_size test_over_max_upload_size
run_test direct_hostile_paths test_hostile_paths
run_test direct_request_timeout_stalled_body test_request_timeout_stalled_body
e2e_finish
