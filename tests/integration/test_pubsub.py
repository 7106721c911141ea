"""Pub/sub across clients through readthru, in RESP2 (redis-py and raw) and RESP3 (push frames)."""

import time

from resp_client import Push, RespConn

TIMEOUT = 10.0


def wait_message(pubsub, want_type: str, timeout: float = TIMEOUT) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = pubsub.get_message(timeout=max(0.01, deadline - time.monotonic()))
        if msg is not None and msg["type"] == want_type:
            return msg
        assert msg is None, f"unexpected message while waiting for {want_type}: {msg}"
    raise AssertionError(f"no {want_type} message within {timeout}s")


def wait_no_subscribers(client, *channels: str, patterns: int = 0, timeout: float = TIMEOUT):
    """Closing a subscriber is asynchronous on the server: wait until its subscriptions are gone."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts = dict(client.pubsub_numsub(*channels))
        if all(v == 0 for v in counts.values()) and client.pubsub_numpat() == patterns:
            return
        time.sleep(0.02)
    raise AssertionError(f"subscribers still present on {channels}")


def test_redis_py_subscribe_psubscribe_receive_and_unsubscribe(r, proxy):
    sub_client = proxy.client()
    p = sub_client.pubsub()
    try:
        p.subscribe("news")
        assert wait_message(p, "subscribe")["channel"] == b"news"
        p.psubscribe("sport.*")
        assert wait_message(p, "psubscribe")["channel"] == b"sport.*"

        assert r.publish("news", "hello") == 1
        msg = wait_message(p, "message")
        assert (msg["channel"], msg["data"]) == (b"news", b"hello")

        assert r.publish("sport.tennis", "ace") == 1
        msg = wait_message(p, "pmessage")
        assert (msg["pattern"], msg["channel"], msg["data"]) == (b"sport.*", b"sport.tennis", b"ace")

        binary = b"\x00\r\n\xff" * 1000
        assert r.publish("news", binary) == 1
        assert wait_message(p, "message")["data"] == binary

        p.unsubscribe("news")
        assert wait_message(p, "unsubscribe")["channel"] == b"news"
        assert r.publish("news", "nobody listens") == 0
        p.punsubscribe()
        assert wait_message(p, "punsubscribe")["channel"] == b"sport.*"
        assert r.publish("sport.golf", "x") == 0
    finally:
        p.close()
        sub_client.close()


def test_one_publish_reaches_every_subscriber_of_many(r, proxy):
    subs = [proxy.raw() for _ in range(10)]
    try:
        for i, s in enumerate(subs):
            s.send_command("SUBSCRIBE", "fan")
            assert s.read_reply() == [b"subscribe", b"fan", 1]
        assert r.publish("fan", "all") == 10
        for s in subs:
            assert s.read_reply() == [b"message", b"fan", b"all"]
    finally:
        for s in subs:
            s.close()
    wait_no_subscribers(r, "fan")


def resp2_transcript(endpoint, publisher) -> list[bytes]:
    """One subscriber's raw RESP2 session; the publisher is another client."""
    out = []
    with endpoint.raw() as s:
        s.send_command("SUBSCRIBE", "c1", "c2", "c3")  # one command, three replies
        out += s.read_raw_replies(3)
        out.append(s.raw_command("PING"))  # RESP2 subscribed PING: ["pong", ""]
        out.append(s.raw_command("PING", "hi"))
        out.append(s.raw_command("GET", "k"))  # not allowed in RESP2 subscribed mode
        s.send_command("PSUBSCRIBE", "p.*")
        out.append(s.read_raw_reply())
        assert publisher.publish("c2", "m1") == 1
        out.append(s.read_raw_reply())
        assert publisher.publish("p.x", "m2") == 1
        out.append(s.read_raw_reply())
        s.send_command("UNSUBSCRIBE")  # no args: one reply per channel
        out += s.read_raw_replies(3)
        s.send_command("PUNSUBSCRIBE", "p.*")
        out.append(s.read_raw_reply())
        s.send_command("UNSUBSCRIBE")  # nothing subscribed: one reply with a nil channel
        out.append(s.read_raw_reply())
        out.append(s.raw_command("SET", "k", "after"))  # back to a normal connection
        out.append(s.raw_command("GET", "k"))
        s.send_command("SUBSCRIBE", "c1")
        out.append(s.read_raw_reply())
        out.append(s.raw_command("RESET"))  # leaves subscribed mode too
        out.append(s.raw_command("GET", "k"))
    return out


