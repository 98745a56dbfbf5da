#!/usr/bin/env bash
# Measures netpulse's ICMP RTT error on loopback: the median RTT that the ping
# probe (pro-bing, userspace timestamps) reports, against iputils ping, whose
# kernel receive timestamps (SO_TIMESTAMP) approximate the true round trip.
# Needs root. Only 127.0.0.1 is pinged.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v ping >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends iputils-ping >/dev/null
fi
ref=$(ping -q -n -c 1000 -i 0.002 127.0.0.1 | awk -F'[/ ]+' '/^rtt/ {print $7}')   # avg, ms
ours=$(go test ./internal/probe/ping/ -run '^$' -bench BenchmarkLoopbackRTT -benchtime 100x |
  awk '/µs-median-rtt/ {for (i = 1; i < NF; i++) if ($(i+1) == "µs-median-rtt") print $i}')
awk -v ref="$ref" -v ours="$ours" 'BEGIN {
  printf "iputils ping (kernel timestamps): %.1f µs\nnetpulse (pro-bing):              %.1f µs\nerror:                            %+.1f µs\n",
    ref * 1000, ours, ours - ref * 1000 }'
