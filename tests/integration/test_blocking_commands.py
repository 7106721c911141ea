"""Blocking commands through readthru: woken by another client, or timing out with nil."""

import threading
import time


def wait_blocked(upstream, count: int, timeout: float = 10.0) -> None:
    """Waits until redis-server itself has `count` clients blocked (whoever forwarded them)."""
    client = upstream.client()
    try:
        deadline = time.monotonic() + timeout
        while int(client.info("clients")["blocked_clients"]) != count:
            assert time.monotonic() < deadline, f"never saw {count} blocked clients"
            time.sleep(0.02)
    finally:
        client.close()


def test_blpop_is_woken_by_push_from_another_client(proxy, r):
    with proxy.raw() as blocked:
        started = time.monotonic()
        blocked.send_command("BLPOP", "queue", "10")
        time.sleep(0.3)  # let it block
        assert r.rpush("queue", "job-1") == 1
        assert blocked.read_reply() == [b"queue", b"job-1"]
        assert time.monotonic() - started < 5
        assert blocked.command("PING") == b"PONG"  # the connection is usable afterwards
    assert r.llen("queue") == 0


def test_blpop_times_out_with_nil_after_about_one_second(proxy):
    with proxy.raw() as c:
        started = time.monotonic()
        c.send_command("BLPOP", "empty", "1")
        assert c.read_raw_reply() == b"*-1\r\n"
        elapsed = time.monotonic() - started
        assert 0.9 <= elapsed < 4.0, elapsed
        assert c.command("PING") == b"PONG"


def test_blocked_client_does_not_stall_other_clients(proxy, r):
    with proxy.raw() as blocked:
        blocked.send_command("BLPOP", "slow", "5")
        time.sleep(0.1)
        started = time.monotonic()
        for i in range(200):
            assert r.set(f"k{i}", i) is True
        assert time.monotonic() - started < 4.0
        r.lpush("slow", "done")
        assert blocked.read_reply() == [b"slow", b"done"]


def test_several_blpop_clients_are_served_in_arrival_order(proxy, upstream, r):
    waiters = [proxy.raw() for _ in range(3)]
    try:
        for n, w in enumerate(waiters, start=1):
            w.send_command("BLPOP", "fifo", "10")
            wait_blocked(upstream, n)  # redis serves blocked clients first come, first served
        r.rpush("fifo", "a", "b", "c")
        assert [w.read_reply() for w in waiters] == [
            [b"fifo", b"a"],
            [b"fifo", b"b"],
            [b"fifo", b"c"],
        ]
    finally:
        for w in waiters:
            w.close()


def test_redis_py_brpop_and_blmove_in_threads(proxy, r):
    results = {}

    def consumer():
        client = proxy.client()
        try:
            results["brpop"] = client.brpop(["a", "b"], timeout=10)
            results["blmove"] = client.blmove("src", "dst", 10, "LEFT", "RIGHT")
        finally:
            client.close()

    t = threading.Thread(target=consumer)
    t.start()
    time.sleep(0.3)
    r.lpush("b", "x")
    time.sleep(0.3)
    r.rpush("src", "moved")
    t.join(timeout=20)
    assert not t.is_alive()
    assert results == {"brpop": (b"b", b"x"), "blmove": b"moved"}
    assert r.lrange("dst", 0, -1) == [b"moved"]


def test_xread_block_gets_new_entry(proxy, upstream, r):
    with proxy.raw() as c:
        c.send_command("XREAD", "BLOCK", "10000", "STREAMS", "events", "$")
        wait_blocked(upstream, 1)  # "$" means entries added after the XREAD arrives
        r.xadd("events", {"f": "v"}, id="5-1")
        assert c.read_reply() == [[b"events", [[b"5-1", [b"f", b"v"]]]]]
        c.send_command("XREAD", "BLOCK", "200", "STREAMS", "events", "$")
        assert c.read_raw_reply() == b"*-1\r\n"
