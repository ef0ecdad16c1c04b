#!/usr/bin/env bash
# Cost of Lua scripts in capture: the capture of bench/capture.sh
# (deterministic mixed HTTP/DNS/TLS/SMTP, 2000 concurrent conversations)
# read with --dryrun on one packet thread
#   - without scripts,
#   - with a trivial parser called for every chunk of every TCP session,
#   - with the hooks of the two sample scripts doing nothing (the engine's
#     own cost: two body feeds, a pre-save and a save callback),
#   - with the credit-card and entropy samples, alone and together,
#   - with the entropy sample minus its byte-counting loop,
#   - with both samples and luaMaxInstructions=0 (no instruction budget).
#
#   bench/lua-capture.sh [packets]               (default 1000000)
#       user+system CPU seconds, median of $RUNS runs (default 3)
#   bench/lua-capture.sh --callgrind [packets]   (default 100000)
#       instructions executed (valgrind --tool=callgrind), one run each:
#       deterministic, so it shows small differences CPU time cannot
set -euo pipefail
cd "$(dirname "$0")/.."
mode=cpu
if [ "${1:-}" = "--callgrind" ]; then
  mode=callgrind
  shift
fi
default=1000000
[ $mode = callgrind ] && default=100000
packets=${1:-$default}
runs=${RUNS:-3}
need() { command -v "$1" >/dev/null 2>&1 || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$2"; }; }
need /usr/bin/time time
[ $mode = callgrind ] && need valgrind valgrind
cargo build --release -q -p moonwire -p pcapgen
mkdir -p bench/data
pcap=bench/data/mixed-$packets.pcap
[ -s "$pcap" ] || ./target/release/pcapgen -w "$pcap" -n "$packets" --concurrent 2000 --seed 1
tests=crates/capture/tests/lua
capture=(./target/release/moonwire capture --dryrun -q -c bench/lua/capture-lua.ini -r "$pcap")

measure() { # label, extra args... -> "label value wall rss"
  local label=$1; shift
  if [ $mode = callgrind ]; then
    local out
    out=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "${capture[@]}" "$@" 2>&1)
    awk -v l="$label" '/Collected :/ {print l, $NF, 0, 0}' <<<"$out"
    return
  fi
  local all=()
  for _ in $(seq "$runs"); do
    out=$( { /usr/bin/time -f "TIME %e %U %S %M" "${capture[@]}" "$@"; } 2>&1 )
    all+=("$(awk '/^TIME/ {printf "%.2f %.2f %.0f", $3+$4, $2, $5/1024}' <<<"$out")")
  done
  printf '%s\n' "${all[@]}" | sort -n | sed -n "$(( (runs + 1) / 2 ))p" | awk -v l="$label" '{print l, $1, $2, $3}'
}

if [ $mode = callgrind ]; then
  echo "moonwire capture --dryrun, packetThreads=1, $packets packets, instructions (callgrind), $(date -u +%F)"
else
  echo "moonwire capture --dryrun, packetThreads=1, $packets packets, $(nproc) cores, median of $runs, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%F)"
fi
results=(
  "$(measure none)"
  "$(measure trivial --lua bench/lua/trivial-parser.lua)"
  "$(measure sample-hooks --lua bench/lua/sample-hooks.lua)"
  "$(measure creditcard --lua $tests/creditcard.lua)"
  "$(measure entropy --lua $tests/entropy.lua)"
  "$(measure entropy-no-count --lua bench/lua/entropy-no-count.lua)"
  "$(measure both --lua $tests/entropy.lua --lua $tests/creditcard.lua)"
  "$(measure both-nobudget -o luaMaxInstructions=0 --lua $tests/entropy.lua --lua $tests/creditcard.lua)"
)
base=$(awk '{print $2}' <<<"${results[0]}")
for r in "${results[@]}"; do
  if [ $mode = callgrind ]; then
    awk -v b="$base" '{printf "%-17s %14.0f instructions  %+6.1f%%\n", $1, $2, ($2-b)/b*100}' <<<"$r"
  else
    awk -v b="$base" '{printf "%-17s cpu %6.2f s  wall %6.2f s  peak RSS %5d MB  %+6.1f%% cpu\n", $1, $2, $3, $4, ($2-b)/b*100}' <<<"$r"
  fi
done
