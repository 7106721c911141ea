"""Write-through to SQLite: real redis-server, real SQLite database (built here), real readthru.

Every write goes through readthru; what happened is checked outside it: the rows themselves
(sqlite3 on the same file), an `audit` table that triggers fill on every INSERT/UPDATE/DELETE
(so "nothing was written" is observable, not just "the row looks the same"), the key in Redis
through a direct client, and READTHRU STATS deltas. redis-server is the oracle for replies: the
same command on a plain key, sent directly, must answer the same bytes.

Failures are made by the database itself: triggers RAISE(ABORT, '<message>') on a given value (the
message is SQLite's error text, the same on every version), the write lock is held
(writer_stack.WriteGate) to time a write out, and Redis is made to refuse writes (maxmemory 1,
noeviction) to fail the Redis half after the database half committed.
"""

from __future__ import annotations

import re
import threading
import time

import pytest

from harness import free_port, write_config
from loader_stack import Backend, Loader, build_db, check_config, db_execute, loaders_toml
from resp_client import RespError, RespMap, encode
from writer_stack import (
    WRITER_FIELDS,
    WriteGate,
    Writer,
    WriterDelta,
    WriterStack,
    audit_sql,
    reject_sql,
    wait_for,
    writers_toml,
)

pytestmark = pytest.mark.proxy_only

POISON_MSG = "poison value rejected"
UNDELETABLE_MSG = "row is undeletable"
SLOW_TIMEOUT_MS = 300

SCHEMA = (
    """
CREATE TABLE kv(id TEXT PRIMARY KEY, v TEXT);
CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT, email TEXT);
"""
    + audit_sql("kv")
    + audit_sql("users", value_column="name")
    + reject_sql("kv", "v", "poison", POISON_MSG, "INSERT")
    + reject_sql("kv", "v", "poison", POISON_MSG, "UPDATE")
    # rows listed in `protect` cannot be deleted (the fixture empties it before cleaning up)
    + "CREATE TABLE protect(id TEXT PRIMARY KEY);\n"
    + "CREATE TRIGGER kv_protect BEFORE DELETE ON kv WHEN OLD.id IN (SELECT id FROM protect) "
    + f"BEGIN SELECT RAISE(ABORT, '{UNDELETABLE_MSG}'); END;\n"
    + reject_sql("users", "name", "poison", POISON_MSG, "INSERT")
    + reject_sql("users", "name", "poison", POISON_MSG, "UPDATE")
)

KV_UPSERT = ("INSERT INTO kv(id, v) VALUES (:id, :value) "
             "ON CONFLICT(id) DO UPDATE SET v = excluded.v")
KV_DELETE = "DELETE FROM kv WHERE id = :id"
USERS_UPSERT = ("INSERT INTO users(id, name, email) VALUES (:id, :name, :email) "
                "ON CONFLICT(id) DO UPDATE SET name = excluded.name, email = excluded.email")
USERS_DELETE = "DELETE FROM users WHERE id = :id"

WRITERS = [
    Writer("kv", "kv:{id}", KV_UPSERT, KV_DELETE, mode="through"),
    Writer("uh", "uh:{id:int}", USERS_UPSERT, USERS_DELETE),  # mode defaults to "through"
    # The same table through other keys, with a short deadline (the timeout test).
    Writer("slow", "slow:{id}", KV_UPSERT, KV_DELETE, timeout=f"{SLOW_TIMEOUT_MS}ms"),
]
LOADERS = [
    # The usual pairing: a loader and a writer on one template. negative_ttl 0: no memory of
    # absent rows across the tests' direct database edits.
    Loader("kvl", "kv:{id}", "SELECT v FROM kv WHERE id = :id", negative_ttl="0s"),
    Loader("uhl", "uh:{id:int}", "SELECT name, email FROM users WHERE id = :id", type="hash",
           negative_ttl="0s"),
]


@pytest.fixture(scope="module")
def module_ws(tmp_path_factory):
    ws = WriterStack(tmp_path_factory.mktemp("writethrough"), db_script=SCHEMA, loaders=LOADERS,
                     writers=WRITERS)
    yield ws
    log = ws.logs()
    rc = ws.stop()
    assert rc == 0, f"readthru exited with {rc} on SIGTERM; stderr:\n{log}"


@pytest.fixture
def ws(module_ws):
    client = module_ws.direct.client()
    try:
        client.flushall()
    finally:
        client.close()
    for table in ("protect", "kv", "users", "audit"):
        db_execute(module_ws.db_path, f"DELETE FROM {table}")
    yield module_ws
    if not module_ws.alive():
        pytest.fail(f"readthru died during the test; stderr:\n{module_ws.log()}")


@pytest.fixture
def r(ws):
    client = ws.endpoint.client()
    yield client
    client.close()


@pytest.fixture
def d_r(ws):
    client = ws.direct.client()
    yield client
    client.close()


@pytest.fixture
def c(ws):
    """A raw RESP2 connection to readthru (exact error texts)."""
    with ws.endpoint.raw() as conn:
        yield conn


