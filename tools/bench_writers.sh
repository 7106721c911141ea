#!/usr/bin/env bash
# Writer benchmarks: readthru's write-behind and write-through writers against plain forwarding
# and against the database alone, all on 127.0.0.1 in a temp dir: one redis-server (appendonly
# no: production write-behind wants appendonly yes, see the note in the output), three readthru
# processes (no writers; a write-behind writer; two write-through writers) and SQLite databases
# with a users table of 100,000 rows.
#
#   tput      write-behind SET throughput: redis-benchmark -c 50 (-P 1 and -P 16)
#             SET user:__rand_int__ <64-byte JSON> -r 100000, through readthru with a "behind"
#             writer on user:{id} (redis-benchmark's keys are zero-padded, so {id}, not {id:int})
#             against readthru with no writers and direct redis-server. CPU us per request of
#             readthru and redis-server during the run, and including the flusher's catch-up
#             after it (the run's backlog in the stream, drained before the next run); then the
#             CPU split per SET: redis-benchmark, readthru's event-loop thread, its other (SQLite)
#             threads, redis-server, and what ratio the SQLite work alone leaves reachable.
#   coalesce  database rows written per 1,000 writes: --coalesce-writes (100,000) SETs from 50
#             clients over 100 keys, over 1,000 keys (uniformly random) and over distinct keys
#             (each once), through the behind writer; then the wait until the stream and the
#             pending hash are empty (drain time, from the end of the writes) and READTHRU STATS
#             writer:user deltas (db_writes, batches, coalesced). Each run starts from an empty
#             users table; afterwards every key's row is checked against Redis's value (last
#             write wins).
#   latency   write-through SET latency: one client, sequential SETs of random keys (100,000)
#             through readthru with a "through" writer, next to the same upsert run directly on
#             SQLite (BEGIN IMMEDIATE; upsert; COMMIT per statement, as readthru's writer thread
#             does), a plain SET through readthru with no writers, and direct redis-server. Both
#             journal modes: WAL and the rollback journal (DELETE); SQLite's default
#             synchronous=FULL in both, as readthru opens the file as it is.
#
# The behind writer's database is in WAL mode. Every benchmark interleaves its targets within a
# round (the order rotates) and reports medians over rounds; ratios are taken within a round.
# Clients: redis-benchmark (tput) and tools/writer_loadgen.cc (one thread and one hiredis
# connection per client), compiled here with g++ unless given or built next to readthru.
#
# Usage: tools/bench_writers.sh [options]
#   --quick               smoke run: 1 round, small counts (under a minute); the full run takes
#                         about 6-7 minutes on 2 cores
#   --only LIST           comma list out of tput,coalesce,latency (default all)
#   --rounds N            rounds of tput and latency (default 5)
#   --coalesce-rounds N   rounds of coalesce (default 3)
#   --requests-p1 N       tput: redis-benchmark -n for 50 clients -P 1  (default 100000)
#   --requests-p16 N      tput: redis-benchmark -n for 50 clients -P 16 (default 400000)
#   --coalesce-writes N   SETs per coalesce run (default 100000)
#   --coalesce-clients N  clients of the coalesce runs (default 50)
#   --lat-count N         SETs / statements per latency run, WAL and no-database rows
#                         (default 1000)
#   --lat-count-rollback N  the same for the rollback-journal rows (default 200: each costs
#                         tens of ms on a virtual disk)
#   --no-rollback         latency: WAL only (skip the rollback-journal rows)
#   --flush-interval D    the behind writer's flush_interval (default 500ms)
#   --batch N             the behind writer's batch (default 500)
#   --cache-size SIZE     the behind writer's backend cache_size, e.g. 64mb (default: unset,
#                         SQLite's 2 MB per connection)
#   --db-dir DIR          put the SQLite databases in DIR instead of the temp dir (the disk
#                         under them decides fsync cost)
#   --readthru PATH       readthru binary (default $READTHRU_BIN, else <repo>/build/readthru)
#   --loadgen PATH        writer_loadgen binary (default: the one next to the readthru binary
#                         if newer than tools/writer_loadgen.cc, else built with g++ into the
#                         temp dir)
#   --raw FILE            also copy the raw results (one JSON object a line) to FILE
#   --keep                keep the temp dir (logs, configs, databases, raw results)
#   -h | --help
set -u
set -o pipefail

