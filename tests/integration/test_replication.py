"""SYNC and PSYNC through readthru: the connection becomes a byte-for-byte relay of a dedicated
upstream connection, so a replica (or `redis-cli --rdb`, or Redis's own test suite reading the
replication stream) can use readthru's address as the master's."""

import socket
import subprocess
import time

import pytest

from harness import HOST, RedisServer, wait_for
from resp_client import RespError, encode

pytestmark = pytest.mark.proxy_only


class StreamReader:
    """Reads a replication stream off a raw socket: the snapshot, then what follows."""

    def __init__(self, endpoint):
        self.sock = socket.create_connection((endpoint.host, endpoint.port), timeout=10)
        self.buf = b""

    def fill(self, timeout=10.0):
        self.sock.settimeout(timeout)
        data = self.sock.recv(1 << 20)
        if not data:
            raise EOFError("the stream closed")
        self.buf += data

    def sync(self) -> bytes:
        """Sends SYNC and returns the snapshot (Redis may send newlines before its size)."""
        self.sock.sendall(b"SYNC\r\n")
        while True:
            self.buf = self.buf.lstrip(b"\n")
            if b"\r\n" in self.buf:
                break
            self.fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        assert line.startswith(b"$"), line
        size = int(line[1:])
        while len(self.buf) < size:
            self.fill()
        snapshot, self.buf = self.buf[:size], self.buf[size:]
        return snapshot

    def until(self, needle: bytes, timeout=10.0) -> bytes:
        deadline = time.monotonic() + timeout
        while needle not in self.buf:
            assert time.monotonic() < deadline, self.buf[-200:]
            self.fill(max(0.1, deadline - time.monotonic()))
        return self.buf

    def close(self):
        self.sock.close()


def replicas(direct_r):
    return [c for c in direct_r.client_list() if "S" in c["flags"]]


def test_sync_relays_the_snapshot_then_the_replication_stream_as_redis_sends_it(
    proxy, upstream, direct_r
):
    streams = {}
    for endpoint in (upstream, proxy):
        reader = StreamReader(endpoint)
        try:
            assert reader.sync().startswith(b"REDIS")
            endpoint.client().set("replicated-key", "value\r\nwith\x00bytes")
            streams[endpoint] = reader.until(b"with\x00bytes")
        finally:
            reader.close()
        wait_for(lambda: not replicas(direct_r), "the replica connection never closed")
    assert streams[proxy] == streams[upstream]
    assert encode("SET", "replicated-key", "value\r\nwith\x00bytes") in streams[proxy]


def test_redis_cli_rdb_takes_a_snapshot_through_readthru(proxy, r, tmp_path):
    r.set("in-the-snapshot", "yes")
    out = tmp_path / "dump.rdb"
    done = subprocess.run(
        ["redis-cli", "-h", proxy.host, "-p", str(proxy.port), "--rdb", str(out)],
        capture_output=True, text=True, timeout=30,
    )
    assert done.returncode == 0, done.stderr
    data = out.read_bytes()
    assert data.startswith(b"REDIS") and b"in-the-snapshot" in data


def test_a_redis_replica_of_readthrus_address_follows_the_upstream(proxy, r, direct_r, tmp_path):
    r.set("before-the-replica", "1")
    replica = RedisServer(tmp_path / "replica", extra_args=("--replicaof", HOST, str(proxy.port)))
    replica.start()
    try:
        rc = replica.endpoint.client()
        wait_for(lambda: rc.info("replication")["master_link_status"] == "up",
                 "the replica never linked up")
        r.set("after-the-replica", "2")
        wait_for(lambda: rc.get("after-the-replica") == b"2", "the write never replicated")
        assert rc.get("before-the-replica") == b"1"
        # REPLCONF listening-port went on the connection that then sent PSYNC.
        info = direct_r.info("replication")
        assert info["connected_slaves"] == 1
        assert info["slave0"]["port"] == replica.port
    finally:
        replica.stop()
    wait_for(lambda: not replicas(direct_r), "the replica's upstream connection never closed")


def test_a_sync_client_that_stops_reading_leaves_the_backlog_in_redis_then_gets_it_all(
    proxy, r, direct_r
):
    reader = StreamReader(proxy)
    try:
        reader.sync()
        value = b"v" * 65536
        pipe = r.pipeline(transaction=False)
        for i in range(640):  # 40 MB of writes the reader does not read yet
            pipe.set(f"backlog:{i}", value)
        pipe.execute()
        # readthru stops reading its upstream connection once about 1 MB waits for the client,
        # so beyond what the sockets buffer, the stream waits in Redis's output buffer.
        def held_by_redis():
            held = replicas(direct_r)
            return held and int(held[0]["omem"]) > 8 << 20

        wait_for(held_by_redis, f"Redis holds no backlog: {replicas(direct_r)}")
        assert reader.until(encode("SET", "backlog:639", value), timeout=30)
        assert reader.buf.count(b"\r\nbacklog:") == 640
    finally:
        reader.close()


def test_closing_a_sync_client_closes_its_upstream_connection(proxy, direct_r):
    reader = StreamReader(proxy)
    reader.sync()
    wait_for(lambda: len(replicas(direct_r)) == 1, "no replica connection upstream")
    reader.close()
    wait_for(lambda: not replicas(direct_r), "the upstream connection outlived its client")
    assert proxy.client().ping()


def test_redis_dropping_the_replica_connection_closes_the_sync_client(proxy, direct_r):
    reader = StreamReader(proxy)
    try:
        reader.sync()
        wait_for(lambda: len(replicas(direct_r)) == 1, "no replica connection upstream")
        assert direct_r.execute_command("CLIENT", "KILL", "TYPE", "replica") == 1
        with pytest.raises((EOFError, ConnectionResetError)):
            for _ in range(100):
                reader.fill(timeout=5)
    finally:
        reader.close()
    assert proxy.client().ping()


def test_sync_inside_multi_is_refused_by_redis_as_directly(proxy, upstream):
    replies = {}
    for endpoint in (upstream, proxy):
        with endpoint.raw(timeout=5) as c:
            got = [c.command("MULTI"), c.command("SYNC"), c.command("EXEC"), c.command("PING")]
            replies[endpoint] = got
    assert replies[proxy] == replies[upstream]
    assert isinstance(replies[proxy][1], RespError)


def test_sync_while_the_upstream_is_down_is_an_error_and_the_client_carries_on(make_stack):
    stack = make_stack()
    stack.upstream.kill()
    with stack.endpoint.raw(timeout=10) as c:
        reply = c.command("SYNC")
        assert isinstance(reply, RespError) and reply.code == b"ERR", reply
        # Not a relay: the next command is read and answered as any other.
        again = c.command("PING")
        assert isinstance(again, RespError) and b"upstream unavailable" in bytes(again), again


def test_sync_waits_for_the_upstream_handshake_of_its_connection(make_stack):
    """A dedicated connection opens with AUTH (and CLIENT ID); Redis refuses a SYNC that arrives
    while those replies are still owed ("SYNC and PSYNC are invalid with pending output"), so
    readthru sends the SYNC only once they are in."""
    stack = make_stack(upstream_password="pw", upstream_args=("--requirepass", "pw"))
    reader = StreamReader(stack.endpoint)
    try:
        assert reader.sync().startswith(b"REDIS")
        stack.direct.client().set("after-sync", "x")
        assert encode("SET", "after-sync", "x") in reader.until(b"after-sync")
    finally:
        reader.close()
