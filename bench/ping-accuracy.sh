#!/usr/bin/env bash
# Sets iputils ping, fping and netpulse's ping probe (raw and datagram
# sockets) side by side against the ICMP lab (internal/testutil/icmplab): a
# responder behind a TUN device in a throw-away network namespace that
# delays each echo by a known schedule, drops some, and records each echo's
# true RTT with kernel timestamps. Prints each pinger's mean, std and jitter
# error against the truth, per-echo error quantiles, and whether it lost
# exactly the dropped echoes, on 10, 40 and 100 ms paths with jitter and 10 %
# loss. Needs root; traffic stays inside the lab's namespace.
# Usage: bench/ping-accuracy.sh [pingaccuracy flags: -count 200 -interval 20ms
#   -paths 10ms/2ms,40ms/8ms,100ms/20ms -loss 0.1 -family 46 -tools fping,...]
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v ping >/dev/null || need+=(iputils-ping)
command -v fping >/dev/null || need+=(fping)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/pingaccuracy" ./bench/cmd/pingaccuracy
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
"$work/pingaccuracy" -family 46 "$@"
