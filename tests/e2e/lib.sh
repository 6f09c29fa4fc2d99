# shellcheck shell=bash
# tests/e2e/lib.sh: helpers shared by the lfsgate end-to-end tests (tests/e2e/test_*.sh).
#
# A test file sources this, defines one function per test, registers each with
# `run_test NAME FUNC` and ends with `e2e_finish`. Every test runs in its own subshell
# with its own temp dir, HOME, git config and lfsgate process (started with start_lfsgate,
# stopped by its own pid), under `set -eEuo pipefail`: an assertion helper or any failing
# command ends the test, and run_test prints `PASS name` or `FAIL name: reason`.
#
# Environment:
#   LFSGATE_BIN        server binary (default: <repo>/build/server/lfsgate)
#   E2E_FILTER         regex: run only the tests whose name matches
#   E2E_KEEP=1         keep every test's temp dir (default: kept only when E2E_KEEP_FAILED=1
#                      and the test failed)
#   E2E_TIMEOUT        seconds allowed to each git/curl command (default 120)
#   E2E_START_TIMEOUT  seconds to wait for /healthz after starting lfsgate (default 30)
#   E2E_THREADS        --threads passed to lfsgate (default 2)
#   E2E_TEST_TIMEOUT   seconds after which a whole test is stopped and failed (default 600)
#   E2E_GIT_TRACE=1    run git with GIT_TRACE=1 and GIT_CURL_VERBOSE=1 (goes to the test log)
# Sanitizer reports ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")
# in a server log or in the output of a direct lfsgate run fail the test.

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
E2E_REPO_ROOT=$(cd "$E2E_DIR/../.." && pwd)
: "${LFSGATE_BIN:=$E2E_REPO_ROOT/build/server/lfsgate}"
[[ $LFSGATE_BIN == /* ]] || LFSGATE_BIN=$PWD/$LFSGATE_BIN # tests cd into their temp dir
: "${E2E_TIMEOUT:=120}"
: "${E2E_START_TIMEOUT:=30}"
: "${E2E_THREADS:=2}"
: "${E2E_TEST_TIMEOUT:=600}"
LFS_MEDIA_TYPE='application/vnd.git-lfs+json'
E2E_SANITIZER_RE='ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:'

E2E_PASSED=0
E2E_FAILED=0
E2E_FAILED_NAMES=()

# ---------------------------------------------------------------------------------------
# test runner

# run_test NAME FUNC: runs FUNC in a subshell with a fresh temp dir; prints PASS/FAIL.
# A watchdog ends the test after E2E_TEST_TIMEOUT seconds.
run_test() {
    local name=$1 func=$2 tdir rc=0 reason start elapsed wpid
    if [[ -n ${E2E_FILTER:-} && ! $name =~ $E2E_FILTER ]]; then
        return 0
    fi
    tdir=$(mktemp -d "${TMPDIR:-/tmp}/lfsgate-e2e.XXXXXX")
    start=$SECONDS
    (e2e_test_main "$tdir" "$func") >"$tdir/test.log" 2>&1 </dev/null &
    E2E_CURRENT_PID=$!
    E2E_CURRENT_TDIR=$tdir
    (
        trap 'kill "$sp" 2>/dev/null; exit 0' TERM
        sleep "$E2E_TEST_TIMEOUT" &
        sp=$!
        wait "$sp"
        [[ -s $tdir/reason ]] || echo "test timed out after ${E2E_TEST_TIMEOUT}s" >"$tdir/reason"
        e2e_kill_test "$E2E_CURRENT_PID"
    ) </dev/null >/dev/null 2>&1 &
    wpid=$!
    wait "$E2E_CURRENT_PID" || rc=$?
    E2E_CURRENT_PID=
    kill -TERM "$wpid" 2>/dev/null || true
    wait "$wpid" 2>/dev/null || true
    elapsed=$((SECONDS - start))
    reason=
    if [[ -s $tdir/reason ]]; then
        reason=$(head -n 1 "$tdir/reason")
    fi
    if [[ $rc -eq 0 && -z $reason ]]; then
        E2E_PASSED=$((E2E_PASSED + 1))
        echo "PASS $name (${elapsed}s)"
    else
        E2E_FAILED=$((E2E_FAILED + 1))
        E2E_FAILED_NAMES+=("$name")
        echo "FAIL $name: ${reason:-test exited with status $rc}"
        e2e_show_logs "$tdir"
    fi
    if [[ ${E2E_KEEP:-0} == 1 || (${E2E_KEEP_FAILED:-0} == 1 && ($rc -ne 0 || -n $reason)) ]]; then
        echo "    (kept $tdir)"
    else
        rm -rf "$tdir"
    fi
}

# e2e_child_pids PID: the pids of PID's direct children (from /proc, no procps needed).
e2e_child_pids() {
    local d stat rest ppid
    for d in /proc/[0-9]*; do
        stat=$(cat "$d/stat" 2>/dev/null) || continue
        rest=${stat##*) }          # fields after "(comm) "
        read -r _ ppid _ <<<"$rest"
        [[ $ppid == "$1" ]] && echo "${d#/proc/}"
    done
    return 0
}

# e2e_kill_test PID: SIGTERM to a test subshell (its EXIT trap stops its server) and to
# its direct children, e.g. a foreground command that would otherwise outlive it.
e2e_kill_test() {
    local kids k
    kids=$(e2e_child_pids "$1")
    kill -TERM "$1" 2>/dev/null
    for k in $kids; do
        kill -TERM "$k" 2>/dev/null
    done
}

# Ctrl-C or TERM on a test file: stop the running test (its cleanup stops its server).
e2e_interrupted() {
    if [[ -n ${E2E_CURRENT_PID:-} ]]; then
        e2e_kill_test "$E2E_CURRENT_PID"
        wait "$E2E_CURRENT_PID" 2>/dev/null || true
        if [[ ${E2E_KEEP:-0} != 1 && -n ${E2E_CURRENT_TDIR:-} ]]; then
            rm -rf "$E2E_CURRENT_TDIR"
        fi
    fi
    echo "interrupted"
    exit 130
}
E2E_CURRENT_PID=
trap e2e_interrupted INT TERM

# Prints the tails of a failed test's own log and of its server logs, indented.
e2e_show_logs() {
    local tdir=$1 f
    echo "    --- test log (last 40 lines) ---"
    tail -n 40 "$tdir/test.log" | sed 's/^/    | /'
    for f in "$tdir"/server.*.log "$tdir"/*.err; do
        [[ -e $f ]] || continue
        if grep -qE -- "$E2E_SANITIZER_RE" "$f"; then
            echo "    --- ${f##*/} (sanitizer report) ---"
            grep -m 1 -A 40 -E -- "$E2E_SANITIZER_RE" "$f" | sed 's/^/    | /'
        elif [[ $f == *.log || $f == */server.*.err ]]; then
            # raw bytes a hostile request put in a log must not reach the terminal, nor
            # 20 KB lines fill it
            echo "    --- ${f##*/} (last 25 lines) ---"
            tail -n 25 "$f" | LC_ALL=C tr -c '[:print:]\n' '?' | cut -c 1-400 | sed 's/^/    | /'
        fi
    done
}

