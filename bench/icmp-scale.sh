#!/usr/bin/env bash
# Cost of pinging many loopback targets: the shared ICMP engine
# (internal/icmp) against pro-bing bursts (one Pinger per run, as the ping
# probe does today), same load, same run. Each line: CPU share of one core
# (getrusage of the process), resident memory and loss over the measured
# time. Needs root (raw sockets; datagram sockets need ping_group_range).
# Only 127.0.0.0/8 is pinged (127.1.x.y).
# Usage: bench/icmp-scale.sh [seconds=60] [modes="datagram raw"]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
modes=${2:-datagram raw}
bin=$(mktemp -d)/icmpscale
trap 'rm -rf "$(dirname "$bin")"' EXIT
go build -o "$bin" ./bench/cmd/icmpscale
for load in "1000 1" "10000 0.1"; do
  set -- $load
  for mode in $modes; do
    for engine in shared pro-bing; do
      "$bin" -targets "$1" -rate "$2" -duration "${secs}s" -engine "$engine" -mode "$mode"
    done
  done
done
