"""Configuration: --check-config accepts a good file and rejects bad ones naming file, line and key;
a bad file never half-starts the daemon; [limits] maxclients is enforced with Redis's error."""

import re
import subprocess
import time

import pytest

from harness import HOST, free_port, ping_ok, readthru_bin, write_config

pytestmark = pytest.mark.proxy_only

TIMEOUT = 30


def check_config(path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [readthru_bin(), "--check-config", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def names_line(stderr: str, line: int) -> bool:
    """'file.toml:3', 'file.toml:3:7', 'line 3' ... any usual way of naming a line."""
    return re.search(rf"(:{line}\b|\bline:?\s*{line}\b)", stderr, re.IGNORECASE) is not None


def good_config(tmp_path):
    return write_config(tmp_path / "good.toml", listen_port=free_port(), upstream_port=free_port())


def test_check_config_accepts_good_file(tmp_path):
    result = check_config(good_config(tmp_path))
    assert result.returncode == 0, result.stderr


def test_check_config_rejects_toml_syntax_error_naming_file_and_line(tmp_path):
    path = good_config(tmp_path)
    lines = path.read_text().splitlines()
    lines.insert(4, "connections = = 2")  # becomes line 5
    path.write_text("\n".join(lines) + "\n")
    result = check_config(path)
    assert result.returncode != 0
    assert str(path) in result.stderr or path.name in result.stderr, result.stderr
    assert names_line(result.stderr, 5), result.stderr


def test_check_config_rejects_unknown_key_naming_file_line_and_key(tmp_path):
    path = good_config(tmp_path)
    text = path.read_text() + "maxclientz = 5\n"
    path.write_text(text)
    line = text.count("\n")  # the last line
    result = check_config(path)
    assert result.returncode != 0
    assert path.name in result.stderr, result.stderr
    assert names_line(result.stderr, line), result.stderr
    assert "maxclientz" in result.stderr, result.stderr


def test_check_config_rejects_unknown_table(tmp_path):
    path = good_config(tmp_path)
    path.write_text(path.read_text() + "\n[upstreem]\naddress = \"127.0.0.1:1\"\n")
    result = check_config(path)
    assert result.returncode != 0
    assert path.name in result.stderr and "upstreem" in result.stderr, result.stderr


def test_check_config_rejects_wrong_value_type_naming_key(tmp_path):
    path = tmp_path / "types.toml"
    write_config(path, listen_port=free_port(), upstream_port=free_port())
    path.write_text(path.read_text().replace("connections = 2", 'connections = "two"'))
    result = check_config(path)
    assert result.returncode != 0
    assert path.name in result.stderr and "connections" in result.stderr, result.stderr
    assert names_line(result.stderr, 5), result.stderr


def test_check_config_on_missing_file_fails_naming_it(tmp_path):
    path = tmp_path / "does-not-exist.toml"
    result = check_config(path)
    assert result.returncode != 0
    assert path.name in result.stderr, result.stderr


def test_daemon_with_bad_config_exits_nonzero_without_listening(tmp_path):
    port = free_port()
    path = write_config(tmp_path / "bad.toml", listen_port=port, upstream_port=free_port())
    path.write_text(path.read_text() + "bogus_key = true\n")
    proc = subprocess.run(
        [readthru_bin(), "--listen", f"{HOST}:{port}", "--upstream", f"{HOST}:{free_port()}",
         "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert proc.returncode != 0
    assert "bogus_key" in proc.stderr and path.name in proc.stderr, proc.stderr
    assert not ping_ok(port)


def connect_in_free_slot(endpoint, timeout: float = 10.0):
    """A connection that got a slot. A slot frees only once readthru has seen the previous
    holder's close (e.g. the harness's readiness PING), so a refusal is retried for a while."""
    deadline = time.monotonic() + timeout
    while True:
        c = endpoint.raw()
        c.send_command("PING")
        reply = c.read_raw_reply()
        if reply == b"+PONG\r\n":
            return c
        c.close()
        assert reply == b"-ERR max number of clients reached\r\n", reply
        assert time.monotonic() < deadline, "no free slot"
        time.sleep(0.1)


def test_maxclients_limit_rejects_extra_client_with_redis_error(make_stack):
    stack = make_stack(maxclients=3)
    endpoint = stack.endpoint
    clients = []
    try:
        for _ in range(3):
            clients.append(connect_in_free_slot(endpoint))
        with endpoint.raw() as extra:
            data, closed = extra.read_until_close(10)
            assert data == b"-ERR max number of clients reached\r\n"
            assert closed
        clients.pop().close()
        clients.append(connect_in_free_slot(endpoint))
        for c in clients:
            assert c.command("PING") == b"PONG"
    finally:
        for c in clients:
            c.close()


def test_config_file_supplies_upstream_connections(make_stack):
    stack = make_stack(connections=1)
    client = stack.endpoint.client()
    try:
        pipe = client.pipeline(transaction=False)
        for i in range(500):
            pipe.set(f"k{i}", i)
        assert all(pipe.execute())
        assert stack.direct.client().dbsize() == 500
    finally:
        client.close()
