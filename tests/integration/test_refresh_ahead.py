"""Refresh-ahead: a value (or hash) whose TTL is nearly over is reloaded in the background on a
hit, so readers of a hot key never see it expire; and write-behind hash writes on a hash Redis
does not hold keep the database row's other columns. Real redis-server, real SQLite, real
readthru."""

from __future__ import annotations

import contextlib
import time
from typing import Callable

import pytest

from loader_stack import DbGate, Loader, LoaderStack, db_execute, db_query
from writer_stack import Writer, WriterStack, wait_for

pytestmark = pytest.mark.proxy_only

SCHEMA = """
CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT);
CREATE TABLE products(id INTEGER PRIMARY KEY, name TEXT, price REAL);
INSERT INTO users VALUES (1, 'ann'), (2, 'bob');
INSERT INTO products VALUES (1, 'chair', 9.5), (2, 'desk', 20);
"""

PRODUCT_QUERY = "SELECT name, price FROM products WHERE id = :id"


def wait_past_half_ttl(direct, key: str, ttl_ms: int) -> None:
    """Until Redis's own clock says `key` is past half of its TTL, with half a second to spare."""
    wait_for(lambda: direct.pttl(key) <= ttl_ms // 2 - 500, ttl_ms / 1000,
             f"{key} to be past half of its TTL")


def hash_stack(tmp_path, ttl_ms: int) -> LoaderStack:
    """Products as hashes, refreshed past half of their TTL; loads may wait long on a DbGate."""
    return LoaderStack(tmp_path, db_script=SCHEMA, loaders=[
        Loader("p", "p:{id:int}", PRODUCT_QUERY, type="hash", ttl=f"{ttl_ms}ms", timeout="20s",
               extra={"refresh_ahead": 0.5})])


def test_a_hot_key_is_reloaded_before_it_expires_by_mget_and_get_hits(tmp_path):
    # A TTL of 8s, refreshed past its half: every step has seconds to spare on a slow machine.
    ttl_ms = 8000
    ls = LoaderStack(tmp_path, db_script=SCHEMA, loaders=[
        Loader("u", "u:{id:int}", "SELECT name FROM users WHERE id = :id", ttl=f"{ttl_ms}ms",
               extra={"refresh_ahead": 0.5})])
    try:
        r = ls.endpoint.client()
        direct = ls.direct.client()
        assert r.get("u:1") == b"ann"
        assert ls.loader_stats("u")["loads"] == 1
        # The row changes; within the first half of the TTL a hit changes nothing.
        db_execute(ls.db_path, "UPDATE users SET name = 'ann2' WHERE id = 1")
        assert r.get("u:1") == b"ann"
        assert ls.loader_stats("u")["refreshes"] == 0
        # Past half of it, a hit (of an MGET here; of GETs below) still answers the cached value,
        # and reloads in the background.
        wait_past_half_ttl(direct, "u:1", ttl_ms)
        assert r.mget(["u:1"]) == [b"ann"]
        wait_for(lambda: direct.get("u:1") == b"ann2", 5, "the refreshed value in Redis")
        refreshed = time.monotonic()
        stats = ls.loader_stats("u")
        assert stats["refreshes"] == 1 and stats["loads"] == 2 and stats["misses"] == 1, stats
        assert ttl_ms // 2 < direct.pttl("u:1") <= ttl_ms  # a fresh TTL
        # Kept hot, the key never expires: every read is a hit, until well past the end of the
        # TTL the refresh gave it (so it was refreshed again meanwhile).
        while True:
            time.sleep(0.5)
            past_ttl = time.monotonic() > refreshed + ttl_ms / 1000 + 0.5
            assert r.get("u:1") == b"ann2"
            if past_ttl:
                break
        stats = ls.loader_stats("u")
        assert stats["misses"] == 1 and stats["refreshes"] >= 2, stats
        r.close()
        direct.close()
    finally:
        ls.stop()


def get_in_last_ms(r, direct, key: str, left_ms: int):
    """GET `key` through readthru once Redis's clock gives it at most `left_ms` to live."""
    wait_for(lambda: 0 < direct.pttl(key) <= left_ms, 30, f"{key} to have {left_ms} ms left",
             interval=0.005)
    return r.get(key)


