#!/usr/bin/env bash
# Runs the agent against N loopback targets (127.x.y.1, all answered by the
# kernel) and reports its CPU share, resident memory, run outcomes and one
# /metrics scrape. Usage: bench/ping-load.sh [targets=1000] [seconds=60]
# Needs root (raw ICMP). Only 127.0.0.0/8 is pinged.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000}
secs=${2:-60}
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

go build -o "$work/netpulse" ./cmd/netpulse
{
  echo "probes:"
  echo "  - {name: load, type: ping, interval: 10s, timeout: 5s,"
  echo "     ping: {count: 3, packet_interval: 100ms, privileged: \"true\"}, targets: ["
  for ((i = 0; i < n; i++)); do echo "       {name: t$i, host: 127.$((1 + i / 250)).$((i % 250)).1},"; done
  echo "     ]}"
} > "$work/load.yml"
port=$((20000 + RANDOM % 20000))
mkdir "$work/state"
XDG_STATE_HOME="$work/state" "$work/netpulse" --config.file "$work/load.yml" \
  --web.listen-address "127.0.0.1:$port" --log.level warn &
pid=$!
sleep 15 # warm-up: every target has started (first offsets fall within the 10 s interval)
ticks=$(getconf CLK_TCK)
t0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
sleep "$secs"
t1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
metrics=$(curl -s "127.0.0.1:$port/metrics")
echo "targets:        $n (3 echoes every 10 s each: $((n * 3 / 10)) packets/s)"
awk -v a="$t0" -v b="$t1" -v s="$secs" -v t="$ticks" 'BEGIN {printf "cpu:            %.1f %% of one core\n", (b - a) * 100 / (s * t)}'
echo "rss:            $(awk '/VmRSS/ {printf "%.0f MB", $2 / 1024}' "/proc/$pid/status")"
echo "$metrics" | awk '/^netpulse_probe_runs_total/ {
  match($0, /outcome="[a-z]+"/); o = substr($0, RSTART + 9, RLENGTH - 10); runs[o] += $NF }
  END { for (o in runs) printf "runs %-9s %d\n", o ":", runs[o] }'
echo "$metrics" | awk '/^netpulse_ping_packets_sent_total/ {s += $NF} /^netpulse_ping_packets_received_total/ {r += $NF}
  END {printf "packets:        %d sent, %d received\n", s, r}'
curl -s -o /dev/null -w "scrape:         %{time_total} s, %{size_download} bytes\n" "127.0.0.1:$port/metrics"
