#!/usr/bin/env bash
# tests/e2e/test_ops.sh: what an operator relies on: /readyz, /metrics (also on its own
# listener), JSON access and activity logs (and that no token reaches them), SIGHUP reload
# (a good config takes effect, a bad one is refused while the old one keeps serving) and
# SIGTERM letting an upload in progress finish.
# Run: LFSGATE_BIN=build/server/lfsgate tests/e2e/test_ops.sh   (see lib.sh for options)
# shellcheck disable=SC2317
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KEY=0123456789abcdef0123456789abcdef

ops_config() { # EXTRA_YAML
    STORE=$E2E_TMP/storage
    CONFIG=$E2E_TMP/lfsgate.yaml
    write_config "$CONFIG" "$STORE" "PRE_AUTHORIZED_ACTION_PROVIDER: {factory: giftless.auth.jwt:factory, options: {algorithm: HS256, private_key: \"$KEY\"}}
${1:-}"
}

# metric NAME_AND_LABELS TEXT_FILE: prints the value of one sample (0 when absent).
metric() {
    awk -v k="$1" '$1 == k { print $2; found = 1 } END { if (!found) print 0 }' "$2"
}

test_health_ready_metrics() {
    local f oid base
    ops_config
    start_lfsgate --config "$CONFIG"
    http GET "http://127.0.0.1:$LFSGATE_PORT/readyz"
    assert_status 200
    assert_file_contains "$HTTP_BODY" '"ready"'
    base=$(lfs_url org repo)
    f=$E2E_TMP/obj
    random_file "$f" 100000
    oid=$(sha256_of "$f")
    lfs_upload "$base" "$f"
    lfs_batch "$base" download "$oid" 100000
    assert_status 200
    lfs_batch "$base" download "$(printf 'b%.0s' {1..64})" 1
    assert_status 200
    http GET "http://127.0.0.1:$LFSGATE_PORT/metrics"
    assert_status 200
    assert_match "$(http_header content-type)" '^text/plain' "metrics content type"
    assert_eq 3 "$(metric 'lfsgate_requests_total{route="batch",status="200"}' "$HTTP_BODY")" "batch requests (one from lfs_upload)"
    assert_eq 1 "$(metric 'lfsgate_batch_objects_total{operation="download",result="action"}' "$HTTP_BODY")" "download objects with actions"
    assert_eq 1 "$(metric 'lfsgate_batch_objects_total{operation="download",result="error"}' "$HTTP_BODY")" "download objects with errors"
    assert_eq 100000 "$(metric lfsgate_bytes_received_total "$HTTP_BODY")" "bytes received"
    assert_file_contains "$HTTP_BODY" 'lfsgate_storage_calls_total{backend="local",outcome="ok"}'
    assert_file_contains "$HTTP_BODY" 'lfsgate_request_duration_seconds_bucket{route="upload",le="+Inf"} 1'
}

test_metrics_listener() {
    local mport
    mport=$(free_port)
    ops_config "SERVER: {metrics_listen: \"127.0.0.1:$mport\"}"
    start_lfsgate --config "$CONFIG"
    http GET "http://127.0.0.1:$LFSGATE_PORT/metrics"
    assert_status 404
    assert_json_error
    local code
    code=$(curl -s -o "$E2E_TMP/m.txt" -w '%{http_code}' "http://127.0.0.1:$mport/metrics")
    assert_eq 200 "$code" "metrics listener status"
    assert_file_contains "$E2E_TMP/m.txt" 'lfsgate_requests_in_flight'
}

