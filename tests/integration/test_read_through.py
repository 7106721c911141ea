"""Read-through from SQLite: real redis-server, real SQLite database (built here), real readthru.

Every test reads through readthru and checks, outside readthru, what happened: READTHRU STATS
deltas for the loader, the upstream's INFO commandstats (how many SETs/HSETs reached Redis), and
the key itself in Redis (value, PTTL) through a direct client. Keys are distinct per test, since the
negative cache lives in readthru's memory across tests; counters are compared as deltas.

A load is kept in progress for exactly as long as a test needs by holding the database locked
(loader_stack.DbGate): readthru's worker waits in SQLite's busy handler until the test releases it,
so "500 clients join one load" or "a DEL arrives during the load" hold on any machine, under ASan
too, without timing guesses. Only the timeout test burns CPU in a recursive CTE, to time out a query
that is really running.
"""

from __future__ import annotations

import hashlib
import json
import signal
import socket
import struct
import threading
import time

import pytest

from loader_stack import (
    COUNTERS,
    STAT_FIELDS,
    Backend,
    DbGate,
    Delta,
    Loader,
    LoaderStack,
    burn_sql,
    db_execute,
    db_query,
    parse_stats,
    sqlite_error,
)
from resp_client import NULL, RespError, RespMap, Verbatim, encode

pytestmark = pytest.mark.proxy_only

GATED_TIMEOUT = "60s"  # loaders that tests hold up with a DbGate
# qt's: passes while its load waits in the queue, yet is ample for a load on an idle worker.
QT_TIMEOUT_MS = 1000
NEGATIVE_TTL = 2.0  # the late loader's negative_ttl, in seconds
# Users 1..60 are "user<i>" (note NULL for even ids); user 61's name is full of characters JSON
# must escape.
SPECIAL_ID = 61
SPECIAL_NAME = 'Zoë "quoted" \\ back\nslash\ttab \u2603 </script>'
BIG_TEXT = None  # the 10 MB TEXT value of big:1, built once

SCHEMA = """
CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT, email TEXT, score REAL, note TEXT);
CREATE TABLE docs(id INTEGER PRIMARY KEY, payload TEXT);
CREATE TABLE nums(id INTEGER PRIMARY KEY, v INTEGER);
CREATE TABLE late(id INTEGER PRIMARY KEY, v TEXT);
CREATE TABLE big(id INTEGER PRIMARY KEY, body);
INSERT INTO docs VALUES (1, 'this is {not json'), (2, 'neither [is this');
INSERT INTO nums VALUES (1, -9223372036854775808), (2, -9223372036854775808);
"""


INSERT_USERS = "INSERT INTO users VALUES (?, ?, ?, ?, ?)"


def user_row(i: int) -> tuple:
    name = SPECIAL_NAME if i == SPECIAL_ID else f"user{i}"
    return (i, name, f"u{i}@example.com", i + 0.5, None if i % 2 == 0 else f"n{i}")


def big_text() -> str:
    global BIG_TEXT
    if BIG_TEXT is None:
        # 10 MB of varied text (a repeated short pattern would hide truncation or reordering).
        chunks, size, n = [], 0, 0
        while size < 10 * 1024 * 1024:
            chunk = hashlib.sha256(str(n).encode()).hexdigest()
            chunks.append(chunk)
            size += len(chunk)
            n += 1
        BIG_TEXT = "".join(chunks)[: 10 * 1024 * 1024]
    return BIG_TEXT


BLOB = bytes(range(256)) * 4 + b"\r\n\x00end"


def main_loaders() -> list[Loader]:
    name_of = "SELECT name FROM users WHERE id = :id"
    return [
        Loader("user", "user:{id}", name_of, type="string", ttl="60s", jitter="10s"),
        Loader("ujson", "ujson:{id:int}",
               "SELECT id, name, email, score, note FROM users WHERE id = :id", type="json"),
        Loader("uhash", "uhash:{id:int}",
               "SELECT name, email, score, note FROM users WHERE id = :id", type="hash", ttl="30s"),
        Loader("byname", "byname:{name}", "SELECT email FROM users WHERE name = :name", ttl="0s"),
        Loader("gated", "gated:{id}", name_of, ttl="60s", timeout=GATED_TIMEOUT),
        Loader("herd", "herd:{id}", name_of, ttl="60s", timeout=GATED_TIMEOUT),
        Loader("late", "late:{id}", "SELECT v FROM late WHERE id = :id",
               negative_ttl=f"{NEGATIVE_TTL:g}s"),
        Loader("lateoff", "lateoff:{id}", "SELECT v FROM late WHERE id = :id", negative_ttl="0s"),
        Loader("badjson", "badjson:{id}", "SELECT json(payload) FROM docs WHERE id = :id",
               timeout=GATED_TIMEOUT),
        Loader("overflow", "overflow:{id}", "SELECT abs(v) FROM nums WHERE id = :id",
               timeout=GATED_TIMEOUT),
        Loader("multi", "multi:{id}", "SELECT name FROM users WHERE id >= :id"),
        Loader("tmo", "tmo:{id}", burn_sql(1000, name_of), timeout="100ms"),
        Loader("big", "big:{id:int}", "SELECT body FROM big WHERE id = :id"),
        Loader("gatedhash", "gatedhash:{id:int}", "SELECT name, email FROM users WHERE id = :id",
               type="hash", ttl="60s", timeout=GATED_TIMEOUT),
    ]


def loader_query(name: str) -> str:
    return next(l.query for l in LOADERS if l.name == name)


LOADERS: list[Loader] = []


@pytest.fixture(scope="module")
def module_ls(tmp_path_factory):
    LOADERS[:] = main_loaders()
    ls = LoaderStack(
        tmp_path_factory.mktemp("readthrough"),
        db_script=SCHEMA,
        db_inserts=[
            (INSERT_USERS, [user_row(i) for i in range(1, SPECIAL_ID + 1)]),
            ("INSERT INTO big VALUES (?, ?)", [(1, big_text()), (2, BLOB)]),
        ],
        loaders=LOADERS,
        negative_cache_entries=10000,
    )
    yield ls
    log = ls.log()
    rc = ls.stop()
    assert rc == 0, f"readthru exited with {rc} on SIGTERM; stderr:\n{log}"