@pytest.fixture
def dc(ws):
    """A raw RESP2 connection to redis-server itself: the oracle."""
    with ws.direct.raw() as conn:
        yield conn


def err(reply) -> str:
    assert isinstance(reply, RespError), f"expected an error reply, got {reply!r}"
    return reply.text


def kv_rows(ws) -> dict:
    return dict(ws.db("SELECT id, v FROM kv"))


def user_rows(ws) -> dict:
    return {i: (n, e) for i, n, e in ws.db("SELECT id, name, email FROM users")}


def failed(writer: str, msg: str) -> str:
    return f"ERR writer '{writer}' failed: {msg}"


def multi_refused(writer: str) -> str:
    return f"ERR writer '{writer}': write-through keys cannot be written inside MULTI"


# -- round trip ------------------------------------------------------------------------------------

TRICKY = 'Zoë "quoted" \\ back\nslash\ttab \u2603 \'; DROP TABLE kv; --'


def test_set_writes_the_row_get_returns_it_del_deletes_it(ws, r, d_r):
    d = WriterDelta(ws, "kv")
    assert r.set("kv:a", "v1") is True
    assert kv_rows(ws) == {"a": "v1"}  # the database first: there when the reply comes
    assert d_r.get("kv:a") == b"v1"
    assert r.get("kv:a") == b"v1"

    d_r.delete("kv:a")  # evicted: read through from the row written
    assert r.get("kv:a") == b"v1"

    assert r.set("kv:a", TRICKY) is True  # bound as a parameter, bytes exact
    assert kv_rows(ws) == {"a": TRICKY}
    assert r.get("kv:a") == TRICKY.encode()

    assert r.delete("kv:a") == 1
    assert kv_rows(ws) == {}
    assert d_r.exists("kv:a") == 0
    assert r.get("kv:a") is None  # the loader finds no row either
    delta = d.now()
    assert delta["writes"] == 3 and delta["db_writes"] == 3, delta
    assert delta["errors"] == 0 and delta["timeouts"] == 0, delta
    assert [op for (op,) in ws.db("SELECT op FROM audit ORDER BY seq")] == [
        "insert", "update", "delete"]


def test_failed_database_write_answers_the_error_and_leaves_redis_untouched(ws, r, d_r, c):
    assert r.set("kv:p", "old") is True
    assert r.hset("uh:1", mapping={"name": "n1", "email": "e1"}) == 2
    audit = ws.audit_count()
    d_kv, d_uh = WriterDelta(ws, "kv"), WriterDelta(ws, "uh")

    assert err(c.command("SET", "kv:p", "poison")) == failed("kv", POISON_MSG)
    assert err(c.command("SET", "kv:q", "poison", "EX", "100")) == failed("kv", POISON_MSG)
    assert err(c.command("SETEX", "kv:q", "100", "poison")) == failed("kv", POISON_MSG)
    assert err(c.command("HSET", "uh:1", "name", "poison")) == failed("uh", POISON_MSG)
    assert err(c.command("HSET", "uh:2", "name", "poison", "email", "e2")) == failed(
        "uh", POISON_MSG)

    assert d_r.get("kv:p") == b"old" and d_r.pttl("kv:p") == -1
    assert d_r.exists("kv:q", "uh:2") == 0
    assert d_r.hgetall("uh:1") == {b"name": b"n1", b"email": b"e1"}
    assert kv_rows(ws) == {"p": "old"}
    assert user_rows(ws) == {1: ("n1", "e1")}
    assert ws.audit_count() == audit
    dk, du = d_kv.now(), d_uh.now()
    assert dk["errors"] == 3 and dk["db_writes"] == 0, dk
    assert du["errors"] == 2 and du["db_writes"] == 0, du
    # the connection is still good, and so is the key
    assert c.command("SET", "kv:p", "new") == b"OK"
    assert kv_rows(ws) == {"p": "new"}


def test_database_write_timeout_answers_the_error_and_leaves_redis_untouched(ws, d_r, c):
    d = WriterDelta(ws, "slow")
    with WriteGate(ws.db_path):
        start = time.monotonic()
        reply = c.command("SET", "slow:t1", "v")
        waited = time.monotonic() - start
        assert err(reply) == f"ERR writer 'slow' timed out after {SLOW_TIMEOUT_MS} ms"
        assert waited >= SLOW_TIMEOUT_MS / 1000 * 0.9, waited
        assert d_r.exists("slow:t1") == 0
    # The write that timed out must not land later either (the client was told it failed).
    time.sleep(1.0)
    assert kv_rows(ws) == {}, "a timed-out write reached the database after its error reply"
    assert d_r.exists("slow:t1") == 0
    delta = d.now()
    assert delta["timeouts"] == 1 and delta["db_writes"] == 0, delta
    # and the writer works again once the lock is gone (a busy machine may still make a write
    # take longer than the 300ms deadline: that one is rolled back, and it is sent again)
    deadline = time.monotonic() + 30
    while (reply := c.command("SET", "slow:t1", "v2")) != b"OK" and time.monotonic() < deadline:
        assert err(reply) == f"ERR writer 'slow' timed out after {SLOW_TIMEOUT_MS} ms"
    assert reply == b"OK", reply
    assert kv_rows(ws) == {"t1": "v2"}
    assert d_r.get("slow:t1") == b"v2"


