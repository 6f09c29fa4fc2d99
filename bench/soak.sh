#!/usr/bin/env bash
# Soak: does lfsgate keep serving, without errors and without growing, under hours of mixed
# traffic? Two servers run side by side for DURATION seconds, one on local storage and one
# on Azure storage (Azurite, basic_streaming, so object bodies go through lfsgate both ways),
# both with the RS256 jwt provider. bench/soak_traffic.py drives both at once: 1-object
# upload and 100-object download batches with an RS256 token, 1-64 KiB and 10 MiB uploads
# (batch, PUT, verify), whole and ranged downloads, 401s and 404s.
#
# Every SAMPLE seconds it records each server's VmRSS, RssAnon, open fds and threads from
# /proc into soak.csv, and draws them into soak.png (gnuplot). It then checks the targets:
# no unexpected answer, RssAnon growth after the first minute under 5 MiB, and no fd growth:
# after the first minute, the most fds open in the second half of the run at most 4 above
# the most in the first half (the Azure server keeps a cache of connections to the store,
# up to 256 per worker, that fills and drains with the traffic: its count swings, a leak
# climbs). Exits 1 when one is missed.
#
# Usage: bench/soak.sh [LFSGATE_BIN]     (default: builds build-release)
# Environment: DURATION (600 s), SAMPLE (10 s), THREADS (3 traffic threads per server),
# OUT (where soak.csv, soak.png and soak-traffic.json go; default bench/soak-out).
# Needs curl, gnuplot, python3-jwt, python3-cryptography and Azurite: installed by
# scripts/install-deps.sh --with-bench (gnuplot) and --with-tests when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
root=$PWD
duration=${DURATION:-600}
sample=${SAMPLE:-10}
threads=${THREADS:-3}
out=${OUT:-$root/bench/soak-out}

command -v gnuplot >/dev/null || "$root/scripts/install-deps.sh" --with-bench >&2
bench_need_tools curl gnuplot
bench_jwt_python
bench_build "${1:-}"
bench_workdir
mkdir -p "$out"

mint() { "$py" "$root/tests/e2e/mint_jwt.py" "$@"; }
mint keygen "$work/rsa.pem" "$work/rsa.pub.pem"
token=$(mint mint --key "$work/rsa.pem" --iss https://portal.bench.invalid --aud lfsgate-bench \
    --scope 'obj:soak/repo/*' --exp-in $((duration + 3600)) --sub soak-user --email soak@bench.invalid)
auth=$(jwt_auth_yaml "$work/rsa.pub.pem")
logs="{access_log: false, activity_log: false}"

local_config "$work/local.yaml" "$auth" "$work/store-local" "$logs"
start_lfsgate local "$work/local.yaml" --threads 2
local_port=$started_port local_pid=$started_pid

start_azurite
az_endpoint=http://127.0.0.1:$az_port/devstoreaccount1
streaming_config "$work/azure.yaml" "$auth" giftless.storage.azure:AzureBlobsStorage \
    "{connection_string: \"$(azure_cs "$az_endpoint")\", container_name: bench, path_prefix: soak}" "$logs"
start_lfsgate azure "$work/azure.yaml" --threads 2
azure_port=$started_port azure_pid=$started_pid

# sample T NAME PID: one CSV row from /proc (sizes in KiB).
sample() {
    local t=$1 name=$2 pid=$3 rss anon thr fds
    rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
    anon=$(awk '/^RssAnon:/ { print $2 }' "/proc/$pid/status")
    thr=$(awk '/^Threads:/ { print $2 }' "/proc/$pid/status")
    fds=$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 | wc -l)
    echo "$t,$name,$rss,$anon,$fds,$thr" >>"$out/soak.csv"
}

echo "time_s,server,rss_kib,rss_anon_kib,fds,threads" >"$out/soak.csv"
echo "soak: ${duration}s of mixed traffic against local (port $local_port) and azure (port $azure_port); samples every ${sample}s into $out/soak.csv" >&2
"$py" "$root/bench/soak_traffic.py" "$duration" "$threads" "$token" "$out/soak-traffic.json" \
    "http://127.0.0.1:$local_port/soak/repo.git/info/lfs" \
    "http://127.0.0.1:$azure_port/soak/repo.git/info/lfs" 2>"$work/traffic.err" &
