#!/usr/bin/env bash
# Benchmark: moonwire proxy vs Debian's HAProxy on the same configuration
# and Lua file, side by side in one run.
#
# Cases: plain proxying, a Lua http-req action setting a header, a Lua HTTP
# service answering "hello", a Lua fetch used in a header. Backend: nginx.
# Client: wrk -t2 at 50 and 200 connections. nbthread 1 for both proxies.
#
# Usage: bench/proxy.sh [seconds-per-run]   (default 5; ~3 minutes per repetition)
# Environment: CASES="plain action service fetch" and CONNS="50 200" pick
# a subset; MOONWIRE=path runs another moonwire binary; REPS=N (default 3)
# runs each cell N times, alternating which proxy goes first, and reports
# the medians (a single 5 s run's p99 swings by ±40% on this machine);
# PIN=0 turns off the CPU placement below. "CPU/req ratio" is moonwire's
# CPU per request divided by HAProxy's (below 1: moonwire is cheaper).
#
# Placement (PIN=1, the default): wrk and nginx run on CPU 0, the proxy
# under test on CPU 1, the same for both proxies. Unpinned on 2 cores, the
# kernel's wake-up affinity decides the tail: it pulls a wrk thread onto
# the proxy's core whenever the other core is never idle, and the two then
# preempt each other on every response (docs/BENCHMARKS.md has the traces).
# Which proxy that happens to depends on how much slack the *other* core
# has, not on the proxy's own latency.
# Needs root for apt-get when haproxy/wrk/nginx are missing.
set -euo pipefail

DUR="${1:-5}"
CASES="${CASES:-plain action service fetch}"
CONNS="${CONNS:-50 200}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${MOONWIRE:-$ROOT/target/release/moonwire}"
WORK="$(mktemp -d /tmp/moonwire-bench-proxy.XXXXXX)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

need=()
command -v haproxy >/dev/null || need+=(haproxy)
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || need+=(nginx-light)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
if [ ! -x "$BIN" ]; then
  (cd "$ROOT" && cargo build --release -p moonwire)
fi

REPS="${REPS:-3}"
LOADPIN=""; PROXYPIN=""
if [ "${PIN:-1}" = 1 ]; then
  command -v taskset >/dev/null || { echo "PIN=1 needs taskset (util-linux)" >&2; exit 1; }
  LOADPIN="taskset -c 0"; PROXYPIN="taskset -c 1"
fi
BACKEND=127.0.0.1:18100
cat > "$WORK/nginx.conf" <<NGX
daemon off;
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx.err warn;
user root;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server {
    listen $BACKEND;
    location / { default_type text/plain; return 200 "hello from nginx\n"; }
  }
}
NGX
# A port already taken would silently benchmark whatever listens there.
for port in 18100 18101 18102; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is already in use: stop what listens there first" >&2
    exit 1
  fi
done
$LOADPIN nginx -c "$WORK/nginx.conf" & NGINX=$!; PIDS+=($NGINX)

cat > "$WORK/bench.lua" <<'LUA'
core.register_action("tag", { "http-req" }, function(txn)
  txn.http:req_set_header("X-Lua", "1")
end)
core.register_service("hello", "http", function(applet)
  local body = "hello\n"
  applet:set_status(200)
  applet:add_header("content-type", "text/plain")
  applet:add_header("content-length", tostring(#body))
  applet:start_response()
  applet:send(body)
end)
core.register_fetches("client", function(txn)
  return txn.f:src()
end)
LUA

config() { # $1 case, $2 port
  local rules=""
  case "$1" in
    plain) rules="" ;;
    action) rules="  http-request lua.tag" ;;
    service) rules="  http-request use-service lua.hello" ;;
    fetch) rules="  http-request set-header X-Client %[lua.client]" ;;
  esac
  cat <<CFG
global
  nbthread 1
  lua-load $WORK/bench.lua
  maxconn 4000
defaults
  mode http
  timeout client 30s
  timeout server 30s
  timeout connect 5s
frontend fe
  bind 127.0.0.1:$2
$rules
  default_backend be
backend be
  server s1 $BACKEND
CFG
}

wait_port() {
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "port $1 did not open" >&2; return 1
}

cpu_ticks() { # utime+stime of a process, in clock ticks
  awk '{print $14 + $15}' "/proc/$1/stat"
}

to_us() { # wrk latency ("757.00us", "1.86ms", "1.20s") -> microseconds
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000; else if (v ~ /s$/) print n * 1e6; else print "" }'
}

