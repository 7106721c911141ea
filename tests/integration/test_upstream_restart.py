"""Losing the upstream: in-flight and new commands get Redis-style errors, nobody hangs, and
readthru recovers by itself once redis-server is back on the same port."""

import threading
import time

import pytest

from harness import RedisServer
from resp_client import RespError

pytestmark = pytest.mark.proxy_only

CLIENT_TIMEOUT = 5.0  # a reply slower than this counts as a hang
RECOVERY = 10.0  # from redis-server being back to the first command that succeeds
SETTLE = 2.0  # after that, every command succeeds


class Load(threading.Thread):
    """One client looping SET/GET, recording every outcome (bounded in count and time)."""

    def __init__(self, endpoint):
        super().__init__(daemon=True)
        self.endpoint = endpoint
        self.stop = threading.Event()
        # (when the command was sent, "ok"|"error"|"hang"|"closed", reply). Send time, not receive
        # time: a reply read late on a busy machine still belongs to when its command went out.
        self.outcomes: list[tuple[float, str, object]] = []

    def run(self):
        deadline = time.monotonic() + 90
        try:
            conn = self.endpoint.raw(timeout=CLIENT_TIMEOUT)
        except OSError as exc:
            self.outcomes.append((time.monotonic(), "closed", exc))
            return
        with conn:
            i = 0
            while not self.stop.is_set() and time.monotonic() < deadline and i < 500_000:
                cmd = ("SET", f"load:{i % 10}", str(i)) if i % 2 == 0 else ("GET", f"load:{i % 10}")
                sent = time.monotonic()
                try:
                    reply = conn.command(*cmd)
                except TimeoutError as exc:
                    self.outcomes.append((sent, "hang", f"{cmd}: {exc}"))
                    return
                except (ConnectionError, OSError) as exc:
                    self.outcomes.append((sent, "closed", f"{cmd}: {exc}"))
                    return
                kind = "error" if isinstance(reply, RespError) else "ok"
                self.outcomes.append((sent, kind, reply))
                if kind == "error":
                    time.sleep(0.01)  # errors come back fast; keep the record small
                i += 1

    def kinds(self, since: float = 0.0) -> list[str]:
        return [k for t, k, _ in self.outcomes if t >= since]


def restart_upstream(stack, port: int) -> None:
    stack.upstream = RedisServer(stack.upstream.workdir, port=port).start()


def wait_recovered(endpoint, timeout: float = RECOVERY) -> float:
    """Seconds until a SET/GET through readthru succeeds again."""
    started = time.monotonic()
    last = None
    while time.monotonic() - started < timeout:
        try:
            with endpoint.raw(timeout=CLIENT_TIMEOUT) as c:
                last = c.command("SET", "recovered", "yes")
                if last == b"OK" and c.command("GET", "recovered") == b"yes":
                    return time.monotonic() - started
        except (OSError, ConnectionError) as exc:
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"readthru did not recover within {timeout}s; last reply {last!r}")


