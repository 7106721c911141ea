"""Configuration reload while readthru runs: SIGHUP and READTHRU RELOAD re-read the file; loaders,
writers, backends, TTLs and limits change without dropping a client or a load in flight; a bad new
file is rejected with the reason (logged, and in READTHRU RELOAD's error) and the running
configuration stays; settings only a restart can change are kept, and the log says so.

Real redis-server, real SQLite, real readthru; every test has its own processes (signals). A
reload is waited for by its log line ("configuration reloaded" or "reload rejected"), never by a
sleep.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest
import redis

import harness
from harness import Readthru
from loader_stack import Backend, DbGate, Loader, LoaderStack, burn_sql, loaders_toml
from resp_client import RespError
from writer_stack import Writer, WriteGate, WriterStack, wait_for, writers_toml

pytestmark = pytest.mark.proxy_only

SCHEMA = """
CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT);
CREATE TABLE items(id INTEGER PRIMARY KEY, v TEXT);
CREATE TABLE kv(id TEXT PRIMARY KEY, v TEXT);
"""
USERS = [("INSERT INTO users VALUES (?, ?)", [(i, f"user{i}") for i in range(1, 2001)]),
         ("INSERT INTO items VALUES (?, ?)", [(i, f"item{i}") for i in range(1, 2001)])]

USER_QUERY = "SELECT name FROM users WHERE id = :id"
ITEM_QUERY = "SELECT v FROM items WHERE id = :id"
KV_UPSERT = ("INSERT INTO kv(id, v) VALUES (:id, :value) "
             "ON CONFLICT(id) DO UPDATE SET v = excluded.v")
KV_DELETE = "DELETE FROM kv WHERE id = :id"
RELOAD_TIMEOUT = 30.0  # generous: ASan, a busy 2-core machine

OK_LINE = "configuration reloaded"
REJECTED_LINE = "reload rejected"


def rewrite(ls: LoaderStack, loaders, writers=(), backends=None, extra: str = "", top: str = "",
            **config_kwargs) -> None:
    """Writes the stack's config file anew (same ports), with these tables, and `top` (top-level
    keys) first. Atomically (a rename), as a careful operator does: a reload must never read a
    half-written file."""
    backends = list(backends) if backends is not None else ls.backends
    proxy = ls.stack.proxy
    tmp = proxy.config.with_suffix(".tmp")
    harness.write_config(
        tmp, listen_port=proxy.port, upstream_port=ls.stack.upstream.port,
        extra=extra + loaders_toml(backends, loaders) + writers_toml(writers), **config_kwargs)
    tmp.write_text(top + tmp.read_text())
    os.replace(tmp, proxy.config)


def log_count(ls: LoaderStack, text: str) -> int:
    return ls.stack.proxy.log_path.read_text(errors="replace").count(text)


def sighup(ls: LoaderStack) -> None:
    ls.stack.proxy.proc.send_signal(signal.SIGHUP)


def reload_by_signal(ls: LoaderStack, expect: str = OK_LINE) -> None:
    """SIGHUP, then wait for the reload's outcome in the log (`expect`, or fail on the other)."""
    done = log_count(ls, OK_LINE) + log_count(ls, REJECTED_LINE)
    before = log_count(ls, expect)
    sighup(ls)
    wait_for(lambda: log_count(ls, OK_LINE) + log_count(ls, REJECTED_LINE) > done,
             RELOAD_TIMEOUT, "the reload to end")
    assert log_count(ls, expect) > before, ls.log()[-3000:]


def readthru_reload(ls: LoaderStack):
    """READTHRU RELOAD on a fresh connection: b"OK", or the RespError."""
    with ls.endpoint.raw(timeout=RELOAD_TIMEOUT) as conn:
        return conn.command("READTHRU", "RELOAD")


@contextlib.contextmanager
def users_stack(tmp_path: Path, loaders, **kwargs):
    """A LoaderStack on the users and items tables, stopped at the end (it must exit 0)."""
    ls = LoaderStack(tmp_path, db_script=SCHEMA, db_inserts=USERS, loaders=loaders, **kwargs)
    try:
        yield ls
    finally:
        assert ls.stop() == 0


