"""busy_poll: after an event readthru polls for the next one instead of sleeping, while few
clients are active. Replies stay right, the polling shows in INFO's busy_poll_hits, an idle
readthru sleeps, and a reload turns it on and off.

Real redis-server, real readthru, real clients (redis-benchmark, redis-py). Nothing here is
timed: the hits and the CPU an idle process uses are what is asserted.
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest

import harness

pytestmark = pytest.mark.proxy_only

CLK_TCK = os.sysconf("SC_CLK_TCK")


def hits(endpoint) -> int:
    return harness.info_field(endpoint, "busy_poll_hits")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def one_client_round_trips(endpoint, n: int = 2000) -> None:
    """One client, one request at a time: the case busy polling is for."""
    out = subprocess.run(
        ["redis-benchmark", "-h", endpoint.host, "-p", str(endpoint.port), "-c", "1", "-n",
         str(n), "-t", "set,get", "-r", "1000", "-q"],
        capture_output=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_one_client_is_served_by_polling_with_right_replies(make_stack):
    stack = make_stack(busy_poll=200)
    r = stack.endpoint.client()
    for i in range(300):  # each reply checked: a spin must not mix anything up
        assert r.set(f"bp:{i}", f"v{i}") is True
        assert r.get(f"bp:{i}") == f"v{i}".encode()
        assert r.incr("bp:n") == i + 1
    pipe = r.pipeline(transaction=False)
    for i in range(300):
        pipe.get(f"bp:{i}")
    assert pipe.execute() == [f"v{i}".encode() for i in range(300)]
    before = hits(stack.endpoint)
    one_client_round_trips(stack.endpoint)
    assert hits(stack.endpoint) > before


def test_idle_readthru_sleeps_after_polling(make_stack):
    """After traffic stops the spin ends within busy_poll (1 ms here): a second of idleness
    costs about no CPU, where a loop that kept spinning would use the whole second."""
    stack = make_stack(busy_poll=1000)
    one_client_round_trips(stack.endpoint, 1000)
    assert hits(stack.endpoint) > 0
    time.sleep(0.2)
    pid = stack.proxy.pid
    start = cpu_seconds(pid)
    time.sleep(1.0)
    used = cpu_seconds(pid) - start
    assert used < 0.3, f"readthru used {used:.2f} s of CPU in 1 s with no client active"


def test_off_by_default(make_stack):
    stack = make_stack()
    one_client_round_trips(stack.endpoint, 500)
    assert hits(stack.endpoint) == 0


def test_reload_turns_busy_polling_on_and_off(make_stack):
    stack = make_stack(busy_poll=0)
    proxy = stack.proxy
    one_client_round_trips(stack.endpoint, 500)
    assert hits(stack.endpoint) == 0

    def reload(value: int) -> None:
        harness.write_config(proxy.config, listen_port=proxy.port,
                             upstream_port=stack.upstream.port, busy_poll=value)
        with stack.endpoint.raw() as c:
            assert c.command("READTHRU", "RELOAD") == b"OK"

    reload(200)
    assert "busy_poll 0 -> 200" in proxy.log()
    one_client_round_trips(stack.endpoint, 1000)
    on = hits(stack.endpoint)
    assert on > 0
    # Off at once, though one client keeps readthru busy: the reply to the reload ends the spin.
    reload(0)
    assert "busy_poll 200 -> 0" in proxy.log()
    off = hits(stack.endpoint)
    one_client_round_trips(stack.endpoint, 1000)
    assert hits(stack.endpoint) == off
