"""(Un)subscriptions and messages inside MULTI/EXEC, through readthru and directly.

Redis 7.0 runs a queued (P|S)(UN)SUBSCRIBE at EXEC: its confirmation is an element of EXEC's array
and the connection's subscriptions change. Messages a transaction publishes to its own subscriber
land inside EXEC's array without being elements of it. Redis's own suite checks both ("publish to
self inside multi", "unsubscribe inside multi, and publish to self"). Each test sends the same
commands to redis-server and to readthru and compares every byte that comes back (after HELLO,
whose reply carries the connection id).
"""

import time

import pytest

from resp_client import RespError, encode

pytestmark = pytest.mark.proxy_only

QUIET = 0.4  # seconds without a byte: the exchange is over


def _exchange(conn, *commands) -> bytes:
    """Sends the commands in one write; returns all that arrives until the connection is quiet."""
    conn.send(b"".join(encode(*c) for c in commands))
    data, closed = conn.read_until_close(timeout=QUIET)
    conn.sock.settimeout(5)
    assert not closed, f"the connection closed after {data[-200:]!r}"
    return data


def _publish(endpoint, channel, message):
    with endpoint.raw(timeout=5) as p:
        return p.command("PUBLISH", channel, message)


def _both(proxy, upstream, steps, protocol=2) -> bytes:
    """Runs `steps` against each endpoint: a step is a list of commands sent together, or a
    callable given the endpoint (a publisher, say). Checks that readthru's client got the bytes
    redis-server's got, and kept its connection open; returns them."""
    got = {}
    for endpoint in (upstream, proxy):
        c = endpoint.raw(timeout=5)
        if protocol == 3:
            assert isinstance(c.command("HELLO", "3"), dict)
        out = b""
        for step in steps:
            if callable(step):
                step(endpoint)
            else:
                out += _exchange(c, *step)
        c.close()  # before readthru's turn: PUBLISH counts the subscribers
        got[endpoint] = out
    assert got[proxy] == got[upstream]
    return got[proxy]


def test_publish_to_self_inside_multi(proxy, upstream):
    # Redis's "publish to self inside multi" (RESP3).
    data = _both(
        proxy,
        upstream,
        [
            [("SUBSCRIBE", "foo")],
            [("MULTI",), ("PING", "abc"), ("PUBLISH", "foo", "bar"), ("PUBLISH", "foo", "vaz")],
            [("PING", "def"), ("EXEC",)],
        ],
        protocol=3,
    )
    assert data.count(b"message") == 2


def test_unsubscribe_inside_multi_and_publish_to_self(proxy, upstream):
    # Redis's "unsubscribe inside multi, and publish to self" (RESP3): after EXEC the client is
    # still subscribed to foo, and only to foo.
    data = _both(
        proxy,
        upstream,
        [
            [("SUBSCRIBE", "foo", "bar", "baz")],
            [("MULTI",), ("PING", "abc"), ("UNSUBSCRIBE", "bar"), ("UNSUBSCRIBE", "baz")],
            [("PING", "def"), ("EXEC",)],
            [("PUBLISH", "foo", "vaz")],
            [("UNSUBSCRIBE",)],
        ],
        protocol=3,
    )
    assert b"$11\r\nunsubscribe\r\n$3\r\nfoo\r\n:0\r\n" in data