def filled_pttl(direct: redis.Redis, key: str) -> int:
    """The TTL a fill gave `key` (the fill follows the reply: it is waited for)."""
    wait_for(lambda: direct.exists(key) == 1, 10, f"the fill of {key}")
    return direct.pttl(key)


def test_sighup_with_a_changed_ttl_changes_the_next_fills_ttl(tmp_path):
    with users_stack(tmp_path, [Loader("u", "u:{id:int}", USER_QUERY, ttl="1h")]) as ls:
        r = ls.endpoint.client()
        direct = ls.direct.client()
        assert r.get("u:1") == b"user1"
        assert 3500_000 < filled_pttl(direct, "u:1") <= 3600_000
        before = ls.loader_stats("u")
        rewrite(ls, [Loader("u", "u:{id:int}", USER_QUERY, ttl="100s")])
        reload_by_signal(ls)
        assert r.get("u:2") == b"user2"  # the same client, connected across the reload
        assert 0 < filled_pttl(direct, "u:2") <= 100_000
        assert 3500_000 < direct.pttl("u:1") <= 3600_000  # what was filled stays as it was
        # The loader kept its name: its counters run on.
        after = ls.loader_stats("u")
        assert after["loads"] == before["loads"] + 1 and after["fills"] == before["fills"] + 1
        r.close()
        direct.close()


def backend_counters(ls: LoaderStack) -> dict[str, int]:
    """INFO's backend_main line: completed, errors, ... (queued and running left out)."""
    for line in ls.info("readthru").splitlines():
        if line.startswith("backend_main:"):
            fields = dict(f.split("=", 1) for f in line.split(":", 1)[1].split(","))
            return {k: int(v) for k, v in fields.items() if k not in ("kind", "queued", "running")}
    raise AssertionError("no backend_main line in INFO")


def test_backend_counters_run_on_across_a_reload(tmp_path):
    with users_stack(tmp_path, [Loader("u", "u:{id:int}", USER_QUERY)]) as ls:
        r = ls.endpoint.client()
        for i in range(1, 6):
            assert r.get(f"u:{i}") == f"user{i}".encode()
        before = backend_counters(ls)
        assert before["completed"] >= 5, before
        rewrite(ls, [Loader("u", "u:{id:int}", USER_QUERY, ttl="100s")])
        reload_by_signal(ls)
        after = backend_counters(ls)
        assert after["completed"] == before["completed"], (before, after)  # the new backend's
        assert after["workers"] == before["workers"]
        assert r.get("u:6") == b"user6"
        assert backend_counters(ls)["completed"] == before["completed"] + 1
        r.close()


def test_added_loader_serves_its_keys_after_reload(tmp_path):
    with users_stack(tmp_path, [Loader("u", "u:{id:int}", USER_QUERY)]) as ls:
        r = ls.endpoint.client()
        assert r.get("i:7") is None  # no loader: plain Redis
        assert "i" not in ls.stats()
        rewrite(ls, [Loader("u", "u:{id:int}", USER_QUERY),
                     Loader("i", "i:{id:int}", ITEM_QUERY)])
        assert readthru_reload(ls) == b"OK"
        assert r.get("i:7") == b"item7"
        assert r.get("u:7") == b"user7"
        assert ls.loader_stats("i")["loads"] == 1
        assert log_count(ls, "loader 'i' added") == 1
        r.close()


def test_removed_loaders_keys_are_plain_forwarded(tmp_path):
    with users_stack(tmp_path, [Loader("u", "u:{id:int}", USER_QUERY),
                                Loader("i", "i:{id:int}", ITEM_QUERY)]) as ls:
        r = ls.endpoint.client()
        direct = ls.direct.client()
        assert r.get("i:1") == b"item1"
        rewrite(ls, [Loader("u", "u:{id:int}", USER_QUERY)])
        reload_by_signal(ls)
        assert r.get("i:2") is None
        assert r.mget("i:3", "u:3") == [None, b"user3"]
        assert direct.exists("i:2", "i:3") == 0  # nothing loaded, nothing filled
        assert "i" not in ls.stats()
        assert log_count(ls, "loader 'i' removed") == 1
        r.close()
        direct.close()


