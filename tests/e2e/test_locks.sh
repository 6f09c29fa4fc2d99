#!/usr/bin/env bash
# tests/e2e/test_locks.sh: end-to-end tests of the File Locking API kept in the store (#15),
# over local storage, Azure (Azurite), and the GCS and S3 stand-ins:
#   - the real git-lfs client with two JWT identities: `git lfs lock`, `git lfs locks` (also
#     --verify), `git lfs unlock`, `git lfs unlock --force`, and a push that git-lfs refuses
#     (lfs.locksverify true) because the other identity holds a lock on a changed file;
#     permissions (read-only, write on one object only, no credentials);
#   - two lfsgate processes on one store (a local directory, Azurite, GCS, S3), many clients
#     racing to lock one path: exactly one 201, every other answer a 409 naming the winner; a
#     lock made on one is listed, verified and unlocked through the other; a stale id never
#     removes a newer lock; paging; the batch API beside the lock blobs;
#   - hostile paths, ids, cursors and limits: 4xx JSON and nothing changed in the store;
#     paging with next_cursor; LOCKS: false and bad LOCKS sections.
# Run: LFSGATE_BIN=build/server/lfsgate tests/e2e/test_locks.sh   (see lib.sh for options)
# Test functions are called through run_test, which shellcheck cannot follow:
# shellcheck disable=SC2317
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

LOCKS_PY=$E2E_DIR/locks_client.py

# lpost URL BODY [CURL_ARGS...] / lget URL [CURL_ARGS...]: LFS JSON requests (sets HTTP_*).
lpost() {
    local url=$1 body=$2
    shift 2
    http POST "$url" -H "Content-Type: $LFS_MEDIA_TYPE" -H "Accept: $LFS_MEDIA_TYPE" --data-binary "$body" "$@"
}
lget() {
    local url=$1
    shift
    http GET "$url" -H "Accept: $LFS_MEDIA_TYPE" "$@"
}

# lock_id_of URL PATH [CURL_ARGS...]: the id of the lock on PATH as GET locks?path= shows it
# ("" if none).
lock_id_of() {
    local url=$1 path=$2
    shift 2
    lget "$url/locks?path=$path" "$@"
    assert_status 200
    json "$HTTP_BODY" '(d["locks"][0]["id"] if d["locks"] else "")'
}

# store_snapshot: every file under the storage dir with its content hash.
store_snapshot() {
    (cd "$STORE" 2>/dev/null && find . -type f -print0 | sort -z | xargs -0 -r sha256sum) || true
}

# second_server: starts another lfsgate on the same config, keeping the first running. Sets
# PORT1/PORT2 (first/second); the first is stopped (and checked) when the test ends.
second_server() {
    PID1=$LFSGATE_PID PORT1=$LFSGATE_PORT ERR1=$LFSGATE_ERR
    LFSGATE_PID=
    start_lfsgate --config "$CONFIG"
    PORT2=$LFSGATE_PORT
    URL1="http://127.0.0.1:$PORT1/org/repo.git/info/lfs"
    URL2="http://127.0.0.1:$PORT2/org/repo.git/info/lfs"
}
stop_first_server() {
    stop_lfsgate
    LFSGATE_PID=$PID1 LFSGATE_ERR=$ERR1
    stop_lfsgate
}

# ---------------------------------------------------------------------------------------
# git-lfs with two identities

# git_as DIR TOKEN ARGS...: git in DIR with TOKEN as Bearer; output in $E2E_TMP/git.out.
git_as() {
    local dir=$1 tok=$2 rc=0
    shift 2
    tgit -C "$dir" -c "http.extraHeader=Authorization: Bearer $tok" "$@" >"$E2E_TMP/git.out" 2>&1 || rc=$?
    sed "s/^/git $1| /" "$E2E_TMP/git.out" >&2
    return "$rc"
}

