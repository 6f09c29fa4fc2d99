#!/usr/bin/env bash
# End-to-end tests of the github auth provider (giftless.auth.github:factory) against
# tests/fakes/github_fake.py, a loopback stand-in for the GitHub REST API that counts its calls:
# git-lfs with the GitHub token as the Basic password (in lfs.url) pushing and cloning as a
# writer, a reader refused on push (403 shown by git), a stranger refused, restrict_to refusing
# before any call, a 20-object push with a new token making one /user and one permission call,
# an expired cache entry looked up again, a GitHub slowed to 2 s not delaying another
# repository's cached pushes on a one-thread server, GitHub rate limiting and down (503 naming
# GitHub, Retry-After; cached identities keep working), a nested org path, and no token in any
# log.
# Run: LFSGATE_BIN=build/server/lfsgate tests/e2e/test_github.sh   (see lib.sh for options)
# Test functions are called through run_test, which shellcheck cannot follow:
# shellcheck disable=SC2317
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

GITHUB_FAKE=$E2E_REPO_ROOT/tests/fakes/github_fake.py

# gh_token NAME: a fresh random token in GitHub's shape, remembered for assert_logs_clean.
gh_token() {
    local t
    t="ghp_$1$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    remember_token "$t"
    printf '%s\n' "$t"
}

# gh_token_app NAME: the same for a GitHub App installation token (ghs_).
gh_token_app() {
    local t
    t="ghs_$1$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    remember_token "$t"
    printf '%s\n' "$t"
}

# gh_setup [CACHE_YAML [EXTRA_YAML [TOP_YAML]]]: (EXTRA_YAML: more option lines of the
# provider, or more AUTH_PROVIDERS items after it; TOP_YAML: top-level config) tokens WRITER (alice: write on acme/data and
# acme/other), READER (bob: read on acme/data), STRANGER (carol: nothing), the stand-in, a
# config with the github provider pointed at it and a running server. Sets GH_URL.
gh_setup() {
    local cache=${1:-'{auth_other_ttl: 30}'} extra=${2:-} top=${3:-}
    WRITER=$(gh_token alice)
    READER=$(gh_token bob)
    STRANGER=$(gh_token carol)
    FRESH=$(gh_token dave)
    APP_ALL=$(gh_token_app all)
    APP_SEL=$(gh_token_app sel)
    STORE=$E2E_TMP/storage
    CONFIG=$E2E_TMP/lfsgate.yaml
    cat >"$E2E_TMP/world.json" <<EOF
{"users": {"$WRITER": {"login": "alice", "id": 1, "name": "Alice A", "email": "alice@e2e.invalid"},
           "$READER": {"login": "bob", "id": 2, "name": null, "email": null},
           "$STRANGER": {"login": "carol", "id": 3},
           "$FRESH": {"login": "dave", "id": 4}},
 "permissions": {"acme/data": {"alice": "write", "bob": "read", "dave": "admin"},
                 "acme/other": {"alice": "write"}},
 "installations": {
   "$APP_ALL": {"id": 7, "app_id": 70, "app_slug": "lfs-bot", "client_id": "Iv1.abc", "org": "acme",
                "contents": "write", "repositories": "all"},
   "$APP_SEL": {"id": 8, "app_id": 80, "app_slug": "reader-bot", "org": "acme", "contents": "read",
                "repositories": ["r1", "r2", "r3", "r4", "r5", "data"]}}}
EOF
    start_py_fake github_fake "$GITHUB_FAKE" --world "$E2E_TMP/world.json" --per-page-max 2
    GH_URL=http://127.0.0.1:$FAKE_PORT
    write_config "$CONFIG" "$STORE" "$top" "  - factory: giftless.auth.github:factory
    options:
      api_url: $GH_URL/
      api_timeout: [2, 8]
      cache: $cache
$extra"
    start_lfsgate --config "$CONFIG"
}

# gh_calls ENDPOINT: how often the stand-in was asked ENDPOINT ("user", "permission", ...).
gh_calls() {
    curl -sS --noproxy '*' "$GH_URL/_fake/stats" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["calls"][sys.argv[1]])' "$1"
}

