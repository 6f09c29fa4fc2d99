#!/usr/bin/env bash
# Rate of 1-object upload batches with an RS256 token (POST .../objects/batch, local
# storage, the object not stored yet, so each answer carries upload + verify actions with
# two freshly minted action tokens), with the jwt provider's verified-token cache on (the
# default) and off (`token_cache_size: 0`), next to anonymous batches (no JWT at all) and
# h2o serving a static file of the same size as the batch answer, all in the same run.
# wrk -t2 -c16 -d5s per measurement, REPS rounds (default 3) interleaved across the
# servers, medians reported. Access and activity logs are off; lfsgate and h2o both run
# one worker thread per CPU, on the same machine as wrk.
#
# Usage: bench/jwt_batch.sh [LFSGATE_BIN]     (default: builds build-release)
# Environment: REPS (3), DURATION (5s), THREADS (2), CONNECTIONS (16), OBJECTS (1: objects
# per batch; with more, the table also gives objects/s against h2o's requests/s).
# Needs wrk, h2o, bc, python3-jwt, python3-cryptography (tests/e2e/mint_jwt.py): installed
# by scripts/install-deps.sh --with-tests when a tool is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
root=$PWD
reps=${REPS:-3}
wrk_duration=${DURATION:-5s}
wrk_threads=${THREADS:-2}
wrk_conns=${CONNECTIONS:-16}

bench_need_tools wrk h2o curl bc
bench_jwt_python
bench_build "${1:-}"
bench_workdir

mint() { "$py" "$root/tests/e2e/mint_jwt.py" "$@"; }
mint keygen "$work/rsa.pem" "$work/rsa.pub.pem"
token=$(mint mint --key "$work/rsa.pem" --iss https://portal.bench.invalid --aud lfsgate-bench \
    --scope 'obj:bench/repo/*' --exp-in 3600 --sub bench-user --email bench@bench.invalid)

# start_server NAME AUTH_YAML: lfsgate with AUTH_PROVIDERS AUTH_YAML; sets started_port
start_server() {
    local_config "$work/$1.yaml" "$2" "$work/store-$1"
    start_lfsgate "$1" "$work/$1.yaml"
}

start_server cache "$(jwt_auth_yaml "$work/rsa.pub.pem")"
port_cache=$started_port
start_server nocache "$(jwt_auth_yaml "$work/rsa.pub.pem" '      token_cache_size: 0')"
port_nocache=$started_port
start_server anon '  - giftless.auth.allow_anon:read_write'
port_anon=$started_port

# OBJECTS objects per batch (default 1), none stored yet.
nobj=${OBJECTS:-1}
objects=""
for i in $(seq "$nobj"); do
    oid=$(printf 'jwt batch bench object %d' "$i" | sha256sum | cut -c 1-64)
    objects="$objects${objects:+, }{\"oid\": \"$oid\", \"size\": 123456}"
done
body="{\"operation\": \"upload\", \"transfers\": [\"basic\"], \"ref\": {\"name\": \"refs/heads/main\"}, \"objects\": [$objects], \"hash_algo\": \"sha256\"}"
path=/bench/repo.git/info/lfs/objects/batch

# one request each: a 200 with upload and verify actions; the size of the answer
check_batch() { # NAME PORT [AUTH]
    local out=$work/answer-$1.json code
    shift
    code=$(curl -s -o "$out" -w '%{http_code}' -X POST -H 'Content-Type: application/vnd.git-lfs+json' \
        -H 'Accept: application/vnd.git-lfs+json' ${2:+-H "Authorization: Bearer $2"} \
        --data-binary "$body" "http://127.0.0.1:$1$path")
    if [ "$code" != 200 ] || ! grep -q '"verify"' "$out"; then
        echo "batch on port $1: expected 200 with upload and verify actions, got $code: $(head -c 300 "$out")" >&2
        exit 1
    fi
    stat -c %s "$out"
}
size=$(check_batch cache "$port_cache" "$token")
check_batch nocache "$port_nocache" "$token" >/dev/null
check_batch anon "$port_anon" >/dev/null
curl -s -o /dev/null -X POST --data-binary "$body" -w '%{http_code}' "http://127.0.0.1:$port_nocache$path" |
    grep -qx 401 || { echo "the jwt server does not require a token" >&2; exit 1; }

# h2o: the bytes of a JWT batch answer as a static file
mkdir -p "$work/www"
cp "$work/answer-cache.json" "$work/www/batch.json"
start_h2o "$work/www"
port_h2o=$h2o_port
wait_http "http://127.0.0.1:$port_h2o/batch.json"
[ "$(curl -s "http://127.0.0.1:$port_h2o/batch.json" | wc -c)" = "$size" ] ||
    { echo "h2o does not serve the $size-byte file" >&2; exit 1; }

# wrk scripts
echo "$body" >"$work/body.json"
wrk_lua "$work/jwt.lua" "$work/body.json" "$token"
wrk_lua "$work/anon.lua" "$work/body.json"

# run NAME URL [LUA]: one wrk run; appends req/s to $work/NAME.rates; fails on errors
run() {
    local rate
    rate=$(bench_wrk "$@")
    echo "$rate" >>"$work/$1.rates"
    printf '  %-16s %10.0f req/s\n' "$1" "$rate" >&2
}

names=(h2o jwt_cache jwt_nocache anon)
urls=("http://127.0.0.1:$port_h2o/batch.json" "http://127.0.0.1:$port_cache$path"
    "http://127.0.0.1:$port_nocache$path" "http://127.0.0.1:$port_anon$path")
luas=("" "$work/jwt.lua" "$work/jwt.lua" "$work/anon.lua")

echo "$("$bin" --version 2>/dev/null | head -n 1), $(h2o --version | head -n 1), $(nproc) CPUs; wrk -t$wrk_threads -c$wrk_conns -d$wrk_duration, $reps rounds; answer $size bytes" >&2
for i in 0 1 2 3; do # warm-up
    wrk_duration=1s bench_wrk "warmup-${names[$i]}" "${urls[$i]}" "${luas[$i]}" >/dev/null
done
for r in $(seq "$reps"); do
    echo "round $r" >&2
    for i in 0 1 2 3; do
        run "${names[$i]}" "${urls[$i]}" "${luas[$i]}"
    done
done

h2o_rate=$(median "$work/h2o.rates")
labels=("h2o, static file of $size B" "lfsgate, RS256, token cache on" "lfsgate, RS256, token cache off"
    "lfsgate, anonymous (no JWT)")
echo
printf '%-36s %12s %14s %16s\n' "$nobj-object upload batch" "req/s (med)" "objects/s" "vs h2o req/s"
for i in 0 1 2 3; do
    m=$(median "$work/${names[$i]}.rates")
    per=$nobj
    [ "$i" -gt 0 ] || per=1
    printf '%-36s %12.0f %14.0f %15.2fx\n' "${labels[$i]}" "$m" "$(echo "$m * $per" | bc -l)" \
        "$(echo "$m * $per / $h2o_rate" | bc -l)"
done