test_git_lfs_lock_two_identities() {
    local url alice bob one ro
    jwt_setup
    url=$(lfs_url org repo)
    alice=$(user_token --scope 'obj:org/repo/*:read,write' --sub alice --name 'Alice A')
    bob=$(user_token --scope 'obj:org/repo/*:read,write' --sub bob --name 'Bob B')
    setup_repo work "$url"
    random_file "$REPO_DIR/a.bin" 1000
    random_file "$REPO_DIR/b.bin" 1000
    tgit -C "$REPO_DIR" add -A
    tgit -C "$REPO_DIR" commit -q -m two
    git_as "$REPO_DIR" "$alice" push -q origin main || fail "push as alice failed: $(tail -n 3 "$E2E_TMP/git.out")"
    tgit -C "$REPO_DIR" config lfs.locksverify true

    git_as "$REPO_DIR" "$alice" lfs lock a.bin || fail "git lfs lock a.bin as alice: $(tail -n 3 "$E2E_TMP/git.out")"
    assert_file_contains "$E2E_TMP/git.out" "Locked a.bin" "git lfs lock output"
    git_as "$REPO_DIR" "$alice" lfs locks || fail "git lfs locks: $(tail -n 3 "$E2E_TMP/git.out")"
    assert_file_matches "$E2E_TMP/git.out" '^a\.bin[[:space:]]+Alice A[[:space:]]+ID:' "git lfs locks output"
    git_as "$REPO_DIR" "$alice" lfs locks --verify || fail "git lfs locks --verify: $(tail -n 3 "$E2E_TMP/git.out")"
    assert_file_matches "$E2E_TMP/git.out" '^O a\.bin' "git lfs locks --verify marks alice's own lock"

    # bob: a second clone
    tgit clone -q --no-checkout "$REPO_BARE" "$E2E_TMP/bob"
    tgit -C "$E2E_TMP/bob" lfs install --local >/dev/null
    tgit -C "$E2E_TMP/bob" config lfs.url "$url"
    tgit -C "$E2E_TMP/bob" config lfs.locksverify true
    git_as "$E2E_TMP/bob" "$bob" checkout -q main || fail "checkout as bob: $(tail -n 3 "$E2E_TMP/git.out")"
    git_as "$E2E_TMP/bob" "$bob" lfs locks --verify || fail "git lfs locks --verify as bob"
    assert_file_matches "$E2E_TMP/git.out" '^  a\.bin[[:space:]]+Alice A' "bob sees alice's lock as theirs"
    if git_as "$E2E_TMP/bob" "$bob" lfs lock a.bin; then
        fail "bob could lock a.bin, locked by alice"
    fi
    assert_file_contains "$E2E_TMP/git.out" "already locked" "git lfs lock output for a taken path"

    # bob changes a.bin: git-lfs refuses the push (alice's lock)
    random_file "$E2E_TMP/bob/a.bin" 2000
    tgit -C "$E2E_TMP/bob" commit -q -am "bob changes a.bin"
    if git_as "$E2E_TMP/bob" "$bob" push origin main; then
        fail "bob's push of a.bin went through although alice holds its lock"
    fi
    assert_file_contains "$E2E_TMP/git.out" "locked" "refused push output"
    assert_file_contains "$E2E_TMP/git.out" "a.bin" "refused push output"
    assert_file_lacks "$E2E_TMP/git.out" "does not support the Git LFS locking API" "push output"

    # bob cannot unlock without force; with force he can (write on the whole repository)
    if git_as "$E2E_TMP/bob" "$bob" lfs unlock a.bin; then
        fail "bob unlocked alice's lock without --force"
    fi
    [[ -n $(lock_id_of "$url" a.bin -H "Authorization: Bearer $alice") ]] || fail "alice's lock is gone after bob's refused unlock"
    git_as "$E2E_TMP/bob" "$bob" lfs unlock --force a.bin || fail "git lfs unlock --force as bob: $(tail -n 3 "$E2E_TMP/git.out")"
    [[ -z $(lock_id_of "$url" a.bin -H "Authorization: Bearer $alice") ]] || fail "a.bin still locked after unlock --force"
    assert_file_matches "$LFSGATE_LOG" '"action":"force-unlock","result":"force-removed","sub":"bob"' "ActivityLog of the forced unlock"
    git_as "$E2E_TMP/bob" "$bob" push origin main || fail "bob's push after the forced unlock: $(tail -n 3 "$E2E_TMP/git.out")"

    # alice locks and unlocks b.bin herself
    git_as "$REPO_DIR" "$alice" lfs lock b.bin || fail "git lfs lock b.bin"
    git_as "$REPO_DIR" "$alice" lfs unlock b.bin || fail "git lfs unlock b.bin: $(tail -n 3 "$E2E_TMP/git.out")"
    [[ -z $(lock_id_of "$url" b.bin -H "Authorization: Bearer $alice") ]] || fail "b.bin still locked after alice's unlock"
    assert_file_matches "$LFSGATE_LOG" '"action":"lock","result":"created","sub":"alice"' "ActivityLog of a lock"
    assert_file_matches "$LFSGATE_LOG" '"action":"unlock","result":"removed","sub":"alice"' "ActivityLog of an unlock"

    # permissions: read-only lists but cannot lock; write on one object locks but cannot
    # force; no credentials: 401
    ro=$(user_token --scope 'obj:org/repo/*:read' --sub reader)
    one=$(user_token --scope "obj:org/repo/$(printf '%064d' 0):read,write" --sub one)
    lpost "$url/locks" '{"path": "c.bin"}' -H "Authorization: Bearer $alice"
    assert_status 201
    local cid
    cid=$(json "$HTTP_BODY" 'd["lock"]["id"]')
    lget "$url/locks" -H "Authorization: Bearer $ro"
    assert_status 200
    lpost "$url/locks" '{"path": "d.bin"}' -H "Authorization: Bearer $ro"
    assert_status 403
    assert_json_error
    lpost "$url/locks/$cid/unlock" '{"force": true}' -H "Authorization: Bearer $ro"
    assert_status 403
    lpost "$url/locks/$cid/unlock" '{"force": true}' -H "Authorization: Bearer $one"
    assert_status 403
    assert_json "$HTTP_BODY" '"whole repository" in d["message"]' "message of a refused force"
    lpost "$url/locks" '{"path": "e.bin"}' -H "Authorization: Bearer $one"
    assert_status 201
    lget "$url/locks"
    assert_status 401
    [[ $(lock_id_of "$url" c.bin -H "Authorization: Bearer $alice") == "$cid" ]] || fail "c.bin's lock changed after refused unlocks"
    http GET "http://127.0.0.1:$LFSGATE_PORT/metrics"
    assert_file_matches "$HTTP_BODY" '^lfsgate_lock_events_total\{event="created"\} [1-9]' "created counter in /metrics"
    assert_file_matches "$HTTP_BODY" '^lfsgate_lock_events_total\{event="force_removed"\} 1$' "force_removed counter"
    harvest_tokens "$E2E_TMP/git.out"
    assert_logs_clean
}

