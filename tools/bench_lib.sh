# shellcheck shell=bash
# Helpers shared by tools/bench.sh and tools/idle_memory.sh.  Sourced, not run:
#   PROG=bench.sh
#   source "$(dirname "$0")/bench_lib.sh" || exit 1
#
# Sets SCRIPT_DIR, REPO_DIR, PY.  The functions read these globals of the
# sourcing script: PROG (message prefix), TARGETS, KEEP, READTHRU,
# READTHRU_ARGS; make_tmp sets TMP and PIDS (every process started here is
# appended to PIDS and stopped by the EXIT trap).  The start_* functions leave
# the pid of what they started in STARTED_PID.

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck disable=SC2034  # used by the sourcing scripts
REPO_DIR=$(cd "$SCRIPT_DIR/.." && pwd)
PY=/usr/bin/python3

# The calling script's header comment, up to its "set -u" line.
usage() { sed -n '2,/^set -u/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
die() { echo "$PROG: ERROR: $*" >&2; exit 1; }
need_arg() { [ $# -ge 2 ] && [ -n "$2" ] || die "option $1 needs an argument"; }

# require_tools CMD...: every CMD in PATH, and $PY present
require_tools() {
  local t
  for t in "$@"; do
    command -v "$t" >/dev/null || die "'$t' not found in PATH"
  done
  [ -x "$PY" ] || die "$PY not found"
}

has_target() { [[ ",$TARGETS," == *",$1,"* ]]; }
drop_target() { TARGETS=$(echo ",$TARGETS," | sed "s/,$1,/,/; s/^,//; s/,\$//"); }

# make_tmp NAME KILL_WAIT: create TMP=/tmp/NAME.XXXXXX and install the traps;
# on exit every pid in PIDS gets SIGTERM, KILL_WAIT tenths of a second to go,
# then SIGKILL; TMP is removed unless KEEP=1.
make_tmp() {
  TMP=$(mktemp -d "/tmp/$1.XXXXXX") || die "mktemp failed"
  PIDS=()
  KILL_WAIT=$2
  trap cleanup EXIT
  trap 'echo "$PROG: interrupted" >&2; exit 130' INT TERM HUP
}

cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 1 "$KILL_WAIT"); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null
  done
  wait 2>/dev/null
  if [ "$KEEP" = 1 ]; then echo "$PROG: kept $TMP" >&2; else rm -rf "$TMP"; fi
}

stop_pid() {   # stop one process we started, wait for it
  local p=$1
  kill "$p" 2>/dev/null
  for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$p" 2>/dev/null
  wait "$p" 2>/dev/null
}

# Free TCP ports on 127.0.0.1 (bind to port 0, let the kernel choose).
free_ports() {
  "$PY" - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# wait_ready NAME PID PORT: until a PING on PORT answers PONG (max ~10 s)
wait_ready() {
  local name=$1 pid=$2 port=$3
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || die "$name (pid $pid) exited during startup; log:
$(tail -n 20 "$TMP/$name.log" 2>/dev/null)"
    if [ "$(timeout 2 redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = "PONG" ]; then return 0; fi
    sleep 0.1
  done
  die "$name did not answer PING on port $port within 10 s; log:
$(tail -n 20 "$TMP/$name.log" 2>/dev/null)"
}

# start_redis NAME PORT MAXCLIENTS: redis-server logging to $TMP/NAME.log
start_redis() {
  redis-server --bind 127.0.0.1 --port "$2" --save '' --appendonly no --dir "$TMP" \
    --daemonize no --protected-mode no --maxclients "$3" \
    --logfile "$TMP/$1.log" >/dev/null 2>&1 &
  STARTED_PID=$!
  PIDS+=("$STARTED_PID")
  wait_ready "$1" "$STARTED_PID" "$2"
}

# start_twemproxy POOL PORT STATS_PORT BACKEND_PORT [--check]: nutcracker with
# one pool in front of one redis; --check first has nutcracker -t test the config
start_twemproxy() {
  cat >"$TMP/nutcracker.yml" <<EOF
$1:
  listen: 127.0.0.1:$2
  hash: fnv1a_64
  distribution: ketama
  redis: true
  preconnect: true
  auto_eject_hosts: false
  server_connections: 1
  timeout: 10000
  servers:
   - 127.0.0.1:$4:1
EOF
  if [ "${5:-}" = --check ]; then
    nutcracker -t -c "$TMP/nutcracker.yml" >"$TMP/nutcracker-test.log" 2>&1 \
      || die "nutcracker rejected config: $(cat "$TMP/nutcracker-test.log")"
  fi
  nutcracker -c "$TMP/nutcracker.yml" -s "$3" -a 127.0.0.1 \
    -o "$TMP/twemproxy.log" -p "$TMP/nutcracker.pid" -v 4 >/dev/null 2>&1 &
  STARTED_PID=$!
  PIDS+=("$STARTED_PID")
  wait_ready twemproxy "$STARTED_PID" "$2"
}

# start_readthru PORT BACKEND_PORT [ARG...]: $READTHRU with ARG... and then
# the words of $READTHRU_ARGS, logging to $TMP/$RT_NAME.log (RT_NAME: readthru
# unless set, for a second readthru)
start_readthru() {
  local name=${RT_NAME:-readthru}
  # shellcheck disable=SC2086
  "$READTHRU" --listen "127.0.0.1:$1" --upstream "127.0.0.1:$2" \
    "${@:3}" $READTHRU_ARGS >"$TMP/$name.log" 2>&1 &
  STARTED_PID=$!
  PIDS+=("$STARTED_PID")
  wait_ready "$name" "$STARTED_PID" "$1"
}

# --only LIST: whether part $1 runs
only() { [[ ",$ONLY," == *",$1,"* ]]; }

CLK_TCK=$(getconf CLK_TCK)
# cpu_ticks PID: utime+stime of the whole process in clock ticks (NA if gone)
cpu_ticks() {
  local s
  s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo NA; return; }
  s=${s##*) }
  # shellcheck disable=SC2086
  set -- $s
  echo $(( ${12} + ${13} ))
}
# thread_ticks PID: "LOOP WORKERS", utime+stime in clock ticks of the process's main (event loop)
# thread and of all its other threads together (readthru: the SQLite workers, libuv's pool)
thread_ticks() {
  local pid=$1 t s loop=0 rest=0
  for t in /proc/"$pid"/task/*; do
    s=$(cat "$t/stat" 2>/dev/null) || continue
    s=${s##*) }
    # shellcheck disable=SC2086
    set -- $s
    if [ "${t##*/}" = "$pid" ]; then loop=$((loop + ${12} + ${13})); else rest=$((rest + ${12} + ${13})); fi
  done
  echo "$loop $rest"
}
# children_cpu FILE: sets CHILD_CPU_S to the user+sys CPU seconds of this shell's finished
# children so far (the `times` builtin, via FILE). Call it plainly, not in $(...): a subshell
# has no children of its own to report.
children_cpu() {
  times >"$1"
  CHILD_CPU_S=$(awk 'NR == 2 { n = split($0, f, /[ms ]+/); printf "%.4f", f[1] * 60 + f[2] + f[3] * 60 + f[4] }' "$1")
}
us_per_req() {
  if [ "$1" = NA ] || [ "$2" = NA ]; then echo null; return; fi
  awk -v a="$1" -v b="$2" -v n="$3" -v hz="$CLK_TCK" 'BEGIN{printf "%.3f", (b-a)*1e6/hz/n}'
}

# raw ROUND JSON: append JSON with "round" added
raw() { printf '{"round":%s,%s\n' "$1" "${2#\{}" >>"$RAW"; }

# find_loadgen NAME: sets LOADGEN (unless --loadgen gave it) to the NAME load generator built
# beside readthru when it is newer than tools/NAME.cc, else builds it with g++ into $TMP.
find_loadgen() {
  local name=$1 src="$SCRIPT_DIR/$1.cc" cand
  if [ -z "$LOADGEN" ]; then
    cand="$(dirname "$READTHRU")/$name"
    if [ -x "$cand" ] && [ "$cand" -nt "$src" ]; then
      LOADGEN=$cand
    else
      command -v g++ >/dev/null || die "g++ not found (needed to build $src; or pass --loadgen)"
      echo "$PROG: building $name ..." >&2
      g++ -O2 -g -std=c++20 -Wall -Wextra -Werror "$src" -o "$TMP/$name" \
        -lhiredis -lsqlite3 -pthread 2>"$TMP/loadgen-build.log" \
        || die "building $name failed: $(head -n 20 "$TMP/loadgen-build.log")"
      LOADGEN="$TMP/$name"
    fi
  fi
  [ -x "$LOADGEN" ] || die "load generator not executable: $LOADGEN"
}
