"""Access control: readthru's [[users]] answer like a redis-server given the same users with
ACL SETUSER (AUTH user pass, HELLO AUTH, -WRONGPASS, -NOAUTH, -NOPERM for commands by category
and by deny_commands, for keys by pattern, EXECABORT after a refusal inside MULTI), failed
attempts are counted and logged without the password, ACL subcommands never reach the upstream's
users, and protected mode refuses to start on a non-loopback address without a password."""

import hashlib
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from harness import HOST, Process, RedisServer, Stack, free_port, info_field, readthru_bin
from resp_client import RespConn

pytestmark = pytest.mark.proxy_only

ADMIN_PW = "admin-pw-7f3a"
APP_PW = "app-pw-91c2"
OPS_PW = "ops-pw-5d0e"
OFF_PW = "off-pw-2b8c"
WRONG_PW = "wrong-pw-e4d1"  # must never reach a log

USERS_TOML = f"""
[[users]]
name = "app"
password = "{APP_PW}"
commands = ["+@all", "-@dangerous"]
keys = ["~user:*", "~product:*", "%R~ro:*"]
deny_commands = ["FLUSHALL", "CONFIG", "DEBUG", "SHUTDOWN"]

[[users]]
name = "off"
password = "{OFF_PW}"
enabled = false
commands = ["+@all"]
keys = ["~*"]

[[users]]
name = "ops"
password_sha256 = "{hashlib.sha256(OPS_PW.encode()).hexdigest()}"
commands = ["+@read", "+@connection", "+readthru"]
keys = ["~*"]
"""

# The same users for redis-server (READTHRU is readthru's own command).
SETUSER = [
    ("app", "on", f">{APP_PW}", "+@all", "-@dangerous", "~user:*", "~product:*", "%R~ro:*",
     "-flushall", "-config", "-debug", "-shutdown"),
    ("off", "off", f">{OFF_PW}", "+@all", "~*"),
    ("ops", "on", f"#{hashlib.sha256(OPS_PW.encode()).hexdigest()}", "+@read", "+@connection",
     "~*"),
]

TRANSCRIPT = [
    ("GET", "user:1"),  # NOAUTH
    ("AUTH", "app", WRONG_PW),
    ("AUTH", "off", OFF_PW),  # disabled
    ("AUTH", "nosuch", APP_PW),
    ("AUTH", "app", APP_PW),
    ("ACL", "WHOAMI"),
    ("SET", "user:1", "v"),
    ("GET", "user:1"),
    ("GET", "secret"),
    ("MGET", "user:1", "secret"),
    ("MGET", "user:1", "product:1"),
    ("SET", "ro:1", "v"),  # read-only pattern
    ("GET", "ro:1"),
    ("FLUSHALL",),  # deny_commands
    ("FLUSHDB",),  # -@dangerous
    ("KEYS", "*"),
    ("CONFIG", "GET", "maxmemory"),
    ("CONFIG", "SET", "maxmemory", "0"),
    ("SHUTDOWN",),
    ("ACL", "LIST"),
    ("GET",),  # the arity error comes first
    ("EVAL", "return 1", "1", "secret"),
    ("EVAL", "return redis.call('get', KEYS[1])", "1", "user:1"),
    ("ZUNIONSTORE", "user:z", "2", "user:a", "secret"),
    ("RPUSH", "user:l", "3", "1", "2"),
    ("SORT", "user:l"),
    ("SORT", "user:l", "BY", "w_*"),
    ("SORT", "user:l", "STORE", "secret"),
    ("MULTI",),
    ("SET", "user:2", "x"),
    ("GET", "secret"),  # refused: EXEC fails
    ("EXEC",),
    ("GET", "user:2"),
    ("AUTH", "ops", OPS_PW),
    ("ACL", "WHOAMI"),
    ("GET", "user:1"),
    ("SET", "user:1", "w"),
    ("ACL", "CAT"),
    ("AUTH", "app", WRONG_PW),  # a failed AUTH leaves the client as it was
    ("ACL", "WHOAMI"),
    ("PING",),
    ("RESET",),
    ("GET", "user:1"),  # NOAUTH again: RESET makes the client the default user
]


