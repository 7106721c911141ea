"""Authentication: readthru's own requirepass answers exactly like a redis-server with the same
requirepass (including the stricter pre-auth protocol limits), and readthru authenticates its own
upstream connections, shared and pinned, with a password or an ACL user's name and password."""

import time

import pytest

from harness import Readthru, RedisServer, free_port, wait_for, write_config
from resp_client import RespError, encode

pytestmark = pytest.mark.proxy_only

PASSWORD = "s3cret-pass"

BEFORE_AUTH = [
    ("PING",),
    ("GET", "k"),
    ("HELLO", "3"),
    ("AUTH", "wrong"),
    ("AUTH", "nosuchuser", PASSWORD),
    ("HELLO", "3", "AUTH", "default", "wrong"),
    ("CLIENT", "SETNAME", "x"),
    ("AUTH", PASSWORD),
    ("PING",),
    ("SET", "k", "v"),
    ("GET", "k"),
    ("AUTH", "default", PASSWORD),
    ("AUTH", "default", "wrong"),
    ("GET", "k"),
]


@pytest.fixture
def reference(tmp_path):
    """A redis-server with the same requirepass: the oracle for readthru's answers."""
    server = RedisServer(tmp_path / "reference", extra_args=("--requirepass", PASSWORD)).start()
    yield server
    server.stop()


@pytest.fixture
def guarded(make_stack):
    return make_stack(requirepass=PASSWORD)


def transcript(endpoint) -> list[bytes]:
    with endpoint.raw(auth=False) as c:
        return [c.raw_command(*cmd) for cmd in BEFORE_AUTH]


def test_requirepass_answers_like_redis(guarded, reference):
    reference.endpoint.client().flushall()
    want = transcript(reference.endpoint)
    assert want[0].startswith(b"-NOAUTH") and want[7] == b"+OK\r\n"
    guarded.direct.client().flushall()
    assert transcript(guarded.endpoint) == want


@pytest.mark.parametrize(
    "bad,text",
    [
        (b"*100\r\n", b"unauthenticated multibulk length"),
        (b"*1\r\n$20000\r\n", b"unauthenticated bulk length"),
    ],
    ids=["multibulk_count", "bulk_length"],
)
def test_pre_auth_protocol_limits_like_redis(guarded, reference, bad, text):
    results = []
    for endpoint in (reference.endpoint, guarded.endpoint):
        with endpoint.raw(auth=False) as c:
            c.send(b"PING\r\n" + bad)
            results.append(c.read_until_close(10))
    assert results[0][0].endswith(b"-ERR Protocol error: " + text + b"\r\n") and results[0][1]
    assert results[1] == results[0]


def test_hello_with_auth_authenticates(guarded):
    with guarded.endpoint.raw(auth=False) as c:
        reply = c.command("HELLO", "3", "AUTH", "default", PASSWORD, "SETNAME", "h3")
        assert reply[b"proto"] == 3
        assert c.command("SET", "k", "v") == b"OK"
        assert c.command("CLIENT", "GETNAME") == b"h3"


def test_large_request_allowed_after_auth(guarded):
    with guarded.endpoint.raw(auth=False) as c:
        assert c.command("AUTH", PASSWORD) == b"OK"
        value = b"v" * 100000
        c.send(encode("SET", "big", value) + encode("MSET", *(f"k{i}" for i in range(200))))
        assert c.read_reply() == b"OK"
        assert c.read_reply() == b"OK"
        assert c.command("GET", "big") == value


def test_readthru_authenticates_its_upstream_connections(make_stack):
    stack = make_stack(upstream_password=PASSWORD, upstream_args=("--requirepass", PASSWORD))
    with stack.endpoint.raw() as c:  # the client itself needs no password
        assert c.command("SET", "shared", "1") == b"OK"
        assert c.command("SELECT", "2") == b"OK"  # a pinned connection, authenticated too
        assert c.command("SET", "pinned", "2") == b"OK"
        assert c.command("MULTI") == b"OK"
        assert c.command("INCR", "pinned") == b"QUEUED"
        assert c.command("EXEC") == [3]
        c.send_command("BLPOP", "empty", "0.1")
        assert c.read_raw_reply() == b"*-1\r\n"
    direct = stack.direct.client(db=2)
    try:
        assert direct.get("pinned") == b"3"
    finally:
        direct.close()
    assert stack.direct.client().get("shared") == b"1"


