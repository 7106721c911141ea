#!/usr/bin/env bash
# Read-through benchmarks: readthru's loaders against the application-side recipes users write
# today, all on 127.0.0.1 in a temp dir (one redis-server, two readthru processes: one with
# loaders over a SQLite database, one without).
#
#   stampede  --clients (200) threads GET 100 hot keys hot:1..hot:100 for --duration seconds;
#             the loader query is a ~20 ms recursive CTE (calibrated at start), ttl 5s, jitter 1s,
#             timeout 5s (the recipe's lock lifetime), backend workers 2. readthru (plain GETs
#             through readthru, the loader's defaults: refresh-ahead on), readthru with
#             refresh_ahead = 0 (single-flight alone) against the recipe (cache-aside on redis-server with
#             SET lock:<key> 1 NX EX 5 and a 100 ms sleep-and-retry; the lock holder runs the
#             query itself). Every key is fetched once before the timed window. Prints database
#             loads per key per expiry (expiries = redis-server's expired_keys delta over the
#             window) and client latency.
#   cold      distinct-key misses per second: every GET is for a key not yet in Redis (users table
#             of 100,000 rows, primary-key lookup). readthru loading against a cache-aside client
#             (GET, on nil query SQLite in the client and SET with a TTL) on redis-server.
#   hits      redis-benchmark GET user:__rand_int__ on 100,000 keys in Redis, filled through
#             readthru's loader: direct redis-server, readthru without loaders, and readthru
#             with a loader matching every key (so each GET passes the read-through check, and
#             the refresh-ahead one, and hits).
#
# Every benchmark interleaves its targets within each round (the order rotates) and reports
# medians over rounds; ratios are taken within a round. The client is tools/readthru_loadgen.cc
# (one thread and one hiredis connection per client), compiled here with g++ unless given.
#
# Usage: tools/bench_readthrough.sh [options]
#   --quick               smoke run: 1 round, 8 s stampede, few keys (under a minute)
#                         (the full run takes about 5 minutes on 2 cores)
#   --only LIST           comma list out of stampede,cold,hits (default all)
#   --rounds N            rounds of every benchmark (default 3; hits: --hit-rounds)
#   --hit-rounds N        rounds of the hit-path benchmark (default 5)
#   --duration S          stampede seconds per run (default 30)
#   --clients N           stampede clients (default 200)
#   --query-ms MS         stampede loader query time to calibrate for (default 20)
#   --think-us LIST       stampede: each client sleeps this many microseconds after every GET;
#                         a comma list runs the stampede once per value (default 0: back to back,
#                         which keeps a 2-core host saturated; e.g. 0,20000 adds a paced run)
#   --client-nice N       run the stampede clients under nice -n N (default 0). On a small host
#                         the 200 client threads otherwise take CPU from readthru's backend
#                         workers; with N > 0 the clients yield, as if they were on other hosts
#                         (the recipe's own queries run in the clients, so they yield too)
#   --refresh-ahead F     stampede: the readthru side's refresh_ahead (default: readthru's own
#                         default, 0.1). A key is reloaded about once per (1 - F) of its TTL, so
#                         F also sets the extra loads; the reload has F x ttl to finish before the
#                         key would expire
#   --worker-nice N       stampede: a fourth side, single-flight alone on a backend whose workers
#                         run at nice N (-20..19, default -10; 0 leaves the side out). Below 0
#                         needs root or CAP_SYS_NICE, else readthru warns and a NOTE says so
#   --cold-count N        distinct keys per cold-miss run (default 20000)
#   --cold-clients LIST   client counts for the cold-miss runs (default 1,50)
#   --requests-p1 N       redis-benchmark -n for 50 clients -P 1  (default 100000)
#   --requests-p16 N      redis-benchmark -n for 50 clients -P 16 (default 400000)
#   --readthru PATH       readthru binary (default $READTHRU_BIN, else <repo>/build/readthru)
#   --loadgen PATH        readthru_loadgen binary (default: the one next to the readthru binary
#                         if newer than tools/readthru_loadgen.cc, else built with g++ into the
#                         temp dir)
#   --raw FILE            also copy the raw results (one JSON object a line) to FILE
#   --keep                keep the temp dir (logs, configs, database, raw results)
#   -h | --help
#
# If readthru does not answer READTHRU STATS (no read-through support), only the recipe / direct
# Redis sides run and a NOTE says so.
set -u
set -o pipefail