@pytest.fixture(scope="module")
def acl_stack(tmp_path_factory):
    stack = Stack(
        tmp_path_factory.mktemp("acl"),
        config_kwargs={"requirepass": ADMIN_PW, "extra": USERS_TOML},
    )
    yield stack
    log = stack.proxy.log()
    rc = stack.stop()
    assert rc == 0, f"readthru exited with {rc}; stderr:\n{log}"


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """redis-server with the same users: the oracle."""
    server = RedisServer(
        tmp_path_factory.mktemp("reference"), extra_args=("--requirepass", ADMIN_PW)
    ).start()
    admin = server.endpoint.client()
    for args in SETUSER:
        admin.execute_command("ACL", "SETUSER", *args)
    admin.close()
    yield server
    server.stop()


@pytest.fixture
def endpoints(acl_stack, reference):
    for endpoint in (acl_stack.direct, reference.endpoint):
        client = endpoint.client()
        client.flushall()
        client.close()
    return acl_stack.endpoint, reference.endpoint


def transcript(endpoint, commands) -> list[bytes]:
    with endpoint.raw(auth=False) as c:
        return [c.raw_command(*cmd) for cmd in commands]


def test_users_answer_like_redis(endpoints):
    proxy, ref = endpoints
    want = transcript(ref, TRANSCRIPT)
    assert want[0].startswith(b"-NOAUTH") and want[4] == b"+OK\r\n"
    assert b"-NOPERM" in want[8] and want[31].startswith(b"-EXECABORT")
    got = transcript(proxy, TRANSCRIPT)
    for cmd, g, w in zip(TRANSCRIPT, got, want):
        assert (cmd, g) == (cmd, w)


def test_refusals_word_for_word(endpoints):
    proxy, _ = endpoints
    with proxy.raw(auth=False) as c:
        assert c.raw_command("GET", "k") == b"-NOAUTH Authentication required.\r\n"
        assert c.raw_command("AUTH", "app", WRONG_PW) == (
            b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
        )
        assert c.command("AUTH", "app", APP_PW) == b"OK"
        assert c.raw_command("FLUSHALL") == (
            b"-NOPERM this user has no permissions to run the 'flushall' command\r\n"
        )
        assert c.raw_command("CONFIG", "SET", "x", "y") == (
            b"-NOPERM this user has no permissions to run the 'config|set' command\r\n"
        )
        # redis-server answers DEBUG's own enable-debug-command error first; readthru's
        # deny_commands refuses it as any other command.
        assert c.raw_command("DEBUG", "SLEEP", "0") == (
            b"-NOPERM this user has no permissions to run the 'debug' command\r\n"
        )
        assert c.raw_command("SET", "product:1", "v") == b"+OK\r\n"
        assert c.raw_command("MGET", "product:1", "nope:1") == (
            b"-NOPERM this user has no permissions to access one of the keys used as arguments\r\n"
        )


def test_hello_auth_with_a_user(endpoints):
    proxy, ref = endpoints
    bad = ("HELLO", "3", "AUTH", "app", WRONG_PW)
    assert transcript(proxy, [bad]) == transcript(ref, [bad])
    with proxy.raw(auth=False) as c:
        reply = c.command("HELLO", "3", "AUTH", "app", APP_PW)
        assert reply[b"proto"] == 3
        assert c.command("ACL", "WHOAMI") == b"app"
        assert c.raw_command("GET", "secret").startswith(b"-NOPERM")
        assert c.raw_command("GET", "user:9") == b"_\r\n"


