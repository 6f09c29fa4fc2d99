#!/usr/bin/env bash
# tests/e2e/test_guard.sh: the receive guard (server/guard.c), over raw sockets
# (guard_client.py) against the real server:
#   - ambiguous HTTP/1 framing (two Content-Length headers, Content-Length with
#     Transfer-Encoding, two Transfer-Encoding headers, also pipelined behind a good request,
#     with or without Expect: 100-continue)
#     is refused with a JSON 400 and the connection closed, before any body is read;
#   - SERVER.receive_budget: a second large body while one is being received gets a JSON 503
#     with Retry-After, a small one still passes, and the budget is free again afterwards;
#   - SERVER.min_receive_rate: a body trickled at 10 bytes/s is cut after the grace;
#   - a flood of unauthenticated 30 MiB bodies to an unknown path keeps the server's
#     anonymous memory small (bodies over 4 MiB spill to spool_dir) and gives it back;
#   - curl's Expect: 100-continue upload goes through the guard and leaves the budget free;
#   - /metrics counts each refusal.
# Run: LFSGATE_BIN=build/server/lfsgate tests/e2e/test_guard.sh   (see lib.sh for options)
# Test functions are called through run_test, which shellcheck cannot follow:
# shellcheck disable=SC2317
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

client() { timeout 120 python3 "$E2E_DIR/guard_client.py" "$LFSGATE_PORT" "$@"; }

# start_guarded [SERVER_YAML_LINES]: anonymous read-write local storage with a SERVER section.
start_guarded() {
    write_config "$E2E_TMP/lfsgate.yaml" "$E2E_TMP/store" "SERVER:
  spool_dir: $E2E_TMP/spool
${1:-}"
    mkdir -p "$E2E_TMP/spool"
    start_lfsgate --config "$E2E_TMP/lfsgate.yaml"
}

# refusals REASON: the lfsgate_requests_refused_total counter for REASON.
refusals() {
    curl -s --noproxy '*' "http://127.0.0.1:$LFSGATE_PORT/metrics" |
        awk -v r="reason=\"$1\"" 'index($0, "lfsgate_requests_refused_total{" r "}") == 1 { print $2 }'
}

test_framing() {
    start_guarded
    client framing >"$E2E_TMP/framing.json"
    local name
    for name in two_content_length same_content_length_twice length_and_chunked two_transfer_encodings; do
        assert_json "$E2E_TMP/framing.json" "len(d['$name']['responses']) == 1 and d['$name']['responses'][0]['status'] == 400" "$name: one 400"
        assert_json "$E2E_TMP/framing.json" "d['$name']['closed'] and d['$name']['responses'][0]['content_type'].startswith('application/vnd.git-lfs+json') and 'Transfer-Encoding' in d['$name']['responses'][0]['json']['message'] or 'Content-Length' in d['$name']['responses'][0]['json']['message']" "$name: JSON message, connection closed"
    done
    # The good request before it is answered; the smuggled one is not.
    assert_json "$E2E_TMP/framing.json" "[r['status'] for r in d['pipelined_after_good']['responses']] == [200, 400] and d['pipelined_after_good']['closed']" "pipelined: 200 then 400"
    assert_json "$E2E_TMP/framing.json" "[r['status'] for r in d['pipelined_expect_after_good']['responses']] == [200, 400] and d['pipelined_expect_after_good']['closed']" "pipelined head with Expect: 100-continue: 200 then 400"
    # A plain chunked body is fine.
    assert_json "$E2E_TMP/framing.json" "d['good_chunked']['responses'][0]['status'] == 422" "good chunked batch body reaches the handler"
    assert_only_files "$E2E_TMP/store"
    assert_eq 6 "$(refusals framing)" "framing refusals in /metrics"
    assert_server_alive
}

