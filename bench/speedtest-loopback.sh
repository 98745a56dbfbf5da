#!/usr/bin/env bash
# Measures the highest throughput the speed-test probe reports on loopback
# (`netpulse speedtest` against `netpulse speedtest-server`, 1, 4 and 8
# connections) against iperf3 on loopback (1 and 4 streams): the probe's
# ceiling relative to what this machine's TCP stack can move. Only 127.0.0.1
# is used. Set DURATION (default 10s) to shorten it.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${DURATION:-10s}
if ! command -v iperf3 >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends iperf3 >/dev/null
fi
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
  echo $((20000 + RANDOM % 20000)); }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.1; done; echo "port $1 not open" >&2; exit 1; }
# first_after KEY VALUE_KEY: the number after the first VALUE_KEY that follows KEY in JSON on stdin.
first_after() { awk -v k="\"$1\"" -v v="\"$2\"" 'index($0, k) {f=1} f && index($0, v) {gsub(/[^0-9.e+-]/, "", $2); print $2; exit}' FS=: ; }

go build -o "$tmp/netpulse" ./cmd/netpulse
port=$(free_port)
"$tmp/netpulse" speedtest-server --listen "127.0.0.1:$port" --max-conns 128 >"$tmp/server.log" 2>&1 &
pids+=($!)
wait_port "$port"

best_down=0 best_up=0
for c in 1 4 8; do
  json=$("$tmp/netpulse" speedtest --server "http://127.0.0.1:$port" --json --duration "$duration" --connections "$c" \
    --max-bytes 1TB --no-packet-loss)
  down=$(first_after download bytes_per_second <<<"$json")
  up=$(first_after upload bytes_per_second <<<"$json")
  printf "netpulse, %d connection(s):  download %8.0f Mbit/s  upload %8.0f Mbit/s\n" "$c" \
    "$(awk -v x="$down" 'BEGIN{print x*8/1e6}')" "$(awk -v x="$up" 'BEGIN{print x*8/1e6}')"
  best_down=$(awk -v a="$best_down" -v b="$down" 'BEGIN{print (b > a) ? b : a}')
  best_up=$(awk -v a="$best_up" -v b="$up" 'BEGIN{print (b > a) ? b : a}')
done

iport=$(free_port)
iperf3 -s -B 127.0.0.1 -p "$iport" >/dev/null 2>&1 &
pids+=($!)
wait_port "$iport"
best_iperf=0
secs=${duration%s}
for p in 1 4; do
  bps=$(iperf3 -c 127.0.0.1 -p "$iport" -t "$secs" -P "$p" -J | first_after sum_received bits_per_second)
  printf "iperf3, %d stream(s):         %8.0f Mbit/s\n" "$p" "$(awk -v x="$bps" 'BEGIN{print x/1e6}')"
  best_iperf=$(awk -v a="$best_iperf" -v b="$bps" 'BEGIN{print (b > a) ? b : a}')
done

awk -v d="$best_down" -v u="$best_up" -v i="$best_iperf" 'BEGIN {
  printf "best: netpulse download %.0f Mbit/s (%.2f of iperf3), upload %.0f Mbit/s (%.2f of iperf3), iperf3 %.0f Mbit/s\n",
    d*8/1e6, d*8/i, u*8/1e6, u*8/i, i/1e6 }'
