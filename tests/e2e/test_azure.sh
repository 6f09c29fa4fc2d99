#!/usr/bin/env bash
# tests/e2e/test_azure.sh: end-to-end tests of lfsgate's Azure Blob backend against Azurite
# (npm "azurite", pinned in tests/e2e/package.json; it checks SAS and Shared Key signatures
# and SAS expiry). Every test starts its own in-memory Azurite on a free loopback port and
# stops it by its pid. Covered: git push and clone through SAS URLs (basic_external) with
# blobs under path_prefix; a read SAS cannot write and an upload SAS cannot read; an expired
# SAS is refused; basic_streaming with Azure (verified uploads, ranged downloads); a
# multipart-basic upload of several parts resumed after a partial upload
# (tests/e2e/multipart_client.py); storage down -> per-object errors naming the storage while
# the server keeps serving; /readyz 503 while the store is down, 200 when back; a key the
# store refuses; same-size corrupt direct uploads (basic_external, multipart-basic) verified
# by size alone, and refused and moved aside with verify_content; a 100-object batch; batches
# answered from one List Blobs (and HEADs past its end); a key that is not base64 is a config
# error.
# Azurite comes from tests/e2e/node_modules (`npm ci` in tests/e2e; done here when missing).
# Run: LFSGATE_BIN=build/server/lfsgate tests/e2e/test_azure.sh   (see lib.sh for options)
# Test functions are called through run_test, which shellcheck cannot follow:
# shellcheck disable=SC2317
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MIB=1048576
MP_CLIENT=$E2E_DIR/multipart_client.py
CONTAINER=lfs
PREFIX=lfs-prefix/sub

# Azurite is installed by the project's own files: npm ci in tests/e2e when it is missing.
if [[ ! -x $AZURITE_BIN ]] && command -v npm >/dev/null 2>&1; then
    (cd "$E2E_DIR" && npm ci --no-audit --no-fund --loglevel=error) >&2 || true
fi
if [[ ! -x $AZURITE_BIN ]]; then
    echo "FAIL azurite: $AZURITE_BIN is missing (run: cd tests/e2e && npm ci)"
    exit 1
fi

# assert_blobs NAME...: the container holds exactly these blobs.
assert_blobs() {
    local seen expected
    seen=$(python3 "$AZ_TOOL" list "$AZ_ENDPOINT" "$CONTAINER" | cut -d ' ' -f 1 | LC_ALL=C sort | tr '\n' ' ')
    expected=$(printf '%s\n' "$@" | sed '/^$/d' | LC_ALL=C sort | tr '\n' ' ')
    [[ $seen == "$expected" ]] || fail "blobs in container $CONTAINER: expected [${expected% }], got [${seen% }]"
}

# assert_blob FILE NAME WHAT: blob NAME holds FILE's bytes.
assert_blob() {
    python3 "$AZ_TOOL" get "$AZ_ENDPOINT" "$CONTAINER" "$2" "$E2E_TMP/blob.check" ||
        fail "$3: blob $2 cannot be read"
    assert_same_file "$1" "$E2E_TMP/blob.check" "$3"
}

# push_and_clone: a 1 B, a ~3 MB and a ~12 MB file with git through lfsgate, blobs checked
# under the prefix, then a clone compared byte for byte.
push_and_clone() {
    local url f oid
    local -a files=(one.bin three.bin data/twelve.bin) blobs=()
    url=$(lfs_url group/sub repo)
    setup_repo work "$url"
    random_file "$REPO_DIR/one.bin" 1
    random_file "$REPO_DIR/three.bin" $((3 * MIB + 7))
    random_file "$REPO_DIR/data/twelve.bin" $((12 * MIB + 13))
    mkdir -p "$E2E_TMP/orig/data"
    for f in "${files[@]}"; do
        cp "$REPO_DIR/$f" "$E2E_TMP/orig/$f"
    done
    tgit -C "$REPO_DIR" add -A
    tgit -C "$REPO_DIR" commit -q -m "three LFS files"
    git_push "$REPO_DIR"
    for f in "${files[@]}"; do
        oid=$(sha256_of "$E2E_TMP/orig/$f")
        blobs+=("$PREFIX/group/sub/repo/$oid")
        assert_blob "$E2E_TMP/orig/$f" "$PREFIX/group/sub/repo/$oid" "blob of $f"
    done
    assert_blobs "${blobs[@]}"
    clone_repo "$REPO_BARE" "$E2E_TMP/clone" "$url"
    for f in "${files[@]}"; do
        assert_same_file "$E2E_TMP/orig/$f" "$E2E_TMP/clone/$f" "cloned $f"
    done
    assert_server_alive
}

