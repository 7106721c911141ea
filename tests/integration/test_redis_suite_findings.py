"""Behaviours found by running Redis's own test suite through readthru (external-server mode), each
checked against redis-server directly where the two can be compared."""

import threading
import time

import pytest

from resp_client import RespError

pytestmark = pytest.mark.proxy_only


def test_subscribe_confirmations_arrive_with_client_reply_off(proxy, upstream):
    for endpoint in (upstream, proxy):
        with endpoint.raw(timeout=5) as c:
            c.send_command("CLIENT", "REPLY", "OFF")
            c.send_command("PSUBSCRIBE", "*")
            assert c.read_reply() == [b"psubscribe", b"*", 1]
            endpoint.client().publish("ch", "hi")
            assert c.read_reply() == [b"pmessage", b"*", b"ch", b"hi"]


def test_client_unblock_with_the_id_a_pinned_client_reports(proxy):
    blocked = proxy.raw(timeout=10)
    try:
        assert blocked.command("SELECT", "0") == b"OK"
        assert blocked.command("WATCH", "w") == b"OK"  # pinned from here on
        client_id = blocked.command("CLIENT", "ID")
        assert blocked.command("UNWATCH") == b"OK"
        blocked.send_command("BLPOP", "nothing", "0")
        other = proxy.client()
        deadline = time.monotonic() + 5
        while other.execute_command("CLIENT", "UNBLOCK", client_id) != 1:
            assert time.monotonic() < deadline, "CLIENT UNBLOCK never found the blocked client"
            time.sleep(0.05)
        assert blocked.read_reply() is None
    finally:
        blocked.close()


def test_readthru_ids_never_name_an_upstream_connection(proxy, direct_r):
    r = proxy.client()
    my_id = r.execute_command("CLIENT", "ID")
    upstream_ids = {c["id"] for c in direct_r.client_list()}
    assert str(my_id) not in upstream_ids
    # Killing by that id can not take down somebody else's connection.
    assert r.execute_command("CLIENT", "KILL", "ID", my_id) == 0
    assert r.ping()


def test_script_kill_reaches_a_script_busy_on_a_shared_connection(proxy, direct_r):
    runner = proxy.raw(timeout=20)
    try:
        runner.send_command("EVAL", "while true do end", "0")
        deadline = time.monotonic() + 10
        killer = proxy.client()
        while True:
            try:
                if killer.execute_command("SCRIPT", "KILL") == b"OK":
                    break
            except Exception as exc:  # NOTBUSY until the script has started
                assert "NOTBUSY" in str(exc), exc
            assert time.monotonic() < deadline, "SCRIPT KILL never reached the busy script"
            time.sleep(0.1)
        reply = runner.read_reply()
        assert isinstance(reply, RespError) and b"killed" in bytes(reply).lower(), reply
        assert direct_r.ping()
    finally:
        runner.close()


def test_killing_readthrus_upstream_connections_does_not_refuse_new_commands(proxy, direct_r):
    r = proxy.client()
    assert r.ping()
    errors = []
    stop = threading.Event()

    def load():
        c = proxy.client()
        while not stop.is_set():
            try:
                c.ping()
            except Exception as exc:
                errors.append(str(exc))

    t = threading.Thread(target=load)
    t.start()
    try:
        time.sleep(0.2)
        direct_r.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        time.sleep(0.5)
    finally:
        stop.set()
        t.join(10)
    # In-flight requests may see "connection lost"; nothing may be refused as unavailable.
    assert not [e for e in errors if "unavailable" in e], errors[:3]
    assert r.ping()


def test_monitor_shows_the_commands_readthru_answers_itself_with_secrets_redacted(make_stack):
    # Redis's "MONITOR supports redacting command arguments" waits for these lines. With a
    # password of its own, readthru answers AUTH, HELLO AUTH and CLIENT SETNAME itself, so Redis
    # never sees them: through readthru only its MONITOR feed can show them.
    stack = make_stack(requirepass="feed-test-pass")
    seen = {}
    for endpoint in (stack.direct, stack.endpoint):
        # Connected (and, through readthru, authenticated) before MONITOR starts.
        with endpoint.raw(timeout=5) as c, endpoint.raw(timeout=5) as mon:
            assert mon.command("MONITOR") == b"OK"
            assert isinstance(c.command("AUTH", "not-real"), RespError)
            assert isinstance(c.command("AUTH", "not-real", "not-a-password"), RespError)
            assert isinstance(c.command("HELLO", "2", "AUTH", "not-real", "pw"), RespError)
            assert c.command("CLIENT", "SETNAME", 'quote"d') == b"OK"
            lines = [bytes(mon.read_reply()) for _ in range(4)]
        # "<time> [<db> <address>] <arguments>": the address is the connection Redis saw
        seen[endpoint] = [line.split(b"] ", 1)[1] for line in lines]
        assert all(line.split(b" ", 1)[1].startswith(b"[0 ") for line in lines), lines
    assert seen[stack.endpoint] == seen[stack.direct] == [
        b'"AUTH" "(redacted)"',
        b'"AUTH" "(redacted)" "(redacted)"',
        b'"HELLO" "2" "AUTH" "(redacted)" "(redacted)"',
        b'"CLIENT" "SETNAME" "quote\\"d"',
    ]
