#!/usr/bin/env bash
# Resident memory per idle client connection: readthru vs twemproxy vs redis.
#
# Usage: tools/idle_memory.sh [options]
#   --conns N               idle connections per target (default 10000)
#   --readthru PATH         readthru binary (default <repo>/build/readthru)
#   --readthru-config-flag F
#                           flag that passes the config file to readthru
#                           (default --config); the file written is
#                             [limits]
#                             maxclients = 20000
#   --readthru-args "..."   extra arguments appended to the readthru command line
#   --targets LIST          comma list out of redis,twemproxy,readthru (default all)
#   --settle SEC            idle time before the second RSS read (default 1)
#   --keep                  keep the temp dir (logs, configs)
#   -h | --help
#
# For each target a fresh server is started on a free 127.0.0.1 port, one
# warm-up connection PINGs it, VmRSS is read (/proc/PID/status), then N
# connections are opened and each sends one PING and reads +PONG (so the
# connection is fully set up), then after --settle seconds idle VmRSS is read again.
# Prints (after-before)/N in KB.  For the proxies the RSS growth of their
# backend redis-server is shown too (a proxy that opens one upstream
# connection per client shows up there).
set -u
set -o pipefail

PROG=idle_memory.sh
# shellcheck source=tools/bench_lib.sh
source "$(dirname "$0")/bench_lib.sh" || exit 1

CONNS=10000
READTHRU="$REPO_DIR/build/readthru"
RT_CONFIG_FLAG="--config"
READTHRU_ARGS=""
TARGETS="redis,twemproxy,readthru"
KEEP=0
SETTLE=1
MAXCLIENTS=20000

while [ $# -gt 0 ]; do
  case "$1" in
    --conns) need_arg "$@"; CONNS=$2; shift 2 ;;
    --readthru) need_arg "$@"; READTHRU=$2; shift 2 ;;
    --readthru-config-flag) need_arg "$@"; RT_CONFIG_FLAG=$2; shift 2 ;;
    --readthru-args) [ $# -ge 2 ] || die "option $1 needs an argument"; READTHRU_ARGS=$2; shift 2 ;;
    --targets) need_arg "$@"; TARGETS=$2; shift 2 ;;
    --settle) need_arg "$@"; SETTLE=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option: $1 (see --help)" ;;
  esac
done
[[ $CONNS =~ ^[1-9][0-9]*$ ]] || die "--conns must be a positive integer"
[[ $SETTLE =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--settle must be a number of seconds"
[ "$CONNS" -le $((MAXCLIENTS - 100)) ] || die "--conns must be <= $((MAXCLIENTS - 100)) (servers run with maxclients $MAXCLIENTS)"
require_tools redis-server redis-cli nutcracker timeout

# Raise the fd limit for this shell; servers and the client inherit it.
NEED_FDS=$((CONNS + 200))
HARD=$(ulimit -Hn)
if [ "$HARD" != unlimited ] && [ "$HARD" -lt "$NEED_FDS" ]; then
  die "RLIMIT_NOFILE hard limit is $HARD, need >= $NEED_FDS for --conns $CONNS"
fi
ulimit -n "$HARD" 2>/dev/null || ulimit -n "$NEED_FDS" || die "cannot raise ulimit -n"

NOTES=()
if has_target readthru && [ ! -x "$READTHRU" ]; then
  echo "idle_memory.sh: NOTE: readthru binary not found or not executable: $READTHRU; measuring only redis and twemproxy" >&2
  NOTES+=("readthru binary missing ($READTHRU): readthru NOT measured")
  drop_target readthru
fi

make_tmp readthru-idle 30

RESULTS=()
measure() {   # measure TARGET PORT PID BACKEND_PID
  local target=$1 port=$2 pid=$3 backend=$4 out rc extra=()
  [ -n "$backend" ] && extra=(--extra-pid "$backend")
  echo "idle_memory.sh: $target: opening $CONNS idle connections ..." >&2
  out=$(timeout 300 "$PY" "$SCRIPT_DIR/bench_idle_conns.py" --port "$port" --pid "$pid" \
          --conns "$CONNS" --settle "$SETTLE" "${extra[@]}")
  rc=$?
  echo "idle_memory.sh: $target: $out" >&2
  if ! kill -0 "$pid" 2>/dev/null; then
    NOTES+=("$target died during the measurement; see log")
    tail -n 20 "$TMP/$target.log" >&2 2>/dev/null
  fi
  [ $rc -ne 0 ] && NOTES+=("$target: client reported failures (rc=$rc): $out")
  RESULTS+=("$target|$out")
}

read -r P_REDIS P_BACKEND P_TW P_TWSTATS P_RT <<<"$(free_ports 5)"

if has_target redis; then
  start_redis redis "$P_REDIS" "$MAXCLIENTS"; pid=$STARTED_PID
  measure redis "$P_REDIS" "$pid" ""
  stop_pid "$pid"
fi

if has_target twemproxy || has_target readthru; then
  start_redis backend "$P_BACKEND" "$MAXCLIENTS"; BACKEND_PID=$STARTED_PID
fi

if has_target twemproxy; then
  start_twemproxy idle "$P_TW" "$P_TWSTATS" "$P_BACKEND"; pid=$STARTED_PID
  measure twemproxy "$P_TW" "$pid" "$BACKEND_PID"
  stop_pid "$pid"
fi

if has_target readthru; then
  printf '[limits]\nmaxclients = %s\n' "$MAXCLIENTS" >"$TMP/readthru.conf"
  start_readthru "$P_RT" "$P_BACKEND" "$RT_CONFIG_FLAG" "$TMP/readthru.conf"; pid=$STARTED_PID
  measure readthru "$P_RT" "$pid" "$BACKEND_PID"
  stop_pid "$pid"
fi

echo
echo "Idle connections: $CONNS per target (each PINGed once), VmRSS delta after $SETTLE s idle"
printf '%-10s %8s %7s %13s %12s %12s %18s\n' target conns errors rss_before_kb rss_after_kb KB/conn backend_KB/conn
for r in "${RESULTS[@]}"; do
  target=${r%%|*}; kv=${r#*|}
  get() { local v; v=$(grep -o "\b$1=[^ ]*" <<<"$kv" | head -n1); echo "${v#*=}"; }
  printf '%-10s %8s %7s %13s %12s %12s %18s\n' "$target" "$(get conns)" "$(get errors)" \
    "$(get rss_before_kb)" "$(get rss_after_kb)" "$(get kb_per_conn)" "$(v=$(get extra_kb_per_conn); echo "${v:--}")"
done
for n in "${NOTES[@]}"; do echo "NOTE: $n"; done
exit 0
