"""Dedicated upstream connections are reused: a client that alternates blocking and plain commands
does not open a new upstream connection for every blocking call."""

import pytest

pytestmark = pytest.mark.proxy_only


def connections_received(direct_r) -> int:
    return int(direct_r.info("stats")["total_connections_received"])


def test_alternating_blpop_and_get_reuses_dedicated_connections(r, direct_r):
    r.ping()
    before = connections_received(direct_r)
    for i in range(50):
        r.rpush("jobs", i)
        assert r.blpop("jobs", timeout=1) == (b"jobs", str(i).encode())
        r.set("done", i)
        assert r.get("done") == str(i).encode()
    opened = connections_received(direct_r) - before
    # One for the first BLPOP and a handful at most; never one per BLPOP.
    assert opened <= 3, f"{opened} upstream connections for 50 BLPOPs"


def test_reused_connection_carries_no_state_from_its_last_client(proxy, direct_r):
    first = proxy.client()
    first.execute_command("CLIENT", "SETNAME", "first")
    first.blpop("nothing", timeout=0.1)  # pins; the name makes the connection unfit for reuse
    first.get("x")
    second = proxy.client()
    second.blpop("nothing", timeout=0.1)
    names = [c.get("name", "") for c in direct_r.client_list()]
    assert names.count("first") <= 1
    # The second client is still in db 0 with no name on its side.
    assert second.execute_command("CLIENT", "GETNAME") is None
    second.set("k", "v")
    assert direct_r.get("k") == b"v"