@pytest.mark.parametrize("bad,reason", [
    ("syntax", "readthru.toml:"),
    ("query", "the query does not prepare: no such table: nosuchtable"),
])
def test_bad_config_is_rejected_with_its_reason_and_the_old_one_keeps_running(
        tmp_path, bad, reason):
    with users_stack(tmp_path, [Loader("u", "u:{id:int}", USER_QUERY, ttl="1h")]) as ls:
        r = ls.endpoint.client()
        direct = ls.direct.client()
        assert r.get("u:1") == b"user1"
        if bad == "syntax":
            path = ls.stack.proxy.config
            path.write_text(path.read_text() + "\n[[loaders]\nname = \n")
        else:
            rewrite(ls, [Loader("u", "u:{id:int}", USER_QUERY, ttl="5s"),
                         Loader("bad", "bad:{id}", "SELECT v FROM nosuchtable WHERE id = :id")])
        reload_by_signal(ls, expect=REJECTED_LINE)
        line = [x for x in ls.log().splitlines() if REJECTED_LINE in x][-1]
        assert reason in line and "keeping the running configuration" in line, line
        reply = readthru_reload(ls)
        assert isinstance(reply, RespError), reply
        assert reply.decode().startswith("ERR ") and reason in reply.decode(), reply
        # The running configuration is whole: the old TTL, no 'bad' loader.
        assert r.get("u:2") == b"user2"
        assert 3500_000 < filled_pttl(direct, "u:2") <= 3600_000
        assert r.get("bad:1") is None and "bad" not in ls.stats()
        # Fixed, the file loads.
        rewrite(ls, [Loader("u", "u:{id:int}", USER_QUERY, ttl="5s")])
        assert readthru_reload(ls) == b"OK"
        assert r.get("u:3") == b"user3"
        assert 0 < filled_pttl(direct, "u:3") <= 5000
        r.close()
        direct.close()


def gated_load_across_a_reload(ls: LoaderStack):
    """Starts GET u:1 on a thread while the database is held (DbGate): its load stays in flight.
    Then switches the config to a copy of the database (which the gate does not hold) with
    ttl 100s, and reloads. Returns (gate, thread, result list) with the load still in flight."""
    copy = ls.db_path.with_name("copy.db")
    shutil.copyfile(ls.db_path, copy)
    gate = DbGate(ls.db_path)
    result: list = []

    def get() -> None:
        c = ls.endpoint.client()
        try:
            result.append(c.get("u:1"))
        except redis.RedisError as exc:
            result.append(exc)
        finally:
            c.close()

    thread = threading.Thread(target=get)
    thread.start()
    wait_for(lambda: ls.loader_stats("u")["loads"] == 1, 10, "the load to start")
    rewrite(ls, [Loader("u", "u:{id:int}", USER_QUERY, ttl="100s", timeout="30s")],
            backends=[Backend(str(copy))], top='shutdown_timeout = "1s"\n')
    assert readthru_reload(ls) == b"OK"
    return gate, thread, result


def test_a_load_in_flight_finishes_with_the_configuration_it_started_with(tmp_path):
    with users_stack(tmp_path, [Loader("u", "u:{id:int}", USER_QUERY, ttl="1h",
                                       timeout="30s")]) as ls:
        direct = ls.direct.client()
        gate, thread, result = gated_load_across_a_reload(ls)
        try:
            # The new configuration serves while the old one's load waits.
            r = ls.endpoint.client()
            assert r.get("u:2") == b"user2"
            assert 0 < filled_pttl(direct, "u:2") <= 100_000
            r.close()
            assert thread.is_alive() and result == []
        finally:
            gate.release()
        thread.join(timeout=30)
        assert result == [b"user1"]
        assert 3500_000 < filled_pttl(direct, "u:1") <= 3600_000  # the old loader's TTL
        direct.close()


