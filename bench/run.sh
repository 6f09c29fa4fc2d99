#!/usr/bin/env bash
# The benchmark of issue 7 in one command: builds build-release, starts on loopback what it
# needs (lfsgate, Debian's h2o as the reference static-file server, Azurite) and prints one
# table of absolute figures and of ratios to a reference measured in the same run:
#   - 1- and 100-object upload batches with an RS256 JWT (local storage, HS256 action
#     tokens): wrk req/s (objects/s for 100) next to h2o serving a static file of the same
#     byte size as the real answer (captured with curl). wrk sends one token all along, so
#     with the token cache on (the default) its signature is checked once: those rows say
#     "cached token"; a third lfsgate with the cache off (token_cache_size: 0) checks the
#     RS256 signature on every request, as a fresh token per request would cost. Every
#     answer is checked by a wrk script (per-object errors count as errors), h2o's too;
#   - streaming upload of SIZE_MIB (1 GiB) with curl -T (empty Expect:) next to sha256sum of
#     the same file, openssl dgst -sha256 of it, and dd bs=1M conv=fdatasync copying it to the
#     store's filesystem (what the disk does when the data must be durable, as an upload's),
#     and the download (curl -o /dev/null) next to h2o serving that file, both from the page
#     cache; the file and the store share a disk filesystem;
#   - lfsgate's memory: idle VmRSS after start-up and one batch, RssAnon growth during each
#     upload (/proc/PID/status sampled every 50 ms; the largest of the REPS uploads) and the
#     peak RSS (VmHWM) after the first upload;
#   - Azure (basic_external, anonymous, Azurite on loopback): median latency of sequential
#     100-object vs 1-object upload batches (fresh random oids every batch), directly and
#     through a proxy holding every Azurite answer 20 ms, each in a new repository and in a
#     repository of AZURE_LARGE_OBJECTS (2000) objects. What the store receives differs: a
#     1-object batch costs one HEAD; a 100-object batch in the new repository costs one List
#     Blobs (the listing shortcut: it covers the whole repository, no HEAD at all), in the
#     large one, which a listing does not cover, 100 concurrent HEADs. Only the large rows
#     measure the per-object lookups. The store floor (100 concurrent HEADs straight to
#     Azurite, no lfsgate) is given with each;
#   - errors: non-2xx answers and socket errors summed over every wrk run.
# Every case runs REPS rounds, interleaved across the servers it compares; the table gives
# medians. lfsgate and h2o use one worker thread per CPU on the same machine as the clients,
# access and activity logs off. Progress goes to stderr, the table to stdout. The exit
# status is 0 when everything was measured, whatever the verdicts; non-zero when a
# measurement failed (a server that does not start, a wrong answer, a missing tool).
#
# Usage: bench/run.sh [LFSGATE_BIN]     (default: builds build-release)
# Environment: REPS (3), DURATION (wrk -d, 5s), CONNECTIONS (wrk -c, 16), THREADS (wrk -t, 2),
#   SIZE_MIB (1024), AZURE_RUNS (batches of each size per round, 10), AZURE_LARGE_OBJECTS
#   (2000), SKIP_AZURE=1,
#   SKIP_STREAM=1, KEEP=1 (keep the work directory).
# Tools (wrk, h2o, curl, python3-jwt, python3-cryptography, Azurite) are installed by
# scripts/install-deps.sh --with-tests and npm ci in tests/e2e when missing.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
reps=${REPS:-3}
wrk_duration=${DURATION:-5s}
wrk_conns=${CONNECTIONS:-16}
wrk_threads=${THREADS:-2}
mib=${SIZE_MIB:-1024}
az_runs=${AZURE_RUNS:-10}
skip_azure=${SKIP_AZURE:-0}
skip_stream=${SKIP_STREAM:-0}
wrk_strict=0 # wrk errors are counted and reported in the table
rtt_ms=20
az_large_objects=${AZURE_LARGE_OBJECTS:-2000}

