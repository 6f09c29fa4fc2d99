#!/usr/bin/env bash
# tests/faults/test_kill9.sh: kill -9 of lfsgate at random points while uploads run, then a
# restart: no partial or corrupt object is visible, every object an upload was told is stored
# is there and hashes to its oid, the temporary files of interrupted uploads are removed at
# startup (and only those: not another live process's, not anything else) and the store holds
# nothing but objects. Rounds: local storage with bodies held in memory, local storage with
# bodies over 4 MiB (written to the store's temporary file as they arrive), Azure (Azurite) through basic_streaming and through
# multipart-basic (the client sends parts straight to Azurite; lfsgate plans and verifies).
# Each round starts lfsgate, starts 4 upload threads (tests/faults/lfs_client.py) and kills
# the server after a random 50-1200 ms (2500 for the large bodies); the next round's start is the restart that is checked.
# FAULTS_REPORT=FILE collects the figures (tests/faults/lib.sh).
# Run: LFSGATE_BIN=build/server/lfsgate bash tests/faults/test_kill9.sh  (see tests/e2e/lib.sh)
# shellcheck disable=SC2317
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CLIENT=$FAULTS_DIR/lfs_client.py
# KILL9_ROUNDS_PERCENT: scales every variant's rounds (run-all.sh runs a quarter of them in the
# slower ASan tree to keep the suite's time in bounds).
: "${KILL9_ROUNDS_PERCENT:=100}"

# scan_store [--names-only]: the local store holds only objects that hash to their names (no
# temporary file, nothing else); sets SCAN (the JSON file). Between rounds only the names are
# checked (an object does not change once stored: the last scan hashes them all).
scan_store() {
    SCAN=$E2E_TMP/scan.$RANDOM.json
    python3 "$CLIENT" scan-local "$STORE" "$SCAN" "$@" ||
        fail "local store after restart: $(cat "$SCAN")"
}

# kill_rounds ROUNDS TRANSFER MIN MAX [local [MAX_DELAY_MS]]: ROUNDS x (start, upload, kill -9
# after a random 50..MAX_DELAY_MS ms, default 1200).
# A round where no upload finished yet (a slow tree, a loaded machine) is followed by up to 4
# more with kills 1-4 s later, so the checks are never vacuous. Then a last start and the
# checks through lfsgate. Sets ROUNDS, ROUND_OBJECTS and PHASES.
kill_rounds() {
    local rounds=$1 transfer=$2 min=$3 max=$4 kind=${5:-} max_delay=${6:-1200} i delay cpid pid extra=0
    rounds=$((rounds * KILL9_ROUNDS_PERCENT / 100))
    ((rounds >= 3)) || rounds=3
    : >"$E2E_TMP/results.jsonl"
    for ((i = 1; i <= rounds; i++)); do
        if ((i == rounds && extra < 4)) && ! grep -q '"stored": true' "$E2E_TMP/results.jsonl"; then
            rounds=$((rounds + 1)) # nothing stored so far: one more round, a later kill
            extra=$((extra + 1))
            max_delay=$((max_delay + 1000))
        fi
        start_lfsgate --config "$CONFIG"
        [[ $kind != local ]] || scan_store --names-only
        python3 "$CLIENT" upload "$(lfs_url org repo)" "$E2E_TMP/results.jsonl" --count 200 \
            --threads 4 --min "$min" --max "$max" --transfer "$transfer" --seed "$i$RANDOM" \
            --until-refused &
        cpid=$!
        bg_track "$cpid"
        delay=$((50 + RANDOM % (max_delay - 50)))
        sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
        pid=$LFSGATE_PID
        LFSGATE_PID=
        kill -KILL "$pid"
        wait "$pid" 2>/dev/null || true
        echo "round $i: killed after ${delay} ms" >&2
        timeout 120 tail --pid="$cpid" -f /dev/null || fail "the upload client did not end after the kill"
        wait "$cpid" || fail "the upload client failed in round $i"
    done
    start_lfsgate --config "$CONFIG"
    [[ $kind != local ]] || scan_store
    python3 - "$E2E_TMP/results.jsonl" "$E2E_TMP/oids.txt" "$E2E_TMP/phases.txt" <<'PY'
import collections, json, sys
seen = {}
phases = collections.Counter()
for line in open(sys.argv[1]):
    r = json.loads(line)
    prev = seen.get(r["oid"])
    seen[r["oid"]] = (r["size"], r["stored"] or (prev is not None and prev[1]))
    if not r["stored"] and r["status"] == 0:
        # a batch refused outright came after the kill: it was not cut by it
        phases["refused" if "refused" in r["error"] else r["phase"]] += 1
with open(sys.argv[2], "w") as f:
    for oid, (size, stored) in seen.items():
        f.write(f"{oid} {size} {1 if stored else 0}\n")
with open(sys.argv[3], "w") as f:
    f.write(" ".join(f"{k}={v}" for k, v in sorted(phases.items())))
PY
    python3 "$CLIENT" check "$(lfs_url org repo)" "$E2E_TMP/oids.txt" "$E2E_TMP/check.json" ||
        fail "after restart: $(head -c 600 "$E2E_TMP/check.json")"
    ROUND_OBJECTS=$(wc -l <"$E2E_TMP/oids.txt")
    REPORTED=$(awk '$3 == 1' "$E2E_TMP/oids.txt" | wc -l)
    PHASES=$(cat "$E2E_TMP/phases.txt")
    ((REPORTED > 0)) || fail "no upload finished in $rounds rounds: the kills came too early to test anything"
    assert_json "$E2E_TMP/check.json" "d['intact'] == d['visible'] and d['intact'] >= $REPORTED" "objects after restart"
    ROUNDS=$rounds
    SWEPT=$(cat "$E2E_TMP"/server.*.log | sed -n 's/.*removed \([0-9]*\) temporary files.*/\1/p' | awk '{ s += $1 } END { print s + 0 }')
    SPOOL_SWEPT=$(cat "$E2E_TMP"/server.*.log | sed -n 's/.*removed \([0-9]*\) request body files.*/\1/p' | awk '{ s += $1 } END { print s + 0 }')
}