test_external_push_clone() {
    start_azurite
    azure_config "$E2E_TMP/lfsgate.yaml" giftless.transfer.basic_external:factory
    start_lfsgate --config "$E2E_TMP/lfsgate.yaml"
    push_and_clone
    # The hrefs are SAS URLs straight to the store, write-only for uploads.
    random_file "$E2E_TMP/new.bin" 1000
    lfs_batch "$(lfs_url org repo)" upload "$(sha256_of "$E2E_TMP/new.bin")" 1000
    assert_status 200
    assert_json "$HTTP_BODY" "d['objects'][0]['actions']['upload']['href'].startswith('$AZ_ENDPOINT/$CONTAINER/$PREFIX/org/repo/')" "upload href"
    assert_json "$HTTP_BODY" "'sp=cw' in d['objects'][0]['actions']['upload']['href'] and 'sr=b' in d['objects'][0]['actions']['upload']['href']" "upload SAS permissions"
    assert_json "$HTTP_BODY" "d['objects'][0]['actions']['upload']['header']['x-ms-blob-type'] == 'BlockBlob'" "upload header"
    assert_json "$HTTP_BODY" "d['objects'][0]['actions']['verify']['href'].startswith('http://127.0.0.1:$LFSGATE_PORT/')" "verify href"
    assert_file_lacks "$LFSGATE_LOG" "sig=" "server log"
    assert_file_lacks "$LFSGATE_LOG" "$DEV_KEY" "server log"
}

# A read SAS cannot write, an upload SAS cannot read; the filename becomes the signed
# Content-Disposition and the upload's content type.
test_sas_permissions() {
    local oid href
    start_azurite
    azure_config "$E2E_TMP/lfsgate.yaml" giftless.transfer.basic_external:factory
    start_lfsgate --config "$E2E_TMP/lfsgate.yaml"
    random_file "$E2E_TMP/a.bin" 5000
    oid=$(sha256_of "$E2E_TMP/a.bin")
    lfs_upload "$(lfs_url org repo)" "$E2E_TMP/a.bin"
    assert_blobs "$PREFIX/org/repo/$oid"

    lfs_post "$(lfs_url org repo)/objects/batch" "{\"operation\": \"download\", \"objects\": [{\"oid\": \"$oid\", \"size\": 5000, \"x-filename\": \"report 1.csv\"}]}"
    assert_status 200
    href=$(action_href "$HTTP_BODY" 0 download)
    assert_match "$href" '[?&]sp=r&' "download SAS permissions"
    http GET "$href"
    assert_status 200
    assert_same_file "$E2E_TMP/a.bin" "$HTTP_BODY" "download through the read SAS"
    assert_eq 'attachment; filename="report 1.csv"' "$(http_header Content-Disposition)" "Content-Disposition"
    random_file "$E2E_TMP/evil.bin" 5000
    http PUT "$href" -H 'x-ms-blob-type: BlockBlob' -T "$E2E_TMP/evil.bin"
    assert_status 403
    http DELETE "$href"
    assert_status 403
    assert_blob "$E2E_TMP/a.bin" "$PREFIX/org/repo/$oid" "blob after refused writes"

    random_file "$E2E_TMP/b.bin" 100
    lfs_post "$(lfs_url org repo)/objects/batch" "{\"operation\": \"upload\", \"objects\": [{\"oid\": \"$(sha256_of "$E2E_TMP/b.bin")\", \"size\": 100, \"extra\": {\"filename\": \"b.csv\"}}]}"
    assert_status 200
    assert_json "$HTTP_BODY" "d['objects'][0]['actions']['upload']['header'].get('x-ms-blob-content-type') == 'text/csv'" "upload content type"
    href=$(action_href "$HTTP_BODY" 0 upload)
    http GET "$href"
    assert_status 403
    # ... and it only reaches its own blob: the same SAS on another name is refused.
    http PUT "${href/$(sha256_of "$E2E_TMP/b.bin")/$oid}" -H 'x-ms-blob-type: BlockBlob' -T "$E2E_TMP/evil.bin"
    assert_status 403
    assert_blob "$E2E_TMP/a.bin" "$PREFIX/org/repo/$oid" "blob after a SAS for another name"
}

