"""Per-connection state through readthru: CLIENT REPLY, QUIT, RESET, client names, protocol
switches in the middle of a pipeline, pinned states entered and left inside one write, MONITOR,
client-side caching invalidations and keyspace notifications."""

import time

from resp_client import Push, RespError, encode, split_replies


def transcript(endpoint, data: bytes, replies: int) -> list[bytes]:
    endpoint.client().flushall()
    with endpoint.raw() as c:
        c.send(data)
        out = c.read_raw_replies(replies)
        out.append(c.raw_command("ECHO", "end"))  # nothing more was owed
        return out


def same_as_redis(proxy, upstream, commands: list[tuple], replies: int) -> list[bytes]:
    data = b"".join(encode(*c) for c in commands)
    want = transcript(upstream, data, replies)
    got = transcript(proxy, data, replies)
    assert got == want
    return want


def test_client_reply_off_skip_on_suppress_replies_like_redis(proxy, upstream):
    commands = [
        ("CLIENT", "REPLY", "SKIP"),  # no reply to itself
        ("SET", "a", "1"),  # skipped
        ("GET", "a"),
        ("CLIENT", "REPLY", "OFF"),
        ("SET", "b", "2"),
        ("INCR", "b"),
        ("NOSUCH",),  # even errors are suppressed
        ("CLIENT", "REPLY", "ON"),  # +OK
        ("GET", "b"),
    ]
    want = same_as_redis(proxy, upstream, commands, 3)
    assert want[:3] == [b"$1\r\n1\r\n", b"+OK\r\n", b"$1\r\n3\r\n"]


def test_quit_replies_ok_closes_and_ignores_what_follows(proxy, upstream, direct_r):
    for endpoint in (upstream, proxy):
        direct_r.delete("after-quit")
        with endpoint.raw() as c:
            c.send(encode("SET", "before-quit", "1") + encode("QUIT") + encode("SET", "after-quit", "1"))
            data, closed = c.read_until_close(10)
            assert (data, closed) == (b"+OK\r\n+OK\r\n", True)
        assert direct_r.get("before-quit") == b"1"
        assert direct_r.get("after-quit") is None


def test_reset_leaves_multi_select_and_resp3(proxy, upstream):
    commands = [
        ("SELECT", "2"),
        ("SET", "k", "db2"),
        ("MULTI",),
        ("SET", "k", "queued"),
        ("RESET",),
        ("GET", "k"),  # db 0 again, and the MULTI was discarded
        ("EXEC",),
    ]
    want = same_as_redis(proxy, upstream, commands, len(commands))
    assert want[4] == b"+RESET\r\n" and want[5] == b"$-1\r\n"
    with proxy.raw() as c:
        assert c.command("HELLO", "3")[b"proto"] == 3
        assert c.raw_command("RESET") == b"+RESET\r\n"
        c.command("HSET", "h", "f", "v")
        assert c.raw_command("HGETALL", "h") == b"*2\r\n$1\r\nf\r\n$1\r\nv\r\n"  # RESP2 again


def test_client_names_are_per_connection(proxy):
    a, b = proxy.raw(), proxy.raw()
    try:
        assert a.raw_command("CLIENT", "GETNAME") == b"$-1\r\n"
        assert a.command("CLIENT", "SETNAME", "alpha") == b"OK"
        assert b.command("CLIENT", "SETNAME", "beta") == b"OK"
        assert a.command("CLIENT", "GETNAME") == b"alpha"
        assert b.command("CLIENT", "GETNAME") == b"beta"
        assert a.command("CLIENT", "SETNAME", "") == b"OK"
        assert a.raw_command("CLIENT", "GETNAME") == b"$-1\r\n"
        err = a.command("CLIENT", "SETNAME", "bad name")
        assert isinstance(err, RespError) and err.code == b"ERR"
    finally:
        a.close()
        b.close()


def test_protocol_switch_inside_one_pipeline(proxy, upstream):
    """Each reply is encoded in the protocol in force when its command was sent."""
    setup = encode("HSET", "h", "f", "v") + encode("SADD", "s", "1")
    body = [
        ("HGETALL", "h"),
        ("HELLO", "3"),
        ("HGETALL", "h"),
        ("SMEMBERS", "s"),
        ("GET", "nope"),
        ("HELLO", "2"),
        ("HGETALL", "h"),
        ("GET", "nope"),
    ]

    def run(endpoint):
        endpoint.client().flushall()
        with endpoint.raw() as c:
            c.send(setup)
            c.read_raw_replies(2)
            c.send(b"".join(encode(*cmd) for cmd in body))
            replies = c.read_raw_replies(len(body))
        return [r for cmd, r in zip(body, replies) if cmd[0] != "HELLO"]  # HELLO carries the id

    want = run(upstream)
    assert want[1].startswith(b"%1\r\n") and want[3] == b"_\r\n" and want[5] == b"$-1\r\n"
    assert run(proxy) == want