def flushall(ls: LoaderStack) -> None:
    client = ls.direct.client()
    try:
        client.flushall()
    finally:
        client.close()


@pytest.fixture
def ls(module_ls):
    flushall(module_ls)
    module_ls.reset_upstream_stats()
    yield module_ls
    if not module_ls.alive():
        pytest.fail(f"readthru died during the test; stderr:\n{module_ls.log()}")


@pytest.fixture
def r(ls):
    client = ls.endpoint.client()
    yield client
    client.close()


@pytest.fixture
def d_r(ls):
    client = ls.direct.client()
    yield client
    client.close()


def eventually(fn, expected, timeout: float = 5.0):
    """fn() once it equals `expected` (or its last value after `timeout`). readthru answers the
    waiters in the same loop turn as it sends the fill, so a client reading Redis directly right
    after its answer may be a moment ahead of the fill."""
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got == expected or time.monotonic() > deadline:
            return got
        time.sleep(0.005)


def settle() -> None:
    """Lets a fill already sent reach Redis and its reply reach readthru, before checking that
    nothing was written, or before expecting a hit rather than a join of the finished flight."""
    time.sleep(0.1)


def assert_misses_add_up(delta: dict) -> None:
    assert delta["misses"] == delta["negative_hits"] + delta["coalesced"] + delta["loads"], delta


def err(reply) -> str:
    assert isinstance(reply, RespError), f"expected an error reply, got {reply!r}"
    return reply.text


def rst_close(conn) -> None:
    """Closes with a TCP reset, as a client that crashes would."""
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


# -- miss, fill, hit -------------------------------------------------------------------------------


def test_string_miss_loads_once_then_hits_and_ttl_is_within_jitter(ls, r, d_r):
    d = Delta(ls, "user")
    assert r.get("user:5") == b"user5"
    first = d.now()
    assert first["misses"] == 1 and first["loads"] == 1 and first["fills"] == 1, first
    assert first["hits"] == 0, first
    assert eventually(lambda: d_r.get("user:5"), b"user5") == b"user5"  # it landed in Redis
    settle()
    for _ in range(3):
        assert r.get("user:5") == b"user5"
    delta = d.now()
    assert delta["loads"] == 1 and delta["hits"] == 3 and delta["misses"] == 1, delta
    assert_misses_add_up(delta)
    assert eventually(lambda: ls.cmdstat("set"), 1) == 1  # counted outside readthru

    # ttl = 60s, jitter = 10s: every stored TTL lies in [50s, 70s] (minus the time since the fill)
    pttls = []
    for i in range(10, 20):
        assert r.get(f"user:{i}") == f"user{i}".encode()
        assert eventually(lambda: d_r.exists(f"user:{i}"), 1) == 1
        pttls.append(d_r.pttl(f"user:{i}"))
    assert all(50_000 - 5_000 <= p <= 70_000 for p in pttls), pttls
    assert max(pttls) - min(pttls) > 1000, f"jitter not applied: {pttls}"
    assert eventually(lambda: ls.cmdstat("set"), 11) == 11


def test_ttl_zero_means_no_expiry_and_default_ttl_is_one_hour(ls, r, d_r):
    assert r.get("byname:user7") == b"u7@example.com"
    assert eventually(lambda: d_r.pttl("byname:user7"), -1) == -1
    assert r.get("ujson:7") is not None
    assert eventually(lambda: d_r.exists("ujson:7"), 1) == 1
    assert 3_600_000 - 10_000 <= d_r.pttl("ujson:7") <= 3_600_000


def test_json_loader_answers_the_row_as_a_json_object(ls, r, d_r):
    d = Delta(ls, "ujson")
    raw = r.get(f"ujson:{SPECIAL_ID}")
    obj = json.loads(raw)
    assert obj["id"] == SPECIAL_ID and type(obj["id"]) is int, obj
    assert obj["name"] == SPECIAL_NAME, obj
    assert obj["email"] == f"u{SPECIAL_ID}@example.com", obj
    assert obj["score"] == SPECIAL_ID + 0.5, obj
    assert obj["note"] == f"n{SPECIAL_ID}", obj
    assert eventually(lambda: d_r.get(f"ujson:{SPECIAL_ID}"), raw) == raw  # what Redis holds
    settle()

    even = json.loads(r.get("ujson:8"))  # note is NULL: null or left out, never a string
    assert {k: even[k] for k in ("id", "name", "email", "score")} == {
        "id": 8, "name": "user8", "email": "u8@example.com", "score": 8.5}, even
    assert even.get("note") is None, even

    assert r.get("ujson:9999") is None  # no row
    assert r.get(f"ujson:{SPECIAL_ID}") == raw  # a hit now
    delta = d.now()
    assert delta["loads"] == 3 and delta["fills"] == 2 and delta["hits"] == 1, delta
    assert eventually(lambda: ls.cmdstat("set"), 2) == 2


def test_string_loader_keeps_text_bytes_exact(ls, r):
    assert r.get(f"user:{SPECIAL_ID}") == SPECIAL_NAME.encode()


def test_hash_loader_fills_with_one_hset_and_omits_null_columns(ls, r, d_r):
    d = Delta(ls, "uhash")
    row12 = {b"name": b"user12", b"email": b"u12@example.com", b"score": b"12.5"}
    assert r.hgetall("uhash:12") == row12  # note is NULL: omitted
    assert eventually(lambda: d_r.hgetall("uhash:12"), row12) == row12
    settle()
    assert 30_000 - 5_000 <= d_r.pttl("uhash:12") <= 30_000
    assert r.hgetall("uhash:13")[b"note"] == b"n13"
    assert r.hgetall("uhash:12")[b"name"] == b"user12"  # a hit
    delta = d.now()
    assert delta["loads"] == 2 and delta["fills"] == 2 and delta["hits"] == 1, delta
    # one HSET per hash (inside the EVAL), counted by Redis
    assert eventually(lambda: ls.cmdstat("hset"), 2) == 2
    assert ls.cmdstat("set") == 0