# ---------------------------------------------------------------------------------------
# two processes, one store

# race_and_cross: with servers at $URL1 and $URL2 on one store: 24 clients race for each of
# three paths (exactly one 201, 23 answers 409 naming the winner); a lock made on one is
# listed, verified and unlocked through the other; a stale id never removes a newer lock; of
# many concurrent unlocks of one lock exactly one succeeds.
race_and_cross() {
    local out p id newer
    for p in race/one.bin race/two.bin 'race/thr ee.bin'; do
        out=$(timeout "$E2E_TIMEOUT" python3 "$LOCKS_PY" race "$p" "$URL1" "$URL2" --clients 24)
        echo "race $p: $out" >&2
        printf '%s' "$out" >"$E2E_TMP/race.json"
        assert_json "$E2E_TMP/race.json" 'len(d["created"]) == 1' "exactly one 201 for $p"
        assert_json "$E2E_TMP/race.json" 'len(d["conflicts"]) == 23 and not d["other"]' "23 answers 409 for $p"
        assert_json "$E2E_TMP/race.json" 'set(d["conflicts"]) == set(d["created"])' "every 409 names the winner for $p"
    done

    lpost "$URL1/locks" '{"path": "x/cross.bin"}'
    assert_status 201
    id=$(json "$HTTP_BODY" 'd["lock"]["id"]')
    [[ $(lock_id_of "$URL2" x/cross.bin) == "$id" ]] || fail "lock made on server 1 not listed on server 2"
    lpost "$URL2/locks/verify" '{}'
    assert_status 200
    assert_json "$HTTP_BODY" '"'"$id"'" in [l["id"] for l in d["ours"]] and d["theirs"] == []' "verify on server 2"
    lpost "$URL2/locks/$id/unlock" '{}'
    assert_status 200
    assert_json "$HTTP_BODY" 'd["lock"]["id"] == "'"$id"'"' "unlock answer"
    [[ -z $(lock_id_of "$URL1" x/cross.bin) ]] || fail "lock unlocked on server 2 still listed on server 1"

    lpost "$URL2/locks" '{"path": "x/cross.bin"}'
    assert_status 201
    newer=$(json "$HTTP_BODY" 'd["lock"]["id"]')
    [[ $newer != "$id" ]] || fail "the lock id was reused: $id"
    lpost "$URL1/locks/$id/unlock" '{"force": true}'
    assert_status 404
    assert_json_error
    [[ $(lock_id_of "$URL1" x/cross.bin) == "$newer" ]] || fail "the newer lock was removed by a stale id"

    # many clients unlock one lock at once through both: exactly one 200, the others 404
    out=$(timeout "$E2E_TIMEOUT" python3 "$LOCKS_PY" unlock-race "$newer" "$URL1" "$URL2" --clients 12)
    echo "unlock race: $out" >&2
    printf '%s' "$out" >"$E2E_TMP/unlock.json"
    assert_json "$E2E_TMP/unlock.json" 'd["statuses"] == [200] + [404] * 11' "one 200 and 11 answers 404 to concurrent unlocks"
    [[ -z $(lock_id_of "$URL2" x/cross.bin) ]] || fail "x/cross.bin still locked after the unlock race"
}

