"""Malformed requests get redis-server's own "-ERR Protocol error: ..." after the replies already
owed, then the connection closes; other clients keep being served."""

import pytest

from resp_client import encode

CLOSE_WAIT = 10.0

# (name, bytes sent after two good commands, the error text redis-server gives)
MALFORMED = [
    ("bad_multibulk_count", b"*abc\r\n", b"invalid multibulk length"),
    ("simple_string_instead_of_bulk", b"*1\r\n+foo\r\n", b"expected '$', got '+'"),
    ("bad_bulk_length", b"*1\r\n$abc\r\n", b"invalid bulk length"),
    ("unbalanced_double_quote_inline", b'SET "a\r\n', b"unbalanced quotes in request"),
    ("unbalanced_single_quote_inline", b"SET k 'a\r\n", b"unbalanced quotes in request"),
    ("text_right_after_closing_quote", b'SET k "a"b\r\n', b"unbalanced quotes in request"),
    ("multibulk_count_too_big", b"*3000000000\r\n", b"invalid multibulk length"),
    ("bulk_length_over_512mb", b"*1\r\n$600000000\r\n", b"invalid bulk length"),
    ("negative_bulk_length", b"*1\r\n$-5\r\n", b"invalid bulk length"),
    ("inline_where_bulk_expected", b"*1\r\nPING\r\n", b"expected '$', got 'P'"),
    ("inline_request_over_64k", b"A" * 65537, b"too big inline request"),
]


def session(endpoint, bad: bytes) -> tuple[bytes, bool]:
    """Two good commands and the bad bytes in one write; everything read until the server closes."""
    with endpoint.raw() as c:
        c.send(encode("SET", "owed", "1") + b"PING\r\n" + bad)
        return c.read_until_close(CLOSE_WAIT)


@pytest.mark.parametrize("name,bad,text", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_request_gets_redis_error_after_owed_replies_then_close(
    proxy, upstream, name, bad, text
):
    want = b"+OK\r\n+PONG\r\n-ERR Protocol error: " + text + b"\r\n"
    assert session(upstream, bad) == (want, True), "the test's expectation is wrong for redis"
    other = proxy.raw()
    try:
        assert other.command("PING") == b"PONG"
        got = session(proxy, bad)
        assert got == (want, True)
        # Another client, connected all along, is still served.
        assert other.command("SET", "other", name) == b"OK"
        assert other.command("GET", "other") == name.encode()
    finally:
        other.close()
    with proxy.raw() as fresh:
        assert fresh.command("GET", "owed") == b"1"


def test_protocol_error_in_a_later_segment_after_pipelined_commands(proxy, upstream):
    def run(endpoint):
        with endpoint.raw() as c:
            c.send(b"".join(encode("INCR", "n") for _ in range(100)))
            replies = c.read_raw_replies(100)
            c.send(b"*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$x\r\n")
            rest, closed = c.read_until_close(CLOSE_WAIT)
            return replies, rest, closed

    upstream.client().delete("n")
    want = run(upstream)
    assert want[1] == b"+PONG\r\n-ERR Protocol error: invalid bulk length\r\n" and want[2]
    upstream.client().delete("n")
    assert run(proxy) == want


def test_bulk_terminator_is_not_checked_like_redis(proxy, upstream):
    """redis-server skips the two bytes after a bulk without checking they are CRLF."""

    def run(endpoint):
        with endpoint.raw() as c:
            c.send(b"*1\r\n$4\r\nPINGXX*2\r\n$4\r\nECHO\r\n$2\r\nok\r\n")
            return c.read_raw_replies(2) + [c.raw_command("PING")]

    want = run(upstream)
    assert want == [b"+PONG\r\n", b"$2\r\nok\r\n", b"+PONG\r\n"]
    assert run(proxy) == want


def test_empty_multibulk_and_nil_multibulk_are_skipped(proxy, upstream):
    def run(endpoint):
        with endpoint.raw() as c:
            c.send(b"*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n*0\r\n")
            return c.read_raw_reply() + c.raw_command("ECHO", "next")

    want = run(upstream)
    assert want == b"+PONG\r\n$4\r\nnext\r\n"
    assert run(proxy) == want


def test_partial_request_then_close_does_not_disturb_others(proxy, r):
    for partial in (b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\nabc", b"*2\r\n$3\r\nGE", b"PIN"):
        c = proxy.raw()
        c.send(partial)
        c.close()
        assert r.ping() is True
    assert r.get("k") is None
