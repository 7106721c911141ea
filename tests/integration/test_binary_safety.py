"""Keys and values with CR, LF, NUL and every other byte pass through readthru unchanged."""

from resp_client import encode

ALL_BYTES = bytes(range(256))
TRICKY = [
    b"",
    b"\r\n",
    b"\x00",
    b"a\r\nb",
    b"\r",
    b"\n",
    b"value\r\n",
    b"\x00\x00\r\n\x00",
    b"$5\r\nhello\r\n",
    b"*1\r\n$4\r\nPING\r\n",
    b"-ERR fake\r\n",
    b"+OK\r\n",
    ALL_BYTES,
    ALL_BYTES * 64,
    "ünïcødé ✓".encode(),
]


def test_binary_values_round_trip(r, direct_r):
    for i, value in enumerate(TRICKY):
        assert r.set(f"bin:{i}", value) is True
        assert r.get(f"bin:{i}") == value
        assert direct_r.get(f"bin:{i}") == value


def test_binary_keys_round_trip(r, direct_r):
    for i, key in enumerate(TRICKY):
        value = b"v%d" % i
        assert r.set(key, value) is True
        assert r.get(key) == value
        assert direct_r.get(key) == value
    assert r.dbsize() == len(TRICKY)
    assert sorted(direct_r.keys("*")) == sorted(TRICKY)


def test_binary_in_aggregates(r):
    r.rpush("list", *TRICKY[1:])
    assert r.lrange("list", 0, -1) == TRICKY[1:]
    r.hset("hash", mapping={k: k[::-1] for k in TRICKY[1:]})
    assert r.hgetall("hash") == {k: k[::-1] for k in TRICKY[1:]}
    r.sadd("set", *TRICKY)
    assert r.smembers("set") == set(TRICKY)
    assert r.mget([b"nope\r\n", b"\x00"]) == [None, None]
    assert r.echo(b"\x00\r\n\x00") == b"\x00\r\n\x00"


def test_raw_multibulk_with_crlf_inside_arguments(proxy):
    with proxy.raw() as c:
        c.send(encode("SET", b"k\r\n*1\r\n", b"\r\n$3\r\nbad\r\n") + encode("GET", b"k\r\n*1\r\n"))
        assert c.read_raw_reply() == b"+OK\r\n"
        assert c.read_raw_reply() == b"$11\r\n\r\n$3\r\nbad\r\n\r\n"
        c.send(encode("SET", b"z", b"") + encode("GET", b"z") + encode("STRLEN", b"z"))
        assert c.read_raw_replies(3) == [b"+OK\r\n", b"$0\r\n\r\n", b":0\r\n"]