test_access_and_activity_logs() {
    local f oid base href
    ops_config
    start_lfsgate --config "$CONFIG"
    base=$(lfs_url org repo)
    f=$E2E_TMP/obj
    random_file "$f" 5000
    oid=$(sha256_of "$f")
    lfs_upload "$base" "$f"
    lfs_batch "$base" download "$oid" 5000
    href=$(action_href "$HTTP_BODY" 0 download)
    assert_match "$href" 'jwt=' "download href carries its token"
    http GET "$href"
    assert_status 200
    # an action token used for another object: denied
    http GET "${href/$oid/$(printf 'c%.0s' {1..64})}"
    assert_status 401 403
    # 100 objects offered for upload, none stored, one with an invalid oid: the default log
    # holds one batch line and the refusal, not a line per object offered
    python3 - >"$E2E_TMP/b100.json" <<'PY'
import hashlib, json
objs = [{"oid": hashlib.sha256(b"ops log %d" % i).hexdigest(), "size": 1000 + i} for i in range(99)]
objs.append({"oid": "not-an-oid", "size": 5})
print(json.dumps({"operation": "upload", "transfers": ["basic"], "objects": objs}))
PY
    lfs_post "$base/objects/batch" "@$E2E_TMP/b100.json"
    assert_status 200
    local bid
    bid=$(http_header x-request-id)
    stop_lfsgate
    python3 - "$LFSGATE_LOG" "$oid" "$bid" <<'PY' || fail "log lines: see above"
import json, sys
log, oid, bid = sys.argv[1], sys.argv[2], sys.argv[3]
big = [line for line in open(log, encoding="utf-8")
       if line.startswith("{") and '"ActivityLog"' in line and json.loads(line)["request_id"] == bid]
recs = [json.loads(line) for line in big]
batch = [r for r in recs if r["action"] == "batch"]
refused = [r for r in recs if r["result"] == "refused"]
if len(batch) != 1 or len(refused) != 1 or len(recs) != 2:
    print("activity lines of the 100-object batch:", recs); sys.exit(1)
b = batch[0]
want = {"operation": "upload", "objects": 100, "granted": 99, "present": 0, "errors": 1,
        "bytes": sum(1000 + i for i in range(99)) + 5, "org_path": "org", "repo": "repo"}
if any(b.get(k) != v for k, v in want.items()):
    print("batch line:", b, "expected:", want); sys.exit(1)
if refused[0]["action"] != "upload" or "invalid oid" not in refused[0]["message"]:
    print("refusal line:", refused[0]); sys.exit(1)
size = sum(len(line.encode()) for line in big)
if size > 1024:
    print("activity log of a 100-object batch is %d bytes, more than 1 KiB" % size); sys.exit(1)
access, activity, bad = [], [], []
for line in open(log, encoding="utf-8"):
    if not line.startswith("{"):
        continue
    try:
        rec = json.loads(line)
    except ValueError:
        bad.append(line)
        continue
    (access if rec.get("_type") == "AccessLog" else activity).append(rec)
    if "jwt=" in line or "eyJ" in line:
        print("a token reached the log:", line.strip()); sys.exit(1)
if bad:
    print("lines that are not JSON:", bad); sys.exit(1)
need = {("batch", "answered"), ("store", "stored"), ("verify", "verified"), ("download", "served"), ("access", "denied")}
seen = {(r.get("action"), r.get("result")) for r in activity if r.get("_type") == "ActivityLog"}
if not need <= seen:
    print("missing activity records:", need - seen, "seen:", seen); sys.exit(1)
if ("upload", "granted") in seen or ("download", "granted") in seen:
    print("a line per object granted without SERVER.log_grants:", seen); sys.exit(1)
ops = {r.get("operation") for r in activity if r["action"] == "batch"}
if ops != {"upload", "download"}:
    print("batch lines for operations", ops); sys.exit(1)
served = [r for r in activity if r["action"] == "download"]
if served[0]["oid"] != oid or served[0]["size"] != 5000 or served[0]["sub"] is None:
    print("download line:", served[0]); sys.exit(1)
for r in activity:
    for k in ("time", "request_id", "sub", "org_path", "repo"):
        if k not in r:
            print("activity record without", k, r); sys.exit(1)
store = [r for r in activity if r["action"] == "store"][0]
assert store["oid"] == oid and store["size"] == 5000 and store["org_path"] == "org", store
gets = [r for r in access if r["method"] == "GET" and oid in r["path"]]
if not gets or "?" in gets[0]["path"] or gets[0]["status"] != 200 or gets[0]["bytes"] < 5000:
    print("access log of the download:", gets); sys.exit(1)
ids = [r["request_id"] for r in access]
if len(ids) != len(set(ids)):
    print("request ids repeat"); sys.exit(1)
PY
}