def test_resp3_client_reads_through(ls, d_r):
    with ls.endpoint.raw() as c:
        hello = c.command("HELLO", "3")
        assert isinstance(hello, RespMap) and hello[b"proto"] == 3, hello
        d = Delta(ls, "user")
        assert c.command("GET", "user:21") == b"user21"
        assert c.command("GET", "user:9998") is NULL
        assert c.command("MGET", "user:22", "user:9997", "user:21") == [b"user22", NULL, b"user21"]
        h = c.command("HGETALL", "uhash:21")
        assert isinstance(h, RespMap), f"RESP3 HGETALL must be a map: {h!r}"
        assert dict(h) == {b"name": b"user21", b"email": b"u21@example.com", b"score": b"21.5",
                           b"note": b"n21"}
        assert c.command("HMGET", "uhash:22", "name", "nosuch") == [b"user22", NULL]
        empty = c.command("HGETALL", "uhash:9995")  # no row
        assert isinstance(empty, RespMap) and not empty, empty
        assert c.command("HGET", "uhash:23", "email") == b"u23@example.com"
        assert json.loads(c.command("GET", "ujson:21"))["name"] == "user21"
        assert err(c.command("GET", "multi:1")) == (
            "ERR loader 'multi' failed: query returned more than one row")
        delta = d.now()
        assert delta["loads"] == 4 and delta["fills"] == 2, delta
        # user:21 again: a hit, or a join of its flight if its fill's reply is still to come
        assert delta["hits"] + delta["coalesced"] == 1, delta
        stats = c.command("READTHRU", "STATS")
        assert isinstance(stats, RespMap), f"RESP3 READTHRU STATS must be a map: {stats!r}"
        parsed = parse_stats(stats)
        assert set(parsed) == {l.name for l in LOADERS}
        assert all(isinstance(parsed["user"][f], int) for f in STAT_FIELDS), parsed["user"]
    assert eventually(lambda: d_r.get("user:22"), b"user22") == b"user22"
    assert eventually(lambda: d_r.hget("uhash:22", "email"), b"u22@example.com") == (
        b"u22@example.com")


def test_readthru_stats_resp2_lists_every_loader_with_every_field(ls, r):
    reply = r.execute_command("READTHRU", "STATS")
    assert isinstance(reply, list), reply
    stats = parse_stats(reply)
    assert set(stats) == {l.name for l in LOADERS}
    for name, fields in stats.items():
        for f in STAT_FIELDS:  # (more fields are allowed)
            assert isinstance(fields.get(f), int) and fields[f] >= 0, (name, f, fields)


# -- single flight ---------------------------------------------------------------------------------


def test_500_concurrent_clients_on_one_cold_key_make_one_query(ls):
    """500 clients, each on its own connection, GET one cold key while the load is held up: all
    join the one load, one query runs, one SET reaches Redis."""
    n = 500
    key = "herd:1"
    d = Delta(ls, "herd")
    clients = [ls.endpoint.client(single_connection_client=True) for _ in range(n)]
    results: list = [None] * n
    try:
        for c in clients:
            assert c.ping()
        barrier = threading.Barrier(n)

        def work(i: int) -> None:
            try:
                barrier.wait(timeout=60)
                results[i] = clients[i].get(key)
            except Exception as exc:  # noqa: BLE001 - reported below
                results[i] = exc

        threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
        with DbGate(ls.db_path):
            for t in threads:
                t.start()
            ls.wait_for(lambda: d.now()["misses"] == n, timeout=60, what=f"{n} misses")
            assert all(x is None for x in results), "answered while the database was locked"
        for t in threads:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in threads)
    finally:
        for c in clients:
            c.close()
    bad = [x for x in results if x != b"user1"]
    assert not bad, f"{len(bad)} clients got something else, e.g. {bad[:3]}"
    delta = d.now()
    assert delta["loads"] == 1 and delta["coalesced"] == n - 1 and delta["hits"] == 0, delta
    assert delta["fills"] == 1, delta
    assert eventually(lambda: ls.cmdstat("set"), 1) == 1


def test_pipeline_of_one_cold_key_makes_one_load(ls):
    d = Delta(ls, "gated")
    with ls.endpoint.raw() as c, DbGate(ls.db_path) as gate:
        c.send(b"".join(encode("GET", "gated:2") for _ in range(20)))
        ls.wait_for(lambda: d.now()["misses"] == 20, what="20 misses")
        gate.release()
        assert [c.read_reply() for _ in range(20)] == [b"user2"] * 20
    delta = d.now()
    assert delta["loads"] == 1 and delta["coalesced"] == 19 and delta["fills"] == 1, delta
    assert eventually(lambda: ls.cmdstat("set"), 1) == 1


# -- MGET, hashes ----------------------------------------------------------------------------------


def test_mget_mixes_hits_misses_and_absent_rows_in_key_order(ls, r, d_r):
    d_r.set("user:3", "cached-three")  # Redis is asked first: its value wins over the database
    d_user, d_json = Delta(ls, "user"), Delta(ls, "ujson")
    keys = ["user:3", "user:4", "user:9990", "plain:1", "ujson:5", "user:6", "ujson:9990"]
    got = r.mget(keys)
    assert got[:4] == [b"cached-three", b"user4", None, None], got
    assert json.loads(got[4])["email"] == "u5@example.com", got
    assert got[5:] == [b"user6", None], got
    du, dj = d_user.now(), d_json.now()
    assert du["hits"] == 1 and du["misses"] == 3 and du["loads"] == 3 and du["fills"] == 2, du
    assert dj["misses"] == 2 and dj["loads"] == 2 and dj["fills"] == 1, dj
    assert eventually(lambda: d_r.mget("user:4", "user:6"), [b"user4", b"user6"]) == [
        b"user4", b"user6"]
    assert eventually(lambda: ls.cmdstat("set"), 4) == 4  # the test's own SET and three fills
    settle()
    assert d_r.exists("user:9990", "plain:1", "ujson:9990") == 0  # absent rows: nothing in Redis

    # Again: the loaded keys are hits, the absent ones come from the negative cache.
    got2 = r.mget(keys)
    assert got2 == got
    du2 = d_user.now()
    assert du2["loads"] == 3 and du2["hits"] == 1 + 3 and du2["negative_hits"] == 1, du2
    assert_misses_add_up(du2)


