"""Write-behind to SQLite: real redis-server, real SQLite database (built here), real readthru.

Writes are acknowledged once Redis has them (and their queue entry in the stream
readthru:wb:<writer>); a flusher writes them to the database later, coalesced. The tests check the
outcome outside readthru: the rows, an `audit` table that triggers fill on every row write (how
many times a row really was written), the streams in Redis, and READTHRU STATS deltas. They wait
for the database with a generous deadline and never assert on timing.

The database is held locked with writer_stack.WriteGate (BEGIN IMMEDIATE: loaders still read, the
flusher's writes wait and time out) to make writes stay pending for as long as a test needs.
Crashes are real: kill -9 of readthru during a write load, SIGTERM with a queue, two readthru
processes on one redis-server and one database.

The module's Redis is never FLUSHALLed between tests (the streams, their consumer group and the
flusher's lease live there); every test uses its own keys.
"""

from __future__ import annotations

import re
import signal
import threading
import time

import pytest

from loader_stack import Loader, db_execute
from resp_client import RespError, encode
from writer_stack import (
    WRITER_FIELDS,
    WriteGate,
    Writer,
    WriterDelta,
    WriterStack,
    audit_sql,
    reject_sql,
    stats_of,
    wait_for,
)

pytestmark = pytest.mark.proxy_only

POISON_MSG = "poison value rejected"
FLUSH = "100ms"
DRAIN_TIMEOUT = 60.0  # generous: ASan, a busy 2-core machine, a lease to expire

SCHEMA = (
    """
CREATE TABLE kv(id TEXT PRIMARY KEY, v TEXT);
CREATE TABLE kp(id TEXT PRIMARY KEY, v TEXT);
CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT, email TEXT);
"""
    + audit_sql("kv")
    + audit_sql("kp")
    + reject_sql("kp", "v", "poison", POISON_MSG, "INSERT")
    + reject_sql("kp", "v", "poison", POISON_MSG, "UPDATE")
)


def upsert(table: str) -> str:
    return (f"INSERT INTO {table}(id, v) VALUES (:id, :value) "
            "ON CONFLICT(id) DO UPDATE SET v = excluded.v")


def delete(table: str) -> str:
    return f"DELETE FROM {table} WHERE id = :id"


WRITERS = [
    # timeout 250ms: a flush against a locked database fails fast and is retried; many attempts,
    # so a database locked for a second or two never dead-letters anything.
    Writer("wb", "wb:{id}", upsert("kv"), delete("kv"), mode="behind", flush_interval=FLUSH,
           batch=500, timeout="250ms", max_attempts=50),
    # the poison writer: an entry the database refuses twice is dead-lettered
    Writer("wp", "wp:{id}", upsert("kp"), delete("kp"), mode="behind", flush_interval=FLUSH,
           max_attempts=2),
    # a hash writer: whole rows, fields -> columns
    Writer("wh", "wh:{id:int}",
           "INSERT INTO users(id, name, email) VALUES (:id, :name, :email) "
           "ON CONFLICT(id) DO UPDATE SET name = excluded.name, email = excluded.email",
           "DELETE FROM users WHERE id = :id", mode="behind", flush_interval=FLUSH),
]
LOADERS = [Loader("wbl", "wb:{id}", "SELECT v FROM kv WHERE id = :id", negative_ttl="0s")]


@pytest.fixture(scope="module")
def module_ws(tmp_path_factory):
    ws = WriterStack(tmp_path_factory.mktemp("writebehind"), db_script=SCHEMA, loaders=LOADERS,
                     writers=WRITERS)
    yield ws
    log = ws.logs()
    rc = ws.stop()
    assert rc == 0, f"readthru exited with {rc} on SIGTERM; stderr:\n{log}"


@pytest.fixture
def ws(module_ws):
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
def make_ws(tmp_path):
    """Private stacks (one writer 'wk' on table kv unless told otherwise), stopped at teardown;
    every readthru still running must exit 0 on SIGTERM."""
    made: list[WriterStack] = []

    def make(writers=None, loaders=(), **kwargs) -> WriterStack:
        if writers is None:
            writers = [Writer("wk", "wk:{id}", upsert("kv"), delete("kv"), mode="behind",
                              flush_interval=FLUSH)]
        ws = WriterStack(tmp_path / f"ws{len(made)}", db_script=SCHEMA, loaders=loaders,
                         writers=writers, **kwargs)
        made.append(ws)
        return ws

    yield make
    errors = []
    for ws in made:
        log = ws.logs()
        rc = ws.stop()
        if rc != 0:
            errors.append(f"readthru exited with {rc} on SIGTERM; stderr:\n{log}")
    assert not errors, "\n".join(errors)


def rows_like(ws: WriterStack, prefix: str, table: str = "kv") -> dict:
    return dict(ws.db(f"SELECT id, v FROM {table} WHERE id LIKE ?", (prefix + "%",)))


def wait_rows(ws: WriterStack, prefix: str, expected: dict, table: str = "kv",
              timeout: float = DRAIN_TIMEOUT) -> float:
    """Waits until the rows whose id starts with `prefix` are exactly `expected`; returns the
    seconds it took. On timeout the assertion shows what differs."""
    start = time.monotonic()
    deadline = start + timeout
    while time.monotonic() < deadline:
        if rows_like(ws, prefix, table) == expected:
            return time.monotonic() - start
        time.sleep(0.05)
    got = rows_like(ws, prefix, table)
    missing = {k: v for k, v in expected.items() if got.get(k) != v}
    extra = {k: v for k, v in got.items() if k not in expected}
    raise AssertionError(
        f"database rows {prefix}* not as expected after {timeout}s: {len(missing)} wrong or "
        f"missing (e.g. {dict(list(missing.items())[:5])}, db has "
        f"{ {k: got.get(k) for k in list(missing)[:5]} }), {len(extra)} extra "
        f"(e.g. {dict(list(extra.items())[:5])})")