# gh_mode JSON: sets the stand-in's mode (delay_ms, fail, rate_limit).
gh_mode() {
    curl -sS --noproxy '*' -o /dev/null -X POST --data-binary "$1" "$GH_URL/_fake/mode"
}

# gh_batch BASE OPERATION OID SIZE [CURL_ARGS...]: a one-object basic batch request.
gh_batch() { lfs_batch "$1" "$2" "$3" "$4" '["basic"]' "${@:5}"; }

# cred_url USER TOKEN ORG REPO: the LFS URL with the token as git's Basic password.
cred_url() { echo "http://$1:$2@127.0.0.1:$LFSGATE_PORT/$3/$4.git/info/lfs"; }

# concurrent_batches N BASE OID USER:TOKEN: N download batches of OID at once; the status of
# batch i in $E2E_TMP/c<i>.status.
concurrent_batches() {
    local i
    local -a pids=()
    for ((i = 0; i < $1; i++)); do
        (gh_batch "$2" download "$3" 1 -u "$4" && echo "$HTTP_STATUS" >"$E2E_TMP/c$i.status") &
        pids+=($!)
    done
    wait "${pids[@]}"
}

# make_files DIR N: N random .bin files committed in DIR.
make_files() {
    local i
    for ((i = 0; i < $2; i++)); do
        random_file "$1/f$i.bin" $((1000 + i))
    done
    tgit -C "$1" add -A
    tgit -C "$1" commit -q -m "$2 LFS files"
}

test_writer_reader_stranger() {
    local oid
    gh_setup
    setup_repo work "$(cred_url alice "$WRITER" acme data)"
    make_files "$REPO_DIR" 2
    git_push "$REPO_DIR"
    harvest_tokens "$E2E_TMP/push.out"
    oid=$(sha256_of "$REPO_DIR/f0.bin")
    assert_file_exists "$STORE/acme/data/$oid" "pushed object"
    # the writer clones
    clone_repo "$REPO_BARE" "$E2E_TMP/clone-w" "$(cred_url alice "$WRITER" acme data)"
    assert_same_file "$REPO_DIR/f1.bin" "$E2E_TMP/clone-w/f1.bin" "writer's clone"
    # the reader clones, and may not push
    clone_repo "$REPO_BARE" "$E2E_TMP/clone-r" "$(cred_url bob "$READER" acme data)"
    assert_same_file "$REPO_DIR/f0.bin" "$E2E_TMP/clone-r/f0.bin" "reader's clone"
    random_file "$E2E_TMP/clone-r/new.bin" 500
    tgit -C "$E2E_TMP/clone-r" add new.bin
    tgit -C "$E2E_TMP/clone-r" commit -q -m new
    if tgit -C "$E2E_TMP/clone-r" push origin main >"$E2E_TMP/rpush.out" 2>&1; then
        fail "the reader's push succeeded"
    fi
    assert_file_contains "$E2E_TMP/rpush.out" '"bob" may not upload objects in acme/data' "the reader's push refusal (403) shown by git"
    assert_no_file "$STORE/acme/data/$(sha256_of "$E2E_TMP/clone-r/new.bin")" "the reader's object"
    # Bearer works as Basic does; the stranger gets 403 naming them; no token gets 401
    gh_batch "$(lfs_url acme data)" download "$oid" 1000 -H "Authorization: Bearer $READER"
    assert_status 200
    gh_batch "$(lfs_url acme data)" download "$oid" 1000 -u "carol:$STRANGER"
    assert_status 403
    assert_json_error
    assert_file_contains "$HTTP_BODY" 'carol\" may not download objects in acme/data' "the stranger's refusal"
    gh_batch "$(lfs_url acme data)" download "$oid" 1000
    assert_status 401
    assert_match "$(http_header lfs-authenticate)" 'Basic' "LFS-Authenticate"
    # a token GitHub does not know: 401 naming GitHub
    gh_batch "$(lfs_url acme data)" download "$oid" 1000 -u "x:ghp_unknown0000000000"
    assert_status 401
    assert_file_contains "$HTTP_BODY" 'GitHub did not accept the token' "unknown token"
    # GitHub has no nested groups
    gh_batch "$(lfs_url acme/sub data)" download "$oid" 1000 -u "alice:$WRITER"
    assert_status 404
    assert_file_contains "$HTTP_BODY" 'without nested groups' "nested org path"
    curl -sS --noproxy '*' "http://127.0.0.1:$LFSGATE_PORT/metrics" >"$E2E_TMP/metrics"
    assert_file_matches "$E2E_TMP/metrics" 'lfsgate_github_api_calls_total\{endpoint="user",outcome="ok"\} [1-9]' "user calls metric"
    assert_file_matches "$E2E_TMP/metrics" 'lfsgate_github_api_calls_total\{endpoint="user",outcome="unauthorized"\} 1$' "unauthorized metric"
    assert_file_matches "$E2E_TMP/metrics" 'lfsgate_github_cache_hits_total [1-9]' "cache hits metric"
    assert_server_alive
    assert_logs_clean
}