PROG=bench_readthrough.sh
# shellcheck source=tools/bench_lib.sh
source "$(dirname "$0")/bench_lib.sh" || exit 1

QUICK=0
ONLY="stampede,cold,hits"
ROUNDS=3
HIT_ROUNDS=5
DURATION=30
CLIENTS=200
QUERY_MS=20
THINK_US="0"
CLIENT_NICE=0
REFRESH_AHEAD=""
WORKER_NICE=-10
HOT_KEYS=100
COLD_COUNT=20000
COLD_CLIENTS="1,50"
REQ_P1=100000
REQ_P16=400000
USERS=100000
READTHRU=${READTHRU_BIN:-"$REPO_DIR/build/readthru"}
LOADGEN=""
RAW_OUT=""
KEEP=0
RUN_TIMEOUT=300     # seconds, hard bound on one client run
declare -A SET_BY_USER=()

while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1; shift ;;
    --only) need_arg "$@"; ONLY=$2; shift 2 ;;
    --rounds) need_arg "$@"; ROUNDS=$2; SET_BY_USER[ROUNDS]=1; shift 2 ;;
    --hit-rounds) need_arg "$@"; HIT_ROUNDS=$2; SET_BY_USER[HIT_ROUNDS]=1; shift 2 ;;
    --duration) need_arg "$@"; DURATION=$2; SET_BY_USER[DURATION]=1; shift 2 ;;
    --clients) need_arg "$@"; CLIENTS=$2; shift 2 ;;
    --query-ms) need_arg "$@"; QUERY_MS=$2; shift 2 ;;
    --think-us) need_arg "$@"; THINK_US=$2; shift 2 ;;
    --client-nice) need_arg "$@"; CLIENT_NICE=$2; shift 2 ;;
    --refresh-ahead) need_arg "$@"; REFRESH_AHEAD=$2; shift 2 ;;
    --worker-nice) need_arg "$@"; WORKER_NICE=$2; shift 2 ;;
    --cold-count) need_arg "$@"; COLD_COUNT=$2; SET_BY_USER[COLD_COUNT]=1; shift 2 ;;
    --cold-clients) need_arg "$@"; COLD_CLIENTS=$2; shift 2 ;;
    --requests-p1) need_arg "$@"; REQ_P1=$2; SET_BY_USER[REQ_P1]=1; shift 2 ;;
    --requests-p16) need_arg "$@"; REQ_P16=$2; SET_BY_USER[REQ_P16]=1; shift 2 ;;
    --readthru) need_arg "$@"; READTHRU=$2; shift 2 ;;
    --loadgen) need_arg "$@"; LOADGEN=$2; shift 2 ;;
    --raw) need_arg "$@"; RAW_OUT=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option: $1 (see --help)" ;;
  esac
done

if [ "$QUICK" = 1 ]; then   # only what the user did not set
  [ -z "${SET_BY_USER[ROUNDS]:-}" ] && ROUNDS=1
  [ -z "${SET_BY_USER[HIT_ROUNDS]:-}" ] && HIT_ROUNDS=1
  [ -z "${SET_BY_USER[DURATION]:-}" ] && DURATION=8
  [ -z "${SET_BY_USER[COLD_COUNT]:-}" ] && COLD_COUNT=3000
  [ -z "${SET_BY_USER[REQ_P1]:-}" ] && REQ_P1=20000
  [ -z "${SET_BY_USER[REQ_P16]:-}" ] && REQ_P16=80000
fi

for v in ROUNDS HIT_ROUNDS DURATION CLIENTS QUERY_MS COLD_COUNT REQ_P1 REQ_P16; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (got '${!v}')"
done
[[ $CLIENT_NICE =~ ^([0-9]|1[0-9])$ ]] || die "--client-nice: 0..19"
[[ $THINK_US =~ ^[0-9]+(,[0-9]+)*$ ]] || die "--think-us: comma list of microseconds"
[[ $WORKER_NICE =~ ^-?[0-9]+$ ]] && [ "$WORKER_NICE" -ge -20 ] && [ "$WORKER_NICE" -le 19 ] \
  || die "--worker-nice: -20..19"