def audit_of(ws: WriterStack, prefix: str, table: str = "kv") -> list[tuple]:
    return ws.db("SELECT id, op, v FROM audit WHERE tbl = ? AND id LIKE ? ORDER BY seq",
                 (table, prefix + "%"))


# -- replies, and what lands -----------------------------------------------------------------------


def test_write_behind_replies_are_redis_replies_and_the_final_state_lands(ws, d_r):
    cmds = [
        ("SET", "r1", "a"), ("SET", "r1", "b", "GET"), ("SET", "r1", "c", "NX"),
        ("SET", "r2", "x", "XX"), ("SETEX", "r3", "100", "s"), ("PSETEX", "r4", "100000", "p"),
        ("MSET", "r5", "m5", "r6", "m6"), ("SET", "r7", "gone"), ("DEL", "r7", "rnosuch"),
        ("UNLINK", "r6"), ("SET", "r8", "v", "EX", "100", "GET"), ("SET", "r9", "v", "EX", "0"),
        ("SET", "r10", "v", "PX", "100", "KEEPTTL"), ("SET", "r11", "a"), ("SET", "r11", "b", "XX"),
        ("SETEX", "r12", "0", "v"),
    ]

    def keyed(cmd, prefix):
        name, args = cmd[0], list(cmd[1:])
        if name in ("MSET",):
            return [name] + [prefix + a if i % 2 == 0 else a for i, a in enumerate(args)]
        if name in ("DEL", "UNLINK"):
            return [name] + [prefix + a for a in args]
        return [name, prefix + args[0]] + args[1:]

    d = WriterDelta(ws, "wb")
    with ws.endpoint.raw() as c, ws.direct.raw() as dc:
        for cmd in cmds:
            expected = dc.command(*keyed(cmd, "plainb:"))
            got = c.command(*keyed(cmd, "wb:r"))
            assert got == expected, (cmd, got, expected)
    for name in ("r1", "r3", "r4", "r5", "r8", "r11"):
        assert d_r.get(f"wb:r{name}") == d_r.get(f"plainb:{name}"), name
        want, got = d_r.pttl(f"plainb:{name}"), d_r.pttl(f"wb:r{name}")
        assert (got == want) if want < 0 else abs(got - want) <= 3000, (name, got, want)
    assert wait_rows(ws, "rr", {"rr1": "b", "rr3": "s", "rr4": "p", "rr5": "m5", "rr8": "v",
                                "rr11": "b"}) >= 0
    ws.wait_drained("wb")
    delta = d.now()
    assert delta["writes"] >= 10, delta  # the valid writes on wb keys (how failed ones count: open)
    assert delta["batches"] >= 1 and delta["db_writes"] >= 6, delta


def test_hash_writes_behind_land_as_whole_rows(ws, r, d_r):
    def users() -> dict:
        return {i: (n, e) for i, n, e in ws.db(
            "SELECT id, name, email FROM users WHERE id BETWEEN 1 AND 3")}

    assert r.hset("wh:1", mapping={"name": "a", "email": "a@x"}) == 2
    assert r.hset("wh:1", "name", "b") == 0
    assert r.execute_command("HMSET", "wh:2", "name", "x", "email", "x@x") in (True, b"OK")
    assert r.hset("wh:3", mapping={"name": "gone", "email": "g@x"}) == 2
    wait_for(lambda: users() == {1: ("b", "a@x"), 2: ("x", "x@x"), 3: ("gone", "g@x")},
             DRAIN_TIMEOUT, f"the hashes' rows (database has {users()})")
    assert r.hdel("wh:1", "email") == 1  # the column goes NULL
    assert r.hdel("wh:2", "name", "email") == 2  # the last fields: the row goes
    assert r.delete("wh:3") == 1
    wait_for(lambda: users() == {1: ("b", None)}, DRAIN_TIMEOUT,
             f"the rows after HDEL and DEL (database has {users()})")
    ws.wait_drained("wh")
    assert d_r.hgetall("wh:1") == {b"name": b"b"}


def test_writes_inside_multi_exec_are_queued_and_an_aborted_exec_writes_nothing(ws, r, d_r):
    with ws.endpoint.raw() as c:
        assert c.command("MULTI") == b"OK"
        assert c.command("SET", "wb:x1", "a") == b"QUEUED"
        assert c.command("MSET", "wb:x2", "b", "plain:x", "p") == b"QUEUED"
        assert c.command("HSET", "wh:40", "name", "n40") == b"QUEUED"
        assert c.command("EXEC") == [b"OK", b"OK", 1]

        # WATCH: another client's write makes EXEC fail; the transaction's write must not land
        assert c.command("WATCH", "wb:x3") == b"OK"
        assert r.set("wb:x3", "theirs") is True
        assert c.command("MULTI") == b"OK"
        assert c.command("SET", "wb:x3", "mine") == b"QUEUED"
        assert c.command("DEL", "wb:x1") == b"QUEUED"
        assert c.command("EXEC") is None
    wait_rows(ws, "x", {"x1": "a", "x2": "b", "x3": "theirs"})
    wait_for(lambda: ws.db("SELECT name FROM users WHERE id = 40") == [("n40",)], DRAIN_TIMEOUT,
             "wh:40's row")
    ws.wait_drained("wb")
    assert rows_like(ws, "x") == {"x1": "a", "x2": "b", "x3": "theirs"}
    assert d_r.mget("wb:x1", "wb:x3") == [b"a", b"theirs"]


# -- shared transactions -----------------------------------------------------------------------------


