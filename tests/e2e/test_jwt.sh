#!/usr/bin/env bash
# tests/e2e/test_jwt.sh: end-to-end tests of the jwt auth provider (giftless.auth.jwt:factory,
# RS256 with a key pair generated per test) and of the pre-authorized action tokens lfsgate
# mints for its own hrefs, with basic_streaming over local storage:
#   - real git + git-lfs: push and clone with the token in http.extraHeader (the CI pattern:
#     object transfers then carry two Authorization headers), with the token as the Basic
#     password of user _jwt (credentials in the URL, and a credential helper), and a
#     read-only token that clones but cannot push;
#   - curl against the batch API: tokens that must be refused with 401 (expired, not yet
#     valid, wrong audience or issuer, other key, alg none, HS256 signed with the public
#     key, tampered, garbage, 200 KB) and with 403 (scope for another repo, no scopes,
#     read-only), nested org path scopes, action tokens used anywhere else than their own
#     object and action;
#   - 401 answers carry LFS-Authenticate and a JSON body; no server log ever holds a token.
# Tokens are minted by mint_jwt.py (python3-jwt, python3-cryptography).
# Run: LFSGATE_BIN=build/server/lfsgate tests/e2e/test_jwt.sh   (see lib.sh for options)
# Test functions are called through run_test, which shellcheck cannot follow:
# shellcheck disable=SC2317
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MIB=1048576

# ---------------------------------------------------------------------------------------
# requests (tokens and jwt_setup: lib.sh)

# jbatch BASE OPERATION OID SIZE [CURL_ARGS...]: one-object batch request with extra curl
# arguments (the Authorization headers).
jbatch() {
    local base=$1 op=$2 oid=$3 size=$4
    shift 4
    lfs_post "$base/objects/batch" \
        "{\"operation\": \"$op\", \"transfers\": [\"basic\"], \"objects\": [{\"oid\": \"$oid\", \"size\": $size}], \"hash_algo\": \"sha256\"}" "$@"
}

# bearer TOKEN: curl arguments for "Authorization: Bearer TOKEN".
bearer() { printf '%s\n' -H "Authorization: Bearer $1"; }

# expect_401: the last answer is 401 with LFS-Authenticate and an LFS JSON error.
expect_401() {
    assert_status 401
    [[ -n $(http_header LFS-Authenticate) ]] || fail "$HTTP_WHAT: 401 without an LFS-Authenticate header"
    assert_json_error
}

expect_403() {
    assert_status 403
    assert_json_error
}

# put_with_tokens BASE OID FILE TOKEN...: PUTs FILE to BASE's object OID with one
# "Authorization: Bearer" header per TOKEN, in order.
put_with_tokens() {
    local base=$1 oid=$2 file=$3 tok
    local -a h=()
    shift 3
    for tok in "$@"; do h+=(-H "Authorization: Bearer $tok"); done
    http PUT "$base/objects/storage/$oid" "${h[@]}" -H 'Content-Type: application/octet-stream' -T "$file"
}

# expect_refused: 401 (with LFS-Authenticate) or 403, with an LFS JSON error.
expect_refused() {
    assert_status 401 403
    if [[ $HTTP_STATUS == 401 ]]; then
        expect_401
    else
        assert_json_error
    fi
}

# batch_as WHAT TOKEN [OPERATION]: 1-object batch on org/repo with the token as Bearer.
batch_as() {
    local what=$1 tok=$2 op=${3:-upload}
    local -a h
    mapfile -t h < <(bearer "$tok")
    jbatch "$(lfs_url org repo)" "$op" "$OID" 10 "${h[@]}"
    HTTP_WHAT="$HTTP_WHAT ($what)"
}

# post_big_query TOKEN_FILE PATH: POSTs a 1-object download batch to PATH?jwt=<token> with
# python (the URL is too long for curl's command line); sets HTTP_* like http().
post_big_query() {
    E2E_HTTP_N=$((E2E_HTTP_N + 1))
    mkdir -p "$E2E_TMP/http"
    HTTP_BODY=$E2E_TMP/http/$E2E_HTTP_N.body
    HTTP_HEADERS=$E2E_TMP/http/$E2E_HTTP_N.headers
    HTTP_WHAT="POST $2?jwt=<$(file_size "$1") bytes>"
    HTTP_STATUS=$(timeout "$E2E_TIMEOUT" python3 - "$LFSGATE_PORT" "$2" "$1" "$HTTP_BODY" "$HTTP_HEADERS" "$OID" <<'EOF'
import http.client, sys
port, path, tokfile, body_out, head_out, oid = sys.argv[1:]
tok = open(tokfile).read().strip()
c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=60)
body = '{"operation": "download", "objects": [{"oid": "%s", "size": 10}]}' % oid
try:
    c.request("POST", path + "?jwt=" + tok, body=body,
              headers={"Content-Type": "application/vnd.git-lfs+json", "Accept": "application/vnd.git-lfs+json"})
    r = c.getresponse()
    data = r.read()
except (OSError, http.client.HTTPException):
    print("000")
    sys.exit(0)
open(body_out, "wb").write(data)
with open(head_out, "w") as f:
    for k, v in r.getheaders():
        f.write(f"{k}: {v}\n")
print(r.status)
EOF
    ) || HTTP_STATUS=000
    echo "http: $HTTP_WHAT -> $HTTP_STATUS $(head -c 200 "$HTTP_BODY" | tr -c '[:print:]' '.')" >&2
}