def test_refresh_ahead_is_on_by_default_and_zero_turns_it_off(tmp_path):
    # Two loaders over one table, neither naming refresh_ahead but "off" setting it to 0. A TTL of
    # 6s: the default 0.1 leaves a 600 ms window, and a GET sent with 250 ms left is in it.
    ttl = "6s"
    query = "SELECT name FROM users WHERE id = :id"
    ls = LoaderStack(tmp_path, db_script=SCHEMA, loaders=[
        Loader("on", "on:{id:int}", query, ttl=ttl),
        Loader("off", "off:{id:int}", query, ttl=ttl, extra={"refresh_ahead": 0})])
    try:
        r = ls.endpoint.client()
        direct = ls.direct.client()
        assert r.get("on:1") == b"ann" and r.get("off:1") == b"ann"
        db_execute(ls.db_path, "UPDATE users SET name = 'ann2' WHERE id = 1")
        # A second before expiry is not yet in the window: nothing is reloaded.
        assert get_in_last_ms(r, direct, "on:1", 1000) == b"ann"
        assert ls.loader_stats("on")["refreshes"] == 0
        # In the window, the default loader's hit answers the cached value and reloads it.
        assert get_in_last_ms(r, direct, "on:1", 250) == b"ann"
        wait_for(lambda: direct.get("on:1") == b"ann2", 5, "the refreshed value in Redis")
        assert direct.pttl("on:1") > 4000  # a fresh TTL
        stats = ls.loader_stats("on")
        assert stats["refreshes"] == 1 and stats["loads"] == 2 and stats["misses"] == 1, stats
        # refresh_ahead = 0: the same hit reloads nothing; the key expires and the next read
        # misses and waits for its load.
        assert get_in_last_ms(r, direct, "off:1", 250) == b"ann"
        wait_for(lambda: direct.exists("off:1") == 0, 5, "off:1 to expire")
        stats = ls.loader_stats("off")
        assert stats["refreshes"] == 0 and stats["loads"] == 1, stats
        assert r.get("off:1") == b"ann2"
        stats = ls.loader_stats("off")
        assert stats["misses"] == 2 and stats["loads"] == 2, stats
        r.close()
        direct.close()
    finally:
        ls.stop()


def test_a_full_refresh_table_makes_room_by_dropping_values_that_ran_out(tmp_path):
    # readthru remembers at most 100,000 fills for refresh-ahead. Fill that many with a 2s TTL;
    # once they have run out, a new fill must still be tracked (and so refreshed), which it is
    # only if the full table drops the entries of values that ran out.
    schema = SCHEMA + """
    CREATE TABLE many(id INTEGER PRIMARY KEY, v TEXT);
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)
    INSERT INTO many SELECT i, 'v' || i FROM n;
    """
    ls = LoaderStack(tmp_path, db_script=schema, loaders=[
        Loader("m", "m:{id:int}", "SELECT v FROM many WHERE id = :id", ttl="2s", timeout="30s"),
        Loader("u", "u:{id:int}", "SELECT name FROM users WHERE id = :id", ttl="6s")])
    try:
        r = ls.endpoint.client()
        direct = ls.direct.client()
        for start in range(1, 100001, 500):  # within the backend's queue of 1024
            keys = [f"m:{i}" for i in range(start, start + 500)]
            assert r.mget(keys) == [f"v{i}".encode() for i in range(start, start + 500)]
        wait_for(lambda: ls.loader_stats("m")["fills"] == 100000, 30, "the 100,000 fills")
        wait_for(lambda: direct.dbsize() == 0, 30, "the 100,000 values to expire", interval=0.2)
        assert r.get("u:1") == b"ann"
        db_execute(ls.db_path, "UPDATE users SET name = 'ann2' WHERE id = 1")
        assert get_in_last_ms(r, direct, "u:1", 250) == b"ann"
        wait_for(lambda: direct.get("u:1") == b"ann2", 5, "the refreshed value in Redis")
        assert ls.loader_stats("u")["refreshes"] == 1
        r.close()
        direct.close()
    finally:
        ls.stop()


def test_a_refresh_never_overwrites_a_newer_write(tmp_path):
    ls = LoaderStack(tmp_path, db_script=SCHEMA, loaders=[
        Loader("u", "u:{id:int}", "SELECT name FROM users WHERE id = :id", ttl="2s",
               extra={"refresh_ahead": 0.9})])
    try:
        r = ls.endpoint.client()
        direct = ls.direct.client()
        assert r.get("u:2") == b"bob"
        time.sleep(0.3)
        # Written behind readthru's back, with no TTL: not readthru's value to reload any more.
        direct.set("u:2", "written directly")
        db_execute(ls.db_path, "UPDATE users SET name = 'bob2' WHERE id = 2")
        assert r.get("u:2") == b"written directly"
        time.sleep(0.3)
        assert direct.get("u:2") == b"written directly"
        assert ls.loader_stats("u")["refreshes"] <= 1  # tried, and declined by Redis
        # A write through readthru stops refreshing the key at once.
        assert r.set("u:2", "through readthru") is True
        assert r.get("u:2") == b"through readthru"
        time.sleep(0.3)
        assert direct.get("u:2") == b"through readthru"
        r.close()
        direct.close()
    finally:
        ls.stop()


