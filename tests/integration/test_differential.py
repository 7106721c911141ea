"""The drop-in oracle: one byte stream sent to redis-server directly and through readthru gives
byte-identical replies.

The stream is a few hundred varied commands from a seeded generator: every data type, errors,
binary and large values, deeply nested replies (COMMAND INFO/DOCS, Lua tables), transactions,
SELECT, blocking commands that do not block, inline requests and empty requests, sent partly one
by one and partly in pipelined segments.

Left out because their output is specific to a connection, a moment or a server process:
CLIENT ID/LIST/INFO, HELLO (carries the id), INFO, TIME, LASTSAVE, OBJECT IDLETIME/FREQ, MEMORY,
DEBUG, SLOWLOG, CONFIG GET port, RANDOMKEY/SPOP/SRANDMEMBER/HRANDFIELD/ZRANDMEMBER, XADD with
auto ids, TTL/PTTL on volatile keys (EXPIRETIME of a fixed EXPIREAT is used), SCAN/KEYS (hash
order), COMMAND and COMMAND COUNT (readthru may list its own commands). Sets use integer members
so their order (intset) does not depend on the hash seed.
"""

import random

import pytest

from resp_client import encode

SEED = 20240611
LUA_NESTED = "return {1, 'two', {3, {'four', {5, {6, {7, {8, {'nine'}}}}}}}, redis.status_reply('OK')}"


def _bulk_value(rng: random.Random) -> bytes:
    kind = rng.randrange(6)
    if kind == 0:
        return b""
    if kind == 1:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
    if kind == 2:
        return b"a\r\nb\x00c\r\n"
    if kind == 3:
        return str(rng.randrange(-1000, 1000)).encode()
    if kind == 4:
        return b"x" * rng.choice([1, 63, 64, 65, 1000, 20000])
    return f"text-{rng.randrange(100)}".encode()


