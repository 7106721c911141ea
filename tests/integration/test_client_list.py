"""CLIENT LIST, CLIENT INFO, CLIENT KILL and INFO's connected_clients describe the clients connected
to readthru (an application's Redis endpoint), not readthru's upstream connections. Real
redis-server, real readthru, redis-py and raw sockets."""

import socket

import pytest

from harness import wait_for
from resp_client import RespError, Verbatim

pytestmark = pytest.mark.proxy_only


def parse_list(text: bytes) -> list[dict]:
    rows = []
    for line in text.decode().splitlines():
        rows.append(dict(field.split("=", 1) for field in line.split(" ")))
    return rows


def addr_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"{host}:{port}"


def closed_by_peer(conn) -> bool:
    conn.sock.settimeout(5)
    try:
        return conn.sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_client_list_shows_readthru_clients_with_their_names(proxy, upstream):
    a = proxy.raw()
    b = proxy.raw()
    try:
        assert a.command("CLIENT", "SETNAME", "alpha") == b"OK"
        assert b.command("CLIENT", "SETNAME", "beta") == b"OK"
        rows = parse_list(a.command("CLIENT", "LIST"))
        by_name = {row["name"]: row for row in rows}
        assert {"alpha", "beta"} <= by_name.keys()
        # Each row is that client: its address, readthru's address, its id, its last command.
        assert by_name["alpha"]["addr"] == addr_of(a.sock)
        assert by_name["beta"]["addr"] == addr_of(b.sock)
        assert by_name["alpha"]["laddr"] == f"{proxy.host}:{proxy.port}"
        assert by_name["alpha"]["cmd"] == "client|list"
        assert by_name["beta"]["cmd"] == "client|setname"
        assert int(by_name["beta"]["id"]) == b.command("CLIENT", "ID")
        # Redis's field order, as redis-server prints it.
        direct = parse_list(upstream.client().execute_command("CLIENT", "LIST"))[0]
        assert list(by_name["alpha"].keys()) == list(direct.keys())
        # The names never reached the upstream's connections.
        upstream_names = {row["name"] for row in parse_list(
            upstream.client().execute_command("CLIENT", "LIST"))}
        assert "alpha" not in upstream_names
    finally:
        a.close()
        b.close()


def test_client_list_filters_by_type_and_id_in_argument_order(make_stack):
    proxy = make_stack().endpoint  # no other test's subscribers
    sub = proxy.raw()
    plain = proxy.raw()
    try:
        sub.send_command("SUBSCRIBE", "ch")
        assert sub.read_reply() == [b"subscribe", b"ch", 1]
        sub_id = int(parse_list(plain.command("CLIENT", "LIST", "TYPE", "pubsub"))[0]["id"])
        pubsub = parse_list(plain.command("CLIENT", "LIST", "TYPE", "pubsub"))
        assert len(pubsub) == 1 and pubsub[0]["flags"] == "P" and pubsub[0]["sub"] == "1"
        normal = parse_list(plain.command("CLIENT", "LIST", "TYPE", "normal"))
        assert sub_id not in {int(row["id"]) for row in normal}
        plain_id = plain.command("CLIENT", "ID")
        rows = parse_list(plain.command("CLIENT", "LIST", "ID", sub_id, 999, plain_id))
        assert [int(row["id"]) for row in rows] == [sub_id, plain_id]
        assert plain.command("CLIENT", "LIST", "ID", 999) == b""
    finally:
        sub.close()
        plain.close()


def test_client_info_is_the_callers_line_and_verbatim_in_resp3(proxy, upstream):
    c = proxy.raw()
    try:
        assert c.command("CLIENT", "SETNAME", "me") == b"OK"
        info = c.command("CLIENT", "INFO")
        assert info.endswith(b"\n")
        row = parse_list(info)[0]
        assert row["name"] == "me" and row["addr"] == addr_of(c.sock) and row["resp"] == "2"
        assert row["cmd"] == "client|info"
        # As redis-server counts them for the client asking: its query buffer still holds the
        # request being run, and nothing is owed to it yet.
        d = upstream.raw()
        direct_row = parse_list(d.command("CLIENT", "INFO"))[0]
        d.close()
        for field in ("qbuf", "obl", "oll", "omem", "multi", "flags", "events"):
            assert row[field] == direct_row[field], field
        c.command("HELLO", "3")
        info3 = c.command("CLIENT", "INFO")
        assert isinstance(info3, Verbatim) and parse_list(info3)[0]["resp"] == "3"
        assert parse_list(c.command("CLIENT", "LIST", "ID", row["id"]))[0]["name"] == "me"
    finally:
        c.close()