# ---------------------------------------------------------------------------------------
# git

# traced_git OUT ARGS...: git ARGS with GIT_TRACE and GIT_CURL_VERBOSE, all output in OUT;
# remembers the tokens in the trace; returns git's status.
traced_git() {
    local out=$1 rc=0
    shift
    GIT_TRACE=1 GIT_CURL_VERBOSE=1 tgit "$@" >"$out" 2>&1 || rc=$?
    harvest_tokens "$out"
    grep -vE '^[0-9:.]+ trace |^[<>] |^$' "$out" | sed 's/^/git| /' >&2 || true
    return "$rc"
}

# git_output_tail FILE: the last lines of a traced git output, without the trace.
git_output_tail() {
    grep -vE '^[0-9:.]+ trace |^[<>] |^$' "$1" | tail -n 3 | tr '\n' ' '
}

# put_auth_counts TRACE: one line per PUT request in a git trace: how many Authorization
# headers it carried.
put_auth_counts() {
    awk '/^> [A-Z]+ \// { inreq = ($2 == "PUT"); n = 0; next }
         inreq && /^> [Aa]uthorization:/ { n++; next }
         inreq && /^>[ \t]*$/ { print n; inreq = 0 }' "$1"
}

# make_commit DIR FILE...: random content for each FILE (sizes 1 MiB + 3, 1000, 1, 1 MiB + 3,
# ... in turn), all committed.
make_commit() {
    local dir=$1 f sizes=($((MIB + 3)) 1000 1) i=0
    shift
    for f in "$@"; do
        random_file "$dir/$f" "${sizes[$((i % 3))]}"
        i=$((i + 1))
    done
    tgit -C "$dir" add -A
    tgit -C "$dir" commit -q -m "add $*"
}

# assert_stored DIR FILE...: each file's bytes are stored under $STORE/org/repo/<oid>.
assert_stored() {
    local dir=$1 f
    shift
    for f in "$@"; do
        assert_same_file "$dir/$f" "$STORE/org/repo/$(sha256_of "$dir/$f")" "stored object of $f"
    done
}

# clone_with OUT DEST LFS_URL [GIT_ARGS...]: clone $REPO_BARE without checkout, then check
# out main with `git GIT_ARGS checkout` (the smudge filter downloads through lfsgate).
clone_with() {
    local out=$1 dest=$2 url=$3
    shift 3
    tgit clone -q --no-checkout "$REPO_BARE" "$dest"
    tgit -C "$dest" lfs install --local >/dev/null
    tgit -C "$dest" config lfs.url "$url"
    traced_git "$out" -C "$dest" "$@" checkout -q main ||
        fail "checkout in the clone failed: $(git_output_tail "$out")"
}

# ---------------------------------------------------------------------------------------
# tests

test_git_extra_header() {
    local url t counts f
    jwt_setup
    url=$(lfs_url org repo)
    t=$(user_token --scope 'obj:org/repo/*:read,write' --name 'CI runner' --email ci@e2e.invalid)
    setup_repo work "$url"
    make_commit "$REPO_DIR" big.bin data/small.bin one.bin
    traced_git "$E2E_TMP/push.out" -C "$REPO_DIR" -c "http.extraHeader=Authorization: Bearer $t" \
        push origin main || fail "git push with http.extraHeader failed: $(git_output_tail "$E2E_TMP/push.out")"
    assert_stored "$REPO_DIR" big.bin data/small.bin one.bin
    # every PUT carried the action's Authorization header and the extra one
    counts=$(put_auth_counts "$E2E_TMP/push.out" | LC_ALL=C sort -u | tr '\n' ' ')
    assert_eq "2 " "$counts" "Authorization headers per PUT in the git-lfs trace"

    clone_with "$E2E_TMP/clone.out" "$E2E_TMP/clone" "$url" -c "http.extraHeader=Authorization: Bearer $t"
    for f in big.bin data/small.bin one.bin; do
        assert_same_file "$REPO_DIR/$f" "$E2E_TMP/clone/$f" "cloned $f"
    done
    # without a token, nothing
    jbatch "$url" download "$(sha256_of "$REPO_DIR/one.bin")" 1
    expect_401
    assert_server_alive
    assert_logs_clean
}

