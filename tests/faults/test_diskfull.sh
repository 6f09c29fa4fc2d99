#!/usr/bin/env bash
# tests/faults/test_diskfull.sh: a full or failing disk under the object store and, apart,
# under spool_dir. Faults come from the LD_PRELOAD shim built with the server
# (tests/faults/shim/fault_shim.c: write/fsync/rename/posix_fallocate fail with ENOSPC or EIO
# from the Nth call, switched through a control file while the server runs), and, where this
# machine lets the test mount one, from a real small tmpfs. Expected: a JSON 507 (full) or 503
# (I/O error) naming the cause, nothing partial in the store, other requests served meanwhile,
# and uploads working again without a restart once the fault is gone.
# Run: LFSGATE_BIN=build/server/lfsgate bash tests/faults/test_diskfull.sh  (see tests/e2e/lib.sh)
# shellcheck disable=SC2317
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${FAULTS_SHIM:=$(dirname "$(dirname "$LFSGATE_BIN")")/tests/faults/lfs_fault_shim.so}"
MIB=1048576

if [[ ! -f $FAULTS_SHIM ]]; then
    echo "FAIL diskfull: the fault shim $FAULTS_SHIM is not built (ninja -C <build>)"
    exit 1
fi

# start_faulty [EXTRA_YAML]: local store and spool_dir in the test dir, lfsgate under the shim.
start_faulty() {
    STORE=$E2E_TMP/storage
    SPOOL=${SPOOL:-$E2E_TMP/spool}
    CONTROL=$E2E_TMP/fault
    CONFIG=$E2E_TMP/lfsgate.yaml
    mkdir -p "$SPOOL" "$STORE"
    : >"$CONTROL"
    write_config "$CONFIG" "$STORE" "SERVER: {spool_dir: \"$SPOOL\"}
${1:-}"
    # ASan wants to be first in the preload order; the shim does not allocate through it.
    LD_PRELOAD=$FAULTS_SHIM LFS_FAULT_CONTROL=$CONTROL \
        ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 \
        start_lfsgate --config "$CONFIG"
}

fault() { echo "$*" >"$CONTROL"; }
no_fault() { : >"$CONTROL"; }

# put_object FILE [CURL_ARGS...]: batch + PUT (no verify); sets HTTP_* for the PUT.
put_object() {
    local f=$1
    shift
    lfs_batch_href "$(lfs_url org repo)" upload "$(sha256_of "$f")" "$(file_size "$f")"
    http PUT "$ACTION_HREF" -H 'Content-Type: application/octet-stream' "${ACTION_HEADERS[@]}" -T "$f" "$@"
}
# An HTTP/1.1 PUT over 4 MiB is written to the store as it arrives (server/guard.c, "bodies
# the handler reads as they arrive") and never touches spool_dir; over HTTP/1.0 h2o still
# reads the whole body into spool_dir first, as it does for chunked bodies and HTTP/2.
SPOOLED=--http1.0

# served_meanwhile FILE: the stored object FILE downloads intact and a batch is answered.
served_meanwhile() {
    local oid
    oid=$(sha256_of "$1")
    lfs_download_href "$(lfs_url org repo)" "$oid" "$(file_size "$1")"
    http GET "$DL_HREF" "${DL_HEADERS[@]}"
    assert_status 200
    assert_same_file "$1" "$HTTP_BODY" "download while the disk is failing"
    http GET "http://127.0.0.1:$LFSGATE_PORT/healthz"
    assert_status 200
}

