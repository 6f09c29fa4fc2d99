#!/usr/bin/env bash
# Installs what lfsgate needs to build, run and test on Debian 12, and nothing when it is
# all there already. Used by both README commands and by CI. Run as root or with sudo.
set -euo pipefail

# Build and runtime libraries.
build_pkgs=(gcc pkg-config meson ninja-build
    libh2o-evloop-dev libjwt-dev libssl-dev libcurl4-openssl-dev libyaml-dev libjansson-dev)
# Tests: unit tests, the real git-lfs client, tokens minted by python.
test_pkgs=(libcmocka-dev git git-lfs curl python3 python3-jwt python3-cryptography openssl)

want=("${build_pkgs[@]}")
if [ "${1:-}" = "--with-tests" ]; then
    want+=("${test_pkgs[@]}")
fi

missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
echo "installing: ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
