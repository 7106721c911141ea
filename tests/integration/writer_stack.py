"""Writer stacks for the integration tests: loader_stack's LoaderStack (a SQLite database built in
the test's temp dir, a real redis-server, a real readthru) with [[writers]] tables too, plus what
the write-behind tests need: more readthru processes on the same config (same redis-server, same
database), kill -9 and restart.

Helpers:
  Writer                 one [[writers]] table (None fields are left out: the daemon's defaults)
  writers_toml()         the [[writers]] text, appended after loader_stack.loaders_toml()
  WriterStack            LoaderStack + writers; .writer_stats(), .start_extra_proxy(), .kill9(),
                         .restart(), .wait_drained()
  WriteGate              holds the database's write lock (BEGIN IMMEDIATE): readers go on, every
                         writer (readthru's included) waits in SQLite's busy handler until release()
  AUDIT_SQL              the audit table + triggers that count every row write a table receives
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import harness
from harness import Readthru
from loader_stack import (
    Backend,
    Loader,
    LoaderStack,
    db_query,
    loaders_toml,
    parse_stats,
    toml_value,
)

WRITER_FIELDS = (
    "writes", "db_writes", "errors", "timeouts", "batches", "coalesced", "retries", "dead_letters",
    "queue_length", "oldest_pending_ms",
)
# Counters (queue_length and oldest_pending_ms are gauges).
WRITER_COUNTERS = WRITER_FIELDS[:8]


def audit_sql(table: str, key_column: str = "id", value_column: str | None = "v") -> str:
    """An `audit` table and triggers that log every INSERT, UPDATE and DELETE on `table`: how many
    row writes really reached the database, whatever readthru's counters say."""
    new_v = f"NEW.{value_column}" if value_column else "NULL"
    return f"""
CREATE TABLE IF NOT EXISTS audit(seq INTEGER PRIMARY KEY AUTOINCREMENT, tbl TEXT, op TEXT, id, v);
CREATE TRIGGER {table}_audit_ins AFTER INSERT ON {table} BEGIN
  INSERT INTO audit(tbl, op, id, v) VALUES ('{table}', 'insert', NEW.{key_column}, {new_v}); END;
CREATE TRIGGER {table}_audit_upd AFTER UPDATE ON {table} BEGIN
  INSERT INTO audit(tbl, op, id, v) VALUES ('{table}', 'update', NEW.{key_column}, {new_v}); END;
CREATE TRIGGER {table}_audit_del AFTER DELETE ON {table} BEGIN
  INSERT INTO audit(tbl, op, id, v) VALUES ('{table}', 'delete', OLD.{key_column}, NULL); END;
"""


def reject_sql(table: str, column: str, value: str, message: str, op: str = "INSERT") -> str:
    """A trigger that makes SQLite refuse a row whose `column` is `value`, with exactly `message`
    (a RAISE's text is SQLite's error message as is, whatever the SQLite version)."""
    row = "OLD" if op == "DELETE" else "NEW"
    return (f"CREATE TRIGGER {table}_reject_{op.lower()}_{column} BEFORE {op} ON {table} "
            f"WHEN {row}.{column} = '{value}' BEGIN SELECT RAISE(ABORT, '{message}'); END;\n")


@dataclass
class Writer:
    name: str
    key: str
    upsert: str
    delete: str | None
    backend: str | None = "main"
    mode: str | None = None
    timeout: str | None = None
    flush_interval: str | None = None
    batch: int | None = None
    max_attempts: int | None = None
    extra: dict = field(default_factory=dict)  # any other key, written as is

    def toml(self) -> str:
        out = "[[writers]]\n"
        for key in ("name", "key", "backend", "mode", "upsert", "delete", "timeout",
                    "flush_interval", "batch", "max_attempts"):
            value = getattr(self, key)
            if value is not None:
                out += f"{key} = {toml_value(value)}\n"
        for key, value in self.extra.items():
            out += f"{key} = {toml_value(value)}\n"
        return out


def writers_toml(writers: Iterable[Writer]) -> str:
    return "".join("\n" + w.toml() for w in writers)


class WriteGate:
    """Holds the database's RESERVED lock (BEGIN IMMEDIATE): readers (readthru's loaders) go on,
    writers (readthru's writer connection) wait in SQLite's busy handler until release(). Use as a
    context manager; release() is idempotent."""

    def __init__(self, path: Path, exclusive: bool = False):
        self.db: sqlite3.Connection | None = sqlite3.connect(path, timeout=30, isolation_level=None)
        self.db.execute("BEGIN EXCLUSIVE" if exclusive else "BEGIN IMMEDIATE")

    def release(self) -> None:
        if self.db is not None:
            self.db.execute("ROLLBACK")
            self.db.close()
            self.db = None

    def __enter__(self) -> "WriteGate":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0, what: str = "",
             interval: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    if predicate():
        return
    raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")


def stats_of(endpoint: harness.Endpoint) -> dict[str, dict[str, int]]:
    with endpoint.raw() as conn:
        return parse_stats(conn.command("READTHRU", "STATS"))