test_expired_sas() {
    local href
    start_azurite
    azure_config "$E2E_TMP/lfsgate.yaml" giftless.transfer.basic_external:factory
    sed -i 's/^    options:$/    options:\n      action_lifetime: 1/' "$E2E_TMP/lfsgate.yaml"
    start_lfsgate --config "$E2E_TMP/lfsgate.yaml"
    random_file "$E2E_TMP/a.bin" 1000
    lfs_batch "$(lfs_url org repo)" upload "$(sha256_of "$E2E_TMP/a.bin")" 1000
    assert_status 200
    assert_json "$HTTP_BODY" "d['objects'][0]['actions']['upload']['expires_in'] == 1" "expires_in"
    href=$(action_href "$HTTP_BODY" 0 upload)
    sleep 3
    http PUT "$href" -H 'x-ms-blob-type: BlockBlob' -T "$E2E_TMP/a.bin"
    assert_status 403
    assert_blobs
    # The same request with a longer lifetime works (the refusal was the expiry).
    sed -i 's/action_lifetime: 1$/action_lifetime: 600/' "$E2E_TMP/lfsgate.yaml"
    start_lfsgate --config "$E2E_TMP/lfsgate.yaml"
    lfs_batch "$(lfs_url org repo)" upload "$(sha256_of "$E2E_TMP/a.bin")" 1000
    href=$(action_href "$HTTP_BODY" 0 upload)
    http PUT "$href" -H 'x-ms-blob-type: BlockBlob' -T "$E2E_TMP/a.bin"
    assert_status 201
}

test_streaming_push_clone() {
    local oid bad
    start_azurite
    azure_config "$E2E_TMP/lfsgate.yaml" giftless.transfer.basic_streaming:factory
    start_lfsgate --config "$E2E_TMP/lfsgate.yaml"
    push_and_clone
    # Uploads whose bytes do not hash to the oid store nothing.
    random_file "$E2E_TMP/x.bin" 70000
    random_file "$E2E_TMP/y.bin" 70000
    bad=$(sha256_of "$E2E_TMP/x.bin")
    http PUT "$(lfs_url org repo)/objects/storage/$bad" -T "$E2E_TMP/y.bin"
    assert_status 422
    python3 "$AZ_TOOL" list "$AZ_ENDPOINT" "$CONTAINER" >"$E2E_TMP/list"
    assert_file_lacks "$E2E_TMP/list" "$bad" "blobs after a corrupt upload"
    # Ranged download streamed from the store.
    oid=$(sha256_of "$E2E_TMP/orig/three.bin")
    http GET "$(lfs_url group/sub repo)/objects/storage/$oid" -H 'Range: bytes=1000-'
    assert_status 206
    tail -c +1001 "$E2E_TMP/orig/three.bin" >"$E2E_TMP/tail.bin"
    assert_same_file "$E2E_TMP/tail.bin" "$HTTP_BODY" "ranged download"
    assert_no_sanitizer_report "$LFSGATE_LOG" "lfsgate log"
}

# Bodies over 256 MiB are staged as blocks and committed after the hash matched.
test_streaming_large_staged() {
    local oid
    start_azurite
    azure_config "$E2E_TMP/lfsgate.yaml" giftless.transfer.basic_streaming:factory
    start_lfsgate --config "$E2E_TMP/lfsgate.yaml"
    random_file "$E2E_TMP/big.bin" $((300 * MIB + 5))
    oid=$(sha256_of "$E2E_TMP/big.bin")
    http PUT "$(lfs_url org repo)/objects/storage/$oid" -T "$E2E_TMP/big.bin"
    assert_status 200
    http GET "$(lfs_url org repo)/objects/storage/$oid"
    assert_status 200
    assert_same_file "$E2E_TMP/big.bin" "$HTTP_BODY" "large object"
    rm -f "$HTTP_BODY"
    assert_blobs "$PREFIX/org/repo/$oid"
}

# multipart_yaml [OPTION_LINE]: a "multipart-basic" adapter (for azure_config's EXTRA) over the
# same container and prefix, parts of 1 MiB, OPTION_LINE added to its options.
multipart_yaml() {
    cat <<EOF
  multipart-basic:
    factory: giftless.transfer.multipart:factory
    options:${1:+
$1}
      storage_class: giftless.storage.azure:AzureBlobsStorage
      max_part_size: 1M
      storage_options:
        connection_string: "$AZ_CS"
        container_name: $CONTAINER
        path_prefix: $PREFIX
EOF
}

