#!/usr/bin/env bash
# Measures a 1 GiB streaming upload and download through lfsgate (local storage) over
# loopback, next to sha256sum of the same file, and samples the server's memory
# (RssAnon, VmRSS, VmHWM from /proc/PID/status) at idle and during the upload.
# One of each, timed by wall clock; the work directory (file and store) is on disk.
# Usage: bench/stream_1gib.sh [LFSGATE_BIN] [SIZE_MIB]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
mib=${2:-1024}
bench_need_tools curl bc python3
bench_build "${1:-}"
bench_workdir
cat > "$work/config.yaml" <<YAML
AUTH_PROVIDERS: [giftless.auth.allow_anon:read_write]
TRANSFER_ADAPTERS:
  basic:
    factory: giftless.transfer.basic_streaming:factory
    options:
      storage_class: giftless.storage.local_storage:LocalStorage
      storage_options: {path: $work/store}
SERVER: {spool_dir: $work, max_upload_size: 2G}
YAML
start_lfsgate lfsgate "$work/config.yaml"
pid=$started_pid
port=$started_port
mem() { awk '/^(RssAnon|VmRSS|VmHWM):/ {printf "%s %d MiB  ", $1, $2/1024}' "/proc/$pid/status"; }
echo "idle:            $(mem)"
head -c $((mib * 1024 * 1024)) /dev/urandom > "$work/blob"
sync
t0=$(date +%s.%N); oid=$(sha256sum "$work/blob" | cut -c1-64); t1=$(date +%s.%N)
sha_rate=$(echo "$mib / ($t1 - $t0)" | bc -l)
url="http://127.0.0.1:$port/bench/repo.git/info/lfs/objects/storage/$oid"
( while kill -0 "$pid" 2>/dev/null; do awk '/^RssAnon:/ {print $2}' "/proc/$pid/status"; sleep 0.05; done ) > "$work/samples" &
sampler=$!
bench_track "$sampler"
t0=$(date +%s.%N)
curl -sf -T "$work/blob" -H "Expect:" "$url" >/dev/null
t1=$(date +%s.%N)
bench_stop "$sampler"
up_rate=$(echo "$mib / ($t1 - $t0)" | bc -l)
anon_idle=$(head -1 "$work/samples")
anon_max=$(sort -n "$work/samples" | tail -1)
echo "after upload:    $(mem)"
t0=$(date +%s.%N)
curl -sf "$url" -o "$work/down"
t1=$(date +%s.%N)
down_rate=$(echo "$mib / ($t1 - $t0)" | bc -l)
cmp "$work/blob" "$work/down"
printf 'sha256sum:       %6.0f MiB/s\n' "$sha_rate"
printf 'upload (PUT):    %6.0f MiB/s  (%.0f%% of sha256sum)\n' "$up_rate" "$(echo "100 * $up_rate / $sha_rate" | bc -l)"
printf 'download (GET):  %6.0f MiB/s\n' "$down_rate"
printf 'RssAnon growth during upload: %d MiB (from %d KiB to %d KiB)\n' $(( (anon_max - anon_idle) / 1024 )) "$anon_idle" "$anon_max"
