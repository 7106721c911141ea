"""Refresh-ahead: a value whose TTL is nearly over is reloaded in the background on a hit, so
readers of a hot key never see it expire; and write-behind hash writes on a hash Redis does not
hold keep the database row's other columns. Real redis-server, real SQLite, real readthru."""

from __future__ import annotations

import time

import pytest

from loader_stack import Loader, LoaderStack, db_execute, db_query
from writer_stack import Writer, WriterStack, wait_for

pytestmark = pytest.mark.proxy_only

SCHEMA = """
CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT);
CREATE TABLE products(id INTEGER PRIMARY KEY, name TEXT, price REAL);
INSERT INTO users VALUES (1, 'ann'), (2, 'bob');
INSERT INTO products VALUES (1, 'chair', 9.5), (2, 'desk', 20);
"""


def test_a_hot_key_is_reloaded_before_it_expires(tmp_path):
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
        # Past half of it (Redis's own clock says so, with half a second to spare), a hit still
        # answers the cached value, and reloads in the background.
        wait_for(lambda: direct.pttl("u:1") <= ttl_ms // 2 - 500, ttl_ms / 1000,
                 "the cached value to be past half of its TTL")
        assert r.get("u:1") == b"ann"
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


def test_refresh_ahead_needs_a_ttl_and_a_string_loader(tmp_path):
    from loader_stack import check_config
    for extra, ttl, type_ in (({"refresh_ahead": 0.5}, "0s", None),
                              ({"refresh_ahead": 0.5}, "1h", "hash"),
                              ({"refresh_ahead": 1.0}, "1h", None),
                              ({"refresh_ahead": -0.1}, "1h", None)):
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
        assert proc.returncode == 1, (extra, ttl, type_, proc.stdout, proc.stderr)
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