def make_commands(rng: random.Random) -> list[tuple]:
    """One random command (sometimes a short sequence, e.g. a transaction)."""
    s = f"str:{rng.randrange(6)}"
    n = f"num:{rng.randrange(3)}"
    lst = f"list:{rng.randrange(3)}"
    h = f"hash:{rng.randrange(3)}"
    st = f"set:{rng.randrange(3)}"
    z = f"zset:{rng.randrange(3)}"
    x = f"stream:{rng.randrange(2)}"
    any_key = rng.choice([s, n, lst, h, st, z, x, "missing"])
    i = rng.randrange(-5, 20)
    choices = [
        lambda: [("SET", s, _bulk_value(rng))],
        lambda: [("GET", s)],
        lambda: [("GET", any_key)],
        lambda: [("SET", s, _bulk_value(rng), "GET")],
        lambda: [("SETNX", s, "nx")],
        lambda: [("APPEND", s, _bulk_value(rng))],
        lambda: [("GETRANGE", s, str(i), str(i + 5))],
        lambda: [("SETRANGE", s, str(abs(i)), "RANGE")],
        lambda: [("STRLEN", any_key)],
        lambda: [("MSET", s, "m1", n, str(i))],
        lambda: [("MGET", s, n, "missing", lst)],
        lambda: [("INCR", n)],
        lambda: [("INCRBY", n, str(i))],
        lambda: [("INCRBYFLOAT", n, "1.5")],
        lambda: [("DECR", any_key)],
        lambda: [("GETDEL", s)],
        lambda: [("LPUSH", lst, _bulk_value(rng), str(i))],
        lambda: [("RPUSH", lst, *(str(v) for v in range(rng.randrange(1, 30))))],
        lambda: [("LRANGE", lst, str(i), "-1")],
        lambda: [("LPOP", lst)],
        lambda: [("RPOP", lst, "2")],
        lambda: [("LLEN", any_key)],
        lambda: [("LINDEX", lst, str(i))],
        lambda: [("LPOS", lst, "3", "COUNT", "0")],
        lambda: [("LINSERT", lst, "BEFORE", "3", "ins")],
        lambda: [("LREM", lst, "0", "1")],
        lambda: [("LTRIM", lst, "0", "50")],
        lambda: [("HSET", h, f"f{i}", _bulk_value(rng)[:60], "g", "1")],
        lambda: [("HGET", h, f"f{i}")],
        lambda: [("HGETALL", h)],
        lambda: [("HMGET", h, "g", "f1", "nope")],
        lambda: [("HINCRBY", h, "g", str(i))],
        lambda: [("HDEL", h, f"f{i}")],
        lambda: [("HKEYS", h)],
        lambda: [("HLEN", any_key)],
        lambda: [("SADD", st, *(str(rng.randrange(50)) for _ in range(5)))],
        lambda: [("SMEMBERS", st)],
        lambda: [("SISMEMBER", st, str(i))],
        lambda: [("SCARD", any_key)],
        lambda: [("SINTER", "set:0", "set:1")],
        lambda: [("SREM", st, str(i))],
        lambda: [("ZADD", z, str(i / 4), f"m{rng.randrange(10)}", "inf", "top")],
        lambda: [("ZRANGE", z, "0", "-1", "WITHSCORES")],
        lambda: [("ZRANGEBYSCORE", z, "(1", "+inf", "LIMIT", "0", "3")],
        lambda: [("ZSCORE", z, "m1")],
        lambda: [("ZINCRBY", z, "0.1", "m2")],
        lambda: [("ZRANK", z, "m3")],
        lambda: [("ZPOPMIN", z)],
        lambda: [("ZCARD", any_key)],
        lambda: [("XADD", x, f"{rng.randrange(1, 10**6)}-{rng.randrange(5)}", "f", _bulk_value(rng))],
        lambda: [("XRANGE", x, "-", "+", "COUNT", "5")],
        lambda: [("XREVRANGE", x, "+", "-", "COUNT", "2")],
        lambda: [("XLEN", any_key)],
        lambda: [("PFADD", "hll", *(f"e{rng.randrange(100)}" for _ in range(10)))],
        lambda: [("PFCOUNT", "hll")],
        lambda: [("SETBIT", "bits", str(rng.randrange(200)), "1")],
        lambda: [("BITCOUNT", "bits")],
        lambda: [("BITPOS", "bits", "1")],
        lambda: [("BITFIELD", "bf", "INCRBY", "u8", "0", str(i), "GET", "u4", "4")],
        lambda: [("GEOADD", "geo", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania")],
        lambda: [("GEOPOS", "geo", "Palermo", "nowhere")],
        lambda: [("GEODIST", "geo", "Palermo", "Catania", "km")],
        lambda: [("GEOSEARCH", "geo", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "ASC", "WITHCOORD", "WITHDIST")],
        lambda: [("EXPIREAT", any_key, "4102444800"), ("EXPIRETIME", any_key)],
        lambda: [("PERSIST", any_key)],
        lambda: [("TTL", "missing")],
        lambda: [("TYPE", any_key)],
        lambda: [("EXISTS", s, n, lst, "missing")],
        lambda: [("OBJECT", "ENCODING", any_key)],
        lambda: [("DEL", any_key)],
        lambda: [("COPY", s, f"copy:{rng.randrange(3)}", "REPLACE")],
        lambda: [("RENAME", any_key, f"renamed:{rng.randrange(3)}")],
        lambda: [("DBSIZE",)],
        lambda: [("SORT", lst, "ALPHA", "LIMIT", "0", "5")],
        lambda: [("ECHO", _bulk_value(rng))],
        lambda: [("PING",)],
        lambda: [("PING", "hello")],
        lambda: [("COMMAND", "INFO", rng.choice(["GET", "SET", "ZADD", "XREADGROUP", "NOSUCH"]))],
        lambda: [("COMMAND", "DOCS", rng.choice(["GET", "GEOSEARCH", "CLIENT", "XADD"]))],
        lambda: [("COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2")],
        lambda: [("EVAL", LUA_NESTED, "0")],
        lambda: [("EVAL", "return redis.call('GET', KEYS[1])", "1", s)],
        lambda: [("EVAL", "return redis.pcall('INCR', KEYS[1])", "1", any_key)],
        lambda: [("EVAL", "return {err='lua error'}", "0")],
        lambda: [("EVAL", "return redis.call('nosuch')", "0")],
        lambda: [("NOSUCHCOMMAND", "arg")],
        lambda: [("GET",)],
        lambda: [("LPUSH", s, "wrongtype")],
        lambda: [("MULTI",), ("INCR", n), ("GET", s), ("LPUSH", s, "x"), ("EXEC",)],
        lambda: [("MULTI",), ("SET", "tx", "1"), ("DISCARD",), ("GET", "tx")],
        lambda: [("MULTI",), ("SET", "k"), ("EXEC",)],
        lambda: [("WATCH", s), ("MULTI",), ("SET", s, "watched"), ("EXEC",)],
        lambda: [("SELECT", "1"), ("SET", "in-db1", str(i)), ("GET", "in-db1"), ("SELECT", "0"), ("GET", "in-db1")],
        lambda: [("BLPOP", lst, "0.01")],
        lambda: [("BLPOP", "empty-list", "0.01")],
        lambda: [("BZPOPMIN", z, "0.01")],
        lambda: [("XREAD", "COUNT", "2", "STREAMS", x, "0")],
        lambda: [("LMPOP", "2", "empty-list", lst, "LEFT", "COUNT", "2")],
    ]
    return rng.choice(choices)()


INLINE_SAFE = {"PING", "GET", "INCR", "LLEN", "TYPE", "DBSIZE", "EXISTS", "HGETALL"}


def build_stream(seed: int, count: int = 400) -> list[tuple[bytes, int, list[tuple]]]:
    """Segments of (bytes to send, replies expected, the commands for error messages)."""
    rng = random.Random(seed)
    segments = []
    total = 0
    while total < count:
        batch = rng.choice([1, 1, 1, 2, 5, 20, 60])
        commands = []
        for _ in range(batch):
            commands += make_commands(rng)
        parts = []
        for cmd in commands:
            if cmd[0] in INLINE_SAFE and rng.random() < 0.3:
                parts.append(" ".join(cmd).encode() + rng.choice([b"\r\n", b"\n"]))
            else:
                parts.append(encode(*cmd))
            if rng.random() < 0.03:
                parts.append(rng.choice([b"*0\r\n", b"\r\n", b"*-1\r\n"]))  # requests with no reply
        segments.append((b"".join(parts), len(commands), commands))
        total += len(commands)
    # A big value and a big reply near the end.
    big = bytes(rng.randrange(256) for _ in range(1000)) * 300
    tail = [("SET", "big", big), ("GET", "big"), ("LRANGE", "list:0", "0", "-1"), ("PING",)]
    segments.append((b"".join(encode(*c) for c in tail), len(tail), tail))
    return segments


def run_stream(endpoint, segments, proto: int) -> list[list[bytes]]:
    endpoint.client().execute_command("FLUSHALL", "SYNC")
    out = []
    with endpoint.raw() as c:
        if proto == 3:
            c.command("HELLO", "3")
        for data, count, _ in segments:
            c.send(data)
            out.append(c.read_raw_replies(count))
        out.append([c.raw_command("ECHO", "end")])  # nothing extra was owed
    return out


@pytest.mark.parametrize("proto", [2, 3])
@pytest.mark.parametrize("seed", [SEED, SEED + 1])
def test_same_bytes_through_readthru_and_redis_give_same_replies(proxy, upstream, proto, seed):
    segments = build_stream(seed)
    want = run_stream(upstream, segments, proto)
    got = run_stream(proxy, segments, proto)
    for index, (w, g) in enumerate(zip(want, got)):
        if w != g:
            commands = segments[index][2] if index < len(segments) else [("ECHO", "end")]
            for cmd, wr, gr in zip(commands, w, g):
                assert gr == wr, f"segment {index}, command {cmd!r}:\n redis {wr[:300]!r}\n got   {gr[:300]!r}"
            assert g == w, f"segment {index}"
    assert len(got) == len(want)


def test_stream_is_deterministic_against_redis(upstream):
    """Guards the oracle itself: two runs against redis-server agree, and the stream is varied."""
    segments = build_stream(SEED)
    first = run_stream(upstream, segments, 2)
    assert run_stream(upstream, segments, 2) == first
    flat = [r for seg in first for r in seg]
    assert len(flat) >= 400
    kinds = {r[:1] for r in flat}
    assert {b"+", b"-", b":", b"$", b"*"} <= kinds
    assert sum(r.startswith(b"-") for r in flat) >= 10
    assert any(r.startswith(b"*-1") or r.startswith(b"$-1") for r in flat)
