#!/usr/bin/env bash
# False fault-domain verdicts on a healthy namespace chain (client → home
# router → ISP router → "internet" → target; internal/testutil.NewChain):
# each round of pings, one random router (or none) limits the echo replies
# it sends to one a minute (nftables `limit rate`, ICMP rate limiting at a
# single hop). Nothing is broken, so every verdict but "none" is false (goal: 0).
# Needs root (namespaces, nftables). Traffic stays inside the namespaces.
# Usage: bench/false-verdicts.sh [duration=30m]   (run it in the background)
set -euo pipefail
cd "$(dirname "$0")/.."
d=${1:-30m}
go test ./internal/faults -run '^$' -bench '^BenchmarkFalseVerdicts$' -benchtime "$d" -timeout 0 |
  tee /dev/stderr | awk '/false-verdicts/ {for (i = 1; i < NF; i++) {
    if ($(i + 1) == "false-verdicts") f = $i; if ($(i + 1) == "rate-limited-rounds") r = $i }
    printf "rounds %s, rate-limited rounds %s, false verdicts %s\n", $2, r, f }'