def test_client_kill_addr_closes_that_client_and_no_other(proxy, upstream):
    victim = proxy.raw()
    bystander = proxy.client()
    killer = proxy.client()
    try:
        assert victim.command("PING") == b"PONG"
        upstream_before = len(parse_list(upstream.client().execute_command("CLIENT", "LIST")))
        assert killer.execute_command("CLIENT", "KILL", addr_of(victim.sock)) == b"OK"
        assert closed_by_peer(victim)
        assert bystander.set("k", "v") and killer.get("k") == b"v"
        # The old form with an address nobody has, and the new form counting.
        with pytest.raises(Exception, match="No such client"):
            killer.execute_command("CLIENT", "KILL", "1.2.3.4:5")
        assert killer.execute_command("CLIENT", "KILL", "ADDR", "1.2.3.4:5") == 0
        # readthru's upstream connections were not what got killed.
        upstream_after = len(parse_list(upstream.client().execute_command("CLIENT", "LIST")))
        assert upstream_after >= upstream_before - 1  # the direct client of the count above
    finally:
        victim.close()
        bystander.close()
        killer.close()


def test_client_kill_skipme_counts_readthru_clients(make_stack):
    """Redis's own suite: "CLIENT KILL SKIPME YES/NO will kill all clients". A readthru of its
    own: redis-py clients of other tests may keep their sockets open until garbage-collected."""
    proxy = make_stack().endpoint
    me = proxy.raw()
    others = [proxy.raw() for _ in range(2)]
    try:
        def connected():
            return int(dict(line.split(":", 1) for line in me.command("INFO", "clients")
                            .decode().splitlines() if ":" in line)["connected_clients"])

        wait_for(lambda: connected() == 3, "three clients connected", timeout=5)
        assert me.command("CLIENT", "KILL", "SKIPME", "yes") == 2
        for o in others:
            assert closed_by_peer(o)
        wait_for(lambda: connected() == 1, "only the caller left", timeout=5)
        more = [proxy.raw() for _ in range(2)]
        wait_for(lambda: connected() == 3, "three clients again", timeout=5)
        assert me.command("CLIENT", "KILL", "SKIPME", "no") == 3
        assert closed_by_peer(me)
        for o in more:
            assert closed_by_peer(o)
            o.close()
        r = proxy.client()
        assert r.ping()
        r.close()
    finally:
        me.close()
        for o in others:
            o.close()


def test_client_kill_by_type_and_by_the_id_a_pinned_client_reports(make_stack):
    proxy = make_stack().endpoint  # no other test's subscribers
    sub = proxy.raw()
    pinned = proxy.raw()
    killer = proxy.client()
    try:
        sub.send_command("SUBSCRIBE", "ch")
        assert sub.read_reply() == [b"subscribe", b"ch", 1]
        assert killer.execute_command("CLIENT", "KILL", "TYPE", "pubsub") == 1
        assert closed_by_peer(sub)
        # SELECT 9 pins the client: its CLIENT ID is its dedicated upstream connection's.
        assert pinned.command("SELECT", "9") == b"OK"
        pinned_id = pinned.command("CLIENT", "ID")
        rows = parse_list(killer.execute_command("CLIENT", "LIST"))
        assert pinned_id in {int(row["id"]) for row in rows}
        assert [row["db"] for row in rows if int(row["id"]) == pinned_id] == ["9"]
        assert killer.execute_command("CLIENT", "KILL", "ID", pinned_id) == 1
        assert closed_by_peer(pinned)
        assert killer.ping()
    finally:
        sub.close()
        pinned.close()
        killer.close()


def test_info_counts_readthru_clients_and_its_maxclients(make_stack):
    # A readthru of its own: redis-py clients of other tests may stay open until collected.
    stack = make_stack()
    proxy, upstream = stack.endpoint, stack.direct
    held = [proxy.raw() for _ in range(3)]
    direct_extra = [upstream.client() for _ in range(4)]
    try:
        for d in direct_extra:
            d.ping()
        r = proxy.client()
        # The 3 held, this one; the 4 direct clients are the upstream's, not readthru's.
        wait_for(lambda: r.info("clients")["connected_clients"] == 4, "4 readthru clients")
        assert r.info("clients")["maxclients"] == 10000  # readthru's default, not Redis's
        r.close()
    finally:
        for c in held:
            c.close()
        for d in direct_extra:
            d.close()


BAD_CLIENT_COMMANDS = [
    ("CLIENT", "KILL"),
    ("CLIENT", "KILL", "ID"),
    ("CLIENT", "KILL", "ID", "abc"),
    ("CLIENT", "KILL", "ID", "0"),
    ("CLIENT", "KILL", "TYPE", "foo"),
    ("CLIENT", "KILL", "SKIPME", "maybe"),
    ("CLIENT", "KILL", "foo", "bar", "baz"),
    ("CLIENT", "KILL", "BOGUS", "x"),
    ("CLIENT", "KILL", "USER", "nosuchuser"),
    ("CLIENT", "KILL", "ADDR", "1.1.1.1:1"),
    ("CLIENT", "LIST", "TYPE"),
    ("CLIENT", "LIST", "TYPE", "bad"),
    ("CLIENT", "LIST", "ID"),
    ("CLIENT", "LIST", "ID", "1", "x"),
    ("CLIENT", "LIST", "foo"),
    ("CLIENT", "INFO", "x"),
]


