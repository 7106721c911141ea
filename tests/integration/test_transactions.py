"""MULTI/EXEC and WATCH through readthru behave as on redis-server."""

import pytest
import redis

from resp_client import RespError


def test_multi_exec_applies_queued_commands_atomically(r):
    pipe = r.pipeline(transaction=True)
    pipe.set("a", 1).incr("a").lpush("l", "x", "y").lrange("l", 0, -1)
    assert pipe.execute() == [True, 2, 2, [b"y", b"x"]]


def test_multi_exec_on_raw_connection_replies_queued_then_array(proxy):
    with proxy.raw() as c:
        assert c.command("MULTI") == b"OK"
        assert c.command("SET", "k", "v") == b"QUEUED"
        assert c.command("GET", "k") == b"QUEUED"
        assert c.command("INCR", "k") == b"QUEUED"  # fails at EXEC time, not at queue time
        result = c.command("EXEC")
        assert result[:2] == [b"OK", b"v"]
        assert isinstance(result[2], RespError) and result[2].code == b"ERR"


def test_discard_drops_queued_commands(proxy, direct_r):
    with proxy.raw() as c:
        assert c.command("MULTI") == b"OK"
        assert c.command("SET", "k", "v") == b"QUEUED"
        assert c.command("DISCARD") == b"OK"
        assert c.command("GET", "k") is None
    assert direct_r.get("k") is None


def test_queue_time_error_aborts_exec(proxy):
    with proxy.raw() as c:
        assert c.command("MULTI") == b"OK"
        assert c.command("SET", "k").startswith(b"ERR wrong number of arguments")
        assert c.command("SET", "k2", "v") == b"QUEUED"
        reply = c.command("EXEC")
        assert isinstance(reply, RespError) and reply.code == b"EXECABORT"
        assert c.command("GET", "k2") is None


def test_watch_conflict_from_another_client_makes_exec_return_nil(proxy):
    watcher = proxy.raw()
    other = proxy.client()
    try:
        assert watcher.command("SET", "balance", "10") == b"OK"
        assert watcher.command("WATCH", "balance") == b"OK"
        assert watcher.command("GET", "balance") == b"10"
        assert other.set("balance", "999") is True  # a different client changes the key
        assert watcher.command("MULTI") == b"OK"
        assert watcher.command("SET", "balance", "11") == b"QUEUED"
        watcher.send_command("EXEC")
        assert watcher.read_raw_reply() == b"*-1\r\n"  # nil: the transaction did not run
        assert other.get("balance") == b"999"
    finally:
        watcher.close()
        other.close()


def test_watch_without_conflict_executes(proxy, r):
    with proxy.raw() as c:
        assert c.command("SET", "w", "1") == b"OK"
        assert c.command("WATCH", "w") == b"OK"
        assert c.command("MULTI") == b"OK"
        assert c.command("INCR", "w") == b"QUEUED"
        assert c.command("EXEC") == [2]
    assert r.get("w") == b"2"


def test_redis_py_watch_conflict_raises_watch_error(r, proxy):
    r.set("counter", 1)
    other = proxy.client()
    try:
        with r.pipeline() as pipe:
            pipe.watch("counter")
            other.incr("counter")
            pipe.multi()
            pipe.incr("counter")
            with pytest.raises(redis.WatchError):
                pipe.execute()
        assert r.get("counter") == b"2"
    finally:
        other.close()


def test_unwatch_and_exec_without_multi(proxy):
    with proxy.raw() as c:
        assert c.command("WATCH", "x") == b"OK"
        assert c.command("UNWATCH") == b"OK"
        assert c.raw_command("EXEC") == b"-ERR EXEC without MULTI\r\n"
        assert c.raw_command("DISCARD") == b"-ERR DISCARD without MULTI\r\n"
        assert c.command("MULTI") == b"OK"
        assert c.raw_command("MULTI") == b"-ERR MULTI calls can not be nested\r\n"
        assert c.raw_command("WATCH", "x") == b"-ERR WATCH inside MULTI is not allowed\r\n"
        assert c.command("EXEC") == []