test_multipart_resume() {
    local oid out extra
    start_azurite
    extra=$(multipart_yaml)
    azure_config "$E2E_TMP/lfsgate.yaml" giftless.transfer.basic_external:factory "$extra"
    start_lfsgate --config "$E2E_TMP/lfsgate.yaml"
    random_file "$E2E_TMP/m.bin" $((3 * MIB + 500000))
    oid=$(sha256_of "$E2E_TMP/m.bin")
    # Interrupted after 2 of 4 parts: nothing committed, 2 blocks staged.
    out=$(python3 "$MP_CLIENT" "$(lfs_url org repo)" "$E2E_TMP/m.bin" --max-parts 2)
    echo "$out" >"$E2E_TMP/mp1.json"
    assert_json "$E2E_TMP/mp1.json" "d['transfer'] == 'multipart-basic' and d['parts'] == 4 and d['uploaded'] == 2" "first attempt"
    assert_json "$E2E_TMP/mp1.json" "set(d['actions']) == {'parts', 'commit', 'abort', 'verify'}" "actions"
    assert_blobs
    [[ $(python3 "$AZ_TOOL" blocks "$AZ_ENDPOINT" "$CONTAINER" "$PREFIX/org/repo/$oid" | wc -l) == 2 ]] ||
        fail "expected 2 staged blocks"
    # Resumed: only the 2 missing parts are asked for, then commit and verify.
    out=$(python3 "$MP_CLIENT" "$(lfs_url org repo)" "$E2E_TMP/m.bin")
    echo "$out" >"$E2E_TMP/mp2.json"
    assert_json "$E2E_TMP/mp2.json" "d['parts'] == 2 and d['uploaded'] == 2 and d['committed'] and d['verified']" "resumed attempt"
    assert_blobs "$PREFIX/org/repo/$oid"
    assert_blob "$E2E_TMP/m.bin" "$PREFIX/org/repo/$oid" "committed blob"
    # Stored: no actions at all.
    out=$(python3 "$MP_CLIENT" "$(lfs_url org repo)" "$E2E_TMP/m.bin")
    echo "$out" >"$E2E_TMP/mp3.json"
    assert_json "$E2E_TMP/mp3.json" "d['actions'] == []" "third attempt"
    # The batch answer itself: fixed-length block ids, want_digest, the commit's body.
    lfs_batch "$(lfs_url org repo)" upload "$(printf '%064x' 42)" $((2 * MIB)) '["multipart-basic", "basic"]'
    assert_status 200
    assert_json "$HTTP_BODY" "[p['size'] for p in d['objects'][0]['actions']['parts']] == [$MIB, $MIB]" "parts"
    assert_json "$HTTP_BODY" "all(p['want_digest'] == 'contentMD5' and 'blockid=' in p['href'] for p in d['objects'][0]['actions']['parts'])" "part hrefs"
    assert_json "$HTTP_BODY" "d['objects'][0]['actions']['commit']['method'] == 'PUT' and d['objects'][0]['actions']['commit']['body'].count('<Latest>') == 2" "commit"
    assert_json "$HTTP_BODY" "d['objects'][0]['actions']['abort']['method'] == 'DELETE' and 'sp=d&' in d['objects'][0]['actions']['abort']['href']" "abort"
    assert_json "$HTTP_BODY" "d['objects'][0]['actions']['parts'][0]['expires_in'] == 21600" "default multipart lifetime"
}

# azurite_on_port PORT: starts Azurite on PORT (a store coming back where lfsgate expects it),
# creates $CONTAINER; sets AZURITE_PID.
azurite_on_port() {
    (cd "$E2E_TMP" && exec "$AZURITE_BIN" --blobHost 127.0.0.1 --blobPort "$1" --inMemoryPersistence \
        --disableTelemetry --skipApiVersionCheck --silent) >"$E2E_TMP/azurite.log" 2>&1 </dev/null &
    AZURITE_PID=$!
    bg_track "$AZURITE_PID"
    for _ in $(seq 300); do port_is_open "$1" 2>/dev/null && break; sleep 0.1; done
    python3 "$AZ_TOOL" mkcontainer "$AZ_ENDPOINT" "$CONTAINER"
}

# readyz_until STATUS: polls /readyz until it answers STATUS (each worker caches its answer
# for 5 s, so a change shows within a few seconds); fails after 20 s.
readyz_until() {
    local deadline=$((SECONDS + 20))
    while :; do
        http GET "http://127.0.0.1:$LFSGATE_PORT/readyz"
        [[ $HTTP_STATUS != "$1" ]] || return 0
        ((SECONDS < deadline)) || fail "/readyz: expected $1 within 20 s, still $HTTP_STATUS: $(http_body_excerpt)"
        sleep 0.5
    done
}