# page_through URL COUNT: GET locks 2 at a time, following next_cursor; every one of the
# COUNT locks page/fNNNN is seen once, in ceil(COUNT / 2) pages.
page_through() {
    local url=$1 count=$2 seen='' cur='' i expected
    for ((i = 1; i <= count; i++)); do
        lget "$url/locks?limit=2${cur:+&cursor=$cur}"
        assert_status 200
        seen+=$(json "$HTTP_BODY" '" ".join(l["path"] for l in d["locks"])')" "
        cur=$(json "$HTTP_BODY" 'd.get("next_cursor", "")')
        [[ -n $cur ]] || break
    done
    expected=$(for ((i = 0; i < count; i++)); do printf 'page/f%04d ' "$i"; done | sed 's/ $//')
    assert_eq "$expected" "$(tr ' ' '\n' <<<"$seen" | grep . | sort | tr '\n' ' ' | sed 's/ $//')" "locks seen over the pages"
    lget "$url/locks?limit=2"
    local pages=1
    cur=$(json "$HTTP_BODY" 'd.get("next_cursor", "")')
    while [[ -n $cur ]]; do
        lget "$url/locks?limit=2&cursor=$cur"
        cur=$(json "$HTTP_BODY" 'd.get("next_cursor", "")')
        pages=$((pages + 1))
    done
    assert_eq $(((count + 1) / 2)) "$pages" "pages of 2 for $count locks"
}

