#!/usr/bin/env bash
# tests/e2e/test_basic.sh: end-to-end tests of lfsgate with local storage and anonymous
# read-write access: real git + git-lfs pushes and clones (nested org path and legacy
# endpoint), the batch/transfer/verify/locks API with curl, hostile paths, config errors,
# config from the environment, client disconnects and concurrent uploads.
# Run: LFSGATE_BIN=build/server/lfsgate tests/e2e/test_basic.sh   (see lib.sh for options)
# Test functions are called through run_test, which shellcheck cannot follow:
# shellcheck disable=SC2317
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

LOCK_WARNING='does not support the Git LFS locking API'
MIB=1048576

# Config with local storage at $E2E_TMP/storage; sets STORE and CONFIG.
std_config() {
    STORE=$E2E_TMP/storage
    CONFIG=$E2E_TMP/lfsgate.yaml
    write_config "$CONFIG" "$STORE"
}

# push_and_clone LFS_URL OBJECT_DIR_REL: pushes a 1 B, a ~3 MB and a >= 40 MB file with
# git, checks the objects in the storage dir ($STORE/OBJECT_DIR_REL/<oid>, nothing else in
# the tree), clones into a new repo and compares the bytes.
push_and_clone() {
    local url=$1 rel=$2 f oid
    local -a files=(one.bin three.bin data/forty.bin) stored=()
    setup_repo work "$url"
    random_file "$REPO_DIR/one.bin" 1
    random_file "$REPO_DIR/three.bin" $((3 * MIB + 7))
    random_file "$REPO_DIR/data/forty.bin" $((40 * MIB + 13))
    echo "plain text, not in LFS" >"$REPO_DIR/README.txt"
    mkdir -p "$E2E_TMP/orig/data"
    for f in "${files[@]}"; do
        cp "$REPO_DIR/$f" "$E2E_TMP/orig/$f"
    done
    tgit -C "$REPO_DIR" add -A
    tgit -C "$REPO_DIR" commit -q -m "three LFS files"
    [[ $(tgit -C "$REPO_DIR" lfs ls-files | wc -l) == 3 ]] || fail "git lfs ls-files: expected 3 LFS files"
    git_push "$REPO_DIR"
    assert_file_lacks "$E2E_TMP/push.out" "$LOCK_WARNING" "git push output"
    for f in "${files[@]}"; do
        oid=$(sha256_of "$E2E_TMP/orig/$f")
        assert_same_file "$E2E_TMP/orig/$f" "$STORE/$rel/$oid" "stored object of $f"
        stored+=("$rel/$oid")
    done
    assert_only_files "$STORE" "${stored[@]}"

    clone_repo "$REPO_BARE" "$E2E_TMP/clone" "$url"
    for f in "${files[@]}"; do
        assert_same_file "$E2E_TMP/orig/$f" "$E2E_TMP/clone/$f" "cloned $f"
    done
    assert_same_file "$REPO_DIR/README.txt" "$E2E_TMP/clone/README.txt" "cloned README.txt"
    assert_server_alive
}

test_git_nested_org() {
    std_config
    start_lfsgate --config "$CONFIG"
    push_and_clone "$(lfs_url group/sub repo)" group/sub/repo
}

test_git_legacy_endpoint() {
    std_config
    start_lfsgate --config "$CONFIG"
    push_and_clone "$(legacy_url org repo)" org/repo
}

# push prints no locking warning, and /locks/verify answers JSON 404 (or a real lock list).
check_locks_verify() {
    lfs_post "$1/locks/verify" '{"ref": {"name": "refs/heads/main"}, "limit": 100}'
    case $HTTP_STATUS in
        404) assert_json_error ;;
        200) assert_lfs_json
             assert_json "$HTTP_BODY" 'isinstance(d.get("ours"), list) and isinstance(d.get("theirs"), list)' "$HTTP_WHAT" ;;
        *) fail "$HTTP_WHAT: expected 404 (no locking) or 200, got $HTTP_STATUS (git-lfs warns on anything else): $(http_body_excerpt)" ;;
    esac
}

test_push_no_locking_warning() {
    local url
    std_config
    start_lfsgate --config "$CONFIG"
    url=$(lfs_url group/sub repo)
    setup_repo work "$url"
    random_file "$REPO_DIR/a.bin" 1000
    tgit -C "$REPO_DIR" add -A
    tgit -C "$REPO_DIR" commit -q -m a
    git_push "$REPO_DIR"
    assert_file_lacks "$E2E_TMP/push.out" "$LOCK_WARNING" "git push output"
    assert_file_exists "$STORE/group/sub/repo/$(sha256_of "$REPO_DIR/a.bin")" "pushed object"
    check_locks_verify "$url"
    check_locks_verify "$(legacy_url org repo)"
}

