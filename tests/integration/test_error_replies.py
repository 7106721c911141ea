"""Error replies through readthru are byte-identical to redis-server's own.

Clients parse error codes and often the text, so each bad command is sent to redis-server directly
and through readthru, from the same starting data, and the raw reply bytes are compared.
"""

import pytest

SETUP = [
    ("SET", "str", "text"),
    ("SET", "num", "10"),
    ("RPUSH", "list", "a", "b"),
    ("HSET", "hash", "f", "v"),
    ("SADD", "set", "m"),
    ("ZADD", "zset", "1", "m"),
    ("XADD", "stream", "1-1", "f", "v"),
]

BAD_COMMANDS = [
    # wrong arity
    ("GET",),
    ("SET", "k"),
    ("HSET", "hash", "f"),
    ("LPUSH", "list"),
    ("MSET", "a", "1", "b"),
    ("ZADD", "zset", "1"),
    ("EXPIRE", "str"),
    ("CONFIG", "GET"),
    ("XADD", "stream", "*"),
    # unknown commands and subcommands
    ("FOOBAR",),
    ("FOOBAR", "a", "b c", "d"),
    ("NOSUCHCOMMAND", "x" * 200),
    ("CLIENT", "NOSUCHSUB"),
    ("OBJECT", "NOPE", "str"),
    ("CONFIG", "NOPE"),
    ("XINFO", "NOPE"),
    # WRONGTYPE
    ("LPUSH", "str", "x"),
    ("GET", "list"),
    ("HGET", "list", "f"),
    ("SADD", "hash", "x"),
    ("ZSCORE", "set", "m"),
    ("XLEN", "zset"),
    ("INCR", "list"),
    ("PFADD", "str", "x"),
    ("PFCOUNT", "str"),
    # syntax errors
    ("SET", "k", "v", "XX", "NX"),
    ("SET", "k", "v", "EX"),
    ("SET", "k", "v", "BOGUS"),
    ("ZADD", "zset", "NX", "XX", "1", "m"),
    ("ZRANGE", "zset", "0", "-1", "WITHSCORES", "BOGUS"),
    ("LPOS", "list", "a", "RANK", "0"),
    ("SORT", "list", "LIMIT", "0"),
    ("GEOADD", "geo", "200", "100", "m"),
    ("BITCOUNT", "str", "0"),
    ("XADD", "stream", "0-0", "f", "v"),
    ("XADD", "stream", "1-1", "f", "v"),
    ("XGROUP", "CREATE", "nostream", "g", "$"),
    ("HELLO", "4"),
    ("HELLO", "abc"),
    ("HELLO", "99999999999999999999"),  # past 64 bits
    ("HELLO", "03"),
    ("SELECT", "99999999999999999999"),
    # bad integers and floats
    ("INCR", "str"),
    ("INCRBY", "num", "abc"),
    ("INCRBY", "num", "9223372036854775807"),
    ("INCRBYFLOAT", "num", "nan"),
    ("EXPIRE", "str", "abc"),
    ("LRANGE", "list", "a", "b"),
    ("SETRANGE", "str", "-1", "v"),
    ("GETRANGE", "str", "x", "1"),
    ("ZADD", "zset", "abc", "m"),
    ("ZINCRBY", "zset", "nan", "m"),
    ("HINCRBY", "hash", "f", "1"),
    ("SETBIT", "str", "-1", "1"),
    ("SETBIT", "str", "1", "2"),
    ("SELECT", "abc"),
    ("SELECT", "99999"),
    # scripting
    ("EVAL", "return redis.call('nosuch')", "0"),
    ("EVAL", "error(", "0"),
    ("EVAL", "return redis.error_reply('MYERR custom failure')", "0"),
    ("EVAL", "return {err='plain error'}", "0"),
    ("EVAL", "return redis.call('incr', KEYS[1])", "1", "str"),
    ("EVAL", "return 1", "abc"),
    ("EVAL", "return 1", "5", "k"),
    ("EVALSHA", "0000000000000000000000000000000000000000", "0"),
    ("FCALL", "nosuchfunction", "0"),
    ("FUNCTION", "LOAD", "not lua"),
    # transactions out of order
    ("EXEC",),
    ("DISCARD",),
    # misc
    ("AUTH", "nopass"),
    ("AUTH", "user", "pass"),
    ("RENAME", "nokey", "x"),
    ("DEBUG", "SLEEP", "0"),
    ("OBJECT", "FREQ", "str"),
    ("MIGRATE",),
    ("WAIT", "abc", "0"),
    ("CLIENT", "SETNAME", "has space"),
    ("CLIENT", "KILL", "ID", "abc"),
    ("SCRIPT", "FLUSH", "BOGUS"),
    ("COMMAND", "GETKEYS", "GET"),
    ("LINDEX", "list", "9999999999999999999999"),
]


