#!/usr/bin/env bash
# Multi-gigabit accuracy of the speed-test probe against iperf3, on a veth
# pair between two network namespaces of this script's own (198.18.0.0/15,
# removed at exit): unshaped, and through tbf at 1 and 2.5 Gbit/s (each end
# shapes what it sends). For each: `netpulse speedtest` (4 connections)
# against `netpulse speedtest-server`, and iperf3 -P 4 each way, with the
# CPU the whole machine was busy during each measurement (100 % = every
# core): on a shared 2-core machine, a ratio below 1 with the CPU near
# 100 % is the machine's bound, not the probe's. Needs root, ip, tc,
# iperf3. DURATION (default 10s), RATES (default "none 1gbit 2500mbit"),
# REPEAT (default 1).
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${DURATION:-10s}
rates=${RATES:-none 1gbit 2500mbit}
repeat=${REPEAT:-1}
secs=${duration%s}
for c in ip tc iperf3; do command -v "$c" >/dev/null || { echo "needs $c" >&2; exit 1; }; done

cns="np-speedbench-c-$$" sns="np-speedbench-s-$$"
net=$((($$ % 250) + 1))
caddr="198.18.$net.1" saddr="198.18.$net.2"
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  ip netns del "$cns" 2>/dev/null || true
  ip netns del "$sns" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

. bench/lib/veth-pair.sh
veth_pair "$cns" "$sns" "$caddr" "$saddr"

go build -o "$tmp/netpulse" ./cmd/netpulse
ip netns exec "$sns" "$tmp/netpulse" speedtest-server --listen "$saddr:8080" --max-conns 128 >"$tmp/server.log" 2>&1 &
pids+=($!)
ip netns exec "$sns" iperf3 -s -B "$saddr" -p 5201 >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  ip netns exec "$cns" bash -c "exec 3<>/dev/tcp/$saddr/8080 && exec 4<>/dev/tcp/$saddr/5201" 2>/dev/null && break
  sleep 0.1
done

first_after() { awk -v k="\"$1\"" -v v="\"$2\"" 'index($0, k) {f=1} f && index($0, v) {gsub(/[^0-9.e+-]/, "", $2); print $2; exit}' FS=: ; }
# cpu_busy: total and idle jiffies of all cores.
cpu() { awk '/^cpu /{print $2+$3+$4+$5+$6+$7+$8+$9, $5+$6}' /proc/stat; }
busy() { awk -v a="$1" -v b="$2" 'BEGIN{split(a,x," "); split(b,y," "); t=y[1]-x[1]; i=y[2]-x[2]; printf "%.0f", (t>0 ? 100*(t-i)/t : 0)}'; }
mbit() { awk -v x="$1" -v m="$2" 'BEGIN{printf "%.0f", x*m/1e6}'; }

printf "%-9s %-9s %10s %5s %10s %5s %6s\n" rate direction netpulse cpu% iperf3 cpu% ratio
for rate in $rates; do
  for ns_dev in "$cns veth-c" "$sns veth-s"; do
    set -- $ns_dev
    tc -n "$1" qdisc del dev "$2" root 2>/dev/null || true
    if [ "$rate" != none ]; then
      # burst: a few timer ticks' worth at the rate (tbf needs it at Gbit/s).
      tc -n "$1" qdisc add dev "$2" root tbf rate "$rate" burst 4mb latency 20ms
    fi
  done
  for _ in $(seq "$repeat"); do
    c0=$(cpu)
    json=$(ip netns exec "$cns" "$tmp/netpulse" speedtest --server "http://$saddr:8080" --json --duration "$duration" \
      --connections 4 --max-bytes 1TB --no-packet-loss)
    c1=$(cpu)
    np_cpu=$(busy "$c0" "$c1")
    down=$(first_after download bytes_per_second <<<"$json")
    up=$(first_after upload bytes_per_second <<<"$json")
    for dir in download upload; do
      flag=-R np=$down
      [ "$dir" = upload ] && flag= np=$up
      c0=$(cpu)
      bps=$(ip netns exec "$cns" iperf3 -c "$saddr" -p 5201 -t "$secs" -O 1 -P 4 $flag -J | first_after sum_received bits_per_second)
      c1=$(cpu)
      printf "%-9s %-9s %10s %5s %10s %5s %6.3f\n" "$rate" "$dir" "$(mbit "$np" 8)" "$np_cpu" "$(mbit "$bps" 1)" "$(busy "$c0" "$c1")" \
        "$(awk -v a="$np" -v b="$bps" 'BEGIN{print (b>0 ? a*8/b : 0)}')"
    done
  done
done
echo "(Mbit/s; netpulse: steady-state rate of one run that did both directions, cpu% over that run; iperf3: 4 streams, first second omitted)"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