def test_sigterm_with_a_replaced_configurations_load_in_flight_exits_cleanly(tmp_path):
    """The shutdown deadline (shutdown_timeout, 1s since the reload) closes the client still
    waiting; the replaced registry's database closes too (its load is interrupted), and it is
    freed: readthru exits 0 (it exits 3 when anything is left alive)."""
    with users_stack(tmp_path, [Loader("u", "u:{id:int}", USER_QUERY, timeout="30s")]) as ls:
        gate, thread, result = gated_load_across_a_reload(ls)
        try:
            ls.stack.proxy.proc.send_signal(signal.SIGTERM)
            thread.join(timeout=60)  # answered (an error, or the value) before readthru exits
            assert not thread.is_alive()
            wait_for(lambda: not ls.alive(), 30, "readthru to exit")
        finally:
            gate.release()
        assert ls.stack.proxy.proc.returncode == 0, ls.log()[-3000:]


def test_sigterm_right_after_sighup_exits_cleanly(tmp_path):
    """A reload still running (or queued) when the stop begins is dropped, not half applied."""
    with users_stack(tmp_path, [Loader("u", "u:{id:int}", USER_QUERY)]) as ls:
        rewrite(ls, [Loader("u", "u:{id:int}", USER_QUERY, ttl="5s")])
        for _ in range(3):
            sighup(ls)
        ls.stack.proxy.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: not ls.alive(), 30, "readthru to exit")
        assert ls.stack.proxy.proc.returncode == 0, ls.log()[-3000:]


class FileListenReadthru(Readthru):
    """readthru with its addresses from the config file alone (no --listen/--upstream), so that
    the file's `listen` is what it runs with."""

    def argv(self, port: int) -> list[str]:
        return [self.binary, "--config", str(self.config)]


def test_listen_change_needs_a_restart_and_keeps_the_running_address(tmp_path):
    upstream = harness.RedisServer(tmp_path / "redis").start()
    port, other = harness.free_port(), harness.free_port()
    config = tmp_path / "readthru.toml"
    harness.write_config(config, listen_port=port, upstream_port=upstream.port)
    proxy = FileListenReadthru(tmp_path / "readthru", upstream.port, config=config,
                               listen_port=port).start()
    try:
        c = proxy.endpoint.client()
        c.set("k", "v")
        harness.write_config(config, listen_port=other, upstream_port=upstream.port, maxclients=77)
        with proxy.endpoint.raw(timeout=RELOAD_TIMEOUT) as conn:
            assert conn.command("READTHRU", "RELOAD") == b"OK"
        log = proxy.log()
        assert (f"'listen' changed (127.0.0.1:{port} -> 127.0.0.1:{other}): needs a restart; "
                f"keeping 127.0.0.1:{port}") in log, log
        assert "maxclients 10000 -> 77" in log, log
        assert c.get("k") == b"v"  # the same connection, on the address kept
        assert harness.ping_ok(port)
        assert not harness.ping_ok(other, timeout=0.5)
        c.close()
    finally:
        rc = proxy.stop()
        upstream.stop()
    assert rc == 0


def test_limits_apply_to_clients_already_connected(make_stack):
    stack = make_stack(maxclients=10000)  # any setting: the stack gets a config file
    proxy = stack.proxy
    with stack.endpoint.raw() as conn:
        assert conn.command("SET", "k", "x" * 2000) == b"OK"
        harness.write_config(proxy.config, listen_port=proxy.port,
                             upstream_port=stack.upstream.port,
                             extra='proto_max_bulk_len = "1kb"\n')
        assert conn.command("READTHRU", "RELOAD") == b"OK"
        assert conn.command("SET", "k", "x" * 1000) == b"OK"
        assert conn.command("SET", "k", "x" * 2000) == b"ERR Protocol error: invalid bulk length"
    assert "proto_max_bulk_len 536870912 -> 1024" in proxy.log()


