# shellcheck shell=bash disable=SC2034
# Shared helpers of the bench/ scripts; sourced, not run: `. "$(dirname "$0")/lib.sh"`.
# It measures nothing itself. It provides: a work directory that is removed on exit
# together with every process started through it (bench_workdir, bench_track, bench_stop),
# free loopback ports and readiness waits (free_port, wait_port, wait_http), medians,
# tool installation and the release build (bench_need_tools, bench_jwt_python, bench_build),
# starting lfsgate, h2o, Azurite, the S3 stand-in and a delay proxy on loopback, their configs, and a wrk wrapper that
# returns requests/s and records (or fails on) non-2xx answers and socket errors; and the
# results table of run.sh and peer_upload.sh (log, num, div, mib_rate, verdict, row,
# bench_table) with the dd bs=1M conv=fdatasync reference (dd_rate).
#
# Globals it sets or reads: bench_root (repository root), work (work directory), bin
# (lfsgate binary), py (python3 with jwt + cryptography), wrk_threads / wrk_conns /
# wrk_duration (wrk -t/-c/-d, defaults 2/16/5s), wrk_strict (1: a wrk run with errors
# fails the script; 0: errors are only recorded in $work/wrk-errors), KEEP=1 (keep $work).

bench_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bench_pids=()
work=
bin=
py=python3
wrk_threads=${wrk_threads:-2}
wrk_conns=${wrk_conns:-16}
wrk_duration=${wrk_duration:-5s}
wrk_strict=${wrk_strict:-1}

bench_die() {
    echo "${0##*/}: $*" >&2
    exit 1
}

# bench_workdir: creates $work (on disk: not under a tmpfs /tmp, so large files are not held
# in RAM and share the filesystem of the stores made under $work) and installs the EXIT trap
# that stops the tracked processes and removes $work.
bench_workdir() {
    local base=${TMPDIR:-/tmp}
    if [ "$(stat -f -c %T "$base" 2>/dev/null)" = tmpfs ]; then
        base=/var/tmp
        [ "$(stat -f -c %T "$base" 2>/dev/null)" != tmpfs ] || base=$bench_root/build-release
        mkdir -p "$base"
    fi
    work=$(mktemp -d "$base/lfsgate-bench.XXXXXX")
    trap bench_cleanup EXIT
}

bench_track() { bench_pids+=("$@"); }

# bench_untrack PID: forgets a process that has been waited for.
bench_untrack() {
    local p keep=()
    for p in "${bench_pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    bench_pids=("${keep[@]}")
}

# bench_stop PID: stops one tracked process (SIGTERM) and waits for it.
bench_stop() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    bench_untrack "$1"
}

bench_cleanup() {
    local p
    for p in "${bench_pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${bench_pids[@]}"; do wait "$p" 2>/dev/null || true; done
    bench_pids=()
    [ -n "$work" ] || return 0
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}

# bench_need_tools TOOL...: runs scripts/install-deps.sh --with-tests when one is missing.
bench_need_tools() {
    local t
    for t in "$@"; do
        command -v "$t" >/dev/null && continue
        "$bench_root/scripts/install-deps.sh" --with-tests >&2
        break
    done
    for t in "$@"; do command -v "$t" >/dev/null || bench_die "$t is needed and could not be installed"; done
}

# bench_jwt_python: sets py to a python3 with the jwt and cryptography modules (the default
# python3 may be a pyenv one without them; Debian's has them once python3-jwt is installed).
bench_jwt_python() {
    local p
    for p in python3 /usr/bin/python3; do
        if "$p" -c 'import jwt, cryptography' 2>/dev/null; then
            py=$p
            return 0
        fi
    done
    "$bench_root/scripts/install-deps.sh" --with-tests >&2
    /usr/bin/python3 -c 'import jwt, cryptography' 2>/dev/null ||
        bench_die "python3-jwt and python3-cryptography are needed (tests/e2e/mint_jwt.py)"
    py=/usr/bin/python3
}

