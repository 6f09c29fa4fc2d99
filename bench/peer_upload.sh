#!/usr/bin/env bash
# Issue 19's upload benchmark against a peer: a durable upload of SIZE_MIB (1 GiB) of random
# bytes through lfsgate and through lfs-test-server (git-lfs's reference Go server, built here
# from source into the work directory, never into the repository), next to dd copying the
# same file, all on the same disk filesystem (the work directory holds the file and both
# stores). REPS rounds (3), interleaved: in each round dd, lfsgate (and LFSGATE_BASE when
# set), then lfs-test-server; every measurement starts after a sync, the stored copy is
# checked and removed after it. The table gives medians in MiB/s, wall clock, client start
# included. Its rows:
#   - "durable upload, lfsgate": curl -T FILE (empty Expect:) to lfsgate's basic_streaming
#     storage URL (local storage, anonymous, access and activity logs off). lfsgate answers
#     only after fdatasync of the object and fsync of its directory, so the PUT's time is
#     that of a durable upload. Checked: a 2xx answer and the file named by its sha256 in
#     the store with the file's size. Target (issue 19): >= 0.8x of dd;
#   - "durable upload, lfsgate before": the same with the binary LFSGATE_BASE (an lfsgate
#     older than the store writer of 7f11d30, which spooled the body first), when set;
#   - "durable upload, lfs-test-server (PUT + sync)": an upload batch with basic auth
#     (LFS_ADMINUSER/LFS_ADMINPASS, not timed), then the PUT to the href and headers it
#     answers, plus what makes its object durable, since lfs-test-server never syncs: sync -d
#     of the stored file (fdatasync) and sync of its directory (fsync), the two steps lfsgate
#     takes before it answers. (sync -f, the whole filesystem, would also charge this run for
#     other processes' dirty pages.) Checked: HTTP 200 and its content file (content/ab/cd/
#     rest-of-oid, renamed there only when its sha256 matched) with the file's size;
#   - "lfs-test-server PUT alone (not durable)": the same PUT without the syncs;
#   - "lfsgate vs lfs-test-server": the two durable medians, lfsgate's over the peer's
#     (issue 19: ahead of any peer built here, > 1x), and lfsgate's durable median over the
#     peer's PUT alone.
# Every ratio to dd is to the dd median of the same run. Progress goes to stderr, the table
# to stdout; the exit status is 0 when everything was measured, whatever the verdicts.
#
# Usage: bench/peer_upload.sh [LFSGATE_BIN]     (default: builds build-release)
# Environment: REPS (3), SIZE_MIB (1024), LFSGATE_BASE (an older lfsgate binary: adds the
#   "before" row), PEER_SRC (a git clone URL or directory of lfs-test-server; default the
#   local mirror when there is one, else GitHub), PEER_REF (the commit to build, default
#   d27ad23, master with go.mod), KEEP=1 (keep the work directory).
# lfs-test-server is built offline, in GOPATH mode (GO111MODULE=off: Debian's Go source
# packages carry no go.mod, which a module `replace` would need), from Debian's
# golang-github-boltdb-bolt-dev and golang-github-gorilla-mux-dev (scripts/install-deps.sh
# --with-bench) and bench/peer/gorilla-context, our stand-in for github.com/gorilla/context,
# which Debian does not package. Its bolt needs golang.org/x/sys only on Solaris.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
reps=${REPS:-3}
mib=${SIZE_MIB:-1024}
base_bin=${LFSGATE_BASE:-}
peer_ref=${PEER_REF:-d27ad23fddc1949ecd9a4ba6a3d074bc6a567084}
peer_src=${PEER_SRC:-}
if [ -z "$peer_src" ]; then
    peer_src=https://github.com/git-lfs/lfs-test-server
    [ ! -d /work/.mirror/git-lfs+lfs-test-server/repo ] || peer_src=/work/.mirror/git-lfs+lfs-test-server/repo
fi
gocode=/usr/share/gocode/src

