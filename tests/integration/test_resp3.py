"""RESP3 through readthru: HELLO 3, the RESP3 reply types, CLIENT SETINFO, and HELLO 2 back."""

import math

import pytest

from resp_client import (
    NULL,
    BigNumber,
    Double,
    Push,
    RespError,
    RespMap,
    RespSet,
    Simple,
    Verbatim,
    parse,
    split_replies,
)


def hello3(endpoint, *extra):
    conn = endpoint.raw()
    reply = conn.command("HELLO", "3", *extra)
    return conn, reply


def test_hello_3_returns_server_map(proxy):
    conn, reply = hello3(proxy)
    with conn:
        assert isinstance(reply, RespMap)
        for key in (b"server", b"version", b"proto", b"id", b"mode", b"role", b"modules"):
            assert key in reply, key
        assert reply[b"proto"] == 3
        assert isinstance(reply[b"server"], bytes) and reply[b"server"]
        assert isinstance(reply[b"version"], bytes) and reply[b"version"].count(b".") == 2
        assert isinstance(reply[b"id"], int)
        assert reply[b"mode"] == b"standalone"
        assert reply[b"role"] == b"master"
        assert isinstance(reply[b"modules"], list)


def test_resp3_reply_types(proxy, direct_r):
    direct_r.hset("h", mapping={"f1": "v1", "f2": "v2"})
    direct_r.sadd("s", "a", "b", "c")
    direct_r.zadd("z", {"m": 1.5, "inf": float("inf")})
    conn, _ = hello3(proxy)
    with conn:
        h = conn.command("HGETALL", "h")
        assert isinstance(h, RespMap) and h == {b"f1": b"v1", b"f2": b"v2"}
        s = conn.command("SMEMBERS", "s")
        assert isinstance(s, RespSet) and sorted(s) == [b"a", b"b", b"c"]
        score = conn.command("ZSCORE", "z", "m")
        assert isinstance(score, Double) and score == 1.5
        assert conn.raw_command("ZSCORE", "z", "inf") == b",inf\r\n"
        assert conn.raw_command("GET", "missing") == b"_\r\n"
        assert conn.command("GET", "missing") is NULL
        with_scores = conn.command("ZRANGE", "z", "0", "-1", "WITHSCORES")
        assert with_scores == [[b"m", 1.5], [b"inf", math.inf]]
        assert isinstance(with_scores[0][1], Double)
        info = conn.command("INFO", "server")
        assert isinstance(info, Verbatim) and info.format == b"txt" and b"redis_version" in info
        assert conn.command("PING") == Simple(b"PONG")
        err = conn.command("LPUSH", "h", "x")
        assert isinstance(err, RespError) and err.code == b"WRONGTYPE"
        assert conn.command("CONFIG", "GET", "maxmemory-policy") == {
            b"maxmemory-policy": b"noeviction"
        }


def test_resp3_types_from_lua(proxy, upstream):
    scripts = [
        ("return {double=3.14}", b",3.1400000000000001\r\n"),
        ("return {big_number='123456789012345678901234567890'}", b"(123456789012345678901234567890\r\n"),
        ("redis.setresp(3); return true", b"#t\r\n"),
        ("redis.setresp(3); return false", b"#f\r\n"),
        ("return {map={a=1}}", b"%1\r\n$1\r\na\r\n:1\r\n"),
        ("return {set={a=true}}", b"~1\r\n$1\r\na\r\n"),
        ("return {verbatim_string={format='txt', string='hi'}}", b"=6\r\ntxt:hi\r\n"),
        ("return nil", b"_\r\n"),
        ("return {1, {2, {3, {4, {5, {6, {7, {8, {9, {10}}}}}}}}}}", None),  # 10 levels deep
    ]
    for script, want in scripts:
        results = []
        for endpoint in (upstream, proxy):
            conn, _ = hello3(endpoint)
            with conn:
                results.append(conn.raw_command("EVAL", script, "0"))
        assert results[0] == results[1], script
        if want is not None:
            assert results[0] == want, script
    big = parse(b"(123456789012345678901234567890\r\n")[0]
    assert isinstance(big, BigNumber) and big == 123456789012345678901234567890


@pytest.mark.proxy_only
def test_client_setinfo_is_accepted(proxy):
    """redis-py 5 and other new clients send CLIENT SETINFO; readthru accepts it even though
    redis-server 7.0 (the upstream here) does not know the subcommand."""
    conn, _ = hello3(proxy)
    with conn:
        assert conn.raw_command("CLIENT", "SETINFO", "lib-name", "x") == b"+OK\r\n"
        assert conn.raw_command("CLIENT", "SETINFO", "lib-ver", "1.2.3") == b"+OK\r\n"
    with proxy.raw() as resp2:
        assert resp2.raw_command("CLIENT", "SETINFO", "lib-name", "x") == b"+OK\r\n"