def test_mget_of_one_key_twice_loads_it_once(ls, r):
    d = Delta(ls, "user")
    assert r.mget("user:7", "user:7", "user:8") == [b"user7", b"user7", b"user8"]
    delta = d.now()
    assert delta["loads"] == 2 and delta["misses"] == 3, delta


def test_mget_of_many_cold_keys_loads_each_once_in_order(ls, r, d_r):
    keys = [f"user:{i}" for i in range(40, 0, -1)] + ["user:9988", "plain:x"]
    d = Delta(ls, "user")
    got = r.mget(keys)
    assert got == [f"user{i}".encode() for i in range(40, 0, -1)] + [None, None], got
    delta = d.now()
    assert delta["loads"] == 41 and delta["misses"] == 41 and delta["fills"] == 40, delta
    assert eventually(lambda: ls.cmdstat("set"), 40) == 40


def test_mget_starts_the_loads_of_its_missing_keys_together(ls):
    d = Delta(ls, "gated")
    with ls.endpoint.raw() as c:
        with DbGate(ls.db_path):
            c.send_command("MGET", "gated:50", "plain:y", "gated:51", "gated:52")
            # all three queued at once, not one after the other
            ls.wait_for(lambda: d.now()["loads"] == 3, what="three loads")
        assert c.read_reply() == [b"user50", None, b"user51", b"user52"]


def test_hget_hmget_missing_field_of_existing_hash_is_not_a_load(ls, r, d_r):
    d = Delta(ls, "uhash")
    assert r.hget("uhash:7", "name") == b"user7"  # the hash is absent: a load
    assert d.now()["loads"] == 1
    assert r.hget("uhash:7", "nosuch") is None  # the hash exists: not a load
    assert r.hmget("uhash:7", "nosuch", "other") == [None, None]
    assert d.now()["loads"] == 1

    d_r.hset("uhash:20", "foo", "bar")  # a hash put there by someone else
    assert r.hget("uhash:20", "name") is None
    assert r.hmget("uhash:20", "name", "foo") == [None, b"bar"]
    assert d.now()["loads"] == 1

    assert r.hmget("uhash:8", "name", "nosuch", "score") == [b"user8", None, b"8.5"]  # a load
    assert r.hget("uhash:10", "nosuch") is None  # hash absent: loaded, and filled in Redis
    assert d.now()["loads"] == 3
    expected10 = {b"name": b"user10", b"email": b"u10@example.com", b"score": b"10.5"}
    assert eventually(lambda: d_r.hgetall("uhash:10"), expected10) == expected10

    assert r.hgetall("uhash:9999") == {}  # no row
    assert r.hget("uhash:9999", "name") is None  # negative cache
    delta = d.now()
    assert delta["loads"] == 4 and delta["negative_hits"] == 1 and delta["fills"] == 3, delta
    assert d_r.exists("uhash:9999") == 0


def test_commands_of_the_other_type_are_not_read_through(ls, r, d_r):
    d_hash, d_user = Delta(ls, "uhash"), Delta(ls, "user")
    assert r.get("uhash:14") is None  # GET is for string/json loaders
    assert r.hget("user:15", "name") is None  # HGET is for hash loaders
    assert r.hgetall("user:15") == {}
    assert d_hash.now()["loads"] == 0 and d_user.now()["loads"] == 0
    assert d_r.exists("uhash:14", "user:15") == 0


def test_non_canonical_int_capture_is_not_loaded(ls, r):
    d = Delta(ls, "ujson")
    for key in ("ujson:007", "ujson:-1", "ujson:1e3", "ujson:+5", "ujson:5:extra"):
        assert r.get(key) is None, key
    delta = d.now()
    assert delta["loads"] == 0 and delta["misses"] == 0, delta


def test_no_read_through_inside_multi_while_watching_or_on_another_db(ls, d_r):
    d = Delta(ls, "user")
    with ls.endpoint.raw() as c:
        assert c.command("MULTI") == b"OK"
        assert c.command("GET", "user:25") == b"QUEUED"
        assert c.command("EXEC") == [None]

        assert c.command("WATCH", "user:26") == b"OK"
        assert c.command("GET", "user:26") is None
        assert c.command("MGET", "user:26", "user:25") == [None, None]
        assert c.command("UNWATCH") == b"OK"

        assert c.command("SELECT", "1") == b"OK"
        assert c.command("GET", "user:27") is None
        assert d.now()["loads"] == 0
        assert d_r.exists("user:25", "user:26", "user:27") == 0

        assert c.command("SELECT", "0") == b"OK"
        assert c.command("MGET", "user:25", "user:26", "user:27") == [b"user25", b"user26",
                                                                      b"user27"]
    assert d.now()["loads"] == 3


# -- negative caching ------------------------------------------------------------------------------


def test_negative_cache_answers_nil_until_negative_ttl_then_loads(ls, r, d_r):
    # The absence is remembered from the first lookup's load, which ends between t0 and t1. A
    # second lookup answered before t0 + NEGATIVE_TTL was made while it was remembered; one that
    # took longer (a stalled machine) proves nothing either way: then a fresh key is tried.
    for row in (1, 11, 12, 13, 14):
        key = f"late:{row}"
        d = Delta(ls, "late")
        t0 = time.monotonic()
        assert r.get(key) is None
        t1 = time.monotonic()
        db_execute(ls.db_path, "INSERT INTO late VALUES (?, ?)", (row, f"v{row}"))
        reply = r.get(key)
        if time.monotonic() - t0 < NEGATIVE_TTL:
            break
    else:
        pytest.fail(f"no two lookups within negative_ttl ({NEGATIVE_TTL} s) in five tries")
    assert reply is None  # remembered: the database is not asked
    delta = d.now()
    assert delta["loads"] == 1 and delta["negative_hits"] == 1 and delta["misses"] == 2, delta
    assert d_r.exists(key) == 0

    time.sleep(max(0.0, t1 + NEGATIVE_TTL + 0.3 - time.monotonic()))
    assert r.get(key) == f"v{row}".encode()  # expired: loaded again, found now
    delta = d.now()
    assert delta["loads"] == 2 and delta["fills"] == 1, delta
    assert_misses_add_up(delta)
    assert eventually(lambda: d_r.get(key), f"v{row}".encode()) == f"v{row}".encode()