def test_a_hot_hash_is_reloaded_before_it_expires(tmp_path):
    ttl_ms = 8000
    ls = hash_stack(tmp_path, ttl_ms)
    try:
        r = ls.endpoint.client()
        direct = ls.direct.client()
        assert r.hgetall("p:1") == {b"name": b"chair", b"price": b"9.5"}
        db_execute(ls.db_path, "UPDATE products SET name = 'chair2', price = 11 WHERE id = 1")
        assert r.hget("p:1", "name") == b"chair"
        assert ls.loader_stats("p")["refreshes"] == 0
        wait_past_half_ttl(direct, "p:1", ttl_ms)
        # A read of one field answers from the cache and reloads the whole hash behind it.
        assert r.hget("p:1", "name") == b"chair"
        wait_for(lambda: direct.hgetall("p:1") == {b"name": b"chair2", b"price": b"11"}, 5,
                 "the refreshed hash in Redis")
        refreshed = time.monotonic()
        stats = ls.loader_stats("p")
        assert stats["refreshes"] == 1 and stats["loads"] == 2 and stats["misses"] == 1, stats
        assert ttl_ms // 2 < direct.pttl("p:1") <= ttl_ms  # a fresh TTL
        # Kept hot by HMGET and HGETALL, it never expires.
        reads = 0
        while True:
            time.sleep(0.5)
            past_ttl = time.monotonic() > refreshed + ttl_ms / 1000 + 0.5
            if reads % 2 == 0:
                assert r.hmget("p:1", ["name", "price"]) == [b"chair2", b"11"]
            else:
                assert r.hgetall("p:1") == {b"name": b"chair2", b"price": b"11"}
            reads += 1
            if past_ttl:
                break
        stats = ls.loader_stats("p")
        assert stats["misses"] == 1 and stats["refreshes"] >= 2, stats
        r.close()
        direct.close()
    finally:
        ls.stop()


@contextlib.contextmanager
def a_hash_refresh_waiting_on_the_database(ls: LoaderStack, r, direct, trigger: Callable):
    """For a hash_stack: fills p:2 (desk, 20), changes its row (price 25), and once p:2 is past
    half of its TTL runs `trigger(r)`, the read that starts its refresh, with the database locked.
    Inside the block the refresh has read the hash and its query waits on the lock; leaving the
    block releases it."""
    assert r.hgetall("p:2") == {b"name": b"desk", b"price": b"20"}
    db_execute(ls.db_path, "UPDATE products SET price = 25 WHERE id = 2")
    wait_past_half_ttl(direct, "p:2", 8000)
    with DbGate(ls.db_path):
        trigger(r)
        wait_for(lambda: ls.loader_stats("p")["loads"] == 2, 10, "the refresh's load")
        yield


def test_a_hash_refresh_never_overwrites_a_write_that_came_while_it_loaded(tmp_path):
    ls = hash_stack(tmp_path, 8000)
    try:
        r = ls.endpoint.client()
        direct = ls.direct.client()
        read_a_field = lambda c: c.hget("p:2", "price")  # noqa: E731
        with a_hash_refresh_waiting_on_the_database(ls, r, direct, read_a_field):
            # A field changes behind readthru's back, keeping the hash's TTL.
            assert direct.hset("p:2", "name", "desk (written directly)") == 0
        wait_for(lambda: ls.loader_stats("p")["refreshes"] == 1, 10, "the refresh's fill")
        assert direct.hgetall("p:2") == {b"name": b"desk (written directly)", b"price": b"20"}
        r.close()
        direct.close()
    finally:
        ls.stop()


