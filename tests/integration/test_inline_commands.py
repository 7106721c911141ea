"""Inline commands (telnet style, "PING\\r\\n") over a raw socket, compared with redis-server."""

import time

import pytest

from resp_client import split_replies

# (name, byte chunks written one by one, replies expected)
CASES = [
    ("ping", [b"PING\r\n"], 1),
    ("set", [b"SET k v\r\n", b"GET k\r\n"], 2),
    ("quoted_arg_with_space", [b'SET k "a b"\r\n', b"GET k\r\n"], 2),
    ("lf_only", [b"SET k lf\n", b"GET k\n"], 2),
    ("lowercase", [b"set k lower\r\nget k\r\n"], 2),
    ("extra_spaces_and_tabs", [b"   SET \t k   spaced  \r\n", b"GET k\r\n"], 2),
    ("escapes_in_double_quotes", [b'SET k "\\x41\\x42\\n\\t\\"q\\\\"\r\n', b"GET k\r\n"], 2),
    ("bad_hex_escape", [b'SET k "\\x4g"\r\n', b"GET k\r\n"], 2),
    ("single_quotes", [b"SET k 'it\\'s \"raw\" \\n'\r\n", b"GET k\r\n"], 2),
    ("empty_quoted_arg", [b'SET k ""\r\n', b"STRLEN k\r\n"], 2),
    ("blank_lines_are_skipped", [b"\r\n", b"\n", b"   \r\n", b"PING\r\n"], 1),
    ("pipelined_inline", [b"PING\r\nPING\r\nECHO hi\r\nPING\r\n"], 4),
    ("inline_mixed_with_multibulk", [b"SET k v\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\nINCR n\r\n"], 3),
    ("split_across_writes", [b"SE", b"T k4 v", b"alue\r", b"\nGE", b"T k4\r\n"], 2),
    ("inline_errors", [b"FOO bar baz\r\n", b"GET\r\n", b"INCR k\r\nSET k x\r\nINCR k\r\n"], 5),
    ("ping_with_argument", [b"PING hello\r\n"], 1),
    ("inline_binary", [b"SET k \xff\xfe\x01\r\n", b"GET k\r\n"], 2),
    ("long_inline_under_limit", [b"ECHO " + b"x" * 60000 + b"\r\n"], 1),
]


def transcript(endpoint, chunks: list[bytes], count: int) -> list[bytes]:
    endpoint.client().flushall()
    with endpoint.raw() as c:
        for chunk in chunks:
            c.send(chunk)
            time.sleep(0.01)  # separate TCP segments: the request really arrives in pieces
        replies = c.read_raw_replies(count)
        replies.append(c.raw_command("PING"))  # nothing more was owed
        return replies


@pytest.mark.parametrize("name,chunks,count", CASES, ids=[c[0] for c in CASES])
def test_inline_requests_match_redis(proxy, upstream, name, chunks, count):
    want = transcript(upstream, chunks, count)
    assert want[-1] == b"+PONG\r\n"
    got = transcript(proxy, chunks, count)
    assert got == want


def test_inline_basics(proxy):
    with proxy.raw() as c:
        c.send(b"PING\r\n")
        assert c.read_raw_reply() == b"+PONG\r\n"
        c.send(b"SET k v\r\n")
        assert c.read_raw_reply() == b"+OK\r\n"
        c.send(b'SET k "a b"\r\n')
        assert c.read_raw_reply() == b"+OK\r\n"
        c.send(b"GET k\n")
        assert c.read_raw_reply() == b"$3\r\na b\r\n"


def test_inline_replies_stay_in_order_with_many_pipelined(proxy):
    payload = b"".join(b"ECHO e%d\r\n" % i for i in range(500))
    with proxy.raw() as c:
        c.send(payload)
        data = b"".join(c.read_raw_replies(500))
    assert split_replies(data) == [b"$%d\r\ne%d\r\n" % (len(b"e%d" % i), i) for i in range(500)]
