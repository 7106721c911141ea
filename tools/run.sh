#!/usr/bin/env bash
# The one run command: installs what it needs, builds, creates the demo database run/demo.db (once),
# starts a real redis-server (AOF on, appendfsync everysec, in run/) and readthru in front of it
# with the demo configuration (conf/demo.toml: read-through from run/demo.db, write-behind of users,
# write-through of products), and prints how to connect. Ctrl-C stops both.
# Usage: tools/run.sh   (REDIS_PORT=6379 READTHRU_PORT=6380 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
bash tools/build.sh build

redis_port=${REDIS_PORT:-6379}
readthru_port=${READTHRU_PORT:-6380}
mkdir -p run
# conf/demo.toml loads from run/demo.db (its path is relative to conf/). Delete the file to
# rebuild it.
if [ ! -f run/demo.db ]; then
  /usr/bin/python3 tools/gen_demo_db.py run/demo.db
fi
if redis-cli -p "$redis_port" PING >/dev/null 2>&1; then
  echo "run: port $redis_port already has a Redis; using it as the upstream"
  aof=$(redis-cli -p "$redis_port" CONFIG GET appendonly 2>/dev/null | tail -n 1)
  if [ "$aof" != "yes" ]; then
    echo "run: note: it has appendonly off: write-behind writes still queued in it are lost if it" \
      "restarts"
  fi
  redis_pid=""
else
  # The demo's write-behind writer queues writes in Redis (a stream) until they reach SQLite, so
  # Redis keeps an append-only file (run/appendonlydir), synced every second: a restart finds the
  # queue (and the cached values) where the last run left them. Delete run/appendonlydir to start
  # from an empty Redis.
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly yes \
    --appendfsync everysec --dir "$PWD/run" --logfile "$PWD/run/redis.log" &
  redis_pid=$!
  for _ in $(seq 50); do redis-cli -p "$redis_port" PING >/dev/null 2>&1 && break; sleep 0.1; done
fi
cleanup() {
  # readthru first, and Redis only once it has exited: on SIGTERM it flushes the write-behind
  # queue to SQLite, which needs Redis.
  if [ -n "${readthru_pid:-}" ]; then
    kill "$readthru_pid" 2>/dev/null || true
    wait "$readthru_pid" 2>/dev/null || true
  fi
  [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

./build/readthru --config conf/demo.toml --listen "127.0.0.1:$readthru_port" \
  --upstream "127.0.0.1:$redis_port" &
readthru_pid=$!
for _ in $(seq 50); do redis-cli -p "$readthru_port" PING >/dev/null 2>&1 && break; sleep 0.1; done
if ! kill -0 "$readthru_pid" 2>/dev/null; then
  wait "$readthru_pid" && status=0 || status=$?
  echo "run: readthru exited with status $status (its error is above)" >&2
  exit 1
fi
cat <<MSG

readthru is listening on 127.0.0.1:$readthru_port in front of redis-server on 127.0.0.1:$redis_port,
reading through to run/demo.db and writing to it (conf/demo.toml). Connect with:

    redis-cli -p $readthru_port

Try:

    redis-cli -p $readthru_port GET user:42          # a JSON row, from SQLite on the first read
    redis-cli -p $readthru_port HGETALL product:7    # a hash, one field per column
    redis-cli -p $readthru_port READTHRU STATS       # per loader (hits, misses, loads) and per writer

Write (users are write-behind: Redis at once, SQLite within about half a second; products are
write-through: SQLite first, then Redis):

    redis-cli -p $readthru_port SET user:42 '{"name":"Ann","email":"ann@example.com"}'
    /usr/bin/python3 -c 'import sqlite3; print(sqlite3.connect("$PWD/run/demo.db").execute("SELECT * FROM users WHERE id = 42").fetchone())'
    redis-cli -p $readthru_port HSET product:7 stock 12
    /usr/bin/python3 -c 'import sqlite3; print(sqlite3.connect("$PWD/run/demo.db").execute("SELECT * FROM products WHERE id = 7").fetchone())'

Ctrl-C stops both.
MSG
wait "$readthru_pid"
