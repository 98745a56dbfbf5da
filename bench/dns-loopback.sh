#!/usr/bin/env bash
# DNS probes on loopback, netpulse next to blackbox_exporter, against one
# dnsmasq: the lookup time each reports for the same question (netpulse's
# lookup_seconds; blackbox's connect + request phases), and the CPU each
# spends per probe when K targets are probed once a second for DUR seconds
# (netpulse's scheduler; blackbox's /probe endpoint called K times a second),
# the lookup samples of both taken under that load.
# Needs root (dnsmasq) and Debian's dnsmasq-base and prometheus-blackbox-exporter.
# Only 127.0.0.1 is queried, on ports the kernel chose.
set -euo pipefail
cd "$(dirname "$0")/.."
K=${K:-200}
DUR=${DUR:-20}
need=()
command -v dnsmasq >/dev/null || need+=(dnsmasq-base)
command -v prometheus-blackbox-exporter >/dev/null || need+=(prometheus-blackbox-exporter)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
tmp=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$tmp"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime, in clock ticks
hz=$(getconf CLK_TCK)
wait_http() { for _ in $(seq 100); do curl -sf "$1" >/dev/null && return 0; sleep 0.1; done; echo "no answer from $1" >&2; exit 1; }

dns_port=$(port)
dnsmasq --no-daemon --conf-file=/dev/null --no-resolv --no-hosts --port="$dns_port" --listen-address=127.0.0.1 \
  --bind-interfaces --pid-file= --user=root --group=root --cache-size=0 --local=/test/ \
  --address=/a.test/192.0.2.7 2>/dev/null &
pids+=($!)

go build -o "$tmp/netpulse" ./cmd/netpulse
web=$(port)
{
  echo "storage: {path: $tmp/data}"
  echo "probes:"
  echo "  - {name: dns, type: dns, interval: 1s, timeout: 900ms, dns: {query_name: a.test}, targets: ["
  for i in $(seq 0 $((K - 1))); do echo "      {name: t$i, host: \"127.0.0.1:$dns_port\"},"; done
  echo "    ]}"
} >"$tmp/netpulse.yml"
"$tmp/netpulse" --config.file "$tmp/netpulse.yml" --web.listen-address "127.0.0.1:$web" --log.level warn &
np=$!
pids+=($np)
wait_http "http://127.0.0.1:$web/readyz"
sleep 3 # let every target's first offset pass (warm-up, not synchronisation)
t0=$(ticks $np)
sleep "$DUR"
t1=$(ticks $np)
for i in $(seq 0 9); do # ten targets' runs: as many samples as blackbox's 200
  curl -sf "http://127.0.0.1:$web/api/v1/probes/dns/targets/t$i/results?since=${DUR}s&limit=100000"
  echo
done >"$tmp/np.json"
curl -sf "http://127.0.0.1:$web/metrics" >"$tmp/np.metrics"
runs=$(awk '/^netpulse_probe_runs_total\{.*probe_name="dns"/ {n += $NF} END {print n}' "$tmp/np.metrics")
kill $np

cat >"$tmp/bb.yml" <<EOF
modules:
  dns_a:
    prober: dns
    timeout: 1s
    dns: {query_name: a.test, query_type: A, transport_protocol: udp, preferred_ip_protocol: ip4}
EOF
bbport=$(port)
prometheus-blackbox-exporter --config.file="$tmp/bb.yml" --web.listen-address="127.0.0.1:$bbport" --log.level=warn 2>/dev/null &
bb=$!
pids+=($bb)
wait_http "http://127.0.0.1:$bbport/-/healthy"
url="http://127.0.0.1:$bbport/probe?module=dns_a&target=127.0.0.1:$dns_port"
b0=$(ticks $bb)
start=$(date +%s.%N)
# K probes a second for DUR seconds, as Prometheus would scrape K targets.
load=()
# Lookup samples under the same load as netpulse's: 200 probes in a row.
for _ in $(seq 200); do curl -sf "$url"; done | awk '/^probe_dns_duration_seconds\{phase="(connect|request)"\}/ {s += $NF}
  /^probe_dns_duration_seconds\{phase="request"\}/ {print s; s = 0}' >"$tmp/bb.lookup" &
load+=($!)
for _ in $(seq "$DUR"); do
  seq "$K" | xargs -P 16 -I{} curl -sf -o /dev/null "$url" &
  load+=($!)
  sleep 1
done
wait "${load[@]}"
b1=$(ticks $bb)
elapsed=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {print b - a}')

python3 - "$tmp/np.json" "$tmp/bb.lookup" "$runs" "$((t1 - t0))" "$((b1 - b0))" "$hz" "$K" "$DUR" "$elapsed" <<'EOF'
import json, statistics, sys
np_file, bb_file, runs, np_ticks, bb_ticks, hz, k, dur, elapsed = sys.argv[1:]
np = [r["values"]["lookup_seconds"] for line in open(np_file) if line.strip()
      for r in json.loads(line)["results"] if "lookup_seconds" in r.get("values", {})]
bb = [float(x) for x in open(bb_file) if x.strip()]
q = lambda xs, p: statistics.quantiles(xs, n=100)[p - 1] * 1e6
print(f"lookup time, UDP, loopback dnsmasq     median    p90   (µs, samples)")
print(f"  netpulse (lookup_seconds)          {q(np, 50):7.0f} {q(np, 90):6.0f}   ({len(np)})")
print(f"  blackbox 0.23 (connect + request)  {q(bb, 50):7.0f} {q(bb, 90):6.0f}   ({len(bb)})")
probes = int(k) * int(dur)
np_cpu = int(np_ticks) / int(hz) / int(dur) * 100
bb_cpu = int(bb_ticks) / int(hz) / float(elapsed) * 100
print(f"CPU at {k} probes/s for {dur} s (agent process only)")
print(f"  netpulse  {np_cpu:5.1f}% of a core, {int(np_ticks) / int(hz) / probes * 1e6:6.0f} µs CPU per probe ({runs} runs counted in all)")
print(f"  blackbox  {bb_cpu:5.1f}% of a core, {int(bb_ticks) / int(hz) / probes * 1e6:6.0f} µs CPU per probe (over {float(elapsed):.1f} s)")
EOF
