#!/usr/bin/env bash
# Memory of the agent's API under concurrent history reads: N clients read
# 100,000 rows each (GET …/results?limit=100000), over and over, from the
# API handler served on 127.0.0.1 over a real history store (issue 12,
# item 1). Prints answers/s, 429s, and peak RSS and heap.
# Usage: bench/api-read.sh [readers=60] [duration=30s]
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/apiread" ./bench/cmd/apiread
"$work/apiread" --readers "${1:-60}" --duration "${2:-30s}"
