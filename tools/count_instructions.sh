#!/usr/bin/env bash
# Instructions per request of one write workload, for A/B comparisons of two binaries on a noisy
# machine: on a shared 2-core VM the CPU time per request of the same binary varies by 10-40%
# between runs, the instructions a process executes under valgrind's callgrind by a few percent
# (batch sizes still follow timing). Counts user-space instructions only: the kernel's share
# (system calls, wake-ups) is not in them.
#
# readthru (a "behind" writer on user:{id}, as tools/bench_writers.sh configures it, or no
# writer) runs under callgrind in front of a redis-server; redis-benchmark sends --requests SETs
# of a 64-byte JSON value (50 clients, -P --pipeline, -r 100000); then the write-behind queue
# drains and both stop. Printed: instructions per SET of readthru's event-loop thread and of its
# other threads (the SQLite workers), start-up and shut-down included (a few million in all).
# With --redis, redis-server runs under callgrind instead and its instructions per SET are
# printed (readthru runs natively).
#
# Usage: tools/count_instructions.sh [options]
#   --readthru PATH   readthru binary (default <repo>/build/readthru)
#   --writer KIND     behind (default) or none (plain forwarding)
#   --requests N      SETs (default 20000)
#   --pipeline P      redis-benchmark -P (default 1)
#   --redis           count redis-server's instructions instead of readthru's
#   --keep            keep the temp dir (logs, callgrind output)
#   -h | --help
set -u
set -o pipefail

PROG=count_instructions.sh
# shellcheck source=tools/bench_lib.sh
source "$(dirname "$0")/bench_lib.sh" || exit 1

READTHRU="$REPO_DIR/build/readthru"
WRITER=behind
REQUESTS=20000
PIPELINE=1
COUNT_REDIS=0
KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --readthru) need_arg "$@"; READTHRU=$2; shift 2 ;;
    --writer) need_arg "$@"; WRITER=$2; shift 2 ;;
    --requests) need_arg "$@"; REQUESTS=$2; shift 2 ;;
    --pipeline) need_arg "$@"; PIPELINE=$2; shift 2 ;;
    --redis) COUNT_REDIS=1; shift ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
case "$WRITER" in behind|none) ;; *) die "--writer is behind or none" ;; esac
[ -x "$READTHRU" ] || die "no readthru binary at $READTHRU (build first, or --readthru)"
require_tools redis-server redis-benchmark redis-cli valgrind callgrind_annotate

make_tmp readthru-count 100
read -r REDIS_PORT RT_PORT <<<"$(free_ports 2)"
"$PY" - "$TMP/app.db" <<'EOF' || die "creating the database failed"
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("PRAGMA journal_mode=WAL")
c.execute("CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT, email TEXT)")
c.executemany("INSERT INTO users VALUES (?, ?, ?)",
              ((i, "User %d" % i, "user%d@demo.test" % i) for i in range(1, 100001)))
c.commit()
EOF
{
  printf 'listen = "127.0.0.1:%s"\nlog_level = "warning"\n[upstream]\naddress = "127.0.0.1:%s"\n' \
    "$RT_PORT" "$REDIS_PORT"
  if [ "$WRITER" = behind ]; then
    cat <<EOF
[backends.main]
kind = "sqlite"
path = "$TMP/app.db"
[[writers]]
name = "user"
key = "user:{id}"
backend = "main"
mode = "behind"
upsert = "INSERT INTO users(id, name, email) VALUES (:id, json_extract(:value, '\$.name'), json_extract(:value, '\$.email')) ON CONFLICT(id) DO UPDATE SET name = excluded.name, email = excluded.email"
delete = "DELETE FROM users WHERE id = :id"
flush_interval = "500ms"
batch = 500
EOF
  fi
} >"$TMP/readthru.toml"

CG=(valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$TMP/callgrind.%p")
REDIS_CMD=(redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no
           --dir "$TMP" --protected-mode no --logfile "$TMP/redis.log")
if [ "$COUNT_REDIS" = 1 ]; then "${CG[@]}" "${REDIS_CMD[@]}" >"$TMP/valgrind.log" 2>&1 &
else "${REDIS_CMD[@]}" >/dev/null 2>&1 & fi
REDIS_PID=$!
PIDS+=("$REDIS_PID")
for _ in $(seq 1 300); do  # valgrind takes its time
  [ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] && break; sleep 0.1
done
if [ "$COUNT_REDIS" = 1 ]; then "$READTHRU" --config "$TMP/readthru.toml" >"$TMP/readthru.log" 2>&1 &
else "${CG[@]}" "$READTHRU" --config "$TMP/readthru.toml" >"$TMP/readthru.log" 2>&1 & fi
RT_PID=$!
PIDS+=("$RT_PID")
for _ in $(seq 1 300); do
  [ "$(redis-cli -p "$RT_PORT" ping 2>/dev/null)" = PONG ] && break; sleep 0.1
done
[ "$(redis-cli -p "$RT_PORT" ping 2>/dev/null)" = PONG ] || die "readthru did not start: $(tail -5 "$TMP/readthru.log")"

VALUE='{"name":"Bench User","email":"bench.user@example.test","n":1234}'
redis-benchmark -p "$RT_PORT" -c 50 -P "$PIPELINE" -n "$REQUESTS" -r 100000 -q \
  SET user:__rand_int__ "$VALUE" >"$TMP/benchmark.out" 2>&1 || die "redis-benchmark failed"
if [ "$WRITER" = behind ]; then
  for _ in $(seq 1 1200); do
    [ "$(redis-cli -p "$REDIS_PORT" xlen readthru:wb:user)" = 0 ] &&
      [ "$(redis-cli -p "$REDIS_PORT" exists readthru:wb:user:pending readthru:wb:user:flushing)" = 0 ] && break
    sleep 0.1
  done
fi
stop_pid "$RT_PID"
redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1
for _ in $(seq 1 100); do kill -0 "$REDIS_PID" 2>/dev/null || break; sleep 0.1; done

# One callgrind file per thread: <file>-01 is the main thread (readthru's event loop).
"$PY" - "$TMP" "$REQUESTS" "$COUNT_REDIS" <<'EOF'
import glob, re, sys
tmp, n, redis = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
loop = other = 0
for f in glob.glob(tmp + "/callgrind.*"):
    m = re.search(r"^totals: (\d+)", open(f).read(), re.M)
    if not m:
        continue
    if f.endswith("-01") or "-" not in f.rsplit(".", 1)[1]:
        loop += int(m.group(1))
    else:
        other += int(m.group(1))
if loop == 0:
    sys.exit("count_instructions.sh: ERROR: no callgrind totals in " + tmp)
if redis:
    print(f"redis-server: {loop + other:,} instructions, {(loop + other) / n:,.0f} per SET")
else:
    print(f"readthru event-loop thread: {loop:,} instructions, {loop / n:,.0f} per SET")
    print(f"readthru other threads (SQLite): {other:,} instructions, {other / n:,.0f} per SET")
EOF
