#!/usr/bin/env bash
# Does API load leak into measurements? (issue 12, item 4) Builds the agent,
# runs it on a free loopback port pinging 127.0.0.1 every second (10 echoes
# 100 ms apart) over a history seeded with 100,000 rows, once per ping engine
# (shared, pro-bing): an idle phase, then a phase with N concurrent API
# clients (probes, results of 1,000 and 100,000 rows, aggregates, event
# streams). Prints the loopback RTT per run (p50/p99/max from the agent's
# history), the agent's CPU and RSS, and the clients' answers/s and 429s.
# Usage: bench/api-load-rtt.sh [clients=200] [idle=30s] [load=30s] [apiloadrtt flags…]
# (e.g. --engines shared --packet-interval 80ms)
# Needs root (raw ICMP). Only loopback is used.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/netpulse" ./cmd/netpulse
go build -o "$work/apiloadrtt" ./bench/cmd/apiloadrtt
"$work/apiloadrtt" --bin "$work/netpulse" --clients "${1:-200}" --idle "${2:-30s}" --load "${3:-30s}" "${@:4}"