class WriterStack(LoaderStack):
    """A database in `workdir`, redis-server, and readthru with the given backends, loaders and
    writers. More readthru processes on the same config: start_extra_proxy()."""

    def __init__(
        self,
        workdir: Path,
        *,
        db_script: str,
        db_inserts: Iterable[tuple[str, Iterable]] = (),
        loaders: Iterable[Loader] = (),
        writers: Iterable[Writer] = (),
        backends: Iterable[Backend] | None = None,
        negative_cache_entries: int | None = None,
        **config_kwargs,
    ):
        self.writers = list(writers)
        self.extra_proxies: list[Readthru] = []
        loaders = list(loaders)
        backends = (list(backends) if backends is not None
                    else [Backend(str(workdir / "app.db"))])
        extra = loaders_toml(backends, loaders, negative_cache_entries) + writers_toml(self.writers)
        # LoaderStack passes {"extra": <its loaders_toml>, **config_kwargs} on: ours wins.
        super().__init__(workdir, db_script=db_script, db_inserts=db_inserts, loaders=loaders,
                         backends=backends, negative_cache_entries=negative_cache_entries,
                         extra=extra, **config_kwargs)

    @property
    def config_path(self) -> Path:
        assert self.stack.proxy is not None and self.stack.proxy.config is not None
        return self.stack.proxy.config

    # -- processes ---------------------------------------------------------------------------------
    def start_extra_proxy(self) -> Readthru:
        """Another readthru on the same config file (same redis-server, same database)."""
        proxy = Readthru(self.workdir / "stack" / f"readthru{len(self.extra_proxies) + 2}",
                         self.stack.upstream.port, config=self.config_path).start()
        self.extra_proxies.append(proxy)
        return proxy

    def kill9(self) -> None:
        assert self.stack.proxy is not None
        self.stack.proxy.kill()

    def restart(self) -> Readthru:
        """A new readthru in place of the primary one (which must have exited), on a new port."""
        old = self.stack.proxy
        assert old is not None and not old.alive()
        self.stack.proxy = Readthru(old.workdir, self.stack.upstream.port,
                                    config=self.config_path).start()
        return self.stack.proxy

    def restart_with_top_level(self, text: str) -> Readthru:
        """Stops the primary readthru (it must exit 0), puts `text` (top-level keys such as
        shutdown_timeout, which harness.write_config cannot place) at the head of the config file,
        and starts it again. The stopped process's flusher leases are deleted first, so the new
        process need not wait for them to expire."""
        assert self.stack.proxy is not None
        log = self.log()
        rc = self.stack.proxy.stop()
        assert rc == 0, f"readthru exited with {rc} on SIGTERM; stderr:\n{log}"
        self.config_path.write_text(text.rstrip("\n") + "\n" + self.config_path.read_text())
        client = self.direct.client()
        try:
            for w in self.writers:
                client.delete(f"readthru:wb:{w.name}:lease")
        finally:
            client.close()
        return self.restart()

    def stop(self) -> int | None:
        """Stops every readthru (extra ones first), then redis-server. The first nonzero exit code
        (None: had to be killed) of any readthru, else 0."""
        rcs = [p.stop() for p in self.extra_proxies]
        rcs.append(self.stack.stop())
        for rc in rcs:
            if rc != 0:
                return rc
        return 0

    def logs(self) -> str:
        out = self.log()
        for i, p in enumerate(self.extra_proxies):
            out += f"\n--- readthru #{i + 2} ---\n" + p.log()
        return out

    # -- introspection -----------------------------------------------------------------------------
    def writer_stats(self, name: str, endpoint: harness.Endpoint | None = None) -> dict[str, int]:
        stats = stats_of(endpoint or self.endpoint)
        key = f"writer:{name}"
        assert key in stats, f"READTHRU STATS has no {key!r}: {sorted(stats)}"
        return stats[key]

    def db(self, sql: str, params=()) -> list:
        return db_query(self.db_path, sql, params)

    def rows(self, table: str = "kv") -> dict:
        return dict(self.db(f"SELECT id, v FROM {table}"))

    def audit_count(self, table: str | None = None) -> int:
        if table is None:
            return self.db("SELECT count(*) FROM audit")[0][0]
        return self.db("SELECT count(*) FROM audit WHERE tbl = ?", (table,))[0][0]

    def wait_drained(self, name: str, timeout: float = 30.0,
                     endpoints: Iterable[harness.Endpoint] | None = None) -> None:
        """Until every readthru reports queue_length 0 for writer `name` and its stream is empty
        (entries are XACKed once written, and trimmed at the end of the flusher's cycle)."""
        eps = list(endpoints) if endpoints is not None else [self.endpoint]
        client = self.direct.client()
        try:
            def drained() -> bool:
                if client.xlen(f"readthru:wb:{name}") != 0:
                    return False
                return all(self.writer_stats(name, ep)["queue_length"] == 0 for ep in eps)
            wait_for(drained, timeout, f"writer {name!r} to drain")
        finally:
            client.close()


class WriterDelta:
    """Counter changes of one writer between construction and .now()."""

    def __init__(self, ws: WriterStack, name: str, endpoint: harness.Endpoint | None = None):
        self.ws, self.name, self.endpoint = ws, name, endpoint
        self.before = ws.writer_stats(name, endpoint)

    def now(self) -> dict[str, int]:
        after = self.ws.writer_stats(self.name, self.endpoint)
        return {k: after[k] - self.before[k] for k in WRITER_COUNTERS}