def test_concurrent_clients_writes_share_transactions_and_each_gets_its_own_replies(ws, d_r):
    """Write-behind writes arriving together on one upstream connection run in one MULTI/EXEC
    with one HSET and one XADD per writer (write_behind_batch.h); every client still gets Redis's
    replies to its own commands, in order, and reads its own writes."""
    clients, rounds = 8, 40

    def script(c: int) -> tuple[list, list]:
        cmds, want = [], []
        for i in range(rounds):
            k = f"wb:t{c}.{i % 7}"
            cmds.append(("SET", k, f"v{c}.{i}"))
            want.append(b"OK")
            if i % 5 == 0:
                cmds += [("MSET", f"wb:t{c}.m", f"m{i}", f"plain:t{c}", "p"),
                         ("SETEX", f"wb:t{c}.x", "100", f"x{i}"), ("DEL", f"wb:t{c}.m", "wb:none")]
                want += [b"OK", b"OK", 1]
            if i % 10 == 9:  # a read seals the transaction: it sees the writes before it
                cmds.append(("GET", k))
                want.append(f"v{c}.{i}".encode())
        return cmds, want

    xadd_before = d_r.info("commandstats").get("cmdstat_xadd", {}).get("calls", 0)
    d = WriterDelta(ws, "wb")
    results: dict[int, list] = {}
    barrier = threading.Barrier(clients)

    def run(c: int) -> None:
        cmds, _ = script(c)
        with ws.endpoint.raw() as conn:
            barrier.wait()
            conn.send(b"".join(encode(*cmd) for cmd in cmds))  # one pipeline
            results[c] = [conn.read_reply() for _ in cmds]

    threads = [threading.Thread(target=run, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for c in range(clients):
        assert results.get(c) == script(c)[1], c
    writes = d.now()["writes"]
    xadds = d_r.info("commandstats").get("cmdstat_xadd", {}).get("calls", 0) - xadd_before
    assert writes == clients * (rounds + 3 * (rounds // 5)), writes
    # One pipeline of writes alone fills shared transactions of up to 64 writes: far fewer
    # stream entries than writes (the flusher's own XADDs go to other streams: none here).
    assert 0 < xadds <= writes // 8, (xadds, writes)
    final = {}
    for c in range(clients):
        for i in range(rounds):
            final[f"t{c}.{i % 7}"] = f"v{c}.{i}"
        final[f"t{c}.x"] = f"x{(rounds - 1) // 5 * 5}"
    wait_rows(ws, "t", final)
    ws.wait_drained("wb")


def test_consecutive_plain_sets_of_a_transaction_run_as_one_mset_in_their_order(ws, d_r):
    """In a shared transaction, each run of plain SETs (no option) becomes one MSET, placed where
    the run was: what Redis runs (seen with MONITOR) keeps every write's order, each client still
    hears its SET's OK, and a SET with an option goes as it is."""
    assert d_r.set("wb:ms.1", "old", ex=100)
    pipeline = [("SET", "wb:ms.1", "a"), ("SET", "wb:ms.1", "b"), ("SET", "wb:ms.2", "c"),
                ("DEL", "wb:ms.2"), ("SET", "wb:ms.2", "d"), ("SET", "wb:ms.3", "e", "EX", "100"),
                ("set", "wb:ms.4", "f")]
    with ws.direct.raw(timeout=10) as monitor:
        assert monitor.command("MONITOR") == b"OK"
        with ws.endpoint.raw() as conn:
            conn.send(b"".join(encode(*cmd) for cmd in pipeline))
            assert [conn.read_reply() for _ in pipeline] == [b"OK", b"OK", b"OK", 1, b"OK", b"OK",
                                                             b"OK"]
        ran = []
        while not ran or ran[-1][1:] != ["wb:ms.4", "f"]:
            line = monitor.read_reply().decode()
            args = [a.encode().decode("unicode_escape")
                    for a in re.findall(r'"((?:[^"\\]|\\.)*)"', line)]
            if args and args[0].upper() in ("SET", "MSET", "DEL") and args[1].startswith("wb:ms."):
                ran.append(args)
    assert ran == [["MSET", "wb:ms.1", "a", "wb:ms.1", "b", "wb:ms.2", "c"], ["DEL", "wb:ms.2"],
                   ["MSET", "wb:ms.2", "d"], ["SET", "wb:ms.3", "e", "EX", "100"],
                   ["MSET", "wb:ms.4", "f"]], ran
    assert d_r.ttl("wb:ms.1") == -1  # as SET does: the old TTL is gone
    assert d_r.mget("wb:ms.1", "wb:ms.2", "wb:ms.4") == [b"b", b"d", b"f"]
    wait_rows(ws, "ms.", {"ms.1": "b", "ms.2": "d", "ms.3": "e", "ms.4": "f"})
    ws.wait_drained("wb")


def test_clients_that_vanish_mid_pipeline_leave_every_committed_write_in_the_database(ws, d_r):
    """Clients send a pipeline of write-behind SETs and close their socket without reading a
    reply, while their writes sit in transactions shared with the others. readthru keeps serving,
    and every write Redis committed lands: each key's row equals what Redis holds."""
    clients, per_client, keys = 12, 300, 50

    def vanish(c: int) -> None:
        with ws.endpoint.raw() as conn:
            conn.send(b"".join(encode("SET", f"wb:vz.{(c * 7 + i) % keys}", f"c{c}.{i}")
                               for i in range(per_client)))
            conn.sock.close()  # mid-pipeline: most replies are still owed

    threads = [threading.Thread(target=vanish, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    with ws.endpoint.raw() as conn:  # the next client is served, and seals any open transaction
        assert conn.command("SET", "wb:vz.last", "x") == b"OK"
        assert conn.command("GET", "wb:vz.last") == b"x"
    # What Redis holds is the committed state: every EXEC that ran, none that did not. A vanished
    # client's transaction may still be committing: the state is read again at every poll.
    wait_for(lambda: d_r.get("wb:vz.last") == b"x", 10, "the last write")

    def committed() -> dict:
        state = {}
        for i in range(keys):
            v = d_r.get(f"wb:vz.{i}")
            if v is not None:
                state[f"vz.{i}"] = v.decode()
        state["vz.last"] = d_r.get("wb:vz.last").decode()
        return state

    wait_for(lambda: rows_like(ws, "vz.") == committed(), DRAIN_TIMEOUT,
             "the rows vz.* to equal what Redis holds")
    ws.wait_drained("wb")
    # Nothing is queued any more: Redis's state is final, and the database still has it.
    final = committed()
    assert len(final) > 1, "no write of a vanished client reached Redis"
    wait_rows(ws, "vz.", final)


def test_a_poisoned_key_in_a_shared_entry_holds_back_only_itself(ws, r, d_r):
    """One stream entry names every key of its transaction; the good keys land, the poisoned one
    is dead-lettered, and the entry is acknowledged only once all of its keys are done."""
    d = WriterDelta(ws, "wp")
    dead_before = d_r.xlen("readthru:wb:wp:dead")
    with ws.endpoint.raw() as c:
        c.send(encode("SET", "wp:s1", "a") + encode("MSET", "wp:s2", "b", "wp:sbad", "poison")
               + encode("SET", "wp:s3", "c"))
        assert [c.read_reply() for _ in range(3)] == [b"OK", b"OK", b"OK"]
    wait_rows(ws, "s", {"s1": "a", "s2": "b", "s3": "c"}, table="kp")
    wait_for(lambda: d_r.xlen("readthru:wb:wp:dead") > dead_before, DRAIN_TIMEOUT,
             "the poisoned key to reach the dead-letter stream")
    ws.wait_drained("wp")
    entries = d_r.xrange("readthru:wb:wp:dead")[dead_before:]
    assert [e[1][b"k"] for e in entries] == [b"wp:sbad"], entries
    assert d.now()["dead_letters"] == 1
    assert d_r.xlen("readthru:wb:wp") == 0
    assert d_r.xpending("readthru:wb:wp", "readthru")["pending"] == 0
    assert d_r.hlen("readthru:wb:wp:pending") == 0
    assert d_r.hlen("readthru:wb:wp:flushing") == 0


def test_write_behind_write_of_a_watching_client_keeps_its_watch(ws, r, d_r):
    """A WATCHing client's write-behind write runs as a script on its dedicated connection: a
    MULTI/EXEC there would end its WATCH, and its own EXEC would then run when Redis aborts it."""
    with ws.endpoint.raw() as c:
        assert c.command("WATCH", "wb:w1") == b"OK"
        assert c.command("SET", "wb:w2", "mine") == b"OK"
        assert r.set("wb:w1", "theirs") is True
        assert c.command("MULTI") == b"OK"
        assert c.command("SET", "wb:w3", "x") == b"QUEUED"
        assert c.command("EXEC") is None
    wait_rows(ws, "w", {"w1": "theirs", "w2": "mine"})
    assert d_r.get("wb:w3") is None


def test_transaction_redis_refuses_gives_each_writer_redis_own_error(make_ws):
    """Out of memory, Redis refuses to queue writes: each client gets the error Redis gives
    its command (what it would get without readthru), and nothing is queued."""
    ws = make_ws()
    d_r = ws.direct.client()
    try:
        with ws.direct.raw() as dc:
            assert dc.command("CONFIG", "SET", "maxmemory", "1") == b"OK"
            expected = dc.command("SET", "plain:oom", "v")
            with ws.endpoint.raw() as c:
                c.send(encode("SET", "wk:o1", "a") + encode("MSET", "wk:o2", "b", "wk:o3", "c")
                       + encode("GET", "wk:o1"))
                got = [c.read_reply() for _ in range(3)]
            assert dc.command("CONFIG", "SET", "maxmemory", "0") == b"OK"
        assert isinstance(expected, RespError) and expected.code == b"OOM", expected
        assert got[:2] == [expected, expected], got
        assert got[2] is None, got
        assert d_r.xlen("readthru:wb:wk") == 0
        assert d_r.hlen("readthru:wb:wk:pending") == 0
        assert d_r.hlen("readthru:wb:wk:flushing") == 0
    finally:
        d_r.close()


# -- coalescing ------------------------------------------------------------------------------------


def test_10000_writes_to_100_keys_are_coalesced_into_batches(ws, r):
    n, keys = 10_000, 100
    d = WriterDelta(ws, "wb")
    audit_before = len(audit_of(ws, "c"))
    pipe = r.pipeline(transaction=False)
    start = time.monotonic()
    # The database is locked while the writes are made, however long that takes (ASan, a loaded
    # machine): no flush can commit, so all 10000 queue up and the flushes that follow must
    # coalesce them. Without the lock a slow writer would let every 100ms cycle write a row per key.
    with WriteGate(ws.db_path):
        for i in range(n):
            pipe.set(f"wb:c{i % keys}", f"v{i}")
            if (i + 1) % 500 == 0:
                assert pipe.execute() == [True] * 500
        write_s = time.monotonic() - start
        assert len(audit_of(ws, "c")) == audit_before  # nothing could be written yet
    final = {f"c{k}": f"v{n - keys + k}" for k in range(keys)}  # the last write to each key
    wait_rows(ws, "c", final)
    ws.wait_drained("wb")
    delta = d.now()
    row_writes = len(audit_of(ws, "c")) - audit_before
    print(f"\n10000 writes to 100 keys in {write_s:.2f}s: {delta}; "
          f"{delta['db_writes'] / (n / 1000):.1f} rows written per 1000 writes, "
          f"{row_writes} row writes seen by the audit trigger")
    assert delta["writes"] == n, delta
    assert delta["batches"] >= 1, delta
    assert delta["coalesced"] > 0, delta
    assert delta["db_writes"] >= keys, delta
    # Each key's final state is written once; a batch that read its states before the lock was
    # released (one at most: a flusher's cycles run one at a time) may have written a key before.
    assert delta["db_writes"] <= 2 * keys, f"hardly coalesced: {delta}"
    assert row_writes == delta["db_writes"], (row_writes, delta)
    assert delta["dead_letters"] == 0, delta
    # the pending states are gone once written
    d_r = ws.direct.client()
    try:
        pending = d_r.hkeys("readthru:wb:wb:pending") + d_r.hkeys("readthru:wb:wb:flushing")
        assert not [k for k in pending if k.startswith(b"wb:c")], pending[:10]
    finally:
        d_r.close()


# -- a locked database -----------------------------------------------------------------------------


def test_a_flusher_behind_its_queue_writes_each_key_once(make_ws):
    """With more queued than one batch holds (batch 10, 50 keys written 4 times while the database
    is locked), each key's row is written once: a batch writes each key's latest state and the
    flusher remembers which of the key's entries, further on in the stream, that write covered,
    whether they set new values or the same one again."""
    ws = make_ws(writers=[Writer("wk", "wk:{id}", upsert("kv"), delete("kv"), mode="behind",
                                 flush_interval=FLUSH, batch=10, timeout="250ms")])
    keys, rounds = 50, 4
    d = WriterDelta(ws, "wk")
    client = ws.endpoint.client()
    try:
        # One at a time, so that each write is a stream entry of its own (a pipeline's writes
        # share entries) and the flusher reads 10 of them at a time.
        with WriteGate(ws.db_path):
            for rnd in range(rounds):
                for i in range(keys):
                    assert client.set(f"wk:v{i}", f"v{rnd}.{i}") is True  # a new value each time
                    assert client.set(f"wk:s{i}", f"same{i}") is True  # the same value each time
            # A batch whose states were read before the last write may still be waiting for the
            # lock: released now, it would write those states and the later ones after them (a
            # key written twice, rightly). Two more failed attempts mean the attempt in progress
            # read every write.
            retries = d.now()["retries"]
            wait_for(lambda: d.now()["retries"] >= retries + 2, DRAIN_TIMEOUT,
                     "two failed flushes after the last write")
    finally:
        client.close()
    wait_rows(ws, "v", {f"v{i}": f"v{rounds - 1}.{i}" for i in range(keys)})
    wait_rows(ws, "s", {f"s{i}": f"same{i}" for i in range(keys)})
    ws.wait_drained("wk")
    delta = d.now()
    print(f"\n{2 * keys * rounds} writes to {2 * keys} keys, batch 10: {delta}")
    assert delta["writes"] == 2 * keys * rounds, delta
    assert len(audit_of(ws, "v")) == keys, audit_of(ws, "v")
    assert len(audit_of(ws, "s")) == keys, audit_of(ws, "s")
    assert delta["db_writes"] == 2 * keys, delta
    assert delta["coalesced"] == 2 * keys * (rounds - 1), delta


def test_locked_database_delays_writes_without_losing_them(ws, r, d_r):
    d = WriterDelta(ws, "wb")
    final = {}
    with WriteGate(ws.db_path):
        for rnd in range(3):
            for i in range(5):
                assert r.set(f"wb:l{i}", f"v{rnd}.{i}") is True
                final[f"l{i}"] = f"v{rnd}.{i}"
        assert r.delete("wb:l4") == 1
        del final["l4"]
        wait_for(lambda: d.now()["retries"] > 0, DRAIN_TIMEOUT, "a failed flush to be retried")
        stats = ws.writer_stats("wb")
        assert stats["queue_length"] > 0, stats
        wait_for(lambda: ws.writer_stats("wb")["oldest_pending_ms"] >= 200, 10,
                 "oldest_pending_ms to grow while the database is locked")
        assert rows_like(ws, "l") == {}  # nothing could be written
        # readers are served from Redis meanwhile
        assert r.mget(*[f"wb:l{i}" for i in range(5)]) == [
            f"v2.{i}".encode() for i in range(4)] + [None]
    took = wait_rows(ws, "l", final)
    ws.wait_drained("wb")
    delta = d.now()
    print(f"\nlocked database: flushed {took:.2f}s after the lock was released; {delta}")
    assert delta["retries"] > 0 and delta["dead_letters"] == 0, delta
    assert d_r.xlen("readthru:wb:wb:dead") == 0
    assert ws.writer_stats("wb")["queue_length"] == 0


# -- dead letters ----------------------------------------------------------------------------------


def test_poison_entry_is_dead_lettered_while_other_keys_keep_flowing(ws, r, d_r):
    d = WriterDelta(ws, "wp")
    dead_before = d_r.xlen("readthru:wb:wp:dead")
    assert r.set("wp:g1", "a") is True
    assert r.set("wp:bad", "poison") is True  # Redis takes it; the database never will
    assert r.set("wp:g2", "b") is True
    wait_for(lambda: d_r.xlen("readthru:wb:wp:dead") > dead_before, DRAIN_TIMEOUT,
             "the poison entry to reach the dead-letter stream")
    wait_rows(ws, "g", {"g1": "a", "g2": "b"}, table="kp")
    # keys keep flowing after it, the poisoned key included once its value is good
    assert r.set("wp:g3", "c") is True
    assert r.set("wp:bad", "fine now") is True
    wait_rows(ws, "g", {"g1": "a", "g2": "b", "g3": "c"}, table="kp")
    wait_rows(ws, "bad", {"bad": "fine now"}, table="kp")
    ws.wait_drained("wp")

    entries = d_r.xrange("readthru:wb:wp:dead")[dead_before:]
    assert len(entries) == 1, entries
    fields = entries[0][1]
    assert set(fields) >= {b"k", b"state", b"error"}, fields
    assert fields[b"k"] == b"wp:bad", fields
    assert b"poison" in fields[b"state"], fields
    assert POISON_MSG.encode() in fields[b"error"], fields
    delta = d.now()
    assert delta["dead_letters"] == 1, delta
    assert delta["retries"] > 0, delta
    assert [op for _, op, _ in audit_of(ws, "bad", "kp")] == ["insert"], "poison half-written?"
    # nothing of wp is left in the stream or pending
    assert d_r.xlen("readthru:wb:wp") == 0
    assert d_r.hlen("readthru:wb:wp:pending") == 0
    assert d_r.hlen("readthru:wb:wp:flushing") == 0


# -- read-through with a write pending -------------------------------------------------------------


def test_read_through_after_eviction_returns_the_pending_value_not_the_older_row(ws, r, d_r):
    db_execute(ws.db_path, "INSERT INTO kv VALUES ('e1', 'old1'), ('e2', 'old2'), ('e3', 'old3')")
    with WriteGate(ws.db_path):  # the flusher cannot write; loaders can still read
        assert r.get("wb:e3") == b"old3"  # the loader reads through the lock
        assert r.mset({"wb:e1": "new1", "wb:e5": "new5"}) is True
        # A failed cycle's end moves the pending states to the flushing hash; the next write to
        # a key is pending again, newer than the one flushing.
        wait_for(lambda: d_r.hget("readthru:wb:wb:flushing", "wb:e1") == b"snew1", DRAIN_TIMEOUT,
                 "wb:e1's state to move to the flushing hash")
        assert d_r.hget("readthru:wb:wb:flushing", "wb:e5") == b"snew5"
        assert r.set("wb:e1", "newer1") is True
        assert d_r.hget("readthru:wb:wb:pending", "wb:e1") == b"snewer1"
        assert r.get("wb:e2") == b"old2"
        wait_for(lambda: d_r.exists("wb:e2") == 1, 10, "wb:e2 to be filled")
        assert r.delete("wb:e2") == 1
        d_r.delete("wb:e1", "wb:e2")  # evicted while the writes are pending
        assert r.get("wb:e1") == b"newer1", "read-through served an older state"
        assert r.get("wb:e2") is None, "read-through resurrected a row whose delete is pending"
        assert r.mget("wb:e1", "wb:e2", "wb:e3") == [b"newer1", None, b"old3"]
        # Redis is refilled from the pending state
        wait_for(lambda: d_r.get("wb:e1") == b"newer1", 10, "wb:e1 to be refilled with newer1")
        assert d_r.exists("wb:e2") == 0
        assert rows_like(ws, "e") == {"e1": "old1", "e2": "old2", "e3": "old3"}
        # a key whose only pending state is flushing
        assert d_r.hget("readthru:wb:wb:pending", "wb:e5") is None
        d_r.delete("wb:e5")
        assert r.get("wb:e5") == b"new5", "read-through served the database's missing row"
    wait_rows(ws, "e", {"e1": "newer1", "e3": "old3", "e5": "new5"})
    ws.wait_drained("wb")
    d_r.delete("wb:e1")
    assert r.get("wb:e1") == b"newer1"  # from the database now
    assert d_r.hlen("readthru:wb:wb:pending") == 0
    assert d_r.hlen("readthru:wb:wb:flushing") == 0


# -- introspection ---------------------------------------------------------------------------------


def test_stats_and_info_show_behind_writers(ws):
    stats = ws.stats()
    for w in WRITERS:
        fields = stats[f"writer:{w.name}"]
        for f in WRITER_FIELDS:
            assert isinstance(fields.get(f), int) and fields[f] >= 0, (w.name, f, fields)
    info = ws.info()
    for w in WRITERS:
        line = next((l for l in info.splitlines() if l.startswith(f"writer_{w.name}:")), None)
        assert line is not None, info
        fields = dict(kv.split("=", 1) for kv in line.split(":", 1)[1].split(","))
        assert fields["mode"] == "behind", line
        assert all(fields[f].isdigit() for f in WRITER_FIELDS), line


# -- crashes, shutdown, two processes --------------------------------------------------------------


def test_kill_9_during_a_write_load_loses_no_acknowledged_write(make_ws):
    ws = make_ws()
    keys = 50
    acked: dict[str, str | None] = {}  # key -> last acknowledged state (None: deleted)
    inflight: dict[str, str | None] = {}  # the one write sent but not answered when readthru died
    done = threading.Event()
    count = [0]
    failure: list = []

    def load() -> None:
        try:
            conn = ws.endpoint.raw()
        except OSError as exc:
            failure.append(exc)
            return
        i = 0
        try:
            while True:
                key = f"k{i % keys}"
                inflight.clear()
                if i % 7 == 3:
                    inflight[key] = None
                    reply = conn.command("DEL", f"wk:{key}")
                    assert isinstance(reply, int), reply
                else:
                    inflight[key] = f"v{i}"
                    reply = conn.command("SET", f"wk:{key}", f"v{i}")
                    assert reply == b"OK", reply
                acked[key] = inflight.pop(key)
                i += 1
                count[0] = i
        except (OSError, ConnectionError):
            pass  # readthru died
        except AssertionError as exc:
            failure.append(exc)
        finally:
            conn.close()
            done.set()

    thread = threading.Thread(target=load)
    thread.start()
    wait_for(lambda: count[0] >= 3000 or done.is_set(), 60, "3000 acknowledged writes")
    ws.kill9()
    assert done.wait(30), "the load did not notice readthru's death"
    thread.join(10)
    assert not failure, failure
    d_r = ws.direct.client()
    try:
        print(f"\nkill -9 after {count[0]} acknowledged writes; stream length then: "
              f"{d_r.xlen('readthru:wb:wk')}, database rows: {len(rows_like(ws, 'k'))}")
    finally:
        d_r.close()

    ws.restart()

    def ok() -> bool:
        rows = rows_like(ws, "k")
        for key, state in acked.items():
            if rows.get(key) != state and not (key in inflight and rows.get(key) == inflight[key]):
                return False
        return set(rows) <= set(acked) | set(inflight)

    start = time.monotonic()
    try:
        wait_for(ok, DRAIN_TIMEOUT, "every acknowledged write to reach the database")
    except AssertionError:
        rows = rows_like(ws, "k")
        lost = {k: (v, rows.get(k)) for k, v in acked.items() if rows.get(k) != v}
        raise AssertionError(f"acknowledged writes not in the database (acked, db): "
                             f"{dict(list(lost.items())[:10])} ({len(lost)} keys); in flight at "
                             f"the kill: {inflight}\nreadthru log:\n{ws.log()}") from None
    print(f"after the restart the database caught up in {time.monotonic() - start:.2f}s")
    ws.wait_drained("wk")
    client = ws.endpoint.client()
    try:  # the restarted readthru serves what Redis kept
        for key, state in acked.items():
            allowed = [state] + ([inflight[key]] if key in inflight else [])
            got = client.get(f"wk:{key}")
            assert got in [None if a is None else a.encode() for a in allowed], (key, allowed, got)
    finally:
        client.close()


def test_entries_a_killed_flusher_had_read_are_claimed_by_the_next_process(make_ws):
    """Entries delivered to a flusher (pending in the consumer group, not acknowledged) when it is
    killed are claimed and written by the next process once the dead one's lease expires."""
    ws = make_ws(writers=[Writer("wk", "wk:{id}", upsert("kv"), delete("kv"), mode="behind",
                                 flush_interval=FLUSH, timeout="300ms")])
    expected = {f"p{i}": f"v{i}" for i in range(30)}
    d_r = ws.direct.client()
    try:
        with WriteGate(ws.db_path):
            client = ws.endpoint.client()
            try:
                for key, value in expected.items():
                    assert client.set(f"wk:{key}", value) is True
            finally:
                client.close()
            wait_for(lambda: ws.writer_stats("wk")["retries"] > 0, DRAIN_TIMEOUT,
                     "a flush to fail on the locked database")
            pending = d_r.xpending("readthru:wb:wk", "readthru")["pending"]
            assert pending > 0, "the failed batch's entries are not pending in the group"
            ws.kill9()
        ws.restart()
        took = wait_rows(ws, "p", expected)
        print(f"\n{pending} entries pending for the killed flusher; written {took:.2f}s after "
              "the restart")
        wait_for(lambda: d_r.xpending("readthru:wb:wk", "readthru")["pending"] == 0, 30,
                 "the claimed entries to be acknowledged")
        ws.wait_drained("wk")
    finally:
        d_r.close()


def test_entries_are_written_with_the_states_the_pending_hash_holds(make_ws):
    """A stream entry names keys (a key per field k, as the queueing script and earlier versions
    write them, or a list in field ks, as shared transactions write them); what the flusher
    writes for each is its state in the pending hashes (a string, or a delete; the pending
    hash's over the flushing hash's), and a key they do not hold has nothing left to write."""
    ws = make_ws()
    db_execute(ws.db_path, "INSERT INTO kv VALUES ('f2', 'old2'), ('f3', 'old3'), ('f5', 'old5')")
    d_r = ws.direct.client()
    try:
        with d_r.pipeline(transaction=True) as p:  # one step, as a client's write queues it
            p.hset("readthru:wb:wk:pending",
                   mapping={"wk:f1": "sone", "wk:f2": "d", "wk:f4": "sfour", "wk:f6": "ssix"})
            p.xadd("readthru:wb:wk", {"k": "wk:f1"})
            p.execute_command("XADD", "readthru:wb:wk", "*", "k", "wk:f2", "k", "wk:f3")
            # f7's state was retired to the flushing hash: the flusher looks there for the keys
            # the pending hash does not hold.
            p.hset("readthru:wb:wk:flushing", mapping={"wk:f7": "sseven", "wk:f4": "solder"})
            p.execute_command("XADD", "readthru:wb:wk", "*", "ks", "5:wk:f45:wk:f55:wk:f65:wk:f7")
            p.execute()
        wait_rows(ws, "f", {"f1": "one", "f3": "old3", "f4": "four", "f5": "old5", "f6": "six",
                            "f7": "seven"})
        ws.wait_drained("wk")
        assert d_r.hlen("readthru:wb:wk:pending") == 0
        assert d_r.hlen("readthru:wb:wk:flushing") == 0
    finally:
        d_r.close()


def test_an_entry_with_a_malformed_key_list_is_logged_and_the_rest_flows(make_ws):
    ws = make_ws()
    d_r = ws.direct.client()
    try:
        with d_r.pipeline(transaction=True) as p:
            p.hset("readthru:wb:wk:pending", mapping={"wk:g1": "sgood", "wk:g2": "stwo"})
            p.execute_command("XADD", "readthru:wb:wk", "*", "ks", "5:wk:g19:wk:")
            p.execute_command("XADD", "readthru:wb:wk", "*", "ks", "5:wk:g2")
            p.execute()
        # The keys before the fault are written; the entry is done with like any other.
        wait_rows(ws, "g", {"g1": "good", "g2": "two"})
        ws.wait_drained("wk")
        assert "has a malformed key list" in ws.logs()
        c = ws.endpoint.client()
        assert c.ping()
        c.close()
    finally:
        d_r.close()


def test_sigterm_flushes_what_is_queued(make_ws):
    ws = make_ws(writers=[Writer("wk", "wk:{id}", upsert("kv"), delete("kv"), mode="behind",
                                 flush_interval="20s")])
    db_execute(ws.db_path, "INSERT INTO kv VALUES ('s0', 'old0'), ('s1', 'old1')")
    client = ws.endpoint.client()
    try:
        pipe = client.pipeline(transaction=False)
        for i in range(300):
            pipe.set(f"wk:s{i}", f"v{i}")
        pipe.delete("wk:s0")
        pipe.delete("wk:s299")
        assert pipe.execute() == [True] * 300 + [1, 1]
    finally:
        client.close()
    before = len(rows_like(ws, "s"))
    assert ws.stack.proxy is not None
    log = ws.log()
    rc = ws.stack.proxy.stop()  # SIGTERM
    assert rc == 0, f"readthru exited with {rc} on SIGTERM; stderr:\n{log}"
    expected = {f"s{i}": f"v{i}" for i in range(1, 299)}
    rows = rows_like(ws, "s")
    print(f"\n{before} of the 300 rows were in the database before SIGTERM (flush_interval 20s)")
    assert rows == expected, (
        f"{len(set(expected.items()) - set(rows.items()))} queued writes were not flushed on "
        f"SIGTERM\nreadthru log:\n{ws.log()}")
    d_r = ws.direct.client()
    try:
        assert d_r.xlen("readthru:wb:wk") == 0
    finally:
        d_r.close()


def test_sigterm_with_the_database_locked_exits_and_the_next_process_flushes(make_ws):
    """SIGTERM while the database cannot be written: readthru still exits 0 (after about
    shutdown_timeout), and the queue stays in Redis for the next process, which flushes it."""
    ws = make_ws(writers=[Writer("wk", "wk:{id}", upsert("kv"), delete("kv"), mode="behind",
                                 flush_interval=FLUSH, timeout="300ms")])
    ws.restart_with_top_level('shutdown_timeout = "1s"')
    expected = {f"q{i}": f"v{i}" for i in range(50)}
    with WriteGate(ws.db_path):
        client = ws.endpoint.client()
        try:
            for key, value in expected.items():
                assert client.set(f"wk:{key}", value) is True
        finally:
            client.close()
        wait_for(lambda: ws.writer_stats("wk")["retries"] > 0, DRAIN_TIMEOUT,
                 "a flush to fail on the locked database")
        log = ws.log()
        start = time.monotonic()
        rc = ws.stack.proxy.stop()
        took = time.monotonic() - start
        assert rc == 0, f"readthru exited with {rc} on SIGTERM (None: killed); stderr:\n{log}"
        print(f"\nSIGTERM with the database locked: exited in {took:.2f}s")
        d_r = ws.direct.client()
        try:
            assert d_r.xlen("readthru:wb:wk") > 0, "the queue was dropped at exit"
        finally:
            d_r.close()
        assert rows_like(ws, "q") == {}
    ws.restart()
    wait_rows(ws, "q", expected)
    ws.wait_drained("wk")


def test_sigterm_waits_for_a_database_that_recovers_within_shutdown_timeout(make_ws):
    """SIGTERM while the database is locked, the lock going 0.8s later, shutdown_timeout 10s: the
    queue is flushed before exit (a failed attempt is retried until the deadline)."""
    ws = make_ws(writers=[Writer("wk", "wk:{id}", upsert("kv"), delete("kv"), mode="behind",
                                 flush_interval=FLUSH, timeout="300ms")])
    ws.restart_with_top_level('shutdown_timeout = "10s"')
    expected = {f"w{i}": f"v{i}" for i in range(20)}
    gate = WriteGate(ws.db_path)
    try:
        client = ws.endpoint.client()
        try:
            for key, value in expected.items():
                assert client.set(f"wk:{key}", value) is True
        finally:
            client.close()
        wait_for(lambda: ws.writer_stats("wk")["retries"] > 0, DRAIN_TIMEOUT,
                 "a flush to fail on the locked database")
        proxy = ws.stack.proxy
        assert proxy is not None and proxy.proc is not None
        proxy.proc.send_signal(signal.SIGTERM)
        time.sleep(0.8)
    finally:
        gate.release()
    rc = proxy.stop()  # waits for the exit already under way
    assert rc == 0, f"readthru exited with {rc}; stderr:\n{ws.log()}"
    rows = rows_like(ws, "w")
    assert rows == expected, (
        f"{len(expected) - len(rows)} of {len(expected)} queued writes not flushed before exit, "
        f"though the database was writable again long before shutdown_timeout; stream length "
        f"{ws.direct.client().xlen('readthru:wb:wk')}\nreadthru log:\n{ws.log()}")


def test_two_readthru_processes_write_each_entry_once_and_both_serve(make_ws):
    # flush_interval 1s: a lease of 6s (6 intervals), renewed at every cycle's start. A cycle
    # slowed down past the lease (ASan, a loaded machine) would let the other process claim the
    # entries it is writing.
    ws = make_ws(writers=[Writer("wk", "wk:{id}", upsert("kv"), delete("kv"), mode="behind",
                                 flush_interval="1s")])
    second = ws.start_extra_proxy()
    eps = [ws.endpoint, second.endpoint]
    n = 2000
    clients = [ep.client() for ep in eps]
    try:
        pipes = [c.pipeline(transaction=False) for c in clients]
        for chunk in range(0, n, 200):
            for i in range(chunk, chunk + 200):
                pipes[i % 2].set(f"wk:t{i}", f"v{i}")
            for p in pipes:
                assert p.execute() == [True] * 100
        expected = {f"t{i}": f"v{i}" for i in range(n)}
        took = wait_rows(ws, "t", expected)
        ws.wait_drained("wk", endpoints=eps)
        per_id = ws.db("SELECT id, count(*) FROM audit WHERE id LIKE 't%' GROUP BY id "
                       "HAVING count(*) > 1")
        assert per_id == [], f"entries written more than once: {per_id[:10]}"
        assert len(audit_of(ws, "t")) == n
        stats = [ws.writer_stats("wk", ep) for ep in eps]
        print(f"\ntwo processes: flushed in {took:.2f}s; db_writes "
              f"{[s['db_writes'] for s in stats]}, batches {[s['batches'] for s in stats]}")
        assert sum(s["db_writes"] for s in stats) == n, stats
        assert sum(s["writes"] for s in stats) == n, stats
        assert [s["writes"] for s in stats] == [n // 2, n // 2], stats
        # both still serve
        for c in clients:
            assert c.get("wk:t0") == b"v0" and c.get("wk:t1") == b"v1"
            assert c.set("wk:both", "x") is True

        # One stops: the other's writes keep reaching the database (it takes the flusher over
        # if the one that stopped had it).
        clients[0].close()
        log = ws.log()
        rc = ws.stack.proxy.stop()
        assert rc == 0, f"readthru exited with {rc} on SIGTERM; stderr:\n{log}"
        p = clients[1].pipeline(transaction=False)
        for i in range(n, n + 100):
            p.set(f"wk:t{i}", f"v{i}")
        assert p.execute() == [True] * 100
        expected.update({f"t{i}": f"v{i}" for i in range(n, n + 100)})
        took = wait_rows(ws, "t", expected)
        print(f"after the first process stopped, the second flushed in {took:.2f}s")
        assert len(audit_of(ws, "t")) == n + 100
    finally:
        for c in clients:
            c.close()
    assert stats_of(second.endpoint)["writer:wk"]["writes"] == n // 2 + 1 + 100