# locks_store_config CLASS OPTION...: writes $CONFIG (store_config, basic_streaming) whose
# storage is CLASS with the storage_options lines OPTION ("name: value").
locks_store_config() {
    local lines="      storage_class: $1
      storage_options:" line
    shift
    for line in "$@"; do lines+=$'\n'"        $line"; done
    CONFIG=$E2E_TMP/lfsgate.yaml
    store_config "$CONFIG" basic_streaming "$lines"
}

# remote_store_checks: starts two servers on $CONFIG (a remote store), stores one object in
# org/repo, runs race_and_cross there, and pages through 5 locks made in org/pages.
remote_store_checks() {
    start_lfsgate --config "$CONFIG"
    second_server
    random_file "$E2E_TMP/obj" 1000
    lfs_upload "$URL1" "$E2E_TMP/obj"
    race_and_cross
    timeout "$E2E_TIMEOUT" python3 "$LOCKS_PY" fill "${URL2/repo.git/pages.git}" --count 5 --prefix page/f
    page_through "${URL1/repo.git/pages.git}" 5
}

# remote_store_names PREFIX: after remote_store_checks, $E2E_TMP/names (the store's names, one
# a line, each starting with PREFIX) holds the 3 locks of org/repo, the 5 of org/pages and the
# object, nothing else; the batch API still finds the object beside the locks. Stops both
# servers.
remote_store_names() {
    assert_eq 3 "$(grep -cE "^$1/org/repo/locks/[0-9a-f]{40}\\.lock\$" "$E2E_TMP/names")" "lock objects of org/repo"
    assert_eq 5 "$(grep -cE "^$1/org/pages/locks/[0-9a-f]{40}\\.lock\$" "$E2E_TMP/names")" "lock objects of org/pages"
    assert_eq 9 "$(wc -l <"$E2E_TMP/names")" "names in the store (8 locks, 1 object)"
    lfs_batch "$URL2" download "$(sha256sum "$E2E_TMP/obj" | cut -c 1-64)" 1000
    assert_status 200
    assert_json "$HTTP_BODY" '"actions" in d["objects"][0] and "error" not in d["objects"][0]' "batch of the object beside the locks"
    stop_first_server
}

test_two_servers_race() {
    local n
    start_local_lfsgate
    second_server
    race_and_cross
    n=$(find "$STORE/org/repo/locks" -type f | wc -l)
    assert_eq 3 "$n" "lock files in the store (no temporary file left)"
    stop_first_server
}

# The same on Azurite: Put Blob If-None-Match: *, Delete Blob If-Match, List Blobs with
# metadata; lock blobs under <prefix>/org/repo/locks/ beside the objects, which the batch
# API still reports correctly.
test_azure_two_servers() {
    [[ -x $AZURITE_BIN ]] || fail "azurite: $AZURITE_BIN is missing (run: cd tests/e2e && npm ci)"
    CONTAINER=lfs
    start_azurite
    locks_store_config giftless.storage.azure:AzureBlobsStorage "connection_string: \"$AZ_CS\"" \
        "container_name: $CONTAINER" 'path_prefix: pre/fix'
    remote_store_checks
    python3 "$AZ_TOOL" list "$AZ_ENDPOINT" "$CONTAINER" | cut -d ' ' -f 1 >"$E2E_TMP/names"
    remote_store_names pre/fix

    # 1,100 locks: a listing of them is more than the 1 MiB the HTTP client collects itself
    start_lfsgate --config "$CONFIG"
    local big=http://127.0.0.1:$LFSGATE_PORT/org/big.git/info/lfs cur
    timeout "$E2E_TIMEOUT" python3 "$LOCKS_PY" fill "$big" --count 1100 --prefix big/file-with-a-longer-name-
    lget "$big/locks?limit=1000"
    assert_status 200
    assert_json "$HTTP_BODY" 'len(d["locks"]) == 1000 and len({l["id"] for l in d["locks"]}) == 1000' "first page of 1,100 locks"
    cur=$(json "$HTTP_BODY" 'd["next_cursor"]')
    lget "$big/locks?limit=1000&cursor=$cur"
    assert_status 200
    assert_json "$HTTP_BODY" 'len(d["locks"]) == 100 and "next_cursor" not in d' "second page of 1,100 locks"
}

