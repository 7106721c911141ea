"""The unix socket listener (`unixsocket`, `unixsocketperm`, as in redis.conf): clients on it are
served exactly as TCP clients (redis-cli -s, redis-py's unix_socket_path, pipelines, auth, limits),
the permission bits are applied, a stale socket file is replaced, the file is removed on SIGTERM,
and a path that cannot be bound stops readthru with exit 2."""

import os
import shutil
import socket
import stat
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
import redis

from harness import HOST, SOCKET_TIMEOUT, free_port, readthru_bin, write_config
from test_config import connect_in_free_slot

pytestmark = pytest.mark.proxy_only

TIMEOUT = 60


@pytest.fixture
def sock_dir():
    """A short directory: a socket path must fit in 108 bytes, pytest's tmp_path may not."""
    path = Path(tempfile.mkdtemp(prefix="rt-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def unix_client(path: Path, **kwargs) -> redis.Redis:
    kwargs.setdefault("socket_timeout", SOCKET_TIMEOUT)
    return redis.Redis(unix_socket_path=str(path), **kwargs)


def cli(*args, input: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["redis-cli", *args], input=input, capture_output=True, timeout=TIMEOUT)


def line_replies(sock: socket.socket, requests: list[bytes]) -> list[bytes]:
    """Sends each inline request and reads its one-line reply (status or error)."""
    replies = []
    with sock:
        sock.settimeout(SOCKET_TIMEOUT)
        buf = b""
        for request in requests:
            sock.sendall(request + b"\r\n")
            while b"\r\n" not in buf:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                buf += chunk
            line, _, buf = buf.partition(b"\r\n")
            replies.append(line)
    return replies


def unix_socket(path: Path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(str(path))
    return s


PIPED = b"SET u:k hello\nGET u:k\nINCR u:n\nINCR u:n\nHSET u:h f v\nHGETALL u:h\nGET nope\nFOO\n"


def test_redis_cli_over_the_socket_matches_redis(make_stack, sock_dir):
    path = sock_dir / "readthru.sock"
    stack = make_stack(unixsocket=str(path))
    want = cli("-h", HOST, "-p", str(stack.upstream.port), input=PIPED)
    stack.direct.client().flushall()
    got = cli("-s", str(path), input=PIPED)
    assert want.returncode == 0 and b"hello" in want.stdout
    assert (got.returncode, got.stdout, got.stderr) == (want.returncode, want.stdout, want.stderr)
    assert cli("-s", str(path), "GET", "u:k").stdout == b"hello\n"
    # The writes landed upstream, where a TCP client of readthru sees them.
    assert stack.endpoint.client().get("u:n") == b"2"


def test_redis_cli_pipe_mode_over_the_socket(make_stack, sock_dir):
    path = sock_dir / "readthru.sock"
    stack = make_stack(unixsocket=str(path))
    proto = b"".join(
        b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$1\r\nv\r\n" % (len(k), k)
        for k in (b"pipe:%d" % i for i in range(1000))
    )
    result = cli("-s", str(path), "--pipe", input=proto)
    assert result.returncode == 0, result.stderr
    assert b"errors: 0, replies: 1000" in result.stdout, result.stdout
    assert stack.direct.client().dbsize() == 1000


def test_redis_py_unix_socket_path_get_set_and_pipelines(make_stack, sock_dir):
    path = sock_dir / "readthru.sock"
    make_stack(unixsocket=str(path))
    r = unix_client(path)
    assert r.set("py:k", "v") is True
    assert r.get("py:k") == b"v"
    with r.pipeline(transaction=False) as p:
        for i in range(200):
            p.set(f"py:{i}", i).get(f"py:{i}")
        replies = p.execute()
    assert replies == [x for i in range(200) for x in (True, str(i).encode())]
    # MULTI/EXEC pins the client to its own upstream connection: that works over the socket too.
    with r.pipeline(transaction=True) as p:
        replies = p.incr("py:n").incr("py:n").get("py:n").execute()
    assert replies == [1, 2, b"2"]
    r.close()


@pytest.mark.parametrize("perm, mode", [(700, 0o700), (770, 0o770), (777, 0o777)])
def test_unixsocketperm_sets_the_socket_mode(make_stack, sock_dir, perm, mode):
    path = sock_dir / "readthru.sock"
    make_stack(unixsocket=str(path), unixsocketperm=perm)
    st = os.stat(path)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == mode, oct(st.st_mode)


def test_unixsocketperm_0_leaves_the_umask_default(make_stack, sock_dir):
    umask = os.umask(0)
    os.umask(umask)  # readthru inherits the test's umask
    path = sock_dir / "readthru.sock"
    make_stack(unixsocket=str(path))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o777 & ~umask


def test_stale_socket_file_is_replaced(make_stack, sock_dir):
    path = sock_dir / "readthru.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # the file stays, as after a readthru that was killed
    assert stat.S_ISSOCK(os.stat(path).st_mode)
    make_stack(unixsocket=str(path))
    assert unix_client(path).ping() is True


def test_relative_path_is_relative_to_the_working_directory(make_stack):
    stack = make_stack(unixsocket="rt.sock")
    # readthru runs in <stack>/readthru; its config file is <stack>/readthru.toml.
    path = stack.proxy.workdir / "rt.sock"
    assert stat.S_ISSOCK(os.stat(path).st_mode)
    assert not (stack.workdir / "rt.sock").exists()
    if len(str(path)) < 108:
        assert unix_client(path).ping() is True


def test_socket_file_is_removed_after_sigterm(make_stack, sock_dir):
    path = sock_dir / "readthru.sock"
    stack = make_stack(unixsocket=str(path))
    r = unix_client(path)
    assert r.set("k", "v") is True
    assert stack.proxy.stop() == 0, stack.proxy.log()
    assert not os.path.lexists(path)
    r.close()


def test_tcp_and_unix_clients_are_served_at_once(make_stack, sock_dir):
    path = sock_dir / "readthru.sock"
    stack = make_stack(unixsocket=str(path))
    on_unix, on_tcp, upstream = unix_client(path), stack.endpoint.client(), stack.direct.client()
    got = []
    waiter = threading.Thread(target=lambda: got.append(on_unix.blpop(["q"], timeout=30)))
    waiter.start()
    # The unix client is blocked in BLPOP (on its own upstream connection); the TCP one is
    # served meanwhile, and its push wakes the unix one.
    deadline = time.monotonic() + SOCKET_TIMEOUT
    while not any(c.get("cmd") == "blpop" for c in upstream.client_list()):
        assert time.monotonic() < deadline, "BLPOP never reached redis-server"
        time.sleep(0.01)
    assert on_tcp.set("tcp:k", "1") is True
    assert on_tcp.lpush("q", "from-tcp") == 1
    waiter.join(timeout=SOCKET_TIMEOUT)
    assert got == [(b"q", b"from-tcp")]
    assert on_unix.get("tcp:k") == b"1"
    for c in (on_unix, on_tcp, upstream):
        c.close()


def test_unix_clients_authenticate_as_tcp_clients_do(make_stack, sock_dir):
    path = sock_dir / "readthru.sock"
    stack = make_stack(unixsocket=str(path), requirepass="s3cret")
    requests = [b"GET k", b"AUTH wrong", b"AUTH default wrong", b"AUTH s3cret", b"PING"]
    on_tcp = line_replies(socket.create_connection((HOST, stack.proxy.port)), requests)
    on_unix = line_replies(unix_socket(path), requests)
    assert on_tcp[0].startswith(b"-NOAUTH") and on_tcp[3:] == [b"+OK", b"+PONG"], on_tcp
    assert on_unix == on_tcp


def test_maxclients_counts_tcp_and_unix_clients_together(make_stack, sock_dir):
    path = sock_dir / "readthru.sock"
    stack = make_stack(unixsocket=str(path), maxclients=1)
    on_tcp = connect_in_free_slot(stack.endpoint)
    with unix_socket(path) as extra:  # answered at once, and closed: nothing to send
        extra.settimeout(SOCKET_TIMEOUT)
        data = b""
        while chunk := extra.recv(4096):
            data += chunk
    assert data == b"-ERR max number of clients reached\r\n"
    on_tcp.close()


def start_failing(tmp_path: Path, unixsocket: Path) -> subprocess.CompletedProcess:
    """Runs readthru with `unixsocket`, expecting it to stop at once."""
    config = write_config(tmp_path / "readthru.toml", listen_port=free_port(),
                          upstream_port=free_port(), unixsocket=str(unixsocket))
    return subprocess.run([readthru_bin(), "--config", str(config)], capture_output=True,
                          text=True, timeout=TIMEOUT, cwd=tmp_path)


def test_path_in_a_missing_directory_exits_2_naming_it(tmp_path, sock_dir):
    path = sock_dir / "no-such-dir" / "readthru.sock"
    result = start_failing(tmp_path, path)
    assert result.returncode == 2, result
    assert "Failed opening Unix socket" in result.stderr, result.stderr
    assert str(path) in result.stderr and "no such file or directory" in result.stderr.lower()


def test_a_file_that_is_not_a_socket_is_left_alone_and_exits_2(tmp_path, sock_dir):
    path = sock_dir / "precious"
    path.write_text("not a socket")
    result = start_failing(tmp_path, path)
    assert result.returncode == 2, result
    assert "Failed opening Unix socket" in result.stderr, result.stderr
    assert path.read_text() == "not a socket"
