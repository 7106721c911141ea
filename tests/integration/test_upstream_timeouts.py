"""Upstream command timeout: a shared connection whose oldest request waits past command_timeout is
declared dead; every request on it gets an error at once and it reconnects."""

import time

import pytest

from resp_client import RespError

pytestmark = pytest.mark.proxy_only


# command_timeout: long enough that readthru descheduled for a moment on a busy machine does not
# trip it (after a stall the loop runs its timers before it reads a reply already in the socket);
# the pause far longer still, so that only the timeout can answer the stuck request.
TIMEOUT_MS = 1000
PAUSE_MS = 5000


def test_request_stuck_upstream_gets_timeout_error_and_service_resumes(make_stack):
    stack = make_stack(connections=1, upstream_extra=f'command_timeout = "{TIMEOUT_MS}ms"\n')
    direct = stack.direct.client()
    with stack.endpoint.raw(timeout=10) as c:
        assert c.command("PING") == b"PONG"
        direct.execute_command("CLIENT", "PAUSE", str(PAUSE_MS), "ALL")
        started = time.monotonic()
        reply = c.command("GET", "k")
        waited = time.monotonic() - started
        assert isinstance(reply, RespError) and bytes(reply).startswith(b"ERR upstream"), reply
        assert waited < (PAUSE_MS - 500) / 1000, f"the timeout took {waited:.2f}s"
        deadline = time.monotonic() + 10 + PAUSE_MS / 1000
        while True:
            reply = c.command("PING")
            if reply == b"PONG":
                break
            assert isinstance(reply, RespError), reply
            assert time.monotonic() < deadline, "service did not resume"
            time.sleep(0.1)
