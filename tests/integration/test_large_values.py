"""Large values and large replies pass through readthru intact."""

import hashlib
import os

from resp_client import encode

MB = 1024 * 1024


def server_sha1(client, key: str) -> str:
    """SHA-1 of a value computed by redis-server itself (Lua), so no second copy crosses the wire."""
    return client.eval("return redis.sha1hex(redis.call('GET', KEYS[1]))", 1, key).decode()


def test_100mb_value_set_and_get_back_intact(r, direct_r):
    value = os.urandom(100 * MB)
    digest = hashlib.sha1(value).hexdigest()
    assert r.set("big", value) is True
    assert direct_r.strlen("big") == len(value)
    assert server_sha1(direct_r, "big") == digest  # what landed in redis is exact
    got = r.get("big")
    assert len(got) == len(value)
    assert hashlib.sha1(got).hexdigest() == digest
    assert r.ping() is True


def test_replies_after_a_large_reply_stay_in_order(proxy, direct_r):
    value = os.urandom(8 * MB)
    direct_r.set("v8", value)
    with proxy.raw() as c:
        c.send(encode("GET", "v8") + encode("PING") + encode("GET", "v8") + encode("ECHO", "tail"))
        assert c.read_reply() == value
        assert c.read_reply() == b"PONG"
        assert c.read_reply() == value
        assert c.read_reply() == b"tail"


def test_large_array_reply_of_200000_elements(r, direct_r):
    pipe = direct_r.pipeline(transaction=False)
    for start in range(0, 200_000, 10_000):
        pipe.rpush("many", *range(start, start + 10_000))
    pipe.execute()
    got = r.lrange("many", 0, -1)
    assert len(got) == 200_000
    assert got[0] == b"0" and got[-1] == b"199999"
    assert got[123_456] == b"123456"


def test_large_values_for_several_clients_at_once(proxy, direct_r):
    values = {f"v{i}": os.urandom(2 * MB) + bytes([i]) for i in range(8)}
    direct_r.mset(values)
    conns = [proxy.raw() for _ in values]
    try:
        for conn, key in zip(conns, values):
            conn.send(encode("GET", key) * 3)
        for conn, key in zip(conns, values):
            assert [conn.read_reply() for _ in range(3)] == [values[key]] * 3
    finally:
        for conn in conns:
            conn.close()


def test_large_request_arriving_in_small_pieces(proxy, direct_r):
    value = os.urandom(3 * MB)
    request = encode("SET", "pieces", value)
    with proxy.raw() as c:
        step = 7919  # a prime: the pieces cut through headers and CRLFs at varying offsets
        for i in range(0, len(request), step * 64):
            c.send(request[i : i + step * 64])
        assert c.read_reply() == b"OK"
    assert server_sha1(direct_r, "pieces") == hashlib.sha1(value).hexdigest()