median() { # numbers on stdin -> their median
  sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

col() { # $1 file of run lines, $2 column -> the column's median
  awk -v k="$2" '{print $k}' "$1" | median
}

ms() { # microseconds -> "1.23ms"
  awk -v v="$1" 'BEGIN { if (v == "-" || v == "") print "-"; else printf "%.2fms", v / 1000 }'
}

run_wrk() { # $1 port, $2 conns, $3 pid -> "rps p50-us p99-us cpu-us-per-request"
  local t0 t1 reqs
  t0=$(cpu_ticks "$3")
  $LOADPIN wrk -t2 -c"$2" -d"${DUR}s" --latency "http://127.0.0.1:$1/" > "$WORK/wrk.out" 2>&1 || true
  t1=$(cpu_ticks "$3")
  local rps p50 p99
  rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.out")
  p50=$(to_us "$(awk '$1=="50%" {print $2}' "$WORK/wrk.out")")
  p99=$(to_us "$(awk '$1=="99%" {print $2}' "$WORK/wrk.out")")
  reqs=$(awk '/requests in/ {print $1}' "$WORK/wrk.out")
  # CPU time the proxy spent per request: robust to a busy machine, where
  # requests/s mostly measures how much CPU the scheduler gave each side.
  local hz; hz=$(getconf CLK_TCK)
  cpu=$(awk -v a="$t0" -v b="$t1" -v n="${reqs:-0}" -v hz="$hz" 'BEGIN { if (n > 0) printf "%.1f", (b - a) / hz * 1e6 / n; else print "-" }')
  echo "${rps:-0} ${p50:-?} ${p99:-?} $cpu"
}

wait_port 18100
echo "placement: $([ -n "$PROXYPIN" ] && echo "wrk+nginx on CPU 0, proxy on CPU 1" || echo "unpinned"); medians of $REPS alternated runs of ${DUR}s; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| case | conns | HAProxy req/s | p50 | p99 | CPU µs/req | moonwire req/s | p50 | p99 | CPU µs/req | req/s ratio | CPU/req ratio | p99 ratio |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for c in $CASES; do
  config "$c" 18101 > "$WORK/haproxy-$c.cfg"
  config "$c" 18102 > "$WORK/moonwire-$c.cfg"
  $PROXYPIN haproxy -f "$WORK/haproxy-$c.cfg" -q & HP=$!; PIDS+=($HP)
  $PROXYPIN "$BIN" proxy -f "$WORK/moonwire-$c.cfg" 2>"$WORK/moonwire.err" & MP=$!; PIDS+=($MP)
  wait_port 18101; wait_port 18102
  for p in "$HP" "$MP"; do
    if ! kill -0 "$p" 2>/dev/null; then
      echo "a proxy did not start (ports 18101/18102 taken?); moonwire said: $(cat "$WORK/moonwire.err")" >&2
      exit 1
    fi
  done
  for conns in $CONNS; do
    : > "$WORK/h.runs"; : > "$WORK/m.runs"
    for r in $(seq 1 "$REPS"); do
      # Alternate who goes first so neither proxy always runs on a warmer machine.
      if [ $((r % 2)) = 1 ]; then
        run_wrk 18101 "$conns" "$HP" >> "$WORK/h.runs"; run_wrk 18102 "$conns" "$MP" >> "$WORK/m.runs"
      else
        run_wrk 18102 "$conns" "$MP" >> "$WORK/m.runs"; run_wrk 18101 "$conns" "$HP" >> "$WORK/h.runs"
      fi
    done
    hr=$(col "$WORK/h.runs" 1); h50=$(col "$WORK/h.runs" 2); h99=$(col "$WORK/h.runs" 3); hc=$(col "$WORK/h.runs" 4)
    mr=$(col "$WORK/m.runs" 1); m50=$(col "$WORK/m.runs" 2); m99=$(col "$WORK/m.runs" 3); mc=$(col "$WORK/m.runs" 4)
    ratio=$(awk -v a="$mr" -v b="$hr" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
    cratio=$(awk -v a="$mc" -v b="$hc" 'BEGIN { if (b + 0 > 0 && a + 0 > 0) printf "%.2f", a / b; else print "-" }')
    pratio=$(awk -v a="$m99" -v b="$h99" 'BEGIN { if (b + 0 > 0 && a + 0 > 0) printf "%.2f", a / b; else print "-" }')
    printf '| %s | %s | %.0f | %s | %s | %s | %.0f | %s | %s | %s | %s | %s | %s |\n' "$c" "$conns" "$hr" "$(ms "$h50")" "$(ms "$h99")" "$hc" "$mr" "$(ms "$m50")" "$(ms "$m99")" "$mc" "$ratio" "$cratio" "$pratio"
  done
  kill "$HP" "$MP" 2>/dev/null || true
  wait "$HP" "$MP" 2>/dev/null || true
done