test_corrupt_upload_refused() {
    local base oid size href
    local -a hdr=()
    std_config
    start_lfsgate --config "$CONFIG"
    base=$(lfs_url org repo)
    random_file "$E2E_TMP/a" 100000
    random_file "$E2E_TMP/b" 100000
    oid=$(sha256_of "$E2E_TMP/a")
    size=100000
    lfs_batch_href "$base" upload "$oid" "$size"
    href=$ACTION_HREF
    hdr=("${ACTION_HEADERS[@]}")

    # same size, other bytes
    http PUT "$href" "${hdr[@]}" -H 'Content-Type: application/octet-stream' -T "$E2E_TMP/b"
    assert_status 422
    assert_json_error
    assert_no_file "$STORE/org/repo/$oid" "object after a corrupt upload"
    assert_only_files "$STORE"

    # one byte short, one byte too many
    head -c $((size - 1)) "$E2E_TMP/a" >"$E2E_TMP/short"
    http PUT "$href" "${hdr[@]}" -H 'Content-Type: application/octet-stream' -T "$E2E_TMP/short"
    assert_status 400 422
    assert_json_error
    { cat "$E2E_TMP/a"; printf 'x'; } >"$E2E_TMP/long"
    http PUT "$href" "${hdr[@]}" -H 'Content-Type: application/octet-stream' -T "$E2E_TMP/long"
    assert_status 400 413 422
    assert_json_error
    assert_only_files "$STORE"

    # a corrupt body large enough to be spilled to a temp file by the HTTP layer (> 32 MiB)
    random_file "$E2E_TMP/big" $((33 * MIB))
    random_file "$E2E_TMP/big2" $((33 * MIB))
    lfs_batch "$base" upload "$(sha256_of "$E2E_TMP/big")" $((33 * MIB))
    assert_status 200
    href=$(action_href "$HTTP_BODY" 0 upload)
    mapfile -t hdr < <(action_header_args "$HTTP_BODY" 0 upload)
    http PUT "$href" "${hdr[@]}" -H 'Content-Type: application/octet-stream' -T "$E2E_TMP/big2"
    assert_status 422
    assert_json_error
    assert_only_files "$STORE"

    # control: the right bytes on the same href are accepted
    lfs_upload "$base" "$E2E_TMP/a"
    assert_same_file "$E2E_TMP/a" "$STORE/org/repo/$oid" "stored object"
    assert_only_files "$STORE" "org/repo/$oid"
}

test_range_download() {
    local base oid n=100000
    std_config
    start_lfsgate --config "$CONFIG"
    base=$(lfs_url group/sub repo)
    random_file "$E2E_TMP/a" "$n"
    oid=$(sha256_of "$E2E_TMP/a")
    lfs_upload "$base" "$E2E_TMP/a"
    lfs_download_href "$base" "$oid" "$n"

    http GET "$DL_HREF" "${DL_HEADERS[@]}"
    assert_status 200
    assert_same_file "$E2E_TMP/a" "$HTTP_BODY" "full download"
    assert_match "$(http_header Content-Type)" '^application/octet-stream' "Content-Type of a download"

    http GET "$DL_HREF" "${DL_HEADERS[@]}" -H 'Range: bytes=10-'
    assert_status 206
    assert_eq "bytes 10-$((n - 1))/$n" "$(http_header Content-Range)" "Content-Range for bytes=10-"
    tail -c +11 "$E2E_TMP/a" >"$E2E_TMP/tail"
    assert_same_file "$E2E_TMP/tail" "$HTTP_BODY" "body for bytes=10-"

    http GET "$DL_HREF" "${DL_HEADERS[@]}" -H 'Range: bytes=0-9'
    assert_status 206
    assert_eq "bytes 0-9/$n" "$(http_header Content-Range)" "Content-Range for bytes=0-9"
    head -c 10 "$E2E_TMP/a" >"$E2E_TMP/head"
    assert_same_file "$E2E_TMP/head" "$HTTP_BODY" "body for bytes=0-9"

    http GET "$DL_HREF" "${DL_HEADERS[@]}" -H "Range: bytes=$((n - 10))-$((n + 1000))"
    assert_status 206
    assert_eq "bytes $((n - 10))-$((n - 1))/$n" "$(http_header Content-Range)" "Content-Range for a range past the end"
    tail -c 10 "$E2E_TMP/a" >"$E2E_TMP/last"
    assert_same_file "$E2E_TMP/last" "$HTTP_BODY" "body for a range past the end"

    http GET "$DL_HREF" "${DL_HEADERS[@]}" -H "Range: bytes=$n-"
    assert_status 416
    assert_eq "bytes */$n" "$(http_header Content-Range)" "Content-Range of a 416"
    assert_server_alive
}