def test_client_reply_off_silences_refusals_like_redis(endpoints):
    proxy, ref = endpoints
    script = [
        ("AUTH", "app", APP_PW),
        ("CLIENT", "REPLY", "OFF"),
        ("FLUSHALL",),
        ("GET", "secret"),
        ("CLIENT", "REPLY", "ON"),
        ("GET", "secret"),
        ("PING",),
    ]
    results = []
    for endpoint in (ref, proxy):
        with endpoint.raw(auth=False) as c:
            for cmd in script:
                c.send_command(*cmd)
            results.append(c.read_raw_replies(4))
    assert results[0][0] == b"+OK\r\n" and results[0][3] == b"+PONG\r\n"
    assert results[1] == results[0]


def test_readthru_command_needs_permission(endpoints):
    proxy, _ = endpoints
    with proxy.raw(auth=False) as c:
        assert c.command("AUTH", "app", APP_PW) == b"OK"
        assert c.raw_command("READTHRU", "STATS") == (
            b"-NOPERM this user has no permissions to run the 'readthru' command\r\n"
        )
        assert c.command("AUTH", "ops", OPS_PW) == b"OK"
        assert c.raw_command("READTHRU", "STATS").startswith(b"*")
        assert c.command("AUTH", ADMIN_PW) == b"OK"
        assert c.command("ACL", "WHOAMI") == b"default"
        assert c.raw_command("READTHRU", "STATS").startswith(b"*")


def test_acl_subcommands_do_not_reach_the_upstreams_users(endpoints, acl_stack):
    proxy, ref = endpoints
    direct = acl_stack.direct.client()
    before = direct.execute_command("ACL", "LIST")
    with proxy.raw() as c:  # the default user: everything allowed
        for args in (("SETUSER", "evil", "on", "nopass", "+@all", "~*"), ("DELUSER", "default"),
                     ("LIST",), ("USERS",), ("GETUSER", "default"), ("LOG",), ("SAVE",)):
            reply = c.raw_command("ACL", *args)
            assert reply.startswith(b"-ERR readthru does not proxy ACL " + args[0].encode()), reply
        assert c.command("ACL", "WHOAMI") == b"default"
        assert c.raw_command("ACL", "WHOAMI", "x") == (
            b"-ERR wrong number of arguments for 'acl|whoami' command\r\n"
        )
    assert direct.execute_command("ACL", "LIST") == before
    direct.close()
    # ACL CAT says nothing of anyone's users: answered by Redis as is (in its dict order).
    answers = []
    for endpoint in (proxy, ref):
        with endpoint.raw() as c:
            answers.append((c.raw_command("ACL", "CAT"), sorted(c.command("ACL", "CAT", "dangerous"))))
    assert answers[0] == answers[1]


def test_failed_auth_counted_and_logged_without_the_password(endpoints, acl_stack):
    proxy, _ = endpoints
    before = info_field(proxy, "auth_failures")
    assert info_field(proxy, "users") == 4
    with proxy.raw(auth=False) as c:
        assert c.raw_command("AUTH", "app", WRONG_PW).startswith(b"-WRONGPASS")
        assert c.raw_command("AUTH", WRONG_PW).startswith(b"-WRONGPASS")
        assert c.raw_command("HELLO", "3", "AUTH", "off", OFF_PW).startswith(b"-WRONGPASS")
        assert c.raw_command("AUTH", "evil\r\nWARNING forged", WRONG_PW).startswith(b"-WRONGPASS")
        assert c.raw_command("AUTH", "u" * 300, WRONG_PW).startswith(b"-WRONGPASS")
        assert c.command("AUTH", "app", APP_PW) == b"OK"
    assert info_field(proxy, "auth_failures") == before + 5
    log = acl_stack.proxy.log_path.read_text(errors="replace")
    assert "AUTH failed for user 'app'" in log
    assert "HELLO AUTH failed for user 'off'" in log
    assert "AUTH failed for user 'default'" in log
    assert "addr=127.0.0.1:" in log
    assert "user 'evil\\r\\nWARNING forged'" in log  # one line, escaped by the log
    assert "u" * 64 + "..." in log and "u" * 65 not in log
    # app has key patterns and may run EVAL; ops may read every key; off may do anything.
    assert "user 'app' has key patterns but may run scripts" in log
    assert "user 'ops' has key patterns" not in log and "user 'off' has key patterns" not in log
    for secret in (WRONG_PW, APP_PW, OFF_PW, OPS_PW, ADMIN_PW):
        assert secret not in log


