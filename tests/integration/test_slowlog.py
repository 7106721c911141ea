"""READTHRU SLOWLOG: the loads that took at least slowlog_log_slower_than microseconds.

Loads are made slow by holding the database locked (loader_stack.DbGate) for longer than the
threshold once the load is known to be queued, so "slower than the threshold" holds on any machine
without guessing how long a query takes; "faster than the threshold" is asserted only against a
threshold no load can reach (days). Replies and error texts are compared with redis-server's own
SLOWLOG (the oracle), with "SLOWLOG" read as "READTHRU SLOWLOG".
"""

from __future__ import annotations

import time

import pytest

from loader_stack import DbGate, Delta, Loader, LoaderStack
from resp_client import RespError

pytestmark = pytest.mark.proxy_only

SCHEMA = """
CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT);
CREATE TABLE docs(id INTEGER PRIMARY KEY, payload TEXT);
INSERT INTO users VALUES (1, 'ann'), (2, 'bob'), (3, 'cy'), (4, 'di'), (5, 'ed'), (6, 'flo');
INSERT INTO docs VALUES (1, 'this is {not json');
"""

NAME_OF = "SELECT name FROM users WHERE id = :id"


def loaders() -> list[Loader]:
    return [
        Loader("user", "user:{id:int}", NAME_OF, timeout="60s"),
        Loader("bad", "bad:{id:int}", "SELECT json(payload) FROM docs WHERE id = :id"),
        Loader("tmo", "tmo:{id:int}", NAME_OF, timeout="200ms"),
        Loader("byname", "byname:{name}", "SELECT name FROM users WHERE name = :name"),
    ]


def make_ls(tmp_path, **config) -> LoaderStack:
    return LoaderStack(tmp_path / "ls", db_script=SCHEMA, loaders=loaders(), **config)


@pytest.fixture(scope="module")
def every(tmp_path_factory):
    """Every load is kept (threshold 0), the newest 5."""
    ls = make_ls(tmp_path_factory.mktemp("slowlog"), slowlog_log_slower_than=0, slowlog_max_len=5)
    yield ls
    log = ls.log()
    assert ls.stop() == 0, f"readthru did not exit 0; stderr:\n{log}"


@pytest.fixture
def ls(every):
    client = every.direct.client()
    try:
        client.flushall()
    finally:
        client.close()
    slowlog(every, "RESET")
    yield every
    if not every.alive():
        pytest.fail(f"readthru died during the test; stderr:\n{every.log()}")


@pytest.fixture
def private(tmp_path):
    """A stack of the test's own, with the slowlog config it asks for."""
    made: list[LoaderStack] = []

    def make(**config) -> LoaderStack:
        made.append(make_ls(tmp_path / f"s{len(made)}", **config))
        return made[-1]

    yield make
    for s in made:
        log = s.log()
        assert s.stop() == 0, f"readthru did not exit 0; stderr:\n{log}"


def slowlog(ls: LoaderStack, *args):
    with ls.endpoint.raw() as c:
        return c.command("READTHRU", "SLOWLOG", *args)


def get(ls: LoaderStack, key: str):
    with ls.endpoint.raw() as c:
        return c.command("GET", key)


def direct_get(ls: LoaderStack, key: str):
    with ls.direct.raw() as c:
        return c.command("GET", key)


def check_entry(entry, *, loader: str, key: str, outcome: bytes, since: int, until: int):
    """[id, unix time, microseconds, [loader, key], outcome]"""
    assert isinstance(entry, list) and len(entry) == 5, entry
    entry_id, ts, us, args, got_outcome = entry
    assert isinstance(entry_id, int) and entry_id >= 0, entry
    assert isinstance(ts, int) and since <= ts <= until, (entry, since, until)
    assert isinstance(us, int) and us >= 0, entry
    assert args == [loader.encode(), key.encode()], entry
    assert got_outcome == outcome, entry


def slow_get(ls: LoaderStack, loader: str, key: str, hold: float):
    """GETs `key` with the database locked for `hold` seconds after the load is queued: the load
    takes at least that long. Returns the reply."""
    d = Delta(ls, loader)
    with ls.endpoint.raw() as c, DbGate(ls.db_path) as gate:
        c.send_command("GET", key)
        ls.wait_for(lambda: d.now()["loads"] == 1, what="the load to be queued")
        time.sleep(hold)
        gate.release()
        return c.read_reply()