def test_negative_cache_still_asks_redis_first(ls, r, d_r):
    d = Delta(ls, "late")
    assert r.get("late:2") is None
    d_r.set("late:2", "from-redis")
    assert r.get("late:2") == b"from-redis"
    assert r.mget("late:2", "late:3") == [b"from-redis", None]
    delta = d.now()
    assert delta["loads"] == 2 and delta["hits"] == 2, delta


def test_negative_ttl_zero_turns_negative_caching_off(ls, r, d_r):
    d = Delta(ls, "lateoff")
    assert r.get("lateoff:4") is None
    assert r.get("lateoff:4") is None
    delta = d.now()
    assert delta["loads"] == 2 and delta["negative_hits"] == 0, delta
    db_execute(ls.db_path, "INSERT INTO late VALUES (4, 'v4')")
    assert r.get("lateoff:4") == b"v4"
    assert d.now()["loads"] == 3
    assert eventually(lambda: d_r.get("lateoff:4"), b"v4") == b"v4"


# -- failures --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "loader, fix_sql, fixed",
    [
        ("badjson", "UPDATE docs SET payload = '{\"a\": [1, 2]}' WHERE id = 1", b'{"a":[1,2]}'),
        ("overflow", "UPDATE nums SET v = -5 WHERE id = 1", b"5"),
    ],
)
def test_loader_sql_error_reaches_every_waiter_caches_nothing_and_is_retried(
    ls, d_r, loader, fix_sql, fixed
):
    key = f"{loader}:1"
    expected = f"ERR loader '{loader}' failed: " + sqlite_error(
        ls.db_path, loader_query(loader), {"id": "1"})
    d = Delta(ls, loader)
    conns = [ls.endpoint.raw() for _ in range(4)]
    try:
        with DbGate(ls.db_path):  # all four join one load
            for c in conns:
                c.send_command("GET", key)
            ls.wait_for(lambda: d.now()["misses"] == 4, what="4 misses")
        for c in conns:
            assert err(c.read_reply()) == expected
        delta = d.now()
        assert delta["loads"] == 1 and delta["coalesced"] == 3 and delta["errors"] == 1, delta
        assert delta["fills"] == 0 and delta["negative_hits"] == 0, delta
        settle()
        assert d_r.exists(key) == 0

        assert err(conns[0].command("GET", key)) == expected  # tried again, not remembered
        delta2 = d.now()
        assert delta2["loads"] == delta["loads"] + 1 and delta2["errors"] == delta["errors"] + 1

        db_execute(ls.db_path, fix_sql)
        assert conns[1].command("GET", key) == fixed
        assert eventually(lambda: d_r.get(key), fixed) == fixed, d.now()
    finally:
        for c in conns:
            c.close()


def test_more_than_one_row_is_an_error(ls, r, d_r):
    d = Delta(ls, "multi")
    with ls.endpoint.raw() as c:
        assert err(c.command("GET", "multi:45")) == (
            "ERR loader 'multi' failed: query returned more than one row")
        assert c.command("MGET", "multi:61", "multi:62") == [SPECIAL_NAME.encode(), None]
    delta = d.now()
    assert delta["errors"] == 1 and delta["loads"] == 3 and delta["fills"] == 1, delta
    assert d_r.exists("multi:45") == 0


def test_loader_timeout_reaches_every_waiter_caches_nothing_and_is_retried(ls, d_r):
    d = Delta(ls, "tmo")
    expected = "ERR loader 'tmo' timed out after 100 ms"
    conns = [ls.endpoint.raw() for _ in range(3)]
    try:
        # The query burns CPU for about a second: the timeout interrupts it while it runs.
        start = time.monotonic()
        for c in conns:
            c.send_command("GET", "tmo:1")
        for c in conns:
            assert err(c.read_reply()) == expected
        elapsed = time.monotonic() - start
        assert elapsed < 3.0, f"a 100 ms timeout answered after {elapsed:.1f} s"
        delta = d.now()
        assert delta["loads"] >= 1 and delta["timeouts"] == delta["loads"], delta
        assert delta["errors"] == 0 and delta["fills"] == 0, delta
        assert d_r.exists("tmo:1") == 0
        assert err(conns[0].command("GET", "tmo:1")) == expected
        delta2 = d.now()
        assert delta2["timeouts"] == delta["timeouts"] + 1, delta2
        assert conns[1].command("PING") == b"PONG"
    finally:
        for c in conns:
            c.close()
    # The workers are free again for other loaders.
    with ls.endpoint.raw() as c:
        assert c.command("GET", "user:28") == b"user28"


# -- writes during a load --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "user, write, after",
    [
        (34, ("DEL",), None),
        (35, ("UNLINK",), None),
        (36, ("SET", "written-meanwhile"), b"written-meanwhile"),
        (37, ("EXPIRE", "100"), None),
        (38, ("RENAME",), b"renamed-here"),
    ],
    ids=["DEL", "UNLINK", "SET", "EXPIRE", "RENAME-onto-it"],
)
def test_write_during_a_load_supersedes_it(ls, d_r, user, write, after):
    key = f"gated:{user}"
    if write[0] == "RENAME":  # RENAME src key: the key being loaded is the destination
        d_r.set("rename-src", "renamed-here")
        write = ("RENAME", "rename-src", key)
    else:
        write = (write[0], key, *write[1:])
    d = Delta(ls, "gated")
    with ls.endpoint.raw() as waiter, ls.endpoint.raw() as writer:
        with DbGate(ls.db_path):
            waiter.send_command("GET", key)
            ls.wait_for(lambda: d.now()["loads"] == 1, what="the load to start")
            reply = writer.command(*write)
            assert not isinstance(reply, RespError), reply
        assert waiter.read_reply() == f"user{user}".encode()  # the waiter still gets the answer
    delta = d.now()
    assert delta["superseded"] == 1 and delta["fills"] == 0, delta
    settle()
    if after is None:
        assert d_r.exists(key) == 0, f"stale value after {write[0]}: {d_r.get(key)!r}"
    else:
        assert d_r.get(key) == after
        assert d_r.pttl(key) == -1  # no fill's PX either