# stand_in NAME SCRIPT [ARGS...]: starts a loopback stand-in of tests/fakes/ that prints its
# port first; sets FAKE_PORT.
stand_in() {
    local name=$1 script=$2 i
    shift 2
    FAKE_PORT=
    python3 "$E2E_REPO_ROOT/tests/fakes/$script" --port 0 "$@" >"$E2E_TMP/$name.out" 2>"$E2E_TMP/$name.log" </dev/null &
    bg_track $!
    for ((i = 0; i < 100; i++)); do
        FAKE_PORT=$(head -n 1 "$E2E_TMP/$name.out" 2>/dev/null || true)
        [[ -z $FAKE_PORT ]] || return 0
        sleep 0.1
    done
    fail "$script did not start: $(tail -n 3 "$E2E_TMP/$name.log" | tr '\n' ' ')"
}

# gcs_locks CREDENTIAL_LINE: the same on the GCS stand-in (tests/fakes/gcs_fake.py): PUT with
# x-goog-if-generation-match: 0, DELETE with the generation read, the XML API listing, a GET
# per listed lock; lfsgate's calls authorized as CREDENTIAL_LINE says.
gcs_locks() {
    locks_store_config giftless.storage.google_cloud:GoogleCloudStorage 'project_name: dummy-project-id' \
        'bucket_name: lfs-bucket' "$1" 'path_prefix: pre/fix' "endpoint: $GCS_URL"
    remote_store_checks
    curl -sS --noproxy '*' "$GCS_URL/_fake/objects" |
        python3 -c 'import json, sys; print("\n".join(json.load(sys.stdin)))' >"$E2E_TMP/names"
    remote_store_names lfs-bucket/pre/fix
}

GCS_TEST_KEY=$E2E_REPO_ROOT/tests/unit/data/gcs/test_service_account.not-a-test.json

# with the service account's key: lfsgate's calls are V4-signed URLs
test_gcs_two_servers() {
    stand_in gcs gcs_fake.py --key "$GCS_TEST_KEY" --bucket lfs-bucket
    GCS_URL=http://127.0.0.1:$FAKE_PORT
    gcs_locks "account_key_file: $GCS_TEST_KEY"
    assert_eq 0 "$(curl -sS --noproxy '*' "$GCS_URL/_fake/stats" | python3 -c 'import json, sys; print(json.load(sys.stdin)["bearer"])')" "bearer calls with a key"
}

# with workload identity: lfsgate's calls carry the metadata server's access token
test_gcs_workload_identity() {
    stand_in google google_auth_fake.py --key "$GCS_TEST_KEY"
    export GCE_METADATA_HOST=127.0.0.1:$FAKE_PORT
    local google=http://127.0.0.1:$FAKE_PORT
    stand_in gcs gcs_fake.py --key "$GCS_TEST_KEY" --bucket lfs-bucket --tokeninfo "$google/tokeninfo"
    GCS_URL=http://127.0.0.1:$FAKE_PORT
    gcs_locks "serviceaccount_email: test-iam-credentials@dummy-project-id.iam.gserviceaccount.com
        iam_endpoint: $google"
    assert_eq 0 "$(curl -sS --noproxy '*' "$GCS_URL/_fake/stats" | python3 -c 'import json, sys; print(json.load(sys.stdin)["signed"])')" "signed calls without a key"
}