def test_redis_failure_after_the_database_commit_leaves_no_key_cached(ws, r, d_r, c, dc):
    """maxmemory 1 + noeviction: Redis refuses SET/MSET/HSET (OOM) but allows DEL. The database
    write commits first; readthru must then DEL the key so the old value is not served."""
    assert r.set("kv:o", "old") is True
    assert r.mset({"kv:o1": "old1", "kv:o2": "old2"}) is True
    assert r.hset("uh:5", mapping={"name": "old5", "email": "e5"}) == 2
    d_r.config_set("maxmemory-policy", "noeviction")
    d_r.config_set("maxmemory", "1")
    try:
        oom = dc.command("SET", "plain:o", "x")  # the oracle: Redis's own error
        assert isinstance(oom, RespError) and oom.code == b"OOM", oom
        with ws.endpoint.raw() as other:
            # Readers through readthru never see the old value after the error reply (whichever
            # connection they come on); the row's value is what they get.
            assert c.command("SET", "kv:o", "new") == oom
            assert other.command("GET", "kv:o") == b"new"
            assert c.command("MSET", "kv:o1", "new1", "kv:o2", "new2") == oom
            assert other.command("MGET", "kv:o1", "kv:o2") == [b"new1", b"new2"]
            assert c.command("HSET", "uh:5", "name", "new5") == oom
            assert other.command("HGET", "uh:5", "name") == b"new5"
        # readthru DELs the keys (not necessarily before the error reply: a direct reader may
        # see them for a moment)
        wait_for(lambda: d_r.exists("kv:o", "kv:o1", "kv:o2", "uh:5") == 0, 10,
                 "the keys to be deleted from Redis")
    finally:
        d_r.config_set("maxmemory", "0")
    assert kv_rows(ws) == {"o": "new", "o1": "new1", "o2": "new2"}
    assert user_rows(ws) == {5: ("new5", "e5")}
    # read through again: the database's (new) values
    assert r.get("kv:o") == b"new"
    assert r.mget("kv:o1", "kv:o2") == [b"new1", b"new2"]
    assert r.hgetall("uh:5") == {b"name": b"new5", b"email": b"e5"}


def test_hset_on_a_key_holding_a_string_answers_wrongtype_and_stays_consistent(ws, d_r, c, dc):
    d_r.set("uh:7", "a string")
    dc.command("SET", "plain:7", "a string")
    oracle = dc.command("HSET", "plain:7", "name", "x")
    assert isinstance(oracle, RespError) and oracle.code == b"WRONGTYPE", oracle
    assert c.command("HSET", "uh:7", "name", "x") == oracle
    rows = user_rows(ws)
    cached = d_r.get("uh:7") if d_r.type("uh:7") == b"string" else d_r.type("uh:7")
    # Either the database was not written and Redis is as it was, or the database was written and
    # the key is gone from Redis. Never a database row next to a cached value that contradicts it.
    if rows:
        assert rows == {7: ("x", None)}, rows
        assert d_r.exists("uh:7") == 0, f"row written but Redis still holds {cached!r}"
    else:
        assert cached == b"a string", cached


# -- SET options, SETEX, PSETEX --------------------------------------------------------------------

# (name, preset (value, px) or None, options, writes?) -- the reply, the value and the TTL are
# compared with redis-server doing the same on a plain key; `writes` says whether the database must
# see the write (NX/XX whose condition fails: nothing anywhere).
SET_CASES = [
    ("plain", None, [], True),
    ("overwrite_clears_ttl", ("old", 100_000), [], True),
    ("ex", None, ["EX", "100"], True),
    ("px", None, ["PX", "100000"], True),
    ("exat", None, ["EXAT", "{now_s+100}"], True),
    ("pxat", None, ["PXAT", "{now_ms+100000}"], True),
    ("keepttl", ("old", 100_000), ["KEEPTTL"], True),
    ("nx_absent", None, ["NX"], True),
    ("nx_present", ("old", None), ["NX"], False),
    ("xx_absent", None, ["XX"], False),
    ("xx_present", ("old", 100_000), ["XX"], True),
    ("get_present", ("old", None), ["GET"], True),
    ("get_absent", None, ["GET"], True),
    ("nx_get_present", ("old", None), ["NX", "GET"], False),
    ("nx_get_absent", None, ["NX", "GET"], True),
    ("xx_get_absent", None, ["XX", "GET"], False),
    ("xx_ex_get_present", ("old", None), ["XX", "EX", "100", "GET"], True),
    ("nx_px_absent", None, ["NX", "PX", "100000"], True),
    ("xx_keepttl_present", ("old", 100_000), ["XX", "KEEPTTL"], True),
    ("lowercase_ex_nx", None, ["ex", "100", "nx"], True),
]


