"""Read-through stacks for the integration tests: a SQLite database built in the test's temp dir,
a real redis-server, and a real readthru configured with [backends.*] and [[loaders]].

The config goes through harness.write_config's `extra`, which lands after the [limits] section:
first `negative_cache_entries = N` (a [limits] key), then the new tables.

Helpers:
  Loader / Backend       one [[loaders]] / [backends.NAME] table (None fields are left out, so the
                         daemon's defaults apply)
  loaders_toml()         the `extra` text
  build_db()             a database from SQL statements (plus parameterised inserts)
  DbGate                 holds the database locked: loads wait until the test releases them
  burn_sql(ms)           a recursive CTE that keeps SQLite busy for about `ms` milliseconds,
                         calibrated once per process on the same libsqlite3 the daemon links (only
                         roughly: under ASan, or on a busy machine, it runs several times longer)
  LoaderStack            db + redis-server + readthru; .stats(), .info(), .cmdstat()
  check_config()         runs `readthru --check-config --config FILE`
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import harness
from harness import Stack
from resp_client import RespMap

STAT_FIELDS = (
    "hits", "misses", "loads", "coalesced", "negative_hits", "errors", "timeouts", "rejected",
    "superseded", "fills", "load_p50_us", "load_p99_us", "load_p999_us", "load_max_us",
)
# Counters (the latency fields are not): what a delta is taken of.
COUNTERS = STAT_FIELDS[:10]


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    # A JSON string is a TOML basic string (json.dumps never writes "\/").
    return json.dumps(str(value), ensure_ascii=False)


@dataclass
class Backend:
    path: str
    name: str = "main"
    kind: str = "sqlite"
    workers: int | None = None
    queue: int | None = None
    nice: int | None = None

    def toml(self) -> str:
        out = (f"[backends.{self.name}]\nkind = {toml_value(self.kind)}\n"
               f"path = {toml_value(self.path)}\n")
        if self.workers is not None:
            out += f"workers = {self.workers}\n"
        if self.queue is not None:
            out += f"queue = {self.queue}\n"
        if self.nice is not None:
            out += f"nice = {self.nice}\n"
        return out


@dataclass
class Loader:
    name: str
    key: str
    query: str
    backend: str | None = "main"
    type: str | None = None
    ttl: str | None = None
    jitter: str | None = None
    negative_ttl: str | None = None
    timeout: str | None = None
    extra: dict = field(default_factory=dict)  # any other key, written as is

    def toml(self) -> str:
        out = "[[loaders]]\n"
        for key in ("name", "key", "backend", "query", "type", "ttl", "jitter", "negative_ttl",
                    "timeout"):
            value = getattr(self, key)
            if value is not None:
                out += f"{key} = {toml_value(value)}\n"
        for key, value in self.extra.items():
            out += f"{key} = {toml_value(value)}\n"
        return out


def loaders_toml(
    backends: Iterable[Backend],
    loaders: Iterable[Loader],
    negative_cache_entries: int | None = None,
) -> str:
    out = ""
    if negative_cache_entries is not None:
        out += f"negative_cache_entries = {negative_cache_entries}\n"
    for backend in backends:
        out += "\n" + backend.toml()
    for loader in loaders:
        out += "\n" + loader.toml()
    return out


def build_db(path: Path, script: str, inserts: Iterable[tuple[str, Iterable]] = ()) -> Path:
    """Creates `path` from an SQL script, then runs each (sql, rows) insert with executemany."""
    if path.exists():
        path.unlink()
    db = sqlite3.connect(path)
    try:
        db.executescript(script)
        for sql, rows in inserts:
            db.executemany(sql, rows)
        db.commit()
    finally:
        db.close()
    return path


def db_execute(path: Path, sql: str, params=()) -> None:
    """One write to the database while readthru has it open (rollback journal: readers take shared
    locks only while a query runs, so this never waits for long)."""
    db = sqlite3.connect(path, timeout=30)
    try:
        db.execute(sql, params)
        db.commit()
    finally:
        db.close()


def db_query(path: Path, sql: str, params=()) -> list:
    db = sqlite3.connect(path, timeout=30)
    try:
        return db.execute(sql, params).fetchall()
    finally:
        db.close()


def sqlite_error(path: Path, sql: str, params) -> str:
    """SQLite's own message for a query that fails at run time (the oracle for loader errors)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        db.execute(sql, params).fetchall()
    except sqlite3.Error as exc:
        return str(exc)
    finally:
        db.close()
    raise AssertionError(f"query did not fail: {sql}")


class DbGate:
    """Holds an EXCLUSIVE lock on the database (rollback journal): readthru's loads from it wait in
    SQLite's busy handler (up to their timeout) until release(). Makes a load "in progress" for
    exactly as long as a test needs, whatever the machine's speed. Use as a context manager;
    release() may come earlier and is idempotent."""

    def __init__(self, path: Path):
        self.db: sqlite3.Connection | None = sqlite3.connect(path, timeout=30, isolation_level=None)
        self.db.execute("BEGIN EXCLUSIVE")

    def release(self) -> None:
        if self.db is not None:
            self.db.execute("ROLLBACK")
            self.db.close()
            self.db = None

    def __enter__(self) -> "DbGate":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


_ROWS_PER_MS: float | None = None


def _burn_cte(rows: int) -> str:
    return ("WITH RECURSIVE burn(x) AS "
            f"(SELECT 1 UNION ALL SELECT x + 1 FROM burn WHERE x < {rows}) ")