def test_requirepass_change_applies_to_new_auth_and_keeps_authenticated_clients(make_stack):
    stack = make_stack(requirepass="old")
    proxy = stack.proxy
    try:
        authed = stack.endpoint.client()
        assert authed.ping()
        unauthed = stack.endpoint.raw(auth=False)
        harness.write_config(proxy.config, listen_port=proxy.port,
                             upstream_port=stack.upstream.port, requirepass="new")
        with stack.endpoint.raw(timeout=RELOAD_TIMEOUT) as conn:
            assert conn.command("READTHRU", "RELOAD") == b"OK"
        assert authed.set("k", "v") and authed.get("k") == b"v"
        assert unauthed.command("GET", "k").code == b"NOAUTH"
        assert unauthed.command("AUTH", "old").code == b"WRONGPASS"
        assert unauthed.command("AUTH", "new") == b"OK"
        assert unauthed.command("GET", "k") == b"v"
        # No password any more: a client that never authenticated needs none either.
        never = stack.endpoint.raw(auth=False)
        assert never.command("GET", "k").code == b"NOAUTH"
        harness.write_config(proxy.config, listen_port=proxy.port,
                             upstream_port=stack.upstream.port)
        assert unauthed.command("READTHRU", "RELOAD") == b"OK"
        assert never.command("GET", "k") == b"v"
        never.close()
        unauthed.close()
        authed.close()
    finally:
        proxy.password = None  # for the fixture's checks at teardown


def under_load(threads: list[threading.Thread], stop: threading.Event, errors: list[str],
               reload_once, seconds: float = 4.0) -> None:
    """Runs `threads` while reload_once(0 or 1) switches between two configurations, for
    `seconds`; then stops and joins them. No thread may have seen an error."""
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + seconds
        flip = 0
        while time.monotonic() < deadline and not errors:
            flip ^= 1
            reload_once(flip)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors[:10]


