"""Client limits as redis.conf has them: idle timeout, output buffer limits (slow readers are
disconnected), the query buffer limit, and the per-client pending-request limit that pauses a
fast pipeliner instead of dropping it. The daemon keeps serving everyone else."""

import socket
import time

import pytest

from resp_client import encode

pytestmark = pytest.mark.proxy_only


def limits_stack(make_stack, extra: str):
    return make_stack(extra=extra)


def test_idle_client_is_closed_after_timeout_but_subscriber_is_not(make_stack):
    stack = limits_stack(make_stack, 'timeout = "1s"\n')
    idle = stack.endpoint.raw()
    subscriber = stack.endpoint.raw()
    try:
        assert idle.command("PING") == b"PONG"
        subscriber.send_command("SUBSCRIBE", "news")
        assert subscriber.read_reply()[0] == b"subscribe"
        _, closed = idle.read_until_close(6)
        assert closed, "an idle client was not closed after timeout"
        stack.endpoint.client().publish("news", "still here")
        assert subscriber.read_reply() == [b"message", b"news", b"still here"]
        assert stack.endpoint.client().ping()
    finally:
        idle.close()
        subscriber.close()


def test_subscriber_that_does_not_read_is_disconnected_at_pubsub_hard_limit(make_stack):
    stack = limits_stack(make_stack, 'client_output_buffer_limit_pubsub = "1mb 0 0"\n')
    slow = socket.create_connection((stack.endpoint.host, stack.endpoint.port))
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        slow.sendall(encode("SUBSCRIBE", "firehose"))
        time.sleep(0.2)
        publisher = stack.endpoint.client()
        payload = b"x" * (256 * 1024)
        deadline = time.monotonic() + 20
        while publisher.pubsub_numsub("firehose")[0][1] > 0:
            assert time.monotonic() < deadline, "the slow subscriber was never disconnected"
            publisher.publish("firehose", payload)
        # Everyone else is still served.
        assert publisher.set("after", "1") and publisher.get("after") == b"1"
    finally:
        slow.close()


def test_client_that_never_reads_large_replies_is_disconnected_at_normal_hard_limit(make_stack):
    stack = limits_stack(make_stack, 'client_output_buffer_limit_normal = "2mb"\n')
    r = stack.endpoint.client()
    value = b"v" * (1024 * 1024)
    r.set("big", value)
    slow = socket.create_connection((stack.endpoint.host, stack.endpoint.port))
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        # 64 MB of replies for a client that reads nothing: readthru must not hold them.
        slow.sendall(encode("GET", "big") * 64)
        deadline = time.monotonic() + 10
        while "over the normal limit" not in stack.proxy.log():
            assert time.monotonic() < deadline, "the client was never disconnected"
            time.sleep(0.1)
        assert r.get("big") == value  # the daemon serves everyone else
    finally:
        slow.close()


def test_query_buffer_limit_closes_the_client_and_spares_others(make_stack):
    stack = limits_stack(make_stack, 'client_query_buffer_limit = "1mb"\n')
    c = stack.endpoint.raw()
    try:
        # A 4 MB bulk that will not fit in a 1 MB query buffer.
        c.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4194304\r\n" + b"a" * (2 * 1024 * 1024))
        _, closed = c.read_until_close(10)
        assert closed
    finally:
        c.close()
    other = stack.endpoint.client()
    assert other.ping()
    assert other.get("k") is None


def test_fast_pipeliner_is_paused_not_dropped(make_stack):
    stack = limits_stack(make_stack, "max_pending_requests = 4\n")
    with stack.endpoint.raw() as c:
        n = 5000
        c.send(b"".join(encode("INCR", "counter") for _ in range(n)))
        replies = [c.read_reply() for _ in range(n)]
        assert replies == list(range(1, n + 1))
        assert c.command("PING") == b"PONG"