# The same on the S3 stand-in (tests/fakes/s3_fake.py, SigV4 enforced): PutObject with
# If-None-Match: *, DeleteObject with If-Match: the ETag read, ListObjectsV2 of the locks'
# prefix, a GetObject per listed lock.
test_s3_two_servers() {
    stand_in s3 s3_fake.py --access-key AKIDLFSGATELOCKS --secret-key 'locks/test+secret' \
        --bucket lfs-bucket --region eu-west-1 --quiet
    local s3_url=http://127.0.0.1:$FAKE_PORT
    export AWS_ACCESS_KEY_ID=AKIDLFSGATELOCKS AWS_SECRET_ACCESS_KEY='locks/test+secret' AWS_REGION=eu-west-1
    unset AWS_SESSION_TOKEN AWS_SHARED_CREDENTIALS_FILE AWS_PROFILE
    locks_store_config giftless.storage.amazon_s3:AmazonS3Storage 'bucket_name: lfs-bucket' \
        'path_prefix: pre/fix' "endpoint: $s3_url"
    remote_store_checks
    curl -sS --noproxy '*' "$s3_url/_fake/objects" |
        python3 -c 'import json, sys; print("\n".join(json.load(sys.stdin)))' >"$E2E_TMP/names"
    remote_store_names lfs-bucket/pre/fix
    curl -sS --noproxy '*' "$s3_url/_fake/stats" >"$E2E_TMP/stats.json"
    assert_json "$E2E_TMP/stats.json" 'd.get("conditional", 0) >= 3 * 24 + 8' "conditional PutObject/DeleteObject calls at the stand-in"
}

# ---------------------------------------------------------------------------------------
# hostile input and paging

test_hostile_input_and_paging() {
    local url before after body
    start_local_lfsgate
    url=$(lfs_url org repo)
    timeout "$E2E_TIMEOUT" python3 "$LOCKS_PY" fill "$url" --count 5 --prefix page/f
    before=$(store_snapshot)

    local long
    long=$(head -c 1100 /dev/zero | tr '\0' a)
    for body in '{"path": "../etc/passwd"}' '{"path": "a/../../b"}' '{"path": "/abs.bin"}' \
        '{"path": "a//b"}' '{"path": "a/./b"}' '{"path": "dir/"}' '{"path": ""}' '{"path": 5}' \
        '{"path": null}' '{}' '[]' 'not json' '{"path": "a\u0000b"}' '{"path": "a\u0001b"}' \
        "{\"path\": \"$long\"}" '{"path": "x", "path": "y"}' '{"path": "x", "ref": 7}' \
        '{"path": "x", "ref": {"name": 5}}'; do
        lpost "$url/locks" "$body"
        assert_status 400 422
        assert_json_error
    done
    for q in 'path=..%2Fx' 'path=%2Fabs' 'path=%00' 'path=a%01' 'id=..%2F..%2Fx' 'id=zz' \
        "id=$(printf '%040d' 0)" 'cursor=..%2F..%2Fetc' "cursor=$(printf '%041d' 1)" 'cursor=ABC' \
        'limit=0' 'limit=-1' 'limit=1001' 'limit=abc' 'limit=99999999999999999999' 'limit=1.5' \
        "refspec=$(head -c 1100 /dev/zero | tr '\0' r)"; do
        lget "$url/locks?$q"
        assert_status 400
        assert_json_error
    done
    for body in '{"limit": 0}' '{"limit": "10"}' '{"limit": 1.5}' '{"cursor": 5}' \
        '{"cursor": "../x"}' '{"ref": "main"}' 'nope'; do
        lpost "$url/locks/verify" "$body"
        assert_status 400 422
        assert_json_error
    done
    lpost "$url/locks/$(printf '%040d' 0)-$(printf '%024d' 0)/unlock" '{"force": "yes"}'
    assert_status 422
    lpost "$url/locks/$(printf '%040d' 0)-$(printf '%024d' 0)/unlock" '{}'
    assert_status 404
    for p in 'locks/..%2F..%2Fx/unlock' 'locks/nothex/unlock' 'locks/a/b' 'locks/x' 'locks/%00/unlock'; do
        lpost "$url/$p" '{}'
        assert_status 400 404
        assert_json_error
    done
    http PUT "$url/locks" -H "Content-Type: $LFS_MEDIA_TYPE" --data-binary '{}'
    assert_status 405
    lget "$url/locks/verify"
    assert_status 405
    after=$(store_snapshot)
    [[ $before == "$after" ]] || fail "hostile requests changed the store: $(diff <(echo "$before") <(echo "$after") | head -n 5)"

    # paging: 5 locks, 2 at a time, each seen once
    page_through "$url" 5
    lpost "$url/locks/verify" '{"limit": 2}'
    assert_json "$HTTP_BODY" 'len(d["ours"]) == 2 and "next_cursor" in d' "verify pages too"
    lget "$(lfs_url other repo)/locks?cursor=$(printf '%040d' 0)"
    assert_status 200
    assert_json "$HTTP_BODY" 'd["locks"] == []' "another repository's listing with a cursor"
    lget "$(legacy_url org repo)/locks?limit=1000"
    assert_status 200
    assert_json "$HTTP_BODY" 'len(d["locks"]) == 5' "legacy route lists the same locks"
    assert_server_alive
}