def test_reload_under_load_drops_no_client_and_answers_every_load(tmp_path):
    """Client threads run GET/SET/MGET on plain keys and read-through misses on a slow loader
    (loads in flight all the time) while SIGHUP comes again and again, and READTHRU RELOAD too,
    switching between two configurations: no client sees an error or a wrong value."""
    slow = burn_sql(20, "SELECT v FROM items WHERE id = :id")
    # The second configuration's query differs in text only: a load started under one is not
    # joined by a miss under the other (it loads again), which must not show either.
    # Loads queue behind the slow ones on 4 workers, the more so on a loaded machine: a timeout
    # of 30s (not the default 2s, counted from when a load is queued) is never what answers them.
    configs = [
        [Loader("u", "u:{id:int}", USER_QUERY, ttl="1h", timeout="30s"),
         Loader("i", "i:{id:int}", slow, timeout="30s")],
        [Loader("u", "u:{id:int}", USER_QUERY, ttl="30m", timeout="30s"),
         Loader("i", "i:{id:int}", slow + " ", ttl="2h", timeout="30s"),
         Loader("x", "x:{id}", USER_QUERY)],
    ]
    ls = LoaderStack(tmp_path, db_script=SCHEMA, db_inserts=USERS, loaders=configs[0],
                     backends=[Backend(str(tmp_path / "app.db"), workers=4)])
    errors: list[str] = []
    lookups = {"u": 0, "i": 0}
    counts_lock = threading.Lock()
    stop = threading.Event()
    ids = iter(range(1, 2001))
    ids_lock = threading.Lock()

    def next_id() -> int | None:
        with ids_lock:
            return next(ids, None)

    def client_thread(n: int) -> None:
        c = ls.endpoint.client()
        rng = random.Random(n)
        mine = {"u": 0, "i": 0}
        try:
            while not stop.is_set():
                i = next_id()
                if i is None:
                    break
                k = f"plain:{n}:{i}"
                if not c.set(k, str(i)) or c.get(k) != str(i).encode():
                    errors.append(f"plain {k}")
                # A cold key of the slow loader, asked for by about three clients at once: its
                # load is in flight for a while, and joined.
                h = (i + 2) // 3
                if c.get(f"i:{h}") != f"item{h}".encode():
                    errors.append(f"i:{h}")
                mine["i"] += 1
                j = rng.randint(1, 2000)
                got = c.mget(f"u:{j}", k, f"i:{h}")
                if got != [f"user{j}".encode(), str(i).encode(), f"item{h}".encode()]:
                    errors.append(f"mget {j} {h}: {got!r}")
                mine["u"] += 1
                mine["i"] += 1
        except redis.RedisError as exc:
            errors.append(f"client {n}: {exc!r}")
        finally:
            c.close()
            with counts_lock:
                for key, value in mine.items():
                    lookups[key] += value

    def reload_command_thread() -> None:
        try:
            while not stop.is_set():
                reply = readthru_reload(ls)
                if reply != b"OK":
                    errors.append(f"READTHRU RELOAD: {reply!r}")
                time.sleep(0.05)
        except (OSError, ConnectionError) as exc:
            errors.append(f"READTHRU RELOAD: {exc!r}")

    try:
        before = ls.stats()
        threads = [threading.Thread(target=client_thread, args=(n,)) for n in range(6)]
        threads.append(threading.Thread(target=reload_command_thread))

        def reload_once(flip: int) -> None:
            rewrite(ls, configs[flip], backends=[Backend(str(tmp_path / "app.db"), workers=4)])
            sighup(ls)  # not waited for: the next one may come while it runs
            time.sleep(0.1)

        under_load(threads, stop, errors, reload_once)
        assert ls.alive()
        wait_for(lambda: log_count(ls, OK_LINE) >= 10, RELOAD_TIMEOUT, "reloads to run")
        assert log_count(ls, REJECTED_LINE) == 0, ls.log()[-3000:]
        # Counters ran on across every reload: each lookup of a loader's key counted once.
        after = ls.stats()
        for name in ("u", "i"):
            counted = sum(after[name][f] - before[name][f] for f in ("hits", "misses"))
            assert counted == lookups[name], (name, counted, lookups[name])
        assert after["i"]["errors"] == after["i"]["timeouts"] == after["i"]["rejected"] == 0
    finally:
        stop.set()
        assert ls.stop() == 0


def test_write_behind_writer_change_under_a_write_load_loses_no_acknowledged_write(tmp_path):
    def writer(batch: int, flush: str) -> Writer:
        return Writer("wb", "wb:{id}", KV_UPSERT, KV_DELETE, mode="behind", flush_interval=flush,
                      batch=batch, timeout="250ms", max_attempts=50)

    variants = [writer(500, "100ms"), writer(7, "30ms")]
    ws = WriterStack(tmp_path, db_script=SCHEMA, writers=[variants[0]])
    acked: dict[str, str] = {}
    acked_lock = threading.Lock()
    errors: list[str] = []
    stop = threading.Event()

    def writes(n: int) -> None:
        c = ws.endpoint.client()
        rng = random.Random(n)
        seq = 0
        try:
            while not stop.is_set():
                seq += 1
                value = f"{n}-{seq}"
                a = f"wb:{n}-{rng.randint(1, 60)}"  # `{id}` is one key segment: no ':'
                if seq % 3 == 0:
                    b = f"wb:{n}-m{rng.randint(1, 10)}"
                    ok = c.mset({a: value, b: value})
                    done = [a, b]
                else:
                    ok = c.set(a, value)
                    done = [a]
                if ok is not True:
                    errors.append(f"{done}: {ok!r}")
                    continue
                with acked_lock:
                    for k in done:
                        acked[k] = value  # each thread owns its keys: the last ack is the value
        except redis.RedisError as exc:
            errors.append(f"writer {n}: {exc!r}")
        finally:
            c.close()

    try:
        threads = [threading.Thread(target=writes, args=(n,)) for n in range(4)]

        def reload_once(flip: int) -> None:
            rewrite(ws, [], writers=[variants[flip]])
            reload_by_signal(ws)
            time.sleep(0.15)

        under_load(threads, stop, errors, reload_once)
        assert len(acked) > 50
        ws.wait_drained("wb", timeout=60)
        rows = ws.rows()
        missing = {k: v for k, v in acked.items() if rows.get(k.removeprefix("wb:")) != v}
        assert not missing, (len(missing), list(missing.items())[:5])
    finally:
        stop.set()
        assert ws.stop() == 0