ACL_USER = ("--user", "alice", "on", ">alice-pass", "~*", "&*", "+@all")


def upstream_users(stack) -> list[tuple[str, str, str]]:
    """(user, db, resp) of every connection redis-server has, but the one asking."""
    direct = stack.direct.client()
    try:
        me = direct.client_id()
        return sorted((c["user"], c["db"], c["resp"]) for c in direct.client_list()
                      if int(c["id"]) != me)
    finally:
        direct.close()


def test_readthru_authenticates_its_upstream_connections_as_an_acl_user(make_stack):
    # The default user has another password: only AUTH alice alice-pass gets in as alice.
    stack = make_stack(
        connections=1,
        upstream_password="alice-pass",
        upstream_extra='username = "alice"\n',
        upstream_args=("--requirepass", PASSWORD, *ACL_USER),
    )
    with stack.endpoint.raw() as resp2, stack.endpoint.raw() as pinned, \
            stack.endpoint.raw() as resp3:
        assert resp2.command("SET", "k", "v") == b"OK"  # a shared RESP2 connection: AUTH alice
        assert pinned.command("SELECT", "2") == b"OK"  # a dedicated one, on db 2
        assert pinned.command("SET", "k", "v") == b"OK"
        resp3.command("HELLO", "3")
        assert resp3.command("SET", "k3", "v") == b"OK"  # a shared RESP3 one: HELLO 3 AUTH alice
        users = upstream_users(stack)
    assert {user for user, _, _ in users} == {"alice"}, users
    assert ("alice", "2", "2") in users and ("alice", "0", "3") in users, users


def test_wrong_upstream_password_backs_off_instead_of_reconnecting_in_a_loop(tmp_path):
    upstream = RedisServer(tmp_path / "redis", extra_args=("--requirepass", PASSWORD)).start()
    listen_port = free_port()
    config = write_config(tmp_path / "readthru.toml", listen_port=listen_port,
                          upstream_port=upstream.port, upstream_password="wrong")
    proxy = Readthru(tmp_path / "readthru", upstream.port, config=config,
                     listen_port=listen_port).start(upstream_up=False)
    try:
        with proxy.endpoint.raw() as c:
            reply = c.command("GET", "k")
            assert isinstance(reply, RespError) and reply.text.startswith("ERR upstream"), reply
        direct = upstream.endpoint.client()
        before = direct.info("stats")["total_connections_received"]
        time.sleep(1.0)
        attempts = direct.info("stats")["total_connections_received"] - before - 1  # INFO's own
        # Backoff from 50 ms doubling to 2 s: a handful of attempts a second, not thousands.
        assert attempts <= 20, f"{attempts} connections in a second"
        assert "WRONGPASS" in proxy.log()
    finally:
        assert proxy.stop() == 0, proxy.log()
        upstream.stop()


# readthru without users of its own (no requirepass, no [[users]]): authentication is the
# upstream's, as if the client talked to Redis.
BOB = ("--user", "bob", "on", ">bob-pass", "~bob:*", "+@all")


def upstream_connections(stack) -> list[dict]:
    direct = stack.direct.client()
    try:
        me = direct.client_id()
        return [c for c in direct.client_list() if int(c["id"]) != me]
    finally:
        direct.close()


def test_without_users_of_its_own_readthru_passes_auth_to_the_upstream(make_stack):
    stack = make_stack(upstream_args=BOB)
    session = [
        ("AUTH", "bob", "wrong"),
        ("ACL", "WHOAMI"),
        ("AUTH", "bob", "bob-pass"),
        ("ACL", "WHOAMI"),
        ("SET", "bob:1", "x"),
        ("SET", "not-bobs", "x"),  # the upstream's ACL refuses it, in its own words
        ("GET", "bob:1"),
        ("RESET",),
        ("ACL", "WHOAMI"),
        ("SET", "not-bobs", "y"),
    ]
    replies = {}
    for endpoint in (stack.direct, stack.endpoint):
        stack.direct.client().flushall()
        with endpoint.raw() as c, stack.endpoint.raw() as bystander:
            replies[endpoint] = [c.raw_command(*cmd) for cmd in session]
            assert bystander.command("ACL", "WHOAMI") == b"default"
    assert replies[stack.endpoint] == replies[stack.direct]
    assert replies[stack.endpoint][3] == b"$3\r\nbob\r\n"
    assert replies[stack.endpoint][5].startswith(b"-NOPERM")