# /readyz (the Helm readiness probe) follows the store: 503 naming it while it is down, 200
# once it is back, 503 again when it goes away; /healthz stays 200 throughout.
test_readyz_store_down() {
    local port
    port=$(free_port)
    AZ_ENDPOINT=http://127.0.0.1:$port/devstoreaccount1
    AZ_CS="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$DEV_KEY;BlobEndpoint=$AZ_ENDPOINT;"
    azure_config "$E2E_TMP/lfsgate.yaml" giftless.transfer.basic_streaming:factory
    start_lfsgate --config "$E2E_TMP/lfsgate.yaml"
    http GET "http://127.0.0.1:$LFSGATE_PORT/readyz"
    assert_status 503
    assert_json "$HTTP_BODY" "d['status'] == 'not ready' and 'azure storage' in d['message']" "/readyz with the store down"
    azurite_on_port "$port"
    readyz_until 200
    assert_json "$HTTP_BODY" "d['status'] == 'ready'" "/readyz with the store up"
    kill "$AZURITE_PID"
    wait "$AZURITE_PID" 2>/dev/null || true
    readyz_until 503
    assert_json "$HTTP_BODY" "d['status'] == 'not ready' and 'azure storage' in d['message']" "/readyz after the store went away"
    http GET "http://127.0.0.1:$LFSGATE_PORT/healthz"
    assert_status 200
    assert_server_alive
}

# Storage down: per-object errors naming the storage; the server keeps serving.
test_storage_down() {
    local dead oid op
    dead=$(free_port)
    AZ_ENDPOINT=http://127.0.0.1:$dead/devstoreaccount1
    AZ_CS="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$DEV_KEY;BlobEndpoint=$AZ_ENDPOINT;"
    azure_config "$E2E_TMP/lfsgate.yaml" giftless.transfer.basic_streaming:factory
    start_lfsgate --config "$E2E_TMP/lfsgate.yaml"
    random_file "$E2E_TMP/a.bin" 100
    oid=$(sha256_of "$E2E_TMP/a.bin")
    for op in upload download; do
        lfs_batch "$(lfs_url org repo)" "$op" "$oid" 100
        assert_status 200
        assert_json "$HTTP_BODY" "d['objects'][0]['error']['code'] in (502, 503, 504) and 'azure storage' in d['objects'][0]['error']['message']" "$op batch with the store down"
        assert_file_lacks "$HTTP_BODY" "sig=" "error message"
    done
    http GET "$(lfs_url org repo)/objects/storage/$oid"
    assert_status 502 503 504
    assert_json_error
    assert_file_contains "$HTTP_BODY" "azure storage" "download error"
    http PUT "$(lfs_url org repo)/objects/storage/$oid" -T "$E2E_TMP/a.bin"
    assert_status 502 503 504
    assert_file_contains "$HTTP_BODY" "azure storage" "upload error"
    http GET "http://127.0.0.1:$LFSGATE_PORT/healthz"
    assert_status 200
    # The store comes back on that port: the same server answers normally.
    azurite_on_port "$dead"
    lfs_batch "$(lfs_url org repo)" upload "$oid" 100
    assert_status 200
    assert_json "$HTTP_BODY" "'upload' in d['objects'][0]['actions']" "upload batch after the store is back"
    assert_server_alive
}

# direct_upload FILE CONTENT_FILE: a basic_external upload of FILE's oid and size whose PUT to
# the signed URL sends CONTENT_FILE instead (the same size: a client or proxy that corrupted
# it), then the verify action, whose answer is left in HTTP_*.
direct_upload() {
    lfs_upload_as "$(lfs_url org repo)" "$1" "$2"
    assert_eq verify "$UPLOAD_STEP" "upload steps of $1"
}

