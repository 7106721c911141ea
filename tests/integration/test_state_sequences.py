"""Short command sequences that once made readthru's view of a connection's state drift from
Redis's (found by a randomized differential run): each must give the same bytes as redis-server."""

import re

import pytest

from resp_client import encode

pytestmark = pytest.mark.proxy_only

SEQUENCES = [
    [("CLIENT", "REPLY", "OFF"), ("RESET",)],
    [("SUBSCRIBE", "ch"), ("CLIENT", "REPLY", "OFF"), ("UNSUBSCRIBE",)],
    [("SUBSCRIBE", "ch"), ("MULTI",), ("UNSUBSCRIBE",), ("CLIENT", "REPLY", "OFF"), ("RESET",)],
    [("MULTI",), ("HELLO", "2"), ("DISCARD",)],
    [("CLIENT", "REPLY", "SKIP"), ("HELLO", "2")],
    [("CLIENT", "REPLY", "OFF"), ("HELLO", "3"), ("RESET",)],
    [("CLIENT", "REPLY", "OFF"), ("SUBSCRIBE", "ch"), ("HELLO", "3"), ("RESET",)],
    [("WATCH", "k"), ("UNWATCH",), ("RESET",), ("HELLO", "3"), ("GET", "k0")],
    [("MULTI",), ("MULTI",), ("SET", "a", "1"), ("EXEC",), ("GET", "a")],
    [("SELECT", "1"), ("MULTI",), ("SELECT", "0"), ("EXEC",), ("SET", "x", "1"), ("GET", "x")],
    # The RESET that CLIENT REPLY SKIP silences still resets (readthru once waited for its reply).
    [("CLIENT", "REPLY", "SKIP"), ("RESET",), ("CLIENT", "GETNAME")],
    [("SET", "k", "v"), ("CLIENT", "REPLY", "SKIP"), ("RESET",), ("HELLO", "3"), ("GET", "k")],
    [("SUBSCRIBE", "ch"), ("CLIENT", "REPLY", "SKIP"), ("RESET",), ("GET", "k")],
]


def transcript(endpoint, commands) -> bytes:
    endpoint.client().flushall()
    with endpoint.raw(timeout=5) as c:
        c.send(b"".join(encode(*cmd) for cmd in commands) + encode("ECHO", "END-MARK"))
        out = b""
        while b"END-MARK" not in out:
            chunk = c.sock.recv(65536)
            assert chunk, f"connection closed after {out!r}"
            out += chunk
    # HELLO's id field names the connection: it differs by nature.
    return re.sub(rb"\$2\r\nid\r\n:\d+", b"id:X", out)


@pytest.mark.parametrize("commands", SEQUENCES, ids=lambda c: " / ".join(" ".join(x) for x in c))
def test_sequence_gives_the_same_bytes_as_redis(proxy, upstream, commands):
    assert transcript(proxy, commands) == transcript(upstream, commands)


def test_shared_connections_keep_their_protocol_after_a_pinned_reset(proxy):
    # A RESET from a client whose pinned state had ended once reached a shared connection.
    c = proxy.raw(timeout=5)
    try:
        assert c.command("WATCH", "k") == b"OK"
        assert c.command("UNWATCH") == b"OK"
        assert c.command("RESET") == b"RESET"
    finally:
        c.close()
    with proxy.raw(timeout=5) as r3:
        r3.command("HELLO", "3")
        r3.send_command("GET", "missing")
        assert r3.read_raw_replies(1) == [b"_\r\n"]


SILENCED = {
    "MULTI after CLIENT REPLY SKIP": [("CLIENT", "REPLY", "SKIP"), ("MULTI",)],
    "WATCH with replies off": [("CLIENT", "REPLY", "OFF"), ("WATCH", "k"), ("CLIENT", "REPLY", "ON")],
    "SELECT with replies off": [("CLIENT", "REPLY", "OFF"), ("SELECT", "5"), ("CLIENT", "REPLY", "ON")],
}


@pytest.mark.parametrize("commands", SILENCED.values(), ids=SILENCED.keys())
def test_a_silenced_state_change_stays_with_its_connection(make_stack, commands):
    # readthru learns a transaction, a WATCH or a db from Redis's reply; without one, the
    # dedicated connection must not go back to the pool for the next client that pins (a
    # private stack: its pool holds no other idle connection).
    stack = make_stack()
    proxy, direct_r = stack.endpoint, stack.direct.client()
    direct_r.set("k", "v1")
    with proxy.raw(timeout=5) as a:
        for cmd in commands + [("PING", "mark")]:
            a.send_command(*cmd)
        # CLIENT REPLY ON's +OK, then PING's reply (queued, after a silenced MULTI).
        replies = [a.read_reply()]
        if replies[0] == b"OK":
            replies.append(a.read_reply())
        assert replies[-1] in (b"mark", b"QUEUED"), replies
    direct_r.set("k", "v2")  # would fail an EXEC watching k
    with proxy.raw(timeout=5) as b:
        assert b.command("MULTI") == b"OK"
        assert b.command("GET", "k") == b"QUEUED"
        assert b.command("EXEC") == [b"v2"]