def test_a_removed_write_behind_writer_leaves_its_queue_in_redis_until_it_returns(tmp_path):
    wb = Writer("wb", "wb:{id}", KV_UPSERT, KV_DELETE, mode="behind", flush_interval="50ms",
                timeout="250ms", max_attempts=50)
    ws = WriterStack(tmp_path, db_script=SCHEMA, writers=[wb])
    try:
        r = ws.endpoint.client()
        direct = ws.direct.client()
        with WriteGate(ws.db_path):
            for i in range(5):
                assert r.set(f"wb:{i}", f"v{i}")
            rewrite(ws, [], writers=[])
            reload_by_signal(ws)
            wait_for(lambda: log_count(ws, "writer 'wb' is no longer a write-behind writer") == 1,
                     10)
            # A batch the flusher had begun may still commit once the gate opens (it was read
            # before the reload): hold the gate until the flusher says it has stopped.
            wait_for(lambda: log_count(ws, "writer 'wb': its flusher has stopped") == 1, 10)
        # The flusher stopped: nothing reaches the database, the entries wait in the stream.
        time.sleep(0.5)
        assert direct.xlen("readthru:wb:wb") >= 1
        assert ws.rows() == {}
        # Plain Redis now: no queue entry for a new write.
        assert r.set("wb:9", "plain")
        # The writer back: what was queued lands.
        rewrite(ws, [], writers=[wb])
        assert readthru_reload(ws) == b"OK"
        ws.wait_drained("wb", timeout=60)
        assert ws.rows() == {str(i): f"v{i}" for i in range(5)}
        r.close()
        direct.close()
    finally:
        assert ws.stop() == 0


def test_reload_with_an_unreadable_database_keeps_the_old_backend(tmp_path):
    with users_stack(tmp_path, [Loader("u", "u:{id:int}", USER_QUERY)]) as ls:
        r = ls.endpoint.client()
        missing = str(Path(tmp_path) / "nope" / "missing.db")
        rewrite(ls, [Loader("u", "u:{id:int}", USER_QUERY)], backends=[Backend(missing)])
        reply = readthru_reload(ls)
        assert isinstance(reply, RespError) and "backend 'main'" in reply.decode(), reply
        assert r.get("u:5") == b"user5"
        r.close()


def users_toml(app_password: str, app_keys: str, extra_user: str = "") -> str:
    return (f'[[users]]\nname = "app"\npassword = "{app_password}"\ncommands = ["+@all"]\n'
            f"keys = [{app_keys}]\n\n"
            '[[users]]\nname = "ops"\npassword = "ops-pw"\ncommands = ["+@all"]\nkeys = ["~*"]\n'
            + extra_user)


