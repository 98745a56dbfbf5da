#!/usr/bin/env bash
# The whole agent's cost per run, this tree against another revision, in
# the same sitting: bench/cmd/agentscale (scheduler, harness, spans,
# metrics, history, shared ICMP engine on datagram sockets) built at both,
# run in turns so that a busy machine weighs on both alike. Each line: the
# agent's CPU share of one core over the measured time (getrusage), its
# memory, and with perf (linux-perf) the thread context switches and futex
# calls per run over most of that time: the wakeups a run costs.
# Needs ping_group_range to allow datagram ICMP sockets; pings only
# 127.1.x.y.
# Usage: bench/agent-overhead.sh [base=main] [seconds=30] [rounds=2] [targets=1000] [rate=1]
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:-main}
secs=${2:-30}
rounds=${3:-2}
targets=${4:-1000}
rate=${5:-1}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/base"
git archive "$base" | tar -x -C "$work/base" # the revision's files, the repository untouched
(cd "$work/base" && go build -o "$work/agentscale-base" ./bench/cmd/agentscale)
go build -o "$work/agentscale-this" ./bench/cmd/agentscale
warmup=$(awk -v r="$rate" 'BEGIN { printf "%d", 1 / r + 3 }')
window=$((secs - 2))
for round in $(seq "$rounds"); do
  for which in base this; do
    "$work/agentscale-$which" -targets "$targets" -rate "$rate" -duration "${secs}s" >"$work/out" 2>&1 &
    pid=$!
    per_run=""
    if command -v perf >/dev/null; then
      sleep "$warmup"
      stats=$(perf stat -x, -e context-switches,syscalls:sys_enter_futex -p "$pid" -- sleep "$window" 2>&1 || true)
      per_run=$(awk -F, -v runs="$(awk -v n="$targets" -v r="$rate" -v w="$window" 'BEGIN { print n * r * w }')" \
        '$3 == "context-switches" { cs = $1 } $3 == "syscalls:sys_enter_futex" { fx = $1 }
         END { if (cs != "") printf "; per run: %.2f context switches, %.2f futex calls", cs / runs, fx / runs }' <<<"$stats")
    fi
    wait "$pid"
    line=$(grep -m1 '^agent' "$work/out")
    echo "round $round $which ($([ "$which" = base ] && echo "$base" || echo "this tree")): ${line#agent }$per_run"
  done
done
