"""Flow control: a client that pipelines far more than readthru keeps in flight is paused, never
dropped; slow readers get every byte; many concurrent connections are each served."""

import threading
import time

from resp_client import encode

WAIT = 60.0


def test_pipeline_of_100000_commands_written_while_reading(proxy, direct_r):
    count = 100_000
    payload = b"".join(encode("INCR", "bp") for _ in range(count))
    with proxy.raw(timeout=WAIT) as c:
        error: list[BaseException] = []

        def writer():
            try:
                for i in range(0, len(payload), 1 << 20):
                    c.sock.sendall(payload[i : i + (1 << 20)])
            except BaseException as exc:
                error.append(exc)

        t = threading.Thread(target=writer, daemon=True)
        t.start()
        for i in range(1, count + 1):
            reply = c.read_raw_reply()
            assert reply == b":%d\r\n" % i, (i, reply)
        t.join(timeout=WAIT)
        assert not t.is_alive() and not error, error
    assert direct_r.get("bp") == str(count).encode()


def test_client_that_writes_everything_before_reading(proxy, direct_r):
    """40k commands sent before the first read: whatever readthru buffers or pauses, every reply
    arrives once the client reads."""
    count = 40_000
    payload = b"".join(encode("ECHO", f"m{i}") for i in range(count))
    with proxy.raw(timeout=WAIT) as c:
        t = threading.Thread(target=c.sock.sendall, args=(payload,), daemon=True)
        t.start()
        time.sleep(1.0)  # nothing read yet: readthru must hold or pause, not drop
        for i in range(count):
            assert c.read_reply() == f"m{i}".encode()
        t.join(timeout=WAIT)
        assert not t.is_alive()


def test_slow_reader_of_large_replies_gets_every_byte(proxy, direct_r):
    value = bytes(range(256)) * 4096  # 1 MB
    direct_r.set("big", value)
    with proxy.raw(timeout=WAIT) as c:
        c.send(encode("GET", "big") * 20 + encode("PING"))
        for _ in range(20):
            time.sleep(0.02)
            assert c.read_reply() == value
        assert c.read_reply() == b"PONG"


def test_300_concurrent_connections_each_served(proxy):
    conns = []
    try:
        for _ in range(300):
            conns.append(proxy.raw())
        for i, c in enumerate(conns):
            c.send(encode("SET", f"conn:{i}", i) + encode("GET", f"conn:{i}"))
        for i, c in enumerate(conns):
            assert c.read_reply() == b"OK"
            assert c.read_reply() == str(i).encode()
    finally:
        for c in conns:
            c.close()


def test_many_threads_with_redis_py_pools(proxy):
    errors: list[BaseException] = []

    def worker(n: int):
        client = proxy.client()
        try:
            for i in range(200):
                key = f"t{n}:{i % 10}"
                client.set(key, i)
                assert client.get(key) == str(i).encode()
                assert client.incr(f"t{n}:ctr") == i + 1
        except BaseException as exc:
            errors.append(exc)
        finally:
            client.close()

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=WAIT)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors[:3]