def test_a_write_through_readthru_during_a_hash_refresh_supersedes_it(tmp_path):
    ls = hash_stack(tmp_path, 8000)
    try:
        r = ls.endpoint.client()
        direct = ls.direct.client()
        with a_hash_refresh_waiting_on_the_database(ls, r, direct, lambda c: c.hgetall("p:2")):
            assert r.hset("p:2", "price", "30") == 0
        wait_for(lambda: ls.loader_stats("p")["superseded"] == 1, 10, "the superseded refresh")
        time.sleep(0.3)
        assert ls.loader_stats("p")["refreshes"] == 0
        assert direct.hgetall("p:2") == {b"name": b"desk", b"price": b"30"}
        # And the key is no longer refreshed: past the refresh point, reads change nothing.
        assert r.hget("p:2", "price") == b"30"
        time.sleep(0.3)
        assert ls.loader_stats("p")["loads"] == 2
        r.close()
        direct.close()
    finally:
        ls.stop()


def test_a_write_through_readthru_stops_a_hash_being_refreshed(tmp_path):
    ttl_ms = 8000
    ls = hash_stack(tmp_path, ttl_ms)
    try:
        r = ls.endpoint.client()
        direct = ls.direct.client()
        assert r.hgetall("p:1") == {b"name": b"chair", b"price": b"9.5"}
        assert r.hset("p:1", "price", "12") == 0  # keeps the TTL
        db_execute(ls.db_path, "UPDATE products SET name = 'chair2' WHERE id = 1")
        wait_past_half_ttl(direct, "p:1", ttl_ms)
        assert r.hget("p:1", "name") == b"chair"
        time.sleep(0.5)
        assert direct.hgetall("p:1") == {b"name": b"chair", b"price": b"12"}
        stats = ls.loader_stats("p")
        assert stats["loads"] == 1 and stats["refreshes"] == 0, stats
        r.close()
        direct.close()
    finally:
        ls.stop()


def test_refresh_ahead_needs_a_ttl_and_a_fraction_below_one(tmp_path):
    from loader_stack import check_config
    for extra, ttl, type_, ok in (({"refresh_ahead": 0.5}, "0s", None, False),
                                  ({"refresh_ahead": 0.5}, "0s", "hash", False),
                                  ({"refresh_ahead": 1.0}, "1h", None, False),
                                  ({"refresh_ahead": -0.1}, "1h", None, False),
                                  ({"refresh_ahead": 0.5}, "1h", "hash", True),
                                  ({"refresh_ahead": 0.5}, "1h", "json", True),
                                  # the default is on, and off for a value without expiry
                                  ({}, "0s", None, True),
                                  ({}, "0s", "hash", True),
                                  ({"refresh_ahead": 0}, "0s", None, True)):
        ls = None
        conf = tmp_path / f"c{len(list(tmp_path.iterdir()))}.toml"
        db = tmp_path / "app.db"
        if not db.exists():
            import sqlite3
            sqlite3.connect(db).executescript(SCHEMA)
        loader = Loader("u", "u:{id}", "SELECT name FROM users WHERE id = :id", ttl=ttl,
                        type=type_, extra=extra)
        conf.write_text(f'[backends.main]\nkind = "sqlite"\npath = "{db}"\n\n' + loader.toml())
        proc = check_config(conf)
        assert proc.returncode == (0 if ok else 1), (extra, ttl, type_, proc.stdout, proc.stderr)
        if not ok:
            assert "loader 'u': 'refresh_ahead'" in proc.stderr, proc.stderr
        assert ls is None


def test_write_behind_hset_on_an_uncached_hash_keeps_the_rows_other_columns(tmp_path):
    ws = WriterStack(
        tmp_path, db_script=SCHEMA,
        loaders=[Loader("p", "p:{id:int}", "SELECT name, price FROM products WHERE id = :id",
                        type="hash")],
        writers=[Writer("p", "p:{id:int}",
                        "INSERT INTO products(id, name, price) VALUES (:id, :name, :price) "
                        "ON CONFLICT(id) DO UPDATE SET name = excluded.name, price = excluded.price",
                        "DELETE FROM products WHERE id = :id", mode="behind",
                        flush_interval="100ms")])
    try:
        r = ws.endpoint.client()
        # Neither hash is in Redis: the replies are as if it had held the row all along.
        assert r.hset("p:1", "price", "99") == 0
        assert r.hdel("p:2", "price") == 1
        assert r.hgetall("p:1") == {b"name": b"chair", b"price": b"99"}
        wait_for(lambda: db_query(ws.db_path, "SELECT id, name, price FROM products ORDER BY id")
                 == [(1, "chair", 99.0), (2, "desk", None)], 10, "the rows in the database")
        r.close()
    finally:
        ws.stop()