def test_resp2_and_resp3_clients_interleaved(proxy, direct_r):
    direct_r.hset("h", mapping={"a": "1"})
    v2 = [proxy.raw() for _ in range(5)]
    v3 = [proxy.raw() for _ in range(5)]
    try:
        for c in v3:
            assert c.command("HELLO", "3")[b"proto"] == 3
        for _ in range(3):
            for c in v2 + v3:
                c.send(encode("HGETALL", "h") * 50 + encode("GET", "nope") * 50)
            for c in v2:
                replies = c.read_raw_replies(100)
                assert replies == [b"*2\r\n$1\r\na\r\n$1\r\n1\r\n"] * 50 + [b"$-1\r\n"] * 50
            for c in v3:
                replies = c.read_raw_replies(100)
                assert replies == [b"%1\r\n$1\r\na\r\n$1\r\n1\r\n"] * 50 + [b"_\r\n"] * 50
    finally:
        for c in v2 + v3:
            c.close()


def test_pinned_states_entered_and_left_inside_one_write(proxy, upstream):
    commands = [
        ("SET", "x", "0"),
        ("SELECT", "1"),
        ("SET", "x", "db1"),
        ("SELECT", "0"),
        ("GET", "x"),
        ("MULTI",),
        ("INCR", "x"),
        ("EXEC",),
        ("RPUSH", "q", "a"),
        ("BLPOP", "q", "0"),
        ("GET", "x"),
        ("WATCH", "x"),
        ("UNWATCH",),
        ("SELECT", "1"),
        ("GET", "x"),
        ("SELECT", "0"),
        ("PING",),
    ]
    want = same_as_redis(proxy, upstream, commands, len(commands))
    assert want[4] == b"$1\r\n0\r\n" and want[14] == b"$3\r\ndb1\r\n"


def test_subscribe_after_pipelined_commands_and_back(proxy, upstream, direct_r):
    commands = [("SET", "a", "1"), ("GET", "a"), ("SUBSCRIBE", "ch1", "ch2"), ("PING",),
                ("UNSUBSCRIBE",)]

    def run(endpoint):
        direct_r.flushall()
        with endpoint.raw() as c:
            c.send(b"".join(encode(*cmd) for cmd in commands))
            out = c.read_raw_replies(7)
            out.append(c.raw_command("GET", "a"))
        deadline = time.monotonic() + 10
        while dict(direct_r.pubsub_numsub("ch1", "ch2")) != {b"ch1": 0, b"ch2": 0}:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        return out

    want = run(upstream)
    assert want[-1] == b"$1\r\n1\r\n"
    assert run(proxy) == want


def test_monitor_sees_commands_from_other_clients(proxy, r):
    with proxy.raw() as mon:
        assert mon.command("MONITOR") == b"OK"
        time.sleep(0.1)
        r.set("monitored-key", "monitored-value")
        deadline = time.monotonic() + 10
        seen = b""
        while b'"monitored-key"' not in seen:
            assert time.monotonic() < deadline, seen
            line = mon.read_reply()
            seen += bytes(line) + b"\n"
        assert b'"SET" "monitored-key" "monitored-value"' in seen


def test_client_tracking_invalidation_push(proxy, r):
    with proxy.raw() as c:
        assert c.command("HELLO", "3")[b"proto"] == 3
        assert c.command("CLIENT", "TRACKING", "ON") == b"OK"
        r.set("tracked", "v1")
        assert c.command("GET", "tracked") == b"v1"
        r.set("tracked", "v2")  # another client changes the key
        push = c.read_reply()
        assert isinstance(push, Push) and push == [b"invalidate", [b"tracked"]]
        assert c.command("GET", "tracked") == b"v2"
        assert c.command("CLIENT", "TRACKING", "OFF") == b"OK"


def test_keyspace_notifications_reach_a_subscriber(proxy, r, direct_r):
    direct_r.config_set("notify-keyspace-events", "KEA")
    try:
        with proxy.raw() as sub:
            sub.send_command("PSUBSCRIBE", "__keyevent@0__:*")
            assert sub.read_reply() == [b"psubscribe", b"__keyevent@0__:*", 1]
            r.set("notified", "1")
            msg = sub.read_reply()
            assert msg == [b"pmessage", b"__keyevent@0__:*", b"__keyevent@0__:set", b"notified"]
    finally:
        direct_r.config_set("notify-keyspace-events", "")


def test_wait_and_other_rarely_proxied_commands_match_redis(proxy, upstream):
    commands = [
        ("WAIT", "0", "0"),
        ("ECHO", ""),
        ("TOUCH", "a", "b"),
        ("LOLWUT", "VERSION", "5", "1", "1", "1"),
        ("OBJECT", "HELP"),
        ("CLIENT", "HELP"),
        ("XINFO", "HELP"),
        ("READONLY",),
        ("READWRITE",),
    ]
    replies = same_as_redis(proxy, upstream, commands, len(commands))
    assert replies[0] == b":0\r\n"
    assert len(split_replies(b"".join(replies))) == len(commands) + 1


def test_very_many_arguments_and_deep_nesting(proxy, upstream):
    keys = [f"k{i}" for i in range(10000)]
    mset = ["MSET"] + [x for k in keys[:5000] for x in (k, "v")]
    deep = "local t = {'leaf'} for i = 1, 60 do t = {t} end return t"
    commands = [tuple(mset), ("DEL", *keys), ("EVAL", deep, "0"), ("MGET", *keys[:3000])]
    want = same_as_redis(proxy, upstream, commands, len(commands))
    assert want[1] == b":5000\r\n"
    assert want[2].startswith(b"*1\r\n" * 60)
