#!/usr/bin/env bash
# The github auth provider's cost on the batch API, in one run:
# - warm cache: 1-object upload batches per second with a GitHub token whose rights are
#   cached (every request a cache hit, no GitHub call), next to the same batches with an
#   RS256 JWT (jwt provider, token cache on) on another lfsgate with the same storage.
#   wrk -t2 -c16 -d5s per measurement, REPS rounds (default 3) interleaved, medians.
# - cold cache: the time from sending a batch with a token lfsgate has not seen to its answer
#   (GET /user and the collaborator permission: two calls to tests/fakes/github_fake.py),
#   with the stand-in answering at once and with 50 ms added to each of its answers (a
#   GitHub round trip); SAMPLES fresh tokens each (default 7), medians, and the calls the
#   stand-in counted.
# Access and activity logs are off; lfsgate runs one worker thread per CPU, on the same
# machine as wrk and the stand-in.
#
# Usage: bench/github_batch.sh [LFSGATE_BIN]     (default: builds build-release)
# Environment: REPS (3), DURATION (5s), THREADS (2), CONNECTIONS (16), SAMPLES (7).
# Needs wrk, curl, bc, python3-jwt, python3-cryptography (tests/e2e/mint_jwt.py).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
root=$PWD
reps=${REPS:-3}
samples=${SAMPLES:-7}
wrk_duration=${DURATION:-5s}
wrk_threads=${THREADS:-2}
wrk_conns=${CONNECTIONS:-16}

bench_need_tools wrk curl bc
bench_jwt_python
bench_build "${1:-}"
bench_workdir

"$py" "$root/tests/e2e/mint_jwt.py" keygen "$work/rsa.pem" "$work/rsa.pub.pem"
jwt=$("$py" "$root/tests/e2e/mint_jwt.py" mint --key "$work/rsa.pem" \
    --iss https://portal.bench.invalid --aud lfsgate-bench --scope 'obj:bench/repo/*' \
    --exp-in 3600 --sub bench-user)