on_err() {
    [ "$BASH_SUBSHELL" != 0 ] || echo "peer_upload.sh: measurement failed at line $1 ($2); no table" >&2
}
trap 'on_err "$LINENO" "$BASH_COMMAND"' ERR
for v in REPS:reps SIZE_MIB:mib; do
    val=${v#*:}
    [[ ${!val} =~ ^[1-9][0-9]*$ ]] || bench_die "${v%:*} must be a positive integer, not '${!val}'"
done
[ -z "$base_bin" ] || [ -x "$base_bin" ] || bench_die "LFSGATE_BASE=$base_bin is not an executable lfsgate"

bench_need_tools curl python3 sha256sum dd awk git sync
if ! command -v go >/dev/null || [ ! -d "$gocode/github.com/boltdb/bolt" ] || [ ! -d "$gocode/github.com/gorilla/mux" ]; then
    scripts/install-deps.sh --with-bench >&2
fi
command -v go >/dev/null || bench_die "go is needed to build lfs-test-server: scripts/install-deps.sh --with-bench"
for d in github.com/boltdb/bolt github.com/gorilla/mux; do
    [ -d "$gocode/$d" ] || bench_die "$gocode/$d is missing: scripts/install-deps.sh --with-bench installs it"
done
[ -n "${1:-}" ] || log "building build-release"
bench_build "${1:-}"
bench_workdir
: >"$work/table"
need=$((3 * mib + 256))
have=$(($(df -Pk "$work" | awk 'NR == 2 { print $4 }') / 1024))
[ "$have" -ge "$need" ] || bench_die "$work has $have MiB free; SIZE_MIB=$mib needs $need MiB"
log "work directory $work ($(stat -f -c %T "$work"))"

# -----------------------------------------------------------------------------------------
# lfs-test-server, from source, into $work.
log "building lfs-test-server $peer_ref from $peer_src"
gopath=$work/gopath
peer_dir=$gopath/src/github.com/git-lfs/lfs-test-server
mkdir -p "$gopath/src/github.com/gorilla"
git clone -q "$peer_src" "$peer_dir" || bench_die "cannot clone lfs-test-server from $peer_src (set PEER_SRC)"
git -C "$peer_dir" -c advice.detachedHead=false checkout -q "$peer_ref" ||
    bench_die "lfs-test-server has no commit $peer_ref (set PEER_REF)"
ln -s "$bench_root/bench/peer/gorilla-context" "$gopath/src/github.com/gorilla/context"
if ! (cd "$peer_dir" && GO111MODULE=off GOPATH="$gopath:/usr/share/gocode" GOFLAGS='' GOPROXY=off \
    go build -o "$work/lfs-test-server" .) >"$work/peer-build.log" 2>&1; then
    tail -n 20 "$work/peer-build.log" >&2
    bench_die "lfs-test-server did not build (log above)"
fi
peer_commit=$(git -C "$peer_dir" log -1 --format='%h %cs')

# -----------------------------------------------------------------------------------------
# The servers: lfsgate (and LFSGATE_BASE) on local storage, lfs-test-server with an admin
# user. All stay up for the whole run.
mkdir -p "$work/www"
blob=$work/www/blob.bin
bytes=$((mib * 1024 * 1024))
label="$mib MiB"
[ "$mib" != 1024 ] || label="1 GiB"
log "writing a $label file of random bytes"
head -c "$bytes" /dev/urandom >"$blob"
oid=$(sha256sum "$blob" | cut -c 1-64)

# start_gate NAME BIN: lfsgate BIN, anonymous, basic_streaming on $work/store-NAME; sets
# gate_url[NAME] (the object's storage URL) and gate_stored[NAME] (where the object lands).
declare -A gate_url gate_stored
start_gate() {
    mkdir -p "$work/spool-$1"
    local_config "$work/$1.yaml" "  - giftless.auth.allow_anon:read_write" "$work/store-$1" \
        "{access_log: false, activity_log: false, spool_dir: $work/spool-$1, max_upload_size: $((mib + 64))M}"
    bin=$2 start_lfsgate "$1" "$work/$1.yaml"
    gate_url[$1]=http://127.0.0.1:$started_port/bench/repo.git/info/lfs/objects/storage/$oid
    gate_stored[$1]=$work/store-$1/bench/repo/$oid
}
gates=(lfsgate)
start_gate lfsgate "$bin"
if [ -n "$base_bin" ]; then
    gates+=(base)
    start_gate base "$base_bin"
fi
log "lfsgate started$([ -z "$base_bin" ] || echo ", and $base_bin")"

peer_port=$(free_port)
peer_pass=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
# the basic auth header lives in a file (curl -H @FILE), not on a command line
(umask 077 && printf 'Authorization: Basic %s\n' "$(printf 'bench:%s' "$peer_pass" | base64 -w 0)" >"$work/peer-auth")
(cd "$work" && exec env LFS_LISTEN="tcp://127.0.0.1:$peer_port" LFS_HOST="127.0.0.1:$peer_port" \
    LFS_METADB="$work/peer.db" LFS_CONTENTPATH="$work/peer-content" LFS_ADMINUSER=bench \
    LFS_ADMINPASS="$peer_pass" "$work/lfs-test-server") >"$work/peer.log" 2>&1 </dev/null &
peer_pid=$!
bench_track "$peer_pid"
wait_http "http://127.0.0.1:$peer_port/" "$peer_pid" ||
    bench_die "lfs-test-server did not start: $(tail -n 3 "$work/peer.log")"
peer_stored=$work/peer-content/${oid:0:2}/${oid:2:2}/${oid:4}
log "lfs-test-server ($peer_commit) on port $peer_port"

# peer_batch: an upload batch for the file; writes the PUT's URL to $work/peer-put.url and
# its headers (those the answer names: Accept, Authorization) to $work/peer-put.headers.
peer_batch() {
    local code
    printf '{"operation": "upload", "transfers": ["basic"], "objects": [{"oid": "%s", "size": %d}]}' \
        "$oid" "$bytes" >"$work/peer-batch.json"
    code=$(curl -s -o "$work/peer-batch.out" -w '%{http_code}' -H @"$work/peer-auth" \
        -H 'Accept: application/vnd.git-lfs+json' -H 'Content-Type: application/vnd.git-lfs+json' \
        --data-binary @"$work/peer-batch.json" "http://127.0.0.1:$peer_port/bench/repo/objects/batch")
    [ "$code" = 200 ] || bench_die "lfs-test-server's batch: HTTP $code: $(head -c 300 "$work/peer-batch.out")"
    (umask 077 && python3 - "$work/peer-batch.out" "$oid" "$work/peer-put" <<'EOF') || bench_die \
        "lfs-test-server's batch answer is not an upload of $oid: $(head -c 300 "$work/peer-batch.out")"
import json, sys
path, oid, out = sys.argv[1:]
try:
    [obj] = json.load(open(path))["objects"]
    up = obj["actions"]["upload"]
    ok = obj["oid"] == oid
except (ValueError, KeyError, TypeError):
    ok = False
if not ok:
    sys.exit("expected one object %s with an upload action" % oid)
open(out + ".url", "w").write(up["href"] + "\n")
open(out + ".headers", "w").write("".join("%s: %s\n" % kv for kv in up.get("header", {}).items()))
EOF
}

# -----------------------------------------------------------------------------------------
# The rounds.
load_start=$(cut -d ' ' -f 1-3 /proc/loadavg)
for r in $(seq "$reps"); do
    sync
    dd=$(dd_rate "$blob" "$work/dd.copy" "$mib")
    echo "$dd" >>"$work/dd.rates"
    msg="round $r/$reps: dd $(num %.0f "$dd") MiB/s"

    for g in "${gates[@]}"; do
        sync
        t0=$EPOCHREALTIME
        code=$(curl -s -o "$work/put.out" -w '%{http_code}' -T "$blob" -H 'Expect:' "${gate_url[$g]}")
        t1=$EPOCHREALTIME
        [[ $code == 2* ]] || bench_die "lfsgate ($g) upload: HTTP $code: $(head -c 300 "$work/put.out")"
        got=$(stat -c %s "${gate_stored[$g]}" 2>/dev/null) ||
            bench_die "lfsgate ($g) answered $code but ${gate_stored[$g]} (the file named by its sha256) is not there"
        [ "$got" = "$bytes" ] || bench_die "lfsgate ($g) stored $got bytes, not $bytes, in ${gate_stored[$g]}"
        rm -f "${gate_stored[$g]}"
        rate=$(mib_rate "$mib" "$t0" "$t1")
        echo "$rate" >>"$work/$g.rates"
        msg+=", $g $(num %.0f "$rate") MiB/s"
    done

    peer_batch
    sync
    t0=$EPOCHREALTIME
    code=$(curl -s -o "$work/put.out" -w '%{http_code}' -T "$blob" -H 'Expect:' -H @"$work/peer-put.headers" \
        "$(cat "$work/peer-put.url")")
    t1=$EPOCHREALTIME
    [ "$code" = 200 ] || bench_die "lfs-test-server upload: HTTP $code: $(head -c 300 "$work/put.out")"
    [ -f "$peer_stored" ] || bench_die "lfs-test-server answered 200 but $peer_stored is not there"
    sync -d "$peer_stored"
    sync "${peer_stored%/*}"
    t2=$EPOCHREALTIME
    got=$(stat -c %s "$peer_stored")
    [ "$got" = "$bytes" ] || bench_die "lfs-test-server stored $got bytes, not $bytes, in $peer_stored"
    rm -f "$peer_stored"
    put=$(mib_rate "$mib" "$t0" "$t1")
    durable=$(mib_rate "$mib" "$t0" "$t2")
    echo "$put" >>"$work/peer-put.rates"
    echo "$durable" >>"$work/peer.rates"
    log "$msg, lfs-test-server $(num %.0f "$durable") MiB/s (PUT alone $(num %.0f "$put") MiB/s)"
done
load_end=$(cut -d ' ' -f 1-3 /proc/loadavg)

# -----------------------------------------------------------------------------------------
# The table.
ddr=$(median "$work/dd.rates")
dd_cell="$(num %.0f "$ddr") MiB/s (dd)"
gate=$(median "$work/lfsgate.rates")
ratio=$(div "$gate" "$ddr")
row "durable $label upload, lfsgate" "$(num %.0f "$gate") MiB/s" "$dd_cell" "$(num %.2fx "$ratio")" \
    ">= 0.8x" "$(verdict "$ratio" ge 0.8)"
if [ -n "$base_bin" ]; then
    v=$(median "$work/base.rates")
    row "durable $label upload, lfsgate before (LFSGATE_BASE)" "$(num %.0f "$v") MiB/s" "$dd_cell" \
        "$(num %.2fx "$(div "$v" "$ddr")")" "-" "info"
fi
peer=$(median "$work/peer.rates")
row "durable $label upload, lfs-test-server (PUT + sync)" "$(num %.0f "$peer") MiB/s" "$dd_cell" \
    "$(num %.2fx "$(div "$peer" "$ddr")")" "-" "info"
peer_put=$(median "$work/peer-put.rates")
row "  lfs-test-server PUT alone (not durable)" "$(num %.0f "$peer_put") MiB/s" "$dd_cell" \
    "$(num %.2fx "$(div "$peer_put" "$ddr")")" "-" "info"
ratio=$(div "$gate" "$peer")
row "lfsgate vs lfs-test-server, both durable" "$(num %.0f "$gate") MiB/s" \
    "$(num %.0f "$peer") MiB/s (lfs-test-server)" "$(num %.2fx "$ratio")" "> 1x" "$(verdict "$ratio" gt 1)"
row "  lfsgate durable vs lfs-test-server PUT alone" "$(num %.0f "$gate") MiB/s" \
    "$(num %.0f "$peer_put") MiB/s (lfs-test-server)" "$(num %.2fx "$(div "$gate" "$peer_put")")" "-" "info"

cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
GIT_OPTIONAL_LOCKS=0 git diff-index --quiet HEAD -- 2>/dev/null || commit="$commit, work tree changed"
echo "lfsgate vs lfs-test-server, durable $label upload, $(date -u +%Y-%m-%dT%H:%MZ): $cpu, $(nproc) CPUs," \
    "Linux $(uname -r), $(stat -f -c %T "$work") work directory; $("$bin" --version 2>&1 | head -n 1) ($commit);" \
    "lfs-test-server $peer_commit ($(go version | awk '{ print $3 }'))"
echo "REPS=$reps (medians) SIZE_MIB=$mib${base_bin:+ LFSGATE_BASE=$base_bin}; load average at start $load_start," \
    "at end $load_end"
echo
bench_table case server reference ratio target result
