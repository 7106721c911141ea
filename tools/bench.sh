#!/usr/bin/env bash
# Throughput / latency / CPU benchmark: direct redis-server vs twemproxy
# (nutcracker) vs readthru (default config) vs readthru-bp (the same binary with
# busy_poll), all on 127.0.0.1, driven by redis-benchmark.
#
# Usage: tools/bench.sh [options]
#   --rounds N            rounds (default 5); every round runs every target
#                         and every row, interleaved, so noise hits all alike
#   --requests N          override -n for every row
#   --requests-p1 N       -n for "50 clients, -P 1"   (default 100000)
#   --requests-p16 N      -n for "50 clients, -P 16"  (default 400000)
#   --requests-c1 N       -n for "1 client,  -P 1"    (default 20000)
#   --keyspace N          -r for redis-benchmark and preloaded keys (default 100000)
#   --readthru PATH       readthru binary (default <repo>/build/readthru)
#   --readthru-args "..." extra arguments appended to the readthru command line
#   --require-readthru    exit 1 if the readthru binary is missing
#   --busy-poll US        busy_poll of the readthru-bp target (default 50)
#   --targets LIST        comma list out of redis,twemproxy,readthru,readthru-bp
#                         (default all)
#   --tests LIST          comma list out of get,set (default get,set)
#   --raw FILE            also copy the per-run raw TSV to FILE
#   --keep                keep the temp dir (logs, configs, raw results)
#   -h | --help
#
# Output: a table of medians across rounds.
#   ops/s     redis-benchmark rps
#   ratio     median over rounds of (target rps / direct-redis rps, same round, same row)
#   vs_tw     the same, over twemproxy's rps
#   p50/p99   redis-benchmark latency percentiles, ms
#   proxy_us  CPU microseconds (user+sys, /proc/PID/stat) of the proxy per request
#   redis_us  CPU microseconds of redis-server per request
set -u
set -o pipefail

PROG=bench.sh
# shellcheck source=tools/bench_lib.sh
source "$(dirname "$0")/bench_lib.sh" || exit 1

ROUNDS=5
REQ_P1=100000
REQ_P16=400000
REQ_C1=20000
KEYSPACE=100000
READTHRU="$REPO_DIR/build/readthru"
READTHRU_ARGS=""
REQUIRE_READTHRU=0
TARGETS="redis,twemproxy,readthru,readthru-bp"
BUSY_POLL=50
TESTS="get,set"
RAW_OUT=""
KEEP=0
RUN_TIMEOUT=120     # seconds, hard bound on one redis-benchmark run

while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) need_arg "$@"; ROUNDS=$2; shift 2 ;;
    --requests) need_arg "$@"; REQ_P1=$2; REQ_P16=$2; REQ_C1=$2; shift 2 ;;
    --requests-p1) need_arg "$@"; REQ_P1=$2; shift 2 ;;
    --requests-p16) need_arg "$@"; REQ_P16=$2; shift 2 ;;
    --requests-c1) need_arg "$@"; REQ_C1=$2; shift 2 ;;
    --keyspace) need_arg "$@"; KEYSPACE=$2; shift 2 ;;
    --readthru) need_arg "$@"; READTHRU=$2; shift 2 ;;
    --readthru-args) [ $# -ge 2 ] || die "option $1 needs an argument"; READTHRU_ARGS=$2; shift 2 ;;
    --require-readthru) REQUIRE_READTHRU=1; shift ;;
    --targets) need_arg "$@"; TARGETS=$2; shift 2 ;;
    --busy-poll) need_arg "$@"; BUSY_POLL=$2; shift 2 ;;
    --tests) need_arg "$@"; TESTS=$2; shift 2 ;;
    --raw) need_arg "$@"; RAW_OUT=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option: $1 (see --help)" ;;
  esac
done

for v in ROUNDS REQ_P1 REQ_P16 REQ_C1 KEYSPACE BUSY_POLL; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (got '${!v}')"
done
require_tools redis-server redis-benchmark redis-cli nutcracker timeout

has_target redis || die "--targets must include 'redis' (it is the ratio baseline)"

NOTES=()
if { has_target readthru || has_target readthru-bp; } && [ ! -x "$READTHRU" ]; then
  if [ "$REQUIRE_READTHRU" = 1 ]; then
    die "readthru binary not found or not executable: $READTHRU"
  fi
  echo "bench.sh: NOTE: readthru binary not found or not executable: $READTHRU" >&2
  echo "bench.sh: NOTE: benchmarking only redis and twemproxy" >&2
  NOTES+=("readthru binary missing ($READTHRU): readthru NOT benchmarked")
  drop_target readthru
  drop_target readthru-bp