def _expand(options: list[str], now_s: int, now_ms: int) -> list[str]:
    return [o.replace("{now_s+100}", str(now_s + 100)).replace("{now_ms+100000}",
                                                                str(now_ms + 100_000))
            for o in options]


@pytest.mark.parametrize("name,preset,options,writes", SET_CASES, ids=[c[0] for c in SET_CASES])
def test_set_option_replies_like_redis_and_sets_the_right_ttl(ws, r, d_r, c, dc, name, preset,
                                                              options, writes):
    key, plain = f"kv:{name}", f"plain:{name}"
    if preset is not None:
        value, px = preset
        extra = ["PX", str(px)] if px else []
        assert c.command("SET", key, value, *extra) == b"OK"  # through readthru: row and key
        assert dc.command("SET", plain, value, *extra) == b"OK"
        assert kv_rows(ws) == {name: value}
    audit = ws.audit_count()
    d = WriterDelta(ws, "kv")
    now_ms = int(time.time() * 1000)
    opts = _expand(options, now_ms // 1000, now_ms)
    expected = dc.command("SET", plain, "new", *opts)
    got = c.command("SET", key, "new", *opts)
    assert got == expected, (got, expected)
    assert not isinstance(expected, RespError), expected  # all of these are valid

    assert d_r.get(key) == d_r.get(plain)
    p_want, p_got = d_r.pttl(plain), d_r.pttl(key)
    if p_want < 0:
        assert p_got == p_want, (p_got, p_want)
    else:
        assert abs(p_got - p_want) <= 3000, (p_got, p_want)
    rows = kv_rows(ws)
    if writes:
        assert rows == {name: "new"}, rows
        assert ws.audit_count() == audit + 1
        assert d.now()["db_writes"] == 1
    else:
        assert rows == ({name: preset[0]} if preset else {}), rows
        assert ws.audit_count() == audit, "a SET whose NX/XX condition failed wrote the database"
        assert d.now()["db_writes"] == 0


INVALID_SETS = [
    ("ex_zero", ["EX", "0"]),
    ("px_negative", ["PX", "-5"]),
    ("ex_not_a_number", ["EX", "soon"]),
    ("px_and_keepttl", ["PX", "100", "KEEPTTL"]),
    ("nx_and_xx", ["NX", "XX"]),
    ("unknown_option", ["FOREVER"]),
]


@pytest.mark.parametrize("name,options", INVALID_SETS, ids=[c[0] for c in INVALID_SETS])
def test_invalid_set_answers_redis_error_and_writes_nothing(ws, r, d_r, c, dc, name, options):
    key, plain = f"kv:{name}", f"plain:{name}"
    assert c.command("SET", key, "old") == b"OK"
    dc.command("SET", plain, "old")
    audit = ws.audit_count()
    expected = dc.command("SET", plain, "new", *options)
    assert isinstance(expected, RespError), expected
    assert c.command("SET", key, "new", *options) == expected
    assert kv_rows(ws) == {name: "old"}, "an invalid SET wrote the database"
    assert ws.audit_count() == audit
    assert d_r.get(key) == b"old", "an invalid SET changed (or dropped) the cached value"


def test_setex_and_psetex_write_the_row_and_set_the_ttl(ws, r, d_r, c, dc):
    audit = ws.audit_count()
    assert c.command("SETEX", "kv:se", "100", "v1") == dc.command("SETEX", "plain:se", "100", "v1")
    assert c.command("PSETEX", "kv:pse", "100000", "v2") == dc.command(
        "PSETEX", "plain:pse", "100000", "v2")
    assert kv_rows(ws) == {"se": "v1", "pse": "v2"}
    assert d_r.mget("kv:se", "kv:pse") == [b"v1", b"v2"]
    assert 97_000 <= d_r.pttl("kv:se") <= 100_000
    assert 97_000 <= d_r.pttl("kv:pse") <= 100_000
    assert ws.audit_count() == audit + 2
    for args in (("SETEX", "100", "v"), ("SETEX", "0", "v"), ("PSETEX", "-1", "v"),
                 ("SETEX", "ten", "v")):
        expected = dc.command(args[0], "plain:se", *args[1:])
        assert c.command(args[0], "kv:se", *args[1:]) == expected, args
    # the three invalid ones wrote nothing; the valid one rewrote "se"
    assert kv_rows(ws) == {"se": "v", "pse": "v2"}
    assert ws.audit_count() == audit + 3, "an invalid SETEX/PSETEX wrote the database"
    assert d_r.get("kv:se") == b"v"


# -- MSET ------------------------------------------------------------------------------------------


def test_mset_writes_every_writer_key_in_one_transaction(ws, r, d_r, c):
    d = WriterDelta(ws, "kv")
    assert r.mset({"kv:m1": "a", "kv:m2": "b", "plain:m": "c", "kv:m3": "x"}) is True
    assert kv_rows(ws) == {"m1": "a", "m2": "b", "m3": "x"}
    assert d_r.mget("kv:m1", "kv:m2", "plain:m", "kv:m3") == [b"a", b"b", b"c", b"x"]
    audit = ws.audit_count()

    # One row fails: none is written, and Redis is untouched (the plain key included).
    reply = c.command("MSET", "kv:m1", "A", "plain:m", "C", "kv:m4", "poison", "kv:m2", "B")
    assert err(reply) == failed("kv", POISON_MSG)
    assert kv_rows(ws) == {"m1": "a", "m2": "b", "m3": "x"}
    assert ws.audit_count() == audit, "part of a failed MSET reached the database"
    assert d_r.mget("kv:m1", "kv:m2", "plain:m", "kv:m4") == [b"a", b"b", b"c", None]

    # The same key twice: the last value wins, as in Redis.
    assert c.command("MSET", "kv:m1", "first", "kv:m1", "last") == b"OK"
    assert kv_rows(ws)["m1"] == "last"
    assert d_r.get("kv:m1") == b"last"
    delta = d.now()
    assert delta["errors"] == 1, delta
    assert delta["writes"] == 3, delta  # three MSET commands


# -- hashes ----------------------------------------------------------------------------------------


def test_hash_writes_whole_rows(ws, r, d_r, c):
    assert r.hset("uh:1", mapping={"name": "a", "email": "a@x"}) == 2
    assert user_rows(ws) == {1: ("a", "a@x")}
    assert r.hset("uh:1", "name", "b") == 0  # partial: email stays
    assert user_rows(ws) == {1: ("b", "a@x")}
    assert c.command("HMSET", "uh:1", "email", "b@x") == b"OK"
    assert user_rows(ws) == {1: ("b", "b@x")}
    assert r.hdel("uh:1", "email") == 1  # the column goes NULL, the row stays
    assert user_rows(ws) == {1: ("b", None)}
    assert d_r.hgetall("uh:1") == {b"name": b"b"}
    assert r.hdel("uh:1", "nosuchfield") == 0
    assert user_rows(ws) == {1: ("b", None)}
    assert r.hdel("uh:1", "name") == 1  # the last field: the row goes
    assert user_rows(ws) == {}
    assert d_r.exists("uh:1") == 0

    # A field that is no column is kept in Redis; the row gets the columns it names.
    assert r.hset("uh:2", mapping={"name": "c", "color": "red"}) == 2
    assert user_rows(ws) == {2: ("c", None)}
    assert d_r.hgetall("uh:2") == {b"name": b"c", b"color": b"red"}
    assert r.hdel("uh:2", "name") == 1  # "color" is still there: the row stays, all NULL
    assert user_rows(ws) == {2: (None, None)}
    assert d_r.hgetall("uh:2") == {b"color": b"red"}


def test_hash_write_to_a_key_absent_in_redis_starts_from_the_loaders_row(ws, r, d_r):
    db_execute(ws.db_path, "INSERT INTO users VALUES (20, 'n20', 'e20')")
    assert d_r.exists("uh:20") == 0
    assert r.hset("uh:20", "name", "X") == 1  # Redis's reply: the key was absent there
    assert user_rows(ws) == {20: ("X", "e20")}, "a partial HSET dropped the other columns"
    # what is cached is what the database holds, not just the field written
    assert r.hgetall("uh:20") == {b"name": b"X", b"email": b"e20"}
    db_execute(ws.db_path, "INSERT INTO users VALUES (21, 'n21', 'e21')")
    assert r.hdel("uh:21", "email") == 0  # Redis's reply: no such key there
    assert user_rows(ws)[21] == ("n21", None), "HDEL of one field dropped the other columns"
    assert r.hgetall("uh:21") == {b"name": b"n21"}


# -- DEL, UNLINK -----------------------------------------------------------------------------------


def test_del_and_unlink_of_several_keys(ws, r, d_r, c):
    assert r.mset({"kv:d1": "1", "kv:d2": "2", "kv:d3": "3", "plain:d": "p"}) is True
    assert r.hset("uh:30", mapping={"name": "n30", "email": "e30"}) == 2
    d = WriterDelta(ws, "kv")
    assert r.delete("kv:d1", "kv:d2", "plain:d", "kv:nosuch") == 3
    assert kv_rows(ws) == {"d3": "3"}
    assert d_r.exists("kv:d1", "kv:d2", "plain:d") == 0
    assert r.unlink("kv:d3", "uh:30") == 2  # keys of two writers
    assert kv_rows(ws) == {} and user_rows(ws) == {}
    assert d_r.exists("kv:d3", "uh:30") == 0
    assert d.now()["writes"] == 2

    # a row the database has but Redis does not: Redis's reply (0), and the row is deleted
    db_execute(ws.db_path, "INSERT INTO kv VALUES ('dbonly', 'x')")
    assert r.delete("kv:dbonly") == 0
    assert kv_rows(ws) == {}


def test_failed_delete_deletes_nothing(ws, r, d_r, c):
    db_execute(ws.db_path, "INSERT INTO protect VALUES ('undeletable')")
    assert r.mset({"kv:u1": "1", "kv:undeletable": "2"}) is True
    assert r.hset("uh:31", "name", "n31") == 1
    audit = ws.audit_count()
    assert err(c.command("DEL", "kv:u1", "kv:undeletable")) == failed("kv", UNDELETABLE_MSG)
    assert err(c.command("UNLINK", "kv:undeletable", "kv:u1")) == failed("kv", UNDELETABLE_MSG)
    assert kv_rows(ws) == {"u1": "1", "undeletable": "2"}
    assert d_r.mget("kv:u1", "kv:undeletable") == [b"1", b"2"]
    # keys of two writers: still one transaction
    text = err(c.command("DEL", "uh:31", "kv:undeletable"))
    assert text.startswith("ERR writer '") and text.endswith(f" failed: {UNDELETABLE_MSG}"), text
    assert user_rows(ws) == {31: ("n31", None)}
    assert d_r.hgetall("uh:31") == {b"name": b"n31"}
    assert ws.audit_count() == audit


# -- MULTI, other databases, pipelines -------------------------------------------------------------


def test_writes_to_writer_keys_inside_multi_are_refused(ws, d_r, c):
    audit = ws.audit_count()
    assert c.command("MULTI") == b"OK"
    assert c.command("SET", "plain:t", "1") == b"QUEUED"
    assert c.command("GET", "kv:t") == b"QUEUED"  # reads are fine
    assert err(c.command("SET", "kv:t", "v")) == multi_refused("kv")
    assert err(c.command("SETEX", "kv:t", "10", "v")) == multi_refused("kv")
    assert err(c.command("MSET", "plain:u", "1", "kv:t", "v")) == multi_refused("kv")
    assert err(c.command("HSET", "uh:40", "name", "a")) == multi_refused("uh")
    assert err(c.command("HDEL", "uh:40", "name")) == multi_refused("uh")
    assert err(c.command("DEL", "kv:t")) == multi_refused("kv")
    assert err(c.command("UNLINK", "plain:t", "uh:40")) == multi_refused("uh")
    assert c.command("DISCARD") == b"OK"
    assert d_r.exists("plain:t", "plain:u", "kv:t", "uh:40") == 0
    assert ws.audit_count() == audit
    # out of MULTI again, the connection writes through
    assert c.command("SET", "kv:t", "v") == b"OK"
    assert kv_rows(ws) == {"t": "v"}


def test_a_client_on_another_db_writes_plain_redis(ws, d_r, c):
    """db != 0 keys are not the writer's: plain Redis, nothing in the database."""
    audit = ws.audit_count()
    assert c.command("SELECT", "1") == b"OK"
    assert c.command("SET", "kv:s1", "v") == b"OK"
    assert c.command("HSET", "uh:41", "name", "a") == 1
    assert c.command("DEL", "kv:s1") == 1
    assert c.command("SET", "kv:s2", "v") == b"OK"
    assert ws.audit_count() == audit and kv_rows(ws) == {} and user_rows(ws) == {}
    assert d_r.exists("kv:s2", "uh:41") == 0  # db 0
    d1 = ws.direct.client(db=1)
    try:
        assert d1.get("kv:s2") == b"v" and d1.hget("uh:41", "name") == b"a"
    finally:
        d1.close()


def test_pipelined_writes_keep_request_order(ws, d_r, c):
    cmds = [
        ("SET", "kv:p", "v1"), ("GET", "kv:p"), ("SET", "kv:p", "v2"), ("GET", "kv:p"),
        ("HSET", "uh:50", "name", "a"), ("HGET", "uh:50", "name"), ("DEL", "kv:p"),
        ("GET", "kv:p"), ("SET", "plain:p", "x"), ("GET", "plain:p"),
        ("SET", "kv:p", "poison"), ("GET", "kv:p"), ("SET", "kv:p", "v3", "GET"),
    ]
    c.send(b"".join(encode(*cmd) for cmd in cmds))
    replies = [c.read_reply() for _ in cmds]
    assert replies[:10] == [b"OK", b"v1", b"OK", b"v2", 1, b"a", 1, None, b"OK", b"x"], replies
    assert err(replies[10]) == failed("kv", POISON_MSG)
    assert replies[11:] == [None, None], replies
    assert kv_rows(ws) == {"p": "v3"}
    assert user_rows(ws) == {50: ("a", None)}

    # 200 writes and reads interleaved in one pipeline
    n = 200
    c.send(b"".join(encode("SET", f"kv:q{i}", f"w{i}") + encode("GET", f"kv:q{i}")
                    for i in range(n)))
    replies = [c.read_reply() for _ in range(2 * n)]
    assert replies == [x for i in range(n) for x in (b"OK", f"w{i}".encode())]
    rows = kv_rows(ws)
    assert all(rows[f"q{i}"] == f"w{i}" for i in range(n))


def test_concurrent_clients_each_write_lands(ws, d_r):
    threads_n, per = 8, 25
    errors: list = []

    def work(t: int) -> None:
        client = ws.endpoint.client()
        try:
            for i in range(per):
                assert client.set(f"kv:c{t}_{i}", f"{t}.{i}") is True
                if i % 5 == 0:
                    assert client.hset(f"uh:{1000 + t * per + i}", "name", f"{t}.{i}") == 1
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            client.close()

    threads = [threading.Thread(target=work, args=(t,)) for t in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors[:3]
    rows = kv_rows(ws)
    assert len(rows) == threads_n * per
    assert all(rows[f"c{t}_{i}"] == f"{t}.{i}" for t in range(threads_n) for i in range(per))
    assert len(user_rows(ws)) == threads_n * per // 5


def test_client_gone_during_a_write_leaves_database_and_redis_agreeing(ws, d_r):
    """The client sends a write and disconnects while the database is locked: once the lock goes,
    the write either happened in both places or in neither, and readthru serves on."""
    d = WriterDelta(ws, "kv")
    conn = ws.endpoint.raw()
    with WriteGate(ws.db_path):
        conn.send(encode("SET", "kv:gone", "v") + encode("HSET", "uh:70", "name", "n"))
        # the SET is dispatched, and waits for the database
        wait_for(lambda: d.now()["writes"] == 1, 10, "readthru to take the SET")
        conn.close()
    # Once the database has answered the SET (committed, failed or timed out), readthru decides
    # about Redis: only then can "both or neither" be judged.
    wait_for(lambda: sum(d.now()[k] for k in ("db_writes", "errors", "timeouts")) == 1, 30,
             "the SET's database write to end")
    if d.now()["db_writes"] == 1:  # committed: Redis must follow, client or not
        wait_for(lambda: d_r.get("kv:gone") is not None, 10, "Redis to get kv:gone too")
    rows = kv_rows(ws)
    assert d_r.get("kv:gone") == (b"v" if "gone" in rows else None), (rows, d_r.get("kv:gone"))
    assert ("gone" in rows) == (d.now()["db_writes"] == 1), (rows, d.now())
    # The HSET waited behind the SET (nothing else of a client goes upstream meanwhile); if it
    # got to the database at all, Redis follows it.
    wait_for(lambda: (d_r.hgetall("uh:70") == {b"name": b"n"}) == bool(user_rows(ws)), 10,
             "Redis and the database to agree on uh:70")
    users = user_rows(ws)
    assert d_r.hgetall("uh:70") == ({b"name": b"n"} if users else {}), users
    with ws.endpoint.raw() as c:
        assert c.command("SET", "kv:after", "x") == b"OK"
    assert kv_rows(ws)["after"] == "x"


# -- keys that are not the writers' ----------------------------------------------------------------


def test_keys_matching_no_writer_are_plain_redis(ws, r, d_r, c, dc):
    d_kv, d_uh = WriterDelta(ws, "kv"), WriterDelta(ws, "uh")
    audit = ws.audit_count()
    # "kv:a:b" has a ':' in the capture, "uh:abc" and "uh:007" are no canonical ints, "KV:1" is
    # another case, "kv:" has an empty capture.
    keys = ["plain:x", "kv:a:b", "uh:abc", "uh:007", "KV:1", "kv:", "xkv:1"]
    for key in keys:
        for cmd in (("SET", key, "v"), ("SET", key, "w", "GET"), ("DEL", key),
                    ("HSET", key, "name", "n"), ("HDEL", key, "name"), ("MSET", key, "1"),
                    ("UNLINK", key)):
            assert c.command(*cmd) == dc.command(*(cmd[0], "oracle") + cmd[2:]), (key, cmd)
    assert ws.audit_count() == audit
    assert kv_rows(ws) == {} and user_rows(ws) == {}
    assert d_kv.now()["writes"] == 0 and d_uh.now()["writes"] == 0
    # a writer key mixed with plain ones: only the writer key reaches the database
    assert r.mset({"plain:y": "1", "kv:y": "2", "kv:y:z": "3"}) is True
    assert kv_rows(ws) == {"y": "2"}


# -- introspection ---------------------------------------------------------------------------------


def test_stats_and_info_list_every_writer(ws, r):
    stats = ws.stats()
    for w in WRITERS:
        fields = stats.get(f"writer:{w.name}")
        assert fields is not None, sorted(stats)
        for f in WRITER_FIELDS:
            assert isinstance(fields.get(f), int) and fields[f] >= 0, (w.name, f, fields)
    for loader in LOADERS:  # the loaders are still there, first
        assert loader.name in stats
    names = list(stats)
    assert max(names.index(l.name) for l in LOADERS) < min(
        names.index(f"writer:{w.name}") for w in WRITERS), names

    info = ws.info()
    lines = {line.split(":", 1)[0]: line.split(":", 1)[1]
             for line in info.splitlines() if line.startswith("writer_")}
    for w in WRITERS:
        assert f"writer_{w.name}" in lines, info
        fields = dict(kv.split("=", 1) for kv in lines[f"writer_{w.name}"].split(","))
        assert fields["mode"] == "through", fields
        for f in WRITER_FIELDS:
            assert fields[f].isdigit(), (w.name, f, fields)


def test_resp3_client_writes_through_and_gets_errors(ws, d_r):
    with ws.endpoint.raw() as c:
        hello = c.command("HELLO", "3")
        assert isinstance(hello, RespMap) and hello[b"proto"] == 3, hello
        assert c.command("SET", "kv:r3", "v") == b"OK"
        assert c.command("SET", "kv:r3", "w", "GET") == b"v"
        assert c.command("HSET", "uh:60", "name", "a", "email", "b") == 2
        assert err(c.command("SET", "kv:r3", "poison")) == failed("kv", POISON_MSG)
        assert c.command("DEL", "kv:r3", "uh:60") == 2
    assert kv_rows(ws) == {} and user_rows(ws) == {}
    assert [op for (op,) in ws.db("SELECT op FROM audit ORDER BY seq")] == [
        "insert", "update", "insert", "delete", "delete"]


def test_injection_shaped_keys_bind_as_parameters(ws, r, d_r):
    key_id = "x'); DROP TABLE kv; --"
    assert r.set(f"kv:{key_id}", "v") is True
    assert kv_rows(ws) == {key_id: "v"}
    assert r.delete(f"kv:{key_id}") == 1
    assert kv_rows(ws) == {}


# -- configuration ---------------------------------------------------------------------------------

BAD_NAME = "broken"


def bad_writer(**kwargs) -> Writer:
    fields = dict(name=BAD_NAME, key="broken:{id}", upsert=KV_UPSERT, delete=KV_DELETE)
    fields.update(kwargs)
    return Writer(**fields)


GOOD_WRITER = Writer("good", "good:{id}", KV_UPSERT, KV_DELETE)
# case -> (writers after GOOD_WRITER, words of which the reason must name at least one)
CONFIG_CASES = {
    "unknown_backend": ([bad_writer(backend="nosuch")], ["nosuch", "backend"]),
    "upsert_does_not_prepare": ([bad_writer(upsert="INSERT INTO nosuchtable VALUES (:id)")],
                                ["nosuchtable"]),
    "delete_does_not_prepare": ([bad_writer(delete="DELETE FROM kv WHERE idd = :id")],
                                ["idd"]),
    "delete_uses_a_non_capture": ([bad_writer(delete="DELETE FROM kv WHERE v = :value")],
                                  ["value", "delete"]),
    "bad_mode": ([bad_writer(mode="sideways")], ["sideways", "mode"]),
    "bad_timeout": ([bad_writer(timeout="5 parsecs")], ["timeout", "parsecs", "duration"]),
    "bad_flush_interval": ([bad_writer(mode="behind", flush_interval="soon")],
                           ["flush_interval", "soon", "duration"]),
    "duplicate_name": ([bad_writer(), bad_writer(key="other:{id}")],
                       ["duplicate", "already", "used", BAD_NAME]),
    "missing_key": ([bad_writer(key=None)], ["key"]),
    "missing_upsert": ([bad_writer(upsert=None)], ["upsert"]),
}


@pytest.fixture(scope="module")
def config_db(tmp_path_factory):
    return build_db(tmp_path_factory.mktemp("wtconfig") / "app.db",
                    "CREATE TABLE kv(id TEXT PRIMARY KEY, v TEXT);")


def write_writer_config(tmp_path, db, writers):
    return write_config(tmp_path / "readthru.toml", listen_port=free_port(),
                        upstream_port=free_port(),
                        extra=loaders_toml([Backend(str(db))], []) + writers_toml(writers))


def test_good_writer_config_passes_check_config(tmp_path, config_db):
    path = write_writer_config(tmp_path, config_db, [
        GOOD_WRITER,
        Writer("b", "b:{id}", KV_UPSERT, KV_DELETE, mode="behind", timeout="1s",
               flush_interval="250ms", batch=10, max_attempts=3),
    ])
    result = check_config(path)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_bad_writer_config_exits_1_naming_the_writer(tmp_path, config_db, case):
    writers, words = CONFIG_CASES[case]
    path = write_writer_config(tmp_path, config_db, [GOOD_WRITER, *writers])
    result = check_config(path)
    assert result.returncode == 1, (result.returncode, result.stderr)
    m = re.search(rf"readthru: bad config: (?P<file>[^\n]*?):(?P<line>\d+):(?P<col>\d+): "
                  rf"writer '{BAD_NAME}': (?P<reason>[^\n]+)", result.stderr)
    assert m, f"no 'readthru: bad config: <file>:<line>:<col>: writer ...':\n{result.stderr}"
    assert m["file"].endswith(path.name), result.stderr
    lines = path.read_text().splitlines()
    starts = [i + 1 for i, line in enumerate(lines) if line.strip() == "[[writers]]"]
    # the line is inside the bad writer's table (the second bad one for a duplicate)
    bad_start = starts[2] if case == "duplicate_name" else starts[1]
    bad_end = (starts[starts.index(bad_start) + 1] - 1 if bad_start != starts[-1]
               else len(lines))
    assert bad_start <= int(m["line"]) <= bad_end, (m["line"], bad_start, bad_end, result.stderr)
    reason = m["reason"]
    assert any(w.lower() in reason.lower() for w in words), f"names none of {words}: {reason}"