def test_resp2_raw_subscriber_session_matches_redis_byte_for_byte(proxy, upstream, direct_r):
    want = resp2_transcript(upstream, direct_r)
    wait_no_subscribers(direct_r, "c1", "c2", "c3")
    direct_r.delete("k")
    got = resp2_transcript(proxy, direct_r)
    assert got == want
    assert want[0] == b"*3\r\n$9\r\nsubscribe\r\n$2\r\nc1\r\n:1\r\n"
    assert want[3] == b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"
    assert want[5].startswith(b"-ERR Can't execute 'get'")
    assert want[7] == b"*3\r\n$7\r\nmessage\r\n$2\r\nc2\r\n$2\r\nm1\r\n"
    assert want[-2] == b"+RESET\r\n"
    assert want[-1] == b"$5\r\nafter\r\n"


def hello3(endpoint) -> RespConn:
    conn = endpoint.raw()
    reply = conn.command("HELLO", "3")
    assert reply[b"proto"] == 3
    return conn


def test_resp3_subscribe_messages_arrive_as_push_frames(r, proxy):
    with hello3(proxy) as s:
        s.send_command("SUBSCRIBE", "ch")
        assert s.read_raw_reply() == b">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n"
        s.send_command("PSUBSCRIBE", "pat.*")
        reply = s.read_reply()
        assert isinstance(reply, Push) and reply == [b"psubscribe", b"pat.*", 2]

        assert r.publish("ch", "hello") == 1
        assert s.read_raw_reply() == b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n"
        assert r.publish("pat.1", "p") == 1
        msg = s.read_reply()
        assert isinstance(msg, Push) and msg == [b"pmessage", b"pat.*", b"pat.1", b"p"]

        # RESP3 lets a subscribed client run ordinary commands; replies are not pushes.
        r.set("k", "v")
        assert s.raw_command("GET", "k") == b"$1\r\nv\r\n"
        assert s.raw_command("PING") == b"+PONG\r\n"

        s.send_command("UNSUBSCRIBE", "ch")
        assert s.read_reply() == Push([b"unsubscribe", b"ch", 1])
        s.send_command("PUNSUBSCRIBE")
        assert s.read_reply() == Push([b"punsubscribe", b"pat.*", 0])
        assert r.publish("ch", "gone") == 0
        assert s.raw_command("GET", "k") == b"$1\r\nv\r\n"


def resp3_transcript(endpoint) -> list[bytes]:
    """A RESP3 subscriber that publishes to itself: the push comes before PUBLISH's own reply."""
    out = []
    with hello3(endpoint) as s:
        s.send_command("SUBSCRIBE", "self", "other")
        out += s.read_raw_replies(2)
        s.send_command("PUBLISH", "self", "to-me")
        out += s.read_raw_replies(2)  # >3 message ..., then :1
        # A pipeline mixing replies and pushes.
        s.send(
            b"".join(
                [
                    b"*3\r\n$7\r\nPUBLISH\r\n$5\r\nother\r\n$1\r\n1\r\n",
                    b"*2\r\n$4\r\nECHO\r\n$1\r\nx\r\n",
                    b"*3\r\n$7\r\nPUBLISH\r\n$4\r\nself\r\n$1\r\n2\r\n",
                    b"*1\r\n$4\r\nPING\r\n",
                ]
            )
        )
        out += s.read_raw_replies(6)
        s.send_command("SSUBSCRIBE", "shard")
        out.append(s.read_raw_reply())
        s.send_command("SPUBLISH", "shard", "sp")
        out += s.read_raw_replies(2)
        s.send_command("UNSUBSCRIBE")
        out += s.read_raw_replies(2)
        s.send_command("SUNSUBSCRIBE")
        out.append(s.read_raw_reply())
        out.append(s.raw_command("PING"))
    return out


def test_resp3_pushes_interleaved_with_replies_match_redis(proxy, upstream, direct_r):
    want = resp3_transcript(upstream)
    wait_no_subscribers(direct_r, "self", "other")
    got = resp3_transcript(proxy)
    assert got == want
    assert want[2] == b">3\r\n$7\r\nmessage\r\n$4\r\nself\r\n$5\r\nto-me\r\n"
    assert want[3] == b":1\r\n"
