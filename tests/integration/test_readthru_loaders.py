"""READTHRU LOADERS and READTHRU WRITERS: the configuration of each loader and writer, as
READTHRU STATS gives counters (RESP2: a flat array of names and field/value arrays; RESP3: a map
of maps), and the READTHRU container's HELP and errors."""

from __future__ import annotations

import pytest

from loader_stack import Loader
from resp_client import RespError, RespMap
from writer_stack import Writer, WriterStack

pytestmark = pytest.mark.proxy_only

SCHEMA = "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT);"
USER_QUERY = "SELECT name FROM users WHERE id = :id"
UPSERT = ("INSERT INTO users(id, name) VALUES (:id, :value) "
          "ON CONFLICT(id) DO UPDATE SET name = excluded.name")
DELETE = "DELETE FROM users WHERE id = :id"

LOADERS = [
    Loader("user", "user:{id:int}", USER_QUERY, type="string", ttl="1h", jitter="5m",
           negative_ttl="30s", timeout="2s", extra={"refresh_ahead": 0.2}),
    Loader("uhash", "uhash:{id:int}", "SELECT id, name FROM users WHERE id = :id", type="hash",
           ttl="0s", negative_ttl="0s", timeout="250ms"),
    Loader("ujson", "{{ujson:{id}}}", "SELECT id, name FROM users WHERE id = :id", type="json"),
]
WRITERS = [
    Writer("user", "user:{id:int}", UPSERT, DELETE, mode="behind", flush_interval="200ms",
           batch=50, max_attempts=3, timeout="1s"),
    Writer("uw", "uw:{id:int}", UPSERT, DELETE),
]

WANT_LOADERS = {
    "user": {"key": b"user:{id:int}", "backend": b"main", "type": b"string", "ttl_ms": 3600000,
             "jitter_ms": 300000, "negative_ttl_ms": 30000, "timeout_ms": 2000,
             "refresh_ahead": b"0.2", "query": USER_QUERY.encode()},
    "uhash": {"key": b"uhash:{id:int}", "backend": b"main", "type": b"hash", "ttl_ms": 0,
              "jitter_ms": 0, "negative_ttl_ms": 0, "timeout_ms": 250, "refresh_ahead": b"0",
              "query": b"SELECT id, name FROM users WHERE id = :id"},
    # Defaults: type string, ttl 1h, no jitter, negative_ttl 30s, timeout 2s, refresh-ahead 0.1
    # (uhash above has none: its values never expire).
    "ujson": {"key": b"{{ujson:{id}}}", "backend": b"main", "type": b"json", "ttl_ms": 3600000,
              "jitter_ms": 0, "negative_ttl_ms": 30000, "timeout_ms": 2000,
              "refresh_ahead": b"0.1", "query": b"SELECT id, name FROM users WHERE id = :id"},
}
WANT_WRITERS = {
    "user": {"key": b"user:{id:int}", "backend": b"main", "mode": b"behind", "timeout_ms": 1000,
             "flush_interval_ms": 200, "batch": 50, "max_attempts": 3,
             "upsert": UPSERT.encode(), "delete": DELETE.encode()},
    # Defaults: through, timeout 5s, flush_interval 500ms, batch 500, max_attempts 10.
    "uw": {"key": b"uw:{id:int}", "backend": b"main", "mode": b"through", "timeout_ms": 5000,
           "flush_interval_ms": 500, "batch": 500, "max_attempts": 10,
           "upsert": UPSERT.encode(), "delete": DELETE.encode()},
}


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    stack = WriterStack(tmp_path_factory.mktemp("loaders"), db_script=SCHEMA, loaders=LOADERS,
                        writers=WRITERS)
    yield stack
    log = stack.logs()
    assert stack.stop() == 0, f"readthru did not exit 0; stderr:\n{log}"


def flat_to_dict(reply) -> dict[str, dict[str, object]]:
    """RESP2: [name, [field, value, ...], ...], in the configuration's order."""
    assert isinstance(reply, list) and len(reply) % 2 == 0, reply
    out = {}
    for i in range(0, len(reply), 2):
        fields = reply[i + 1]
        assert isinstance(fields, list) and len(fields) % 2 == 0, reply
        out[reply[i].decode()] = {fields[j].decode(): fields[j + 1]
                                  for j in range(0, len(fields), 2)}
    return out


def map_to_dict(reply) -> dict[str, dict[str, object]]:
    assert isinstance(reply, RespMap), reply
    out = {}
    for name, fields in reply.items():
        assert isinstance(fields, RespMap), reply
        out[name.decode()] = {k.decode(): v for k, v in fields.items()}
    return out


@pytest.mark.parametrize("sub,want", [("LOADERS", WANT_LOADERS), ("WRITERS", WANT_WRITERS)])
def test_each_entry_gives_its_configuration_in_resp2(ws, sub, want):
    with ws.endpoint.raw() as c:
        reply = c.command("READTHRU", sub)
    got = flat_to_dict(reply)
    assert list(got) == list(want)  # in the file's order
    for name, fields in want.items():
        assert list(got[name]) == list(fields), got[name]
        assert got[name] == fields


@pytest.mark.parametrize("sub,want", [("loaders", WANT_LOADERS), ("writers", WANT_WRITERS)])
def test_each_entry_is_a_map_in_resp3(ws, sub, want):
    with ws.endpoint.raw() as c:
        c.command("HELLO", "3")
        got = map_to_dict(c.command("READTHRU", sub))
    assert got == want


def test_no_loaders_or_writers_is_an_empty_reply(proxy):
    with proxy.raw() as c:
        assert c.raw_command("READTHRU", "LOADERS") == b"*0\r\n"
        assert c.raw_command("READTHRU", "WRITERS") == b"*0\r\n"
        c.command("HELLO", "3")
        assert c.raw_command("READTHRU", "LOADERS") == b"%0\r\n"
        assert c.raw_command("READTHRU", "WRITERS") == b"%0\r\n"


@pytest.mark.parametrize("args,error", [
    (("LOADERS", "x"), b"ERR wrong number of arguments for 'readthru|loaders' command"),
    (("writers", "x"), b"ERR wrong number of arguments for 'readthru|writers' command"),
    (("STATS", "x"), b"ERR wrong number of arguments for 'readthru|stats' command"),
    (("HELP", "x"), b"ERR wrong number of arguments for 'readthru|help' command"),
    (("NOPE",), b"ERR unknown subcommand 'NOPE'. Try READTHRU HELP."),
    (("SLOWLOG",), b"ERR wrong number of arguments for 'readthru|slowlog' command"),
    ((), b"ERR wrong number of arguments for 'readthru' command"),
])
def test_errors_are_worded_as_redis_container_commands(proxy, args, error):
    with proxy.raw() as c:
        reply = c.command("READTHRU", *args)
    assert isinstance(reply, RespError) and bytes(reply) == error, reply


def test_help_lists_every_subcommand(proxy):
    with proxy.raw() as c:
        lines = c.command("READTHRU", "HELP")
    assert lines[0] == b"READTHRU <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    names = [line.split()[0] for line in lines[1:] if not line.startswith(b" ")]
    assert names == [b"STATS", b"LOADERS", b"WRITERS", b"SLOWLOG", b"RELOAD", b"HELP"]
