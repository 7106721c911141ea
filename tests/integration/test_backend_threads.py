"""A backend's worker threads: named sql:<backend> (loaders) and sqlw:<backend> (writers), at
the backend's `nice` level, while readthru's event loop keeps the process's own.

Real redis-server, real SQLite, real readthru; the threads are read from /proc.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from loader_stack import Backend, Loader, LoaderStack, loaders_toml
from writer_stack import Writer, writers_toml

pytestmark = pytest.mark.proxy_only

SCHEMA = "CREATE TABLE kv(id TEXT PRIMARY KEY, v TEXT);"
QUERY = "SELECT v FROM kv WHERE id = :id"
UPSERT = "INSERT INTO kv(id, v) VALUES (:id, :value) ON CONFLICT(id) DO UPDATE SET v = excluded.v"
DELETE = "DELETE FROM kv WHERE id = :id"


def threads(pid: int) -> list[tuple[str, int]]:
    """(name, nice) of each thread of `pid`."""
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        name = (task / "comm").read_text().strip()
        fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        out.append((name, int(fields[16])))  # field 19 of stat, counted after the name
    return out


def test_workers_are_named_and_niced_and_the_loop_is_not(tmp_path):
    # Raising a nice level needs no privilege, so this runs as any user.
    backends = [Backend(str(tmp_path / "app.db"), name="store", workers=3, nice=7)]
    loaders = [Loader("kv", "kv:{id}", QUERY, backend="store")]
    writers = [Writer("kvw", "kvw:{id}", UPSERT, DELETE, backend="store", mode="through")]
    ls = LoaderStack(
        tmp_path, db_script=SCHEMA, db_inserts=[("INSERT INTO kv VALUES (?, ?)", [("a", "1")])],
        backends=backends, loaders=loaders,
        extra=loaders_toml(backends, loaders, None) + writers_toml(writers))
    try:
        r = ls.endpoint.client()
        assert r.get("kv:a") == b"1"  # the loaders' workers serve
        assert r.set("kvw:b", "2") is True  # and the writer's
        named = threads(ls.stack.proxy.pid)
        assert sorted(n for n in named if n[0].startswith("sql")) == (
            [("sql:store", 7)] * 3 + [("sqlw:store", 7)])
        # The loop (and any other thread) keeps the level readthru started with: this process's.
        rest = [nice for name, nice in named if not name.startswith("sql")]
        assert rest and all(nice == os.nice(0) for nice in rest), named
    finally:
        assert ls.stop() == 0
