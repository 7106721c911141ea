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
