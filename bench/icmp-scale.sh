#!/usr/bin/env bash
# Cost of pinging many loopback targets, the shared ICMP engine
# (internal/icmp) against pro-bing (one Pinger per run), same load, same
# run, at two levels:
#   engine: the engine alone (bench/cmd/icmpscale), and the harness alone
#           (-engine none: the dispatcher, a goroutine and a context per
#           run, which the engines' figures include);
#   agent:  the whole agent (bench/cmd/agentscale: scheduler, harness,
#           spans, metrics, history), a ping probe of count 1 per target
#           with ping.engine shared or pro-bing.
# Each line: CPU share of one core (getrusage of the process), resident
# memory and loss over the measured time, then the machine's load average.
# Needs root (raw sockets; datagram sockets need ping_group_range). Only
# 127.0.0.0/8 is pinged (127.1.x.y).
# Usage: bench/icmp-scale.sh [seconds=60] [modes="datagram raw"] [levels="engine agent"]
# A CPU profile of a level: go run ./bench/cmd/agentscale -cpuprofile cpu.out
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
modes=${2:-datagram raw}
levels=${3:-engine agent}
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/icmpscale" ./bench/cmd/icmpscale
go build -o "$bin/agentscale" ./bench/cmd/agentscale
for load in "1000 1" "10000 0.1"; do
  set -- $load
  for mode in $modes; do
    for level in $levels; do
      engines="shared pro-bing"
      [ "$level" = engine ] && [ "$mode" = datagram ] && engines="$engines none"
      for engine in $engines; do
        case $level in
          engine) "$bin/icmpscale" -targets "$1" -rate "$2" -duration "${secs}s" -engine "$engine" -mode "$mode" ;;
          agent) "$bin/agentscale" -targets "$1" -rate "$2" -duration "${secs}s" -engine "$engine" -mode "$mode" ;;
          *) echo "unknown level $level (engine or agent)" >&2; exit 2 ;;
        esac
      done
    done
  done
done