test_restrict_to() {
    gh_setup '{}' "      restrict_to: {acme: [data], open: null}"
    gh_batch "$(lfs_url acme other)" download "$(printf 'a%.0s' {1..64})" 1 -u "alice:$WRITER"
    assert_status 403
    assert_file_contains "$HTTP_BODY" 'restrict_to' "restrict_to refusal"
    gh_batch "$(lfs_url elsewhere data)" download "$(printf 'a%.0s' {1..64})" 1 -u "alice:$WRITER"
    assert_status 403
    assert_eq 0 "$(gh_calls user)" "/user calls after refusals by restrict_to"
    assert_eq 0 "$(gh_calls permission)" "permission calls after refusals by restrict_to"
    # a listed repository is asked about
    gh_batch "$(lfs_url acme data)" download "$(printf 'a%.0s' {1..64})" 1 -u "alice:$WRITER"
    assert_status 200
    assert_eq 1 "$(gh_calls permission)" "permission calls for a listed repository"
    assert_logs_clean
}

test_push_20_objects_one_lookup() {
    gh_setup
    setup_repo work "$(cred_url dave "$FRESH" acme data)"
    make_files "$REPO_DIR" 20
    git_push "$REPO_DIR"
    harvest_tokens "$E2E_TMP/push.out"
    assert_eq 20 "$(find "$STORE/acme/data" -type f | wc -l | tr -d ' ')" "objects stored"
    assert_eq 1 "$(gh_calls user)" "/user calls for a 20-object push with a new token"
    assert_eq 1 "$(gh_calls permission)" "permission calls for a 20-object push with a new token"
    # eight concurrent batches with another new token share one lookup, across the two
    # worker threads (the stand-in is slowed so that they all arrive while it runs)
    gh_mode '{"delay_ms": 500}'
    concurrent_batches 8 "$(lfs_url acme data)" "$(sha256_of "$REPO_DIR/f0.bin")" "bob:$READER"
    assert_eq "200 200 200 200 200 200 200 200" "$(cat "$E2E_TMP"/c[0-7].status | tr '\n' ' ' | sed 's/ $//')" \
        "statuses of the concurrent batches"
    assert_eq 2 "$(gh_calls user)" "/user calls after 8 concurrent batches with a new token"
    assert_eq 2 "$(gh_calls permission)" "permission calls after 8 concurrent batches"
    assert_logs_clean
}

test_cache_expiry() {
    local oid
    oid=$(printf 'b%.0s' {1..64})
    gh_setup '{auth_other_ttl: 1, auth_write_ttl: 900}'
    gh_batch "$(lfs_url acme data)" download "$oid" 1 -u "bob:$READER"
    assert_status 200
    gh_batch "$(lfs_url acme data)" download "$oid" 1 -u "bob:$READER"
    assert_status 200
    assert_eq 1 "$(gh_calls permission)" "permission calls within the TTL"
    # write rights are kept for auth_write_ttl
    gh_batch "$(lfs_url acme data)" upload "$oid" 1 -u "alice:$WRITER"
    assert_status 200
    sleep 2.2
    gh_batch "$(lfs_url acme data)" download "$oid" 1 -u "bob:$READER"
    assert_status 200
    assert_eq 3 "$(gh_calls permission)" "permission calls after the read entry expired"
    gh_batch "$(lfs_url acme data)" upload "$oid" 1 -u "alice:$WRITER"
    assert_status 200
    assert_eq 3 "$(gh_calls permission)" "permission calls: the write entry still cached"
    # the token's user is cached longer than its grants
    assert_eq 2 "$(gh_calls user)" "/user calls (one per token)"
    assert_logs_clean
}