# Prints the summary of this file and exits non-zero when a test failed.
e2e_finish() {
    echo "${0##*/}: $E2E_PASSED passed, $E2E_FAILED failed"
    if ((E2E_FAILED > 0)); then
        printf '    failed: %s\n' "${E2E_FAILED_NAMES[@]}"
        exit 1
    fi
    exit 0
}

# Body of the per-test subshell.
e2e_test_main() {
    E2E_TMP=$1
    local func=$2
    E2E_REASON_FILE=$E2E_TMP/reason
    E2E_IN_CLEANUP=0
    E2E_BG_PIDS=()
    E2E_HTTP_N=0
    E2E_SERVER_N=0
    LFSGATE_PID=
    LFSGATE_PORT=
    LFSGATE_LOG=
    LFSGATE_ERR=
    set -eEuo pipefail
    trap 'e2e_on_err "$?" "$LINENO" "$BASH_COMMAND"' ERR
    trap e2e_cleanup EXIT
    e2e_isolate_env
    cd "$E2E_TMP"
    "$func"
}

# ERR trap: remembers the first failing command as the reason.
e2e_on_err() {
    local status=$1 line=$2 cmd=$3
    e2e_note_reason "command failed (status $status) in ${FUNCNAME[1]:-main} line $line: $cmd"
}

# Records a failure reason (the first one wins) and echoes it to the test log.
e2e_note_reason() {
    echo "ASSERTION: $*" >&2
    if [[ ! -s $E2E_REASON_FILE ]]; then
        printf '%s\n' "$*" >"$E2E_REASON_FILE"
    fi
}

# fail MESSAGE...: the test fails with MESSAGE (ends the test, except during cleanup).
fail() {
    e2e_note_reason "$*"
    if [[ $E2E_IN_CLEANUP == 1 ]]; then
        return 1
    fi
    exit 1
}

# EXIT trap of the test subshell: stops the server and background jobs.
e2e_cleanup() {
    local rc=$? pid
    trap - ERR
    set +e
    E2E_IN_CLEANUP=1
    stop_lfsgate
    for pid in "${E2E_BG_PIDS[@]}"; do
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    if [[ -s $E2E_REASON_FILE ]]; then
        exit 1
    fi
    exit "$rc"
}

# bg_track PID: kill this background process when the test ends.
bg_track() {
    E2E_BG_PIDS+=("$1")
}

# Isolates git, git-lfs, curl and the server from the user's environment.
e2e_isolate_env() {
    local v
    export HOME=$E2E_TMP/home
    export XDG_CONFIG_HOME=$HOME/.config
    mkdir -p "$XDG_CONFIG_HOME"
    export GIT_CONFIG_NOSYSTEM=1 GIT_TERMINAL_PROMPT=0 LC_ALL=C
    unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_CONFIG GIT_CONFIG_GLOBAL GIT_CONFIG_SYSTEM \
        GIT_CONFIG_PARAMETERS GIT_CONFIG_COUNT GIT_ASKPASS SSH_ASKPASS GIT_LFS_SKIP_SMUDGE \
        GIT_LFS_SKIP_PUSH GIT_TRACE GIT_CURL_VERBOSE GIT_TRANSFER_TRACE
    unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
    export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
    for v in $(compgen -e); do
        case $v in GIFTLESS_* | LFSGATE_CONFIG*) unset "$v" ;; esac
    done
    if [[ ${E2E_GIT_TRACE:-0} == 1 ]]; then
        export GIT_TRACE=1 GIT_CURL_VERBOSE=1 GIT_TRANSFER_TRACE=1
    fi
    git config --global user.name "lfsgate e2e"
    git config --global user.email "e2e@lfsgate.invalid"
    git config --global init.defaultBranch main
    git config --global advice.detachedHead false
}

# ---------------------------------------------------------------------------------------
# assertions (each prints what was expected and what was seen)

assert_eq() { # EXPECTED ACTUAL WHAT
    [[ $1 == "$2" ]] || fail "$3: expected '$1', got '$2'"
}

assert_match() { # STRING REGEX WHAT
    [[ $1 =~ $2 ]] || fail "$3: expected to match /$2/, got '$1'"
}

assert_file_exists() { # FILE WHAT
    [[ -f $1 ]] || fail "$2: expected file $1 to exist"
}

assert_no_file() { # FILE WHAT
    [[ ! -e $1 ]] || fail "$2: expected $1 not to exist"
}

assert_same_file() { # EXPECTED ACTUAL WHAT
    [[ -f $2 ]] || fail "$3: file $2 missing"
    cmp -s "$1" "$2" || fail "$3: $2 differs from $1 (sizes $(file_size "$1") vs $(file_size "$2"), first difference: $(cmp "$1" "$2" 2>&1 | head -n 1))"
}

assert_file_contains() { # FILE FIXED_STRING WHAT
    grep -qF -- "$2" "$1" || fail "$3: expected '$2' in $1, got: $(head -c 300 "$1" | tr '\n' ' ')"
}

assert_file_lacks() { # FILE FIXED_STRING WHAT
    if grep -qF -- "$2" "$1"; then
        fail "$3: did not expect '$2', got: $(grep -F -- "$2" "$1" | head -n 2 | tr '\n' ' ')"
    fi
}

assert_file_matches() { # FILE EXTENDED_REGEX WHAT
    grep -qE -- "$2" "$1" || fail "$3: expected /$2/ in $1, got: $(head -c 300 "$1" | tr '\n' ' ')"
}

# assert_status EXPECTED... : HTTP_STATUS of the last `http` call is one of EXPECTED.
assert_status() {
    local s
    for s in "$@"; do
        [[ $HTTP_STATUS == "$s" ]] && return 0
    done
    fail "$HTTP_WHAT: expected status $*, got $HTTP_STATUS; body: $(http_body_excerpt)"
}

assert_status_2xx() {
    [[ $HTTP_STATUS == 2?? ]] || fail "$HTTP_WHAT: expected a 2xx status, got $HTTP_STATUS; body: $(http_body_excerpt)"
}

assert_status_4xx() {
    [[ $HTTP_STATUS == 4?? ]] || fail "$HTTP_WHAT: expected a 4xx status, got $HTTP_STATUS; body: $(http_body_excerpt)"
}

# assert_json_error: the last response is an LFS JSON error: LFS media type, a JSON object
# with a non-empty string `message` and a non-empty string `request_id`.
assert_json_error() {
    local ct
    ct=$(http_header Content-Type)
    [[ $ct == "$LFS_MEDIA_TYPE"* ]] || fail "$HTTP_WHAT: expected Content-Type $LFS_MEDIA_TYPE on the error ($HTTP_STATUS), got '$ct'"
    json_ok "$HTTP_BODY" 'isinstance(d, dict) and isinstance(d.get("message"), str) and d["message"] != ""' ||
        fail "$HTTP_WHAT: expected a JSON body with a non-empty 'message', got: $(http_body_excerpt)"
    json_ok "$HTTP_BODY" 'isinstance(d.get("request_id"), str) and d["request_id"] != ""' ||
        fail "$HTTP_WHAT: expected a non-empty 'request_id' in the error body, got: $(http_body_excerpt)"
}

