#!/usr/bin/env bash
# Reload of a 1,000-target configuration (issue 12, item 3): a netpulse
# agent pings 1,000 loopback targets (127.1.x.y) with the default settings,
# then POST /-/reload alternates two configurations that differ in 30
# targets. Per reload: time to apply (as the agent logs it, and from the
# POST to its "configuration reloaded" line), state kept by the 980 unchanged
# targets, and their runs cut short and false loss points (failed runs)
# from the run in flight to one interval later.
# With a second argument, the same run against the agent built from that
# checkout (e.g. an older one, which replaced the agent as a whole).
# Needs ICMP: root, or sysctl net.ipv4.ping_group_range covering your group.
# Usage: bench/reload.sh [reloads=4] [peer-checkout]
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/agentbench" ./bench/cmd/agentbench
go build -o "$work/netpulse" ./cmd/netpulse
echo "== this tree"
"$work/agentbench" reload --agent "$work/netpulse" --targets 1000 --reloads "${1:-4}"
if [ -n "${2:-}" ]; then
  (cd "$2" && go build -o "$work/peer" ./cmd/netpulse)
  echo "== $2"
  "$work/agentbench" reload --agent "$work/peer" --targets 1000 --reloads "${1:-4}"
fi