test_slow_github_does_not_block() {
    local start ms pid
    # shellcheck disable=SC2034 # read by start_lfsgate (lib.sh): one worker thread
    E2E_THREADS=1
    gh_setup
    # alice's rights on acme/other are cached
    gh_batch "$(lfs_url acme other)" upload "$(printf 'c%.0s' {1..64})" 1 -u "alice:$WRITER"
    assert_status 200
    gh_mode '{"delay_ms": 2000}'
    # a new token on acme/data waits for the slowed GitHub...
    (gh_batch "$(lfs_url acme data)" download "$(printf 'd%.0s' {1..64})" 1 -u "bob:$READER" &&
        echo "$HTTP_STATUS" >"$E2E_TMP/slow.status") &
    pid=$!
    sleep 0.3
    # ...while alice pushes to acme/other through the same single worker
    start=$(date +%s%N)
    setup_repo work "$(cred_url alice "$WRITER" acme other)"
    make_files "$REPO_DIR" 3
    git_push "$REPO_DIR"
    ms=$((($(date +%s%N) - start) / 1000000))
    harvest_tokens "$E2E_TMP/push.out"
    [[ -s $E2E_TMP/slow.status ]] && fail "the slowed lookup finished before the cached push (${ms} ms)"
    wait "$pid"
    assert_eq 200 "$(cat "$E2E_TMP/slow.status")" "status of the batch that waited for GitHub"
    echo "cached push while GitHub was slowed: ${ms} ms" >&2
    ((ms < 1500)) || fail "the cached push took ${ms} ms while GitHub was slowed to 2 s"
    assert_logs_clean
}

test_rate_limited_and_down() {
    local oid calls
    oid=$(printf 'e%.0s' {1..64})
    gh_setup
    gh_batch "$(lfs_url acme data)" download "$oid" 1 -u "alice:$WRITER"
    assert_status 200
    gh_mode '{"rate_limit": 40}'
    gh_batch "$(lfs_url acme data)" download "$oid" 1 -u "bob:$READER"
    assert_status 503
    assert_file_contains "$HTTP_BODY" 'GitHub API rate limit' "rate limit answer"
    assert_match "$(http_header retry-after)" '^(3[0-9]|40)$' "Retry-After"
    calls=$(gh_calls user)
    # while GitHub limits a token, its lookups are not even tried
    gh_batch "$(lfs_url acme data)" download "$oid" 1 -u "bob:$READER"
    assert_status 503
    assert_match "$(http_header retry-after)" '^[0-9]+$' "Retry-After without a call"
    assert_eq "$calls" "$(gh_calls user)" "/user calls for a rate-limited token"
    # GitHub's limits are per user: another token is still asked about
    gh_batch "$(lfs_url acme data)" download "$oid" 1 -u "carol:$STRANGER"
    assert_status 503
    assert_eq $((calls + 1)) "$(gh_calls user)" "/user calls for another token"
    # the cached identity keeps working
    gh_batch "$(lfs_url acme data)" download "$oid" 1 -u "alice:$WRITER"
    assert_status 200
    # GitHub down, for a token not cached (a restart empties the caches): 503 naming GitHub
    start_lfsgate --config "$CONFIG"
    gh_mode '{"rate_limit": 0, "fail": 502}'
    gh_batch "$(lfs_url acme data)" download "$oid" 1 -u "alice:$WRITER"
    assert_status 503
    assert_file_contains "$HTTP_BODY" 'GitHub API answered HTTP 502' "GitHub failing"
    gh_mode '{"fail": 0}'
    gh_batch "$(lfs_url acme data)" download "$oid" 1 -u "alice:$WRITER"
    assert_status 200
    # unreachable: the stand-in is gone
    kill "$FAKE_PID"
    sleep 0.3
    gh_batch "$(lfs_url acme data)" download "$oid" 1 -u "bob:$READER"
    assert_status 503
    assert_file_contains "$HTTP_BODY" 'GitHub API unreachable' "GitHub unreachable"
    gh_batch "$(lfs_url acme data)" download "$oid" 1 -u "alice:$WRITER"
    assert_status 200
    assert_server_alive
    assert_logs_clean
}