# verify_content: a same-size corrupt upload straight to the store is "verified" by size
# alone (the default, as giftless); with verify_content the verify action reads the blob
# back, answers 422 naming what it hashes to and moves it aside, so the next batch asks for
# an upload again, which then verifies. An intact upload verifies either way.
test_verify_content() {
    local oid
    start_azurite
    random_file "$E2E_TMP/good.bin" 300000
    cp "$E2E_TMP/good.bin" "$E2E_TMP/bad.bin"
    printf 'XXXX' | dd of="$E2E_TMP/bad.bin" bs=1 seek=150000 conv=notrunc status=none
    oid=$(sha256_of "$E2E_TMP/good.bin")
    # without: the corrupt blob passes
    azure_config "$E2E_TMP/lfsgate.yaml" giftless.transfer.basic_external:factory
    start_lfsgate --config "$E2E_TMP/lfsgate.yaml"
    direct_upload "$E2E_TMP/good.bin" "$E2E_TMP/bad.bin"
    assert_status 200
    # ... and now counts as stored: a batch would never ask for it again. Emptied here (a
    # size the batch does not accept as stored) so the same upload can be tried again.
    lfs_batch "$(lfs_url org repo)" upload "$oid" 300000
    assert_json "$HTTP_BODY" "'actions' not in d['objects'][0]" "batch after the corrupt upload"
    python3 "$AZ_TOOL" put "$AZ_ENDPOINT" "$CONTAINER" "$PREFIX/org/repo/$oid" /dev/null
    stop_lfsgate
    # with verify_content
    sed -i 's/^    options:$/    options:\n      verify_content: true/' "$E2E_TMP/lfsgate.yaml"
    grep -q 'verify_content: true' "$E2E_TMP/lfsgate.yaml" || fail "config edit failed"
    start_lfsgate --config "$E2E_TMP/lfsgate.yaml"
    direct_upload "$E2E_TMP/good.bin" "$E2E_TMP/bad.bin"
    assert_status 422
    assert_json_error
    assert_file_contains "$HTTP_BODY" "$(sha256_of "$E2E_TMP/bad.bin")" "verify message"
    assert_file_contains "$HTTP_BODY" "upload it again" "verify message"
    assert_blobs "$PREFIX/.lfsgate-quarantine/org/repo/$oid"
    direct_upload "$E2E_TMP/good.bin" "$E2E_TMP/good.bin"
    assert_status 200
    assert_blob "$E2E_TMP/good.bin" "$PREFIX/org/repo/$oid" "blob after a good upload"
    # a small intact one: verified
    random_file "$E2E_TMP/c.bin" 7
    direct_upload "$E2E_TMP/c.bin" "$E2E_TMP/c.bin"
    assert_status 200
    assert_server_alive
    stop_lfsgate
    # multipart-basic with verify_content on that adapter only: the verify action is the same
    # route, the corrupt parts are refused once committed
    random_file "$E2E_TMP/m.bin" $((2 * 1048576 + 77))
    cp "$E2E_TMP/m.bin" "$E2E_TMP/m-bad.bin"
    printf 'XXXX' | dd of="$E2E_TMP/m-bad.bin" bs=1 seek=1500000 conv=notrunc status=none
    oid=$(sha256_of "$E2E_TMP/m.bin")
    azure_config "$E2E_TMP/mp.yaml" giftless.transfer.basic_external:factory \
        "$(multipart_yaml "      verify_content: true")"
    start_lfsgate --config "$E2E_TMP/mp.yaml"
    if python3 "$E2E_DIR/multipart_client.py" "$(lfs_url org repo)" "$E2E_TMP/m.bin" \
        --content "$E2E_TMP/m-bad.bin" >"$E2E_TMP/mp.out" 2>"$E2E_TMP/mp.err"; then
        fail "a corrupt multipart upload was verified: $(cat "$E2E_TMP/mp.out")"
    fi
    assert_file_contains "$E2E_TMP/mp.err" "verify: 422" "multipart client"
    assert_file_contains "$E2E_TMP/mp.err" "$(sha256_of "$E2E_TMP/m-bad.bin")" "multipart client"
    python3 "$AZ_TOOL" list "$AZ_ENDPOINT" "$CONTAINER" >"$E2E_TMP/blobs"
    assert_file_lacks "$E2E_TMP/blobs" "$PREFIX/org/repo/$oid " "blobs after the corrupt multipart upload"
    python3 "$E2E_DIR/multipart_client.py" "$(lfs_url org repo)" "$E2E_TMP/m.bin" >"$E2E_TMP/mp2.out"
    assert_json "$E2E_TMP/mp2.out" "d['transfer'] == 'multipart-basic' and d['committed'] and d['verified']" "multipart upload after the refusal"
    assert_blob "$E2E_TMP/m.bin" "$PREFIX/org/repo/$oid" "blob after the multipart re-upload"
}

# A key the store does not accept: per-object errors that say so, and no key in them.
test_wrong_key() {
    local wrong
    start_azurite
    wrong=$(printf 'not the account key, 64 bytes long.............................' | base64 -w 0)
    azure_config "$E2E_TMP/lfsgate.yaml" giftless.transfer.basic_external:factory "" \
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$wrong;BlobEndpoint=$AZ_ENDPOINT;"
    start_lfsgate --config "$E2E_TMP/lfsgate.yaml"
    lfs_batch "$(lfs_url org repo)" upload "$(printf '%064x' 7)" 7
    assert_status 200
    assert_json "$HTTP_BODY" "d['objects'][0]['error']['code'] == 502 and '403' in d['objects'][0]['error']['message'] and 'connection_string' in d['objects'][0]['error']['message']" "batch with a wrong key"
    assert_file_lacks "$HTTP_BODY" "$wrong" "error message"
    assert_file_lacks "$LFSGATE_LOG" "$wrong" "server log"
}

