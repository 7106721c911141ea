"""Upstream command timeout: a shared connection whose oldest request waits past command_timeout is
declared dead; every request on it gets an error at once and it reconnects."""

import time

import pytest

from resp_client import RespError

pytestmark = pytest.mark.proxy_only


def test_request_stuck_upstream_gets_timeout_error_and_service_resumes(make_stack):
    stack = make_stack(connections=1, upstream_extra='command_timeout = "300ms"\n')
    direct = stack.direct.client()
    with stack.endpoint.raw(timeout=10) as c:
        assert c.command("PING") == b"PONG"
        direct.execute_command("CLIENT", "PAUSE", "1500", "ALL")
        started = time.monotonic()
        reply = c.command("GET", "k")
        waited = time.monotonic() - started
        assert isinstance(reply, RespError) and bytes(reply).startswith(b"ERR upstream"), reply
        assert waited < 1.4, f"the timeout took {waited:.2f}s"
        deadline = time.monotonic() + 10
        while True:
            reply = c.command("PING")
            if reply == b"PONG":
                break
            assert isinstance(reply, RespError), reply
            assert time.monotonic() < deadline, "service did not resume"
            time.sleep(0.1)