test_budget() {
    start_guarded "  receive_budget: 1000000
  min_receive_rate: 0"
    client budget "$(printf 'b%.0s' {1..64})" >"$E2E_TMP/budget.json"
    assert_json "$E2E_TMP/budget.json" "d['refused']['responses'][0]['status'] == 503 and d['refused']['responses'][0]['retry_after'] == '5' and 'receive_budget' in d['refused']['responses'][0]['json']['message'] and d['refused']['closed']" "a second large body: 503 with Retry-After"
    assert_json "$E2E_TMP/budget.json" "d['small']['responses'][0]['status'] == 422" "a small body still reaches the handler"
    assert_json "$E2E_TMP/budget.json" "d['first']['responses'][0]['status'] == 422" "the first body completes (hash mismatch: 422)"
    assert_json "$E2E_TMP/budget.json" "d['after']['responses'][0]['status'] == 422" "afterwards the budget admits a large body again"
    assert_eq 1 "$(refusals busy)" "busy refusals in /metrics"
    # Expect: 100-continue (curl's way for bodies over 1 MiB): stored, budget free after.
    random_file "$E2E_TMP/blob" $((3 * 1048576))
    local oid
    oid=$(sha256sum "$E2E_TMP/blob" | cut -d' ' -f1)
    http PUT "$(lfs_url guard repo)/objects/storage/$oid" -H 'Expect: 100-continue' \
        --data-binary "@$E2E_TMP/blob"
    assert_status 200
    sleep 1.2
    client budget "$(printf 'c%.0s' {1..64})" >"$E2E_TMP/budget2.json"
    assert_json "$E2E_TMP/budget2.json" "d['refused']['responses'][0]['status'] == 503 and d['after']['responses'][0]['status'] == 422" "the budget counts the same after a 100-continue upload"
    assert_server_alive
}

test_slow_body() {
    start_guarded "  min_receive_rate: 1000
  receive_grace: 1"
    client slow "$(printf 'd%.0s' {1..64})" 10 >"$E2E_TMP/slow.json"
    assert_json "$E2E_TMP/slow.json" "d['cut_after'] is not None and d['cut_after'] < 5" "a body at 10 bytes/s is cut within 5 s"
    assert_file_contains "$LFSGATE_LOG" "slower than SERVER.min_receive_rate"
    assert_eq 1 "$(refusals slow)" "slow refusals in /metrics"
    assert_only_files "$E2E_TMP/store"
    http GET "http://127.0.0.1:$LFSGATE_PORT/healthz"
    assert_status 200
}

# RssAnon of the server in kB.
rss_anon() { awk '/^RssAnon:/ { print $2 }' "/proc/$LFSGATE_PID/status"; }

test_flood_memory() {
    start_guarded
    local before peak=0 v after
    before=$(rss_anon)
    (
        while kill -0 "$LFSGATE_PID" 2>/dev/null; do
            rss_anon
            sleep 0.05
        done
    ) >"$E2E_TMP/rss.samples" 2>/dev/null &
    local sampler=$!
    client flood /nowhere/at/all 20 30 >"$E2E_TMP/flood.json"
    kill "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
    assert_json "$E2E_TMP/flood.json" "d['statuses'] == ['404'] * 20" "every flood request is answered 404"
    while read -r v; do ((v > peak)) && peak=$v; done <"$E2E_TMP/rss.samples"
    sleep 1
    after=$(rss_anon)
    echo "RssAnon kB: before $before, peak $peak, after $after" >&2
    # 600 MiB went through; what stays in anonymous memory is bounded by the 4 MiB spill
    # threshold per body, not by the body size. Under ASan, shadow memory and the allocator's
    # quarantine (which holds freed blocks on purpose) need more room and are not given back.
    local limit=$((64 * 1024)) asan=false
    [[ $(ldd "$LFSGATE_BIN") == *libasan* ]] && asan=true
    $asan && limit=$((400 * 1024))
    ((peak < limit)) || fail "anonymous memory peaked at $peak kB during the flood (limit $limit kB)"
    $asan || ((after < before + 16 * 1024)) || fail "anonymous memory after the flood: $after kB (before: $before kB)"
    assert_only_files "$E2E_TMP/spool"
}

run_test guard_framing test_framing
run_test guard_receive_budget test_budget
run_test guard_slow_body test_slow_body
run_test guard_flood_memory test_flood_memory
e2e_finish