def test_a_slow_load_is_kept_with_id_time_duration_loader_key_and_outcome(private):
    s = private(slowlog_log_slower_than=300_000)  # 300 ms
    since = int(time.time())
    assert slow_get(s, "user", "user:1", hold=0.4) == b"ann"
    until = int(time.time()) + 1
    entries = slowlog(s, "GET")
    assert len(entries) == 1, entries
    check_entry(entries[0], loader="user", key="user:1", outcome=b"value", since=since,
                until=until)
    assert entries[0][2] >= 400_000, entries  # the load waited for the gate that long at least
    assert slowlog(s, "LEN") == 1


def test_loads_faster_than_the_threshold_are_not_kept(private):
    s = private(slowlog_log_slower_than=10**12)  # 11 days
    assert get(s, "user:1") == b"ann"
    assert get(s, "user:100") is None
    assert s.loader_stats("user")["loads"] == 2
    assert slowlog(s, "LEN") == 0
    assert slowlog(s, "GET") == []


def test_a_negative_threshold_keeps_nothing(private):
    s = private(slowlog_log_slower_than=-1)
    assert slow_get(s, "user", "user:2", hold=0.1) == b"bob"
    assert get(s, "user:3") == b"cy"
    assert slowlog(s, "LEN") == 0
    assert slowlog(s, "GET", "-1") == []


def test_threshold_zero_keeps_every_load_with_its_outcome(ls):
    since = int(time.time())
    assert get(ls, "user:1") == b"ann"
    assert get(ls, "user:99") is None
    with ls.endpoint.raw() as c:
        error = c.command("GET", "bad:1")
    assert isinstance(error, RespError) and error.startswith(b"ERR loader 'bad' failed: "), error
    until = int(time.time()) + 1
    entries = slowlog(ls, "GET")
    assert len(entries) == 3, entries
    # Newest first; the outcome of an error is the reply its waiters got.
    check_entry(entries[0], loader="bad", key="bad:1", outcome=bytes(error), since=since,
                until=until)
    check_entry(entries[1], loader="user", key="user:99", outcome=b"absent", since=since,
                until=until)
    check_entry(entries[2], loader="user", key="user:1", outcome=b"value", since=since,
                until=until)
    ids = [e[0] for e in entries]
    assert ids == [ids[2] + 2, ids[2] + 1, ids[2]], ids


def test_a_timed_out_load_is_kept_with_the_timeout_error(ls):
    since = int(time.time())
    with ls.endpoint.raw() as c, DbGate(ls.db_path):
        reply = c.command("GET", "tmo:1")
        assert reply == b"ERR loader 'tmo' timed out after 200 ms", reply
        # The query itself gives up at its deadline too; then it is kept.
        ls.wait_for(lambda: slowlog(ls, "LEN") == 1, what="the timed-out load in the slowlog")
    entries = slowlog(ls, "GET")
    check_entry(entries[0], loader="tmo", key="tmo:1", outcome=bytes(reply), since=since,
                until=int(time.time()) + 1)
    assert entries[0][2] >= 200_000, entries


def test_hits_negative_hits_and_coalesced_waiters_add_no_entry(ls):
    assert get(ls, "user:4") == b"di"
    assert get(ls, "user:98") is None
    assert slowlog(ls, "LEN") == 2
    # A hit, and a key remembered as absent: no load, no entry.
    ls.wait_for(lambda: direct_get(ls, "user:4") == b"di", what="the fill")
    assert get(ls, "user:4") == b"di"
    assert get(ls, "user:98") is None
    assert slowlog(ls, "LEN") == 2
    # Three clients waiting for one load: one entry.
    d = Delta(ls, "user")
    conns = [ls.endpoint.raw() for _ in range(3)]
    try:
        with DbGate(ls.db_path):
            for c in conns:
                c.send_command("GET", "user:5")
            ls.wait_for(lambda: d.now()["misses"] == 3, what="3 misses")
        assert [c.read_reply() for c in conns] == [b"ed"] * 3
    finally:
        for c in conns:
            c.close()
    assert d.now()["loads"] == 1
    assert slowlog(ls, "LEN") == 3
    assert slowlog(ls, "GET", "1")[0][3] == [b"user", b"user:5"]


