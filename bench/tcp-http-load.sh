#!/usr/bin/env bash
# CPU and memory of the tcp and http probes next to blackbox_exporter doing
# the same work on the same loopback targets: TCP connects to a loopback
# service and HTTPS requests (new connection and TLS handshake each) to a
# loopback server, one after the other, each measured over the same window.
# Usage: bench/tcp-http-load.sh [tcp_per_second=1000] [https_per_second=200] [seconds=30]
# Needs: prometheus-blackbox-exporter (apt). Only 127.0.0.1 is probed.
set -euo pipefail
cd "$(dirname "$0")/.."
tcp_rate=${1:-1000}
https_rate=${2:-200}
secs=${3:-30}
bbe=$(command -v prometheus-blackbox-exporter || command -v blackbox_exporter || true)
[ -n "$bbe" ] || { echo "needs blackbox_exporter: apt-get install -y prometheus-blackbox-exporter" >&2; exit 1; }
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"' EXIT

go build -o "$work/netpulse" ./cmd/netpulse
go build -o "$work/webload" ./bench/cmd/webload
"$work/webload" serve --dir "$work" &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/ca.pem" ] && break; sleep 0.1; done
tcp_addr=$(cat "$work/tcp.addr")
https_url=$(cat "$work/https.url")
ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss() { awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }
# Below the ephemeral range (32768-60999): at 1,000 connects/s the probes' own
# client sockets occupy much of it.
free_port() { echo $((20000 + RANDOM % 12000)); }
runs() { curl -s "127.0.0.1:$1/metrics" | awk -v o="$2" '/^netpulse_probe_runs_total/ && $0 ~ "outcome=\"" o "\"" {s += $NF} END {print s + 0}'; }
report() { # name cpu_ticks probes_ok probes_all rss
  awk -v n="$1" -v c="$2" -v ok="$3" -v all="$4" -v r="$5" -v s="$secs" -v t="$ticks" 'BEGIN {
    printf "%-28s %6.1f %% of one core  %5.0f probes/s (%d failed)  %6.3f ms CPU per probe  RSS %d MB\n",
      n, c * 100 / (s * t), ok / s, all - ok, (ok > 0 ? c * 1000 / t / ok : 0), r }'
}

# drain waits (up to 90 s) for the previous phase's client sockets to leave
# TIME_WAIT: 1,000 connects/s leave ~60,000 of them for a minute, nearly the
# whole ephemeral port range, and the next phase's connects would then
# measure the kernel's search for a free port (and fail with EADDRNOTAVAIL).
drain() { for _ in $(seq 90); do [ "$(ss -Htan state time-wait | wc -l)" -lt 2000 ] && return; sleep 1; done; }

# netpulse: N targets of one probe, each every second.
netpulse_run() { # name type rate block host
  local port cfg pid t0 t1 ok0 ok1 all0 all1
  drain
  port=$(free_port)
  cfg="$work/$1.yml"
  {
    echo "probes:"
    echo "  - {name: load, type: $2, interval: 1s, timeout: 900ms, $4, targets: ["
    for ((i = 0; i < $3; i++)); do echo "      {name: t$i, host: \"$5\"},"; done
    echo "    ]}"
    echo "storage: {path: \"$work/state-$1\"}"
  } > "$cfg"
  "$work/netpulse" --config.file "$cfg" --web.listen-address "127.0.0.1:$port" --log.level error &
  pid=$!
  pids+=($pid)
  sleep 5 # warm-up: every target has started (first offsets fall within the 1 s interval)
  ok0=$(runs "$port" success); all0=$(( ok0 + $(runs "$port" failure) + $(runs "$port" timeout) ))
  t0=$(cpu $pid)
  sleep "$secs"
  t1=$(cpu $pid)
  ok1=$(runs "$port" success); all1=$(( ok1 + $(runs "$port" failure) + $(runs "$port" timeout) ))
  report "netpulse $1" $((t1 - t0)) $((ok1 - ok0)) $((all1 - all0)) "$(rss $pid)"
  if [ "$2" = http ]; then # mean of the targets' last runs, per phase
    curl -s "127.0.0.1:$port/metrics" | awk '/^netpulse_http_duration_seconds\{/ {
      match($0, /phase="[a-z]+"/); p = substr($0, RSTART + 7, RLENGTH - 8); s[p] += $NF; n[p]++ }
      END { printf "  phases (mean):"; split("resolve connect tls processing transfer", o, " ")
        for (i = 1; i <= 5; i++) if (n[o[i]]) printf " %s=%.3fms", o[i], s[o[i]] * 1000 / n[o[i]]; print "" }'
  fi
  kill $pid; wait $pid 2>/dev/null || true
}

# blackbox_exporter: driven at the same rate through /probe.
blackbox_run() { # name module rate target
  local port pid t0 t1 out sent ok phases
  drain
  port=$(free_port)
  "$bbe" --config.file "$work/blackbox.yml" --web.listen-address "127.0.0.1:$port" --log.level error 2>"$work/bbe-$1.log" &
  pid=$!
  pids+=($pid)
  for _ in $(seq 100); do curl -s -o /dev/null "127.0.0.1:$port/metrics" && break; sleep 0.1; done
  kill -0 $pid 2>/dev/null || { echo "blackbox_exporter did not start:" >&2; cat "$work/bbe-$1.log" >&2; return 1; }
  "$work/webload" drive --url "http://127.0.0.1:$port/probe?module=$2&target=$4" --rate "$3" --duration 5s > /dev/null
  t0=$(cpu $pid)
  out=$("$work/webload" drive --url "http://127.0.0.1:$port/probe?module=$2&target=$4" --rate "$3" --duration "${secs}s")
  kill -0 $pid 2>/dev/null || { echo "blackbox_exporter exited:" >&2; cat "$work/bbe-$1.log" >&2; return 1; }
  t1=$(cpu $pid)
  read -r sent ok phases <<< "$out"
  report "blackbox_exporter $1" $((t1 - t0)) "$ok" "$sent" "$(rss $pid)"
  [ -z "$phases" ] || echo "  phases (mean): $phases"
  kill $pid; wait $pid 2>/dev/null || true
}

cat > "$work/blackbox.yml" <<YML
modules:
  tcp_connect: {prober: tcp, timeout: 900ms}
  https_get: {prober: http, timeout: 900ms, http: {tls_config: {ca_file: "$work/ca.pem"}}}
YML

echo "$tcp_rate TCP connects/s and $https_rate HTTPS requests/s on loopback, ${secs} s each ($(nproc) cores)"
netpulse_run tcp tcp "$tcp_rate" "tcp: {}" "$tcp_addr"
blackbox_run tcp tcp_connect "$tcp_rate" "$tcp_addr"
netpulse_run https http "$https_rate" "http: {tls_config: {ca_file: \"$work/ca.pem\"}}" "$https_url"
blackbox_run https https_get "$https_rate" "$https_url"