test_git_basic_password() {
    local url cred_url t f
    jwt_setup
    url=$(lfs_url org repo)
    t=$(user_token --scope 'obj:org/repo/*')
    remember_token "$(printf '_jwt:%s' "$t" | base64 -w 0)"
    # push: the token as the password in the URL
    cred_url="http://_jwt:$t@127.0.0.1:$LFSGATE_PORT/org/repo.git/info/lfs"
    setup_repo work "$cred_url"
    make_commit "$REPO_DIR" a.bin b.bin
    traced_git "$E2E_TMP/push.out" -C "$REPO_DIR" push origin main ||
        fail "git push with _jwt:<token> in lfs.url failed: $(git_output_tail "$E2E_TMP/push.out")"
    assert_stored "$REPO_DIR" a.bin b.bin

    # clone: a credential helper answers _jwt / token after the server's 401
    tgit config --global credential.helper \
        "!f() { test \"\$1\" = get && printf 'username=_jwt\\npassword=%s\\n' '$t'; }; f"
    clone_with "$E2E_TMP/clone.out" "$E2E_TMP/clone" "$url"
    for f in a.bin b.bin; do
        assert_same_file "$REPO_DIR/$f" "$E2E_TMP/clone/$f" "cloned $f"
    done

    # the same with curl; another Basic user is not ours
    OID=$(sha256_of "$REPO_DIR/a.bin")
    jbatch "$url" download "$OID" "$(file_size "$REPO_DIR/a.bin")" -u "_jwt:$t"
    assert_status 200
    jbatch "$url" download "$OID" "$(file_size "$REPO_DIR/a.bin")" -u "someone:$t"
    expect_401
    jbatch "$url" download "$OID" "$(file_size "$REPO_DIR/a.bin")" -u "_jwt:not-a-token"
    expect_401
    assert_server_alive
    assert_logs_clean
}

test_git_read_only_token() {
    local url rw ro msg
    jwt_setup
    url=$(lfs_url org repo)
    rw=$(user_token --scope 'obj:org/repo/*:read,write')
    ro=$(user_token --scope 'obj:org/repo/*:read')
    setup_repo work "$url"
    make_commit "$REPO_DIR" a.bin b.bin
    traced_git "$E2E_TMP/push.out" -C "$REPO_DIR" -c "http.extraHeader=Authorization: Bearer $rw" \
        push origin main || fail "git push with the read-write token failed: $(git_output_tail "$E2E_TMP/push.out")"

    clone_with "$E2E_TMP/clone.out" "$E2E_TMP/clone" "$url" -c "http.extraHeader=Authorization: Bearer $ro"
    assert_same_file "$REPO_DIR/a.bin" "$E2E_TMP/clone/a.bin" "cloned a.bin"
    assert_same_file "$REPO_DIR/b.bin" "$E2E_TMP/clone/b.bin" "cloned b.bin"

    # the read-only token cannot push a new object
    make_commit "$E2E_TMP/clone" new.bin
    OID=$(sha256_of "$E2E_TMP/clone/new.bin")
    if traced_git "$E2E_TMP/push2.out" -C "$E2E_TMP/clone" -c "http.extraHeader=Authorization: Bearer $ro" \
        push origin main; then
        fail "git push with a read-only token succeeded"
    fi
    assert_no_file "$STORE/org/repo/$OID" "object pushed with a read-only token"
    batch_as read-only "$ro" upload
    expect_403
    msg=$(json "$HTTP_BODY" 'd["message"]')
    assert_file_contains "$E2E_TMP/push2.out" "batch response: $msg" "git push output with a read-only token"
    assert_server_alive
    assert_logs_clean
}

