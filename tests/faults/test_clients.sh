#!/usr/bin/env bash
# tests/faults/test_clients.sh: bad clients (tests/faults/bad_clients.py) and reloads under
# load. 500 slow-loris connections (a head byte a second) and 500 idle keep-alive ones while
# normal downloads run: the downloads' p99 stays within 2x the unloaded p99 (+10 ms of slack:
# a behaviour bound, not a benchmark) and the timeouts close the bad connections;
# SERVER.max_connections holds and frees up as connections close; out of file descriptors
# (prlimit on the running server), accept failures are logged at a bounded rate without
# spinning and service resumes once descriptors are free; SIGHUP every 100 ms during a wrk
# run: zero failed requests.
# Run: LFSGATE_BIN=build/server/lfsgate bash tests/faults/test_clients.sh  (see tests/e2e/lib.sh)
# shellcheck disable=SC2317
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CLIENTS=$FAULTS_DIR/bad_clients.py

# clients_setup [SERVER_YAML_FLOW_ITEMS]: local store with one 10 kB object; sets OBJ_URL.
clients_setup() {
    local f oid
    start_local_lfsgate "SERVER: {${1:-}}"
    f=$E2E_TMP/obj.bin
    random_file "$f" 10000
    oid=$(sha256_of "$f")
    lfs_upload "$(lfs_url org repo)" "$f"
    OBJ_URL="http://127.0.0.1:$LFSGATE_PORT/org/repo.git/info/lfs/objects/storage/$oid"
}

test_slowloris_and_idle() {
    local lpid unloaded loaded
    ((${E2E_NOFILE:-$(ulimit -n)} >= 2200)) || ulimit -n 4096 || fail "need 2200 open files for 1000 connections (ulimit -n)"
    clients_setup "request_timeout: 5"
    python3 "$CLIENTS" latency "$OBJ_URL" --n 300 "$E2E_TMP/unloaded.json"
    python3 "$CLIENTS" load "$LFSGATE_PORT" --slowloris 500 --idle 500 --seconds 14 "$E2E_TMP/load.json" &
    lpid=$!
    bg_track "$lpid"
    sleep 2
    python3 "$CLIENTS" latency "$OBJ_URL" --n 300 "$E2E_TMP/loaded.json"
    wait "$lpid" || fail "the load client failed"
    unloaded=$(json "$E2E_TMP/unloaded.json" "d['p99_ms']")
    loaded=$(json "$E2E_TMP/loaded.json" "d['p99_ms']")
    figures slowloris_idle "unloaded $(cat "$E2E_TMP/unloaded.json"); loaded $(cat "$E2E_TMP/loaded.json"); bad clients $(cat "$E2E_TMP/load.json")"
    assert_json "$E2E_TMP/loaded.json" "d['failed'] == 0" "downloads during the load"
    assert_json "$E2E_TMP/loaded.json" "d['p99_ms'] <= 2 * $unloaded + 10" "p99 under load ($loaded ms) against unloaded ($unloaded ms)"
    assert_json "$E2E_TMP/load.json" "d['slowloris']['closed_by_server'] == 500" "slow-loris connections closed by the server"
    assert_json "$E2E_TMP/load.json" "d['idle']['closed_by_server'] == 500" "idle connections closed by the server"
    assert_json "$E2E_TMP/load.json" "d['idle']['first_close_s'] >= 4" "idle connections kept for request_timeout"
    assert_server_alive
}

# hold N: opens N connections (each answered or refused) in the background; waits for the
# counts in $E2E_TMP/hold.json. Sets HOLD_PID.
hold() {
    local i
    rm -f "$E2E_TMP/hold.json"
    python3 "$CLIENTS" hold "$LFSGATE_PORT" "$1" "$E2E_TMP/hold.json" &
    HOLD_PID=$!
    bg_track "$HOLD_PID"
    for ((i = 0; i < 300; i++)); do
        [[ -s $E2E_TMP/hold.json ]] && return 0
        sleep 0.1
    done
    fail "the holding client did not report"
}

release() {
    kill -TERM "$HOLD_PID" 2>/dev/null || true
    wait "$HOLD_PID" 2>/dev/null || true
    sleep 0.5
}