def unix_conn(path: Path) -> RespConn:
    """A RespConn (which connects over TCP) on a unix socket instead."""
    conn = RespConn.__new__(RespConn)
    conn.sock = socket.socket(socket.AF_UNIX)
    conn.sock.settimeout(15)
    conn.sock.connect(str(path))
    conn.buf, conn.attributes = bytearray(), []
    return conn


def test_users_on_the_unix_socket(make_stack):
    sock_dir = Path(tempfile.mkdtemp(prefix="rt-", dir="/tmp"))  # short: under 108 bytes
    try:
        path = sock_dir / "rt.sock"
        stack = make_stack(requirepass=ADMIN_PW, extra=USERS_TOML, unixsocket=str(path))
        with unix_conn(path) as c:
            assert c.raw_command("GET", "user:1") == b"-NOAUTH Authentication required.\r\n"
            assert c.raw_command("AUTH", "app", WRONG_PW).startswith(b"-WRONGPASS")
            assert c.command("AUTH", "app", APP_PW) == b"OK"
            assert c.raw_command("GET", "secret").startswith(b"-NOPERM")
        log = stack.proxy.log_path.read_text(errors="replace")
        assert f"addr=unix:{path}: AUTH failed for user 'app'" in log
        assert WRONG_PW not in log
    finally:
        shutil.rmtree(sock_dir, ignore_errors=True)


# Protected mode. These bind 0.0.0.0 on an ephemeral port for a moment (or refuse to); every
# connection goes to 127.0.0.1.


def protected_config(tmp_path, upstream_port: int, text: str):
    port = free_port()
    path = tmp_path / "protected.toml"
    path.write_text(
        f'listen = "0.0.0.0:{port}"\n{text}\n[upstream]\naddress = "{HOST}:{upstream_port}"\n'
    )
    return path, port


@pytest.mark.parametrize("check_only", [False, True], ids=["start", "check_config"])
def test_protected_mode_refuses_to_start_beyond_loopback_without_password(
    tmp_path, acl_stack, check_only
):
    path, port = protected_config(tmp_path, acl_stack.upstream.port, "")
    argv = [readthru_bin(), "--config", str(path)] + (["--check-config"] if check_only else [])
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1, result.stderr
    assert "protected mode" in result.stderr
    assert f"0.0.0.0:{port}" in result.stderr
    assert "requirepass" in result.stderr and 'protected_mode = "no"' in result.stderr
    assert result.stderr.count("\n") == 1  # one clear line


@pytest.mark.parametrize(
    "text,password",
    [
        ('protected_mode = "no"', None),
        (f'requirepass = "{ADMIN_PW}"', ADMIN_PW),
        (f'[[users]]\nname = "default"\npassword = "{ADMIN_PW}"\ncommands = ["+@all"]', ADMIN_PW),
    ],
    ids=["protected_mode_no", "requirepass", "default_user_password"],
)
def test_protected_mode_lets_it_start(tmp_path, acl_stack, text, password):
    # [[users]] must come after the top-level keys; the [upstream] table follows it.
    path, port = protected_config(tmp_path, acl_stack.upstream.port, text)
    proc = Process("readthru", tmp_path)
    proc._spawn([readthru_bin(), "--config", str(path)])
    try:
        assert proc.wait_ready(port, password=password), proc.log()
    finally:
        assert proc.stop() == 0, proc.log()
