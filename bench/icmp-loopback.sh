#!/usr/bin/env bash
# Loopback RTT, side by side in one run: iputils ping (kernel receive
# timestamps, userspace send time), the shared ICMP engine (internal/icmp:
# kernel receive and TX timestamps; "-usertx" = userspace send time) and the
# current pro-bing probe (internal/probe/ping). Medians in µs; the true
# loopback RTT is a few µs, so each figure above it is that pinger's error.
# Needs root (raw sockets; datagram sockets also need ping_group_range).
# Only 127.0.0.1 is pinged. Usage: bench/icmp-loopback.sh [echoes=200]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-200}
if ! command -v ping >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends iputils-ping >/dev/null
fi
median() { sort -g | awk '{v[NR] = $1} END {if (NR) print v[int((NR + 1) / 2)]}'; }
bench() { # package, benchmark, -benchtime: prints "name median" per sub-benchmark
  go test "$1" -run '^$' -bench "$2" -benchtime "$3" 2>/dev/null |
    awk '/µs-median-rtt/ {for (i = 1; i < NF; i++) if ($(i + 1) == "µs-median-rtt") {sub(/-[0-9]+$/, "", $1); print $1, $i}}'
}
ping_median() { ping -n -c "$n" -i "$1" 127.0.0.1 | awk -F'time=' '/time=/ {split($2, a, " "); print a[1] * 1000}' | median; }
ping_us=$(ping_median 0.01)
ping_fast_us=$(ping_median 0.001) # the engine's bursts are 1 ms apart
engine=$(bench ./internal/icmp/ BenchmarkLoopbackRTT "$((n / 10))x")
probing=$(bench ./internal/probe/ping/ BenchmarkLoopbackRTT "$((n / 10))x")
printf '%-42s %8s %10s\n' "pinger (loopback, $n echoes)" "median" "vs ping"
printf '%-42s %6.1f µs %10s\n' "iputils ping -i 0.01" "$ping_us" "-"
printf '%-42s %6.1f µs %+7.1f µs\n' "iputils ping -i 0.001" "$ping_fast_us" "$(awk -v a="$ping_fast_us" -v b="$ping_us" 'BEGIN {print a - b}')"
while read -r name us; do
  printf '%-42s %6.1f µs %+7.1f µs\n' "engine ${name#BenchmarkLoopbackRTT/}" "$us" "$(awk -v a="$us" -v b="$ping_us" 'BEGIN {print a - b}')"
done <<<"$engine"
while read -r name us; do
  printf '%-42s %6.1f µs %+7.1f µs\n' "pro-bing probe (median of burst means)" "$us" "$(awk -v a="$us" -v b="$ping_us" 'BEGIN {print a - b}')"
done <<<"$probing"
