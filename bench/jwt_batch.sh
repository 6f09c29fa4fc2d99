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
root=$PWD
bin=${1:-}
reps=${REPS:-3}
duration=${DURATION:-5s}
wthreads=${THREADS:-2}
conns=${CONNECTIONS:-16}

for tool in wrk h2o curl bc; do
    command -v "$tool" >/dev/null || ./scripts/install-deps.sh --with-tests
done
py=python3
python3 -c 'import jwt, cryptography' 2>/dev/null || py=/usr/bin/python3
"$py" -c 'import jwt, cryptography' || { echo "python3-jwt and python3-cryptography are needed" >&2; exit 1; }

if [ -z "$bin" ]; then
    [ -f build-release/build.ninja ] || meson setup build-release --buildtype=release -Dtests=disabled >/dev/null
    ninja -C build-release >/dev/null
    bin=build-release/server/lfsgate
fi
[ -x "$bin" ] || { echo "no lfsgate binary at $bin" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_http() { # URL
    local i
    for i in $(seq 100); do
        curl -s -o /dev/null "$1" && return 0
        sleep 0.1
    done
    echo "nothing answers at $1" >&2
    return 1
}

mint() { "$py" "$root/tests/e2e/mint_jwt.py" "$@"; }
mint keygen "$work/rsa.pem" "$work/rsa.pub.pem"
token=$(mint mint --key "$work/rsa.pem" --iss https://portal.bench.invalid --aud lfsgate-bench \
    --scope 'obj:bench/repo/*' --exp-in 3600 --sub bench-user --email bench@bench.invalid)

# start_lfsgate NAME AUTH_YAML: lfsgate with AUTH_PROVIDERS AUTH_YAML; sets started_port
start_lfsgate() {
    local name=$1 auth=$2 port
    port=$(free_port)
    cat >"$work/$name.yaml" <<EOF
AUTH_PROVIDERS:
$auth
TRANSFER_ADAPTERS:
  basic:
    factory: giftless.transfer.basic_streaming:factory
    options:
      storage_class: giftless.storage.local_storage:LocalStorage
      storage_options: {path: $work/store-$name}
PRE_AUTHORIZED_ACTION_PROVIDER:
  factory: giftless.auth.jwt:factory
  options: {algorithm: HS256, private_key: bench-action-token-secret-0123456789abcdef}
SERVER: {access_log: false, activity_log: false}
EOF
    "$bin" --config "$work/$name.yaml" --listen "127.0.0.1:$port" >"$work/$name.log" 2>&1 &
    pids+=($!)
    wait_http "http://127.0.0.1:$port/healthz"
    started_port=$port
}

jwt_auth() { # TOKEN_CACHE_SIZE_LINE
    cat <<EOF
  - factory: giftless.auth.jwt:factory
    options:
      algorithm: RS256
      public_key_file: $work/rsa.pub.pem
      issuer: https://portal.bench.invalid
      audience: lfsgate-bench
$1
EOF
}
start_lfsgate cache "$(jwt_auth '')"
port_cache=$started_port
start_lfsgate nocache "$(jwt_auth '      token_cache_size: 0')"
port_nocache=$started_port
start_lfsgate anon '  - giftless.auth.allow_anon:read_write'
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
port_h2o=$(free_port)
cat >"$work/h2o.conf" <<EOF
listen:
  host: 127.0.0.1
  port: $port_h2o
num-threads: $(nproc)
user: $(id -un)
hosts:
  default:
    paths:
      /:
        file.dir: $work/www
EOF
h2o -c "$work/h2o.conf" >"$work/h2o.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$port_h2o/batch.json"
[ "$(curl -s "http://127.0.0.1:$port_h2o/batch.json" | wc -c)" = "$size" ] ||
    { echo "h2o does not serve the $size-byte file" >&2; exit 1; }

# wrk scripts
lua_batch() { # FILE [TOKEN]
    {
        echo 'wrk.method = "POST"'
        printf 'wrk.body = [[%s]]\n' "$body"
        echo 'wrk.headers["Content-Type"] = "application/vnd.git-lfs+json"'
        echo 'wrk.headers["Accept"] = "application/vnd.git-lfs+json"'
        [ -z "${2:-}" ] || printf 'wrk.headers["Authorization"] = "Bearer %s"\n' "$2"
    } >"$1"
}
lua_batch "$work/jwt.lua" "$token"
lua_batch "$work/anon.lua"

# run NAME URL [LUA]: one wrk run; appends req/s to $work/NAME.rates; fails on errors
run() {
    local name=$1 url=$2 lua=${3:-} out rate
    out=$(wrk -t"$wthreads" -c"$conns" -d"$duration" ${lua:+-s "$lua"} "$url")
    if grep -qE 'Non-2xx or 3xx responses|Socket errors' <<<"$out"; then
        echo "wrk on $name reported errors:" >&2
        echo "$out" >&2
        exit 1
    fi
    rate=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
    echo "$rate" >>"$work/$name.rates"
    printf '  %-16s %10.0f req/s\n' "$name" "$rate" >&2
}

names=(h2o jwt_cache jwt_nocache anon)
urls=("http://127.0.0.1:$port_h2o/batch.json" "http://127.0.0.1:$port_cache$path"
    "http://127.0.0.1:$port_nocache$path" "http://127.0.0.1:$port_anon$path")
luas=("" "$work/jwt.lua" "$work/jwt.lua" "$work/anon.lua")

echo "$("$bin" --version 2>/dev/null | head -n 1), $(h2o --version | head -n 1), $(nproc) CPUs; wrk -t$wthreads -c$conns -d$duration, $reps rounds; answer $size bytes" >&2
for i in 0 1 2 3; do # warm-up
    wrk -t"$wthreads" -c"$conns" -d1s ${luas[$i]:+-s "${luas[$i]}"} "${urls[$i]}" >/dev/null
done
for r in $(seq "$reps"); do
    echo "round $r" >&2
    for i in 0 1 2 3; do
        run "${names[$i]}" "${urls[$i]}" "${luas[$i]}"
    done
done

median() { sort -g "$1" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
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