test_verify_endpoint() {
    local base oid size vhref href
    local -a hdr=() vhdr=()
    std_config
    start_lfsgate --config "$CONFIG"
    base=$(lfs_url group/sub repo)
    random_file "$E2E_TMP/a" 5000
    oid=$(sha256_of "$E2E_TMP/a")
    size=5000
    lfs_batch "$base" upload "$oid" "$size"
    assert_status 200
    href=$(action_href "$HTTP_BODY" 0 upload)
    vhref=$(action_href "$HTTP_BODY" 0 verify)
    [[ -n $href && -n $vhref ]] || fail "batch upload: expected upload and verify actions, got: $(http_body_excerpt)"
    mapfile -t hdr < <(action_header_args "$HTTP_BODY" 0 upload)
    mapfile -t vhdr < <(action_header_args "$HTTP_BODY" 0 verify)

    lfs_post "$vhref" "{\"oid\": \"$oid\", \"size\": $size}" "${vhdr[@]}"
    assert_status 404
    assert_json_error

    http PUT "$href" "${hdr[@]}" -T "$E2E_TMP/a"
    assert_status_2xx

    lfs_post "$vhref" "{\"oid\": \"$oid\", \"size\": $size}" "${vhdr[@]}"
    assert_status 200
    lfs_post "$vhref" "{\"oid\": \"$oid\", \"size\": $((size + 1))}" "${vhdr[@]}"
    assert_status 404 422
    assert_json_error
    # the verify action's token names this object only: another oid is refused with it...
    lfs_post "$vhref" "{\"oid\": \"$(printf 'a%.0s' {1..64})\", \"size\": 1}" "${vhdr[@]}"
    assert_status 403
    assert_json_error
    # ...and is simply missing for an anonymous read-write caller
    lfs_post "$vhref" "{\"oid\": \"$(printf 'a%.0s' {1..64})\", \"size\": 1}"
    assert_status 404
    assert_json_error
    lfs_post "$vhref" '{"oid": ' "${vhdr[@]}"
    assert_status 400 422
    assert_json_error

    # the documented route, without the action's headers (anonymous read-write)
    lfs_post "$base/objects/storage/verify" "{\"oid\": \"$oid\", \"size\": $size}"
    assert_status 200
}

# assert_object_error INDEX CODE: the last batch answer is 200 and object INDEX carries an
# error with CODE and no actions.
assert_object_error() {
    assert_json "$HTTP_BODY" "d['objects'][$1].get('error', {}).get('code') == $2 and not d['objects'][$1].get('actions')" \
        "$HTTP_WHAT: object $1 should carry error $2"
}

# assert_invalid_oid_refused BODY: top-level 422, or 200 with a per-object 422.
assert_invalid_refused() {
    local body=$1
    lfs_post "$BASE/objects/batch" "$body"
    case $HTTP_STATUS in
        422) assert_json_error ;;
        200) assert_lfs_json
             assert_object_error 0 422 ;;
        *) fail "$HTTP_WHAT with $body: expected 422 or 200 with a per-object 422, got $HTTP_STATUS: $(http_body_excerpt)" ;;
    esac
}