# The stand-in's world: one warm token and a fresh token per cold sample (two rounds).
rand_token() { echo "ghp_bench$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"; }
warm=$(rand_token)
cold=()
for _ in $(seq $((2 * samples))); do cold+=("$(rand_token)"); done
{
    printf '{"users": {"%s": {"login": "warm", "id": 1}' "$warm"
    i=0
    for t in "${cold[@]}"; do
        i=$((i + 1))
        printf ', "%s": {"login": "cold%d", "id": %d}' "$t" "$i" $((i + 1))
    done
    printf '}, "permissions": {"bench/repo": {"warm": "write"'
    for i in $(seq ${#cold[@]}); do printf ', "cold%d": "write"' "$i"; done
    printf '}}}\n'
} >"$work/world.json"
gh_port=$(free_port)
python3 "$root/tests/fakes/github_fake.py" --world "$work/world.json" --port "$gh_port" --quiet \
    >"$work/github_fake.out" 2>"$work/github_fake.log" </dev/null &
bench_track $!
wait_port "$gh_port" $! || bench_die "github_fake.py did not start: $(tail -n 3 "$work/github_fake.log")"
gh_url=http://127.0.0.1:$gh_port
gh_mode() { curl -s -o /dev/null -X POST --data-binary "$1" "$gh_url/_fake/mode"; }
gh_total() { curl -s "$gh_url/_fake/stats" | python3 -c 'import json, sys; print(json.load(sys.stdin)["total"])'; }

local_config "$work/jwt.yaml" "$(jwt_auth_yaml "$work/rsa.pub.pem")" "$work/store-jwt"
start_lfsgate jwt "$work/jwt.yaml"
port_jwt=$started_port
local_config "$work/github.yaml" "  - factory: giftless.auth.github:factory
    options:
      api_url: $gh_url
      cache: {token_max_size: 256, auth_max_size: 256}" "$work/store-github"
start_lfsgate github "$work/github.yaml"
port_github=$started_port

oid=$(printf 'github batch bench object' | sha256sum | cut -c 1-64)
body="{\"operation\": \"upload\", \"transfers\": [\"basic\"], \"ref\": {\"name\": \"refs/heads/main\"}, \"objects\": [{\"oid\": \"$oid\", \"size\": 123456}], \"hash_algo\": \"sha256\"}"
path=/bench/repo.git/info/lfs/objects/batch

# batch PORT TOKEN: one batch; prints "<status> <seconds>"
batch() {
    curl -s -o "$work/answer.json" -w '%{http_code} %{time_total}\n' -X POST \
        -H 'Content-Type: application/vnd.git-lfs+json' -H 'Accept: application/vnd.git-lfs+json' \
        -H "Authorization: Bearer $2" --data-binary "$body" "http://127.0.0.1:$1$path"
}
for check in "$port_jwt $jwt" "$port_github $warm"; do
    # shellcheck disable=SC2086 # port and token
    read -r code _ < <(batch $check)
    { [ "$code" = 200 ] && grep -q '"verify"' "$work/answer.json"; } ||
        bench_die "batch on port ${check%% *}: expected 200 with upload and verify actions, got $code: $(head -c 300 "$work/answer.json")"
done

# ---- cold cache: time to the first batch of a new token ----
cold_run() { # LABEL DELAY_MS FIRST_INDEX
    local label=$1 before after code secs i
    gh_mode "{\"delay_ms\": $2}"
    : >"$work/cold-$label"
    before=$(gh_total)
    for ((i = $3; i < $3 + samples; i++)); do
        read -r code secs < <(batch "$port_github" "${cold[$i]}")
        [ "$code" = 200 ] || bench_die "cold batch ($label): HTTP $code: $(head -c 300 "$work/answer.json")"
        echo "$secs * 1000" | bc -l >>"$work/cold-$label"
    done
    after=$(gh_total)
    echo $(((after - before) / samples)) >"$work/cold-$label.calls"
}
cold_run 0ms 0 0
cold_run 50ms 50 "$samples"
gh_mode '{"delay_ms": 0}'

# ---- warm cache: batches per second ----
echo "$body" >"$work/body.json"
wrk_lua "$work/jwt.lua" "$work/body.json" "$jwt"
wrk_lua "$work/github.lua" "$work/body.json" "$warm"
calls_before=$(gh_total)
run() { # NAME URL LUA
    local rate
    rate=$(bench_wrk "$@")
    echo "$rate" >>"$work/$1.rates"
    printf '  %-12s %10.0f req/s\n' "$1" "$rate" >&2
}
echo "$("$bin" --version 2>/dev/null | head -n 1), $(nproc) CPUs; wrk -t$wrk_threads -c$wrk_conns -d$wrk_duration, $reps rounds" >&2
wrk_duration=1s bench_wrk warmup-jwt "http://127.0.0.1:$port_jwt$path" "$work/jwt.lua" >/dev/null
wrk_duration=1s bench_wrk warmup-github "http://127.0.0.1:$port_github$path" "$work/github.lua" >/dev/null
for r in $(seq "$reps"); do
    echo "round $r" >&2
    run jwt "http://127.0.0.1:$port_jwt$path" "$work/jwt.lua"
    run github "http://127.0.0.1:$port_github$path" "$work/github.lua"
done
warm_calls=$(($(gh_total) - calls_before))

jwt_rate=$(median "$work/jwt.rates")
gh_rate=$(median "$work/github.rates")
echo
printf '%-48s %12s %10s\n' "1-object upload batch, warm cache" "req/s (med)" "vs JWT"
printf '%-48s %12.0f %9.2fx\n' "lfsgate, RS256 JWT (token cache on)" "$jwt_rate" 1
printf '%-48s %12.0f %9.2fx\n' "lfsgate, GitHub token (rights cached)" "$gh_rate" \
    "$(echo "$gh_rate / $jwt_rate" | bc -l)"
echo "GitHub calls during the warm runs: $warm_calls"
echo
printf '%-48s %12s %14s\n' "first batch of a new GitHub token" "ms (median)" "calls/token"
printf '%-48s %12.1f %14s\n' "stand-in answering at once" "$(median "$work/cold-0ms")" "$(cat "$work/cold-0ms.calls")"
printf '%-48s %12.1f %14s\n' "stand-in adding 50 ms to each answer" "$(median "$work/cold-50ms")" "$(cat "$work/cold-50ms.calls")"