# bench_build [BIN]: sets bin to BIN, or builds build-release (set up when missing) and
# uses its lfsgate.
bench_build() {
    bin=${1:-}
    if [ -z "$bin" ]; then
        [ -f "$bench_root/build-release/build.ninja" ] ||
            meson setup "$bench_root/build-release" "$bench_root" --buildtype=release -Dtests=disabled >/dev/null
        local log
        log=$(mktemp)
        if ! ninja -C "$bench_root/build-release" >"$log" 2>&1; then
            tail -n 20 "$log" >&2
            rm -f "$log"
            bench_die "the release build failed (ninja -C build-release)"
        fi
        rm -f "$log"
        bin=$bench_root/build-release/server/lfsgate
    fi
    [ -x "$bin" ] || bench_die "no lfsgate binary at $bin"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_until MESSAGE PID COMMAND...: runs COMMAND every 0.1 s until it succeeds (30 s; fails
# early when PID, if not empty, has exited), else prints MESSAGE and fails.
wait_until() {
    local message=$1 pid=$2
    shift 2
    for _ in $(seq 300); do
        "$@" && return 0
        [ -z "$pid" ] || kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "$message" >&2
    return 1
}

# wait_port PORT [PID]: until something accepts on 127.0.0.1:PORT.
wait_port() {
    wait_until "nothing listens on port $1" "${2:-}" python3 -c \
        "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1', $1)))"
}

# wait_http URL [PID]: until URL answers at all.
wait_http() {
    wait_until "nothing answers at $1" "${2:-}" curl -s -o /dev/null "$1"
}

# median [FILE]: the median of the numbers in FILE (or stdin, also when FILE is -), one a line.
median() {
    sort -g ${1:+"$1"} | awk '{ v[NR] = $1 } END {
        if (NR == 0) exit 1
        print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# start_lfsgate NAME CONFIG [ARGS...]: lfsgate with CONFIG on a free loopback port, log in
# $work/NAME.log; waits for /healthz; sets started_port and started_pid.
start_lfsgate() {
    local name=$1 cfg=$2 port
    shift 2
    port=$(free_port)
    "$bin" --config "$cfg" --listen "127.0.0.1:$port" "$@" >"$work/$name.log" 2>&1 </dev/null &
    started_pid=$!
    bench_track "$started_pid"
    wait_http "http://127.0.0.1:$port/healthz" "$started_pid" ||
        bench_die "lfsgate ($name) did not start: $(tail -n 3 "$work/$name.log")"
    started_port=$port
}

# start_h2o DIR: h2o (Debian's) serving DIR as static files with one thread per CPU; sets
# h2o_port and h2o_pid.
start_h2o() {
    local dir=$1
    h2o_port=$(free_port)
    cat >"$work/h2o.conf" <<EOF
listen:
  host: 127.0.0.1
  port: $h2o_port
num-threads: $(nproc)
user: $(id -un)
hosts:
  default:
    paths:
      /:
        file.dir: $dir
EOF
    h2o -c "$work/h2o.conf" >"$work/h2o.log" 2>&1 </dev/null &
    h2o_pid=$!
    bench_track "$h2o_pid"
    wait_port "$h2o_port" "$h2o_pid" || bench_die "h2o did not start: $(tail -n 3 "$work/h2o.log")"
}

# azure_cs ENDPOINT: the connection string of Azurite's development account (its
# well-known public key) at ENDPOINT (http://127.0.0.1:PORT/devstoreaccount1).
azure_cs() {
    echo "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=$1;"
}

# jwt_auth_yaml PUBLIC_KEY_FILE [EXTRA_OPTION_LINES]: an AUTH_PROVIDERS item, the RS256 jwt
# provider for the tokens bench_jwt_python mints (issuer and audience of the benchmarks).
jwt_auth_yaml() {
    cat <<EOF
  - factory: giftless.auth.jwt:factory
    options:
      algorithm: RS256
      public_key_file: $1
      issuer: https://portal.bench.invalid
      audience: lfsgate-bench
${2:-}
EOF
}

# streaming_config FILE AUTH_YAML STORAGE_CLASS STORAGE_OPTIONS_FLOW [SERVER_YAML]: AUTH_YAML
# as AUTH_PROVIDERS, basic_streaming over STORAGE_CLASS with STORAGE_OPTIONS_FLOW (a YAML flow
# mapping), HS256 action tokens, SERVER_YAML (default: access and activity logs off).
streaming_config() {
    cat >"$1" <<EOF
AUTH_PROVIDERS:
$2
TRANSFER_ADAPTERS:
  basic:
    factory: giftless.transfer.basic_streaming:factory
    options:
      storage_class: $3
      storage_options: $4
PRE_AUTHORIZED_ACTION_PROVIDER:
  factory: giftless.auth.jwt:factory
  options: {algorithm: HS256, private_key: bench-action-token-secret-0123456789abcdef}
SERVER: ${5:-"{access_log: false, activity_log: false}"}
EOF
}

# local_config FILE AUTH_YAML STORE_DIR [SERVER_YAML]: streaming_config on local storage in
# STORE_DIR.
local_config() {
    streaming_config "$1" "$2" giftless.storage.local_storage:LocalStorage "{path: $3}" "${4:-}"
}

# external_config FILE STORAGE_CLASS STORAGE_OPTIONS_YAML [EXTRA_YAML]: anonymous read-write,
# basic_external over STORAGE_CLASS; STORAGE_OPTIONS_YAML is the storage_options lines,
# indented by 8, EXTRA_YAML appended.
external_config() {
    cat >"$1" <<EOF
AUTH_PROVIDERS: [giftless.auth.allow_anon:read_write]
TRANSFER_ADAPTERS:
  basic:
    factory: giftless.transfer.basic_external:factory
    options:
      storage_class: $2
      storage_options:
$3
${4:-}
EOF
}

# azure_config FILE ENDPOINT [EXTRA_YAML]: anonymous read-write, basic_external over the Azure
# backend at ENDPOINT (container "bench", path_prefix "bench"), EXTRA_YAML appended.
azure_config() {
    external_config "$1" giftless.storage.azure:AzureBlobsStorage "\
        connection_string: \"$(azure_cs "$2")\"
        container_name: bench
        path_prefix: bench" "${3:-}"
}

# start_s3_fake NAME [S3_FAKE_ARGS...]: tests/fakes/s3_fake.py (the SigV4-checking S3
# stand-in) with the bucket "bench" and the keys in AWS_ACCESS_KEY_ID and
# AWS_SECRET_ACCESS_KEY; its output in $work/NAME.out and NAME.log. Sets s3_pid, s3_port and
# s3_url; bench_cleanup stops it.
start_s3_fake() {
    local name=$1
    shift
    python3 "$bench_root/tests/fakes/s3_fake.py" --access-key "$AWS_ACCESS_KEY_ID" \
        --secret-key "$AWS_SECRET_ACCESS_KEY" --bucket bench --quiet "$@" \
        >"$work/$name.out" 2>"$work/$name.log" </dev/null &
    s3_pid=$!
    bench_track "$s3_pid"
    wait_until "the S3 stand-in printed no port" "$s3_pid" test -s "$work/$name.out" ||
        bench_die "the S3 stand-in did not start: $(tail -n 3 "$work/$name.log")"
    s3_port=$(head -n 1 "$work/$name.out")
    s3_url=http://127.0.0.1:$s3_port
}

# start_azurite: in-memory Azurite (npm, tests/e2e) with a container "bench"; sets az_port
# and az_pid.
start_azurite() {
    local azurite=$bench_root/tests/e2e/node_modules/.bin/azurite-blob
    [ -x "$azurite" ] || (cd "$bench_root/tests/e2e" && npm ci --no-audit --no-fund --loglevel=error >&2)
    [ -x "$azurite" ] || bench_die "Azurite is missing: cd tests/e2e && npm ci"
    mkdir -p "$work/azurite"
    az_port=$(free_port)
    (cd "$work/azurite" && exec "$azurite" --blobHost 127.0.0.1 --blobPort "$az_port" --inMemoryPersistence \
        --disableTelemetry --skipApiVersionCheck --silent) >"$work/azurite.log" 2>&1 </dev/null &
    az_pid=$!
    bench_track "$az_pid"
    wait_port "$az_port" "$az_pid" || bench_die "Azurite did not start: $(tail -n 3 "$work/azurite.log")"
    python3 "$bench_root/tests/e2e/azurite.py" mkcontainer "http://127.0.0.1:$az_port/devstoreaccount1" bench
}

# start_delay_proxy UPSTREAM_PORT MS: bench/delay_proxy.py in front of 127.0.0.1:UPSTREAM_PORT,
# holding every answer MS ms; sets proxy_port.
start_delay_proxy() {
    local pid
    proxy_port=$(free_port)
    python3 "$bench_root/bench/delay_proxy.py" "$proxy_port" "$1" "$2" 2>"$work/proxy-$proxy_port.log" </dev/null &
    pid=$!
    bench_track "$pid"
    wait_port "$proxy_port" "$pid" || bench_die "the delay proxy did not start: $(tail -n 3 "$work/proxy-$proxy_port.log")"
}

# wrk_lua FILE BODY_FILE [TOKEN]: a wrk script POSTing BODY_FILE as a Git LFS batch
# request, with a Bearer TOKEN when given. It also checks every answer: a 200 whose body
# holds an "error" (a per-object error: the object was not served) is counted, and the sum
# over wrk's threads is printed as "answers with object errors: N" for bench_wrk.
wrk_lua() {
    {
        printf 'local f = assert(io.open("%s")); wrk.body = f:read("*a"); f:close()\n' "$2"
        echo 'wrk.method = "POST"'
        echo 'wrk.headers["Content-Type"] = "application/vnd.git-lfs+json"'
        echo 'wrk.headers["Accept"] = "application/vnd.git-lfs+json"'
        [ -z "${3:-}" ] || printf 'wrk.headers["Authorization"] = "Bearer %s"\n' "$3"
        wrk_check_lua
    } >"$1"
}

# wrk_check_lua: prints the answer check of wrk_lua alone (for a GET script: a reference
# server's runs then pay the same client-side cost per answer as lfsgate's).
wrk_check_lua() {
        cat <<'LUA'
local threads = {}
function setup(thread) table.insert(threads, thread) end
object_errors = 0
function response(status, headers, body)
    if status == 200 and string.find(body, '"error"', 1, true) then object_errors = object_errors + 1 end
end
function done(summary, latency, requests)
    local n = 0
    for _, t in ipairs(threads) do n = n + t:get("object_errors") end
    io.write(string.format("answers with object errors: %d\n", n))
end
LUA
}

# cpu_ticks PID: user + system CPU time of process PID so far, in clock ticks (/proc/PID/stat
# fields 14 and 15; getconf CLK_TCK per second). Steadier than a rate on a shared machine.
cpu_ticks() {
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

# minor_faults PID: the page faults process PID took without I/O so far (/proc/PID/stat
# field 10): memory given back to the kernel and touched again shows here.
minor_faults() {
    awk '{ sub(/^.*\) /, ""); print $8 }' "/proc/$1/stat"
}

# bench_wrk NAME URL [LUA]: one wrk -t$wrk_threads -c$wrk_conns -d$wrk_duration run; prints
# its requests/s on stdout. Non-2xx answers, 200s with per-object errors (scripts made by
# wrk_lua) and socket errors (connect, read, write, timeout) are appended to $work/wrk-errors
# as "NAME NON2XX SOCKET"; with wrk_strict=1 they fail the script, with the wrk output on
# stderr. The last output is kept in $work/wrk-NAME.out, the number of requests made in
# $work/wrk-NAME.requests.
bench_wrk() {
    local name=$1 url=$2 lua=${3:-} out rate non2xx sock
    out=$work/wrk-$name.out
    wrk -t"$wrk_threads" -c"$wrk_conns" -d"$wrk_duration" ${lua:+-s "$lua"} "$url" >"$out" 2>&1 ||
        { cat "$out" >&2; bench_die "wrk on $name failed"; }
    awk '/ requests in / { print $1 }' "$out" >"$work/wrk-$name.requests"
    non2xx=$(awk '/Non-2xx or 3xx responses:/ || /^answers with object errors:/ { n += $NF } END { print n + 0 }' "$out")
    sock=$(awk '/Socket errors:/ { gsub(/,/, ""); n += $4 + $6 + $8 + $10 } END { print n + 0 }' "$out")
    echo "$name $non2xx $sock" >>"$work/wrk-errors"
    if [ "$non2xx" != 0 ] || [ "$sock" != 0 ]; then
        echo "wrk on $name: $non2xx non-2xx answers, $sock socket errors:" >&2
        cat "$out" >&2
        [ "$wrk_strict" = 0 ] || exit 1
    fi
    rate=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
    [ -n "$rate" ] || { cat "$out" >&2; bench_die "no Requests/sec in the wrk output for $name"; }
    echo "$rate"
}

# log MESSAGE...: a progress line on stderr, with the time.
log() { echo "[$(date +%T)] $*" >&2; }

# num FORMAT VALUE: VALUE printed with the printf FORMAT (awk, so that any float works).
num() { awk -v v="$2" -v f="$1" 'BEGIN { printf f, v }'; }

# div A B: A / B with 6 decimals; fails when B is 0.
div() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) exit 1; printf "%.6f", a / b }'; }

# mib_rate MIB T0 T1: MIB MiB over the seconds from T0 to T1 ($EPOCHREALTIME values), in MiB/s.
mib_rate() { awk -v m="$1" -v a="$2" -v b="$3" 'BEGIN { printf "%.3f\n", m / (b - a) }'; }

# verdict VALUE ge|gt|lt LIMIT: PASS or FAIL.
verdict() {
    awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
        ok = (op == "ge") ? (v >= l) : (op == "gt") ? (v > l) : (v < l); print ok ? "PASS" : "FAIL" }'
}

# row CELL...: one line of $work/table, the cells of bench_table's columns.
row() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$work/table"; }

# bench_table HEADING...: prints the six HEADINGs and the rows of $work/table as a Markdown
# table, every column as wide as its widest cell.
bench_table() {
    {
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@"
        printf -- '-\t-\t-\t-\t-\t-\n'
        cat "$work/table"
    } | awk -F '\t' '
    { for (i = 1; i <= NF; i++) { cell[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i) } n = NR }
    END {
        for (r = 1; r <= n; r++) {
            line = "|"
            for (i = 1; i <= 6; i++) {
                c = cell[r, i]
                if (r == 2) { c = ""; while (length(c) < w[i]) c = c "-" }
                line = line sprintf(" %-" w[i] "s |", c)
            }
            print line
        }
    }'
}

# dd_rate SRC DEST MIB: copies SRC (MIB MiB) to DEST with dd bs=1M conv=fdatasync (what the
# disk does when the bytes must be durable, as an upload's), checks the copy's size, removes
# it and prints the rate in MiB/s (wall clock, dd's start included).
dd_rate() {
    local t0 t1
    t0=$EPOCHREALTIME
    dd if="$1" of="$2" bs=1M conv=fdatasync status=none
    t1=$EPOCHREALTIME
    [ "$(stat -c %s "$2")" = "$((1024 * 1024 * $3))" ] || bench_die "dd wrote a short copy of $1 to $2"
    rm -f "$2"
    mib_rate "$3" "$t0" "$t1"
}