test_app_installations() {
    local oid
    gh_setup
    # an installation on all of acme's repositories with contents: write pushes, named by slug
    setup_repo work "$(cred_url lfs-bot "$APP_ALL" acme data)"
    make_files "$REPO_DIR" 3
    git_push "$REPO_DIR"
    harvest_tokens "$E2E_TMP/push.out"
    oid=$(sha256_of "$REPO_DIR/f0.bin")
    assert_file_exists "$STORE/acme/data/$oid" "object pushed by the app"
    assert_eq 0 "$(gh_calls user)" "/user calls for an installation token"
    assert_eq 1 "$(gh_calls org_installations)" "org installation calls"
    assert_eq 1 "$(gh_calls installation_repositories)" "installation repository calls"
    # named by its app id, on another repository
    gh_batch "$(lfs_url acme other)" upload "$oid" 1000 -u "70:$APP_ALL"
    assert_status 200
    # a name that is no installation of the org
    gh_batch "$(lfs_url acme data)" download "$oid" 1000 -u "nobody:$APP_ALL"
    assert_status 403
    # an installation on selected repositories with contents: read: the repository is on the
    # third page of /installation/repositories (two per page)
    gh_batch "$(lfs_url acme data)" download "$oid" 1000 -u "8:$APP_SEL"
    assert_status 200
    assert_eq 5 "$(gh_calls installation_repositories)" "installation repository calls (3 pages)"
    gh_batch "$(lfs_url acme data)" upload "$oid" 1000 -u "8:$APP_SEL"
    assert_status 403
    assert_file_contains "$HTTP_BODY" 'reader-bot[bot]\" may not upload' "read-only app refused"
    gh_batch "$(lfs_url acme other)" download "$oid" 1000 -u "8:$APP_SEL"
    assert_status 403
    # an installation token needs the installation's name
    gh_batch "$(lfs_url acme data)" download "$oid" 1000 -H "Authorization: Bearer $APP_ALL"
    assert_status 401
    assert_file_contains "$HTTP_BODY" 'installation token is sent as the Basic password' "app token without a name"
    assert_logs_clean
}

test_with_jwt_and_action_tokens() {
    local jwt bad oid
    jwt_provider
    # github first, then jwt: a JWT still goes to the jwt provider
    gh_setup '{}' "$JWT_PROVIDER_YAML"
    jwt=$(user_token --scope 'obj:acme/data/*')
    oid=$(printf 'f%.0s' {1..64})
    gh_batch "$(lfs_url acme data)" upload "$oid" 1 -H "Authorization: Bearer $jwt"
    assert_status 200
    gh_batch "$(lfs_url acme data)" upload "$oid" 1 -u "_jwt:$jwt"
    assert_status 200
    bad=$(minted --key "$KEYS/rsa.pem" --iss "$ISS" --aud other-audience --scope 'obj:acme/data/*')
    gh_batch "$(lfs_url acme data)" upload "$oid" 1 -H "Authorization: Bearer $bad"
    assert_status 401
    assert_eq 0 "$(gh_calls user)" "GitHub calls for JWTs"
    # a GitHub token on the same server; its uploads go through action tokens, not GitHub
    setup_repo work "$(cred_url alice "$WRITER" acme data)"
    make_files "$REPO_DIR" 4
    git_push "$REPO_DIR"
    harvest_tokens "$E2E_TMP/push.out"
    assert_eq 1 "$(gh_calls user)" "/user calls for the push"
    assert_eq 1 "$(gh_calls permission)" "permission calls for the push (PUTs carry action tokens)"
    assert_logs_clean
}