# assert_lfs_json: the last response has the LFS media type and a JSON body.
assert_lfs_json() {
    local ct
    ct=$(http_header Content-Type)
    [[ $ct == "$LFS_MEDIA_TYPE"* ]] || fail "$HTTP_WHAT: expected Content-Type $LFS_MEDIA_TYPE, got '$ct'"
    json_ok "$HTTP_BODY" 'True' || fail "$HTTP_WHAT: body is not JSON: $(http_body_excerpt)"
}

# assert_json FILE PY_EXPR WHAT: the Python expression (JSON document as `d`) is true.
assert_json() {
    json_ok "$1" "$2" || fail "$3: expected $2, body: $(head -c 400 "$1")"
}

# concurrent_upload_batches N PY_EXPR: N upload batches to lfs_url org repo at once, one
# 5-byte object each (oids 100 up, in hex); each curl must succeed, each answer must be 200
# and its body must satisfy the assert_json expression (the answer as `d`). For the
# credential tests, where the batches share one token or credential fetch.
concurrent_upload_batches() {
    local n=$1 expr=$2 base i
    local -a pids=()
    base=$(lfs_url org repo)
    for ((i = 0; i < n; i++)); do
        curl -sS --noproxy '*' -o "$E2E_TMP/shared.$i.json" -w '%{http_code}' \
            -H "Accept: $LFS_MEDIA_TYPE" -H "Content-Type: $LFS_MEDIA_TYPE" \
            --data-binary "{\"operation\": \"upload\", \"objects\": [{\"oid\": \"$(printf '%064x' $((i + 100)))\", \"size\": 5}]}" \
            "$base/objects/batch" >"$E2E_TMP/shared.$i.code" &
        pids+=($!)
    done
    for i in "${!pids[@]}"; do
        wait "${pids[$i]}" || fail "concurrent batch $i: curl failed"
        assert_eq 200 "$(cat "$E2E_TMP/shared.$i.code")" "status of concurrent batch $i"
        assert_json "$E2E_TMP/shared.$i.json" "$expr" "concurrent batch $i"
    done
}

# assert_only_files DIR [RELPATH...]: the regular files/symlinks under DIR are exactly the
# listed ones (no temp files, no stray objects). A missing DIR counts as empty.
assert_only_files() {
    local dir=$1 seen expected
    shift
    if [[ -d $dir ]]; then
        seen=$(cd "$dir" && find . ! -type d | sed 's|^\./||' | LC_ALL=C sort | tr '\n' ' ')
    else
        seen=
    fi
    expected=$(printf '%s\n' "$@" | sed '/^$/d' | LC_ALL=C sort | tr '\n' ' ')
    [[ $seen == "$expected" ]] || fail "files under $dir: expected [${expected% }], got [${seen% }]"
}

# assert_no_sanitizer_report FILE WHAT
assert_no_sanitizer_report() {
    if grep -qE -- "$E2E_SANITIZER_RE" "$1"; then
        fail "$2: sanitizer report: $(grep -m 1 -E -- "$E2E_SANITIZER_RE" "$1")"
    fi
}

# ---------------------------------------------------------------------------------------
# small utilities

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# port_is_open PORT: something accepts TCP connections on 127.0.0.1:PORT.
port_is_open() {
    python3 - "$1" <<'EOF'
import socket, sys
s = socket.socket()
s.settimeout(1)
try:
    s.connect(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
sys.exit(0)
EOF
}

sha256_of() { sha256sum "$1" | cut -d ' ' -f 1; }
file_size() { stat -c %s "$1"; }

# random_file PATH BYTES: random content generated now (never committed).
random_file() {
    mkdir -p "$(dirname "$1")"
    head -c "$2" /dev/urandom >"$1"
    [[ $(file_size "$1") == "$2" ]] || fail "could not create $2 random bytes in $1"
}

# json FILE PY_EXPR: prints the expression's value (JSON document as `d`); strings raw,
# anything else as JSON. Non-zero exit when the file is not JSON or the expression fails.
json() {
    python3 - "$1" "$2" <<'EOF'
import json, sys
with open(sys.argv[1], "rb") as f:
    d = json.load(f)
v = eval(sys.argv[2], {"d": d})
print(v if isinstance(v, str) else json.dumps(v))
EOF
}

# json_ok FILE PY_EXPR: exit 0 when the file is JSON and the expression is true.
json_ok() {
    python3 - "$1" "$2" <<'EOF' 2>/dev/null
import json, sys
try:
    with open(sys.argv[1], "rb") as f:
        d = json.load(f)
    ok = bool(eval(sys.argv[2], {"d": d}))
except Exception:
    ok = False
sys.exit(0 if ok else 1)
EOF
}

tgit() { timeout "$E2E_TIMEOUT" git "$@"; }

# ---------------------------------------------------------------------------------------
# HTTP (curl) helpers

# http METHOD URL [curl args...]: one request, never through a proxy, path sent as is.
# Sets HTTP_STATUS ("000" when no response), HTTP_BODY and HTTP_HEADERS (files) and
# HTTP_WHAT ("METHOD URL") for messages.
http() {
    local method=$1 url=$2
    shift 2
    E2E_HTTP_N=$((E2E_HTTP_N + 1))
    mkdir -p "$E2E_TMP/http"
    HTTP_BODY=$E2E_TMP/http/$E2E_HTTP_N.body
    HTTP_HEADERS=$E2E_TMP/http/$E2E_HTTP_N.headers
    HTTP_WHAT="$method ${url#http://127.0.0.1:"$LFSGATE_PORT"}"
    : >"$HTTP_BODY"
    : >"$HTTP_HEADERS"
    HTTP_STATUS=$(timeout "$E2E_TIMEOUT" curl -sS --noproxy '*' --path-as-is -X "$method" \
        -o "$HTTP_BODY" -D "$HTTP_HEADERS" -w '%{http_code}' "$@" "$url" 2>>"$E2E_TMP/curl.err") ||
        HTTP_STATUS=${HTTP_STATUS:-000}
    [[ -n $HTTP_STATUS ]] || HTTP_STATUS=000
    echo "http: $HTTP_WHAT -> $HTTP_STATUS $(head -c 200 "$HTTP_BODY" | tr -c '[:print:]' '.')" >&2
}

# http_header NAME: value of the last NAME header of the last response ("" if none).
http_header() {
    awk -v name="$1" 'BEGIN { n = tolower(name) ":" }
        { sub(/\r$/, "") }
        tolower(substr($0, 1, length(n))) == n { v = substr($0, length(n) + 1); sub(/^[ \t]+/, "", v); sub(/[ \t]+$/, "", v) }
        END { print v }' "$HTTP_HEADERS"
}

http_body_excerpt() {
    head -c 300 "$HTTP_BODY" | tr -c '[:print:]' '.'
}

# lfs_post URL JSON_BODY [curl args...]: POST with the LFS media types.
lfs_post() {
    local url=$1 body=$2
    shift 2
    http POST "$url" -H "Accept: $LFS_MEDIA_TYPE" -H "Content-Type: $LFS_MEDIA_TYPE; charset=utf-8" \
        --data-binary "$body" "$@"
}

# lfs_url ORG_PATH REPO: the LFS endpoint of a repository on the running server.
lfs_url() { echo "http://127.0.0.1:$LFSGATE_PORT/$1/$2.git/info/lfs"; }

# legacy_url ORG REPO: the legacy endpoint (what CKAN and old giftless clients use).
legacy_url() { echo "http://127.0.0.1:$LFSGATE_PORT/$1/$2"; }

# lfs_batch BASE OPERATION OID SIZE [TRANSFERS_JSON [CURL_ARGS...]]: one-object batch request.
lfs_batch() {
    local base=$1 op=$2 oid=$3 size=$4 transfers=${5:-'["basic"]'}
    shift $(($# < 5 ? $# : 5))
    lfs_post "$base/objects/batch" \
        "{\"operation\": \"$op\", \"transfers\": $transfers, \"ref\": {\"name\": \"refs/heads/main\"}, \"objects\": [{\"oid\": \"$oid\", \"size\": $size}], \"hash_algo\": \"sha256\"}" "$@"
}

# action_header_args BATCH_BODY INDEX ACTION: prints "-H" / "Name: value" lines for the
# action's headers (read them with mapfile).
action_header_args() {
    python3 - "$1" "$2" "$3" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1], "rb"))
a = d["objects"][int(sys.argv[2])].get("actions", {}).get(sys.argv[3], {})
for k, v in (a.get("header") or {}).items():
    print("-H")
    print(f"{k}: {v}")
EOF
}

