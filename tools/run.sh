#!/usr/bin/env bash
# The one run command: installs what it needs, builds, starts a real redis-server (no
# persistence, in run/) and readthru in front of it, and prints how to connect. Ctrl-C stops both.
# Usage: tools/run.sh   (REDIS_PORT=6379 READTHRU_PORT=6380 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
bash tools/build.sh build

redis_port=${REDIS_PORT:-6379}
readthru_port=${READTHRU_PORT:-6380}
mkdir -p run
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

./build/readthru --config conf/readthru.toml --listen "127.0.0.1:$readthru_port" \
  --upstream "127.0.0.1:$redis_port" &
readthru_pid=$!
for _ in $(seq 50); do redis-cli -p "$readthru_port" PING >/dev/null 2>&1 && break; sleep 0.1; done
cat <<MSG

readthru is listening on 127.0.0.1:$readthru_port in front of redis-server on 127.0.0.1:$redis_port.
Connect with:

    redis-cli -p $readthru_port

Ctrl-C stops both.
MSG
wait "$readthru_pid"