test_batch_errors() {
    local good missing1 missing2 upper
    std_config
    start_lfsgate --config "$CONFIG"
    BASE=$(lfs_url group/sub repo)
    good=$(printf 'x' | sha256sum | cut -d ' ' -f 1)
    missing1=$(printf 'missing-1' | sha256sum | cut -d ' ' -f 1)
    missing2=$(printf 'missing-2' | sha256sum | cut -d ' ' -f 1)
    upper=$(tr 'a-f' 'A-F' <<<"$good")

    # control: a valid request succeeds
    lfs_batch "$BASE" upload "$good" 1
    assert_status 200
    assert_lfs_json
    assert_json "$HTTP_BODY" 'd.get("transfer") == "basic" and d["objects"][0]["oid"] == "'"$good"'" and "upload" in d["objects"][0].get("actions", {})' "$HTTP_WHAT"

    for body in 'this is not json' '{"operation": "upload", "objects": [' '[]' \
        '{"operation": "delete", "objects": []}' '{"operation": "download"}'; do
        lfs_post "$BASE/objects/batch" "$body"
        assert_status 422
        assert_json_error
    done

    assert_invalid_refused "{\"operation\": \"upload\", \"objects\": [{\"oid\": \"$upper\", \"size\": 1}]}"
    assert_invalid_refused "{\"operation\": \"download\", \"objects\": [{\"oid\": \"$upper\", \"size\": 1}]}"
    assert_invalid_refused '{"operation": "upload", "objects": [{"oid": "abc123", "size": 1}]}'
    assert_invalid_refused '{"operation": "download", "objects": [{"oid": "../../../../etc/passwd", "size": 1}]}'
    assert_invalid_refused "{\"operation\": \"upload\", \"objects\": [{\"oid\": \"$good\", \"size\": -1}]}"
    # a valid and an invalid object together: either all refused, or per object
    lfs_post "$BASE/objects/batch" "{\"operation\": \"upload\", \"objects\": [{\"oid\": \"$good\", \"size\": 1}, {\"oid\": \"abc\", \"size\": 1}]}"
    case $HTTP_STATUS in
        422) assert_json_error ;;
        200) assert_json "$HTTP_BODY" '"upload" in d["objects"][0].get("actions", {})' "$HTTP_WHAT: the valid object"
             assert_object_error 1 422 ;;
        *) fail "$HTTP_WHAT (valid + invalid oid): expected 422 or 200, got $HTTP_STATUS" ;;
    esac

    # everything missing on download: 200 with per-object 404 errors, not a top-level 404
    lfs_post "$BASE/objects/batch" "{\"operation\": \"download\", \"transfers\": [\"basic\"], \"objects\": [{\"oid\": \"$missing1\", \"size\": 10}, {\"oid\": \"$missing2\", \"size\": 20}]}"
    assert_status 200
    assert_lfs_json
    assert_object_error 0 404
    assert_object_error 1 404

    # transfers: only unknown ones -> 422; the first configured one wins
    lfs_batch "$BASE" upload "$good" 1 '["no-such-transfer"]'
    assert_status 422
    assert_json_error
    lfs_batch "$BASE" upload "$good" 1 '["no-such-transfer", "basic"]'
    assert_status 200
    assert_json "$HTTP_BODY" 'd.get("transfer") == "basic"' "$HTTP_WHAT"

    # Accept
    http POST "$BASE/objects/batch" -H 'Accept: text/html' -H "Content-Type: $LFS_MEDIA_TYPE" \
        --data-binary "{\"operation\": \"download\", \"objects\": [{\"oid\": \"$good\", \"size\": 1}]}"
    assert_status 406
    assert_json_error
    http POST "$BASE/objects/batch" -H 'Accept: application/json' -H 'Content-Type: application/json' \
        --data-binary "{\"operation\": \"download\", \"objects\": [{\"oid\": \"$good\", \"size\": 1}]}"
    assert_status 200
    assert_server_alive
}

# get_refused URL_PATH: GET must be 4xx and must not return the decoy bytes.
get_refused() {
    http GET "http://127.0.0.1:$LFSGATE_PORT$1"
    assert_status_4xx
    if grep -qF "$DECOY_MARK" "$HTTP_BODY"; then
        fail "$HTTP_WHAT served a file outside the storage dir"
    fi
}

# put_refused URL_PATH: PUT of the canary object must be 4xx.
put_refused() {
    http PUT "http://127.0.0.1:$LFSGATE_PORT$1" -H 'Content-Type: application/octet-stream' -T "$E2E_TMP/canary"
    assert_status_4xx
}

