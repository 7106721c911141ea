"""Pipelined requests get their replies back complete and in request order."""

import random

from resp_client import RespError, encode


def test_mixed_pipeline_of_10000_commands_returns_replies_in_order(r):
    rng = random.Random(1234)
    pipe = r.pipeline(transaction=False)
    expected = []
    strings: dict[str, bytes] = {}
    counters: dict[str, int] = {}
    lists: dict[str, list[bytes]] = {}
    hashes: dict[str, dict[bytes, bytes]] = {}
    for i in range(10_000):
        op = rng.randrange(8)
        if op == 0:
            key, value = f"s:{rng.randrange(200)}", f"v{i}".encode() * rng.randrange(1, 20)
            pipe.set(key, value)
            strings[key] = value
            expected.append(True)
        elif op == 1:
            key = f"s:{rng.randrange(200)}"
            pipe.get(key)
            expected.append(strings.get(key))
        elif op == 2:
            key = f"n:{rng.randrange(20)}"
            counters[key] = counters.get(key, 0) + 1
            pipe.incr(key)
            expected.append(counters[key])
        elif op == 3:
            key = f"l:{rng.randrange(20)}"
            lists.setdefault(key, []).append(str(i).encode())
            pipe.rpush(key, i)
            expected.append(len(lists[key]))
        elif op == 4:
            key = f"l:{rng.randrange(20)}"
            pipe.lrange(key, -3, -1)
            expected.append(lists.get(key, [])[-3:])
        elif op == 5:
            key, field = f"h:{rng.randrange(20)}", f"f{rng.randrange(10)}".encode()
            new = field not in hashes.setdefault(key, {})
            hashes[key][field] = str(i).encode()
            pipe.hset(key, field, i)
            expected.append(1 if new else 0)
        elif op == 6:
            key = f"h:{rng.randrange(20)}"
            pipe.hgetall(key)
            expected.append(dict(hashes.get(key, {})))
        else:
            pipe.echo(f"echo-{i}")
            expected.append(f"echo-{i}".encode())
    results = pipe.execute()
    assert len(results) == len(expected)
    for i, (got, want) in enumerate(zip(results, expected)):
        assert got == want, f"reply {i} out of order or wrong: {got!r} != {want!r}"


def test_pipeline_with_errors_keeps_each_error_in_its_slot(r):
    r.set("str", "x")
    pipe = r.pipeline(transaction=False)
    for i in range(300):
        pipe.set(f"k{i}", i)
        pipe.lpush("str", "boom")  # WRONGTYPE
        pipe.get(f"k{i}")
    results = pipe.execute(raise_on_error=False)
    for i in range(300):
        assert results[3 * i] is True
        assert "WRONGTYPE" in str(results[3 * i + 1])
        assert results[3 * i + 2] == str(i).encode()


def test_burst_of_1000_commands_in_one_write_is_answered_in_order(proxy):
    payload = []
    expected = []
    for i in range(1000):
        kind = i % 4
        if kind == 0:
            payload.append(encode("SET", f"burst:{i}", f"value-{i}"))
            expected.append(b"+OK\r\n")
        elif kind == 1:
            payload.append(encode("GET", f"burst:{i - 1}"))
            value = f"value-{i - 1}".encode()
            expected.append(b"$%d\r\n%s\r\n" % (len(value), value))
        elif kind == 2:
            payload.append(encode("INCR", "burst:counter"))
            expected.append(b":%d\r\n" % (i // 4 + 1))
        else:
            payload.append(encode("ECHO", f"e{i}"))
            expected.append(b"$%d\r\n%s\r\n" % (len(f"e{i}"), f"e{i}".encode()))
    with proxy.raw() as conn:
        conn.send(b"".join(payload))  # one sendall of ~40 KB
        got = conn.read_raw_replies(1000)
        assert got == expected
        assert conn.command("PING") == b"PONG"  # and nothing extra was queued behind them


def test_many_clients_interleaved_pipelines_do_not_cross(proxy):
    conns = [proxy.raw() for _ in range(20)]
    try:
        for round_ in range(5):
            for c, conn in enumerate(conns):
                conn.send(b"".join(encode("ECHO", f"c{c}r{round_}i{i}") for i in range(50)))
            for c, conn in enumerate(conns):
                replies = [conn.read_reply() for _ in range(50)]
                assert replies == [f"c{c}r{round_}i{i}".encode() for i in range(50)]
                assert not any(isinstance(x, RespError) for x in replies)
    finally:
        for conn in conns:
            conn.close()