def test_acl_user_commands_reach_the_upstream_when_readthru_has_no_users(make_stack):
    stack = make_stack()
    r = stack.endpoint.client()
    assert r.execute_command("ACL", "SETUSER", "carol", "on", ">pw", "+ping") == b"OK"
    assert stack.direct.client().execute_command("ACL", "GETUSER", "carol") is not None
    assert b"carol" in r.execute_command("ACL", "USERS")
    assert r.execute_command("ACL", "DELUSER", "carol") == 1


def test_a_connection_a_clients_auth_went_through_serves_nobody_else(make_stack):
    stack = make_stack(upstream_args=BOB)
    with stack.endpoint.raw() as c:
        assert c.command("PING") == b"PONG"
        baseline = len(upstream_connections(stack))
        assert c.command("AUTH", "bob", "bob-pass") == b"OK"
        assert len(upstream_connections(stack)) == baseline + 1
        # RESET makes the connection Redis's default user's, not readthru's upstream user's:
        # the client goes back to the shared connections and that one is closed, not pooled.
        assert c.command("RESET") == b"RESET"
        assert c.command("PING") == b"PONG"
        wait_for(lambda: len(upstream_connections(stack)) == baseline,
                 f"the AUTHed connection stayed open: {upstream_connections(stack)}")
        assert c.command("AUTH", "bob", "bob-pass") == b"OK"
    wait_for(lambda: not [u for u in upstream_connections(stack) if u["user"] == "bob"],
             "bob's connection outlived its client")


def test_auth_with_readthrus_own_upstream_credentials_takes_no_dedicated_connection(make_stack):
    stack = make_stack(connections=1, upstream_password=PASSWORD,
                       upstream_args=("--requirepass", PASSWORD))
    with stack.endpoint.raw() as c:
        assert c.command("SET", "k", "v") == b"OK"
        baseline = len(upstream_connections(stack))
        assert c.command("AUTH", PASSWORD) == b"OK"
        assert c.command("AUTH", "default", PASSWORD) == b"OK"
        assert c.command("GET", "k") == b"v"
        assert len(upstream_connections(stack)) == baseline
        wrong = c.command("AUTH", "wrong")  # other credentials: the upstream's answer
        assert isinstance(wrong, RespError) and wrong.code == b"WRONGPASS"
        assert c.command("GET", "k") == b"v"


def test_hello_auth_without_users_of_its_own_goes_to_the_upstream(make_stack):
    # What RESP3 clients (node-redis) send on connect when their URL carries credentials.
    stack = make_stack(upstream_args=BOB)
    seen = {}
    for endpoint in (stack.direct, stack.endpoint):
        with endpoint.raw() as c:
            wrong = c.raw_command("HELLO", "3", "AUTH", "bob", "wrong")
            hello = c.command("HELLO", "3", "AUTH", "bob", "bob-pass", "SETNAME", "app")
            assert isinstance(hello, dict), hello
            hello.pop(b"id")  # the connection's id: Redis's, in both cases
            rest = [c.raw_command(*cmd) for cmd in (
                ("ACL", "WHOAMI"), ("CLIENT", "GETNAME"), ("GET", "bob:none"),
                ("SET", "not-bobs", "x"), ("RESET",), ("ACL", "WHOAMI"), ("GET", "bob:none"),
            )]
            seen[endpoint] = (wrong, hello, rest)
    assert seen[stack.endpoint] == seen[stack.direct]
    wrong, hello, rest = seen[stack.endpoint]
    assert wrong.startswith(b"-WRONGPASS") and hello[b"proto"] == 3
    assert rest[:3] == [b"$3\r\nbob\r\n", b"$3\r\napp\r\n", b"_\r\n"]  # RESP3 after HELLO 3
    assert rest[-2:] == [b"$7\r\ndefault\r\n", b"$-1\r\n"]  # RESP2 again after RESET
