#!/bin/sh
# tshark vs moonwire on the same Lua dissectors, one pass and -2, output to
# /dev/null (not -q, which skips Lua in tshark).
#   bench/dissect.sh [PACKETS]     (default 100000)
# Each case runs RUNS times (default 3); the run with the median CPU time
# is shown.
set -eu
N=${1:-100000}
RUNS=${RUNS:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${TMPDIR:-/tmp}/moonwire-dissect-bench
mkdir -p "$WORK"
cd "$ROOT"
cargo build --release -q -p moonwire
cargo build --release -q -p dissect --example gen_capture
CAP="$WORK/bench-$N.pcap"
[ -f "$CAP" ] || target/release/examples/gen_capture "$CAP" "$N"
L1="$ROOT/crates/dissect/tests/lua/vsmask.lua"
L2="$ROOT/crates/dissect/tests/lua/lenproto.lua"

run() { # label, command...
    label=$1; shift
    : > "$WORK/times.txt"
    i=0
    while [ "$i" -lt "$RUNS" ]; do
        /usr/bin/time -f "%e %U %S" -o "$WORK/time.txt" "$@" >/dev/null 2>"$WORK/err.txt"
        awk '{ print $2 + $3, $1 }' "$WORK/time.txt" >> "$WORK/times.txt"
        i=$((i + 1))
    done
    # Wall time and CPU time (user+sys) of the median-CPU run: on a shared
    # machine CPU time is the steadier measure.
    sort -n "$WORK/times.txt" | awk -v l="$label" -v n="$N" -v r="$RUNS" \
        'NR == int((r + 1) / 2) { printf "%-28s wall %7.2f s %9.0f pkt/s | cpu %7.2f s %9.0f pkt/s\n", l, $2, n / $2, $1, n / $1 }'
}

uptime
echo "capture: $CAP ($N packets; UDP status reports + length-prefixed TCP PDUs split across segments)"
if command -v tshark >/dev/null 2>&1; then
    tshark --version | head -1
    run "tshark (no Lua)" tshark -n -r "$CAP"
    run "tshark, Lua, one pass" tshark -n -r "$CAP" -X "lua_script:$L1" -X "lua_script:$L2"
    run "tshark, Lua, -2" tshark -n -2 -r "$CAP" -X "lua_script:$L1" -X "lua_script:$L2"
else
    echo "tshark not installed: moonwire only"
fi
run "moonwire, Lua, one pass" target/release/moonwire dissect -r "$CAP" -X "lua_script:$L1" -X "lua_script:$L2"
run "moonwire, Lua, -2" target/release/moonwire dissect -2 -r "$CAP" -X "lua_script:$L1" -X "lua_script:$L2"
run "moonwire, Lua, -V" target/release/moonwire dissect -V -r "$CAP" -X "lua_script:$L1" -X "lua_script:$L2"
if command -v tshark >/dev/null 2>&1; then
    run "tshark, Lua, -V" tshark -n -V -r "$CAP" -X "lua_script:$L1" -X "lua_script:$L2"
fi

# A small dissector (one field, one column), as in issue 7's scale figures.
SMALL="$WORK/small.lua"
cat > "$SMALL" <<'LUA'
local p = Proto("small", "Small Protocol")
local f = ProtoField.uint8("small.kind", "Kind", base.DEC, { [1] = "one" }, 0x0f)
p.fields = { f }
function p.dissector(tvb, pinfo, tree)
  pinfo.cols.protocol = "SMALL"
  tree:add(p, tvb()):add(f, tvb(0, 1))
end
DissectorTable.get("udp.port"):add(6000, p)
LUA
echo "small dissector:"
if command -v tshark >/dev/null 2>&1; then
    run "tshark, small, one pass" tshark -n -r "$CAP" -X "lua_script:$SMALL"
    run "tshark, small, -2" tshark -n -2 -r "$CAP" -X "lua_script:$SMALL"
fi
run "moonwire, small, one pass" target/release/moonwire dissect -r "$CAP" -X "lua_script:$SMALL"
run "moonwire, small, -2" target/release/moonwire dissect -2 -r "$CAP" -X "lua_script:$SMALL"
