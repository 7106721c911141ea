#!/usr/bin/env bash
# The one run command: installs what it needs, builds, creates the demo database run/demo.db (once),
# starts a real redis-server (no persistence, in run/) and readthru in front of it with the demo
# configuration (conf/demo.toml: read-through from run/demo.db), and prints how to connect.
# Ctrl-C stops both.
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
  redis_pid=""
else
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$PWD/run" \
    --logfile "$PWD/run/redis.log" &
  redis_pid=$!
  for _ in $(seq 50); do redis-cli -p "$redis_port" PING >/dev/null 2>&1 && break; sleep 0.1; done
fi
cleanup() {
  [ -n "${readthru_pid:-}" ] && kill "$readthru_pid" 2>/dev/null || true
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
reading through to run/demo.db (conf/demo.toml). Connect with:

    redis-cli -p $readthru_port

Try:

    redis-cli -p $readthru_port GET user:42          # a JSON row, from SQLite on the first read
    redis-cli -p $readthru_port HGETALL product:7    # a hash, one field per column
    redis-cli -p $readthru_port READTHRU STATS       # hits, misses and loads per loader

Ctrl-C stops both.
MSG
wait "$readthru_pid"