local_config() { # [EXTRA_YAML]
    STORE=$E2E_TMP/storage
    SPOOL=$E2E_TMP/spool
    CONFIG=$E2E_TMP/lfsgate.yaml
    mkdir -p "$SPOOL"
    write_config "$CONFIG" "$STORE" "SERVER: {spool_dir: \"$SPOOL\"}"
}

test_local_memory_bodies() {
    local_config
    kill_rounds 14 basic 1000 1000000 local
    figures kill9_local_memory "rounds=$ROUNDS objects=$ROUND_OBJECTS reported_stored=$REPORTED intact=$(json "$E2E_TMP/check.json" "d['intact']") corrupt=0 lost=0 cut_in_phase: $PHASES; temp_files_swept=$SWEPT spool_files_swept=$SPOOL_SWEPT; store: $(json "$SCAN" "d['objects']") objects, $(json "$SCAN" "d['bytes']") bytes, $(json "$SCAN" "d['blocks_bytes']") allocated"
}

test_local_large_bodies() {
    local_config
    kill_rounds 12 basic 4500000 9000000 local 2500
    # These bodies never reach spool_dir (server/guard.c reads them as they arrive).
    assert_only_files "$SPOOL"
    figures kill9_local_large "rounds=$ROUNDS objects=$ROUND_OBJECTS reported_stored=$REPORTED intact=$(json "$E2E_TMP/check.json" "d['intact']") corrupt=0 lost=0 cut_in_phase: $PHASES; temp_files_swept=$SWEPT spool_files_swept=$SPOOL_SWEPT; store: $(json "$SCAN" "d['objects']") objects, $(json "$SCAN" "d['bytes']") bytes, $(json "$SCAN" "d['blocks_bytes']") allocated"
}