# store_fault_case FAULT_LINE_TAIL STATUS MESSAGE_PART SIZE: one fault on the store.
store_fault_case() {
    local tail=$1 status=$2 part=$3 size=$4 a b
    start_faulty
    a=$E2E_TMP/a.bin
    b=$E2E_TMP/b.bin
    random_file "$a" 200000
    random_file "$b" "$size"
    lfs_upload "$(lfs_url org repo)" "$a"
    fault "$STORE $tail"
    put_object "$b"
    assert_status "$status"
    assert_json_error
    assert_file_contains "$HTTP_BODY" "$part" "error message"
    assert_file_contains "$HTTP_BODY" "$(sha256_of "$b")" "error message names the object"
    # nothing partial: the store holds the first object only, no temporary file
    assert_only_files "$STORE" "org/repo/$(sha256_of "$a")"
    lfs_batch "$(lfs_url org repo)" download "$(sha256_of "$b")" "$size"
    assert_status 200
    assert_json "$HTTP_BODY" "d['objects'][0]['error']['code'] == 404" "the failed object is not offered"
    served_meanwhile "$a"
    # the disk recovers: the same upload works without a restart
    no_fault
    lfs_upload "$(lfs_url org repo)" "$b"
    assert_only_files "$STORE" "org/repo/$(sha256_of "$a")" "org/repo/$(sha256_of "$b")"
    served_meanwhile "$b"
    assert_server_alive
}

test_store_write_enospc() { store_fault_case "ENOSPC 0 write" 507 'No space left on device' 300000; }
test_store_write_enospc_midway() { store_fault_case "ENOSPC 3 write" 507 'filesystem is full' $((6 * MIB)); }
test_store_write_eio() { store_fault_case "EIO 1 write" 503 'Input/output error' $((3 * MIB)); }
test_store_fsync_eio() { store_fault_case "EIO 0 fsync" 503 'Input/output error' 300000; }
test_store_fsync_enospc() { store_fault_case "ENOSPC 0 fsync" 507 'No space left on device' 300000; }
test_store_rename_enospc() { store_fault_case "ENOSPC 0 rename" 507 'No space left on device' 300000; }

# spool_dir full: a body that would spill there is refused up front with a JSON 507 naming
# spool_dir; bodies held in memory are still taken, and so are large ones that go straight
# to the store; space back, the large one goes through the spool too.
test_spool_full() {
    local small big
    start_faulty
    small=$E2E_TMP/small.bin
    big=$E2E_TMP/big.bin
    random_file "$small" 100000
    random_file "$big" $((10 * MIB))
    fault "$SPOOL ENOSPC 0 fallocate"
    put_object "$big" "$SPOOLED"
    assert_status 507
    assert_lfs_json # refused before any handler (server/guard.c): no request id yet
    assert_file_contains "$HTTP_BODY" 'SERVER.spool_dir' "507 message"
    assert_only_files "$STORE"
    lfs_upload "$(lfs_url org repo)" "$small"
    served_meanwhile "$small"
    http GET "http://127.0.0.1:$LFSGATE_PORT/metrics"
    assert_file_contains "$HTTP_BODY" 'lfsgate_requests_refused_total{reason="space"} 1' "metrics"
    put_object "$big"
    assert_status 200
    served_meanwhile "$big"
    rm -f "$STORE/org/repo/$(sha256_of "$big")"
    no_fault
    put_object "$big" "$SPOOLED"
    assert_status 200
    served_meanwhile "$big"
    assert_only_files "$SPOOL"
}

# spool_dir failing while a body arrives (space was reported, the reservation fails anyway):
# h2o can only drop the connection. The client must see an error, never a success, nothing
# is stored, and the server goes on.
test_spool_fails_midway() {
    local big small
    start_faulty
    big=$E2E_TMP/big.bin
    small=$E2E_TMP/small.bin
    random_file "$big" $((12 * MIB))
    random_file "$small" 100000
    fault "$SPOOL EIO 1 fallocate"
    put_object "$big" "$SPOOLED"
    [[ $HTTP_STATUS != 2* ]] || fail "an upload whose spool reservation failed answered $HTTP_STATUS"
    assert_only_files "$STORE"
    lfs_upload "$(lfs_url org repo)" "$small"
    served_meanwhile "$small"
    no_fault
    lfs_upload "$(lfs_url org repo)" "$big"
    served_meanwhile "$big"
}

