#!/usr/bin/env bash
# The cost of one SigV4 signature (callgrind Ir, not time: stable on a busy or shared
# machine): lfsgate runs under callgrind with one worker thread and the S3 backend
# (basic_external) against tests/fakes/s3_fake.py; BATCHES upload batches of 100 fresh
# objects each are POSTed (a batch of 100 lists the repository once, a header-signed
# ListObjectsV2, and presigns a PUT with x-amz-checksum-sha256 for every object), then the
# inclusive Ir of lfs_s3_sign is divided by the signatures made: 101 per batch. It is HMAC and
# SHA-256 over a few hundred bytes: well under 10 µs. valgrind hides SHA-NI from OpenSSL, so
# this is what the software SHA-256 costs.
# Usage: bench/s3_presign.sh [LFSGATE_BIN]   (default: builds build-release)
# Environment: BATCHES (10), KEEP=1 keeps the work directory (callgrind output) and prints it.
# Needs valgrind (callgrind, callgrind_annotate), curl, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
batches=${BATCHES:-10}
bench_need_tools valgrind callgrind_annotate curl python3
bench_build "${1:-}"
bench_workdir
export AWS_ACCESS_KEY_ID=AKIDBENCH AWS_SECRET_ACCESS_KEY=bench-secret AWS_REGION=us-east-1
unset AWS_SESSION_TOKEN AWS_WEB_IDENTITY_TOKEN_FILE AWS_CONTAINER_CREDENTIALS_FULL_URI

start_s3_fake s3
cat >"$work/lfsgate.yaml" <<EOF
AUTH_PROVIDERS: [giftless.auth.allow_anon:read_write]
TRANSFER_ADAPTERS: {basic: {factory: giftless.transfer.basic_external:factory, options: {storage_class: s3, storage_options: {bucket_name: bench, endpoint: "$s3_url"}}}}
SERVER: {access_log: false, activity_log: false}
EOF

port=$(free_port)
valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" "$bin" --config "$work/lfsgate.yaml" \
    --listen "127.0.0.1:$port" --threads 1 >"$work/lfsgate.log" 2>&1 &
pid=$!
bench_track "$pid"
wait_until "lfsgate did not start under callgrind" "$pid" curl -s -o /dev/null "http://127.0.0.1:$port/healthz" ||
    bench_die "$(tail -n 5 "$work/lfsgate.log")"
for _ in $(seq "$batches"); do
    python3 -c 'import json, os; print(json.dumps({"operation": "upload", "objects": [
        {"oid": os.urandom(32).hex(), "size": 100} for _ in range(100)]}))' >"$work/body.json"
    code=$(curl -s -o "$work/answer.json" -w '%{http_code}' -X POST \
        -H 'Content-Type: application/vnd.git-lfs+json' -H 'Accept: application/vnd.git-lfs+json' \
        --data-binary @"$work/body.json" "http://127.0.0.1:$port/o/r.git/info/lfs/objects/batch")
    [ "$code" = 200 ] || bench_die "batch: HTTP $code: $(head -c 300 "$work/answer.json")"
    python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
assert all("X-Amz-Signature=" in o["actions"]["upload"]["href"] for o in d["objects"]), "an object without a presigned URL"' \
        "$work/answer.json" || bench_die "the batch answer lacks presigned URLs"
done
kill -INT "$pid"
wait "$pid" || true
bench_untrack "$pid"
[ -s "$work/cg.out" ] || bench_die "callgrind wrote no profile: $(tail -n 5 "$work/lfsgate.log")"
callgrind_annotate --inclusive=yes --threshold=100 "$work/cg.out" >"$work/cg.txt"
ir=$(awk '{ for (i = 2; i <= NF; i++) if ($i ~ /:lfs_s3_sign$/) { gsub(",", "", $1); print $1; exit } }' "$work/cg.txt")
[ -n "$ir" ] || bench_die "lfs_s3_sign does not appear in the profile"
echo "$(valgrind --version); $batches batches of 100 objects"
awk -v ir="$ir" -v n=$((batches * 101)) 'BEGIN {
    printf "lfs_s3_sign: %.0f Ir per signature (%d signatures); at 1 to 3 instructions per ns: %.1f to %.1f us\n",
        ir / n, n, ir / n / 1000, ir / n / 3000 }'