def test_max_len_keeps_the_newest(ls):
    for i in range(1, 7):
        assert get(ls, f"user:{i}") is not None
    assert slowlog(ls, "LEN") == 5
    entries = slowlog(ls, "GET", "-1")
    assert [e[3][1] for e in entries] == [f"user:{i}".encode() for i in range(6, 1, -1)]
    ids = [e[0] for e in entries]
    assert ids == sorted(ids, reverse=True) and ids[0] - ids[-1] == 4, ids


def test_get_count_as_redis_default_10_minus_1_all(private):
    s = private(slowlog_log_slower_than=0)  # max_len 128 by default
    for i in range(12):
        assert get(s, f"user:{1000 + i}") is None
    assert slowlog(s, "LEN") == 12
    assert len(slowlog(s, "GET")) == 10
    assert len(slowlog(s, "GET", "-1")) == 12
    assert len(slowlog(s, "GET", "3")) == 3
    assert slowlog(s, "GET", "0") == []
    assert len(slowlog(s, "GET", "1000")) == 12
    assert slowlog(s, "GET", "2")[0][3] == [b"user", b"user:1011"]  # newest first
    assert len(slowlog(s, "get", "5")) == 5  # subcommands in any case


def test_reset_empties_and_ids_go_on(ls):
    assert get(ls, "user:1") == b"ann"
    first = slowlog(ls, "GET")[0][0]
    assert slowlog(ls, "RESET") == b"OK"
    assert slowlog(ls, "LEN") == 0
    assert slowlog(ls, "GET") == []
    assert get(ls, "user:97") is None
    assert slowlog(ls, "GET")[0][0] == first + 1  # as Redis: RESET does not restart ids


def test_long_keys_and_outcomes_are_cut_as_redis_cuts_arguments(ls):
    name = "n" * 300
    assert get(ls, f"byname:{name}") is None
    entry = slowlog(ls, "GET")[0]
    key = f"byname:{name}".encode()
    assert entry[3] == [b"byname", key[:128] + b"... (179 more bytes)"], entry
    assert entry[4] == b"absent"


def test_entries_are_arrays_in_resp3_too(ls):
    assert get(ls, "user:1") == b"ann"
    with ls.endpoint.raw() as c:
        c.command("HELLO", "3")
        raw = c.raw_command("READTHRU", "SLOWLOG", "GET")
        assert raw.startswith(b"*1\r\n*5\r\n:"), raw
        assert b"*2\r\n$4\r\nuser\r\n$6\r\nuser:1\r\n$5\r\nvalue\r\n" in raw, raw
        assert c.command("READTHRU", "SLOWLOG", "LEN") == 1


def redis_error(ls: LoaderStack, *args) -> bytes:
    """redis-server's own SLOWLOG error for `args`, worded for READTHRU SLOWLOG."""
    with ls.direct.raw() as c:
        reply = c.command("SLOWLOG", *args)
    assert isinstance(reply, RespError), (args, reply)
    return (bytes(reply).replace(b"'slowlog", b"'readthru|slowlog")
            .replace(b"Try SLOWLOG HELP.", b"Try READTHRU SLOWLOG HELP."))


@pytest.mark.parametrize("args", [
    (),
    ("FOO",),
    ("foo", "bar"),
    ("GET", "-2"),
    ("GET", "x"),
    ("GET", "1.5"),
    ("GET", "+3"),
    ("GET", "01"),
    ("GET", ""),
    ("GET", "99999999999999999999"),
    ("GET", "1", "2"),
    ("get", "1", "2"),
    ("LEN", "x"),
    ("RESET", "x"),
    ("HELP", "x"),
])
def test_bad_arguments_answer_redis_slowlog_errors(ls, args):
    with ls.endpoint.raw() as c:
        reply = c.command("READTHRU", "SLOWLOG", *args)
    assert isinstance(reply, RespError), reply
    assert bytes(reply) == redis_error(ls, *args)


def test_help_lists_the_subcommands(ls):
    lines = slowlog(ls, "HELP")
    assert lines[0] == b"READTHRU SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    names = [line.split()[0] for line in lines[1:] if not line.startswith(b" ")]
    assert names == [b"GET", b"LEN", b"RESET", b"HELP"]
    with ls.endpoint.raw() as c:
        top = c.command("READTHRU", "HELP")
    assert any(line.startswith(b"SLOWLOG") for line in top), top