test_rejected_tokens() {
    local t k ro f
    jwt_setup
    OID=$(printf 'some object' | sha256sum | cut -d ' ' -f 1)
    k=$KEYS/rsa.pem

    # controls: a good token; an aud list that contains ours; scopes as one string
    batch_as "valid token" "$(user_token --scope 'obj:org/repo/*')"
    assert_status 200
    batch_as "aud list" "$(minted --key "$k" --iss "$ISS" --aud other-service --aud "$AUD" --scope 'obj:org/repo/*')"
    assert_status 200
    batch_as "scopes as one string" "$(user_token --scopes-string --scope 'obj:org/repo/*')"
    assert_status 200

    jbatch "$(lfs_url org repo)" upload "$OID" 10
    HTTP_WHAT="$HTTP_WHAT (no token)"
    expect_401
    batch_as expired "$(user_token --scope 'obj:org/repo/*' --exp-in -3600 --iat-in -7200)"
    expect_401
    batch_as "expired beyond the 10 s leeway" "$(user_token --scope 'obj:org/repo/*' --exp-in -30 --iat-in -600)"
    expect_401
    batch_as "no exp" "$(user_token --scope 'obj:org/repo/*' --no-exp)"
    expect_401
    batch_as "not yet valid (nbf)" "$(user_token --scope 'obj:org/repo/*' --nbf-in 3600)"
    expect_401
    batch_as "issued in the future (iat)" "$(user_token --scope 'obj:org/repo/*' --iat-in 3600)"
    expect_401
    batch_as "wrong audience" "$(minted --key "$k" --iss "$ISS" --aud other-service --scope 'obj:org/repo/*')"
    expect_401
    batch_as "no audience" "$(minted --key "$k" --iss "$ISS" --scope 'obj:org/repo/*')"
    expect_401
    batch_as "wrong issuer" "$(minted --key "$k" --iss https://evil.invalid --aud "$AUD" --scope 'obj:org/repo/*')"
    expect_401
    batch_as "no issuer" "$(minted --key "$k" --aud "$AUD" --scope 'obj:org/repo/*')"
    expect_401
    batch_as "other key" "$(minted --key "$KEYS/other.pem" --iss "$ISS" --aud "$AUD" --scope 'obj:org/repo/*')"
    expect_401
    batch_as "RS512 instead of RS256" "$(user_token --alg RS512 --scope 'obj:org/repo/*')"
    expect_401
    batch_as "alg none" "$(minted --unsigned --iss "$ISS" --aud "$AUD" --scope 'obj:org/repo/*')"
    expect_401
    batch_as "HS256 signed with the public key PEM" \
        "$(minted --alg HS256 --hmac-key-file "$KEYS/rsa.pub.pem" --iss "$ISS" --aud "$AUD" --scope 'obj:org/repo/*')"
    expect_401
    # a read-only token whose payload is rewritten to grant everything: 401, not 200 or 403
    ro=$(user_token --scope 'obj:org/repo/*:read')
    t=$(mint tamper "$ro" --scope 'obj:*')
    remember_token "$t"
    batch_as "tampered payload" "$t"
    expect_401
    for t in garbage not.a.jwt 'eyJhbGciOiJSUzI1NiJ9.%%%.###' 'eyJhbGciOiJSUzI1NiJ9.e30.' \
        "$(head -c 300 /dev/urandom | base64 -w 0)" "${ro%.*}" "$ro.x" '....'; do
        batch_as "garbage token" "$t"
        expect_401
    done
    jbatch "$(lfs_url org repo)" upload "$OID" 10 -H "Authorization: Basic $(printf '_jwt:garbage' | base64 -w 0)"
    expect_401
    jbatch "$(lfs_url org repo)" upload "$OID" 10 -H 'Authorization: Basic %%%not-base64'
    expect_401

    # 200 KB: a properly signed token, and random bytes; as Bearer, Basic password, ?jwt=
    user_token --scope 'obj:org/repo/*' --pad 200000 >"$E2E_TMP/big.tok"
    printf 'Authorization: Bearer %s\n' "$(cat "$E2E_TMP/big.tok")" >"$E2E_TMP/big.bearer"
    printf 'Authorization: Basic %s\n' "$(printf '_jwt:%s' "$(cat "$E2E_TMP/big.tok")" | base64 -w 0)" >"$E2E_TMP/big.basic"
    printf 'Authorization: Bearer %s\n' "$(head -c 150000 /dev/urandom | base64 -w 0)" >"$E2E_TMP/garbage.bearer"
    for f in big.bearer big.basic garbage.bearer; do
        jbatch "$(lfs_url org repo)" download "$OID" 10 -H "@$E2E_TMP/$f"
        HTTP_WHAT="$HTTP_WHAT ($f: $(file_size "$E2E_TMP/$f") bytes)"
        expect_401
        assert_server_alive
    done
    post_big_query "$E2E_TMP/big.tok" /org/repo.git/info/lfs/objects/batch
    expect_401
    assert_server_alive
    # and the server still works
    batch_as "valid token after the large ones" "$(user_token --scope 'obj:org/repo/*')"
    assert_status 200
    assert_logs_clean
}

test_forbidden_scopes() {
    local base oid2 t
    jwt_setup
    base=$(lfs_url org repo)
    OID=$(printf 'object one' | sha256sum | cut -d ' ' -f 1)
    oid2=$(printf 'object two' | sha256sum | cut -d ' ' -f 1)
    batch_as "scope for another repo" "$(user_token --scope 'obj:org/other/*')" upload
    expect_403
    batch_as "scope for another repo" "$(user_token --scope 'obj:org/other/*')" download
    expect_403
    batch_as "scope for another org" "$(user_token --scope 'obj:elsewhere/repo/*')" download
    expect_403
    batch_as "scope for a longer org path" "$(user_token --scope 'obj:org/sub/repo/*')" download
    expect_403
    batch_as "no scopes" "$(user_token)" upload
    expect_403
    batch_as "no scopes" "$(user_token)" download
    expect_403
    batch_as "an empty scope list" "$(user_token --scopes-string --scope '')" download
    expect_403
    batch_as "a scope of another type" "$(user_token --scope 'blob:org/repo/*')" download
    expect_403
    batch_as "read-only" "$(user_token --scope 'obj:org/repo/*:read')" upload
    expect_403
    batch_as "metadata only" "$(user_token --scope 'obj:org/repo/*:meta:*')" download
    expect_403
    batch_as "read-only" "$(user_token --scope 'obj:org/repo/*:read')" download
    assert_status 200
    # write on one object is write on that object only
    t=$(user_token --scope "obj:org/repo/$OID:write")
    batch_as "write on this object" "$t" upload
    assert_status 200
    jbatch "$base" upload "$oid2" 10 -H "Authorization: Bearer $t"
    expect_403
    lfs_post "$base/objects/batch" "{\"operation\": \"upload\", \"objects\": [{\"oid\": \"$OID\", \"size\": 10}, {\"oid\": \"$oid2\", \"size\": 10}]}" \
        -H "Authorization: Bearer $t"
    expect_403
    assert_server_alive
    assert_logs_clean
}

