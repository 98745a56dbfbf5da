#!/usr/bin/env bash
# Soak (issue 12): a netpulse agent pings 1,000 loopback targets
# (127.1.x.y) with the default settings for a while; its resident memory,
# goroutines and open file descriptors (from its own /metrics) are printed
# at the start, the middle and the end, with the runs that failed. `task
# soak` runs it for an hour; not in CI. Needs ICMP: root, or sysctl
# net.ipv4.ping_group_range covering your group.
# Usage: bench/soak.sh [duration=1h] [targets=1000]
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/agentbench" ./bench/cmd/agentbench
go build -o "$work/netpulse" ./cmd/netpulse
"$work/agentbench" soak --agent "$work/netpulse" --duration "${1:-1h}" --targets "${2:-1000}"