def burn_rows(ms: float) -> int:
    """Rows of the recursive CTE that take about `ms` on this machine (measured once)."""
    global _ROWS_PER_MS
    if _ROWS_PER_MS is None:
        db = sqlite3.connect(":memory:")
        best = None
        for _ in range(3):
            start = time.perf_counter()
            db.execute(_burn_cte(50000) + "SELECT max(x) FROM burn").fetchall()
            elapsed = time.perf_counter() - start
            best = elapsed if best is None else min(best, elapsed)
        db.close()
        _ROWS_PER_MS = 50000 / max(best * 1000.0, 0.01)
    return max(1000, int(_ROWS_PER_MS * ms))


def burn_prefix(ms: float) -> str:
    """`WITH RECURSIVE burn(x) AS (...) `: join `(SELECT max(x) FROM burn)` to be slow."""
    return _burn_cte(burn_rows(ms))


def burn_sql(ms: float, select: str) -> str:
    """A query that first keeps SQLite busy for about `ms`, then returns one row whose only column
    is the scalar subquery `select` (NULL when it finds nothing, so a string loader sees "absent").
    """
    return (_burn_cte(burn_rows(ms)) + f"SELECT ({select}) FROM (SELECT max(x) AS m FROM burn)")


def parse_stats(reply) -> dict[str, dict[str, int]]:
    """READTHRU STATS: RESP2 flat [name, [field, value, ...], ...]; RESP3 a map of maps."""
    out: dict[str, dict[str, int]] = {}
    if isinstance(reply, RespMap):
        for name, fields in reply.items():
            assert isinstance(fields, RespMap), f"RESP3 stats of {name!r} not a map: {fields!r}"
            out[name.decode()] = {k.decode(): v for k, v in fields.items()}
        return out
    assert isinstance(reply, list) and len(reply) % 2 == 0, f"bad READTHRU STATS reply: {reply!r}"
    for i in range(0, len(reply), 2):
        name, fields = reply[i], reply[i + 1]
        assert isinstance(name, bytes), reply
        assert isinstance(fields, list) and len(fields) % 2 == 0, reply
        out[name.decode()] = {
            fields[j].decode(): fields[j + 1] for j in range(0, len(fields), 2)
        }
    return out


class LoaderStack:
    """A database in `workdir`, redis-server, and readthru with the given backends and loaders.

    `backends`: Backend objects; a backend whose path is relative is left relative (readthru
    resolves it against the config file's directory, which is `workdir/stack`)."""

    def __init__(
        self,
        workdir: Path,
        *,
        db_script: str,
        db_inserts: Iterable[tuple[str, Iterable]] = (),
        loaders: Iterable[Loader],
        backends: Iterable[Backend] | None = None,
        negative_cache_entries: int | None = None,
        **config_kwargs,
    ):
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.db_path = build_db(workdir / "app.db", db_script, db_inserts)
        self.loaders = list(loaders)
        self.backends = list(backends) if backends is not None else [Backend(str(self.db_path))]
        extra = loaders_toml(self.backends, self.loaders, negative_cache_entries)
        self.stack = Stack(workdir / "stack", config_kwargs={"extra": extra, **config_kwargs})

    # -- endpoints ---------------------------------------------------------------------------------
    @property
    def endpoint(self) -> harness.Endpoint:
        return self.stack.endpoint

    @property
    def direct(self) -> harness.Endpoint:
        return self.stack.direct

    def alive(self) -> bool:
        return self.stack.proxy is not None and self.stack.proxy.alive()

    def log(self) -> str:
        return self.stack.proxy.log() if self.stack.proxy is not None else ""

    def stop(self) -> int | None:
        return self.stack.stop()

    # -- introspection -----------------------------------------------------------------------------
    def stats(self) -> dict[str, dict[str, int]]:
        with self.endpoint.raw() as conn:
            return parse_stats(conn.command("READTHRU", "STATS"))

    def loader_stats(self, name: str) -> dict[str, int]:
        return self.stats()[name]

    def info(self, *section: str) -> str:
        with self.endpoint.raw() as conn:
            reply = conn.command("INFO", *section)
        assert isinstance(reply, bytes), reply
        return reply.decode("utf-8", "replace")

    def cmdstat(self, command: str) -> int:
        """calls of `command` in the upstream's INFO commandstats (0 if never called)."""
        client = self.direct.client()
        try:
            entry = client.info("commandstats").get(f"cmdstat_{command.lower()}")
        finally:
            client.close()
        return int(entry["calls"]) if entry else 0

    def reset_upstream_stats(self) -> None:
        client = self.direct.client()
        try:
            client.config_resetstat()
        finally:
            client.close()

    def wait_for(
        self, predicate: Callable[[], bool], timeout: float = 15.0, what: str = ""
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.005)
        raise AssertionError(f"timed out waiting for {what or predicate}")


class Delta:
    """Counter changes of one loader between construction and .now()."""

    def __init__(self, ls: LoaderStack, name: str):
        self.ls, self.name = ls, name
        self.before = ls.loader_stats(name)

    def now(self) -> dict[str, int]:
        after = self.ls.loader_stats(self.name)
        return {k: after[k] - self.before[k] for k in COUNTERS}


def check_config(path: Path, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        [harness.readthru_bin(), "--check-config", "--config", str(path)],
        capture_output=True, text=True, timeout=timeout,
    )