# A filesystem filling up: the store and the spool on a real 24 MiB tmpfs where the test can
# mount one (root with CAP_SYS_ADMIN), otherwise the shim running out of space after 18 writes
# of 1 MiB (six objects of 3 MiB) and then refusing spool reservations (FAULTS_NO_MOUNT=1
# forces that). Uploads go on until
# one is refused; then space comes back behind the server's back.
test_filling_up() {
    local mnt i f n=0 got= real=0
    mnt=$E2E_TMP/mnt
    mkdir -p "$mnt"
    if [[ ${FAULTS_NO_MOUNT:-0} != 1 ]] && mount -t tmpfs -o size=24m lfsgate-faults "$mnt" 2>/dev/null; then
        real=1
        MNT_TO_UNMOUNT=$mnt
        trap 'e2e_rc=$?; umount "$MNT_TO_UNMOUNT" 2>/dev/null; (exit $e2e_rc); e2e_cleanup' EXIT
        STORE=$mnt/store
        SPOOL=$mnt/spool
        CONFIG=$E2E_TMP/lfsgate.yaml
        mkdir -p "$STORE" "$SPOOL"
        write_config "$CONFIG" "$STORE" "SERVER: {spool_dir: \"$SPOOL\"}"
        start_lfsgate --config "$CONFIG"
    else
        echo "no tmpfs can be mounted here: the shim stands for the full disk" >&2
        start_faulty
        fault "$STORE ENOSPC 18 write"
    fi
    for ((i = 0; i < 12; i++)); do
        f=$E2E_TMP/o$i.bin
        random_file "$f" $((3 * MIB))
        put_object "$f"
        if [[ $HTTP_STATUS == 507 ]]; then
            got=$f
            break
        fi
        assert_status_2xx
        n=$((n + 1))
    done
    [[ -n $got ]] || fail "no 507 after $n uploads of 3 MiB"
    assert_json_error
    assert_file_contains "$HTTP_BODY" 'filesystem is full' "507 message"
    # only whole objects, each intact; no temporary file left
    python3 "$FAULTS_DIR/lfs_client.py" scan-local "$STORE" "$E2E_TMP/scan.json" ||
        fail "store on the full filesystem: $(cat "$E2E_TMP/scan.json")"
    assert_json "$E2E_TMP/scan.json" "d['objects'] == $n" "objects on the full filesystem"
    served_meanwhile "$E2E_TMP/o0.bin"
    # a large body written to the store as it arrives: 507 once the store is full (after
    # the body was read, so the client reads the answer), nothing partial left
    random_file "$E2E_TMP/big.bin" $((9 * MIB))
    put_object "$E2E_TMP/big.bin"
    assert_status 507
    assert_json_error
    assert_file_contains "$HTTP_BODY" 'filesystem is full' "507 message"
    python3 "$FAULTS_DIR/lfs_client.py" scan-local "$STORE" "$E2E_TMP/scan.json" ||
        fail "store after the large upload: $(cat "$E2E_TMP/scan.json")"
    assert_json "$E2E_TMP/scan.json" "d['objects'] == $n" "objects after the large upload"
    # one that would go through spool_dir cannot even be spooled: refused up front
    [[ $real == 1 ]] || fault "$SPOOL ENOSPC 0 fallocate"
    put_object "$E2E_TMP/big.bin" "$SPOOLED"
    assert_status 507
    assert_file_contains "$HTTP_BODY" 'SERVER.spool_dir' "507 message"
    # space comes back: the refused upload now works, without a restart
    if [[ $real == 1 ]]; then
        rm -f "$STORE/org/repo/$(sha256_of "$E2E_TMP/o0.bin")" "$STORE/org/repo/$(sha256_of "$E2E_TMP/o1.bin")"
        served_meanwhile "$E2E_TMP/o2.bin"
    else
        no_fault
        served_meanwhile "$E2E_TMP/o0.bin"
    fi
    lfs_upload "$(lfs_url org repo)" "$got"
    served_meanwhile "$got"
    figures filling_up "real tmpfs: $real; $n objects of 3 MiB stored before the 507"
}

run_test diskfull_store_write_enospc test_store_write_enospc
run_test diskfull_store_write_enospc_midway test_store_write_enospc_midway
run_test diskfull_store_write_eio test_store_write_eio
run_test diskfull_store_fsync_eio test_store_fsync_eio
run_test diskfull_store_fsync_enospc test_store_fsync_enospc
run_test diskfull_store_rename_enospc test_store_rename_enospc
run_test diskfull_spool_full test_spool_full
run_test diskfull_spool_fails_midway test_spool_fails_midway
run_test diskfull_filling_up test_filling_up
e2e_finish