PROG=bench_writers.sh
# shellcheck source=tools/bench_lib.sh
source "$(dirname "$0")/bench_lib.sh" || exit 1

QUICK=0
ONLY="tput,coalesce,latency"
ROUNDS=5
CO_ROUNDS=3
REQ_P1=100000
REQ_P16=400000
CO_WRITES=100000
CO_CLIENTS=50
LAT_COUNT=1000
LAT_COUNT_DEL=200
ROLLBACK=1
FLUSH_INTERVAL=500ms
CACHE_SIZE=""
BATCH=500
DB_DIR=""
USERS=100000
KEYSPACE=100000
READTHRU=${READTHRU_BIN:-"$REPO_DIR/build/readthru"}
LOADGEN=""
RAW_OUT=""
KEEP=0
RUN_TIMEOUT=300     # seconds, hard bound on one client run
DRAIN_TIMEOUT=240   # seconds, bound on one wait for the write-behind queue
declare -A SET_BY_USER=()

while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1; shift ;;
    --only) need_arg "$@"; ONLY=$2; shift 2 ;;
    --rounds) need_arg "$@"; ROUNDS=$2; SET_BY_USER[ROUNDS]=1; shift 2 ;;
    --coalesce-rounds) need_arg "$@"; CO_ROUNDS=$2; SET_BY_USER[CO_ROUNDS]=1; shift 2 ;;
    --requests-p1) need_arg "$@"; REQ_P1=$2; SET_BY_USER[REQ_P1]=1; shift 2 ;;
    --requests-p16) need_arg "$@"; REQ_P16=$2; SET_BY_USER[REQ_P16]=1; shift 2 ;;
    --coalesce-writes) need_arg "$@"; CO_WRITES=$2; SET_BY_USER[CO_WRITES]=1; shift 2 ;;
    --coalesce-clients) need_arg "$@"; CO_CLIENTS=$2; shift 2 ;;
    --lat-count) need_arg "$@"; LAT_COUNT=$2; SET_BY_USER[LAT_COUNT]=1; shift 2 ;;
    --lat-count-rollback) need_arg "$@"; LAT_COUNT_DEL=$2; SET_BY_USER[LAT_COUNT_DEL]=1; shift 2 ;;
    --no-rollback) ROLLBACK=0; shift ;;
    --flush-interval) need_arg "$@"; FLUSH_INTERVAL=$2; shift 2 ;;
    --batch) need_arg "$@"; BATCH=$2; shift 2 ;;
    --cache-size) need_arg "$@"; CACHE_SIZE=$2; shift 2 ;;
    --db-dir) need_arg "$@"; DB_DIR=$2; shift 2 ;;
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
  [ -z "${SET_BY_USER[CO_ROUNDS]:-}" ] && CO_ROUNDS=1
  [ -z "${SET_BY_USER[REQ_P1]:-}" ] && REQ_P1=20000
  [ -z "${SET_BY_USER[REQ_P16]:-}" ] && REQ_P16=80000
  [ -z "${SET_BY_USER[CO_WRITES]:-}" ] && CO_WRITES=20000
  [ -z "${SET_BY_USER[LAT_COUNT]:-}" ] && LAT_COUNT=300
  [ -z "${SET_BY_USER[LAT_COUNT_DEL]:-}" ] && LAT_COUNT_DEL=60
fi