# action_token BATCH_BODY ACTION: the token of an action of object 0 (header or ?jwt=).
action_token() {
    python3 - "$1" "$2" <<'EOF'
import json, sys, urllib.parse
a = json.load(open(sys.argv[1]))["objects"][0]["actions"][sys.argv[2]]
h = (a.get("header") or {}).get("Authorization", "")
if h.startswith("Bearer "):
    print(h[len("Bearer "):])
else:
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(a["href"]).query)
    print(q["jwt"][0])
EOF
}

test_action_tokens() {
    local base other t bad up vt dt upc ttl iat exp a b c oa ob oc sa sb sc
    jwt_setup
    base=$(lfs_url org repo)
    other=$(lfs_url org other)
    t=$(user_token --scope 'obj:org/*')
    bad=$(minted --key "$KEYS/other.pem" --iss "$ISS" --aud "$AUD" --scope 'obj:*')
    a=$E2E_TMP/a b=$E2E_TMP/b c=$E2E_TMP/c
    random_file "$a" 5000
    random_file "$b" 6000
    random_file "$c" 7000
    oa=$(sha256_of "$a") ob=$(sha256_of "$b") oc=$(sha256_of "$c")
    sa=5000 sb=6000 sc=7000

    jbatch "$base" upload "$oa" "$sa" -H "Authorization: Bearer $t"
    assert_status 200
    harvest_tokens "$HTTP_BODY"
    cp "$HTTP_BODY" "$E2E_TMP/batch-a.json"
    up=$(action_token "$E2E_TMP/batch-a.json" upload)
    vt=$(action_token "$E2E_TMP/batch-a.json" verify)
    # an action token lives as long as its action
    ttl=$(json "$E2E_TMP/batch-a.json" 'd["objects"][0]["actions"]["upload"]["expires_in"]')
    mint claims "$up" >"$E2E_TMP/up-claims.json"
    iat=$(json "$E2E_TMP/up-claims.json" 'd["iat"]')
    exp=$(json "$E2E_TMP/up-claims.json" 'd["exp"]')
    assert_eq "$ttl" "$((exp - iat))" "lifetime of the upload action token (expires_in $ttl)"
    assert_json "$E2E_TMP/batch-a.json" 'd["objects"][0].get("authenticated") is True' "authenticated in the batch answer"

    # the upload token alone: not another oid, not another repo, not a download, not a batch
    http PUT "$base/objects/storage/$ob" -H "Authorization: Bearer $up" -H 'Content-Type: application/octet-stream' -T "$b"
    expect_refused
    http PUT "$other/objects/storage/$oa" -H "Authorization: Bearer $up" -H 'Content-Type: application/octet-stream' -T "$a"
    expect_refused
    http PUT "$(lfs_url org/sub repo)/objects/storage/$oa" -H "Authorization: Bearer $up" -H 'Content-Type: application/octet-stream' -T "$a"
    expect_refused
    http PUT "$base/objects/storage/$oa" -H "Authorization: Bearer $vt" -H 'Content-Type: application/octet-stream' -T "$a"
    HTTP_WHAT="$HTTP_WHAT (verify token)"
    expect_refused
    jbatch "$base" upload "$ob" "$sb" -H "Authorization: Bearer $up"
    expect_403
    jbatch "$base" upload "$oa" "$sa" -H "Authorization: Bearer $up"
    expect_403
    jbatch "$base" download "$oa" "$sa" -H "Authorization: Bearer $up"
    expect_403
    lfs_post "$base/objects/batch?jwt=$up" "{\"operation\": \"upload\", \"objects\": [{\"oid\": \"$oa\", \"size\": $sa}]}"
    expect_403
    assert_only_files "$STORE"

    # ... but its own upload and verify work, with nothing else
    http PUT "$base/objects/storage/$oa" -H "Authorization: Bearer $up" -H 'Content-Type: application/octet-stream' -T "$a"
    assert_status_2xx
    http GET "$base/objects/storage/$oa" -H "Authorization: Bearer $up"
    HTTP_WHAT="$HTTP_WHAT (upload token)"
    expect_refused
    lfs_post "$base/objects/storage/verify" "{\"oid\": \"$ob\", \"size\": $sb}" -H "Authorization: Bearer $vt"
    expect_refused
    lfs_post "$base/objects/storage/verify" "{\"oid\": \"$oa\", \"size\": $sa}" -H "Authorization: Bearer $vt"
    assert_status 200
    assert_only_files "$STORE" "org/repo/$oa"

    # b in org/repo and a in org/other, with the user token (so a refusal below is not a 404)
    jbatch "$base" upload "$ob" "$sb" -H "Authorization: Bearer $t"
    assert_status 200
    harvest_tokens "$HTTP_BODY"
    http PUT "$(action_href "$HTTP_BODY" 0 upload)" -H "Authorization: Bearer $(action_token "$HTTP_BODY" upload)" \
        -H 'Content-Type: application/octet-stream' -T "$b"
    assert_status_2xx
    jbatch "$other" upload "$oa" "$sa" -H "Authorization: Bearer $t"
    assert_status 200
    harvest_tokens "$HTTP_BODY"
    http PUT "$(action_href "$HTTP_BODY" 0 upload)" -H "Authorization: Bearer $(action_token "$HTTP_BODY" upload)" \
        -H 'Content-Type: application/octet-stream' -T "$a"
    assert_status_2xx

    # the download token (?jwt=): its object only, read only
    jbatch "$base" download "$oa" "$sa" -H "Authorization: Bearer $t"
    assert_status 200
    harvest_tokens "$HTTP_BODY"
    cp "$HTTP_BODY" "$E2E_TMP/batch-dl.json"
    dt=$(action_token "$E2E_TMP/batch-dl.json" download)
    http GET "$(action_href "$E2E_TMP/batch-dl.json" 0 download)"
    assert_status 200
    assert_same_file "$a" "$HTTP_BODY" "download with the action's ?jwt="
    http GET "$base/objects/storage/$ob?jwt=$dt"
    expect_refused
    http GET "$other/objects/storage/$oa?jwt=$dt"
    expect_refused
    http GET "$base/objects/storage/$ob" -H "Authorization: Bearer $dt"
    expect_refused
    http PUT "$base/objects/storage/$oa?jwt=$dt" -H 'Content-Type: application/octet-stream' -T "$a"
    expect_refused
    http POST "$base/objects/batch?jwt=$dt" -H "Content-Type: $LFS_MEDIA_TYPE" \
        --data-binary "{\"operation\": \"download\", \"objects\": [{\"oid\": \"$oa\", \"size\": $sa}]}"
    expect_403

    # two Authorization headers (git-lfs with http.extraHeader): the valid one is used,
    # whichever comes first
    jbatch "$base" upload "$oc" "$sc" -H "Authorization: Bearer $bad" -H "Authorization: Bearer $t"
    assert_status 200
    jbatch "$base" upload "$oc" "$sc" -H "Authorization: Bearer $t" -H "Authorization: Bearer $bad"
    assert_status 200
    harvest_tokens "$HTTP_BODY"
    upc=$(action_token "$HTTP_BODY" upload)
    put_with_tokens "$base" "$oc" "$c" "$bad" "$upc"
    assert_status_2xx
    put_with_tokens "$base" "$oc" "$c" "$upc" "$bad"
    assert_status_2xx
    # ... and two that are both refused: still refused
    put_with_tokens "$base" "$oa" "$a" "$bad" "$upc"
    expect_refused
    assert_only_files "$STORE" "org/repo/$oa" "org/repo/$ob" "org/repo/$oc" "org/other/$oa"
    assert_server_alive
    assert_logs_clean
}