# One batch of 100 objects: every object asked at once, every one answered.
test_batch_100() {
    local body i oid
    start_azurite
    azure_config "$E2E_TMP/lfsgate.yaml" giftless.transfer.basic_external:factory
    start_lfsgate --config "$E2E_TMP/lfsgate.yaml"
    random_file "$E2E_TMP/a.bin" 10
    lfs_upload "$(lfs_url org repo)" "$E2E_TMP/a.bin"
    oid=$(sha256_of "$E2E_TMP/a.bin")
    body="{\"operation\": \"upload\", \"objects\": [{\"oid\": \"$oid\", \"size\": 10}"
    for ((i = 1; i < 100; i++)); do
        body+=", {\"oid\": \"$(printf '%064x' "$i")\", \"size\": $i}"
    done
    lfs_post "$(lfs_url org repo)/objects/batch" "$body]}"
    assert_status 200
    assert_json "$HTTP_BODY" "len(d['objects']) == 100 and 'actions' not in d['objects'][0] and all('upload' in o['actions'] for o in d['objects'][1:])" "100-object batch"
}

# azure_calls: lfsgate's count of answered Azure calls so far (its /metrics).
azure_calls() {
    http GET "http://127.0.0.1:$LFSGATE_PORT/metrics"
    assert_status 200
    awk '$1 == "lfsgate_storage_calls_total{backend=\"azure\",outcome=\"ok\"}" { n = $2 } END { print n + 0 }' "$HTTP_BODY"
}

# put_blobs REPO_PREFIX N: N blobs of 1..N bytes named by their sha256 under REPO_PREFIX,
# written straight to Azurite; prints "oid size" lines in name order.
put_blobs() {
    python3 - "$E2E_DIR" "$AZ_ENDPOINT" "$CONTAINER" "$1" "$2" <<'PY'
import hashlib, sys, urllib.parse
sys.path.insert(0, sys.argv[1])
import azurite as A
endpoint, container, prefix, n = sys.argv[2].rstrip("/"), sys.argv[3], sys.argv[4], int(sys.argv[5])
out = []
for i in range(1, n + 1):
    data = b"listing object %d " % i + b"x" * i
    oid = hashlib.sha256(data).hexdigest()
    status, body = A.request("PUT", f"{endpoint}/{container}/{urllib.parse.quote(prefix + oid)}", data,
                             {"x-ms-blob-type": "BlockBlob"})
    assert status == 201, (status, body[:200])
    out.append((oid, len(data)))
for oid, size in sorted(out):
    print(oid, size)
PY
}