# action_href BATCH_BODY INDEX ACTION: prints the href, or nothing if there is no such action.
action_href() {
    json "$1" "d['objects'][$2].get('actions', {}).get('$3', {}).get('href', '')"
}

# lfs_upload BASE FILE: batch + PUT + verify like git-lfs does, asserting every step.
lfs_upload() {
    lfs_upload_as "$1" "$2" "$2"
    [[ $UPLOAD_STEP != verify ]] || assert_status 200
}

# lfs_upload_as BASE FILE CONTENT_FILE: the batch for FILE's oid and size, then the PUT of
# CONTENT_FILE (FILE itself, or other bytes a test sends in its place) and the verify action
# if there is one, whose answer is left in HTTP_* (UPLOAD_STEP=verify; "put" without a
# verify action, "none" when the batch asked for no upload: already stored).
lfs_upload_as() {
    local base=$1 file=$2 oid size batch href vhref
    local -a hdr=()
    oid=$(sha256_of "$file")
    size=$(file_size "$file")
    UPLOAD_STEP=none
    lfs_batch "$base" upload "$oid" "$size"
    assert_status 200
    batch=$HTTP_BODY
    href=$(action_href "$batch" 0 upload)
    if [[ -z $href ]]; then
        return 0 # already stored
    fi
    mapfile -t hdr < <(action_header_args "$batch" 0 upload)
    http PUT "$href" -H 'Content-Type: application/octet-stream' "${hdr[@]}" -T "$3"
    assert_status_2xx
    UPLOAD_STEP=put
    vhref=$(action_href "$batch" 0 verify)
    if [[ -n $vhref ]]; then
        mapfile -t hdr < <(action_header_args "$batch" 0 verify)
        lfs_post "$vhref" "{\"oid\": \"$oid\", \"size\": $size}" "${hdr[@]}"
        UPLOAD_STEP=verify
    fi
}

# lfs_batch_href BASE OPERATION OID SIZE: a one-object batch, asserts 200 and an action named
# OPERATION (an upload action: the object is not stored yet); sets ACTION_HREF and
# ACTION_HEADERS (array of curl -H args), for tests that send the transfer themselves.
lfs_batch_href() {
    local base=$1 op=$2 oid=$3 size=$4
    lfs_batch "$base" "$op" "$oid" "$size"
    assert_status 200
    ACTION_HREF=$(action_href "$HTTP_BODY" 0 "$op")
    [[ -n $ACTION_HREF ]] || fail "batch $op of $oid: expected a $op action, got: $(http_body_excerpt)"
    mapfile -t ACTION_HEADERS < <(action_header_args "$HTTP_BODY" 0 "$op")
}

# lfs_download_href BASE OID SIZE: lfs_batch_href for a download; sets DL_HREF and
# DL_HEADERS (array of curl -H args).
lfs_download_href() {
    lfs_batch_href "$1" download "$2" "$3"
    DL_HREF=$ACTION_HREF
    # shellcheck disable=SC2034 # used by the callers
    DL_HEADERS=("${ACTION_HEADERS[@]}")
}

# ---------------------------------------------------------------------------------------
# the server

# Config YAML for giftless's ProxyFix middleware trusting one proxy for each X-Forwarded-*
# header (Host, Port, Prefix, Proto), as a portal deployment behind nginx has it.
# shellcheck disable=SC2034 # used by the test files
PROXYFIX_YAML='MIDDLEWARE:
  - class: werkzeug.middleware.proxy_fix:ProxyFix
    kwargs: {x_host: 1, x_port: 1, x_prefix: 1, x_proto: 1}'

# write_config FILE STORAGE_PATH [EXTRA_YAML [AUTH_PROVIDER_YAML]]: giftless-format config,
# basic_streaming over local storage, one auth provider (the list item's YAML, "- " and
# indentation included; default: anonymous read-write).
write_config() {
    local file=$1 path=$2 extra=${3:-} auth=${4:-'  - giftless.auth.allow_anon:read_write'}
    cat >"$file" <<EOF
AUTH_PROVIDERS:
$auth
TRANSFER_ADAPTERS:
  basic:
    factory: giftless.transfer.basic_streaming:factory
    options:
      storage_class: giftless.storage.local_storage:LocalStorage
      storage_options:
        path: $path
$extra
EOF
}

# store_config FILE FACTORY STORAGE_OPTION_LINES [ADAPTER_OPTION_LINES]: one "basic" adapter
# (giftless.transfer.FACTORY) with anonymous read-write access; its option lines (indented
# by 6) are ADAPTER_OPTION_LINES, then STORAGE_OPTION_LINES (storage_class and
# storage_options, and whatever follows them in the file).
store_config() {
    {
        printf '%s\n' 'AUTH_PROVIDERS:' '  - giftless.auth.allow_anon:read_write' 'TRANSFER_ADAPTERS:' \
            '  basic:' "    factory: giftless.transfer.$2:factory" '    options:'
        [[ -z ${4:-} ]] || printf '%s\n' "$4"
        printf '%s\n' "$3"
    } >"$1"
}

