#!/usr/bin/env bash
# tests/e2e/test_hostile.sh: lfsgate under hostile input (issue #12). The server runs with
# the jwt provider (RS256, key pair generated per test), CORS (allowed_origins with the
# pattern https://*.example.org), giftless's ProxyFix middleware trusting X-Forwarded-Host,
# -Port, -Proto and -Prefix, RFC 7239 Forwarded trusted, and basic_streaming over local
# storage. hostile.py sends raw HTTP/1.1 (any byte in the method, path and headers): each
# case puts bytes >= 0x80, invalid UTF-8 (lone continuation bytes, overlongs, UTF-8-encoded
# surrogates, truncated sequences, above U+10FFFF), control characters, NUL and long
# multibyte strings in one field:
#   - hostile_reproducers: the requests of the issue, with the answers they must get (a
#     method of G\xffT or a+e-acute*300: JSON 405; a read-only token with that sub: JSON 403;
#     raw \xff\xfe and 20,000-byte paths: JSON 4xx and a complete AccessLog line; a 2.9 KB sub:
#     the granted upload works);
#   - hostile_framing: two Content-Length headers, Transfer-Encoding with Content-Length: 400;
#   - hostile_request_line: method, each path segment (org, nested org, repo, endpoint, oid,
#     locks, legacy routes), raw and percent-encoded; query parameters (?jwt=, ?filename=,
#     ?disposition=, lock queries);
#   - hostile_headers: Authorization (Bearer, Basic raw, base64 garbage, _jwt:<bytes>),
#     Accept, Content-Type, Origin, X-Forwarded-*, Forwarded, Host, Range, preflights; hrefs
#     must name a valid host and port (X-Forwarded-Host ]]]:, X-Forwarded-Port 99999 too);
#     a "*" of allowed_origins matches one DNS label only (not evil.com@x, x:1, x?, x#, a.b);
#   - hostile_json_bodies: every field of batch and verify bodies (raw and \u-escaped);
#   - hostile_token_claims: sub, name, email, iss, aud, scopes (string and list), kid, typ and
#     alg in the header, a claim name (raw and \u-escaped), each token used for batches,
#     the actions they grant, as Basic password and as ?jwt=.
# After each case: /healthz answers 200, no sanitizer report; every answer is < 500 and its
# JSON body parses. A case that kills the server is reported and the server restarted, so
# one run lists every failing case. At the end: every stdout line of the server is a JSON
# object in strict UTF-8 (AccessLog lines complete), every answer with a request id has its
# AccessLog line, every stderr line is UTF-8 without control characters, no token is logged.
# Run: LFSGATE_BIN=build/server/lfsgate tests/e2e/test_hostile.sh   (see lib.sh for options)
# Test functions are called through run_test, which shellcheck cannot follow:
# shellcheck disable=SC2317
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

HOSTILE_PY=$E2E_DIR/hostile.py
HOSTILE_YAML="CORS:
  allowed_origins: [https://portal.example.org, \"https://*.example.org\"]
SERVER:
  trust_forwarded: 1
$PROXYFIX_YAML"

# hostile_group GROUP: a server with HOSTILE_YAML, then hostile.py's cases of GROUP (a server
# that dies is restarted and the run goes on after the case that killed it), then the log
# checks; fails with a summary of the failed cases (each one is in the test log).
hostile_group() {
    local group=$1 from=0 rc status logs=() errs=() f summary
    local results=$E2E_TMP/results.jsonl
    LFSGATE_SPLIT_STDERR=1
    jwt_setup "$HOSTILE_YAML"
    : >"$results"
    while :; do
        rc=0
        "$MINT_PY" "$HOSTILE_PY" run "$group" --from "$from" --port "$LFSGATE_PORT" --pid "$LFSGATE_PID" \
            --stdout-log "$LFSGATE_LOG" --stderr-log "$LFSGATE_ERR" --key "$KEYS/rsa.pem" --iss "$ISS" \
            --aud "$AUD" --store "$STORE" --results "$results" --tokens "$E2E_TMP/tokens" \
            --state "$E2E_TMP/next" || rc=$?
        [[ $rc == 3 ]] || break
        # the server died (a failed case already): its status, then another server
        status=0
        wait "$LFSGATE_PID" || status=$?
        LFSGATE_PID=
        "$MINT_PY" "$HOSTILE_PY" died --results "$results" --status "$status"
        from=$(cat "$E2E_TMP/next")
        start_lfsgate --config "$CONFIG"
    done
    [[ $rc == 0 ]] || fail "hostile.py run $group exited with status $rc"
    stop_lfsgate
    for f in "$E2E_TMP"/server.*.log; do logs+=("$f"); done
    for f in "$E2E_TMP"/server.*.err; do errs+=("$f"); done
    "$MINT_PY" "$HOSTILE_PY" check-logs --results "$results" --stdout "${logs[@]}" --stderr "${errs[@]}"
    rc=0
    summary=$("$MINT_PY" "$HOSTILE_PY" summary --results "$results") || rc=$?
    printf '%s\n' "$summary" >&2
    assert_logs_clean
    [[ $rc == 0 ]] || fail "$group: $(head -n 1 <<<"$summary")"
}

test_reproducers() { hostile_group reproducers; }
test_framing() { hostile_group framing; }
test_request_line() { hostile_group request_line; }
test_headers() { hostile_group headers; }
test_json_bodies() { hostile_group json_bodies; }
test_token_claims() { hostile_group token_claims; }

run_test hostile_reproducers test_reproducers
run_test hostile_framing test_framing
run_test hostile_request_line test_request_line
run_test hostile_headers test_headers
run_test hostile_json_bodies test_json_bodies
run_test hostile_token_claims test_token_claims
e2e_finish
