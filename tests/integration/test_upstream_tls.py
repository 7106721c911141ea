"""TLS to the upstream: a real redis-server serving TLS only (--port 0 --tls-port), with a CA,
server and client certificates generated here with the openssl CLI, and readthru with
[upstream] tls = true in front of it.

Everything readthru does over a plain connection must work over TLS: shared and dedicated
connections, large values, RESP3, the write-behind flusher's service connection, timeouts and
reconnects. A certificate that does not verify is a failed connect: clients get an
"ERR upstream ..." error and the log says why. A TLS file that is missing or wrong stops readthru
at start with exit code 1, naming the key.
"""

from __future__ import annotations

import hashlib
import os
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

import harness
from harness import HOST, Readthru, RedisServer, Stack, free_port, write_config
from resp_client import RespError, RespMap

pytestmark = pytest.mark.proxy_only

RECOVERY = 20.0  # generous: ASan, a busy 2-core machine, reconnect backoff


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> harness.TlsFiles:
    return harness.make_tls_files(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def module_stack(tmp_path_factory, pki):
    """The module's stack (conftest's `stack` flushes it before each test): TLS all the way."""
    stack = Stack(
        tmp_path_factory.mktemp("tls-stack"),
        config_kwargs={"upstream_tls": {"ca_cert_file": pki.ca_cert}},
        tls_files=pki,
    )
    yield stack
    log = stack.proxy.log()
    assert stack.stop() == 0, f"readthru did not exit 0 on SIGTERM; stderr:\n{log}"


@pytest.fixture
def make_tls_stack(make_stack, pki):
    """Private stacks (conftest's make_stack): redis-server serving TLS with the test PKI
    (tls_auth_clients: client certificates required), readthru with `upstream_tls` (the
    [upstream] tls_* keys) and any other write_config kwargs."""

    def make(upstream_tls: dict, **kwargs) -> Stack:
        return make_stack(tls_files=pki, upstream_tls=upstream_tls, **kwargs)

    return make


@pytest.fixture
def unusable_upstream(tmp_path, pki):
    """readthru in front of a TLS redis-server it cannot use (its checks fail): started without
    waiting for PING, which goes to the upstream. Returns (readthru, redis-server)."""
    started: list[harness.Process] = []

    def make(upstream_tls: dict, tls_auth_clients: bool = False, **config_kwargs):
        upstream = RedisServer(tmp_path / "redis", tls=pki,
                               tls_auth_clients=tls_auth_clients).start()
        started.append(upstream)
        proxy = _start_proxy(tmp_path, upstream.port, upstream_tls, **config_kwargs)
        started.append(proxy)
        return proxy, upstream

    yield make
    for process in reversed(started):
        rc = process.stop()
        if isinstance(process, Readthru):
            assert rc == 0, f"readthru exited with {rc}; stderr:\n{process.log()}"


def _start_proxy(tmp_path: Path, upstream_port: int, upstream_tls: dict, **config_kwargs):
    listen_port = free_port()
    config = write_config(tmp_path / "readthru.toml", listen_port=listen_port,
                          upstream_port=upstream_port, upstream_tls=upstream_tls, **config_kwargs)
    return Readthru(tmp_path / "readthru", upstream_port, config=config,
                    listen_port=listen_port).start(upstream_up=False)


def wait_for_log(process: harness.Process, text: str, timeout: float = RECOVERY) -> str:
    deadline = time.monotonic() + timeout
    while True:
        log = process.log_path.read_text(errors="replace")
        if text in log:
            return log
        assert time.monotonic() < deadline, f"{text!r} never logged; log:\n{log[-3000:]}"
        time.sleep(0.05)


def assert_upstream_error(reply) -> None:
    assert isinstance(reply, RespError) and reply.text.startswith("ERR upstream"), reply


def wait_recovered(endpoint, timeout: float = RECOVERY) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        with endpoint.raw() as c:
            last = c.command("SET", "recovered", "yes")
            if last == b"OK" and c.command("GET", "recovered") == b"yes":
                return
        time.sleep(0.1)
    raise AssertionError(f"readthru did not recover within {timeout}s; last reply {last!r}")


# -- everything works over TLS ---------------------------------------------------------------------


def test_get_set_over_tls_land_in_the_upstream(stack):
    r = stack.endpoint.client()
    assert r.set("k", "v") is True
    assert r.get("k") == b"v"
    assert stack.direct.client().get("k") == b"v"  # redis-server, over its own TLS port
    assert r.get("missing") is None


def test_pipelines_over_tls_answer_in_order(stack):
    r = stack.endpoint.client()
    pipe = r.pipeline(transaction=False)
    for i in range(2000):
        pipe.set(f"p:{i}", i)
        pipe.incr("counter")
    replies = pipe.execute()
    assert replies[0::2] == [True] * 2000
    assert replies[1::2] == list(range(1, 2001))
    with stack.endpoint.raw() as c:  # one write of many requests, replies read back raw
        c.send(b"".join(b"*2\r\n$3\r\nGET\r\n$%d\r\np:%d\r\n" % (len(str(i)) + 2, i)
                        for i in range(2000)))
        assert c.read_raw_replies(2000) == [b"$%d\r\n%d\r\n" % (len(str(i)), i)
                                           for i in range(2000)]


def test_50mb_value_over_tls_both_ways(stack):
    value = os.urandom(50 * 1024 * 1024)
    digest = hashlib.sha256(value).digest()
    r = stack.endpoint.client()
    assert r.set("big", value) is True
    direct = stack.direct.client()
    assert direct.strlen("big") == len(value)
    assert hashlib.sha256(direct.get("big")).digest() == digest
    got = r.get("big")
    assert len(got) == len(value) and hashlib.sha256(got).digest() == digest
    assert r.set("after", "small") is True and r.get("after") == b"small"


def test_multi_exec_over_tls_runs_on_a_dedicated_connection(stack):
    with stack.endpoint.raw() as c:
        assert c.command("MULTI") == b"OK"
        assert c.command("SET", "t", "1") == b"QUEUED"
        assert c.command("INCR", "t") == b"QUEUED"
        assert c.command("EXEC") == [b"OK", 2]
        assert c.command("WATCH", "t") == b"OK"
        assert c.command("MULTI") == b"OK"
        assert c.command("INCR", "t") == b"QUEUED"
        assert c.command("EXEC") == [3]
    assert stack.direct.client().get("t") == b"3"


def test_subscribe_and_publish_over_tls(stack):
    with stack.endpoint.raw() as sub, stack.endpoint.raw() as pub:
        assert sub.command("SUBSCRIBE", "news") == [b"subscribe", b"news", 1]
        deadline = time.monotonic() + RECOVERY
        while pub.command("PUBLISH", "news", "hello") == 0:  # until the subscription is in
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert sub.read_reply() == [b"message", b"news", b"hello"]
        assert pub.command("PUBLISH", "news", "again") == 1
        assert sub.read_reply() == [b"message", b"news", b"again"]


def test_blpop_over_tls_is_woken_by_a_push(stack):
    with stack.endpoint.raw() as blocked, stack.endpoint.raw() as pusher:
        blocked.send_command("BLPOP", "queue", "0")
        deadline = time.monotonic() + RECOVERY
        while stack.direct.client().info("clients")["blocked_clients"] == 0:
            assert time.monotonic() < deadline, "BLPOP never blocked in redis-server"
            time.sleep(0.02)
        assert pusher.command("RPUSH", "queue", "job") == 1
        assert blocked.read_reply() == [b"queue", b"job"]
        blocked.send_command("BLPOP", "queue", "0.1")
        assert blocked.read_raw_reply() == b"*-1\r\n"


def test_resp3_client_over_tls(stack):
    with stack.endpoint.raw() as c:
        hello = c.command("HELLO", "3")
        assert isinstance(hello, RespMap) and hello[b"proto"] == 3
        assert c.command("HSET", "h", "f", "v") == 1
        reply = c.command("HGETALL", "h")
        assert isinstance(reply, RespMap) and dict(reply) == {b"f": b"v"}
        c.send_command("HGETALL", "h")
        assert c.read_raw_reply() == b"%1\r\n$1\r\nf\r\n$1\r\nv\r\n"


def test_write_behind_flusher_writes_through_a_tls_upstream(make_tls_stack, pki, tmp_path):
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE kv(id TEXT PRIMARY KEY, v TEXT)")
    writers = f"""
[backends.main]
kind = "sqlite"
path = "{db}"

[[writers]]
name = "kv"
key = "kv:{{id}}"
backend = "main"
mode = "behind"
upsert = "INSERT INTO kv(id, v) VALUES (:id, :value) ON CONFLICT(id) DO UPDATE SET v = excluded.v"
delete = "DELETE FROM kv WHERE id = :id"
flush_interval = "100ms"
"""
    stack = make_tls_stack({"ca_cert_file": pki.ca_cert}, extra=writers)
    r = stack.endpoint.client()
    assert r.set("kv:1", "one") is True
    assert stack.direct.client().get("kv:1") == b"one"
    deadline = time.monotonic() + RECOVERY
    while True:
        with sqlite3.connect(db) as conn:
            row = conn.execute("SELECT v FROM kv WHERE id = '1'").fetchone()
        if row == ("one",):
            break
        assert time.monotonic() < deadline, f"the row never landed: {row!r}"
        time.sleep(0.05)


def test_username_and_password_over_tls(make_tls_stack, pki):
    # As a managed Redis: TLS, and an ACL user of its own (the default user has another password).
    stack = make_tls_stack(
        {"ca_cert_file": pki.ca_cert},
        upstream_args=("--requirepass", "default-secret",
                       "--user", "alice", "on", ">alice-secret", "~*", "&*", "+@all"),
        upstream_password="alice-secret",
        upstream_extra='username = "alice"\n',
    )
    with stack.endpoint.raw() as resp2, stack.endpoint.raw() as pinned, \
            stack.endpoint.raw() as resp3:
        assert resp2.command("SET", "k", "v") == b"OK"
        assert pinned.command("MULTI") == b"OK"  # a dedicated connection
        resp3.command("HELLO", "3")
        assert resp3.command("GET", "k") == b"v"
        direct = stack.direct.client()
        me = direct.client_id()

        def upstream_clients() -> set:
            return {(c["user"], c["resp"], c["flags"]) for c in direct.client_list()
                    if int(c["id"]) != me}

        # A connection still in its handshake (the pool's other RESP3 connection, say) has not
        # authenticated yet: it is user "default" until it does. Each must become alice's.
        deadline = time.monotonic() + RECOVERY
        users = upstream_clients()
        while {user for user, _, _ in users} != {"alice"} and time.monotonic() < deadline:
            time.sleep(0.05)
            users = upstream_clients()
        assert pinned.command("EXEC") == []
    assert {user for user, _, _ in users} == {"alice"}, users
    assert ("alice", "2", "x") in users and ("alice", "3", "N") in users, users


def test_command_timeout_over_tls_fails_and_recovers(make_tls_stack, pki):
    # command_timeout 1s: a moment's descheduling of readthru on a busy machine does not trip it;
    # the pause is far longer, so that only the timeout can answer the GET.
    stack = make_tls_stack({"ca_cert_file": pki.ca_cert}, connections=1,
                           upstream_extra='command_timeout = "1s"\n')
    direct = stack.direct.client()
    with stack.endpoint.raw() as c:
        assert c.command("PING") == b"PONG"
        direct.execute_command("CLIENT", "PAUSE", "5000", "ALL")
        started = time.monotonic()
        assert_upstream_error(c.command("GET", "k"))
        waited = time.monotonic() - started
        assert waited < 4.5, f"the timeout took {waited:.2f}s"
        deadline = time.monotonic() + RECOVERY
        while (reply := c.command("PING")) != b"PONG":
            assert_upstream_error(reply)
            assert time.monotonic() < deadline, "service did not resume"
            time.sleep(0.1)


def test_upstream_restart_over_tls_reconnects(make_tls_stack, pki):
    stack = make_tls_stack({"ca_cert_file": pki.ca_cert})
    port = stack.upstream.port
    with stack.endpoint.raw() as c:
        assert c.command("SET", "before", "1") == b"OK"
        stack.upstream.stop()
        assert_upstream_error(c.command("GET", "before"))
        stack.upstream = RedisServer(stack.upstream.workdir, port=port, tls=pki).start()
        wait_recovered(stack.endpoint)
        assert c.command("SET", "after", "2") == b"OK"  # the same client connection
        assert c.command("MULTI") == b"OK"  # and a new dedicated connection
        assert c.command("INCR", "after") == b"QUEUED"
        assert c.command("EXEC") == [3]
    assert stack.direct.client().get("after") == b"3"


# -- certificates ----------------------------------------------------------------------------------


def test_server_name_defaults_to_the_address_and_can_be_set(make_tls_stack, pki):
    # The server certificate names "localhost" and 127.0.0.1; readthru dials 127.0.0.1.
    stack = make_tls_stack({"ca_cert_file": pki.ca_cert, "server_name": "localhost"})
    r = stack.endpoint.client()
    assert r.set("named", "1") is True and r.get("named") == b"1"


def test_client_certificate_when_the_upstream_requires_one(make_tls_stack, pki):
    stack = make_tls_stack(
        {"ca_cert_file": pki.ca_cert, "cert_file": pki.client_cert, "key_file": pki.client_key},
        tls_auth_clients=True,
    )
    with stack.endpoint.raw() as c:
        assert c.command("SET", "mtls", "1") == b"OK"
        c.send_command("BLPOP", "empty", "0.1")  # a dedicated connection shows it too
        assert c.read_raw_reply() == b"*-1\r\n"
        assert c.command("GET", "mtls") == b"1"


def test_without_the_required_client_certificate_clients_get_upstream_errors(
    unusable_upstream, pki
):
    proxy, upstream = unusable_upstream({"ca_cert_file": pki.ca_cert}, tls_auth_clients=True)
    with proxy.endpoint.raw() as c:
        for _ in range(3):
            assert_upstream_error(c.command("GET", "k"))
    wait_for_log(proxy, "upstream 127.0.0.1")  # unavailable: the alert, or the reset after it
    wait_for_log(upstream, "peer did not return a certificate")


def test_wrong_ca_is_a_failed_connect_that_names_the_verify_failure(unusable_upstream, pki):
    proxy, _ = unusable_upstream({"ca_cert_file": pki.other_ca_cert})
    with proxy.endpoint.raw() as c:
        for _ in range(3):
            assert_upstream_error(c.command("GET", "k"))
        assert_upstream_error(c.command("MULTI"))  # dedicated connections fail alike
    log = wait_for_log(proxy, "upstream TLS handshake failed: certificate verify failed: ")
    # OpenSSL's reason: the other CA is not in the chain (redis-server sends its CA along).
    assert "self-signed certificate in certificate chain" in log, log


def test_server_name_mismatch_is_a_verify_failure(unusable_upstream, pki):
    proxy, _ = unusable_upstream({"ca_cert_file": pki.ca_cert, "server_name": "redis.example"})
    with proxy.endpoint.raw() as c:
        assert_upstream_error(c.command("GET", "k"))
    log = wait_for_log(proxy, "upstream TLS handshake failed: certificate verify failed")
    assert "hostname mismatch" in log


def test_verify_false_accepts_an_unknown_ca_and_warns(make_tls_stack, pki):
    stack = make_tls_stack({"ca_cert_file": pki.other_ca_cert, "verify": False})
    r = stack.endpoint.client()
    assert r.set("unverified", "1") is True and r.get("unverified") == b"1"
    assert "tls_verify = false" in stack.proxy.log()


def test_a_silent_upstream_times_out_the_tls_handshake(tmp_path, pki):
    # Accepts TCP (the kernel completes it) and never says a word.
    with socket.create_server((HOST, 0)) as silent:
        proxy = _start_proxy(tmp_path, silent.getsockname()[1], {"ca_cert_file": pki.ca_cert},
                             upstream_extra='connect_timeout = "300ms"\n')
        try:
            with proxy.endpoint.raw() as c:
                assert_upstream_error(c.command("GET", "k"))
            wait_for_log(proxy, "ERR upstream connect timeout")
        finally:
            assert proxy.stop() == 0, proxy.log()


# -- config errors ---------------------------------------------------------------------------------


def run_with_config(tmp_path: Path, upstream: str) -> subprocess.CompletedProcess:
    config = tmp_path / "bad.toml"
    config.write_text(f'[upstream]\naddress = "{HOST}:1"\n' + upstream)
    return subprocess.run([harness.readthru_bin(), "--config", str(config)], capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize(
    "upstream, line, message",
    [
        ('tls = true\ntls_ca_cert_file = "missing.pem"\n', 4,
         "'upstream.tls_ca_cert_file': cannot read {dir}/missing.pem: No such file or directory"),
        ('tls = true\ntls_ca_cert_dir = "no-such-dir"\n', 4,
         "'upstream.tls_ca_cert_dir': cannot read {dir}/no-such-dir: No such file or directory"),
        ('tls = true\ntls_ca_cert_file = "{pki}/ca.crt"\ntls_cert_file = "{pki}/nope.crt"\n'
         'tls_key_file = "{pki}/client.key"\n', 5,
         "'upstream.tls_cert_file': cannot read {pki}/nope.crt: No such file or directory"),
        ('tls = true\ntls_ca_cert_file = "{pki}/ca.crt"\ntls_cert_file = "{pki}/client.crt"\n'
         'tls_key_file = "{pki}/missing.key"\n', 6,
         "'upstream.tls_key_file': cannot read {pki}/missing.key: No such file or directory"),
        ('tls = true\ntls_cert_file = "{pki}/client.crt"\n', 4,
         "'upstream.tls_cert_file' needs 'upstream.tls_key_file' too"),
        ('tls = true\ntls_key_file = "{pki}/client.key"\n', 4,
         "'upstream.tls_key_file' needs 'upstream.tls_cert_file' too"),
        ('tls = true\ntls_ca_cert_file = "{pki}/client.key"\n', 4,
         "'upstream.tls_ca_cert_file': no CA certificate in {pki}/client.key"),
        ('tls = true\ntls_ca_cert_file = "{pki}/ca.crt"\ntls_cert_file = "{pki}/client.crt"\n'
         'tls_key_file = "{pki}/server.key"\n', 6,
         "'upstream.tls_key_file': the key does not match the certificate of cert_file"),
        ('tls = "yes"\n', 3, "'upstream.tls' must be true or false"),
        ('tls = true\ntls_verify = 0\n', 4, "'upstream.tls_verify' must be true or false"),
    ],
    ids=["ca-file-missing", "ca-dir-missing", "cert-missing", "key-missing", "cert-without-key",
         "key-without-cert", "ca-not-a-certificate", "key-not-the-certificates", "tls-not-bool",
         "verify-not-bool"],
)
def test_tls_config_errors_stop_readthru_naming_the_key(tmp_path, pki, upstream, line, message):
    pki_dir = str(pki.ca_cert.parent)
    result = run_with_config(tmp_path, upstream.replace("{pki}", pki_dir))
    assert result.returncode == 1, result
    expected = message.format(dir=tmp_path, pki=pki_dir)
    assert f"readthru: bad config: {tmp_path}/bad.toml:{line}:" in result.stderr, result.stderr
    assert expected in result.stderr, result.stderr


def test_tls_keys_are_checked_by_check_config(tmp_path, pki):
    config = tmp_path / "good.toml"
    config.write_text(f'[upstream]\ntls = true\ntls_ca_cert_file = "{pki.ca_cert}"\n'
                      f'tls_cert_file = "{pki.client_cert}"\ntls_key_file = "{pki.client_key}"\n')
    result = subprocess.run([harness.readthru_bin(), "--check-config", "--config", str(config)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result
    config.write_text('[upstream]\ntls = true\ntls_ca_cert_file = "gone.pem"\n')
    result = subprocess.run([harness.readthru_bin(), "--check-config", "--config", str(config)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "'upstream.tls_ca_cert_file': cannot read" in result.stderr
