"""SIGTERM: readthru stops accepting, answers what it owes, and exits 0 promptly."""

import signal
import socket
import time

import pytest

from harness import HOST, Readthru
from resp_client import RespError, encode, parse, Incomplete
from writer_stack import wait_for

pytestmark = pytest.mark.proxy_only

PROMPT = 10.0  # generous for ASan builds


def refused(port: int) -> bool:
    try:
        socket.create_connection((HOST, port), timeout=1).close()
        return False
    except OSError:
        return True


def test_sigterm_exits_zero_promptly_with_idle_clients(make_stack):
    stack = make_stack()
    proxy = stack.proxy
    idle = [stack.endpoint.raw() for _ in range(5)]
    try:
        for c in idle:
            assert c.command("PING") == b"PONG"
        started = time.monotonic()
        rc = proxy.stop(timeout=PROMPT)
        assert rc == 0, f"exit code {rc}; stderr:\n{proxy.log()}"
        assert time.monotonic() - started < PROMPT
        assert refused(proxy.port)
        for c in idle:  # the idle clients were closed, not left hanging
            _, closed = c.read_until_close(5)
            assert closed
    finally:
        for c in idle:
            c.close()


def test_sigterm_with_pipeline_in_flight_answers_a_prefix_then_closes(make_stack):
    stack = make_stack()
    proxy = stack.proxy
    with stack.endpoint.raw() as c:
        c.send(b"".join(encode("INCR", "drain") for _ in range(20000)))
        time.sleep(0.05)
        proxy.proc.send_signal(signal.SIGTERM)
        data, closed = c.read_until_close(PROMPT)
        assert closed, "readthru kept the connection open after SIGTERM"
    rc = proxy.stop(timeout=PROMPT)
    assert rc == 0, f"exit code {rc}; stderr:\n{proxy.log()}"

    replies, pos = [], 0
    while pos < len(data):
        try:
            value, pos = parse(data, pos, [])
        except Incomplete:
            raise AssertionError(f"a reply was cut off at byte {pos} of {len(data)}") from None
        replies.append(value)
    counts = [r for r in replies if isinstance(r, int)]
    assert counts == list(range(1, len(counts) + 1)), "INCR replies out of order or missing"
    rest = replies[len(counts) :]
    assert all(isinstance(r, RespError) and r.code == b"ERR" for r in rest), rest[:3]
    assert int(stack.direct.client().get("drain") or 0) >= len(counts)


def test_sigterm_after_traffic_leaves_upstream_consistent(make_stack):
    stack = make_stack()
    client = stack.endpoint.client()
    pipe = client.pipeline(transaction=False)
    for i in range(2000):
        pipe.set(f"k{i}", i)
    assert all(pipe.execute())
    client.close()
    rc = stack.proxy.stop(timeout=PROMPT)
    assert rc == 0, stack.proxy.log()
    assert stack.direct.client().dbsize() == 2000


def test_sigterm_repeated_while_exiting_still_exits_zero(make_stack, tmp_path):
    # A supervisor (or an impatient operator) may signal again while readthru winds down; once the
    # clients are gone the process is about to exit 0 and a second SIGTERM must not kill it.
    stack = make_stack()
    for i in range(20):
        proxy = Readthru(tmp_path / f"again{i}", stack.upstream.port).start()
        with proxy.endpoint.raw() as c:
            proxy.proc.send_signal(signal.SIGTERM)
            _, closed = c.read_until_close(PROMPT)
            assert closed
        deadline = time.monotonic() + PROMPT
        while proxy.proc.poll() is None and time.monotonic() < deadline:
            try:
                proxy.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                break
        rc = proxy.stop(timeout=PROMPT)
        assert rc == 0, f"round {i}: exit code {rc}; stderr:\n{proxy.log()}"


def test_second_sigterm_during_the_drain_closes_clients_at_once(make_stack):
    # Neither the BLPOP nor the shutdown deadline would end the drain within PROMPT.
    stack = make_stack(shutdown_timeout="60s")
    proxy = stack.proxy
    direct = stack.direct.client()
    with stack.endpoint.raw() as c:
        c.send(encode("BLPOP", "never-pushed", "60"))  # a reply owed for up to a minute
        # The BLPOP is in flight once Redis counts a blocked client.
        wait_for(lambda: direct.info("clients")["blocked_clients"] == 1, PROMPT, "the BLPOP")
        direct.close()
        proxy.proc.send_signal(signal.SIGTERM)
        # The first SIGTERM is handled (a second one sent before could merge with it).
        wait_for(lambda: "SIGTERM received" in proxy.log(), PROMPT, "the first SIGTERM's log")
        time.sleep(0.5)
        assert proxy.proc.poll() is None, "readthru did not wait for the reply it owes"
        started = time.monotonic()
        proxy.proc.send_signal(signal.SIGTERM)
        _, closed = c.read_until_close(PROMPT)
        assert closed
    rc = proxy.stop(timeout=PROMPT)
    assert rc == 0, f"exit code {rc}; stderr:\n{proxy.log()}"
    assert time.monotonic() - started < PROMPT
    assert "again: closing every client now" in proxy.log()