def run(endpoint, commands) -> list[bytes]:
    endpoint.client().flushall()
    with endpoint.raw() as c:
        for cmd in SETUP:
            assert not c.raw_command(*cmd).startswith(b"-"), cmd
        return [c.raw_command(*cmd) for cmd in commands]


def test_each_bad_command_gets_the_same_error_bytes_as_redis(proxy, upstream):
    want = run(upstream, BAD_COMMANDS)
    got = run(proxy, BAD_COMMANDS)
    mismatches = [
        f"{cmd!r}:\n  redis:    {w!r}\n  readthru: {g!r}"
        for cmd, w, g in zip(BAD_COMMANDS, want, got)
        if w != g
    ]
    assert not mismatches, "\n".join(mismatches)


def test_bad_commands_really_are_errors(upstream):
    replies = run(upstream, BAD_COMMANDS)
    not_errors = [
        (cmd, reply)
        for cmd, reply in zip(BAD_COMMANDS, replies)
        if not reply.startswith(b"-") and cmd[0] not in ("EVAL",)
    ]
    assert not not_errors
    by_cmd = dict(zip(BAD_COMMANDS, replies))
    assert by_cmd[("GET",)] == b"-ERR wrong number of arguments for 'get' command\r\n"
    assert by_cmd[("LPUSH", "str", "x")].startswith(b"-WRONGTYPE ")
    assert by_cmd[("FOOBAR", "a", "b c", "d")] == (
        b"-ERR unknown command 'FOOBAR', with args beginning with: 'a' 'b c' 'd' \r\n"
    )
    assert by_cmd[("HELLO", "4")].startswith(b"-NOPROTO")


def test_errors_in_a_pipeline_match_redis(proxy, upstream):
    """The same bad commands, all in one write: every error lands in its own slot."""
    from resp_client import encode

    def pipelined(endpoint):
        endpoint.client().flushall()
        with endpoint.raw() as c:
            c.send(b"".join(encode(*cmd) for cmd in SETUP + BAD_COMMANDS))
            return c.read_raw_replies(len(SETUP) + len(BAD_COMMANDS))

    assert pipelined(proxy) == pipelined(upstream)


@pytest.mark.parametrize("proto", ["2", "3"])
def test_errors_inside_multi_exec_match_redis(proxy, upstream, proto):
    commands = [
        ("MULTI",),
        ("INCR", "str"),
        ("LPUSH", "str", "x"),
        ("SET", "ok", "1"),
        ("EXEC",),
        ("MULTI",),
        ("SET", "k"),
        ("FOOBAR",),
        ("EXEC",),
    ]

    def transcript(endpoint):
        endpoint.client().flushall()
        with endpoint.raw() as c:
            if proto == "3":
                c.command("HELLO", "3")
            for cmd in SETUP:
                c.raw_command(*cmd)
            return [c.raw_command(*cmd) for cmd in commands]

    want = transcript(upstream)
    assert want[-1].startswith(b"-EXECABORT")
    assert transcript(proxy) == want