for v in ROUNDS CO_ROUNDS REQ_P1 REQ_P16 CO_WRITES CO_CLIENTS LAT_COUNT LAT_COUNT_DEL BATCH; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (got '${!v}')"
done
[[ $FLUSH_INTERVAL =~ ^[1-9][0-9]*(ms|s)$ ]] || die "--flush-interval: like 500ms or 1s"
for b in ${ONLY//,/ }; do
  case "$b" in tput|coalesce|latency) ;; *) die "--only: unknown benchmark '$b'" ;; esac
done
[ "$CO_WRITES" -le "$USERS" ] || die "--coalesce-writes must be at most $USERS (the distinct-key run)"

require_tools redis-server redis-cli redis-benchmark timeout
[ -x "$READTHRU" ] || die "readthru binary not found: $READTHRU (build it: cmake -S $REPO_DIR -B /tmp/build-bench -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build /tmp/build-bench -j2 --target readthru; then READTHRU_BIN=/tmp/build-bench/readthru)"

make_tmp readthru-wbench 10
[ -n "$DB_DIR" ] || DB_DIR="$TMP/db"
mkdir -p "$DB_DIR" || die "cannot create $DB_DIR"
DB_DIR=$(cd "$DB_DIR" && pwd)
NOTES=()
RAW="$TMP/raw.jsonl"
: >"$RAW"

# ---------------------------------------------------------------- load generator
find_loadgen writer_loadgen

load1() { cut -d' ' -f1 /proc/loadavg; }