test_hostile_paths() {
    local soid coid p
    # storage deep inside the temp dir, so that "../" escapes still land where we can look
    STORE=$E2E_TMP/w/x/store
    CONFIG=$E2E_TMP/lfsgate.yaml
    write_config "$CONFIG" "$STORE"
    start_lfsgate --config "$CONFIG"

    # decoys outside the store where traversal would lead: <store>/../secret/repo/<oid>
    # and <store>/../repo/<oid>
    DECOY_MARK="decoy-$RANDOM-$RANDOM-outside-the-store"
    printf '%s\n' "$DECOY_MARK" >"$E2E_TMP/decoy"
    soid=$(sha256_of "$E2E_TMP/decoy")
    mkdir -p "$E2E_TMP/w/x/secret/repo" "$E2E_TMP/w/x/repo"
    cp "$E2E_TMP/decoy" "$E2E_TMP/w/x/secret/repo/$soid"
    cp "$E2E_TMP/decoy" "$E2E_TMP/w/x/repo/$soid"
    # a decoy inside the store too, to make sure the API works at all (control)
    mkdir -p "$STORE/org/repo"
    cp "$E2E_TMP/decoy" "$STORE/org/repo/$soid"
    http GET "$(lfs_url org repo)/objects/storage/$soid"
    assert_status 200
    assert_same_file "$E2E_TMP/decoy" "$HTTP_BODY" "control download"

    local -a orgs=('..' '%2e%2e' '%2E%2E' '.%2e' '..%2fsecret' 'x/..%2f..%2fsecret' 'x/%2e%2e/%2e%2e/secret'
        './../secret' '../secret' 'org//sub' '%2e' '.' 'a%00b')
    for p in "${orgs[@]}"; do
        get_refused "/$p/repo.git/info/lfs/objects/storage/$soid"
        get_refused "/$p/secret/repo.git/info/lfs/objects/storage/$soid"
    done
    get_refused "/../secret/repo/objects/storage/$soid"
    get_refused "/%2e%2e/repo/objects/storage/$soid"
    get_refused "/secret/%2e%2e.git/info/lfs/objects/storage/$soid"
    get_refused "//repo.git/info/lfs/objects/storage/$soid"
    get_refused "/org/repo.git/info/lfs/objects/storage/..%2f..%2f..%2fsecret%2frepo%2f$soid"
    get_refused "/org/repo.git/info/lfs/objects/storage/../../../secret/repo/$soid"
    get_refused "/org/repo.git/info/lfs/objects/storage/$(tr 'a-f' 'A-F' <<<"$soid")"

    # batch with a traversal org must not offer the decoy
    for p in '..' '%2e%2e' '..%2fsecret' 'org//x'; do
        lfs_batch "http://127.0.0.1:$LFSGATE_PORT/$p/secret/repo.git/info/lfs" download "$soid" "$(file_size "$E2E_TMP/decoy")"
        assert_status_4xx
    done

    # uploads through traversal paths are refused and write nothing anywhere
    printf 'canary-%s\n' "$RANDOM$RANDOM" >"$E2E_TMP/canary"
    coid=$(sha256_of "$E2E_TMP/canary")
    for p in "${orgs[@]}"; do
        put_refused "/$p/repo.git/info/lfs/objects/storage/$coid"
        put_refused "/$p/secret/repo.git/info/lfs/objects/storage/$coid"
        lfs_batch "http://127.0.0.1:$LFSGATE_PORT/$p/repo.git/info/lfs" upload "$coid" "$(file_size "$E2E_TMP/canary")"
        assert_status_4xx
    done
    put_refused "/%2e%2e/repo/objects/storage/$coid"
    put_refused "/org/repo.git/info/lfs/objects/storage/..%2f$coid"
    put_refused "//repo.git/info/lfs/objects/storage/$coid"
    if find "$E2E_TMP" -name "*$coid*" | grep -q .; then
        fail "an upload through a hostile path was written: $(find "$E2E_TMP" -name "*$coid*" | head -n 3 | tr '\n' ' ')"
    fi
    assert_only_files "$STORE" "org/repo/$soid"
    assert_server_alive
}

