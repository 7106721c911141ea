"""Clients that vanish mid-pipeline or in a pinned state (blocked, subscribed, in MULTI) leave
readthru serving everyone else, with no stray replies and no leaked upstream connections."""

import socket
import struct
import threading
import time

import pytest

from resp_client import RespError, encode

WAIT = 10.0
BIG = b"B" * (256 * 1024)


def pipeline_bytes(tag: str) -> bytes:
    """5000 commands: small writes, 256 KB writes and reads of those large values."""
    parts = []
    for i in range(5000):
        if i % 100 == 0:
            parts.append(encode("SET", f"{tag}:big:{i}", BIG))
        elif i % 100 == 50:
            parts.append(encode("GET", f"{tag}:big:{i - 50}"))
        elif i % 3 == 0:
            parts.append(encode("INCR", f"{tag}:n"))
        else:
            parts.append(encode("SET", f"{tag}:k:{i % 97}", f"v{i}"))
    return b"".join(parts)


def connected_clients(upstream) -> int:
    client = upstream.client()
    try:
        return int(client.info("clients")["connected_clients"])
    finally:
        client.close()


def wait_until(predicate, timeout: float = WAIT, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def abandon(proxy, payload: bytes, how: str) -> None:
    sock = socket.create_connection((proxy.host, proxy.port), timeout=5)
    if how == "truncated":
        payload = payload[: len(payload) // 2 + 12345]  # ends inside a request
    try:
        sock.sendall(payload)  # never reads a reply
    except (socket.timeout, ConnectionError):
        pass  # readthru may stop reading a client that does not read: that is fine
    if how == "reset":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class Pinger(threading.Thread):
    """Another client that keeps being served (bounded count and time)."""

    def __init__(self, proxy):
        super().__init__(daemon=True)
        self.proxy = proxy
        self.stop = threading.Event()
        self.count = 0
        self.error: BaseException | None = None

    def run(self):
        try:
            with self.proxy.raw(timeout=WAIT) as c:
                deadline = time.monotonic() + 60
                while not self.stop.is_set() and time.monotonic() < deadline and self.count < 100000:
                    value = f"ping-{self.count}"
                    assert c.command("ECHO", value) == value.encode()
                    self.count += 1
        except BaseException as exc:  # reported by the test
            self.error = exc


@pytest.mark.parametrize("how", ["close", "reset", "truncated"])
def test_client_vanishing_mid_pipeline_leaves_others_served(proxy, upstream, how):
    baseline = connected_clients(upstream)
    pinger = Pinger(proxy)
    pinger.start()
    try:
        for round_ in range(3):
            abandon(proxy, pipeline_bytes(f"{how}{round_}"), how)
            before = pinger.count
            wait_until(lambda: pinger.count > before + 10 or pinger.error, what="pinger progress")
            assert pinger.error is None, pinger.error
    finally:
        pinger.stop.set()
        pinger.join(timeout=WAIT)
    assert pinger.error is None, pinger.error

    # A new client gets exactly its own replies: nothing left over from the abandoned pipelines.
    with proxy.raw() as c:
        assert c.command("PING") == b"PONG"
        c.send(b"".join(encode("ECHO", f"fresh-{i}") for i in range(300)))
        assert [c.read_reply() for _ in range(300)] == [f"fresh-{i}".encode() for i in range(300)]
        info = c.command("INFO", "clients")
        assert not isinstance(info, RespError) and b"connected_clients:" in info
    # The abandoned clients' upstream resources are released (the pinger's own is gone too).
    wait_until(
        lambda: connected_clients(upstream) <= baseline + 2,
        what=f"upstream connections back near {baseline}",
    )


def test_disconnect_while_blocked_does_not_swallow_later_push(proxy, upstream, r):
    """A BLPOP client that left must not take the next element (a ghost pinned connection would)."""
    c = proxy.raw()
    c.send_command("BLPOP", "ghost-q", "0")
    direct = upstream.client()
    try:
        wait_until(lambda: int(direct.info("clients")["blocked_clients"]) == 1, what="BLPOP blocked")
        c.close()
        wait_until(lambda: int(direct.info("clients")["blocked_clients"]) == 0, what="unblocked")
        assert r.rpush("ghost-q", "job") == 1
        time.sleep(0.2)
        assert direct.lrange("ghost-q", 0, -1) == [b"job"]
    finally:
        direct.close()


@pytest.mark.parametrize(
    "state",
    [
        [("SUBSCRIBE", "chan")],
        [("PSUBSCRIBE", "pat.*")],
        [("MULTI",), ("SET", "never", "1")],
        [("WATCH", "w"), ("GET", "w")],
        [("SELECT", "3"), ("SET", "db3", "1")],
        [("CLIENT", "REPLY", "OFF")],
    ],
    ids=["subscribe", "psubscribe", "multi", "watch", "select", "client_reply_off"],
)
def test_disconnect_in_pinned_state_releases_upstream_connection(proxy, upstream, r, state):
    baseline = connected_clients(upstream)
    for _ in range(5):
        c = proxy.raw()
        for cmd in state:
            c.send_command(*cmd)
        time.sleep(0.05)
        c.close()
    # Each pinned client needs its own upstream connection while it lives; none may outlive it.
    wait_until(
        lambda: connected_clients(upstream) <= baseline,
        what=f"upstream connections back to {baseline} (now {connected_clients(upstream)})",
    )
    assert r.get("never") is None
    assert r.publish("chan", "x") == 0
    assert r.ping() is True