# shellcheck disable=SC2120 # EXTRA_YAML is optional
# start_local_lfsgate [EXTRA_YAML]: write_config's anonymous read-write config over local
# storage in $E2E_TMP/storage, EXTRA_YAML appended, and lfsgate started on it; sets STORE
# and CONFIG (and what start_lfsgate sets).
start_local_lfsgate() {
    STORE=$E2E_TMP/storage
    CONFIG=$E2E_TMP/lfsgate.yaml
    write_config "$CONFIG" "$STORE" "${1:-}"
    start_lfsgate --config "$CONFIG"
}

# start_lfsgate [LFSGATE_ARGS...]: starts lfsgate on a free loopback port (adds --listen
# and --threads), cwd $LFSGATE_CWD (default $E2E_TMP/srv), and waits for /healthz.
# Sets LFSGATE_PID, LFSGATE_PORT, LFSGATE_LOG (stdout and stderr) and LFSGATE_ERR (the same
# file; with LFSGATE_SPLIT_STDERR=1, stderr goes to its own file server.N.err instead, for
# tests that check the two streams apart).
start_lfsgate() {
    local cwd=${LFSGATE_CWD:-$E2E_TMP/srv}
    stop_lfsgate
    [[ -x $LFSGATE_BIN ]] || fail "server binary $LFSGATE_BIN not found or not executable"
    mkdir -p "$cwd"
    for _ in 1 2 3; do
        LFSGATE_PORT=$(free_port)
        E2E_SERVER_N=$((E2E_SERVER_N + 1))
        LFSGATE_LOG=$E2E_TMP/server.$E2E_SERVER_N.log
        LFSGATE_ERR=$LFSGATE_LOG
        [[ ${LFSGATE_SPLIT_STDERR:-0} != 1 ]] || LFSGATE_ERR=$E2E_TMP/server.$E2E_SERVER_N.err
        echo "starting: $LFSGATE_BIN $* --listen 127.0.0.1:$LFSGATE_PORT --threads $E2E_THREADS (log $LFSGATE_LOG)" >&2
        (cd "$cwd" && if [[ ${LFSGATE_SPLIT_STDERR:-0} == 1 ]]; then exec 2>"$LFSGATE_ERR"; fi &&
            exec "$LFSGATE_BIN" "$@" --listen "127.0.0.1:$LFSGATE_PORT" --threads "$E2E_THREADS") \
            >"$LFSGATE_LOG" 2>&1 </dev/null &
        LFSGATE_PID=$!
        if e2e_wait_healthy; then
            return 0
        fi
        if [[ -z $LFSGATE_PID ]] && grep -qi 'address already in use' "$LFSGATE_ERR"; then
            continue # lost a race for the port: try another one
        fi
        break
    done
    if [[ -n $LFSGATE_PID ]]; then
        fail "lfsgate did not answer 200 on /healthz within ${E2E_START_TIMEOUT}s: $(tail -n 3 "$LFSGATE_ERR" | tr '\n' ' ')"
    fi
    fail "lfsgate exited during startup (status $E2E_LAST_EXIT): $(tail -n 3 "$LFSGATE_ERR" | tr '\n' ' ')"
}

