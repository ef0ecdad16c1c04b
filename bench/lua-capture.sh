#!/usr/bin/env bash
# CPU cost of Lua scripts in capture: the capture of bench/capture.sh
# (deterministic mixed HTTP/DNS/TLS/SMTP, 2000 concurrent conversations)
# read with --dryrun on one packet thread
#   - without scripts,
#   - with a trivial parser called for every chunk of every TCP session,
#   - with the entropy and credit-card sample scripts (HTTP body feed),
#     each alone and together, and together without the instruction budget
#     (luaMaxInstructions=0: Lua's count hook off) to show its share.
# Prints the median of 3 runs of user+system CPU seconds and the cost over
# the no-script run.
#
#   bench/lua-capture.sh [packets]      (default 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
packets=${1:-1000000}
command -v /usr/bin/time >/dev/null 2>&1 || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q time; }
cargo build --release -q -p moonwire -p pcapgen
mkdir -p bench/data
pcap=bench/data/mixed-$packets.pcap
[ -s "$pcap" ] || ./target/release/pcapgen -w "$pcap" -n "$packets" --concurrent 2000 --seed 1
tests=crates/capture/tests/lua
cpu() { # label, extra args...
  local label=$1; shift
  local runs=()
  for i in 1 2 3; do
    out=$( { /usr/bin/time -f "TIME %e %U %S %M" ./target/release/moonwire capture --dryrun -q \
      -c bench/lua/capture-lua.ini -r "$pcap" "$@"; } 2>&1 )
    runs+=("$(awk '/^TIME/ {printf "%.2f %.2f %.0f", $3+$4, $2, $5/1024}' <<<"$out")")
  done
  printf '%s\n' "${runs[@]}" | sort -n | sed -n 2p | awk -v l="$label" '{print l, $1, $2, $3}'
}
echo "moonwire capture --dryrun, packetThreads=1, $packets packets, $(nproc) cores, $(date -u +%F)"
base=$(cpu none)
trivial=$(cpu trivial --lua bench/lua/trivial-parser.lua)
cc=$(cpu creditcard --lua $tests/creditcard.lua)
entropy=$(cpu entropy --lua $tests/entropy.lua)
samples=$(cpu both --lua $tests/entropy.lua --lua $tests/creditcard.lua)
nobudget=$(cpu both-nobudget -o luaMaxInstructions=0 --lua $tests/entropy.lua --lua $tests/creditcard.lua)
b=$(awk '{print $2}' <<<"$base")
for r in "$base" "$trivial" "$cc" "$entropy" "$samples" "$nobudget"; do
  awk -v b="$b" '{printf "%-14s cpu %6.2f s  wall %6.2f s  peak RSS %5d MB  %+6.1f%% cpu\n", $1, $2, $3, $4, ($2-b)/b*100}' <<<"$r"
done