# Another process writing into the same store holds a lock on its temporary file: the sweep
# of a starting process leaves that file, new files and files not named as lfsgate names its
# own alone, and removes an abandoned one.
test_sweep_only_abandoned() {
    local oid dir lpid
    local_config
    oid=$(printf 'ab%.0s' {1..32})
    dir=$STORE/org/repo
    mkdir -p "$dir"
    head -c 100000 /dev/urandom >"$dir/.$oid.Abc123"   # abandoned: removed
    head -c 1000 /dev/urandom >"$dir/.$oid.Xyz789"     # locked by a live writer: kept
    head -c 1000 /dev/urandom >"$dir/.$oid.New000"     # newer than the start: kept
    head -c 1000 /dev/urandom >"$dir/.$oid.Abc123.bak" # not lfsgate's name: kept
    head -c 1000 /dev/urandom >"$dir/.notanoid.Abc123" # not lfsgate's name: kept
    touch -d '-1 hour' "$dir/.$oid.Abc123" "$dir/.$oid.Xyz789" "$dir/.$oid.Abc123.bak" "$dir/.notanoid.Abc123"
    touch -d '+1 hour' "$dir/.$oid.New000"
    # h2o's spool files (request bodies over 4 MiB), left when a kill lands between their
    # creation and their unlink
    head -c 5000 /dev/urandom >"$SPOOL/lfsgate-body.Abc123" # left by a killed process: removed
    head -c 100 /dev/urandom >"$SPOOL/lfsgate-body.New000"  # newer than the start: kept
    head -c 100 /dev/urandom >"$SPOOL/lfsgate-body.Abc123.keep" # not h2o's name: kept
    touch -d '-1 hour' "$SPOOL/lfsgate-body.Abc123" "$SPOOL/lfsgate-body.Abc123.keep"
    touch -d '+1 hour' "$SPOOL/lfsgate-body.New000"
    # --check-config reads the configuration and changes nothing in the store
    "$LFSGATE_BIN" --check-config --config "$CONFIG" >/dev/null 2>&1 || fail "--check-config refused the config"
    assert_file_exists "$dir/.$oid.Abc123" "abandoned temporary file after --check-config"
    flock -x "$dir/.$oid.Xyz789" sleep 60 &
    lpid=$!
    bg_track "$lpid"
    sleep 0.2
    start_lfsgate --config "$CONFIG"
    assert_no_file "$dir/.$oid.Abc123" "abandoned temporary file"
    assert_file_exists "$dir/.$oid.Xyz789" "temporary file locked by a live writer"
    assert_file_exists "$dir/.$oid.New000" "temporary file newer than the start"
    assert_file_exists "$dir/.$oid.Abc123.bak" "file not named like a temporary file"
    assert_file_exists "$dir/.notanoid.Abc123" "file not named like a temporary file"
    assert_file_contains "$LFSGATE_LOG" 'removed 1 temporary files of interrupted uploads' "startup log"
    assert_file_contains "$LFSGATE_LOG" '1 in use by another process left alone' "startup log"
    assert_only_files "$SPOOL" lfsgate-body.New000 lfsgate-body.Abc123.keep
    assert_file_contains "$LFSGATE_LOG" 'removed 1 request body files left in' "startup log"
    # a reload does not walk the store again
    kill -KILL "$lpid"
    kill -HUP "$LFSGATE_PID"
    sleep 0.5
    assert_file_exists "$dir/.$oid.Xyz789" "temporary file after a reload"
    assert_server_alive
}

azure_setup() {
    start_azurite
    CONFIG=$E2E_TMP/lfsgate.yaml
    faults_azure_config "$CONFIG" "$AZ_CS" "path_prefix: p"
}

test_azure_streaming() {
    azure_setup
    kill_rounds 12 basic 1000 1000000
    figures kill9_azure_streaming "rounds=$ROUNDS objects=$ROUND_OBJECTS reported_stored=$REPORTED intact=$(json "$E2E_TMP/check.json" "d['intact']") corrupt=0 lost=0 cut_in_phase: $PHASES"
}

test_azure_multipart() {
    azure_setup
    kill_rounds 12 multipart-basic 1000000 4000000
    figures kill9_azure_multipart "rounds=$ROUNDS objects=$ROUND_OBJECTS reported_stored=$REPORTED intact=$(json "$E2E_TMP/check.json" "d['intact']") corrupt=0 lost=0 cut_in_phase: $PHASES"
}

run_test kill9_sweep_only_abandoned test_sweep_only_abandoned
run_test kill9_local_memory_bodies test_local_memory_bodies
run_test kill9_local_large_bodies test_local_large_bodies
if [[ -x $AZURITE_BIN ]]; then
    run_test kill9_azure_streaming test_azure_streaming
    run_test kill9_azure_multipart test_azure_multipart
else
    echo "FAIL kill9_azure: $AZURITE_BIN is missing (run: cd tests/e2e && npm ci)"
fi
e2e_finish