def test_users_reload_as_acl_load_disconnecting_only_clients_of_changed_or_removed_users(
        make_stack):
    stack = make_stack(requirepass="pw", extra=users_toml("app-pw", '"~user:*"'))
    proxy = stack.proxy
    try:
        default = stack.endpoint.raw()  # AUTH pw: the default user
        app = stack.endpoint.raw(auth=False)
        assert app.command("AUTH", "app", "app-pw") == b"OK"
        assert app.command("SET", "other:1", "x").code == b"NOPERM"
        ops = stack.endpoint.raw(auth=False)
        assert ops.command("AUTH", "ops", "ops-pw") == b"OK"
        # app may now write other:*; ops is unchanged; a new user "late" appears.
        late = '[[users]]\nname = "late"\npassword = "late-pw"\ncommands = ["+@all"]\nkeys = ["~*"]\n'
        harness.write_config(proxy.config, listen_port=proxy.port,
                             upstream_port=stack.upstream.port, requirepass="pw",
                             extra=users_toml("app-pw", '"~user:*", "~other:*"', late))
        assert default.command("READTHRU", "RELOAD") == b"OK"
        log = proxy.log()
        assert "reload: user 'app' changed" in log and "reload: user 'late' added" in log, log
        with pytest.raises(ConnectionError):  # its user changed: closed, as Redis's ACL LOAD
            app.command("PING")
        assert ops.command("SET", "other:1", "y") == b"OK"  # unchanged user: still connected
        assert default.command("GET", "other:1") == b"y"
        again = stack.endpoint.raw(auth=False)
        assert again.command("AUTH", "app", "app-pw") == b"OK"
        assert again.command("SET", "other:2", "x") == b"OK"  # the new rules
        assert again.command("AUTH", "late", "late-pw") == b"OK"
        # ops removed: its client goes; AUTH as ops fails from now on.
        harness.write_config(proxy.config, listen_port=proxy.port,
                             upstream_port=stack.upstream.port, requirepass="pw",
                             extra='[[users]]\nname = "app"\npassword = "app-pw"\n'
                                   'commands = ["+@all"]\nkeys = ["~user:*", "~other:*"]\n')
        assert default.command("READTHRU", "RELOAD") == b"OK"
        assert "reload: user 'ops' removed" in proxy.log()
        with pytest.raises(ConnectionError):
            ops.command("PING")
        with stack.endpoint.raw(auth=False) as c:
            assert c.command("AUTH", "ops", "ops-pw").code == b"WRONGPASS"
        assert default.command("ACL", "WHOAMI") == b"default"
        for c in (default, again):
            c.close()
    finally:
        proxy.password = None  # for the fixture's checks at teardown


def test_reload_that_would_open_a_non_loopback_listener_without_password_is_rejected(tmp_path):
    upstream = harness.RedisServer(tmp_path / "redis").start()
    port = harness.free_port()
    config = tmp_path / "readthru.toml"
    harness.write_config(config, listen_port=port, upstream_port=upstream.port,
                         requirepass="pw")
    config.write_text(config.read_text().replace(f'"{harness.HOST}:{port}"', f'"0.0.0.0:{port}"'))
    proxy = FileListenReadthru(tmp_path / "readthru", upstream.port, config=config,
                               listen_port=port, password="pw").start()
    try:
        config.write_text(config.read_text().replace('requirepass = "pw"\n', ""))
        with proxy.endpoint.raw(timeout=RELOAD_TIMEOUT) as conn:
            reply = conn.command("READTHRU", "RELOAD")
            assert isinstance(reply, RespError) and b"protected mode is on" in bytes(reply), reply
            assert conn.command("PING") == b"PONG"
        assert REJECTED_LINE in proxy.log()
        with proxy.endpoint.raw(auth=False) as conn:
            assert conn.command("PING").code == b"NOAUTH"  # the running password stays
    finally:
        rc = proxy.stop()
        upstream.stop()
    assert rc == 0


def test_metrics_and_slowlog_settings_on_reload(make_stack):
    stack = make_stack(metrics=f'listen = "{harness.HOST}:{harness.free_port()}"',
                       slowlog_log_slower_than=10000)
    proxy = stack.proxy
    with stack.endpoint.raw() as conn:
        harness.write_config(proxy.config, listen_port=proxy.port,
                             upstream_port=stack.upstream.port,
                             metrics=f'listen = "{harness.HOST}:{harness.free_port()}"',
                             slowlog_log_slower_than=0, slowlog_max_len=5)
        assert conn.command("READTHRU", "RELOAD") == b"OK"
    log = proxy.log()
    assert "'metrics' changed: needs a restart; keeping the running value" in log, log
    assert "slowlog_log_slower_than 10000 -> 0" in log and "slowlog_max_len 128 -> 5" in log, log