def test_hello_2_goes_back_to_resp2(proxy, direct_r):
    direct_r.hset("h", "f", "v")
    conn, _ = hello3(proxy)
    with conn:
        assert isinstance(conn.command("HGETALL", "h"), RespMap)
        reply = conn.command("HELLO", "2")
        assert isinstance(reply, list)  # RESP2: the map is a flat array
        fields = dict(zip(reply[::2], reply[1::2]))
        assert fields[b"proto"] == 2
        assert conn.raw_command("HGETALL", "h") == b"*2\r\n$1\r\nf\r\n$1\r\nv\r\n"
        assert conn.raw_command("GET", "missing") == b"$-1\r\n"
        assert conn.raw_command("HELLO", "3").startswith(b"%7\r\n")


def test_hello_with_setname_and_auth_errors(proxy, upstream):
    for endpoint in (upstream, proxy):
        conn, reply = hello3(endpoint, "SETNAME", "resp3-client")
        with conn:
            assert reply[b"proto"] == 3
            assert conn.command("CLIENT", "GETNAME") == b"resp3-client"
    for args in (("HELLO", "4"), ("HELLO", "3", "AUTH", "nosuchuser", "pw"), ("HELLO", "x")):
        with upstream.raw() as d, proxy.raw() as p:
            want = d.raw_command(*args)
            assert want.startswith(b"-"), args
            assert p.raw_command(*args) == want, args


def test_resp3_pipeline_of_mixed_types_matches_redis(proxy, upstream):
    commands = [
        ("HSET", "h", "a", "1"),
        ("HGETALL", "h"),
        ("SADD", "s", "1", "2"),
        ("SMEMBERS", "s"),
        ("ZADD", "z", "2.5", "x"),
        ("ZRANGE", "z", "0", "-1", "WITHSCORES"),
        ("ZSCORE", "z", "x"),
        ("GET", "nope"),
        ("HGETALL", "nope"),
        ("LPOP", "nope"),
        ("XADD", "st", "1-1", "f", "v"),
        ("XRANGE", "st", "-", "+"),
        ("XINFO", "STREAM", "st"),
        ("COMMAND", "INFO", "GET"),
        ("EVAL", "return {double=0.5}", "0"),
        ("CONFIG", "GET", "port"),
    ]
    from resp_client import encode

    def run(endpoint):
        endpoint.client().flushall()
        conn, _ = hello3(endpoint)
        with conn:
            conn.send(b"".join(encode(*c) for c in commands))
            return conn.read_raw_replies(len(commands))

    want = run(upstream)
    got = run(proxy)
    for cmd, w, g in zip(commands, want, got):
        if cmd[:2] == ("CONFIG", "GET") or cmd[:2] == ("XINFO", "STREAM"):
            continue  # port differs; XINFO carries timestamps
        assert g == w, cmd
    assert len(split_replies(b"".join(got))) == len(commands)


def test_resp_client_parses_every_resp3_type():
    """The test helper itself, on hand-written frames (attributes and pushes included)."""
    data = (
        b"|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n"  # attribute, then the reply
        b"*2\r\n:1\r\n:2\r\n"
        b">2\r\n+message\r\n$2\r\nhi\r\n"
        b"!9\r\nERR blob!\r\n"
        b"=8\r\nmkd:text\r\n"
        b",-inf\r\n"
        b",nan\r\n"
        b"(-12\r\n"
        b"#f\r\n"
        b"_\r\n"
        b"~1\r\n*1\r\n:1\r\n"
        b"%1\r\n*1\r\n:1\r\n$1\r\nv\r\n"
    )
    attrs: list = []
    pos = 0
    values = []
    while pos < len(data):
        value, pos = parse(data, pos, attrs)
        values.append(value)
    assert values[0] == [1, 2]
    assert attrs == [{b"key-popularity": {b"a": 0.19}}]
    assert isinstance(values[1], Push) and values[1] == [b"message", b"hi"]
    assert isinstance(values[2], RespError) and values[2].code == b"ERR"
    assert isinstance(values[3], Verbatim) and values[3].format == b"mkd" and values[3] == b"text"
    assert values[4] == -math.inf and math.isnan(values[5])
    assert values[6] == -12 and isinstance(values[6], BigNumber)
    assert values[7] is False and values[8] is NULL
    assert values[9] == [[1]] and isinstance(values[9], RespSet)
    assert values[10] == {(1,): b"v"}