[ -z "$REFRESH_AHEAD" ] || [[ $REFRESH_AHEAD =~ ^0(\.[0-9]+)?$ ]] \
  || die "--refresh-ahead: a fraction from 0 to below 1, like 0.1"
[[ $COLD_CLIENTS =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || die "--cold-clients: comma list of counts"
for b in ${ONLY//,/ }; do
  case "$b" in stampede|cold|hits) ;; *) die "--only: unknown benchmark '$b'" ;; esac
done
[ $((COLD_COUNT * 2)) -le "$USERS" ] || die "--cold-count must be at most $((USERS / 2))"

require_tools redis-server redis-cli redis-benchmark timeout
[ -x "$READTHRU" ] || die "readthru binary not found: $READTHRU (build it: cmake -S $REPO_DIR -B /tmp/build-bench -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build /tmp/build-bench -j2 --target readthru; then READTHRU_BIN=/tmp/build-bench/readthru)"

make_tmp readthru-rtbench 10
NOTES=()
RAW="$TMP/raw.jsonl"
: >"$RAW"

# ---------------------------------------------------------------- load generator
find_loadgen readthru_loadgen



# ---------------------------------------------------------------- database + calibration
echo "$PROG: generating the demo database ($USERS users) ..." >&2
"$PY" "$SCRIPT_DIR/gen_demo_db.py" "$TMP/demo.db" --users "$USERS" --products 100 >"$TMP/gen.log" 2>&1 \
  || die "gen_demo_db.py failed: $(cat "$TMP/gen.log")"

USER_SQL="SELECT json_object('id', id, 'name', name, 'email', email) FROM users WHERE id = :id"
# the stampede query: the user's row plus a recursive CTE of @N@ steps (CPU work in SQLite)
HOT_SQL_TMPL="SELECT json_object('id', u.id, 'name', u.name, 'email', u.email, 'work', (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < @N@) SELECT sum(x) FROM c)) FROM users u WHERE u.id = :id"
HOT_SQL=""
if only stampede; then
  echo "$PROG: calibrating the stampede query to ~${QUERY_MS} ms ..." >&2
  cal=$("$LOADGEN" calibrate --db "$TMP/demo.db" --sql-template "$HOT_SQL_TMPL" --target-ms "$QUERY_MS") \
    || die "calibration failed"
  HOT_N=$(sed -E 's/.*"n":([0-9]+).*/\1/' <<<"$cal")
  HOT_SQL=${HOT_SQL_TMPL/@N@/$HOT_N}
  raw 0 "{\"bench\":\"calibrate\",\"target_ms\":$QUERY_MS,${cal#\{}"
  echo "$PROG: stampede query: recursive CTE of $HOT_N steps, measured $(sed -E 's/.*"ms":([0-9.]+).*/\1/' <<<"$cal") ms (median of 7, idle)" >&2
else
  HOT_SQL=${HOT_SQL_TMPL/@N@/1000}
fi

# ---------------------------------------------------------------- servers
read -r REDIS_PORT RT_PORT RT_PLAIN_PORT <<<"$(free_ports 3)"
cat >"$TMP/readthru-loaders.toml" <<EOF
listen = "127.0.0.1:$RT_PORT"
log_level = "warning"

[upstream]
address = "127.0.0.1:$REDIS_PORT"

[backends.main]
kind = "sqlite"
path = "$TMP/demo.db"
workers = 2

[[loaders]]
name = "hot"
key = "hot:{id:int}"
backend = "main"
query = "$HOT_SQL"
ttl = "5s"
jitter = "1s"
timeout = "5s"
$([ -n "$REFRESH_AHEAD" ] && echo "refresh_ahead = $REFRESH_AHEAD")

# The same hot keys with single-flight alone: they expire, and their readers wait for the load.
[[loaders]]
name = "hots"
key = "hots:{id:int}"
backend = "main"
query = "$HOT_SQL"
ttl = "5s"
jitter = "1s"
timeout = "5s"
refresh_ahead = 0

# The same database, its workers at nice $WORKER_NICE, for the hot keys of the "niced" side.
[backends.niced]
kind = "sqlite"
path = "$TMP/demo.db"
workers = 2
nice = $WORKER_NICE

[[loaders]]
name = "hotn"
key = "hotn:{id:int}"
backend = "niced"
query = "$HOT_SQL"
ttl = "5s"
jitter = "1s"
timeout = "5s"
refresh_ahead = 0

[[loaders]]
name = "user"
key = "user:{id}"
backend = "main"
query = "$USER_SQL"
ttl = "1h"
EOF
cat >"$TMP/readthru-plain.toml" <<EOF
listen = "127.0.0.1:$RT_PLAIN_PORT"
log_level = "warning"

[upstream]
address = "127.0.0.1:$REDIS_PORT"
EOF

start_redis redis "$REDIS_PORT" 10000
REDIS_PID=$STARTED_PID

# readthru with loaders: if it rejects the config (no read-through support yet), run without it
RT_PID=""
HAVE_RT=0
"$READTHRU" --config "$TMP/readthru-loaders.toml" >"$TMP/readthru.log" 2>&1 &
RT_PID=$!
PIDS+=("$RT_PID")
for _ in $(seq 1 100); do
  kill -0 "$RT_PID" 2>/dev/null || break
  [ "$(timeout 2 redis-cli -h 127.0.0.1 -p "$RT_PORT" ping 2>/dev/null)" = PONG ] && break
  sleep 0.1
done
if ! kill -0 "$RT_PID" 2>/dev/null; then
  NOTES+=("readthru rejected the loader config (no read-through support?): $(tail -n 1 "$TMP/readthru.log")")
  RT_PID=""
elif ! timeout 5 redis-cli -h 127.0.0.1 -p "$RT_PORT" READTHRU STATS >"$TMP/stats.out" 2>&1 \
     || ! grep -qx loads "$TMP/stats.out"; then
  NOTES+=("readthru does not answer READTHRU STATS ($(head -n 1 "$TMP/stats.out" | head -c 120)): readthru sides skipped")
else
  HAVE_RT=1
fi

"$READTHRU" --config "$TMP/readthru-plain.toml" >"$TMP/readthru-plain.log" 2>&1 &
RT_PLAIN_PID=$!
PIDS+=("$RT_PLAIN_PID")
wait_ready readthru-plain "$RT_PLAIN_PID" "$RT_PLAIN_PORT"

rcli() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }
flush() { rcli flushall >/dev/null || die "FLUSHALL failed"; }
check_alive() {
  kill -0 "$REDIS_PID" 2>/dev/null || die "redis-server died; log: $(tail -n 20 "$TMP/redis.log")"
  if [ "$HAVE_RT" = 1 ] && ! kill -0 "$RT_PID" 2>/dev/null; then
    NOTES+=("readthru (loaders) died: $(tail -n 3 "$TMP/readthru.log" | tr '\n' ' ')")
    HAVE_RT=0
  fi
}