def test_subscribe_inside_multi_subscribes_and_the_connection_is_not_reused(
    proxy, upstream, direct_r
):
    data = _both(
        proxy,
        upstream,
        [
            [("MULTI",), ("SUBSCRIBE", "ch"), ("EXEC",)],
            lambda endpoint: _publish(endpoint, "ch", "hello"),
            [("PING",), ("GET", "k")],
        ],
    )
    # A RESP2 subscriber: the message, then PING as a subscriber gets it, and GET refused.
    assert b"$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n" in data
    assert b"*2\r\n$4\r\npong\r\n$0\r\n\r\n" in data
    assert b"-ERR Can't execute 'get'" in data
    # The subscribed upstream connection goes with its client: nobody else is handed it.
    deadline = time.monotonic() + 5
    while any(int(cl["sub"]) > 0 for cl in direct_r.client_list()):
        assert time.monotonic() < deadline, direct_r.client_list()
        time.sleep(0.05)
    with proxy.raw(timeout=5) as other:
        assert other.command("MULTI") == b"OK"
        assert other.command("SET", "k", "v") == b"QUEUED"
        assert other.command("EXEC") == [b"OK"]


def test_psubscribe_inside_multi_then_a_bare_punsubscribe(proxy, upstream):
    # readthru knows of the pattern EXEC subscribed to, so PUNSUBSCRIBE (no argument) goes to
    # Redis and names it.
    data = _both(
        proxy,
        upstream,
        [
            [("MULTI",), ("PSUBSCRIBE", "f*"), ("GET", "k"), ("EXEC",)],
            lambda endpoint: _publish(endpoint, "foo", "hi"),
            [("PUNSUBSCRIBE",)],
            [("GET", "k")],
        ],
        protocol=3,
    )
    assert b"$12\r\npunsubscribe\r\n$2\r\nf*\r\n:0\r\n" in data


def test_a_several_channel_subscribe_queued_in_multi(proxy, upstream):
    # Redis answers it with more frames than EXEC's array announces (redis/redis#12207); readthru
    # passes on the same bytes and keeps the confirmations apart from later replies.
    data = _both(
        proxy,
        upstream,
        [
            [("MULTI",), ("SUBSCRIBE", "a", "b", "c"), ("PING",), ("EXEC",)],
            lambda endpoint: _publish(endpoint, "c", "m"),
            [("UNSUBSCRIBE",)],
            [("GET", "k")],
        ],
        protocol=3,
    )
    assert data.count(b"$11\r\nunsubscribe\r\n") == 3


def test_tracking_invalidation_of_a_key_changed_in_a_transaction(proxy, upstream):
    # A RESP3 client tracking k changes it in a transaction: the invalidation push comes with
    # EXEC's reply (right after its array, from Redis 7.0.15).
    data = _both(
        proxy,
        upstream,
        [
            [("CLIENT", "TRACKING", "on")],
            [("SET", "k", "1"), ("GET", "k")],
            [("MULTI",), ("SET", "k", "2"), ("GET", "k"), ("EXEC",)],
            [("GET", "k")],
        ],
        protocol=3,
    )
    assert b"invalidate" in data


def test_client_reply_inside_multi_is_refused_and_aborts_the_transaction(proxy):
    # Redis 7.0 runs it at EXEC and breaks the protocol (EXEC announces an element the reply mode
    # then suppresses); readthru refuses it as Valkey does.
    with proxy.raw(timeout=5) as c:
        assert c.command("MULTI") == b"OK"
        reply = c.command("CLIENT", "REPLY", "OFF")
        assert isinstance(reply, RespError)
        assert bytes(reply) == b"ERR Command not allowed inside a transaction"
        assert c.command("SET", "k", "v") == b"QUEUED"
        reply = c.command("EXEC")
        assert isinstance(reply, RespError) and bytes(reply).startswith(b"EXECABORT"), reply
        assert c.command("GET", "k") is None
        assert c.command("PING") == b"PONG"


def test_reset_with_arguments_is_refused_as_redis_refuses_it(proxy, upstream):
    replies = {}
    for endpoint in (upstream, proxy):
        with endpoint.raw(timeout=5) as c:
            assert c.command("SELECT", "0") == b"OK"
            replies[endpoint] = c.raw_command("RESET", "now")
            assert c.command("PING") == b"PONG"
    expected = b"-ERR wrong number of arguments for 'reset' command\r\n"
    assert replies[proxy] == replies[upstream] == expected