# ---------------------------------------------------------------------------------------
# config

test_locks_config() {
    start_local_lfsgate 'LOCKS: false'
    lpost "$(lfs_url org repo)/locks/verify" '{}'
    assert_status 404
    assert_json_error
    lpost "$(lfs_url org repo)/locks" '{"path": "a.bin"}'
    assert_status 404
    stop_lfsgate

    # a storage of its own
    write_config "$CONFIG" "$STORE" "LOCKS:
  storage_class: giftless.storage.local_storage:LocalStorage
  storage_options:
    path: $E2E_TMP/lockstore"
    start_lfsgate --config "$CONFIG"
    lpost "$(lfs_url org repo)/locks" '{"path": "a.bin"}'
    assert_status 201
    [[ $(find "$E2E_TMP/lockstore/org/repo/locks" -name '*.lock' | wc -l) == 1 ]] || fail "the lock is not in LOCKS.storage_options.path"
    [[ ! -e $STORE/org/repo/locks ]] || fail "the lock went to the objects' storage"
    stop_lfsgate

    local name re
    for name in unknown_class bad_value missing_class extra_key bad_options; do
        case $name in
            unknown_class) printf 'LOCKS:\n  storage_class: nope\n' ;;
            bad_value) printf 'LOCKS: 5\n' ;;
            missing_class) printf 'LOCKS:\n  storage_options: {path: x}\n' ;;
            extra_key) printf 'LOCKS:\n  storage_class: local\n  colour: red\n' ;;
            bad_options) printf 'LOCKS:\n  storage_class: local\n  storage_options: {path: x, depth: 3}\n' ;;
        esac >"$E2E_TMP/extra.yaml"
        write_config "$E2E_TMP/$name.yaml" "$STORE" "$(cat "$E2E_TMP/extra.yaml")"
        run_lfsgate_cmd 20 --check-config --config "$E2E_TMP/$name.yaml"
        assert_eq 2 "$CMD_RC" "exit status of --check-config with $name"
        re='LOCKS'
        assert_file_matches "$CMD_ERR" "$re" "stderr of --check-config with $name"
    done
}

run_test git_lfs_lock_two_identities test_git_lfs_lock_two_identities
run_test two_servers_race test_two_servers_race
run_test azure_two_servers test_azure_two_servers
run_test gcs_two_servers test_gcs_two_servers
run_test gcs_workload_identity test_gcs_workload_identity
run_test s3_two_servers test_s3_two_servers
run_test hostile_input_and_paging test_hostile_input_and_paging
run_test locks_config test_locks_config
e2e_finish