# Polls /healthz; returns 1 on timeout (server still running) or when the server exited
# (then LFSGATE_PID is cleared and E2E_LAST_EXIT set).
e2e_wait_healthy() {
    local deadline=$((SECONDS + E2E_START_TIMEOUT)) code
    while ((SECONDS < deadline)); do
        if ! kill -0 "$LFSGATE_PID" 2>/dev/null; then
            E2E_LAST_EXIT=0
            wait "$LFSGATE_PID" || E2E_LAST_EXIT=$?
            LFSGATE_PID=
            return 1
        fi
        code=$(curl -s --noproxy '*' --max-time 2 -o /dev/null -w '%{http_code}' \
            "http://127.0.0.1:$LFSGATE_PORT/healthz" 2>/dev/null) || true
        if [[ $code == 200 ]]; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# assert_server_alive: the server started by start_lfsgate is still running.
assert_server_alive() {
    kill -0 "$LFSGATE_PID" 2>/dev/null || fail "lfsgate (pid $LFSGATE_PID) is no longer running: $(tail -n 3 "$LFSGATE_ERR" | tr '\n' ' ')"
}

# stop_lfsgate: SIGTERM to our server, wait up to 15 s (then SIGKILL); fails the test when
# the server had died on its own, did not stop, exited with a status other than 0/143, or
# logged a sanitizer report.
stop_lfsgate() {
    local pid=$LFSGATE_PID status=0 i
    [[ -n $pid ]] || return 0
    LFSGATE_PID=
    if ! kill -0 "$pid" 2>/dev/null; then
        wait "$pid" || status=$?
        assert_no_sanitizer_report "$LFSGATE_ERR" "lfsgate log"
        fail "lfsgate (pid $pid) died during the test with status $status: $(tail -n 3 "$LFSGATE_ERR" | tr '\n' ' ')"
        return 1
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        fail "lfsgate (pid $pid) did not exit within 15 s of SIGTERM"
        return 1
    fi
    wait "$pid" || status=$?
    assert_no_sanitizer_report "$LFSGATE_ERR" "lfsgate log" || return 1
    if [[ $status != 0 && $status != 143 ]]; then
        fail "lfsgate exited with status $status after SIGTERM: $(tail -n 3 "$LFSGATE_ERR" | tr '\n' ' ')"
        return 1
    fi
    return 0
}

# run_lfsgate_cmd TIMEOUT ARGS...: runs the binary in the foreground (cwd $E2E_TMP/srv);
# sets CMD_RC, CMD_OUT, CMD_ERR (files); fails on a sanitizer report.
run_lfsgate_cmd() {
    local t=$1
    shift
    E2E_HTTP_N=$((E2E_HTTP_N + 1))
    CMD_OUT=$E2E_TMP/cmd.$E2E_HTTP_N.out
    CMD_ERR=$E2E_TMP/cmd.$E2E_HTTP_N.err
    mkdir -p "$E2E_TMP/srv"
    CMD_RC=0
    (cd "$E2E_TMP/srv" && exec timeout "$t" "$LFSGATE_BIN" "$@") >"$CMD_OUT" 2>"$CMD_ERR" </dev/null || CMD_RC=$?
    echo "cmd: lfsgate $* -> rc $CMD_RC; stderr: $(head -c 300 "$CMD_ERR" | tr '\n' ' ')" >&2
    assert_no_sanitizer_report "$CMD_ERR" "lfsgate $*"
}

# ---------------------------------------------------------------------------------------
# JWT: tokens minted by mint_jwt.py (python3-jwt, python3-cryptography) and the server set
# up with the jwt provider (test_jwt.sh, test_hostile.sh). assert_logs_clean checks that no
# token a test sent or received ever reaches a server log.

ISS=https://portal.lfsgate-e2e.invalid
AUD=lfsgate-e2e
# The python that has PyJWT and cryptography: the Debian one when python3 on PATH is another.
MINT_PY=python3
if ! python3 -c 'import jwt, cryptography' 2>/dev/null && [[ -x /usr/bin/python3 ]]; then
    MINT_PY=/usr/bin/python3
fi

# mint ARGS...: runs mint_jwt.py (see its usage).
mint() { "$MINT_PY" "$E2E_DIR/mint_jwt.py" "$@"; }

# remember_token TEXT: assert_logs_clean fails when a server log contains TEXT (or its
# payload or signature part).
remember_token() { printf '%s\n' "$1" >>"$E2E_TMP/tokens"; }

# minted ARGS...: `mint mint ARGS...`, remembered, printed.
minted() {
    local t
    t=$(mint mint "$@")
    remember_token "$t"
    printf '%s\n' "$t"
}

# user_token [MINT_OPTIONS...]: a valid token (test key, issuer, audience) with the options
# (typically --scope ...), remembered, printed.
user_token() { minted --key "$KEYS/rsa.pem" --iss "$ISS" --aud "$AUD" "$@"; }

# harvest_tokens FILE: remembers every JWT and Basic credential that appears in FILE (git
# traces, batch answers), so that the action tokens minted by the server are checked too.
harvest_tokens() {
    grep -oE 'eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*' "$1" >>"$E2E_TMP/tokens" || true
    grep -oE 'Authorization: Basic [A-Za-z0-9+/]{16,}=*' "$1" | sed 's/^Authorization: Basic //' \
        >>"$E2E_TMP/tokens" || true
}

# assert_logs_clean: no server log of this test (stdout or stderr) contains a remembered
# token, its payload part or its signature part (the header part is shared by many tokens).
assert_logs_clean() {
    local pat=$E2E_TMP/token-patterns f
    [[ -s $E2E_TMP/tokens ]] || return 0
    awk -F. '{ print $0; if (length($2) >= 16) print $2; if (length($3) >= 16) print $3 }' \
        "$E2E_TMP/tokens" | LC_ALL=C sort -u >"$pat"
    for f in "$E2E_TMP"/server.*.log "$E2E_TMP"/server.*.err; do
        [[ -e $f ]] || continue
        if grep -qF -f "$pat" "$f"; then
            fail "${f##*/} contains token text: $(grep -m 1 -F -f "$pat" "$f" | cut -c 1-200)"
        fi
    done
}

# jwt_provider: the RS256 key pair $KEYS/rsa.* ($KEYS is $E2E_TMP/keys) and, in
# JWT_PROVIDER_YAML, the AUTH_PROVIDERS item of the jwt provider that checks its tokens
# (issuer $ISS, audience $AUD), as write_config's AUTH_PROVIDER_YAML takes it.
jwt_provider() {
    KEYS=$E2E_TMP/keys
    mkdir -p "$KEYS"
    mint keygen "$KEYS/rsa.pem" "$KEYS/rsa.pub.pem"
    JWT_PROVIDER_YAML="  - factory: giftless.auth.jwt:factory
    options:
      algorithm: RS256
      public_key_file: $KEYS/rsa.pub.pem
      issuer: $ISS
      audience: $AUD"
}

# shellcheck disable=SC2120 # EXTRA_YAML is optional
# jwt_setup [EXTRA_YAML]: RS256 key pairs $KEYS/rsa.* (the configured one) and
# $KEYS/other.*, a config $CONFIG with the jwt provider (issuer and audience set), local
# storage in $STORE and EXTRA_YAML appended, and a running server. The action-token
# provider is the default (random key).
jwt_setup() {
    "$MINT_PY" -c 'import jwt, cryptography' ||
        fail "python3-jwt and python3-cryptography are needed (scripts/install-deps.sh --with-tests)"
    STORE=$E2E_TMP/storage
    CONFIG=$E2E_TMP/lfsgate.yaml
    jwt_provider
    mint keygen "$KEYS/other.pem" "$KEYS/other.pub.pem"
    write_config "$CONFIG" "$STORE" "${1:-}" "$JWT_PROVIDER_YAML"
    start_lfsgate --config "$CONFIG"
}

# ---------------------------------------------------------------------------------------
# git repositories

# setup_repo NAME LFS_URL: bare repo $E2E_TMP/NAME.git and work tree $E2E_TMP/NAME with
# `git lfs install --local`, lfs.url, origin and `*.bin` tracked. Sets REPO_DIR, REPO_BARE.
setup_repo() {
    local name=$1 url=$2
    REPO_BARE=$E2E_TMP/$name.git
    REPO_DIR=$E2E_TMP/$name
    tgit init -q --bare "$REPO_BARE"
    tgit init -q -b main "$REPO_DIR"
    tgit -C "$REPO_DIR" lfs install --local >/dev/null
    tgit -C "$REPO_DIR" config lfs.url "$url"
    tgit -C "$REPO_DIR" remote add origin "$REPO_BARE"
    tgit -C "$REPO_DIR" lfs track '*.bin' >/dev/null
    tgit -C "$REPO_DIR" add .gitattributes
}

# git_push DIR: `git push origin main`, output in $E2E_TMP/push.out (and the test log).
git_push() {
    local rc=0
    tgit -C "$1" push origin main >"$E2E_TMP/push.out" 2>&1 || rc=$?
    sed 's/^/push| /' "$E2E_TMP/push.out" >&2
    [[ $rc == 0 ]] || fail "git push failed (status $rc): $(tail -n 3 "$E2E_TMP/push.out" | tr '\n' ' ')"
}

# clone_repo BARE DEST LFS_URL: clone without checkout, set up LFS and lfs.url, then check
# out main (the smudge filter downloads the objects from the server).
clone_repo() {
    local bare=$1 dest=$2 url=$3 rc=0
    tgit clone -q --no-checkout "$bare" "$dest"
    tgit -C "$dest" lfs install --local >/dev/null
    tgit -C "$dest" config lfs.url "$url"
    tgit -C "$dest" checkout -q main >"$E2E_TMP/checkout.out" 2>&1 || rc=$?
    sed 's/^/checkout| /' "$E2E_TMP/checkout.out" >&2
    [[ $rc == 0 ]] || fail "git checkout in the clone failed (status $rc): $(tail -n 3 "$E2E_TMP/checkout.out" | tr '\n' ' ')"
}

# ---------------------------------------------------------------------------------------
# nginx (Debian's) as a reverse proxy in front of lfsgate (test_proxy.sh, test_browser.sh)

: "${NGINX_BIN:=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)}"

# start_nginx SITE_FILE: runs nginx in the foreground as a single process (master_process
# off: no worker is left behind when it is killed) with its own prefix dir $E2E_TMP/nginx
# (config, pid file, temp dirs, logs), on a free loopback port. SITE_FILE holds what goes
# inside http {} (upstreams, server blocks); every @PORT@ in it becomes that port. Sets
# NGINX_PID, NGINX_PORT, NGINX_ACCESS_LOG (one line per request: "METHOD URI STATUS
# up=UPSTREAM_STATUS") and NGINX_ERROR_LOG. Stopped by stop_nginx (or killed by pid when the
# test ends).
start_nginx() {
    local site=$1 dir=$E2E_TMP/nginx conf t i
    local -a temps=()
    [[ -x $NGINX_BIN ]] || fail "nginx not found ($NGINX_BIN); scripts/install-deps.sh --with-tests installs it"
    mkdir -p "$dir/logs"
    for t in client_body proxy fastcgi uwsgi scgi; do
        # only the temp paths of the modules this nginx was built with
        if [[ $t == client_body || $t == proxy ]] || ! "$NGINX_BIN" -V 2>&1 | grep -q -- "--without-http_${t}_module"; then
            mkdir -p "$dir/tmp/$t"
            temps+=("    ${t}_temp_path $dir/tmp/$t;")
        fi
    done
    NGINX_ACCESS_LOG=$dir/logs/access.log
    NGINX_ERROR_LOG=$dir/logs/error.log
    conf=$dir/nginx.conf
    for _ in 1 2 3; do
        NGINX_PORT=$(free_port)
        {
            echo "daemon off;"
            echo "master_process off;"
            echo "pid $dir/nginx.pid;"
            echo "error_log $NGINX_ERROR_LOG info;"
            echo "events { worker_connections 256; }"
            echo "http {"
            echo "    log_format e2e '\$request_method \$request_uri \$status up=\$upstream_status';"
            echo "    access_log $NGINX_ACCESS_LOG e2e;"
            printf '%s\n' "${temps[@]}"
            sed "s/@PORT@/$NGINX_PORT/g" "$site"
            echo "}"
        } >"$conf"
        : >"$NGINX_ACCESS_LOG"
        echo "starting: $NGINX_BIN -p $dir -c $conf (port $NGINX_PORT)" >&2
        "$NGINX_BIN" -p "$dir" -e "$NGINX_ERROR_LOG" -c "$conf" >"$dir/logs/stdout.log" 2>&1 </dev/null &
        NGINX_PID=$!
        bg_track "$NGINX_PID"
        for ((i = 0; i < 100; i++)); do
            port_is_open "$NGINX_PORT" 2>/dev/null && return 0
            kill -0 "$NGINX_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$NGINX_PID" 2>/dev/null || true
        wait "$NGINX_PID" 2>/dev/null || true
        grep -q 'Address already in use' "$NGINX_ERROR_LOG" 2>/dev/null || break
    done
    NGINX_PID=
    fail "nginx did not start: $(tail -n 3 "$NGINX_ERROR_LOG" "$dir/logs/stdout.log" 2>/dev/null | tr '\n' ' ')"
}

# stop_nginx: graceful stop (SIGQUIT) of the nginx started by start_nginx, by its pid;
# fails the test when it had died or does not stop within 10 s.
stop_nginx() {
    local pid=${NGINX_PID:-} i
    [[ -n $pid ]] || return 0
    NGINX_PID=
    kill -0 "$pid" 2>/dev/null || fail "nginx (pid $pid) died during the test: $(tail -n 3 "$NGINX_ERROR_LOG" | tr '\n' ' ')"
    kill -QUIT "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
        fail "nginx (pid $pid) did not exit within 10 s of SIGQUIT"
    fi
    wait "$pid" 2>/dev/null || true
}

# nginx_proxy_location PATH UPSTREAM [DIRECTIVE...]: prints a location block proxying PATH/
# to the upstream, as a portal deployment does: the X-Forwarded-* headers ProxyFix reads
# (prefix PATH), HTTP/1.1 keep-alive to the upstream, no body size limit. Each DIRECTIVE
# (a full line, ";" included) is added inside the block.
nginx_proxy_location() {
    local path=$1 upstream=$2 d
    shift 2
    cat <<EOF
    location $path/ {
        proxy_pass http://$upstream/;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Host \$http_host;
        proxy_set_header X-Forwarded-Proto \$scheme;
        proxy_set_header X-Forwarded-Port \$server_port;
        proxy_set_header X-Forwarded-Prefix $path;
        client_max_body_size 0;
        proxy_read_timeout 300s;
        proxy_send_timeout 300s;
EOF
    for d in "$@"; do
        echo "        $d"
    done
    echo "    }"
}

# ---------------------------------------------------------------------------------------
# the stand-ins of tests/fakes/ (gcs_fake.py, s3_fake.py): the test that starts one sets
# FAKE_URL and FAKE_BUCKET; FAKE_PREFIX is the path_prefix lfsgate stores under.

# start_py_fake NAME SCRIPT [ARGS...]: starts a loopback stand-in that prints its port first;
# sets FAKE_PORT (and FAKE_PID, for a test that stops it).
start_py_fake() {
    local name=$1 script=$2 out=$E2E_TMP/$1.out i pid
    shift 2
    FAKE_PORT=
    python3 "$script" --port 0 "$@" >"$out" 2>"$E2E_TMP/$name.log" </dev/null &
    pid=$!
    # shellcheck disable=SC2034 # used by the test files
    FAKE_PID=$pid
    bg_track "$pid"
    for ((i = 0; i < 100; i++)); do
        FAKE_PORT=$(head -n 1 "$out" 2>/dev/null || true)
        [[ -n $FAKE_PORT ]] && break
        kill -0 "$pid" 2>/dev/null || fail "$name exited: $(tail -n 3 "$E2E_TMP/$name.log" | tr '\n' ' ')"
        sleep 0.1
    done
    [[ -n $FAKE_PORT ]] || fail "$name did not print its port within 10 s"
}

# fake_stat URL NAME: a counter of a fake's /_fake/stats.
fake_stat() {
    curl -sS --noproxy '*' "$1/_fake/stats" | python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$2"
}

# assert_fake_stat URL NAME EXPECTED WHAT
assert_fake_stat() {
    assert_eq "$3" "$(fake_stat "$1" "$2")" "$4 ($2)"
}

# assert_fake_object ORIGINAL NAME WHAT: the stand-in stores NAME (in FAKE_BUCKET) with
# ORIGINAL's bytes.
assert_fake_object() {
    local dest=$E2E_TMP/fetched.$RANDOM
    curl -sS --noproxy '*' -f -o "$dest" "$FAKE_URL/_fake/object/$FAKE_BUCKET/$2" ||
        fail "$3: object $2 is not in the stand-in's bucket $FAKE_BUCKET"
    assert_same_file "$1" "$dest" "$3"
    rm -f "$dest"
}

# assert_fake_only NAME...: the stand-in's bucket holds exactly these objects.
assert_fake_only() {
    local seen expected
    seen=$(curl -sS --noproxy '*' "$FAKE_URL/_fake/objects" |
        python3 -c 'import json, sys; print(" ".join(sorted(k.split("/", 1)[1] for k in json.load(sys.stdin))))')
    expected=$(printf '%s\n' "$@" | sed '/^$/d' | LC_ALL=C sort | tr '\n' ' ')
    [[ "$seen " == "$expected" || ($seen == "" && $expected == "") ]] ||
        fail "objects in the stand-in's bucket: expected [${expected% }], got [$seen]"
}

# mp_client NAME URL FILE [ARGS...]: runs tests/e2e/multipart_client.py; its JSON answer goes
# to $E2E_TMP/NAME.json (for assert_json).
mp_client() {
    local name=$1
    shift
    python3 "$E2E_DIR/multipart_client.py" "$@" >"$E2E_TMP/$name.json" || fail "$name: the multipart client failed"
}

# fake_push_clone ORG REPO SIZES...: pushes one random file per size with git, checks the
# stand-in's bucket, clones into a new repo and compares the bytes.
fake_push_clone() {
    local org=$1 repo=$2 url i f oid
    shift 2
    local -a files=() names=()
    url=$(lfs_url "$org" "$repo")
    setup_repo work "$url"
    mkdir -p "$E2E_TMP/orig"
    i=0
    for size in "$@"; do
        f=f$i.bin
        random_file "$REPO_DIR/$f" "$size"
        cp "$REPO_DIR/$f" "$E2E_TMP/orig/$f"
        files+=("$f")
        i=$((i + 1))
    done
    tgit -C "$REPO_DIR" add -A
    tgit -C "$REPO_DIR" commit -q -m "LFS files"
    git_push "$REPO_DIR"
    for f in "${files[@]}"; do
        oid=$(sha256_of "$E2E_TMP/orig/$f")
        assert_fake_object "$E2E_TMP/orig/$f" "$FAKE_PREFIX/$org/$repo/$oid" "stored object of $f"
        names+=("$FAKE_PREFIX/$org/$repo/$oid")
    done
    assert_fake_only "${names[@]}"
    clone_repo "$REPO_BARE" "$E2E_TMP/clone" "$url"
    for f in "${files[@]}"; do
        assert_same_file "$E2E_TMP/orig/$f" "$E2E_TMP/clone/$f" "cloned $f"
    done
    assert_server_alive
}

# fake_streaming_range_and_corrupt_upload: after fake_push_clone org repo 1 $((3 MiB + 7)) ...
# through basic_streaming: a range of f1.bin through lfsgate (a ranged GET to the store), and a
# corrupt upload refused with nothing reaching the store, then the right bytes stored.
fake_streaming_range_and_corrupt_upload() {
    local base oid href size=$((3 * 1048576 + 7))
    local -a hdr=()
    oid=$(sha256_of "$E2E_TMP/orig/f1.bin")
    lfs_download_href "$(lfs_url org repo)" "$oid" "$size"
    http GET "$DL_HREF" "${DL_HEADERS[@]}" -H 'Range: bytes=1000000-1000099'
    assert_status 206
    assert_eq "bytes 1000000-1000099/$size" "$(http_header Content-Range)" "Content-Range"
    dd if="$E2E_TMP/orig/f1.bin" of="$E2E_TMP/range.expected" iflag=skip_bytes,count_bytes \
        skip=1000000 count=100 status=none
    assert_same_file "$E2E_TMP/range.expected" "$HTTP_BODY" "ranged download"

    base=$(lfs_url org repo)
    random_file "$E2E_TMP/a" 100000
    random_file "$E2E_TMP/b" 100000
    oid=$(sha256_of "$E2E_TMP/a")
    lfs_batch "$base" upload "$oid" 100000
    assert_status 200
    href=$(action_href "$HTTP_BODY" 0 upload)
    mapfile -t hdr < <(action_header_args "$HTTP_BODY" 0 upload)
    http PUT "$href" "${hdr[@]}" -H 'Content-Type: application/octet-stream' -T "$E2E_TMP/b"
    assert_status 422
    assert_json_error
    curl -sS --noproxy '*' -o /dev/null -w '%{http_code}' \
        "$FAKE_URL/_fake/object/$FAKE_BUCKET/$FAKE_PREFIX/org/repo/$oid" >"$E2E_TMP/code"
    assert_eq 404 "$(cat "$E2E_TMP/code")" "the corrupt object in the store"
    lfs_upload "$base" "$E2E_TMP/a"
    assert_fake_object "$E2E_TMP/a" "$FAKE_PREFIX/org/repo/$oid" "object uploaded after the corrupt attempt"
}

# ---------------------------------------------------------------------------------------
# Azurite (npm azurite in tests/e2e/node_modules), for the Azure and browser tests.

AZURITE_BIN=$E2E_DIR/node_modules/.bin/azurite-blob
AZ_TOOL=$E2E_DIR/azurite.py
# Azurite's well-known development account key (public, documented by Microsoft).
DEV_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

# start_azurite: in-memory Azurite on a free port, container $CONTAINER created; sets
# AZ_PORT, AZ_ENDPOINT (path-style, with the account) and AZ_CS (connection string).
start_azurite() {
    local i pid
    mkdir -p "$E2E_TMP/azurite"
    for _ in 1 2 3; do
        AZ_PORT=$(free_port)
        (cd "$E2E_TMP/azurite" && exec "$AZURITE_BIN" --blobHost 127.0.0.1 --blobPort "$AZ_PORT" \
            --inMemoryPersistence --disableTelemetry --skipApiVersionCheck --silent) \
            >"$E2E_TMP/azurite.log" 2>&1 </dev/null &
        pid=$!
        bg_track "$pid"
        for ((i = 0; i < 300; i++)); do
            port_is_open "$AZ_PORT" 2>/dev/null && break
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if port_is_open "$AZ_PORT" 2>/dev/null; then
            AZ_ENDPOINT=http://127.0.0.1:$AZ_PORT/devstoreaccount1
            AZ_CS="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$DEV_KEY;BlobEndpoint=$AZ_ENDPOINT;"
            python3 "$AZ_TOOL" mkcontainer "$AZ_ENDPOINT" "$CONTAINER"
            return 0
        fi
        kill -KILL "$pid" 2>/dev/null || true
    done
    fail "azurite did not start: $(tail -n 3 "$E2E_TMP/azurite.log" | tr '\n' ' ')"
}

# wait_for_log FILE FIXED_STRING [COUNT [SECONDS]]: waits until FILE holds COUNT (default 1)
# lines containing FIXED_STRING; fails the test after SECONDS (default 10). For what the server
# does in the background (a reload), instead of sleeping and hoping.
wait_for_log() {
    local file=$1 text=$2 want=${3:-1} deadline=$((SECONDS + ${4:-10})) n
    while :; do
        n=$(grep -cF -- "$text" "$file" 2>/dev/null) || n=0
        ((n >= want)) && return 0
        ((SECONDS < deadline)) || fail "waited ${4:-10}s for $want line(s) with \"$text\" in ${file##*/}; found $n"
        sleep 0.05
    done
}

# azure_config FILE FACTORY [ADAPTER_EXTRA_YAML] [CONNECTION_STRING]: one "basic" adapter
# (plus whatever EXTRA adds under TRANSFER_ADAPTERS) over Azure storage: container
# $CONTAINER, path_prefix $PREFIX (both set by the test file), start_azurite's $AZ_CS.
azure_config() {
    local file=$1 factory=$2 extra=${3:-} cs=${4:-$AZ_CS}
    cat >"$file" <<EOF
AUTH_PROVIDERS:
  - giftless.auth.allow_anon:read_write
TRANSFER_ADAPTERS:
  basic:
    factory: $factory
    options:
      storage_class: giftless.storage.azure:AzureBlobsStorage
      storage_options:
        connection_string: "$cs"
        container_name: $CONTAINER
        path_prefix: /$PREFIX/
$extra
EOF
}
