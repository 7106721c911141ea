"""redis-cli works against readthru: piped input, a real interactive session on a pty (which asks
for COMMAND DOCS at start), COMMAND DOCS itself, --scan, --pipe and one-shot commands."""

import os
import pty
import select
import subprocess
import time

TIMEOUT = 60


def cli(endpoint, *args, input: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["redis-cli", "-h", endpoint.host, "-p", str(endpoint.port), *args],
        input=input,
        capture_output=True,
        timeout=TIMEOUT,
    )


PIPED = b"\n".join(
    [
        b"SET cli:k hello",
        b"GET cli:k",
        b"INCR cli:n",
        b"LRANGE nope 0 -1",
        b"HSET cli:h f v",
        b"HGETALL cli:h",
        b"GET nope",
        b"FOO bar",
        b"INCR cli:k",
        b'SET cli:q "quoted value"',
        b"GET cli:q",
        b"COMMAND INFO GET",
        b"",
    ]
)


def test_piped_commands_without_tty_match_redis(proxy, upstream):
    upstream.client().flushall()
    want = cli(upstream, input=PIPED)
    upstream.client().flushall()
    got = cli(proxy, input=PIPED)
    assert want.returncode == 0 and b"hello" in want.stdout
    assert (got.returncode, got.stdout, got.stderr) == (want.returncode, want.stdout, want.stderr)


def test_piped_commands_in_resp3_match_redis(proxy, upstream):
    script = b"HSET h a 1 b 2\nHGETALL h\nSADD s x\nSMEMBERS s\nZADD z 1.5 m\nZSCORE z m\nGET no\n"
    upstream.client().flushall()
    want = cli(upstream, "-3", input=script)
    upstream.client().flushall()
    got = cli(proxy, "-3", input=script)
    assert want.returncode == 0
    assert (got.returncode, got.stdout) == (want.returncode, want.stdout)


def test_command_docs_prints_lots_without_error(proxy, upstream):
    result = cli(proxy, "COMMAND", "DOCS")
    out = result.stdout.decode(errors="replace")
    assert result.returncode == 0, result.stderr
    assert "Error" not in out and "ERR" not in out[:200]
    assert len(out.splitlines()) > 5000
    assert "summary" in out and "Get the value of a key" in out
    single = cli(upstream, "COMMAND", "DOCS", "GET", "ZADD")
    assert cli(proxy, "COMMAND", "DOCS", "GET", "ZADD").stdout == single.stdout


def test_command_and_command_docs_raw_replies_are_identical(proxy, upstream):
    """Deeply nested replies (COMMAND is 9 levels, COMMAND DOCS 13) are framed at any depth."""
    for args in (("COMMAND", "DOCS", "XADD", "GEOSEARCH", "CLIENT"), ("COMMAND", "INFO", "XADD")):
        with upstream.raw() as d, proxy.raw() as p:
            assert p.raw_command(*args) == d.raw_command(*args)
    with proxy.raw() as p:
        whole = p.command("COMMAND", "DOCS")
        assert len(whole) > 200  # a flat list of name, doc pairs
        count = p.command("COMMAND", "COUNT")
        assert count > 200


def read_pty(fd: int, until: bytes, timeout: float) -> bytes:
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and until not in out:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    return out


def test_interactive_redis_cli_on_a_pty(proxy, r):
    """A real interactive session: redis-cli fetches COMMAND DOCS for its hints when it starts."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        ["redis-cli", "-h", proxy.host, "-p", str(proxy.port)],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**os.environ, "TERM": "dumb", "HOME": os.environ.get("HOME", "/tmp")},
        close_fds=True,
    )
    os.close(slave)
    transcript = b""
    try:
        prompt = f"{proxy.host}:{proxy.port}>".encode()
        transcript += read_pty(master, prompt, 20)
        assert prompt in transcript, transcript
        for line, expect in (
            (b"SET tty:k interactive", b"OK"),
            (b"GET tty:k", b'"interactive"'),
            (b"HSET tty:h f v", b"(integer) 1"),
            (b"HGETALL tty:h", b'2) "v"'),
            (b"PING", b"PONG"),
        ):
            os.write(master, line + b"\r")
            out = read_pty(master, expect, 20)
            transcript += out
            assert expect in out, transcript
        os.write(master, b"quit\r")
        proc.wait(timeout=20)
        transcript += read_pty(master, b"\x00", 0.5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        os.close(master)
    text = transcript.decode(errors="replace")
    assert "not connected" not in text and "Error" not in text, text
    assert r.get("tty:k") == b"interactive"


def test_scan_lists_preloaded_keys(proxy, direct_r):
    keys = {f"scan:{i}".encode() for i in range(600)} | {b"other:1", b"other:2"}
    direct_r.mset({k: b"v" for k in keys})
    result = cli(proxy, "--scan")
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.splitlines()) == keys
    result = cli(proxy, "--scan", "--pattern", "other:*")
    assert sorted(result.stdout.splitlines()) == [b"other:1", b"other:2"]


def test_one_shot_set_get_round_trip(proxy, direct_r):
    assert cli(proxy, "SET", "oneshot", "value with spaces").stdout == b"OK\n"
    assert cli(proxy, "GET", "oneshot").stdout == b"value with spaces\n"
    assert direct_r.get("oneshot") == b"value with spaces"
    blob = bytes(range(256)) * 10
    result = cli(proxy, "-x", "SET", "stdin-blob", input=blob)
    assert result.stdout == b"OK\n"
    assert direct_r.get("stdin-blob") == blob
    assert cli(proxy, "GET", "missing").stdout == b"\n"
    err = cli(proxy, "INCR", "oneshot")
    assert err.stdout.strip() == b"ERR value is not an integer or out of range"


def test_pipe_mode_mass_insert(proxy, direct_r):
    payload = b"".join(
        b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n"
        % (len(b"mass:%d" % i), b"mass:%d" % i, len(b"%d" % i), b"%d" % i)
        for i in range(20000)
    )
    result = cli(proxy, "--pipe", input=payload)
    assert result.returncode == 0, result.stdout + result.stderr
    assert b"errors: 0, replies: 20000" in result.stdout
    assert direct_r.dbsize() == 20000
    assert direct_r.get("mass:12345") == b"12345"


def test_info_through_redis_cli(proxy):
    result = cli(proxy, "INFO", "server")
    assert result.returncode == 0
    assert b"redis_version:" in result.stdout
