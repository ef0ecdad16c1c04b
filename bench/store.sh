#!/usr/bin/env bash
# Session store benchmark: index N synthetic Arkime session documents
# (default 1,000,000) and time term, CIDR, wildcard, regex queries and
# --unique aggregations in-process; then time the same through the CLI
# (process start-up and index open included).
# Usage: bench/store.sh [DOCS] [DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
DOCS=${1:-1000000}
DIR=${2:-$(mktemp -d)/data}
# (--example applies to every -p given, so two builds.)
cargo build --release -p store --example store_bench
cargo build --release -p moonwire
./target/release/examples/store_bench "$DOCS" "$DIR"
echo
echo "| CLI (5 runs each, wall time) | median |"
echo "|---|---|"
for q in 'host.http == host1234.example7.com' 'ip.src == 10.2.0.0/16' 'host.http == *.example7.com'; do
  ts=()
  for i in 1 2 3 4 5; do
    s=$(date +%s%N); ./target/release/moonwire query --data "$DIR" "$q" >/dev/null; e=$(date +%s%N)
    ts+=($(( (e - s) / 1000000 )))
  done
  med=$(printf '%s\n' "${ts[@]}" | sort -n | sed -n 3p)
  echo "| \`moonwire query '$q'\` | ${med} ms |"
done