# Batches of 8 objects or more first list the repository (one List Blobs) and stat only what
# the listing did not reach: answers are the same as with one HEAD per object.
test_batch_listing() {
    local body calls0 calls1 i
    local -a small=() big=()
    start_azurite
    azure_config "$E2E_TMP/lfsgate.yaml" giftless.transfer.basic_external:factory
    # one worker: what it learns about a repository is per worker thread
    E2E_THREADS=1 start_lfsgate --config "$E2E_TMP/lfsgate.yaml"
    mapfile -t small < <(put_blobs "$PREFIX/org/small/" 12)
    # neighbours the listing must not mistake for objects of org/small
    put_blobs "$PREFIX/org/small/nested/" 2 >/dev/null
    put_blobs "$PREFIX/org/smaller/" 2 >/dev/null
    # small repository: 12 stored (one asked with a wrong size), 8 absent -> one call
    body="{\"operation\": \"download\", \"objects\": ["
    for ((i = 0; i < 12; i++)); do
        set -- ${small[$i]}
        [[ $i == 5 ]] && set -- "$1" $(($2 + 1))
        body+="{\"oid\": \"$1\", \"size\": $2}, "
    done
    for ((i = 1; i <= 8; i++)); do
        body+="{\"oid\": \"$(printf '%064x' "$i")\", \"size\": 1}$([[ $i == 8 ]] || echo ', ')"
    done
    calls0=$(azure_calls)
    lfs_post "$(lfs_url org small)/objects/batch" "$body]}"
    assert_status 200
    cp "$HTTP_BODY" "$E2E_TMP/small.json"
    calls1=$(azure_calls)
    assert_json "$E2E_TMP/small.json" "len(d['objects']) == 20 and all('download' in o.get('actions', {}) for i, o in enumerate(d['objects'][:12]) if i != 5) and d['objects'][5]['error']['code'] == 422 and all(o['error']['code'] == 404 for o in d['objects'][12:])" "download batch on a small repository"
    [[ $((calls1 - calls0)) == 1 ]] || fail "a 20-object batch on a 12-object repository took $((calls1 - calls0)) store calls, expected 1 (the listing)"
    # large repository: 40 stored, a batch of 8 asks for up to 32 entries; the largest oids
    # are beyond the listing and need their own HEAD, present or not
    mapfile -t big < <(put_blobs "$PREFIX/org/big/" 40)
    body="{\"operation\": \"upload\", \"objects\": ["
    for i in 0 1 2 37 38 39; do
        set -- ${big[$i]}
        body+="{\"oid\": \"$1\", \"size\": $2}, "
    done
    body+="{\"oid\": \"$(printf '%064x' 1)\", \"size\": 1}, {\"oid\": \"$(printf 'f%.0s' {1..64})\", \"size\": 1}]}"
    calls0=$(azure_calls)
    lfs_post "$(lfs_url org big)/objects/batch" "$body"
    assert_status 200
    cp "$HTTP_BODY" "$E2E_TMP/big.json"
    calls1=$(azure_calls)
    assert_json "$E2E_TMP/big.json" "len(d['objects']) == 8 and all('actions' not in o and 'error' not in o for o in d['objects'][:6]) and all('upload' in o['actions'] for o in d['objects'][6:])" "upload batch on a large repository"
    # 1 listing + the HEADs of the 4 objects past its 32nd entry (37, 38, 39 and ff..f)
    [[ $((calls1 - calls0)) == 5 ]] || fail "the upload batch took $((calls1 - calls0)) store calls, expected 5 (a listing and 4 HEADs)"
    # the repository is now known to be larger than a listing reaches: HEADs only
    calls0=$calls1
    lfs_post "$(lfs_url org big)/objects/batch" "$body"
    assert_status 200
    assert_json "$HTTP_BODY" "[('actions' in o) for o in d['objects']] == [False] * 6 + [True] * 2" "the same batch again"
    calls1=$(azure_calls)
    [[ $((calls1 - calls0)) == 8 ]] || fail "the second upload batch took $((calls1 - calls0)) store calls, expected 8 HEADs and no listing"
    assert_server_alive
}

test_config_errors() {
    AZ_ENDPOINT=http://127.0.0.1:9/devstoreaccount1
    azure_config "$E2E_TMP/bad.yaml" giftless.transfer.basic_external:factory "" \
        "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=not!base64secret"
    run_lfsgate_cmd 30 --config "$E2E_TMP/bad.yaml" --check-config
    [[ $CMD_RC != 0 ]] || fail "--check-config accepted a key that is not base64"
    assert_file_contains "$CMD_ERR" "TRANSFER_ADAPTERS.basic.options.storage_options.connection_string" "config error"
    assert_file_contains "$CMD_ERR" "base64" "config error"
    assert_file_lacks "$CMD_ERR" "not!base64secret" "config error"
    azure_config "$E2E_TMP/bad2.yaml" giftless.transfer.basic_external:factory "" "UseDevelopmentStorage=true"
    sed -i 's/container_name: lfs/container_name: Bad_Name/' "$E2E_TMP/bad2.yaml"
    run_lfsgate_cmd 30 --config "$E2E_TMP/bad2.yaml" --check-config
    [[ $CMD_RC != 0 ]] || fail "--check-config accepted an invalid container name"
    assert_file_contains "$CMD_ERR" "storage_options.container_name" "config error"
    azure_config "$E2E_TMP/good.yaml" giftless.transfer.basic_external:factory "" "UseDevelopmentStorage=true"
    run_lfsgate_cmd 30 --config "$E2E_TMP/good.yaml" --check-config
    assert_eq 0 "$CMD_RC" "--check-config with UseDevelopmentStorage=true"
}

run_test azure_external_push_clone test_external_push_clone
run_test azure_sas_permissions test_sas_permissions
run_test azure_expired_sas test_expired_sas
run_test azure_streaming_push_clone test_streaming_push_clone
run_test azure_streaming_large_staged test_streaming_large_staged
run_test azure_multipart_resume test_multipart_resume
run_test azure_storage_down test_storage_down
run_test azure_readyz_store_down test_readyz_store_down
run_test azure_wrong_key test_wrong_key
run_test azure_verify_content test_verify_content
run_test azure_batch_100 test_batch_100
run_test azure_batch_listing test_batch_listing
run_test azure_config_errors test_config_errors
e2e_finish