# jmerge JSON JSON: one object with the fields of both
jmerge() { local a=${1%\}} b=${2#\{}; if [ "$b" = "}" ]; then echo "$1"; else echo "$a,$b"; fi; }

# ---------------------------------------------------------------- databases
UPSERT="INSERT INTO users(id, name, email) VALUES (:id, json_extract(:value, '\$.name'), json_extract(:value, '\$.email')) ON CONFLICT(id) DO UPDATE SET name = excluded.name, email = excluded.email"
DELETE="DELETE FROM users WHERE id = :id"
# the 64-byte JSON value of every SET (the coalesce runs number theirs, same length)
VALUE='{"name":"Bench User","email":"bench.user@example.test","n":1234}'
[ ${#VALUE} = 64 ] || die "internal: value is ${#VALUE} bytes"

echo "$PROG: creating SQLite databases ($USERS users each) in $DB_DIR ..." >&2
"$PY" - "$DB_DIR" "$USERS" >"$TMP/dbinfo.txt" 2>"$TMP/db.err" <<'EOF' || die "creating the databases failed: $(cat "$TMP/db.err")"
import os, shutil, sqlite3, sys
d, n = sys.argv[1], int(sys.argv[2])
base = os.path.join(d, "base.db")
for f in os.listdir(d):
    os.remove(os.path.join(d, f))
c = sqlite3.connect(base)
c.execute("CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT, email TEXT)")
c.executemany("INSERT INTO users VALUES (?, ?, ?)",
              ((i, "User %d" % i, "user%d@demo.test" % i) for i in range(1, n + 1)))
c.commit()
c.close()
# behind: WAL. through/direct: one WAL and one rollback-journal (DELETE) copy each.
for name, mode in (("behind", "wal"), ("through-wal", "wal"), ("through-del", "delete"),
                   ("direct-wal", "wal"), ("direct-del", "delete")):
    p = os.path.join(d, name + ".db")
    shutil.copyfile(base, p)
    c = sqlite3.connect(p)
    got = c.execute("PRAGMA journal_mode=%s" % mode).fetchone()[0]
    sync = c.execute("PRAGMA synchronous").fetchone()[0]
    c.close()
    print(name, got, sync)
os.remove(base)
EOF
# The WAL databases in steady state, as in a long-running application: one idle connection holds
# each open for the whole run (SQLite deletes the -wal file when the last connection closes; a
# fresh WAL grows, and an fsync of a growing file also commits metadata), after enough writes
# (synchronous=OFF, so quickly) that the WAL has been checkpointed and is being reused.
"$PY" - "$DB_DIR" >"$TMP/holder.out" 2>"$TMP/holder.err" <<'EOF' &
import os, random, sqlite3, sys, time
d = sys.argv[1]
conns = []
for name in ("behind", "through-wal", "direct-wal"):
    c = sqlite3.connect(os.path.join(d, name + ".db"), isolation_level=None)
    c.execute("PRAGMA synchronous=OFF")
    for _ in range(3000):
        i = random.randint(1, 100000)
        c.execute("BEGIN IMMEDIATE")
        c.execute("UPDATE users SET name = ? WHERE id = ?", ("User %d" % i, i))
        c.execute("COMMIT")
    c.execute("PRAGMA synchronous=FULL")
    conns.append(c)
print("ready", flush=True)
while True:
    time.sleep(3600)
EOF
HOLDER_PID=$!
PIDS+=("$HOLDER_PID")
for _ in $(seq 1 600); do
  grep -q ready "$TMP/holder.out" 2>/dev/null && break
  kill -0 "$HOLDER_PID" 2>/dev/null || die "warming the WAL databases failed: $(cat "$TMP/holder.err")"
  sleep 0.1
done
grep -q ready "$TMP/holder.out" || die "warming the WAL databases took over 60 s"
DB_FS=$(df -PT "$DB_DIR" 2>/dev/null | awk 'NR==2{print $2}')
DB_DEV=$(df -P "$DB_DIR" 2>/dev/null | awk 'NR==2{print $1}')

# ---------------------------------------------------------------- servers
read -r REDIS_PORT RT_PLAIN_PORT RT_BEHIND_PORT RT_THROUGH_PORT <<<"$(free_ports 4)"
cat >"$TMP/readthru-plain.toml" <<EOF
listen = "127.0.0.1:$RT_PLAIN_PORT"
log_level = "warning"

[upstream]
address = "127.0.0.1:$REDIS_PORT"
EOF
CACHE_LINE=""
[ -n "$CACHE_SIZE" ] && CACHE_LINE="cache_size = \"$CACHE_SIZE\""
cat >"$TMP/readthru-behind.toml" <<EOF
listen = "127.0.0.1:$RT_BEHIND_PORT"
log_level = "warning"

[upstream]
address = "127.0.0.1:$REDIS_PORT"

[backends.main]
kind = "sqlite"
path = "$DB_DIR/behind.db"
$CACHE_LINE

[[writers]]
name = "user"
key = "user:{id}"
backend = "main"
mode = "behind"
upsert = "$UPSERT"
delete = "$DELETE"
flush_interval = "$FLUSH_INTERVAL"
batch = $BATCH
EOF
cat >"$TMP/readthru-through.toml" <<EOF
listen = "127.0.0.1:$RT_THROUGH_PORT"
log_level = "warning"

[upstream]
address = "127.0.0.1:$REDIS_PORT"

[backends.wal]
kind = "sqlite"
path = "$DB_DIR/through-wal.db"

[backends.del]
kind = "sqlite"
path = "$DB_DIR/through-del.db"

[[writers]]
name = "tw"
key = "tw:{id}"
backend = "wal"
mode = "through"
upsert = "$UPSERT"
delete = "$DELETE"

[[writers]]
name = "td"
key = "td:{id}"
backend = "del"
mode = "through"
upsert = "$UPSERT"
delete = "$DELETE"
EOF

start_redis redis "$REDIS_PORT" 10000
REDIS_PID=$STARTED_PID

# start_rt NAME PORT: readthru --config $TMP/readthru-NAME.toml, logging to $TMP/readthru-NAME.log
start_rt() {
  "$READTHRU" --config "$TMP/readthru-$1.toml" >"$TMP/readthru-$1.log" 2>&1 &
  STARTED_PID=$!
  PIDS+=("$STARTED_PID")
  wait_ready "readthru-$1" "$STARTED_PID" "$2"
}
start_rt plain "$RT_PLAIN_PORT"; RT_PLAIN_PID=$STARTED_PID
start_rt behind "$RT_BEHIND_PORT"; RT_BEHIND_PID=$STARTED_PID
start_rt through "$RT_THROUGH_PORT"; RT_THROUGH_PID=$STARTED_PID
for w in "$RT_BEHIND_PORT user" "$RT_THROUGH_PORT tw" "$RT_THROUGH_PORT td"; do
  read -r p n <<<"$w"
  "$LOADGEN" stats --stats-port "$p" --writer "$n" >/dev/null 2>"$TMP/stats.err" \
    || die "readthru on :$p has no writer '$n' in READTHRU STATS: $(cat "$TMP/stats.err")"
done

check_alive() {
  kill -0 "$REDIS_PID" 2>/dev/null || die "redis-server died; log: $(tail -n 20 "$TMP/redis.log")"
  local n p
  for n in plain behind through; do
    case $n in plain) p=$RT_PLAIN_PID ;; behind) p=$RT_BEHIND_PID ;; through) p=$RT_THROUGH_PID ;; esac
    kill -0 "$p" 2>/dev/null || die "readthru-$n died; log: $(tail -n 20 "$TMP/readthru-$n.log")"
  done
}
# wait_drained: the behind writer's queue is empty (prints the drain JSON)
wait_drained() {
  "$LOADGEN" drain --redis-port "$REDIS_PORT" --stats-port "$RT_BEHIND_PORT" --writer user \
    --timeout "$DRAIN_TIMEOUT" 2>>"$TMP/loadgen.err"
}