fi

make_tmp readthru-bench 10

# us_per_req TICKS_BEFORE TICKS_AFTER REQUESTS (bench_lib.sh's, but NA for the report here)
us_per_req() {
  if [ "$1" = NA ] || [ "$2" = NA ]; then echo NA; return; fi
  awk -v a="$1" -v b="$2" -v n="$3" -v hz="$CLK_TCK" 'BEGIN{printf "%.3f", (b-a)*1e6/hz/n}'
}

read -r REDIS_PORT TW_PORT TW_STATS_PORT RT_PORT BP_PORT <<<"$(free_ports 5)"

# ---------------------------------------------------------------- redis
start_redis redis "$REDIS_PORT" 10000
REDIS_PID=$STARTED_PID

# ---------------------------------------------------------------- twemproxy
TW_PID=""
if has_target twemproxy; then
  start_twemproxy bench "$TW_PORT" "$TW_STATS_PORT" "$REDIS_PORT" --check
  TW_PID=$STARTED_PID
fi

# ---------------------------------------------------------------- readthru
RT_PID=""
if has_target readthru; then
  start_readthru "$RT_PORT" "$REDIS_PORT"
  RT_PID=$STARTED_PID
fi
BP_PID=""
if has_target readthru-bp; then
  echo "busy_poll = $BUSY_POLL" >"$TMP/readthru-bp.toml"
  RT_NAME=readthru-bp start_readthru "$BP_PORT" "$REDIS_PORT" --config "$TMP/readthru-bp.toml"
  BP_PID=$STARTED_PID
fi

