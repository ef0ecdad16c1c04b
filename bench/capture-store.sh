#!/usr/bin/env bash
# Capture into the session store vs --dryrun: the cost of indexing on the
# capture's own path. Reads the deterministic 1M-packet mixed capture of
# bench/capture.sh with all parsers and one packet thread, 3 runs each
# (a fresh store every time), and prints CPU time (user + system) and wall
# time of every run and their medians, the store's session count and size,
# and the load average before and after (the machine is shared).
#
#   bench/capture-store.sh [packets] [runs]     (defaults 1000000, 3)
#   MOONWIRE=path/to/moonwire bench/capture-store.sh   (another build)
set -euo pipefail
cd "$(dirname "$0")/.."
packets=${1:-1000000}
runs=${2:-3}
command -v /usr/bin/time >/dev/null 2>&1 || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q time; }
cargo build --release -q -p moonwire -p pcapgen
mkdir -p bench/data
pcap=bench/data/mixed-$packets.pcap
[ -s "$pcap" ] || ./target/release/pcapgen -w "$pcap" -n "$packets" --concurrent 2000 --seed 1
bin=${MOONWIRE:-./target/release/moonwire}   # MOONWIRE=other/binary compares a build
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)   $(nproc) cores, $(date -u '+%F %H:%M') UTC"
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
declare -A cpu wall
for mode in dryrun store; do
  for i in $(seq "$runs"); do
    if [ "$mode" = dryrun ]; then
      out=$( { /usr/bin/time -f "TIME %e %U %S %M" "$bin" capture --dryrun -q -r "$pcap" -o packetThreads=1; } 2>&1 )
    else
      rm -rf "$tmp/data"
      out=$( { /usr/bin/time -f "TIME %e %U %S %M" "$bin" capture -q -r "$pcap" -o packetThreads=1 --data "$tmp/data"; } 2>&1 )
    fi
    read -r w c r < <(awk '/^TIME/ {printf "%.2f %.2f %.0f\n", $2, $3+$4, $5/1024}' <<<"$out")
    printf '%-7s run %d: %6.2f s CPU %6.2f s wall  peak RSS %4d MB\n' "$mode" "$i" "$c" "$w" "$r"
    cpu[$mode]+="$c "
    wall[$mode]+="$w "
  done
done
n=$("$bin" query --data "$tmp/data" --count)
size=$(du -sb "$tmp/data/index" | cut -f1)
echo "sessions stored: $n, index $(awk -v s="$size" 'BEGIN {printf "%.1f MB", s/1e6}'), $(awk -v s="$size" -v n="$n" 'BEGIN {printf "%.0f", s/n}') bytes per session"
for m in dryrun store; do
  c=$(tr ' ' '\n' <<<"${cpu[$m]}" | grep . | median)
  w=$(tr ' ' '\n' <<<"${wall[$m]}" | grep . | median)
  echo "median $m: ${c} s CPU, ${w} s wall"
  eval "med_cpu_$m=$c med_wall_$m=$w"
done
awk -v a="$med_cpu_dryrun" -v b="$med_cpu_store" -v x="$med_wall_dryrun" -v y="$med_wall_store" -v n="$n" 'BEGIN {
  printf "store vs dryrun: CPU %+.0f%% (%.1f µs per session), wall %+.0f%%\n", (b/a-1)*100, (b-a)/n*1e6, (y/x-1)*100 }'
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