echo "$PROG: redis :$REDIS_PORT (pid $REDIS_PID)  readthru plain :$RT_PLAIN_PORT (pid $RT_PLAIN_PID)  behind :$RT_BEHIND_PORT (pid $RT_BEHIND_PID)  through :$RT_THROUGH_PORT (pid $RT_THROUGH_PID)  tmp $TMP" >&2
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
T_START=$(date +%s)

# ---------------------------------------------------------------- 1. throughput
if only tput; then
  targets=(redis readthru-plain readthru-behind)
  declare -A PORT_OF=([redis]=$REDIS_PORT [readthru-plain]=$RT_PLAIN_PORT [readthru-behind]=$RT_BEHIND_PORT)
  declare -A PID_OF=([redis]="" [readthru-plain]=$RT_PLAIN_PID [readthru-behind]=$RT_BEHIND_PID)
  ROWS=("c50-P1 50 1 $REQ_P1" "c50-P16 50 16 $REQ_P16")
  for round in $(seq 1 "$ROUNDS"); do
    for rowspec in "${ROWS[@]}"; do
      read -r row clients pipe nreq <<<"$rowspec"
      for ((k = 0; k < ${#targets[@]}; k++)); do
        target=${targets[$(((k + round - 1) % ${#targets[@]}))]}
        port=${PORT_OF[$target]}; ppid=${PID_OF[$target]}
        st0="{}"
        [ "$target" = readthru-behind ] && st0=$("$LOADGEN" stats --stats-port "$port" --writer user)
        la=$(load1)
        r0=$(cpu_ticks "$REDIS_PID"); p0=NA; [ -n "$ppid" ] && p0=$(cpu_ticks "$ppid")
        t0="NA NA"; [ -n "$ppid" ] && t0=$(thread_ticks "$ppid")
        children_cpu "$TMP/times"; c0=$CHILD_CPU_S
        out=$(timeout "$RUN_TIMEOUT" redis-benchmark -h 127.0.0.1 -p "$port" -c "$clients" \
                -P "$pipe" -n "$nreq" -r "$KEYSPACE" --csv SET 'user:__rand_int__' "$VALUE" 2>"$TMP/run.err")
        rc=$?
        children_cpu "$TMP/times"; c1=$CHILD_CPU_S
        r1=$(cpu_ticks "$REDIS_PID"); p1=NA; [ -n "$ppid" ] && p1=$(cpu_ticks "$ppid")
        t1="NA NA"; [ -n "$ppid" ] && t1=$(thread_ticks "$ppid")
        # the data line: "<command>","rps","avg","min","p50","p95","p99","max" (the command
        # holds the value's quotes and commas: take the last 7 fields)
        line=$(printf '%s\n' "$out" | grep '^"SET ' | tail -n 1)
        if [ $rc -ne 0 ] || [ -z "$line" ]; then
          echo "$PROG: WARNING: tput round $round $target $row failed (rc=$rc): $(grep -v 'Could not fetch server CONFIG' "$TMP/run.err" | tail -n 2)" >&2
          NOTES+=("tput round $round $target $row failed (rc=$rc)")
          [ "$target" = readthru-behind ] && wait_drained >/dev/null
          check_alive
          continue
        fi
        read -r rps p50 p99 <<<"$(awk -F, '{gsub(/"/,""); print $(NF-6), $(NF-3), $(NF-1)}' <<<"$line")"
        proxy_us=null; [ -n "$ppid" ] && proxy_us=$(us_per_req "$p0" "$p1" "$nreq")
        redis_us=$(us_per_req "$r0" "$r1" "$nreq")
        client_us=$(awk -v a="$c0" -v b="$c1" -v n="$nreq" 'BEGIN{printf "%.3f", (b-a)*1e6/n}')
        read -r tl0 tw0 <<<"$t0"; read -r tl1 tw1 <<<"$t1"
        rec="{\"bench\":\"tput\",\"target\":\"$target\",\"row\":\"$row\",\"requests\":$nreq,\"ops_per_s\":$rps,\"p50_ms\":$p50,\"p99_ms\":$p99,\"proxy_us\":$proxy_us,\"redis_us\":$redis_us,\"client_us\":$client_us,\"loop_us\":$(us_per_req "$tl0" "$tl1" "$nreq"),\"workers_us\":$(us_per_req "$tw0" "$tw1" "$nreq"),\"load1\":$la}"
        extra=""
        if [ "$target" = readthru-behind ]; then
          # the flusher's catch-up: until the stream is empty, CPU included
          dr=$(wait_drained) || dr=""
          r2=$(cpu_ticks "$REDIS_PID"); p2=$(cpu_ticks "$ppid")
          read -r tl2 tw2 <<<"$(thread_ticks "$ppid")"
          if [ -z "$dr" ]; then
            NOTES+=("tput round $round $row: the write-behind drain failed: $(tail -n 1 "$TMP/loadgen.err")")
            dr="{}"
          fi
          rec=$(jmerge "$rec" "{\"proxy_us_drained\":$(us_per_req "$p0" "$p2" "$nreq"),\"redis_us_drained\":$(us_per_req "$r0" "$r2" "$nreq"),\"loop_us_drained\":$(us_per_req "$tl0" "$tl2" "$nreq"),\"workers_us_drained\":$(us_per_req "$tw0" "$tw2" "$nreq")}")
          rec=$(jmerge "$rec" "$dr")
          rec=$(jmerge "$rec" "${st0//\"rt_/\"rt0_}")
          extra=$(sed -E 's/.*"backlog":([0-9]+).*"drain_s":([-0-9.]+).*/  backlog \1, drained in \2 s/' <<<"$dr")
        fi
        raw "$round" "$rec"
        printf '%s: tput round %s/%s %-15s %-7s %10s ops/s  p50 %s  p99 %s  proxy %s us/req  redis %s us/req%s\n' \
          "$PROG" "$round" "$ROUNDS" "$target" "$row" "$rps" "$p50" "$p99" "$proxy_us" "$redis_us" "$extra" >&2
        check_alive
      done
    done
  done
fi

# ---------------------------------------------------------------- 2. coalescing
if only coalesce; then
  # pattern label, --keys, --pattern
  PATTERNS=("100 keys|100|random" "1,000 keys|1000|random" "distinct keys|$CO_WRITES|distinct")
  for round in $(seq 1 "$CO_ROUNDS"); do
    for ((k = 0; k < ${#PATTERNS[@]}; k++)); do
      IFS='|' read -r label keys pattern <<<"${PATTERNS[$(((k + round - 1) % ${#PATTERNS[@]}))]}"
      pre=$(wait_drained)
      [[ $pre == *'"drained":true'* ]] || die "the write-behind queue did not drain before a coalesce run: $pre"
      # an empty table: the rows afterwards are the keys written
      "$PY" - "$DB_DIR/behind.db" <<'EOF' 2>>"$TMP/loadgen.err" || die "emptying users failed"
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], timeout=30)
c.execute("DELETE FROM users")
c.commit()
EOF
      la=$(load1)
      r0=$(cpu_ticks "$REDIS_PID"); p0=$(cpu_ticks "$RT_BEHIND_PID")
      out=$(timeout "$RUN_TIMEOUT" "$LOADGEN" set --port "$RT_BEHIND_PORT" --clients "$CO_CLIENTS" \
              --count "$CO_WRITES" --keys "$keys" --pattern "$pattern" --prefix user: --vary 1 \
              --redis-port "$REDIS_PORT" --stats-port "$RT_BEHIND_PORT" --writer user \
              --drain-timeout "$DRAIN_TIMEOUT" 2>>"$TMP/loadgen.err")
      rc=$?
      r1=$(cpu_ticks "$REDIS_PID"); p1=$(cpu_ticks "$RT_BEHIND_PID")
      if [ $rc -ne 0 ] || [ -z "$out" ]; then
        echo "$PROG: WARNING: coalesce round $round $label failed (rc=$rc): $(tail -n 2 "$TMP/loadgen.err")" >&2
        NOTES+=("coalesce round $round $label failed (rc=$rc)")
        check_alive
        continue
      fi
      rows=$("$PY" -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1], timeout=30).execute("SELECT count(*) FROM users").fetchone()[0])' "$DB_DIR/behind.db" 2>>"$TMP/loadgen.err") || rows=null
      ver=$("$LOADGEN" verify --redis-port "$REDIS_PORT" --db "$DB_DIR/behind.db" --prefix user: \
              --keys "$keys" 2>>"$TMP/loadgen.err") || ver='{"verify_failed":1}'
      ver=${ver//\"checked\"/\"v_checked\"}; ver=${ver//\"missing\"/\"v_missing\"}
      ver=${ver//\"mismatched\"/\"v_mismatched\"}; ver=${ver//\"example\"/\"v_example\"}
      rec="{\"bench\":\"coalesce\",\"label\":\"$label\",\"rows\":$rows,\"load1\":$la,\"proxy_us_drained\":$(us_per_req "$p0" "$p1" "$CO_WRITES"),\"redis_us_drained\":$(us_per_req "$r0" "$r1" "$CO_WRITES")}"
      rec=$(jmerge "$(jmerge "$rec" "$out")" "$ver")
      raw "$round" "$rec"
      echo "$PROG: coalesce round $round/$CO_ROUNDS $label: $out $ver rows=$rows" >&2
      check_alive
    done
  done
fi

# ---------------------------------------------------------------- 3. latency
if only latency; then
  targets=(redis readthru-plain through-wal sqlite-wal)
  [ "$ROLLBACK" = 1 ] && targets+=(through-del sqlite-del)
  for round in $(seq 1 "$ROUNDS"); do
    for ((k = 0; k < ${#targets[@]}; k++)); do
      target=${targets[$(((k + round - 1) % ${#targets[@]}))]}
      la=$(load1)
      case $target in
        redis) args=(set --port "$REDIS_PORT" --prefix lat: --value "$VALUE") ;;
        readthru-plain) args=(set --port "$RT_PLAIN_PORT" --prefix lat: --value "$VALUE") ;;
        through-wal) args=(set --port "$RT_THROUGH_PORT" --prefix tw: --value "$VALUE" --writer tw
                           --redis-port "$REDIS_PORT" --stats-port "$RT_THROUGH_PORT") ;;
        through-del) args=(set --port "$RT_THROUGH_PORT" --prefix td: --value "$VALUE" --writer td
                           --redis-port "$REDIS_PORT" --stats-port "$RT_THROUGH_PORT") ;;
        sqlite-wal) args=(sqlite --db "$DB_DIR/direct-wal.db" --sql "$UPSERT" --value "$VALUE") ;;
        sqlite-del) args=(sqlite --db "$DB_DIR/direct-del.db" --sql "$UPSERT" --value "$VALUE") ;;
      esac
      [ "${args[0]}" = set ] && args+=(--clients 1)
      n=$LAT_COUNT; [[ $target == *-del ]] && n=$LAT_COUNT_DEL
      out=$(timeout "$RUN_TIMEOUT" "$LOADGEN" "${args[@]}" --count "$n" --keys "$USERS" 2>>"$TMP/loadgen.err")
      rc=$?
      if [ $rc -ne 0 ] || [ -z "$out" ]; then
        echo "$PROG: WARNING: latency round $round $target failed (rc=$rc): $(tail -n 2 "$TMP/loadgen.err")" >&2
        NOTES+=("latency round $round $target failed (rc=$rc)")
        check_alive
        continue
      fi
      raw "$round" "$(jmerge "{\"bench\":\"latency\",\"target\":\"$target\",\"load1\":$la}" "$out")"
      echo "$PROG: latency round $round/$ROUNDS $target: $out" >&2
      check_alive
    done
  done
fi

[ -n "$RAW_OUT" ] && cp "$RAW" "$RAW_OUT"
for n in plain behind through; do
  if grep -qiE 'error|warn' "$TMP/readthru-$n.log"; then
    NOTES+=("readthru-$n logged $(grep -ciE 'error|warn' "$TMP/readthru-$n.log") warning/error line(s), e.g.: $(grep -iE 'error|warn' "$TMP/readthru-$n.log" | head -n 1 | cut -c1-200)")
  fi
done

echo
echo "Host $(nproc) cores; loadavg at start $LOAD_START, at end $(cut -d' ' -f1-3 /proc/loadavg); $(( $(date +%s) - T_START )) s of benchmarks; readthru $("$READTHRU" --version 2>/dev/null | head -n 1); redis-server $(redis-server --version | sed -E 's/.*v=([^ ]+).*/\1/'); SQLite $("$PY" -c 'import sqlite3; print(sqlite3.sqlite_version)') (Python's; readthru links the system libsqlite3)"
QUICK_NOTE=""; [ "$QUICK" = 1 ] && QUICK_NOTE=" (--quick: a smoke run, not a measurement)"
echo "Rounds: tput/latency $ROUNDS, coalesce $CO_ROUNDS$QUICK_NOTE. Databases on $DB_FS ($DB_DEV): $(tr '\n' ';' <"$TMP/dbinfo.txt" | sed 's/;$//; s/;/; /g') (name, journal_mode, synchronous)."
echo "WAL databases: kept open by an idle connection for the whole run and warmed past a checkpoint (steady state: the -wal file exists and is reused). Behind writer: flush_interval $FLUSH_INTERVAL, batch $BATCH, database in WAL mode. redis-server runs with appendonly no here: production write-behind wants appendonly yes (appendfsync everysec or always), since the queue is only as durable as Redis keeps it."
echo
"$PY" "$SCRIPT_DIR/bench_writers.py" "$RAW"
for n in "${NOTES[@]}"; do echo "NOTE: $n"; done
exit 0