# scope_case SCOPE OPERATION ORG_PATH REPO EXPECTED_STATUS: a 1-object batch on ORG_PATH/REPO
# with a token holding SCOPE.
scope_case() {
    local t
    t=$(user_token --scope "$1")
    jbatch "$(lfs_url "$3" "$4")" "$2" "$OID" 10 -H "Authorization: Bearer $t"
    HTTP_WHAT="$HTTP_WHAT (scope $1)"
    if [[ $5 == 200 ]]; then
        assert_status 200
    else
        expect_403
    fi
}

test_nested_org_scopes() {
    local t base
    jwt_setup
    OID=$(printf 'nested' | sha256sum | cut -d ' ' -f 1)
    # obj:a/b/repo/*: repository "repo" of org path "a/b"
    scope_case 'obj:a/b/repo/*' upload a/b repo 200
    scope_case 'obj:a/b/repo/*' download a/b repo 200
    scope_case 'obj:a/b/repo/*' upload a/b other 403
    scope_case 'obj:a/b/repo/*' upload a repo 403
    scope_case 'obj:a/b/repo/*' upload a/b/c repo 403
    scope_case 'obj:a/b/repo/*' upload x/a/b repo 403
    scope_case 'obj:a/b/repo' upload a/b repo 200
    scope_case "obj:a/b/repo/$OID:write" upload a/b repo 200
    scope_case "obj:a/b/repo/$OID:write" upload a/b other 403
    scope_case "obj:a/b/repo/$(printf 'other' | sha256sum | cut -d ' ' -f 1):write" upload a/b repo 403
    # every repository of org path a/b; read only
    scope_case 'obj:a/b/*/*:read' download a/b repo 200
    scope_case 'obj:a/b/*/*:read' download a/b x 200
    scope_case 'obj:a/b/*/*:read' upload a/b repo 403
    scope_case 'obj:a/b/*/*:read' download a/b/c repo 403
    scope_case 'obj:a/b/*/*:read' download a repo 403
    # obj:a/b/*: giftless's reading, org "a" and repository "b"
    scope_case 'obj:a/b/*' download a b 200
    scope_case 'obj:a/b/*' download a/b repo 403
    # obj:a/*: every repository of org "a", not of "a/b"
    scope_case 'obj:a/*' upload a repo 200
    scope_case 'obj:a/*' upload a/b repo 403
    scope_case 'obj:*' upload a/b/c repo 200

    # a full round trip under a nested org path with a nested scope
    t=$(user_token --scope 'obj:a/b/repo/*')
    base=$(lfs_url a/b repo)
    random_file "$E2E_TMP/n" 4321
    OID=$(sha256_of "$E2E_TMP/n")
    jbatch "$base" upload "$OID" 4321 -H "Authorization: Bearer $t"
    assert_status 200
    harvest_tokens "$HTTP_BODY"
    cp "$HTTP_BODY" "$E2E_TMP/up.json"
    http PUT "$(action_href "$E2E_TMP/up.json" 0 upload)" -H "Authorization: Bearer $(action_token "$E2E_TMP/up.json" upload)" \
        -H 'Content-Type: application/octet-stream' -T "$E2E_TMP/n"
    assert_status_2xx
    lfs_post "$(action_href "$E2E_TMP/up.json" 0 verify)" "{\"oid\": \"$OID\", \"size\": 4321}" \
        -H "Authorization: Bearer $(action_token "$E2E_TMP/up.json" verify)"
    assert_status 200
    assert_only_files "$STORE" "a/b/repo/$OID"
    jbatch "$base" download "$OID" 4321 -H "Authorization: Bearer $t"
    assert_status 200
    harvest_tokens "$HTTP_BODY"
    http GET "$(action_href "$HTTP_BODY" 0 download)"
    assert_status 200
    assert_same_file "$E2E_TMP/n" "$HTTP_BODY" "download under a/b/repo"
    assert_server_alive
    assert_logs_clean
}

