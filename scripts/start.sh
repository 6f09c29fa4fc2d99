#!/usr/bin/env bash
# Installs what is missing, builds a release binary and starts lfsgate in the foreground.
# Without arguments it runs the built-in configuration (anonymous read-write, objects in
# ./lfs-storage, 127.0.0.1:8080); any arguments are passed to lfsgate (e.g. --config FILE).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
if [ ! -d build-release ]; then
    meson setup build-release --buildtype=release -Dtests=disabled >/dev/null
fi
ninja -C build-release >/dev/null
exec ./build-release/server/lfsgate "$@"