def test_fill_never_overwrites_a_value_written_directly_during_the_load(ls, d_r):
    """A write readthru does not see (straight to Redis) cannot supersede the load, but the fill
    still leaves it alone: SET ... NX for strings, only-if-absent for hashes."""
    d_s, d_h = Delta(ls, "gated"), Delta(ls, "gatedhash")
    with ls.endpoint.raw() as s_waiter, ls.endpoint.raw() as h_waiter:
        with DbGate(ls.db_path):
            s_waiter.send_command("GET", "gated:39")
            h_waiter.send_command("HGETALL", "gatedhash:5")
            ls.wait_for(lambda: d_s.now()["loads"] == 1 and d_h.now()["loads"] == 1,
                        what="both loads to start")
            d_r.set("gated:39", "direct")
            d_r.hset("gatedhash:5", "other", "direct")
        assert s_waiter.read_reply() == b"user39"
        h = h_waiter.read_reply()
        assert h == [b"name", b"user5", b"email", b"u5@example.com"] or h == [
            b"other", b"direct"], h
    settle()
    assert d_r.get("gated:39") == b"direct" and d_r.pttl("gated:39") == -1
    assert d_r.hgetall("gatedhash:5") == {b"other": b"direct"}
    assert d_r.pttl("gatedhash:5") == -1


def test_get_hit_and_miss_answer_in_the_protocol_the_client_had_when_it_asked(ls, d_r):
    """A GET whose reply turns out nil becomes a load only then; its answer is still encoded in
    the protocol of its request, not in the one a pipelined HELLO switched to meanwhile."""
    d_r.set("user:37", "cached37")
    d = Delta(ls, "user")
    with ls.endpoint.raw() as c:
        c.send(encode("GET", "user:36") + encode("GET", "user:9994") + encode("GET", "user:37")
               + encode("HELLO", "3") + encode("GET", "user:9993") + encode("GET", "user:38"))
        got = c.read_raw_replies(6)
    assert got[:3] == [b"$6\r\nuser36\r\n", b"$-1\r\n", b"$8\r\ncached37\r\n"], got
    assert got[3].startswith(b"%"), got[3]
    assert got[4:] == [b"_\r\n", b"$6\r\nuser38\r\n"], got
    delta = d.now()
    assert delta["hits"] == 1 and delta["misses"] == 4 and delta["loads"] == 4, delta


def test_pipelined_replies_stay_in_request_order_around_loads(ls):
    """Replies after a GET that waits for a load are held back until it is answered, even though
    Redis has answered them already; then everything arrives in request order."""
    d = Delta(ls, "gated")
    requests = [
        ("SET", "plain:a", "1"),
        ("GET", "gated:43"),  # held up by the gate
        ("GET", "plain:a"),
        ("INCR", "plain:n"),
        ("MGET", "gated:43", "plain:a", "gated:9989"),
        ("HGETALL", "gatedhash:6"),
        ("GET", "gated:43"),
        ("PING",),
    ]
    with ls.endpoint.raw() as c:
        with DbGate(ls.db_path):
            c.send(b"".join(encode(*req) for req in requests))
            ls.wait_for(lambda: d.now()["misses"] >= 3, what="the loads to start")
            assert c.read_reply() == b"OK"
            time.sleep(0.2)
            early = bytes(c.buf)  # read along with the +OK
            c.sock.setblocking(False)
            try:
                early += c.sock.recv(65536)
            except BlockingIOError:
                pass
            finally:
                c.sock.settimeout(15)
            assert early == b"", f"replies overtook the pending GET: {early!r}"
        got = [c.read_reply() for _ in requests[1:]]
    assert got == [b"user43", b"1", 1, [b"user43", b"1", None],
                   [b"name", b"user6", b"email", b"u6@example.com"], b"user43", b"PONG"], got


# -- keys are parameters ---------------------------------------------------------------------------


def test_injection_shaped_keys_bind_as_parameters(ls, r, d_r):
    d_user, d_name = Delta(ls, "user"), Delta(ls, "byname")
    assert r.get("user:1 OR 1=1") is None
    assert r.get("user:1'; DROP TABLE users;--") is None
    assert r.get("user:0 UNION SELECT email FROM users") is None
    assert r.get("byname:x' OR '1'='1") is None
    assert r.get('byname:" OR ""="') is None
    assert r.get(b"byname:\x00\r\n'\"\\\xff") is None  # any bytes at all
    assert d_user.now()["loads"] == 3 and d_name.now()["loads"] == 3
    assert d_r.exists("user:1 OR 1=1", "user:1'; DROP TABLE users;--", "byname:x' OR '1'='1") == 0
    # The table is still there, whole, and still served.
    assert db_query(ls.db_path, "SELECT count(*) FROM users") == [(SPECIAL_ID,)]
    assert r.get("user:1") == b"user1"
    assert r.get("byname:user2") == b"u2@example.com"


# -- size ------------------------------------------------------------------------------------------


def test_10mb_row_round_trips_intact(ls, r, d_r):
    expected = big_text().encode()
    got = r.get("big:1")
    assert got is not None and len(got) == len(expected)
    assert got == expected
    assert eventually(lambda: d_r.strlen("big:1"), len(expected)) == len(expected)
    assert d_r.get("big:1") == expected
    settle()
    assert r.get("big:1") == expected  # and as a hit
    assert r.get("big:2") == BLOB  # a BLOB with NUL and CRLF, byte for byte
    assert eventually(lambda: ls.cmdstat("set"), 2) == 2


# -- clients that go away --------------------------------------------------------------------------


def test_waiter_that_disconnects_does_not_cancel_the_load_for_others(ls, d_r):
    d = Delta(ls, "gated")
    conns = [ls.endpoint.raw() for _ in range(3)]
    with DbGate(ls.db_path):
        for c in conns:
            c.send_command("GET", "gated:41")
        ls.wait_for(lambda: d.now()["misses"] == 3, what="three waiters")
        rst_close(conns[0])
        time.sleep(0.1)  # readthru sees the reset before the load completes
    try:
        assert conns[1].read_reply() == b"user41"
        assert conns[2].read_reply() == b"user41"
    finally:
        for c in conns[1:]:
            c.close()
    ls.wait_for(lambda: d.now()["fills"] == 1, what="the fill")
    assert eventually(lambda: d_r.get("gated:41"), b"user41") == b"user41"
    with ls.endpoint.raw() as c:
        assert c.command("GET", "gated:41") == b"user41"
    assert d.now()["loads"] == 1


