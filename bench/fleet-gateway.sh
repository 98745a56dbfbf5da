#!/usr/bin/env bash
# The cost of a fleet at its gateway: AGENTS agent processes, each pinging
# TARGETS loopback addresses through the shared ICMP engine, push OTLP
# (metrics every 15 s, a trace per run) to otel-collector/gateway.yaml, which
# writes to Prometheus's remote-write receiver; traces go to a sink collector.
# Reports the gateway's CPU share and memory, per agent, the agents a gateway
# core carries, and what the store holds (series, Prometheus CPU and memory).
#
#   bench/fleet-gateway.sh [agents=30] [targets=100] [profile=lean] [seconds=60]
#
# Needs root (raw ICMP), prometheus (apt) and the collector
# (NETPULSE_OTELCOL or .cache/bin/otelcol-netpulse from otel-collector/build.sh).
# Only 127.0.0.0/8 is used. The agents themselves take a few % of a core each.
set -euo pipefail
cd "$(dirname "$0")/.."
agents=${1:-30}
targets=${2:-100}
profile=${3:-lean}
secs=${4:-60}
otelcol=${NETPULSE_OTELCOL:-.cache/bin/otelcol-netpulse}
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_mb() { awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }
wait_http() {
  for _ in $(seq 1 100); do curl -sf -o /dev/null "$1" && return 0; sleep 0.2; done
  echo "not answering: $1" >&2
  exit 1
}

go build -o "$work/netpulse" ./cmd/netpulse

# Prometheus with the fleet's flags (compose.fleet.yaml).
prom=$(port)
cat > "$work/prometheus.yml" <<EOF
global: {scrape_interval: 15s, evaluation_interval: 15s}
EOF
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/prom" \
  --web.listen-address="127.0.0.1:$prom" --web.enable-remote-write-receiver \
  --enable-feature=native-histograms --log.level=warn 2> "$work/prometheus.log" &
prom_pid=$!
pids+=("$prom_pid")
wait_http "http://127.0.0.1:$prom/-/ready"

# A sink for the traces (Tempo's stand-in): the test collector, output discarded.
sink_grpc=$(port)
OTLP_GRPC_ENDPOINT=127.0.0.1:$sink_grpc OTLP_HTTP_ENDPOINT=127.0.0.1:$(port) OTELCOL_OUTPUT=/dev/null \
  "$otelcol" --config=file:otel-collector/test-config.yaml 2> "$work/sink.log" &
pids+=("$!")

# The shipped gateway on loopback ports.
gw_grpc=$(port) gw_http=$(port) gw_health=$(port) gw_self=$(port)
sed -e "s/0\.0\.0\.0:4317/127.0.0.1:$gw_grpc/; s/0\.0\.0\.0:4318/127.0.0.1:$gw_http/" \
  -e "s/0\.0\.0\.0:13133/127.0.0.1:$gw_health/; s/tempo:4317/127.0.0.1:$sink_grpc/" \
  -e "s#http://prometheus:9090#http://127.0.0.1:$prom#; s/host: 0\.0\.0\.0/host: 127.0.0.1/; s/port: 8888/port: $gw_self/" \
  otel-collector/gateway.yaml > "$work/gateway.yaml"
if grep -nE '0\.0\.0\.0|tempo:4317|prometheus:9090' "$work/gateway.yaml"; then
  echo "gateway.yaml changed: update the loopback substitutions above" >&2
  exit 1
fi
"$otelcol" --config=file:"$work/gateway.yaml" 2> "$work/gateway.log" &
gw_pid=$!
pids+=("$gw_pid")
wait_http "http://127.0.0.1:$gw_health/"

# The agents: compose/fleet-agent.yml's telemetry, loopback targets.
for ((a = 0; a < agents; a++)); do
  {
    echo "global: {instance: bench-$a, labels: {site: site-$((a % 3))}}"
    echo "telemetry:"
    echo "  profile: $profile"
    echo "  otlp: {endpoint: 127.0.0.1:$gw_grpc, protocol: grpc, insecure: true, signals: [metrics, traces], metrics_interval: 15s}"
    echo "storage: {path: $work/agent-$a}"
    echo "probes:"
    echo "  - {name: load, type: ping, interval: 30s, timeout: 10s,"
    echo "     ping: {count: 3, packet_interval: 100ms, engine: shared}, targets: ["
    for ((i = 0; i < targets; i++)); do echo "       {name: t$i, host: 127.$((1 + i / 250)).$((i % 250)).$((1 + a))},"; done
    echo "     ]}"
  } > "$work/agent-$a.yml"
  mkdir -p "$work/agent-$a"
  "$work/netpulse" --config.file "$work/agent-$a.yml" --web.listen-address "127.0.0.1:$(port)" \
    --log.level warn 2>> "$work/agents.log" &
  pids+=("$!")
done

sleep 45 # warm-up: every target has run (30 s) and been pushed (15 s)
points() {
  curl -s "http://127.0.0.1:$gw_self/metrics" | awk -v m="$1" '$1 ~ "^"m"[{ ]" || $1 == m {s += $NF} END {printf "%.0f", s}'
}
ticks=$(getconf CLK_TCK)
g0=$(cpu_ticks "$gw_pid") p0=$(cpu_ticks "$prom_pid")
m0=$(points otelcol_receiver_accepted_metric_points_total) s0=$(points otelcol_receiver_accepted_spans_total)
sleep "$secs"
g1=$(cpu_ticks "$gw_pid") p1=$(cpu_ticks "$prom_pid")
m1=$(points otelcol_receiver_accepted_metric_points_total) s1=$(points otelcol_receiver_accepted_spans_total)
failed=$(points otelcol_exporter_send_failed_metric_points_total)
series=$(curl -s "http://127.0.0.1:$prom/api/v1/query" --data-urlencode 'query=count({__name__=~"netpulse_.+|target_info"})' |
  python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else 0)')

echo "fleet:            $agents agents x $targets loopback targets, profile $profile, push every 15 s, a run every 30 s"
awk -v a="$g0" -v b="$g1" -v s="$secs" -v t="$ticks" -v n="$agents" 'BEGIN {
  c = (b - a) * 100 / (s * t)
  printf "gateway cpu:      %.1f %% of one core; %.3f %% per agent; %.0f agents per core\n", c, c / n, (c > 0 ? 100 * n / c : 0) }'
echo "gateway rss:      $(rss_mb "$gw_pid") MB"
awk -v a="$m0" -v b="$m1" -v c="$s0" -v d="$s1" -v s="$secs" -v f="$failed" 'BEGIN {
  printf "gateway in:       %.0f metric points/s, %.0f spans/s; %s points failed to write\n", (b - a) / s, (d - c) / s, f }'
awk -v a="$p0" -v b="$p1" -v s="$secs" -v t="$ticks" 'BEGIN {printf "prometheus cpu:   %.1f %% of one core\n", (b - a) * 100 / (s * t)}'
echo "prometheus rss:   $(rss_mb "$prom_pid") MB"
echo "series stored:    $series ($(awk -v s="$series" -v n="$agents" -v t="$targets" 'BEGIN {printf "%.1f", s / (n * t)}') per target, agents' own series included)"