# big_batch_body FILE FIRST_OID FIRST_SIZE N: an upload batch of N objects (FIRST_OID, then
# made-up oids) written to FILE.
big_batch_body() {
    python3 - "$@" <<'EOF'
import hashlib, json, sys
out, first, size, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
objs = [{"oid": first, "size": size}]
objs += [{"oid": hashlib.sha256(b"obj-%d" % i).hexdigest(), "size": 1000 + i} for i in range(1, n)]
with open(out, "w") as f:
    json.dump({"operation": "upload", "transfers": ["basic"], "objects": objs, "hash_algo": "sha256"}, f)
EOF
}

# Issue #12: a token with large claims gave action tokens over the 8 KiB limit (batch 200,
# PUT 401) and a 22.5 MB answer to a 1,000-object batch. A sub over 256 bytes is now refused;
# the largest accepted sub, a 600-byte name, a long email and 50 scopes give a bounded
# answer whose upload token works.
test_large_claims() {
    local base t long_sub sub name email f oid req_size ans_size tok_size
    local -a scopes=() hdr
    jwt_setup
    base=$(lfs_url org repo)
    long_sub=$(python3 -c 'print("a" + "\u00e9" * 300)')
    t=$(user_token --sub "$long_sub" --scope 'obj:org/repo/*:read')
    jbatch "$base" upload "$(printf '%064d' 0)" 10 -H "Authorization: Bearer $t"
    expect_401
    assert_json "$HTTP_BODY" '"sub" in d["message"] and "256 bytes" in d["message"]' "the 401 names the sub claim"

    sub=$(python3 -c 'print("a" + "\u00e9" * 127)')                 # 255 bytes of UTF-8
    name=$(python3 -c 'print("\u00e9" * 300)')                      # 600 bytes
    email=$(python3 -c 'print("x" * 300 + "@e2e.invalid")')
    for i in $(seq 1 49); do scopes+=(--scope "obj:org/repo-$i/*:read,write"); done
    t=$(user_token --sub "$sub" --name "$name" --email "$email" "${scopes[@]}" --scope 'obj:org/repo/*:read,write')
    tok_size=${#t}
    ((tok_size < 8192)) || fail "test token is $tok_size bytes: too large for this test"
    f=$E2E_TMP/obj.bin
    random_file "$f" 4000
    oid=$(sha256_of "$f")
    big_batch_body "$E2E_TMP/batch.json" "$oid" 4000 1000
    req_size=$(file_size "$E2E_TMP/batch.json")
    http POST "$base/objects/batch" -H "Accept: $LFS_MEDIA_TYPE" -H "Content-Type: $LFS_MEDIA_TYPE" \
        -H "Authorization: Bearer $t" --data-binary "@$E2E_TMP/batch.json"
    assert_status 200
    harvest_tokens "$HTTP_BODY"
    ans_size=$(file_size "$HTTP_BODY")
    echo "large claims: token $tok_size bytes, request $req_size bytes, answer $ans_size bytes for 1000 objects" >&2
    ((ans_size < 1000 * 2048)) || fail "a 1000-object batch answered $ans_size bytes (over 2 KiB per object)"
    assert_json "$HTTP_BODY" 'len(d["objects"]) == 1000 and all("upload" in o["actions"] for o in d["objects"])' \
        "upload actions for the 1000 objects"
    cp "$HTTP_BODY" "$E2E_TMP/answer.json"
    mapfile -t hdr < <(action_header_args "$E2E_TMP/answer.json" 0 upload)
    http PUT "$(action_href "$E2E_TMP/answer.json" 0 upload)" "${hdr[@]}" \
        -H 'Content-Type: application/octet-stream' -T "$f"
    assert_status_2xx
    mapfile -t hdr < <(action_header_args "$E2E_TMP/answer.json" 0 verify)
    lfs_post "$(action_href "$E2E_TMP/answer.json" 0 verify)" "{\"oid\": \"$oid\", \"size\": 4000}" "${hdr[@]}"
    assert_status 200
    assert_only_files "$STORE" "org/repo/$oid"
    assert_server_alive
    assert_logs_clean
}

# Issue #12: git-lfs sends an action's Authorization header and its own (http.extraHeader).
# An expired or forged action token beside a valid user token must not fail the request:
# the action-token provider comes first in the chain, and its rejection used to end it.
test_expired_action_token_beside_user_token() {
    local base t ro expired forged f oid
    jwt_setup
    stop_lfsgate
    head -c 48 /dev/urandom | base64 -w 0 >"$KEYS/action.key"
    cat >>"$CONFIG" <<EOF
PRE_AUTHORIZED_ACTION_PROVIDER:
  factory: giftless.auth.jwt:factory
  options:
    algorithm: HS256
    private_key_file: $KEYS/action.key
EOF
    start_lfsgate --config "$CONFIG"
    base=$(lfs_url org repo)
    f=$E2E_TMP/obj.bin
    random_file "$f" 3000
    oid=$(sha256_of "$f")
    t=$(user_token --scope 'obj:org/repo/*:read,write')
    ro=$(user_token --scope 'obj:org/repo/*:read')
    # an action token of this server (its key and kid) for this very object, expired
    expired=$(minted --alg HS256 --hmac-key-file "$KEYS/action.key" --kid giftless-internal-jwt-key \
        --iat-in -600 --exp-in -300 --scope "obj:org/repo/$oid:write")
    forged=$(minted --alg HS256 --hmac-key-file "$KEYS/other.pub.pem" --kid giftless-internal-jwt-key \
        --scope "obj:org/repo/$oid:write")

    # alone, each is refused with its reason
    http PUT "$base/objects/storage/$oid" -H "Authorization: Bearer $expired" \
        -H 'Content-Type: application/octet-stream' -T "$f"
    expect_401
    assert_json "$HTTP_BODY" '"expired" in d["message"]' "the 401 says the token expired"
    http PUT "$base/objects/storage/$oid" -H "Authorization: Bearer $forged" \
        -H 'Content-Type: application/octet-stream' -T "$f"
    expect_401
    # beside a valid user token, in either order: the user token wins
    for bad in "$expired" "$forged"; do
        put_with_tokens "$base" "$oid" "$f" "$bad" "$t"
        assert_status_2xx
        put_with_tokens "$base" "$oid" "$f" "$t" "$bad"
        assert_status_2xx
        jbatch "$base" download "$oid" 3000 -H "Authorization: Bearer $bad" -H "Authorization: Bearer $t"
        assert_status 200
        jbatch "$base" download "$oid" 3000 -H "Authorization: Bearer $t" -H "Authorization: Bearer $bad"
        assert_status 200
        # the user token decides what is allowed: read-only may not upload
        put_with_tokens "$base" "$oid" "$f" "$bad" "$ro"
        expect_403
    done
    assert_only_files "$STORE" "org/repo/$oid"
    assert_server_alive
    assert_logs_clean
}

run_test jwt_git_extra_header test_git_extra_header
run_test jwt_git_basic_password test_git_basic_password
run_test jwt_git_read_only_token test_git_read_only_token
run_test jwt_rejected_tokens test_rejected_tokens
run_test jwt_forbidden_scopes test_forbidden_scopes
run_test jwt_action_tokens test_action_tokens
run_test jwt_nested_org_scopes test_nested_org_scopes
run_test jwt_large_claims test_large_claims
run_test jwt_expired_action_token_beside_user_token test_expired_action_token_beside_user_token
e2e_finish