traffic_pid=$!
bench_track "$traffic_pid"
start=$SECONDS
while kill -0 "$traffic_pid" 2>/dev/null; do
    t=$((SECONDS - start))
    for s in local azure; do
        pid_var=${s}_pid
        kill -0 "${!pid_var}" 2>/dev/null || bench_die "lfsgate ($s) died: $(tail -n 5 "$work/$s.log")"
        sample "$t" "$s" "${!pid_var}"
    done
    sleep "$sample" & wait $! || true
done
traffic_rc=0
wait "$traffic_pid" || traffic_rc=$?
bench_untrack "$traffic_pid"
t=$((SECONDS - start))
sample "$t" local "$local_pid"
sample "$t" azure "$azure_pid"
[ -s "$out/soak-traffic.json" ] || bench_die "the traffic generator wrote no counts: $(tail -n 5 "$work/traffic.err")"

# the plot: memory (MiB), fds and threads over time, both servers
gnuplot <<EOF
set datafile separator ","
set terminal png size 1100,800
set output "$out/soak.png"
set multiplot layout 3,1 title "lfsgate soak: ${duration}s, local and Azure (Azurite) storage"
set key outside right
set xlabel "seconds"
set ylabel "MiB"
plot "< grep ',local,' $out/soak.csv" using 1:(\$3/1024) with lines title "local RSS", \
     "< grep ',local,' $out/soak.csv" using 1:(\$4/1024) with lines title "local RssAnon", \
     "< grep ',azure,' $out/soak.csv" using 1:(\$3/1024) with lines title "azure RSS", \
     "< grep ',azure,' $out/soak.csv" using 1:(\$4/1024) with lines title "azure RssAnon"
set ylabel "open fds"
plot "< grep ',local,' $out/soak.csv" using 1:5 with lines title "local", \
     "< grep ',azure,' $out/soak.csv" using 1:5 with lines title "azure"
set ylabel "threads"
plot "< grep ',local,' $out/soak.csv" using 1:6 with lines title "local", \
     "< grep ',azure,' $out/soak.csv" using 1:6 with lines title "azure"
unset multiplot
EOF

# the verdict
python3 - "$out/soak.csv" "$out/soak-traffic.json" "$traffic_rc" <<'PY'
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1])))
traffic = json.load(open(sys.argv[2]))
ok = traffic["unexpected"] == 0 and sys.argv[3] == "0"
print(f"requests: {traffic['requests']}, unexpected: {traffic['unexpected']}")
for e in traffic["examples"][:5]:
    print("  unexpected:", e)
print(f"{'server':8} {'RssAnon@60s':>12} {'RssAnon end':>12} {'growth':>9} {'RSS max':>9} {'fds >=60s':>10} {'fd growth':>9} {'threads':>8}")
for name in ("local", "azure"):
    r = [x for x in rows if x["server"] == name]
    after = [x for x in r if int(x["time_s"]) >= 60] or r[-1:]
    base, end = int(after[0]["rss_anon_kib"]), int(r[-1]["rss_anon_kib"])
    growth = (end - base) / 1024
    fds = [int(x["fds"]) for x in after]
    half = len(fds) // 2
    fd_growth = max(fds[half:]) - max(fds[:half] or fds)
    thr = sorted({int(x["threads"]) for x in r})
    print(f"{name:8} {base / 1024:10.1f}Mi {end / 1024:10.1f}Mi {growth:7.2f}Mi "
          f"{max(int(x['rss_kib']) for x in r) / 1024:7.1f}Mi {min(fds):4}-{max(fds):<5} {fd_growth:9} {'/'.join(map(str, thr)):>8}")
    ok &= growth < 5 and fd_growth <= 4
per = {}
for k, (good, bad) in traffic["counts"].items():
    kind = k.split(" ", 1)[1]
    per.setdefault(kind, [0, 0])
    per[kind][0] += good
    per[kind][1] += bad
print("requests by kind:", ", ".join(f"{k} {g + b}" for k, (g, b) in sorted(per.items())))
print("targets (0 unexpected, RssAnon growth after 1 min < 5 MiB, no fd growth):", "met" if ok else "MISSED")
sys.exit(0 if ok else 1)
PY