def test_upstream_killed_and_restarted_mid_load(make_stack):
    stack = make_stack()
    endpoint, port = stack.endpoint, stack.upstream.port
    loads = [Load(endpoint) for _ in range(4)]
    for load in loads:
        load.start()
    try:
        deadline = time.monotonic() + 10
        while not all("ok" in load.kinds() for load in loads):
            assert time.monotonic() < deadline, "load never succeeded before the kill"
            time.sleep(0.05)
        time.sleep(0.3)

        stack.upstream.kill()  # SIGKILL: connections drop with commands in flight
        killed_at = time.monotonic()
        time.sleep(0.5)

        # New commands while redis-server is down: an immediate error, not a hang.
        with endpoint.raw(timeout=CLIENT_TIMEOUT) as c:
            for cmd in (("GET", "x"), ("SET", "x", "1"), ("PING",)):
                started = time.monotonic()
                reply = c.raw_command(*cmd)
                assert reply.startswith(b"-ERR upstream unavailable"), (cmd, reply)
                assert time.monotonic() - started < CLIENT_TIMEOUT
            c.send(b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n" * 20)  # a pipeline gets 20 errors, in order
            assert all(r.startswith(b"-ERR upstream unavailable") for r in c.read_raw_replies(20))

        time.sleep(1.0)
        down_until = time.monotonic()  # redis-server is certainly down until here
        restart_upstream(stack, port)
        restarted_at = time.monotonic()
        took = wait_recovered(endpoint)
        assert took < RECOVERY
        time.sleep(SETTLE + 1.0)  # the load runs on the new upstream for a while
    finally:
        for load in loads:
            load.stop.set()
        for load in loads:
            load.join(timeout=30)

    for n, load in enumerate(loads):
        bad = [(t - killed_at, k, v) for t, k, v in load.outcomes if k in ("hang", "closed")]
        assert not bad, f"client {n} hung or was disconnected: {bad[:3]}"
        errors = [v for _, k, v in load.outcomes if k == "error"]
        assert errors, f"client {n} saw no error while redis-server was down"
        assert all(e.code == b"ERR" for e in errors), {bytes(e) for e in errors}
        during = [k for t, k, _ in load.outcomes if killed_at + 0.2 <= t <= down_until]
        assert "error" in during and "ok" not in during
        assert load.kinds()[-1] == "ok", "client did not recover on the same connection"
        assert load.kinds(since=restarted_at + took + SETTLE).count("error") == 0


def test_blocked_client_gets_error_when_upstream_dies(make_stack):
    stack = make_stack()
    endpoint, port = stack.endpoint, stack.upstream.port
    with endpoint.raw(timeout=CLIENT_TIMEOUT) as blocked:
        blocked.send_command("BLPOP", "never", "0")
        direct = stack.direct.client()
        deadline = time.monotonic() + 10
        while int(direct.info("clients")["blocked_clients"]) != 1:
            assert time.monotonic() < deadline, "BLPOP never blocked upstream"
            time.sleep(0.05)
        direct.close()
        stack.upstream.kill()
        reply = blocked.read_reply()  # within CLIENT_TIMEOUT, or the socket times out
        assert isinstance(reply, RespError) and reply.code == b"ERR", reply
        restart_upstream(stack, port)
        wait_recovered(endpoint)
        deadline = time.monotonic() + RECOVERY
        while True:
            reply = blocked.command("PING")
            if reply == b"PONG":
                break
            assert isinstance(reply, RespError) and reply.code == b"ERR", reply
            assert time.monotonic() < deadline, "the blocked client's connection never recovered"
            time.sleep(0.1)


def test_data_written_after_recovery_lands_in_new_upstream(make_stack):
    stack = make_stack()
    endpoint, port = stack.endpoint, stack.upstream.port
    client = endpoint.client()
    try:
        client.set("before", "1")
        stack.upstream.kill()
        restart_upstream(stack, port)
        wait_recovered(endpoint)
        assert stack.direct.client().get("before") is None  # no persistence: a fresh server
        time.sleep(SETTLE)  # every shared upstream connection has had time to reconnect
        for i in range(100):
            assert client.set(f"after:{i}", i) is True
        assert stack.direct.client().dbsize() == 101  # 100 + "recovered"
    finally:
        client.close()


def retry_until_ok(conn, *cmd, timeout: float = RECOVERY):
    """Sends cmd until it stops failing with ERR (readthru reconnecting); returns that reply."""
    deadline = time.monotonic() + timeout
    while True:
        reply = conn.command(*cmd)
        if not (isinstance(reply, RespError) and reply.code == b"ERR"):
            return reply
        assert time.monotonic() < deadline, f"{cmd} kept failing: {reply!r}"
        time.sleep(0.1)


def test_selected_db_client_never_writes_to_db0_after_upstream_restart(make_stack):
    """A client that chose db 3 either keeps db 3 after the reconnect or is disconnected (its
    connection state is gone, as with a direct redis-server dying); its writes never land in db 0."""
    stack = make_stack()
    endpoint, port = stack.endpoint, stack.upstream.port
    c = endpoint.raw(timeout=CLIENT_TIMEOUT)
    try:
        assert c.command("SELECT", "3") == b"OK"
        assert c.command("SET", "before", "1") == b"OK"
        stack.upstream.kill()
        restart_upstream(stack, port)
        wait_recovered(endpoint)
        try:
            reply = retry_until_ok(c, "SET", "after", "1")
        except ConnectionError:
            reply = None  # disconnected: acceptable, the client reconnects and re-selects
        if reply is not None:
            assert reply == b"OK", reply
            assert c.command("GET", "after") == b"1"
    finally:
        c.close()
    db0, db3 = stack.direct.client(db=0), stack.direct.client(db=3)
    try:
        assert db0.get("after") is None
        assert db3.get("after") == (b"1" if reply is not None else None)
    finally:
        db0.close()
        db3.close()


def test_resp3_client_keeps_resp3_across_upstream_restart(make_stack):
    stack = make_stack()
    endpoint, port = stack.endpoint, stack.upstream.port
    with endpoint.raw(timeout=CLIENT_TIMEOUT) as c:
        assert c.command("HELLO", "3")[b"proto"] == 3
        stack.upstream.kill()
        restart_upstream(stack, port)
        wait_recovered(endpoint)
        stack.direct.client().hset("h", "f", "v")
        retry_until_ok(c, "PING")
        c.send_command("HGETALL", "h")
        assert c.read_raw_reply() == b"%1\r\n$1\r\nf\r\n$1\r\nv\r\n"
        assert c.raw_command("GET", "missing") == b"_\r\n"


def test_transaction_cut_by_upstream_loss_is_not_applied_and_not_stuck(make_stack):
    """EXEC after the upstream died mid-transaction: an error reply or a closed connection, never
    the queued writes applied later, and a client that stays connected is not left in MULTI."""
    stack = make_stack()
    endpoint, port = stack.endpoint, stack.upstream.port
    c = endpoint.raw(timeout=CLIENT_TIMEOUT)
    try:
        assert c.command("MULTI") == b"OK"
        assert c.command("SET", "tx", "1") == b"QUEUED"
        stack.upstream.kill()
        time.sleep(0.3)
        try:
            reply = c.command("EXEC")
        except ConnectionError:
            reply = None
        if reply is not None:
            assert isinstance(reply, RespError) and reply.code in (b"ERR", b"EXECABORT"), reply
        restart_upstream(stack, port)
        wait_recovered(endpoint)
        if reply is not None:
            reply = retry_until_ok(c, "SET", "plain", "1")
            assert reply == b"OK", f"client still in MULTI after the upstream loss: {reply!r}"
    finally:
        c.close()
    with endpoint.raw() as fresh:
        assert fresh.command("GET", "tx") is None
