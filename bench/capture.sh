#!/usr/bin/env bash
# Capture throughput: generates a deterministic 1M-packet mixed capture
# (HTTP/DNS/TLS/SMTP, 2000 concurrent conversations) and reads it with
# --dryrun (generic fields, every document built) on 1 and 2 packet
# threads. Reports packets/s, MB/s and peak RSS; a 2M-packet file with the
# same concurrency shows that memory follows live sessions, not file size.
#
#   bench/capture.sh [packets]      (default 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
packets=${1:-1000000}
command -v /usr/bin/time >/dev/null 2>&1 || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q time; }
cargo build --release -q -p moonwire -p pcapgen
mkdir -p bench/data
gen() { [ -s "$2" ] || ./target/release/pcapgen -w "$2" -n "$1" --concurrent 2000 --seed 1; }
big=bench/data/mixed-$packets.pcap
gen "$packets" "$big"
double=bench/data/mixed-$((packets * 2)).pcap
gen $((packets * 2)) "$double"
run() { # file threads packets parsers
  local size out
  size=$(stat -c %s "$1")
  out=$( { /usr/bin/time -f "TIME %e %U %S %M" ./target/release/moonwire capture --dryrun -r "$1" \
      -o packetThreads="$2" -o disableParsers="$4"; } 2>&1 )
  # The summary's CPU line: packet threads' CPU and the busiest one's rate.
  awk -v s="$size" -v n="$3" -v t="$2" -v f="$(basename "$1")" -v p="${4:-none}" '
    /CPU reader/ { for (i = 1; i < NF; i++) { if ($i == "threads") pt = $(i + 1); if ($i == "(busiest") rate = $(i + 2) }
                   sub(/s$/, "", pt) }
    /^TIME/ { wall = $2; cpu = $3 + $4; rss = $5 }
    END { printf "%-22s threads=%s disabled=%-4s %6.2f s wall %6.2f s cpu %9.0f packets/s %7.1f MB/s  peak RSS %6.1f MB  packet threads %5.2f s cpu, busiest %8.0f packets/cpu-s\n",
      f, t, p, wall, cpu, n/wall, s/1e6/wall, rss/1024, pt, rate }' <<<"$out"
}
echo "moonwire capture --dryrun, $(nproc) cores, $(date -u +%F)"
echo "-- generic fields only (disableParsers=all)"
for t in 1 2; do
  for i in 1 2 3; do run "$big" "$t" "$packets" all; done
done
run "$double" 2 $((packets * 2)) all
echo "-- all built-in parsers"
for t in 1 2; do
  for i in 1 2; do run "$big" "$t" "$packets" ""; done
done