echo "$PROG: redis :$REDIS_PORT  readthru(loaders) :$RT_PORT (pid ${RT_PID:--}, read-through $([ $HAVE_RT = 1 ] && echo yes || echo NO))  readthru(plain) :$RT_PLAIN_PORT  tmp $TMP" >&2
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- 1. stampede
if only stampede; then
  modes=(recipe)
  [ "$HAVE_RT" = 1 ] && modes=(recipe readthru single)
  [ "$HAVE_RT" = 1 ] && [ "$WORKER_NICE" != 0 ] && modes+=(niced)
  if grep -q "cannot set the sql:niced workers' nice level" "$TMP/readthru.log"; then
    NOTES+=("the niced side's workers could not take nice $WORKER_NICE (not root?): they ran at 0")
  fi
  for round in $(seq 1 "$ROUNDS"); do
   for think in ${THINK_US//,/ }; do
    for ((k = 0; k < ${#modes[@]}; k++)); do
      mode=${modes[$(((k + round - 1) % ${#modes[@]}))]}
      flush
      if [ "$mode" = recipe ]; then port=$REDIS_PORT; else port=$RT_PORT; fi
      # single (and niced): readthru's loader with refresh_ahead = 0, on keys of their own
      lmode=$mode loader=hot prefix=hot:
      [ "$mode" = single ] && lmode=readthru loader=hots prefix=hots:
      [ "$mode" = niced ] && lmode=readthru loader=hotn prefix=hotn:
      r0=$(cpu_ticks "$REDIS_PID"); p0=NA; [ -n "$RT_PID" ] && p0=$(cpu_ticks "$RT_PID")
      out=$(timeout "$RUN_TIMEOUT" nice -n "$CLIENT_NICE" "$LOADGEN" stampede --mode "$lmode" --port "$port" \
              --redis-port "$REDIS_PORT" --stats-port "$([ "$mode" = recipe ] && echo 0 || echo "$RT_PORT")" \
              --db "$TMP/demo.db" --sql "$HOT_SQL" --loader "$loader" --prefix "$prefix" --keys "$HOT_KEYS" \
              --clients "$CLIENTS" --duration "$DURATION" --ttl-ms 5000 --jitter-ms 1000 \
              --lock-ex 5 --retry-ms 100 --think-us "$think" 2>>"$TMP/loadgen.err")
      rc=$?
      [ "$mode" != readthru ] && out=${out/\"mode\":\"readthru\"/\"mode\":\"$mode\"}
      r1=$(cpu_ticks "$REDIS_PID"); p1=NA; [ -n "$RT_PID" ] && p1=$(cpu_ticks "$RT_PID")
      if [ $rc -ne 0 ] || [ -z "$out" ]; then
        echo "$PROG: WARNING: stampede round $round think ${think}us $mode failed (rc=$rc): $(tail -n 2 "$TMP/loadgen.err")" >&2
        NOTES+=("stampede round $round think ${think}us $mode failed (rc=$rc)")
      else
        raw "$round" "${out%\}},\"client_nice\":$CLIENT_NICE,\"refresh_ahead\":${REFRESH_AHEAD:-\"default\"},\"worker_nice\":$WORKER_NICE,\"redis_cpu_s\":$(us_per_req "$r0" "$r1" 1000000),\"rt_cpu_s\":$(us_per_req "$p0" "$p1" 1000000)}"
        echo "$PROG: stampede round $round/$ROUNDS think ${think}us $mode: $out" >&2
      fi
      check_alive
    done
   done
  done
fi

# ---------------------------------------------------------------- 2. cold misses
if only cold; then
  modes=(aside)
  [ "$HAVE_RT" = 1 ] && modes=(aside readthru)
  for round in $(seq 1 "$ROUNDS"); do
    for clients in ${COLD_CLIENTS//,/ }; do
      for ((k = 0; k < ${#modes[@]}; k++)); do
        mode=${modes[$(((k + round - 1) % ${#modes[@]}))]}
        flush
        if [ "$mode" = readthru ]; then port=$RT_PORT; else port=$REDIS_PORT; fi
        # a different id range every run, so SQLite's page cache is as warm for both
        first=$(( ((round * 7 + clients + k) * COLD_COUNT) % (USERS - COLD_COUNT) + 1 ))
        stats=(); [ "$mode" = readthru ] && stats=(--stats-port "$RT_PORT" --loader user)
        out=$(timeout "$RUN_TIMEOUT" "$LOADGEN" cold --mode "$mode" --port "$port" \
                --db "$TMP/demo.db" --sql "$USER_SQL" --prefix user: --first "$first" \
                --count "$COLD_COUNT" --clients "$clients" --ttl-ms 3600000 "${stats[@]}" \
                2>>"$TMP/loadgen.err")
        rc=$?
        if [ $rc -ne 0 ] || [ -z "$out" ]; then
          echo "$PROG: WARNING: cold round $round $mode c$clients failed (rc=$rc): $(tail -n 2 "$TMP/loadgen.err")" >&2
          NOTES+=("cold round $round $mode c$clients failed (rc=$rc)")
        else
          raw "$round" "$out"
          echo "$PROG: cold round $round/$ROUNDS $mode c$clients: $out" >&2
        fi
        check_alive
      done
    done
  done
fi

# ---------------------------------------------------------------- 3. hit path
if only hits; then
  flush
  KEYSPACE=100000
  echo "$PROG: preloading $KEYSPACE user:<12 digits> keys (64-byte values) ..." >&2
  "$PY" - "$KEYSPACE" >"$TMP/preload.resp" <<'EOF' || die "preload generation failed"
import sys
n = int(sys.argv[1]); out = sys.stdout.buffer; buf = []
for i in range(n):
    k = b"user:%012d" % i
    v = (b'{"id":%d,"name":"Preloaded User","email":"u%d@demo.test"}' % (i, i)).ljust(64, b" ")
    buf.append(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, len(v), v))
    if len(buf) >= 10000:
        out.write(b"".join(buf)); buf = []
out.write(b"".join(buf))
EOF
  timeout 120 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" --pipe <"$TMP/preload.resp" >"$TMP/preload.log" 2>&1 \
    || die "preload failed: $(cat "$TMP/preload.log")"
  rm -f "$TMP/preload.resp"
  [ "$(rcli dbsize)" -ge "$KEYSPACE" ] || die "preload: dbsize $(rcli dbsize) < $KEYSPACE"
  if [ "$HAVE_RT" = 1 ]; then
    # Loaded again through readthru, so that readthru-loaders holds their fills in its
    # refresh-ahead table (on by default, due 54 minutes later): each hit then looks its key up
    # there, as a hit on a value readthru filled does. user:000000000000 has no row: it stays nil.
    flush
    "$PY" - "$RT_PORT" "$KEYSPACE" <<'EOF' || die "preload through readthru failed"
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
f = socket.create_connection(("127.0.0.1", port)).makefile("rwb")
def reply():
    line = f.readline()
    if line[:1] == b"*":
        return [reply() for _ in range(int(line[1:]))]
    if line[:1] == b"$":
        size = int(line[1:])
        return None if size < 0 else f.read(size + 2)[:-2]
    if line[:1] == b"-":
        raise SystemExit("MGET through readthru: " + line.decode().strip())
    return line
for start in range(0, n, 500):
    keys = [b"user:%012d" % i for i in range(start, min(n, start + 500))]
    f.write(b"*%d\r\n$4\r\nMGET\r\n" % (len(keys) + 1) +
            b"".join(b"$%d\r\n%s\r\n" % (len(k), k) for k in keys))
    f.flush()
    reply()
EOF
    for _ in $(seq 100); do [ "$(rcli dbsize)" -ge $((KEYSPACE - 1)) ] && break; sleep 0.2; done
    [ "$(rcli dbsize)" -ge $((KEYSPACE - 1)) ] \
      || die "preload through readthru: dbsize $(rcli dbsize) < $((KEYSPACE - 1))"
  fi

  targets=(redis readthru-plain)
  [ "$HAVE_RT" = 1 ] && targets=(redis readthru-plain readthru-loaders)
  declare -A PORT_OF=([redis]=$REDIS_PORT [readthru-plain]=$RT_PLAIN_PORT [readthru-loaders]=$RT_PORT)
  declare -A PID_OF=([redis]="" [readthru-plain]=$RT_PLAIN_PID [readthru-loaders]=$RT_PID)
  ROWS=("c50-P1 50 1 $REQ_P1" "c50-P16 50 16 $REQ_P16")
  [ "$HAVE_RT" = 1 ] && redis-cli -h 127.0.0.1 -p "$RT_PORT" READTHRU STATS >"$TMP/hits-stats-before.txt"
  for round in $(seq 1 "$HIT_ROUNDS"); do
    for rowspec in "${ROWS[@]}"; do
      read -r row clients pipe nreq <<<"$rowspec"
      for ((k = 0; k < ${#targets[@]}; k++)); do
        target=${targets[$(((k + round - 1) % ${#targets[@]}))]}
        port=${PORT_OF[$target]}; ppid=${PID_OF[$target]}
        r0=$(cpu_ticks "$REDIS_PID"); p0=NA; [ -n "$ppid" ] && p0=$(cpu_ticks "$ppid")
        out=$(timeout "$RUN_TIMEOUT" redis-benchmark -h 127.0.0.1 -p "$port" -c "$clients" \
                -P "$pipe" -n "$nreq" -r "$KEYSPACE" --csv GET 'user:__rand_int__' 2>"$TMP/run.err")
        rc=$?
        r1=$(cpu_ticks "$REDIS_PID"); p1=NA; [ -n "$ppid" ] && p1=$(cpu_ticks "$ppid")
        line=$(printf '%s\n' "$out" | grep '^"GET ' | tail -n 1)
        if [ $rc -ne 0 ] || [ -z "$line" ]; then
          echo "$PROG: WARNING: hits round $round $target $row failed (rc=$rc): $(tail -n 2 "$TMP/run.err")" >&2
          NOTES+=("hits round $round $target $row failed")
          continue
        fi
        IFS=, read -r _ rps _avg _min p50 _p95 p99 _max <<<"${line//\"/}"
        proxy_us=null; [ -n "$ppid" ] && proxy_us=$(us_per_req "$p0" "$p1" "$nreq")
        redis_us=$(us_per_req "$r0" "$r1" "$nreq")
        raw "$round" "{\"bench\":\"hits\",\"target\":\"$target\",\"row\":\"$row\",\"requests\":$nreq,\"ops_per_s\":$rps,\"p50_ms\":$p50,\"p99_ms\":$p99,\"proxy_us\":$proxy_us,\"redis_us\":$redis_us}"
        printf '%s: hits round %s/%s %-16s %-7s %10s ops/s  p50 %s  p99 %s  proxy %s us/req  redis %s us/req\n' \
          "$PROG" "$round" "$HIT_ROUNDS" "$target" "$row" "$rps" "$p50" "$p99" "$proxy_us" "$redis_us" >&2
        check_alive
      done
    done
  done
  if [ "$HAVE_RT" = 1 ]; then
    redis-cli -h 127.0.0.1 -p "$RT_PORT" READTHRU STATS >"$TMP/hits-stats-after.txt"
    # hits/misses of the "user" loader over the hit-path runs (RESP2 flat array, as redis-cli prints it)
    hm=$("$PY" - "$TMP/hits-stats-before.txt" "$TMP/hits-stats-after.txt" <<'EOF'
import sys
def parse(p):
    w = open(p).read().split("\n")
    out = {}
    for i, x in enumerate(w):
        if x == "user":
            f = w[i + 1:i + 1 + 28]
            out = {f[j]: int(f[j + 1]) for j in range(0, len(f) - 1, 2) if f[j + 1].lstrip("-").isdigit()}
            break
    return out
a, b = parse(sys.argv[1]), parse(sys.argv[2])
print('{"bench":"hits-check","hits":%d,"misses":%d,"loads":%d}' % tuple(
    b.get(k, 0) - a.get(k, 0) for k in ("hits", "misses", "loads")))
EOF
)
    [ -n "$hm" ] && raw 0 "$hm"
  fi
fi

[ -n "$RAW_OUT" ] && cp "$RAW" "$RAW_OUT"

echo
echo "Host $(nproc) cores; loadavg at start $LOAD_START, at end $(cut -d' ' -f1-3 /proc/loadavg); readthru $("$READTHRU" --version 2>/dev/null | head -n 1); redis-server $(redis-server --version | sed -E 's/.*v=([^ ]+).*/\1/')"
QUICK_NOTE=""; [ "$QUICK" = 1 ] && QUICK_NOTE=" (--quick: a smoke run, not a measurement)"
echo "Rounds: stampede/cold $ROUNDS, hits $HIT_ROUNDS; stampede $CLIENTS clients x $HOT_KEYS keys x ${DURATION}s per run$QUICK_NOTE"
"$PY" "$SCRIPT_DIR/bench_readthrough.py" "$RAW"
for n in "${NOTES[@]}"; do echo "NOTE: $n"; done
exit 0