test_reload_during_lookup() {
    local pid oid
    oid=$(printf '9%.0s' {1..64})
    gh_setup '{auth_other_ttl: 30}'
    gh_mode '{"delay_ms": 1500}'
    (gh_batch "$(lfs_url acme data)" download "$oid" 1 -u "bob:$READER" &&
        echo "$HTTP_STATUS" >"$E2E_TMP/slow.status") &
    pid=$!
    sleep 0.5
    # the provider the lookup belongs to is replaced while the lookup runs
    sed -i 's/auth_other_ttl: 30/auth_other_ttl: 20/' "$CONFIG"
    kill -HUP "$LFSGATE_PID"
    wait "$pid"
    assert_eq 200 "$(cat "$E2E_TMP/slow.status")" "batch whose lookup outlived a reload"
    assert_file_contains "$LFSGATE_LOG" 'configuration reloaded' "reload"
    gh_mode '{"delay_ms": 0}'
    # the new provider has caches of its own
    gh_batch "$(lfs_url acme data)" download "$oid" 1 -u "bob:$READER"
    assert_status 200
    assert_eq 2 "$(gh_calls permission)" "permission calls after the reload"
    gh_batch "$(lfs_url acme data)" download "$oid" 1 -u "carol:$STRANGER"
    assert_status 403
    assert_server_alive
    assert_logs_clean
}

test_no_cache_concurrent() {
    local i oid
    oid=$(printf '8%.0s' {1..64})
    # giftless's sizes of 0: nothing is cached
    gh_setup '{token_max_size: 0, auth_max_size: 0}'
    gh_batch "$(lfs_url acme data)" download "$oid" 1 -u "bob:$READER"
    assert_status 200
    gh_batch "$(lfs_url acme data)" download "$oid" 1 -u "bob:$READER"
    assert_status 200
    assert_eq 2 "$(gh_calls user)" "/user calls without a cache"
    # concurrent requests on both threads still share one lookup and all get its answer
    # (those of the other thread from the outcome it left, not from a cache)
    gh_mode '{"delay_ms": 500}'
    concurrent_batches 8 "$(lfs_url acme data)" "$oid" "bob:$READER"
    for ((i = 0; i < 8; i++)); do
        assert_eq 200 "$(cat "$E2E_TMP/c$i.status")" "status of concurrent batch $i"
    done
    assert_eq 3 "$(gh_calls user)" "/user calls after 8 concurrent batches"
    assert_eq 3 "$(gh_calls permission)" "permission calls after 8 concurrent batches"
    assert_logs_clean
}

test_without_action_tokens() {
    local f
    # as giftless's github-lfs example: object transfers are authorized through GitHub too
    gh_setup '' '' 'PRE_AUTHORIZED_ACTION_PROVIDER: null'
    # git-lfs gets the token from a credential helper, for the batch and for every transfer
    tgit config --global credential.helper \
        "!f() { test \"\$1\" = get && printf 'username=alice\\npassword=%s\\n' '$WRITER'; }; f"
    setup_repo work "$(lfs_url acme data)"
    make_files "$REPO_DIR" 20
    git_push "$REPO_DIR"
    assert_eq 20 "$(find "$STORE/acme/data" -type f | wc -l | tr -d ' ')" "objects stored"
    assert_eq 1 "$(gh_calls user)" "/user calls for a 20-object push without action tokens"
    assert_eq 1 "$(gh_calls permission)" "permission calls for a 20-object push without action tokens"
    clone_repo "$REPO_BARE" "$E2E_TMP/clone" "$(lfs_url acme data)"
    for f in f0.bin f19.bin; do
        assert_same_file "$REPO_DIR/$f" "$E2E_TMP/clone/$f" "cloned $f"
    done
    assert_eq 1 "$(gh_calls permission)" "permission calls after the clone"
    assert_logs_clean
}

run_test github_writer_reader_stranger test_writer_reader_stranger
run_test github_restrict_to test_restrict_to
run_test github_push_20_objects_one_lookup test_push_20_objects_one_lookup
run_test github_cache_expiry test_cache_expiry
run_test github_slow_github_does_not_block test_slow_github_does_not_block
run_test github_rate_limited_and_down test_rate_limited_and_down
run_test github_app_installations test_app_installations
run_test github_with_jwt_and_action_tokens test_with_jwt_and_action_tokens
run_test github_reload_during_lookup test_reload_during_lookup
run_test github_no_cache_concurrent test_no_cache_concurrent
run_test github_without_action_tokens test_without_action_tokens
e2e_finish