on_err() {
    [ "$BASH_SUBSHELL" != 0 ] || echo "run.sh: measurement failed at line $1 ($2); no table" >&2
}
trap 'on_err "$LINENO" "$BASH_COMMAND"' ERR
for v in REPS:reps SIZE_MIB:mib AZURE_RUNS:az_runs AZURE_LARGE_OBJECTS:az_large_objects CONNECTIONS:wrk_conns THREADS:wrk_threads; do
    val=${v#*:}
    [[ ${!val} =~ ^[1-9][0-9]*$ ]] || bench_die "${v%:*} must be a positive integer, not '${!val}'"
done
[[ $wrk_duration =~ ^[0-9]+[smh]?$ ]] || bench_die "DURATION must look like 5s, not '$wrk_duration'"

bench_need_tools wrk h2o curl python3 sha256sum openssl dd awk
[ "$skip_azure" = 1 ] || bench_need_tools node npm
bench_jwt_python
[ -n "${1:-}" ] || log "building build-release"
bench_build "${1:-}"
bench_workdir
: >"$work/table"
: >"$work/wrk-errors"
log "work directory $work ($(stat -f -c %T "$work"))"
if [ "$skip_stream" != 1 ]; then
    need=$((3 * mib + 256))
    have=$(($(df -Pk "$work" | awk 'NR == 2 { print $4 }') / 1024))
    [ "$have" -ge "$need" ] || bench_die "$work has $have MiB free; SIZE_MIB=$mib needs $need MiB"
fi

# -----------------------------------------------------------------------------------------
# Machine and versions (the header of the table).
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
lfs_version=$("$bin" --version 2>&1 | head -n 1)
h2o_version=$(h2o --version 2>&1 | head -n 1)
wrk_version=$({ wrk --version 2>&1 || true; } | awk 'NR == 1 { print $1, $2 }')
# (plumbing only: nothing here takes the index lock of the repository)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
GIT_OPTIONAL_LOCKS=0 git diff-index --quiet HEAD -- 2>/dev/null || commit="$commit, work tree changed"
load_start=$(cut -d ' ' -f 1-3 /proc/loadavg)

# -----------------------------------------------------------------------------------------
# Shared pieces: an RS256 key pair and a token, h2o on $work/www.
mint() { "$py" tests/e2e/mint_jwt.py "$@"; }
mint keygen "$work/rsa.pem" "$work/rsa.pub.pem"
token=$(mint mint --key "$work/rsa.pem" --iss https://portal.bench.invalid --aud lfsgate-bench \
    --scope 'obj:bench/repo/*' --exp-in 7200 --sub bench-user --email bench@bench.invalid)
mkdir -p "$work/www"
start_h2o "$work/www"
log "h2o on port $h2o_port, $(nproc) threads"

# server_config NAME: RS256 JWT (token cache on, the default) + local storage + HS256 action
# tokens, logs off; writes $work/NAME.yaml
server_config() {
    mkdir -p "$work/spool-$1"
    local_config "$work/$1.yaml" "$(jwt_auth_yaml "$work/rsa.pub.pem")" "$work/store-$1" \
        "{access_log: false, activity_log: false, spool_dir: $work/spool-$1, max_upload_size: $((mib + 64))M}"
}

batch_path=/bench/repo.git/info/lfs/objects/batch
# batch_body N FILE: an upload batch request for N objects that are not stored
batch_body() {
    python3 - "$1" >"$2" <<'EOF'
import hashlib, json, sys
n = int(sys.argv[1])
print(json.dumps({"operation": "upload", "transfers": ["basic"], "ref": {"name": "refs/heads/main"},
                  "objects": [{"oid": hashlib.sha256(b"run.sh batch object %d" % i).hexdigest(), "size": 123456}
                              for i in range(n)], "hash_algo": "sha256"}))
EOF
}
# post_batch PORT BODY_FILE OUT [TOKEN]: one batch request; prints the HTTP status
post_batch() {
    curl -s -o "$3" -w '%{http_code}' -X POST -H 'Content-Type: application/vnd.git-lfs+json' \
        -H 'Accept: application/vnd.git-lfs+json' ${4:+-H "Authorization: Bearer $4"} \
        --data-binary @"$2" "http://127.0.0.1:$1$batch_path"
}

# -----------------------------------------------------------------------------------------
# 1- and 100-object RS256 batches vs h2o static files of the answers' sizes.
log "RS256 batches: starting lfsgate"
server_config jwt
start_lfsgate jwt "$work/jwt.yaml"
jwt_port=$started_port
jwt_pid=$started_pid
mkdir -p "$work/spool-nocache"
local_config "$work/nocache.yaml" "$(jwt_auth_yaml "$work/rsa.pub.pem" "      token_cache_size: 0")" \
    "$work/store-nocache" "{access_log: false, activity_log: false, spool_dir: $work/spool-nocache}"
start_lfsgate nocache "$work/nocache.yaml"
nocache_port=$started_port
nocache_pid=$started_pid
wrk_check_lua >"$work/check.lua"
declare -A bsize
for n in 1 100; do
    batch_body "$n" "$work/body-$n.json"
    code=$(post_batch "$jwt_port" "$work/body-$n.json" "$work/answer-$n.json" "$token")
    python3 - "$work/answer-$n.json" "$n" "$code" <<'EOF' || bench_die "the $n-object batch answer is wrong"
import json, sys
path, n, code = sys.argv[1], int(sys.argv[2]), sys.argv[3]
raw = open(path, "rb").read()
try:
    objs = json.loads(raw)["objects"]
    ok = code == "200" and len(objs) == n and all({"upload", "verify"} <= set(o["actions"]) for o in objs)
except (ValueError, KeyError, TypeError):
    ok = False
if not ok:
    sys.exit(f"{n}-object batch: expected 200 with upload and verify actions per object, got {code}: {raw[:300]!r}")
EOF
    bsize[$n]=$(stat -c %s "$work/answer-$n.json")
    cp "$work/answer-$n.json" "$work/www/batch-$n.json"
    got=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' "http://127.0.0.1:$h2o_port/batch-$n.json")
    [ "$got" = "200 ${bsize[$n]}" ] || bench_die "h2o does not serve the ${bsize[$n]}-byte answer: $got"
    wrk_lua "$work/jwt-$n.lua" "$work/body-$n.json" "$token"
done
code=$(post_batch "$jwt_port" "$work/body-1.json" /dev/null)
[ "$code" = 401 ] || bench_die "lfsgate answers a batch without a token with $code, not 401"

code=$(post_batch "$nocache_port" "$work/body-1.json" "$work/answer-nc.json" "$token")
if [ "$code" != 200 ] || ! grep -q '"upload"' "$work/answer-nc.json"; then
    bench_die "lfsgate without token cache: the 1-object batch got $code: $(head -c 300 "$work/answer-nc.json")"
fi

for n in 1 100; do # warm-up, counted in the errors too
    wrk_duration=1s bench_wrk "h2o-$n" "http://127.0.0.1:$h2o_port/batch-$n.json" "$work/check.lua" >/dev/null
    wrk_duration=1s bench_wrk "lfsgate-$n" "http://127.0.0.1:$jwt_port$batch_path" "$work/jwt-$n.lua" >/dev/null
done
wrk_duration=1s bench_wrk "lfsgate-nocache-1" "http://127.0.0.1:$nocache_port$batch_path" "$work/jwt-1.lua" >/dev/null
for r in $(seq "$reps"); do
    for n in 1 100; do
        h=$(bench_wrk "h2o-$n" "http://127.0.0.1:$h2o_port/batch-$n.json" "$work/check.lua")
        l=$(bench_wrk "lfsgate-$n" "http://127.0.0.1:$jwt_port$batch_path" "$work/jwt-$n.lua")
        echo "$h" >>"$work/h2o-$n.rates"
        echo "$l" >>"$work/lfsgate-$n.rates"
        log "round $r/$reps, $n-object batch: lfsgate $(num %.0f "$l") req/s, h2o ($(num %d "${bsize[$n]}") B file) $(num %.0f "$h") req/s"
    done
    l=$(bench_wrk "lfsgate-nocache-1" "http://127.0.0.1:$nocache_port$batch_path" "$work/jwt-1.lua")
    echo "$l" >>"$work/lfsgate-nocache-1.rates"
    log "round $r/$reps, 1-object batch, token cache off: lfsgate $(num %.0f "$l") req/s"
done
bench_stop "$jwt_pid"
bench_stop "$nocache_pid"
for n in 1 100; do
    h=$(median "$work/h2o-$n.rates")
    l=$(median "$work/lfsgate-$n.rates")
    if [ "$n" = 1 ]; then
        ratio=$(div "$l" "$h")
        row "1-object upload batch, RS256, cached token, local" "$(num %.0f "$l") req/s" \
            "$(num %.0f "$h") req/s (h2o, ${bsize[1]} B)" "$(num %.2fx "$ratio")" ">= 0.33x" "$(verdict "$ratio" ge 0.33)"
        l=$(median "$work/lfsgate-nocache-1.rates")
        row "1-object upload batch, RS256 verified per request (cache off), local" "$(num %.0f "$l") req/s" \
            "$(num %.0f "$h") req/s (h2o, ${bsize[1]} B)" "$(num %.2fx "$(div "$l" "$h")")" "-" "info"
    else
        objs=$(awk -v l="$l" 'BEGIN { printf "%.3f", l * 100 }')
        ratio=$(div "$objs" "$h")
        row "100-object upload batch, RS256, cached token, local" "$(num %.0f "$objs") objects/s ($(num %.0f "$l") req/s)" \
            "$(num %.0f "$h") req/s (h2o, ${bsize[100]} B)" "$(num %.2fx "$ratio")" ">= 1.5x" "$(verdict "$ratio" ge 1.5)"
    fi
done

# -----------------------------------------------------------------------------------------
# Streaming upload and download of SIZE_MIB, and lfsgate's memory.
# sample_mem PID OUT: "RssAnon VmRSS VmHWM RssFile RssShmem" (KiB) every 50 ms while PID lives
sample_mem() {
    local k v _ a r h f s
    while kill -0 "$1" 2>/dev/null; do
        a=0 r=0 h=0 f=0 s=0
        while read -r k v _; do
            case $k in
            RssAnon:) a=$v ;;
            VmRSS:) r=$v ;;
            VmHWM:) h=$v ;;
            RssFile:) f=$v ;;
            RssShmem:) s=$v ;;
            esac
        done <"/proc/$1/status" || break
        echo "$a $r $h $f $s"
        sleep 0.05
    done >"$2"
}
status_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

