#!/usr/bin/env bash
# Instructions (callgrind Ir, not time: stable on a busy or shared machine) spent on upload
# batches of 1 and of 100 objects, and on checking the action tokens they carry.
#
# lfsgate runs under callgrind with one worker thread, anonymous read-write auth, local
# storage and the HS256 pre-authorized action provider, so every object of an upload batch
# (none is stored) gets an upload and a verify action with two freshly minted tokens. BATCHES
# (default 20) identical batches are POSTed per size, then as many verify requests carrying
# one of those tokens (Bearer); the server is stopped with SIGINT and callgrind_annotate's
# inclusive counts are divided per batch, per object, per token and per request:
#   lfs_handle_batch           parse, auth, storage lookups, actions, hrefs, minting
#   lfs_batch_render           the JSON answer
#   lfs_auth_jwt_mint          minting (2 tokens per object)
#   lfs_auth_jwt_authenticate  checking an action token (verify requests, no cache)
# Counts with and without SHA extensions differ: valgrind hides SHA-NI from OpenSSL, so the
# HMAC part is what the software SHA-256 costs.
#
# Usage: bench/batch_instructions.sh [LFSGATE_BIN]   (default: builds build-release)
# Environment: BATCHES (20), KEEP=1 keeps the work directory (callgrind outputs) and prints it.
# Needs valgrind (callgrind, callgrind_annotate), curl, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
batches=${BATCHES:-20}

for tool in valgrind callgrind_annotate curl python3; do
    command -v "$tool" >/dev/null || { echo "$tool is needed" >&2; exit 1; }
done
bench_build "${1:-}"
bench_workdir
pid=

cat >"$work/lfsgate.yaml" <<EOF
AUTH_PROVIDERS: [giftless.auth.allow_anon:read_write]
TRANSFER_ADAPTERS: {basic: {factory: giftless.transfer.basic_streaming:factory, options: {storage_options: {path: $work/store}}}}
PRE_AUTHORIZED_ACTION_PROVIDER: {factory: giftless.auth.jwt:factory, options: {algorithm: HS256, private_key: "0123456789abcdef0123456789abcdef"}}
SERVER: {access_log: false, activity_log: false}
EOF

# inclusive Ir of FUNCTION in annotate output FILE; fails (with a message) when FUNCTION is
# not in it: it never ran, or the compiler inlined it, and 0 would be a measurement not made
ir_of() {
    awk -v f="$2" '{ for (i = 2; i <= NF; i++) if ($i ~ (":" f "$")) { gsub(",", "", $1); print $1; found = 1; exit } }
        END { if (!found) { printf "batch_instructions.sh: %s is not in the callgrind profile %s (never ran, or inlined); no figures\n", f, FILENAME > "/dev/stderr"; exit 1 } }' "$1"
}

# measure N: one callgrind run with BATCHES upload batches of N objects and BATCHES verify
# requests with an action token; prints the per-unit counts
measure() {
    local n=$1 port out=$work/cg.$1.out ann=$work/cg.$1.txt base code
    port=$(free_port)
    valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" --config "$work/lfsgate.yaml" \
        --listen "127.0.0.1:$port" --threads 1 >"$work/lfsgate.$n.log" 2>&1 &
    pid=$!
    bench_track "$pid"
    for _ in $(seq 300); do
        curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break
        kill -0 "$pid" 2>/dev/null || { cat "$work/lfsgate.$n.log" >&2; exit 1; }
        sleep 0.1
    done
    python3 - "$n" >"$work/body.$n.json" <<'EOF'
import hashlib, json, sys
n = int(sys.argv[1])
print(json.dumps({"operation": "upload", "objects": [
    {"oid": hashlib.sha256(b"batch bench %d" % i).hexdigest(), "size": 100} for i in range(n)]}))
EOF
    base=http://127.0.0.1:$port/o/r.git/info/lfs
    for _ in $(seq "$batches"); do
        code=$(curl -s -o "$work/answer.$n.json" -w '%{http_code}' -X POST \
            -H 'Content-Type: application/vnd.git-lfs+json' -H 'Accept: application/vnd.git-lfs+json' \
            --data-binary @"$work/body.$n.json" "$base/objects/batch")
        [ "$code" = 200 ] || { echo "batch: HTTP $code: $(head -c 300 "$work/answer.$n.json")" >&2; exit 1; }
    done
    # the verify action of the first object: its href, token and the body to send
    python3 - "$work/answer.$n.json" "$n" >"$work/verify.$n" <<'EOF'
import json, sys
objs = json.load(open(sys.argv[1]))["objects"]
assert len(objs) == int(sys.argv[2]), "wrong number of objects in the answer"
for o in objs:
    a = o["actions"]
    assert "Bearer " in a["upload"]["header"]["Authorization"], "upload action without a token"
    assert "Bearer " in a["verify"]["header"]["Authorization"], "verify action without a token"
v = objs[0]["actions"]["verify"]
print(v["href"])
print(v["header"]["Authorization"])
print(json.dumps({"oid": objs[0]["oid"], "size": objs[0]["size"]}))
EOF
    local href auth vbody
    { read -r href; read -r auth; read -r vbody; } <"$work/verify.$n"
    for _ in $(seq "$batches"); do
        code=$(curl -s -o "$work/vanswer.$n" -w '%{http_code}' -X POST -H "Authorization: $auth" \
            -H 'Content-Type: application/vnd.git-lfs+json' -H 'Accept: application/vnd.git-lfs+json' \
            --data-binary "$vbody" "$href")
        # the object was never uploaded: 404 after a successful token check
        [ "$code" = 404 ] || { echo "verify: HTTP $code: $(head -c 300 "$work/vanswer.$n")" >&2; exit 1; }
    done
    kill -INT "$pid"
    wait "$pid" || true
    bench_untrack "$pid"
    pid=
    [ -s "$out" ] || { echo "callgrind wrote no profile" >&2; cat "$work/lfsgate.$n.log" >&2; exit 1; }
    callgrind_annotate --inclusive=yes --threshold=100 "$out" >"$ann"
    local batch render mint auth_ir
    batch=$(ir_of "$ann" lfs_handle_batch) || exit 1
    render=$(ir_of "$ann" lfs_batch_render) || exit 1
    mint=$(ir_of "$ann" lfs_auth_jwt_mint) || exit 1
    auth_ir=$(ir_of "$ann" lfs_auth_jwt_authenticate) || exit 1
    awk -v n="$n" -v b="$batches" -v batch="$batch" -v render="$render" -v mint="$mint" -v auth="$auth_ir" 'BEGIN {
        printf "upload batch of %d object%s (%d batches):\n", n, (n > 1 ? "s" : ""), b
        printf "  lfs_handle_batch    %12.0f Ir/batch  %9.0f Ir/object\n", batch / b, batch / b / n
        printf "  lfs_batch_render    %12.0f Ir/batch  %9.0f Ir/object\n", render / b, render / b / n
        printf "  lfs_auth_jwt_mint   %12.0f Ir/batch  %9.0f Ir/token\n", mint / b, mint / b / (2 * n)
        # every request (batches and verifies) goes through the action token provider first
        printf "  action token check  %12.0f Ir/verify request (lfs_auth_jwt_authenticate)\n", auth / b
    }'
}

echo "$("$bin" --version 2>/dev/null | head -n 1); $(valgrind --version)"
measure 1
measure 100