# bad_config_case NAME EXPECTED_STDERR_REGEX: writes $E2E_TMP/NAME.yaml from stdin and
# checks that --check-config and a normal start both exit 2 with the message, and that the
# normal start never listens on its port.
bad_config_case() {
    local name=$1 re=$2 file port pid rc=0 listened=0 i
    file=$E2E_TMP/$name.yaml
    cat >"$file"
    run_lfsgate_cmd 20 --check-config --config "$file"
    assert_eq 2 "$CMD_RC" "exit status of --check-config with $name"
    assert_file_matches "$CMD_ERR" "$re" "stderr of --check-config with $name"

    port=$(free_port)
    (cd "$E2E_TMP/srv" && exec "$LFSGATE_BIN" --config "$file" --listen "127.0.0.1:$port") \
        >"$E2E_TMP/$name.out" 2>"$E2E_TMP/$name.err" </dev/null &
    pid=$!
    bg_track "$pid"
    for ((i = 0; i < 200; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        if port_is_open "$port"; then
            listened=1
        fi
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        fail "lfsgate with $name is still running after 20 s (expected exit status 2)"
    fi
    wait "$pid" || rc=$?
    assert_no_sanitizer_report "$E2E_TMP/$name.err" "lfsgate with $name"
    assert_eq 2 "$rc" "exit status of a normal start with $name"
    assert_eq 0 "$listened" "port listened on by a start with $name"
    assert_file_matches "$E2E_TMP/$name.err" "$re" "stderr of a normal start with $name"
}

test_bad_config() {
    std_config
    # control: the good config passes --check-config and does not start a server
    run_lfsgate_cmd 20 --check-config --config "$CONFIG"
    assert_eq 0 "$CMD_RC" "exit status of --check-config with a good config"

    bad_config_case unknown_storage 'TRANSFER_ADAPTERS\.basic\.options\.storage_class' <<EOF
AUTH_PROVIDERS:
  - giftless.auth.allow_anon:read_write
TRANSFER_ADAPTERS:
  basic:
    factory: giftless.transfer.basic_streaming:factory
    options:
      storage_class: giftless.storage.nowhere:NoSuchStorage
      storage_options:
        path: $STORE
EOF
    bad_config_case unknown_transfer 'TRANSFER_ADAPTERS\.basic\.factory' <<EOF
AUTH_PROVIDERS:
  - giftless.auth.allow_anon:read_write
TRANSFER_ADAPTERS:
  basic:
    factory: giftless.transfer.no_such_adapter:factory
    options:
      storage_class: giftless.storage.local_storage:LocalStorage
      storage_options:
        path: $STORE
EOF
    bad_config_case unknown_auth 'AUTH_PROVIDERS' <<EOF
AUTH_PROVIDERS:
  - giftless.auth.no_such_provider:factory
TRANSFER_ADAPTERS:
  basic:
    factory: giftless.transfer.basic_streaming:factory
    options:
      storage_class: giftless.storage.local_storage:LocalStorage
      storage_options:
        path: $STORE
EOF
    bad_config_case wrong_type 'TRANSFER_ADAPTERS\.basic\.options\.storage_options\.path' <<EOF
AUTH_PROVIDERS:
  - giftless.auth.allow_anon:read_write
TRANSFER_ADAPTERS:
  basic:
    factory: giftless.transfer.basic_streaming:factory
    options:
      storage_class: giftless.storage.local_storage:LocalStorage
      storage_options:
        path: [not, a, string]
EOF
    # libyaml: "mapping values are not allowed in this context" at line 4, column 10 (1-based)
    bad_config_case yaml_syntax 'line 4, column 10' <<EOF
AUTH_PROVIDERS:
  - giftless.auth.allow_anon:read_write
TRANSFER_ADAPTERS: basic
  factory: giftless.transfer.basic_streaming:factory
EOF
    assert_file_contains "$CMD_ERR" "yaml_syntax.yaml" "the YAML error names the file"
}

# upload_canary BASE: uploads a small random object with curl, sets CANARY and CANARY_OID.
upload_canary() {
    CANARY=$E2E_TMP/canary-$RANDOM
    random_file "$CANARY" 2048
    CANARY_OID=$(sha256_of "$CANARY")
    lfs_upload "$1" "$CANARY"
}

test_env_config_file() {
    std_config
    export GIFTLESS_CONFIG_FILE=$CONFIG
    start_lfsgate
    unset GIFTLESS_CONFIG_FILE
    upload_canary "$(lfs_url org repo)"
    assert_same_file "$CANARY" "$STORE/org/repo/$CANARY_OID" "object stored per GIFTLESS_CONFIG_FILE"
    assert_no_file "$E2E_TMP/srv/lfs-storage" "default storage dir"
}

test_env_config_str() {
    STORE=$E2E_TMP/json-store
    export GIFTLESS_CONFIG_STR='{"AUTH_PROVIDERS": ["giftless.auth.allow_anon:read_write"], "TRANSFER_ADAPTERS": {"basic": {"factory": "giftless.transfer.basic_streaming:factory", "options": {"storage_class": "giftless.storage.local_storage:LocalStorage", "storage_options": {"path": "'"$STORE"'"}}}}}'
    start_lfsgate
    unset GIFTLESS_CONFIG_STR
    upload_canary "$(lfs_url group/sub repo)"
    assert_same_file "$CANARY" "$STORE/group/sub/repo/$CANARY_OID" "object stored per GIFTLESS_CONFIG_STR"
    assert_no_file "$E2E_TMP/srv/lfs-storage" "default storage dir"
}

test_default_config() {
    # no --config, no config variables: anonymous read-write, ./lfs-storage
    start_lfsgate
    upload_canary "$(lfs_url org repo)"
    assert_same_file "$CANARY" "$E2E_TMP/srv/lfs-storage/org/repo/$CANARY_OID" "object in ./lfs-storage"
}

test_cli_and_healthz() {
    run_lfsgate_cmd 20 --version
    assert_eq 0 "$CMD_RC" "exit status of --version"
    assert_file_matches "$CMD_OUT" '[0-9]+\.[0-9]+\.[0-9]+' "--version output"
    run_lfsgate_cmd 20 --help
    assert_eq 0 "$CMD_RC" "exit status of --help"
    assert_file_contains "$CMD_OUT" '--config' "--help output"
    assert_file_contains "$CMD_OUT" '--listen' "--help output"
    assert_file_contains "$CMD_OUT" '--check-config' "--help output"
    run_lfsgate_cmd 20 --no-such-option
    [[ $CMD_RC != 0 && $CMD_RC != 124 ]] || fail "an unknown option: expected a prompt non-zero exit, got status $CMD_RC"

    std_config
    start_lfsgate --config "$CONFIG"
    http GET "http://127.0.0.1:$LFSGATE_PORT/healthz"
    assert_status 200
    assert_match "$(http_header Content-Type)" 'json' "Content-Type of /healthz"
    assert_json "$HTTP_BODY" 'isinstance(d, dict)' "/healthz body"
}

test_client_disconnect_mid_upload() {
    local base oid size href rc=0 mode
    local -a hdr=()
    std_config
    start_lfsgate --config "$CONFIG"
    base=$(lfs_url org repo)
    size=$((4 * MIB))
    random_file "$E2E_TMP/a" "$size"
    oid=$(sha256_of "$E2E_TMP/a")
    lfs_batch_href "$base" upload "$oid" "$size"
    href=$ACTION_HREF
    hdr=("${ACTION_HEADERS[@]}")

    # curl gives up after 2 s of a 256 KiB/s upload of 4 MiB
    timeout 60 curl -sS --noproxy '*' -o /dev/null --limit-rate 256K --max-time 2 "${hdr[@]}" \
        -H 'Content-Type: application/octet-stream' -T "$E2E_TMP/a" "$href" 2>>"$E2E_TMP/curl.err" || rc=$?
    assert_eq 28 "$rc" "curl exit status (28 = timed out mid-upload)"

    # raw sockets: half the body, then a clean close (FIN) or an abortive one (RST)
    for mode in fin rst; do
        timeout 60 python3 - "$href" "$E2E_TMP/a" "$mode" "${hdr[@]}" <<'EOF'
import socket, struct, sys, time
from urllib.parse import urlsplit
href, path, mode, hdrs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
u = urlsplit(href)
data = open(path, "rb").read()
extra = "".join(hdrs[i + 1] + "\r\n" for i in range(0, len(hdrs), 2))
head = (f"PUT {u.path} HTTP/1.1\r\nHost: {u.netloc}\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Length: {len(data)}\r\n{extra}\r\n")
s = socket.create_connection((u.hostname, u.port))
s.sendall(head.encode() + data[: len(data) // 2])
time.sleep(0.5)
if mode == "rst":
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
EOF
    done
    sleep 1
    assert_server_alive
    assert_no_file "$STORE/org/repo/$oid" "object after aborted uploads"
    assert_only_files "$STORE"

    # the object can still be uploaded in full afterwards
    lfs_upload "$base" "$E2E_TMP/a"
    assert_same_file "$E2E_TMP/a" "$STORE/org/repo/$oid" "stored object"
    assert_only_files "$STORE" "org/repo/$oid"
}

test_concurrent_same_object() {
    local base oid size href i rc
    local -a hdr=() pids=()
    std_config
    start_lfsgate --config "$CONFIG"
    base=$(lfs_url group/sub repo)
    size=$((3 * MIB + 1))
    random_file "$E2E_TMP/a" "$size"
    oid=$(sha256_of "$E2E_TMP/a")
    lfs_batch_href "$base" upload "$oid" "$size"
    href=$ACTION_HREF
    hdr=("${ACTION_HEADERS[@]}")
    for i in 1 2 3 4 5; do
        timeout "$E2E_TIMEOUT" curl -sS --noproxy '*' -o "$E2E_TMP/put.$i.body" -w '%{http_code}' "${hdr[@]}" \
            -H 'Content-Type: application/octet-stream' -T "$E2E_TMP/a" "$href" >"$E2E_TMP/put.$i.code" 2>>"$E2E_TMP/curl.err" &
        pids+=($!)
    done
    for i in 0 1 2 3 4; do
        rc=0
        wait "${pids[$i]}" || rc=$?
        assert_eq 0 "$rc" "curl exit status of concurrent PUT $((i + 1))"
        assert_match "$(cat "$E2E_TMP/put.$((i + 1)).code")" '^2[0-9][0-9]$' "status of concurrent PUT $((i + 1))"
    done
    assert_same_file "$E2E_TMP/a" "$STORE/group/sub/repo/$oid" "stored object"
    assert_only_files "$STORE" "group/sub/repo/$oid"
    lfs_post "$base/objects/storage/verify" "{\"oid\": \"$oid\", \"size\": $size}"
    assert_status 200
}

# Issue #12: "https://*.example.org" also allowed https://evil.com@x.example.org and origins
# with ':', '?', '#' or '/' before the suffix. A star is part of one DNS label now; origins
# with odd bytes get no CORS headers either (and the server stays up).
test_cors_origin_patterns() {
    local o acao
    CONFIG=$E2E_TMP/lfsgate.yaml
    write_config "$CONFIG" "$E2E_TMP/store" 'CORS:
  allowed_origins: ["https://*.example.org", "http://localhost:*"]'
    start_lfsgate --config "$CONFIG"
    for o in https://portal.example.org https://a-1.example.org http://localhost:3000; do
        http GET "$(lfs_url org repo)/locks" -H "Origin: $o"
        acao=$(http_header Access-Control-Allow-Origin)
        assert_eq "$o" "$acao" "Access-Control-Allow-Origin for $o"
    done
    local -a bad=('https://evil.com@x.example.org' 'https://evil.com:1.example.org'
        'https://evil.com?.example.org' 'https://evil.com#.example.org' 'https://evil.com/.example.org'
        'https://a.b.example.org' 'https://.example.org' 'http://localhost:3000@evil.com'
        $'https://\xff.example.org' $'https://a\x01.example.org' $'https://caf\xc3\xa9.example.org')
    bad+=("https://$(head -c 600 /dev/zero | tr '\0' a).example.org")
    for o in "${bad[@]}"; do
        http GET "$(lfs_url org repo)/locks" -H "Origin: $o"
        [[ $HTTP_STATUS != 000 ]] || fail "no answer for Origin $(printf '%q' "$o" | cut -c 1-80)"
        acao=$(http_header Access-Control-Allow-Origin)
        assert_eq "" "$acao" "Access-Control-Allow-Origin for $(printf '%q' "$o" | cut -c 1-80)"
        http OPTIONS "$(lfs_url org repo)/objects/batch" -H "Origin: $o" -H 'Access-Control-Request-Method: POST'
        assert_eq "" "$(http_header Access-Control-Allow-Origin)" "preflight for $(printf '%q' "$o" | cut -c 1-80)"
    done
    assert_server_alive
}

# SERVER.max_upload_size: a batch answers an object over the limit with a per-object error
# naming the limit (no upload action; objects within it still get theirs), and every 413,
# h2o's own for a too-large body (Content-Length or chunked) included, is LFS JSON with a
# request id. Nothing is stored.
test_max_upload_size() {
    local base small big href
    write_config "$E2E_TMP/lfsgate.yaml" "$E2E_TMP/storage" "SERVER: {max_upload_size: 1000000}"
    STORE=$E2E_TMP/storage
    start_lfsgate --config "$E2E_TMP/lfsgate.yaml"
    base=$(lfs_url org repo)
    random_file "$E2E_TMP/small" 1000000
    random_file "$E2E_TMP/big" 1000001
    small=$(sha256_of "$E2E_TMP/small")
    big=$(sha256_of "$E2E_TMP/big")
    lfs_post "$base/objects/batch" "{\"operation\": \"upload\", \"objects\": [{\"oid\": \"$big\", \"size\": 1000001}, {\"oid\": \"$small\", \"size\": 1000000}]}"
    assert_status 200
    assert_json "$HTTP_BODY" "d['objects'][0]['error']['code'] == 422 and '1000000 bytes' in d['objects'][0]['error']['message'] and 'max_upload_size' in d['objects'][0]['error']['message'] and 'actions' not in d['objects'][0]" "batch for an object over the limit"
    assert_json "$HTTP_BODY" "'upload' in d['objects'][1]['actions']" "batch for an object at the limit"
    href=$(action_href "$HTTP_BODY" 1 upload)
    # a body over the limit sent anyway to the upload href: h2o's 413, as LFS JSON
    http PUT "${href/$small/$big}" -H 'Content-Type: application/octet-stream' -T "$E2E_TMP/big"
    assert_status 413
    assert_json_error
    assert_file_contains "$HTTP_BODY" "1000000 bytes" "413 message"
    [[ -n $(http_header x-request-id) ]] || fail "413 without an x-request-id header"
    http PUT "${href/$small/$big}" -H 'Content-Type: application/octet-stream' \
        -H 'Transfer-Encoding: chunked' -T "$E2E_TMP/big"
    assert_status 413
    assert_json_error
    assert_no_file "$STORE/org/repo/$big" "object over the limit"
    # the one at the limit goes through
    http PUT "$href" -H 'Content-Type: application/octet-stream' -T "$E2E_TMP/small"
    assert_status 200
    assert_same_file "$E2E_TMP/small" "$STORE/org/repo/$small" "object at the limit"
    stop_lfsgate
    assert_file_matches "$LFSGATE_LOG" '"status":413'
}

run_test git_push_clone_nested_org test_git_nested_org
run_test git_push_clone_legacy_endpoint test_git_legacy_endpoint
run_test push_no_locking_warning test_push_no_locking_warning
run_test corrupt_upload_refused test_corrupt_upload_refused
run_test range_download test_range_download
run_test verify_endpoint test_verify_endpoint
run_test batch_errors test_batch_errors
run_test hostile_paths test_hostile_paths
run_test bad_config_exits_2 test_bad_config
run_test env_config_file test_env_config_file
run_test env_config_str test_env_config_str
run_test default_config test_default_config
run_test cli_and_healthz test_cli_and_healthz
run_test client_disconnect_mid_upload test_client_disconnect_mid_upload
run_test concurrent_same_object test_concurrent_same_object
run_test cors_origin_patterns test_cors_origin_patterns
run_test max_upload_size test_max_upload_size
e2e_finish