if [ "$skip_stream" != 1 ]; then
    label="$mib MiB"
    [ "$mib" != 1024 ] || label="1 GiB"
    log "streaming: writing a $label file of random bytes"
    blob=$work/www/blob.bin
    head -c $((mib * 1024 * 1024)) /dev/urandom >"$blob"
    oid=$(sha256sum "$blob" | cut -c 1-64)
    bytes=$((mib * 1024 * 1024))

    server_config mem
    start_lfsgate mem "$work/mem.yaml"
    mem_pid=$started_pid
    mem_port=$started_port
    code=$(post_batch "$mem_port" "$work/body-1.json" /dev/null "$token")
    [ "$code" = 200 ] || bench_die "warm-up batch: HTTP $code"
    sleep 1
    idle_rss=$(status_kib "$mem_pid" VmRSS)
    idle_anon=$(status_kib "$mem_pid" RssAnon)
    idle_file=$(status_kib "$mem_pid" RssFile)
    log "lfsgate idle after one batch: VmRSS $idle_rss KiB (RssAnon $idle_anon, RssFile $idle_file)"
    obj_url=http://127.0.0.1:$mem_port/bench/repo.git/info/lfs/objects/storage/$oid
    stored=$work/store-mem/bench/repo/$oid
    hwm_first=
    for r in $(seq "$reps"); do
        t0=$EPOCHREALTIME
        got=$(sha256sum "$blob" | cut -c 1-64)
        t1=$EPOCHREALTIME
        [ "$got" = "$oid" ] || bench_die "sha256sum changed its mind about $blob"
        sha=$(awk -v m="$mib" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", m / (b - a) }')
        echo "$sha" >>"$work/sha.rates"
        t0=$EPOCHREALTIME
        got=$(openssl dgst -sha256 -r "$blob" | cut -c 1-64)
        t1=$EPOCHREALTIME
        [ "$got" = "$oid" ] || bench_die "openssl dgst disagrees with sha256sum about $blob"
        awk -v m="$mib" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", m / (b - a) }' >>"$work/openssl.rates"
        # what the disk does: the same bytes copied to a file on the store's filesystem and
        # made durable, as the upload must
        dd_rate "$blob" "$work/dd.copy" "$mib" >>"$work/dd.rates"

        rm -f "$stored"
        sample_mem "$mem_pid" "$work/mem-$r.samples" &
        sampler=$!
        bench_track "$sampler"
        for _ in $(seq 50); do [ -s "$work/mem-$r.samples" ] && break; sleep 0.01; done
        got=$(curl -s -o "$work/put.out" -w '%{http_code} %{time_total}' -T "$blob" -H 'Expect:' \
            -H "Authorization: Bearer $token" "$obj_url")
        sleep 0.1 # one more sample after the answer
        bench_stop "$sampler"
        [[ $got == 2* ]] || bench_die "upload: HTTP ${got%% *}: $(head -c 300 "$work/put.out")"
        [ "$(stat -c %s "$stored" 2>/dev/null)" = "$bytes" ] || bench_die "upload: $stored is not there with $bytes bytes"
        up=$(awk -v m="$mib" -v t="${got#* }" 'BEGIN { printf "%.3f", m / t }')
        echo "$up" >>"$work/up.rates"
        awk 'NR == 1 { a0 = $1 } { if ($1 > a) a = $1; if ($2 > r) r = $2; if ($4 > f) f = $4; if ($5 > s) s = $5 }
            END { printf "%d %d %d %d %d\n", a - a0, a, r, f, s }' "$work/mem-$r.samples" >"$work/mem-$r.max"
        read -r growth anon_max rss_max file_max shmem_max <"$work/mem-$r.max"
        echo "$growth" >>"$work/growth.kib"
        echo "$file_max" >>"$work/rssfile.kib"
        [ -n "$hwm_first" ] || hwm_first=$(status_kib "$mem_pid" VmHWM)
        sync
        log "round $r/$reps, upload: lfsgate $(num %.0f "$up") MiB/s, sha256sum $(num %.0f "$sha") MiB/s;" \
            "RssAnon +$growth KiB (max $anon_max), max VmRSS $rss_max KiB (RssFile $file_max, RssShmem $shmem_max)"

        got=$(curl -s -o /dev/null -w '%{http_code} %{size_download} %{time_total}' \
            -H "Authorization: Bearer $token" "$obj_url")
        [ "${got% *}" = "200 $bytes" ] || bench_die "download through lfsgate: got '$got', expected 200 and $bytes bytes"
        down=$(awk -v m="$mib" -v t="${got##* }" 'BEGIN { printf "%.3f", m / t }')
        got=$(curl -s -o /dev/null -w '%{http_code} %{size_download} %{time_total}' "http://127.0.0.1:$h2o_port/blob.bin")
        [ "${got% *}" = "200 $bytes" ] || bench_die "download from h2o: got '$got', expected 200 and $bytes bytes"
        h2o_down=$(awk -v m="$mib" -v t="${got##* }" 'BEGIN { printf "%.3f", m / t }')
        echo "$down" >>"$work/down.rates"
        echo "$h2o_down" >>"$work/h2o-down.rates"
        log "round $r/$reps, download: lfsgate $(num %.0f "$down") MiB/s, h2o $(num %.0f "$h2o_down") MiB/s"
    done
    hwm_end=$(status_kib "$mem_pid" VmHWM)
    bench_stop "$mem_pid"
    rm -f "$blob" "$stored"

    up=$(median "$work/up.rates")
    sha=$(median "$work/sha.rates")
    ratio=$(div "$up" "$sha")
    row "streaming upload of $label, local" "$(num %.0f "$up") MiB/s" "$(num %.0f "$sha") MiB/s (sha256sum)" \
        "$(num %.2fx "$ratio")" ">= 0.33x" "$(verdict "$ratio" ge 0.33)"
    ossl=$(median "$work/openssl.rates")
    row "  same upload vs openssl dgst -sha256" "-" "$(num %.0f "$ossl") MiB/s (openssl)" \
        "$(num %.2fx "$(div "$up" "$ossl")")" "-" "info"
    ddr=$(median "$work/dd.rates")
    ratio=$(div "$up" "$ddr")
    row "  same upload (durable) vs dd bs=1M conv=fdatasync" "-" "$(num %.0f "$ddr") MiB/s (dd)" \
        "$(num %.2fx "$ratio")" ">= 0.8x" "$(verdict "$ratio" ge 0.8)"
    down=$(median "$work/down.rates")
    h2o_down=$(median "$work/h2o-down.rates")
    ratio=$(div "$down" "$h2o_down")
    row "streaming download of $label, local" "$(num %.0f "$down") MiB/s" "$(num %.0f "$h2o_down") MiB/s (h2o)" \
        "$(num %.2fx "$ratio")" ">= 0.70x" "$(verdict "$ratio" ge 0.70)"
    v=$(awk -v k="$idle_rss" 'BEGIN { printf "%.3f", k / 1024 }')
    row "memory: idle VmRSS" "$(num '%.1f MiB' "$v")" \
        "$(awk -v a="$idle_anon" -v f="$idle_file" 'BEGIN { printf "RssAnon %.1f + RssFile %.1f MiB", a / 1024, f / 1024 }')" \
        "-" "< 10 MiB" "$(verdict "$v" lt 10)"
    v=$(awk '{ if (NR == 1 || $1 > m) m = $1 } END { printf "%.3f", m / 1024 }' "$work/growth.kib")
    row "memory: RssAnon growth during a $label upload (max of $reps)" "$(num '%.1f MiB' "$v")" \
        "$(num 'from %.1f MiB at idle' "$(awk -v k="$idle_anon" 'BEGIN { print k / 1024 }')")" "-" "< 64 MiB" "$(verdict "$v" lt 64)"
    row "memory: peak RSS (VmHWM) after the 1st upload" "$(num '%.1f MiB' "$(awk -v k="$hwm_first" 'BEGIN { print k / 1024 }')")" \
        "$(awk '{ if ($1 > m) m = $1 } END { printf "RssFile up to %.1f MiB in uploads", m / 1024 }' "$work/rssfile.kib")" \
        "-" "report" "info"
    log "lfsgate VmHWM after all uploads and downloads: $hwm_end KiB"
fi

# -----------------------------------------------------------------------------------------
# Azure: 100- vs 1-object upload batch latency against Azurite, direct and with 20 ms RTT.
if [ "$skip_azure" != 1 ]; then
    log "Azure: starting Azurite, the ${rtt_ms} ms delay proxy and two lfsgate"
    start_azurite
    start_delay_proxy "$az_port" "$rtt_ms"
    declare -A az_url floor
    for setup in direct rtt; do
        store_port=$az_port
        [ "$setup" = direct ] || store_port=$proxy_port
        azure_config "$work/az-$setup.yaml" "http://127.0.0.1:$store_port/devstoreaccount1" \
            "SERVER: {access_log: false, activity_log: false}"
        start_lfsgate "az-$setup" "$work/az-$setup.yaml"
        az_url[$setup]=http://127.0.0.1:$started_port/org/repo.git/info/lfs/objects/batch
        floor[$setup]=$(python3 bench/azure_floor.py --raw "$store_port" $((az_runs * reps)) 100 | awk '{ print $2 }')
        log "Azure ($setup): store floor, 100 concurrent HEADs straight to the store: $(num %.2f "${floor[$setup]}") ms"
    done
    # A repository with more objects than a batch's listing reaches (lfsgate lists at most
    # 500): after its first batch lfsgate knows it and sends one HEAD per object.
    log "Azure: storing $az_large_objects blobs in org/large"
    python3 - "$PWD/tests/e2e" "http://127.0.0.1:$az_port/devstoreaccount1/bench/bench/org/large" \
        "$az_large_objects" <<'PY' || bench_die "could not fill org/large in Azurite"
import hashlib, sys
sys.path.insert(0, sys.argv[1])
import azurite as A
for i in range(int(sys.argv[3])):
    data = b"large repository object %d" % i
    status, body = A.request("PUT", sys.argv[2] + "/" + hashlib.sha256(data).hexdigest(), data,
                             {"x-ms-blob-type": "BlockBlob"})
    assert status == 201, (status, body[:200])
PY
    az_url[large]=${az_url[direct]%/org/repo.git/*}/org/large.git/info/lfs/objects/batch
    floor[large]=${floor[direct]}
    az_url[large-rtt]=${az_url[rtt]%/org/repo.git/*}/org/large.git/info/lfs/objects/batch
    floor[large-rtt]=${floor[rtt]}
    for r in $(seq "$reps"); do
        for setup in direct large rtt large-rtt; do
            python3 bench/azure_latency.py "${az_url[$setup]}" "$az_runs" "$work/az-$setup" >"$work/az-$setup-$r.out" ||
                bench_die "Azure ($setup) batches failed: $(cat "$work/az-$setup-$r.out")"
            log "round $r/$reps, Azure ($setup): $(head -n 2 "$work/az-$setup-$r.out" | sed 's/^ *//; s/  */ /g' | paste -sd ';' | sed 's/;/; /')"
        done
    done
    for setup in direct large rtt large-rtt; do
        m1=$(median "$work/az-$setup.1")
        m100=$(median "$work/az-$setup.100")
        ratio=$(div "$m100" "$m1")
        # named by what the store receives per batch (1 object: one HEAD; 100 objects: one
        # List Blobs where the listing covers the repository, else 100 concurrent HEADs)
        case $setup in
        direct) name="Azurite, new repository (100: 1 List Blobs)" ;;
        large) name="Azurite, repository of $az_large_objects objects (100: 100 HEADs)" ;;
        rtt) name="Azurite + $rtt_ms ms RTT, new repository (100: 1 List Blobs)" ;;
        *) name="Azurite + $rtt_ms ms RTT, repository of $az_large_objects objects (100: 100 HEADs)" ;;
        esac
        row "100- vs 1-object batch latency, $name" "$(num '%.2f ms' "$m100")" "$(num '%.2f ms (1 object)' "$m1")" \
            "$(num %.2fx "$ratio")" "< 3x" "$(verdict "$ratio" lt 3)"
        row "  store floor: 100 concurrent HEADs, no lfsgate" "-" "$(num '%.2f ms' "${floor[$setup]}")" \
            "$(num '%.2fx of 1 object' "$(div "${floor[$setup]}" "$m1")")" "-" "info"
    done
fi

# -----------------------------------------------------------------------------------------
# Errors over every wrk run (warm-ups included).
read -r lfs_err h2o_err nruns < <(awk '{ if ($1 ~ /^h2o/) h += $2 + $3; else l += $2 + $3; n++ }
    END { printf "%d %d %d\n", l, h, n }' "$work/wrk-errors")
row "errors under load (non-2xx + socket, $nruns wrk runs)" "$lfs_err" "$h2o_err (h2o)" "-" "0" \
    "$([ "$lfs_err" = 0 ] && echo PASS || echo FAIL)"

# -----------------------------------------------------------------------------------------
# The table.
echo "lfsgate benchmark, $(date -u +%Y-%m-%dT%H:%MZ): $cpu, $(nproc) CPUs, Linux $(uname -r); $lfs_version ($commit);" \
    "$h2o_version; $wrk_version"
echo "REPS=$reps (medians) DURATION=$wrk_duration CONNECTIONS=$wrk_conns THREADS=$wrk_threads SIZE_MIB=$mib" \
    "AZURE_RUNS=$az_runs; load average at start $load_start, at end $(cut -d ' ' -f 1-3 /proc/loadavg)"
echo
bench_table case lfsgate reference ratio target result