test_activity_log_grants() {
    local base oid
    ops_config "SERVER: {log_grants: true}"
    start_lfsgate --config "$CONFIG"
    base=$(lfs_url org repo)
    oid=$(printf 'e%.0s' {1..64})
    lfs_batch "$base" upload "$oid" 7
    assert_status 200
    stop_lfsgate
    python3 - "$LFSGATE_LOG" "$oid" <<'PY' || fail "grant lines: see above"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8") if '"ActivityLog"' in l]
grants = [r for r in recs if (r["action"], r["result"]) == ("upload", "granted")]
if len(grants) != 1 or grants[0]["oid"] != sys.argv[2] or grants[0]["size"] != 7:
    print("grant lines with SERVER.log_grants: true:", recs); sys.exit(1)
if not any(r["action"] == "batch" for r in recs):
    print("no batch line:", recs); sys.exit(1)
PY
}

test_sighup_reload() {
    local oid
    ops_config
    start_lfsgate --config "$CONFIG"
    oid=$(printf 'd%.0s' {1..64})
    lfs_batch "$(lfs_url org repo)" upload "$oid" 1
    assert_status 200
    sed -i 's/allow_anon:read_write/allow_anon:read_only/' "$CONFIG"
    kill -HUP "$LFSGATE_PID"
    wait_for_log "$LFSGATE_LOG" 'configuration reloaded'
    lfs_batch "$(lfs_url org repo)" upload "$oid" 1
    assert_status 403
    # A broken config is refused and the running (read-only) one stays: an upload is still
    # refused. Under the broken file's predecessor (read-write) or the built-in config
    # (anonymous read-write) it would be granted, so this can tell them apart.
    echo 'TRANSFER_ADAPTERS: [' >>"$CONFIG"
    kill -HUP "$LFSGATE_PID"
    wait_for_log "$LFSGATE_LOG" 'reload refused'
    assert_eq 1 "$(grep -c 'configuration reloaded' "$LFSGATE_LOG")" "reloads taken"
    lfs_batch "$(lfs_url org repo)" upload "$oid" 1
    assert_status 403
    assert_json_error
    lfs_batch "$(lfs_url org repo)" download "$oid" 1
    assert_status 200
    assert_server_alive
}

test_sigterm_finishes_upload() {
    local f oid base href rc=0 pid
    ops_config "SERVER: {shutdown_timeout: 20}"
    start_lfsgate --config "$CONFIG"
    base=$(lfs_url org repo)
    f=$E2E_TMP/slow
    random_file "$f" $((24 * 1048576))
    oid=$(sha256_of "$f")
    lfs_batch "$base" upload "$oid" $((24 * 1048576))
    href=$(action_href "$HTTP_BODY" 0 upload)
    mapfile -t hdr < <(action_header_args "$HTTP_BODY" 0 upload)
    # about 3 s of upload; SIGTERM arrives in the middle of it
    timeout 60 curl -sS --noproxy '*' -o "$E2E_TMP/put.out" -w '%{http_code}' --limit-rate 8M \
        "${hdr[@]}" -T "$f" "$href" >"$E2E_TMP/put.code" 2>"$E2E_TMP/put.err" &
    pid=$!
    sleep 1
    kill -TERM "$LFSGATE_PID"
    wait "$pid" || rc=$?
    assert_eq 0 "$rc" "curl exit status ($(cat "$E2E_TMP/put.err"))"
    assert_eq 200 "$(cat "$E2E_TMP/put.code")" "upload status across SIGTERM"
    assert_same_file "$f" "$STORE/org/repo/$oid" "object stored"
    for _ in $(seq 100); do kill -0 "$LFSGATE_PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$LFSGATE_PID" 2>/dev/null; then fail "lfsgate still running after the upload finished"; fi
    rc=0
    wait "$LFSGATE_PID" || rc=$?
    LFSGATE_PID=
    assert_eq 0 "$rc" "exit status after SIGTERM"
    assert_file_contains "$LFSGATE_LOG" 'stopped'
    assert_no_sanitizer_report "$LFSGATE_LOG" "lfsgate log"
}

run_test health_ready_metrics test_health_ready_metrics
run_test metrics_listener test_metrics_listener
run_test access_and_activity_logs test_access_and_activity_logs
run_test activity_log_grants test_activity_log_grants
run_test sighup_reload test_sighup_reload
run_test sigterm_finishes_upload test_sigterm_finishes_upload
e2e_finish