def test_only_waiter_disconnecting_leaves_readthru_serving(ls):
    d = Delta(ls, "gated")
    c = ls.endpoint.raw()
    with DbGate(ls.db_path):
        c.send_command("GET", "gated:42")
        ls.wait_for(lambda: d.now()["loads"] == 1, what="the load to start")
        rst_close(c)
        time.sleep(0.1)  # readthru sees the reset before the load completes
    # The load finishes without anyone to answer (filled or not: the spec leaves it open).
    ls.wait_for(lambda: backend_fields(ls.info())["running"] == "0"
                and backend_fields(ls.info())["queued"] == "0", what="the backend to go idle")
    with ls.endpoint.raw() as c2:
        assert c2.command("PING") == b"PONG"
        assert c2.command("GET", "gated:42") == b"user42"
        assert c2.command("GET", "user:29") == b"user29"


# -- INFO ------------------------------------------------------------------------------------------


def info_section(text: str, title: str) -> dict[str, str]:
    marker = f"# {title}\r\n"
    assert marker in text, f"no '# {title}' section in INFO:\n{text[:3000]}"
    body = text.split(marker, 1)[1].split("\r\n\r\n", 1)[0]
    out = {}
    for line in body.split("\r\n"):
        if line and not line.startswith("#"):
            k, _, v = line.partition(":")
            out[k] = v
    return out


def kv(value: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in value.split(","))


def backend_fields(info: str, name: str = "main") -> dict[str, str]:
    return kv(info_section(info, "Readthru")[f"backend_{name}"])


def test_info_has_a_readthru_section_with_loader_lines(ls, r):
    assert r.get("user:31") == b"user31"
    assert r.get("user:31") == b"user31"
    assert r.get("user:9996") is None  # one negative cache entry at least
    info = ls.info()
    assert "# Server\r\n" in info  # the upstream's sections are still there
    section = info_section(info, "Readthru")
    assert section.get("readthru_version"), section
    assert section["loaders"] == str(len(LOADERS)), section
    stats = ls.stats()
    for loader in LOADERS:
        line = section.get(f"loader_{loader.name}")
        assert line is not None, f"no loader_{loader.name} line: {section}"
        fields = kv(line)
        for counter in COUNTERS:
            assert counter in fields, (loader.name, fields)
            assert int(fields[counter]) == stats[loader.name][counter], (loader.name, fields, stats)
        for latency in ("load_p50_us", "load_p99_us", "load_max_us"):
            assert fields[latency].isdigit(), (loader.name, fields)
    user = kv(section["loader_user"])
    assert int(user["loads"]) >= 2, user
    assert int(user["hits"]) >= 1, user
    backend = backend_fields(info)
    assert backend["kind"] == "sqlite" and backend["workers"] == "2", backend
    for key in ("queued", "running", "completed", "errors", "timeouts", "rejected"):
        assert backend[key].isdigit(), backend
    assert int(section["negative_cache_entries"]) >= 1, section


def test_info_readthru_section_reports_clients_upstream_and_commands(ls):
    with ls.endpoint.raw() as a, ls.endpoint.raw() as b:
        before = info_section(ls.info(), "Readthru")
        assert a.command("SET", "plain:1", "v") == b"OK"
        assert a.command("GET", "plain:1") == b"v"
        assert a.command("CLIENT", "SETNAME", "x") == b"OK"
        assert b.command("MULTI") == b"OK"  # pins b
        section = info_section(ls.info(), "Readthru")  # asked on a third connection
        assert section["upstream_status"] == "up", section
        assert int(section["connected_clients"]) >= 3, section
        assert int(section["pinned_clients"]) >= 1, section
        assert int(section["uptime_in_seconds"]) >= 0, section
        assert section["writers"] == "0" and section["loaders"] == str(len(LOADERS)), section
        # SET, GET, MULTI forwarded; CLIENT SETNAME and the first INFO's interception aside.
        forwarded = int(section["commands_forwarded"]) - int(before["commands_forwarded"])
        local = int(section["commands_local"]) - int(before["commands_local"])
        assert forwarded >= 3, (before, section)
        assert local >= 1, (before, section)
        assert b.command("DISCARD") == b"OK"

    for arg in ("all", "everything", "default", "readthru", "READTHRU"):
        assert "# Readthru\r\n" in ls.info(arg), arg

    with ls.endpoint.raw() as c:  # RESP3: a verbatim string, its length covering the section
        c.command("HELLO", "3")
        text = c.command("INFO")
        assert isinstance(text, Verbatim) and text.format == b"txt", repr(text)[:200]
        assert b"# Readthru\r\n" in text and b"loader_user:" in text
        assert c.command("PING") == b"PONG"  # the stream is still in step


def test_info_server_has_no_readthru_section(ls):
    text = ls.info("server")
    assert "# Server\r\n" in text
    assert "# Readthru" not in text and "loader_" not in text
    assert "# Readthru" not in ls.info("keyspace")


# -- one worker, a queue of one, a negative cache of two -------------------------------------------


@pytest.fixture(scope="module")
def small_ls(tmp_path_factory):
    """workers = 1 and queue = 1, so one load held up by a DbGate keeps the next one waiting and
    refuses the rest; negative_cache_entries = 2. The database path is relative to the config
    file's directory."""
    ls = LoaderStack(
        tmp_path_factory.mktemp("small"),
        db_script=SCHEMA,
        db_inserts=[(INSERT_USERS, [user_row(i) for i in range(1, 11)])],
        backends=[Backend("../app.db", workers=1, queue=1)],  # the config is in <tmp>/stack/
        loaders=[
            Loader("q", "q:{id}", "SELECT name FROM users WHERE id = :id", timeout=GATED_TIMEOUT),
            Loader("f", "f:{id}", "SELECT name FROM users WHERE id = :id"),
            Loader("qt", "qt:{id}", "SELECT name FROM users WHERE id = :id",
                   timeout=f"{QT_TIMEOUT_MS}ms"),
        ],
        negative_cache_entries=2,
    )
    yield ls
    log = ls.log()
    rc = ls.stop()
    assert rc == 0, f"readthru exited with {rc} on SIGTERM; stderr:\n{log}"