# ---------------------------------------------------------------- preload
# Every key redis-benchmark -r KEYSPACE can pick ("key:%012d", 0..KEYSPACE-1)
# gets a 64-byte value, so GET runs always hit.  (Mass insertion via
# redis-cli --pipe instead of redis-benchmark -t set -r, which would only
# cover ~1-1/e^(n/keyspace) of the keys.)
echo "bench.sh: preloading $KEYSPACE keys (64-byte values) ..." >&2
"$PY" - "$KEYSPACE" >"$TMP/preload.resp" <<'EOF' || die "preload generation failed"
import sys
n = int(sys.argv[1]); val = b"x" * 64
out = sys.stdout.buffer
buf = []
for i in range(n):
    k = b"key:%012d" % i
    buf.append(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$64\r\n%s\r\n" % (len(k), k, val))
    if len(buf) >= 10000:
        out.write(b"".join(buf)); buf = []
out.write(b"".join(buf))
EOF
timeout 120 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" --pipe <"$TMP/preload.resp" >"$TMP/preload.log" 2>&1 \
  || die "preload failed: $(cat "$TMP/preload.log")"
rm -f "$TMP/preload.resp"
DBSIZE=$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" dbsize)
[ "$DBSIZE" -ge "$KEYSPACE" ] || die "preload: dbsize $DBSIZE < $KEYSPACE"

# ---------------------------------------------------------------- runs
declare -A PORT_OF=([redis]=$REDIS_PORT [twemproxy]=$TW_PORT [readthru]=$RT_PORT [readthru-bp]=$BP_PORT)
declare -A PID_OF=([redis]="" [twemproxy]=$TW_PID [readthru]=$RT_PID [readthru-bp]=$BP_PID)
declare -A DEAD=()
IFS=, read -r -a TARGET_LIST <<<"$TARGETS"
IFS=, read -r -a TEST_LIST <<<"$TESTS"
# row: label clients pipeline requests
ROWS=("c50-P1 50 1 $REQ_P1" "c50-P16 50 16 $REQ_P16" "c1-P1 1 1 $REQ_C1")

RAW="$TMP/raw.tsv"
printf 'round\ttarget\ttest\trow\trequests\trps\tp50_ms\tp99_ms\tproxy_us\tredis_us\n' >"$RAW"

echo "bench.sh: redis :$REDIS_PORT (pid $REDIS_PID)  twemproxy :$TW_PORT (pid ${TW_PID:--})  readthru :$RT_PORT (pid ${RT_PID:--})  readthru-bp :$BP_PORT (pid ${BP_PID:--}, busy_poll $BUSY_POLL)" >&2
echo "bench.sh: $ROUNDS rounds x ${#TARGET_LIST[@]} targets x ${#TEST_LIST[@]} tests x ${#ROWS[@]} rows; -n p1=$REQ_P1 p16=$REQ_P16 c1=$REQ_C1" >&2

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
ntargets=${#TARGET_LIST[@]}
for round in $(seq 1 "$ROUNDS"); do
  for rowspec in "${ROWS[@]}"; do
    read -r row clients pipe nreq <<<"$rowspec"
    for test in "${TEST_LIST[@]}"; do
      # rotate the target order each round so no target is always first/last
      for ((k = 0; k < ntargets; k++)); do
        target=${TARGET_LIST[$(((k + round - 1) % ntargets))]}
        port=${PORT_OF[$target]}
        ppid=${PID_OF[$target]}
        if [ -n "${DEAD[$target]:-}" ]; then
          printf '%s\t%s\t%s\t%s\t%s\tNA\tNA\tNA\tNA\tNA\n' "$round" "$target" "$test" "$row" "$nreq" >>"$RAW"
          continue
        fi
        r0=$(cpu_ticks "$REDIS_PID")
        p0=NA; [ -n "$ppid" ] && p0=$(cpu_ticks "$ppid")
        out=$(timeout "$RUN_TIMEOUT" redis-benchmark -h 127.0.0.1 -p "$port" \
                -c "$clients" -P "$pipe" -n "$nreq" -t "$test" -d 64 \
                -r "$KEYSPACE" --csv 2>"$TMP/run.err")
        rc=$?
        r1=$(cpu_ticks "$REDIS_PID")
        p1=NA; [ -n "$ppid" ] && p1=$(cpu_ticks "$ppid")
        cat "$TMP/run.err" >>"$TMP/redis-benchmark.err"
        # data line looks like: "GET","51282.05","0.500","0.136","0.487","0.631","0.767","0.895"
        line=$(printf '%s\n' "$out" | grep -i "^\"$test\"," | tail -n 1)
        if [ $rc -ne 0 ] || [ -z "$line" ]; then
          echo "bench.sh: WARNING: round $round $target $test $row failed (rc=$rc): $(grep -v 'Could not fetch server CONFIG' "$TMP/run.err" | tail -n 2)" >&2
          rps=NA; p50=NA; p99=NA; r1=NA; p1=NA
        else
          IFS=, read -r _ rps _avg _min p50 _p95 p99 _max <<<"${line//\"/}"
        fi
        proxy_us=NA; [ -n "$ppid" ] && proxy_us=$(us_per_req "$p0" "$p1" "$nreq")
        redis_us=$(us_per_req "$r0" "$r1" "$nreq")
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$target" "$test" "$row" \
          "$nreq" "$rps" "$p50" "$p99" "$proxy_us" "$redis_us" >>"$RAW"
        printf 'bench.sh: round %s/%s %-11s %-3s %-7s %10s ops/s  p50 %s  p99 %s  proxy %s us/req  redis %s us/req\n' \
          "$round" "$ROUNDS" "$target" "$test" "$row" "$rps" "$p50" "$p99" "$proxy_us" "$redis_us" >&2
        for t in redis "$target"; do
          p=$REDIS_PID; [ "$t" != redis ] && p=$ppid
          if ! kill -0 "$p" 2>/dev/null; then
            echo "bench.sh: ERROR: $t (pid $p) died; last lines of $t.log (--keep keeps $TMP):" >&2
            tail -n 20 "$TMP/$t.log" >&2 2>/dev/null
            [ "$t" = redis ] && exit 1
            DEAD[$t]=1
            NOTES+=("$t died during round $round ($test $row); later runs are NA")
          fi
        done
      done
    done
  done
done

[ -n "$RAW_OUT" ] && cp "$RAW" "$RAW_OUT"

echo
echo "Medians over $ROUNDS round(s); host $(nproc) cores; redis-benchmark $(redis-benchmark --version | awk '{print $2}'); -d 64 -r $KEYSPACE"
echo "loadavg at start: $LOAD_START, at end: $(cut -d' ' -f1-3 /proc/loadavg) (other load on the host makes ops/s noisy; CPU us/req is steadier)"
"$PY" "$SCRIPT_DIR/bench_report.py" "$RAW"
for n in "${NOTES[@]}"; do echo "NOTE: $n"; done
exit 0
