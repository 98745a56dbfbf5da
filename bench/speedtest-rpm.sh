#!/usr/bin/env bash
# Responsiveness (RPM, draft-ietf-ippm-responsiveness-09) on a 20 Mbit/s
# link with a 500 ms queue (tbf on a veth pair between two namespaces of
# this script's own, 198.18.0.0/15, removed at exit), with CUBIC and with
# BBR at both ends, next to a concurrent ping (bench/cmd/rpmlab). Needs
# root, ip, tc, ping. DURATION (default 10s), REPEAT (default 2), CCS
# (default "cubic bbr").
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${DURATION:-10s}
repeat=${REPEAT:-2}
ccs=${CCS:-cubic bbr}
for c in ip tc ping; do command -v "$c" >/dev/null || { echo "needs $c" >&2; exit 1; }; done

cns="np-rpmbench-c-$$" sns="np-rpmbench-s-$$"
net=$((($$ % 250) + 1))
caddr="198.19.$net.1" saddr="198.19.$net.2"
tmp=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  ip netns del "$cns" 2>/dev/null || true
  ip netns del "$sns" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

. bench/lib/veth-pair.sh
veth_pair "$cns" "$sns" "$caddr" "$saddr"
tc -n "$cns" qdisc add dev veth-c root tbf rate 20mbit burst 32kbit latency 500ms
tc -n "$sns" qdisc add dev veth-s root tbf rate 20mbit burst 32kbit latency 500ms

go build -o "$tmp/netpulse" ./cmd/netpulse
go build -o "$tmp/rpmlab" ./bench/cmd/rpmlab
for cc in $ccs; do
  ip netns exec "$sns" "$tmp/netpulse" speedtest-server --listen "$saddr:8080" --tcp-congestion "$cc" >"$tmp/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do ip netns exec "$cns" bash -c "exec 3<>/dev/tcp/$saddr/8080" 2>/dev/null && break; sleep 0.1; done
  for _ in $(seq "$repeat"); do
    ip netns exec "$cns" "$tmp/rpmlab" -server "http://$saddr:8080" -ping "$saddr" -cc "$cc" -duration "$duration"
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
done
echo "(probe ms: netpulse's loaded-latency probes, trimmed mean; ping: iputils every 50 ms in the same window, trimmed mean)"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