@pytest.mark.parametrize("command", BAD_CLIENT_COMMANDS, ids=lambda c: " ".join(c))
def test_client_list_and_kill_errors_match_redis(proxy, upstream, command):
    replies = []
    for endpoint in (upstream, proxy):
        c = endpoint.raw()
        try:
            replies.append(c.command(*command))
        finally:
            c.close()
    direct, through = replies
    if command[2:4] == ("USER", "nosuchuser") and not isinstance(direct, RespError):
        pytest.skip("this redis-server has a user by that name")
    assert through == direct


def test_client_commands_inside_multi_keep_the_transaction_framed(proxy):
    c = proxy.raw()
    try:
        assert c.command("MULTI") == b"OK"
        assert c.command("CLIENT", "INFO") == b"QUEUED"
        assert c.command("SET", "k", "v") == b"QUEUED"
        replies = c.command("EXEC")
        assert len(replies) == 2 and b"cmd=" in replies[0] and replies[1] == b"OK"
        # A KILL queued would run upstream, against readthru's own connections: refused, and
        # the transaction with it.
        assert c.command("MULTI") == b"OK"
        refused = c.command("CLIENT", "KILL", "TYPE", "normal")
        assert isinstance(refused, RespError) and b"inside MULTI" in refused
        assert isinstance(c.command("EXEC"), RespError)
        assert c.command("PING") == b"PONG"
    finally:
        c.close()


def test_client_unblock_with_readthru_id_reaches_a_client_blocked_on_a_known_connection(
    make_stack,
):
    """A dedicated connection learns its id in Redis from the first CLIENT ID sent on it (not
    in its handshake: MONITOR would show that). From then on CLIENT UNBLOCK with the readthru
    id of a client blocked on it is rewritten to that id."""
    stack = make_stack()  # its own pool: one dedicated connection, reused
    blocked = stack.endpoint.raw(timeout=10)
    other = stack.endpoint.client()
    try:
        readthru_id = blocked.command("CLIENT", "ID")
        assert readthru_id >= 2**40  # not pinned: readthru's own id
        assert blocked.command("WATCH", "w") == b"OK"  # pinned
        upstream_id = blocked.command("CLIENT", "ID")
        assert upstream_id < 2**40
        assert parse_list(other.execute_command("CLIENT", "LIST", "ID", upstream_id))[0][
            "addr"] == addr_of(blocked.sock)
        assert blocked.command("UNWATCH") == b"OK"  # the connection goes back to the pool
        assert blocked.command("CLIENT", "ID") == readthru_id
        blocked.send_command("BLPOP", "nothing", "0")  # pinned again, to that connection
        wait_for(lambda: other.execute_command("CLIENT", "UNBLOCK", readthru_id) == 1,
                 "CLIENT UNBLOCK with readthru's id")
        assert blocked.read_reply() is None
    finally:
        blocked.close()
        other.close()


def test_hello_reports_the_id_client_id_reports(proxy):
    c = proxy.raw()
    try:
        assert c.command("HELLO", "3")[b"id"] == c.command("CLIENT", "ID")
        assert c.command("WATCH", "w") == b"OK"  # pinned: the connection's id in Redis
        pinned_id = c.command("CLIENT", "ID")
        assert pinned_id < 2**40
        assert c.command("HELLO", "3")[b"id"] == pinned_id
    finally:
        c.close()


def test_a_unix_socket_client_is_listed_as_redis_lists_one(make_stack):
    """redis-server names a unix socket client "<unixsocket>:0" at both ends, with flag U."""
    import shutil
    import tempfile
    from pathlib import Path

    directory = Path(tempfile.mkdtemp(prefix="rt-", dir="/tmp"))
    try:
        path = directory / "readthru.sock"
        make_stack(unixsocket=str(path))
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(str(path))
        s.settimeout(5)
        s.sendall(b"CLIENT INFO\r\n")
        buf = b""
        while not buf.endswith(b"\n\r\n"):
            chunk = s.recv(4096)
            assert chunk, buf
            buf += chunk
        s.close()
        row = parse_list(buf.split(b"\r\n", 1)[1][:-2])[0]
        assert row["addr"] == row["laddr"] == f"{path}:0"
        assert row["flags"] == "U"
        assert row["fd"] != "-1" and row["cmd"] == "client|info"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_info_stats_counts_readthru_connections_received_and_refused_at_maxclients(make_stack):
    stack = make_stack(maxclients=2)
    proxy = stack.endpoint

    def stat(conn, field):
        text = conn.command("INFO", "stats").decode()
        return int(dict(line.split(":", 1) for line in text.splitlines() if ":" in line)[field])

    first = proxy.raw()
    second = None
    try:
        received = stat(first, "total_connections_received")  # the harness's checks, and first
        assert received >= 1 and stat(first, "rejected_connections") == 0
        second = proxy.raw()
        assert stat(first, "total_connections_received") == received + 1
        third = proxy.raw()  # over maxclients 2: refused, as redis-server refuses it
        assert third.read_reply() == RespError(b"ERR max number of clients reached")
        third.close()
        assert stat(first, "rejected_connections") == 1
        assert stat(second, "total_connections_received") == received + 1
        # The upstream's own counters are its: readthru's connections to it, and direct ones.
        direct = stack.direct.client().info("stats")
        assert direct["rejected_connections"] == 0
    finally:
        first.close()
        if second is not None:
            second.close()