@pytest.fixture
def sls(small_ls):
    flushall(small_ls)
    yield small_ls
    if not small_ls.alive():
        pytest.fail(f"readthru died during the test; stderr:\n{small_ls.log()}")


def test_full_backend_queue_rejects_loads_and_recovers(sls):
    """8 distinct cold keys while the database is locked: one load runs (waiting for the lock),
    then of 7 more at once one waits in the queue and six are refused with the spec's error. Nothing of
    theirs is cached, readthru keeps serving, and later requests load them."""
    ls = sls
    d = Delta(ls, "q")
    conns = [ls.endpoint.raw() for _ in range(8)]
    try:
        with DbGate(ls.db_path):
            conns[0].send_command("GET", "q:1")
            ls.wait_for(lambda: backend_fields(ls.info())["running"] == "1", what="q:1 to run")
            for i, c in enumerate(conns[1:], 2):
                c.send_command("GET", f"q:{i}")
            ls.wait_for(lambda: d.now()["misses"] == 8, what="8 misses")
            delta = d.now()
            assert delta["loads"] == 2 and delta["rejected"] == 6, delta
            backend = backend_fields(ls.info())
            assert backend["workers"] == "1" and backend["running"] == "1", backend
            assert backend["queued"] == "1" and int(backend["rejected"]) >= 6, backend
        replies = [c.read_reply() for c in conns]
    finally:
        for c in conns:
            c.close()
    rejected = [i for i, rep in enumerate(replies, 1) if isinstance(rep, RespError)]
    assert len(rejected) == 6, replies
    for i, rep in enumerate(replies, 1):
        if i in rejected:
            assert rep.text == "ERR loader 'q' rejected: backend 'main' queue is full", rep
        else:
            assert rep == f"user{i}".encode(), rep
    delta = d.now()
    assert delta["fills"] == 2 and delta["errors"] == 0, delta
    settle()
    direct = ls.direct.client()
    try:
        assert direct.exists(*[f"q:{i}" for i in rejected]) == 0

        with ls.endpoint.raw() as c:
            assert c.command("PING") == b"PONG"
            for i in rejected:  # one at a time: room in the queue again
                assert c.command("GET", f"q:{i}") == f"user{i}".encode()
            assert eventually(lambda: direct.exists(*[f"q:{i}" for i in range(1, 9)]), 8) == 8
            assert c.command("MGET", *[f"q:{i}" for i in range(1, 9)]) == [
                f"user{i}".encode() for i in range(1, 9)]
    finally:
        direct.close()


def test_timeout_counts_from_when_the_load_is_queued(sls):
    """qt's query is instant, but it waits in the queue behind a load held up on the only worker:
    its timeout (1 s) passes there."""
    ls = sls
    d, d_q = Delta(ls, "qt"), Delta(ls, "q")
    with ls.endpoint.raw() as first, ls.endpoint.raw() as c:
        with DbGate(ls.db_path):
            first.send_command("GET", "q:9")
            ls.wait_for(lambda: d_q.now()["loads"] == 1
                        and backend_fields(ls.info())["running"] == "1", what="q:9 to run")
            # Nothing else happens meanwhile: the error must not wait for some later event.
            start = time.monotonic()
            assert err(c.command("GET", "qt:1")) == (
                f"ERR loader 'qt' timed out after {QT_TIMEOUT_MS} ms")
            elapsed = time.monotonic() - start
            assert elapsed < QT_TIMEOUT_MS / 1000 + 3.0, (
                f"a {QT_TIMEOUT_MS} ms timeout answered after {elapsed:.1f} s")
        assert first.read_reply() == b"user9"
        delta = d.now()
        assert delta["timeouts"] == 1 and delta["fills"] == 0, delta
        ls.wait_for(lambda: backend_fields(ls.info())["queued"] == "0"
                    and backend_fields(ls.info())["running"] == "0", what="the backend to go idle")
        assert c.command("GET", "qt:1") == b"user1"  # the worker is free: tried again, loaded


def test_negative_cache_is_bounded_oldest_dropped_first(sls):
    ls = sls
    d = Delta(ls, "f")
    with ls.endpoint.raw() as c:
        for key in ("f:100", "f:101", "f:102"):  # absent rows; room for two
            assert c.command("GET", key) is None
        section = info_section(ls.info(), "Readthru")
        assert section["negative_cache_entries"] == "2", section
        assert c.command("GET", "f:102") is None  # still remembered
        assert c.command("GET", "f:101") is None  # still remembered
        assert d.now()["loads"] == 3 and d.now()["negative_hits"] == 2
        assert c.command("GET", "f:100") is None  # the oldest was dropped: loaded again
    delta = d.now()
    assert delta["loads"] == 4 and delta["negative_hits"] == 2, delta


# -- shutdown --------------------------------------------------------------------------------------


def test_sigterm_during_a_load_delivers_its_value_and_exits_0(tmp_path):
    """SIGTERM while a load waits on a locked database: readthru drains, so once the load completes
    the waiter gets its value, and readthru exits 0 (its leak check included)."""
    ls = LoaderStack(
        tmp_path,
        db_script=SCHEMA,
        db_inserts=[(INSERT_USERS, [user_row(i) for i in range(1, 4)])],
        loaders=[Loader("g", "g:{id}", "SELECT name FROM users WHERE id = :id", timeout="60s")],
    )
    proc = ls.stack.proxy
    try:
        d = Delta(ls, "g")
        with ls.endpoint.raw() as c:
            with DbGate(ls.db_path):
                c.send_command("GET", "g:1")
                ls.wait_for(lambda: d.now()["loads"] == 1, what="the load to start")
                proc.proc.send_signal(signal.SIGTERM)
                time.sleep(0.3)
                assert proc.alive(), f"exited with a reply still owed; stderr:\n{ls.log()}"
            data, closed = c.read_until_close(timeout=10)
            assert data == b"$5\r\nuser1\r\n", data
            assert closed
        rc = proc.stop()
        assert rc == 0, f"readthru exited with {rc}; stderr:\n{ls.log()}"
    finally:
        ls.stop()
