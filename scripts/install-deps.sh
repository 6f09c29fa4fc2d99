#!/usr/bin/env bash
# Installs what lfsgate needs to build, run and test on Debian 12, and nothing when it is
# all there already. Used by both README commands and by CI. Run as root or with sudo.
set -euo pipefail

# Build and runtime libraries.
build_pkgs=(gcc pkg-config meson ninja-build
    libh2o-evloop-dev libjwt-dev libssl-dev libcurl4-openssl-dev libyaml-dev libjansson-dev)
# Tests: unit tests, the real git-lfs client, tokens minted by python, the npm components
# (Azurite, playwright-core), the reverse proxy and the browser of the portal tests, and the
# benchmark tools, and clang-format for the style check; python3-botocore, AWS's own signer,
# proves the S3 stand-in's signature check (tests/e2e/test_s3.sh).
test_pkgs=(libcmocka-dev git git-lfs curl python3 python3-jwt python3-cryptography python3-botocore openssl
    nginx chromium bc wrk h2o clang-format)
# Fuzzing (tests/fuzz/run.sh): clang 14 with libFuzzer and the sanitizers' runtimes.
test_pkgs+=(clang-14 libclang-rt-14-dev)
# Helm chart tests (tests/helm): helm's template engines, Go's text/template and sprig, built
# offline from Debian's Go source packages.
helm_test_pkgs=(golang-go golang-github-masterminds-sprig-dev golang-github-ghodss-yaml-dev)
# Optional, only with --with-bench (which also installs the test packages): the soak
# benchmark's plot (bench/soak.sh), and the Go libraries of lfs-test-server, which
# bench/peer_upload.sh builds offline as the peer of its upload benchmark.
bench_pkgs=(gnuplot-nox golang-github-boltdb-bolt-dev golang-github-gorilla-mux-dev)
# Node.js for the npm components, unless a node is already installed.
command -v node >/dev/null 2>&1 || test_pkgs+=(nodejs npm)

with_tests=false
want=("${build_pkgs[@]}")
if [ "${1:-}" = "--with-tests" ] || [ "${1:-}" = "--with-bench" ]; then
    with_tests=true
    want+=("${test_pkgs[@]}" "${helm_test_pkgs[@]}")
fi
[ "${1:-}" != "--with-bench" ] || want+=("${bench_pkgs[@]}")

# npm ci in every test folder with a lock file whose node_modules is missing or older.
npm_install() {
    $with_tests || return 0
    local root lock dir
    root=$(cd "$(dirname "$0")/.." && pwd)
    for lock in "$root"/tests/*/package-lock.json; do
        [ -f "$lock" ] || continue
        dir=$(dirname "$lock")
        if [ ! -d "$dir/node_modules" ] || [ "$lock" -nt "$dir/node_modules" ]; then
            echo "npm ci in ${dir#"$root"/}" >&2
            (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) && touch "$dir/node_modules"
        fi
    done
}

missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    npm_install
    exit 0
fi
echo "installing: ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
npm_install