test_max_connections() {
    clients_setup "max_connections: 50"
    hold 80
    figures max_connections "cap 50, 80 opened: $(cat "$E2E_TMP/hold.json")"
    assert_json "$E2E_TMP/hold.json" "d['200'] == 50 and d['503'] + d['closed'] == 30 and d['other'] == 0" "80 connections against a cap of 50"
    assert_json "$E2E_TMP/hold.json" "d['503'] > 0" "refused connections told why"
    # the cap frees up as connections close: the same 50 again, then a request
    release
    hold 50
    assert_json "$E2E_TMP/hold.json" "d['200'] == 50" "50 connections after the first 50 closed"
    release
    http GET "http://127.0.0.1:$LFSGATE_PORT/metrics"
    assert_status 200
    assert_file_matches "$HTTP_BODY" 'lfsgate_requests_refused_total\{reason="connections"\} ([3-9][0-9]|[1-9][0-9][0-9]+)$' "refusals counted"
    assert_file_contains "$LFSGATE_LOG" 'SERVER.max_connections reached' "server log"
}

test_fd_exhaustion() {
    local before after cpu n
    clients_setup
    prlimit --pid "$LFSGATE_PID" --nofile=48:48
    hold 80
    figures fd_exhaustion "ulimit -n 48, 80 opened: $(cat "$E2E_TMP/hold.json")"
    assert_json "$E2E_TMP/hold.json" "d['200'] > 0 and d['closed'] > 0 and d['other'] == 0" "connections past the descriptors"
    # no spinning while the descriptors stay exhausted and clients keep coming
    before=$(awk '{ print $14 + $15 }' "/proc/$LFSGATE_PID/stat")
    for ((n = 0; n < 30; n++)); do
        curl -s --noproxy '*' --max-time 1 -o /dev/null "http://127.0.0.1:$LFSGATE_PORT/healthz" || true
        sleep 0.1
    done
    after=$(awk '{ print $14 + $15 }' "/proc/$LFSGATE_PID/stat")
    cpu=$((after - before))
    figures fd_exhaustion_cpu "$cpu clock ticks of CPU in ~4 s of refused connections"
    ((cpu < 200)) || fail "the server used $cpu clock ticks of CPU in ~4 s out of descriptors: spinning"
    n=$(grep -c 'cannot accept connections' "$LFSGATE_LOG" || true)
    ((n >= 1 && n <= 2)) || fail "accept failures logged $n times in ~5 s (expected 1-2: at most one per 10 s)"
    assert_file_contains "$LFSGATE_LOG" 'Too many open files' "server log"
    # descriptors free again: service resumes without a restart
    release
    http GET "$OBJ_URL"
    assert_status 200
    hold 20
    assert_json "$E2E_TMP/hold.json" "d['200'] == 20" "connections after the descriptors were freed"
    release
}

test_reload_under_load() {
    local wpid i out
    clients_setup
    out=$E2E_TMP/wrk.txt
    timeout 60 wrk -t2 -c16 -d6s "$OBJ_URL" >"$out" 2>&1 &
    wpid=$!
    bg_track "$wpid"
    for ((i = 0; i < 55; i++)); do
        kill -HUP "$LFSGATE_PID"
        sleep 0.1
    done
    wait "$wpid" || fail "wrk failed: $(cat "$out")"
    figures reload_under_load "$(grep -E 'requests in|Non-2xx|Socket errors' "$out" | tr '\n' ' '); $(grep -c 'configuration reloaded' "$LFSGATE_LOG") reloads"
    grep -q 'requests in' "$out" || fail "wrk did not report: $(cat "$out")"
    ! grep -qE 'Non-2xx|Socket errors' "$out" || fail "failed requests during reloads: $(grep -E 'Non-2xx|Socket errors' "$out")"
    (($(grep -c 'configuration reloaded' "$LFSGATE_LOG") >= 40)) || fail "expected at least 40 reloads, the log has $(grep -c 'configuration reloaded' "$LFSGATE_LOG")"
    assert_server_alive
}

run_test clients_slowloris_and_idle test_slowloris_and_idle
run_test clients_max_connections test_max_connections
run_test clients_fd_exhaustion test_fd_exhaustion
run_test clients_reload_under_load test_reload_under_load
e2e_finish
