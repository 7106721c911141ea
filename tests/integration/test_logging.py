"""readthru's log on stderr: one line per event, each with a timestamp and a level.

log_format = "text" (the default) writes redis-server's line format, "json" one JSON object per
line. Each test runs its own readthru, makes it log a warning (a failed AUTH, with a user name
full of bytes that could break a line or a JSON string), stops it, and reads every line it wrote.
"""

from __future__ import annotations

import datetime
import json
import re

import pytest

from loader_stack import check_config
from resp_client import RespError

pytestmark = pytest.mark.proxy_only

PASSWORD = "pw"
# Quotes, a backslash, a newline, a control byte, a byte that is not UTF-8, and a snowman.
NASTY_USER = b'm"al\\lo\nry\x01\xff \xe2\x98\x83'

TEXT_LINE = re.compile(
    rb"^(?P<pid>\d+):M (?P<day>\d\d) (?P<mon>[A-Z][a-z]{2}) (?P<year>\d{4}) "
    rb"(?P<time>\d\d:\d\d:\d\d\.\d{3}) (?P<mark>[.*#]) (?P<msg>.*)$"
)
JSON_TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def run_and_log(make_stack, **config) -> tuple[int, bytes]:
    """Starts readthru, fails an AUTH as NASTY_USER, stops it (it must exit 0). Returns its pid
    and all it wrote to stderr."""
    stack = make_stack(requirepass=PASSWORD, **config)
    proxy = stack.proxy
    with stack.endpoint.raw(auth=False) as c:
        reply = c.command("AUTH", NASTY_USER, "wrong")
        assert isinstance(reply, RespError), reply
    pid = proxy.pid
    assert proxy.stop() == 0, proxy.log()
    return pid, proxy.log_path.read_bytes()


def lines_of(log: bytes) -> list[bytes]:
    assert log.endswith(b"\n"), log[-200:]
    return log[:-1].split(b"\n")


def test_text_lines_have_redis_servers_prefix(make_stack):
    pid, log = run_and_log(make_stack)
    lines = lines_of(log)
    assert len(lines) >= 3, log
    for line in lines:
        m = TEXT_LINE.match(line)
        assert m, f"not a redis-style log line: {line!r}"
        assert int(m["pid"]) == pid, line
        stamp = b" ".join([m["day"], m["mon"], m["year"], m["time"]]).decode()
        datetime.datetime.strptime(stamp, "%d %b %Y %H:%M:%S.%f")  # a real date and time
    # Info lines are '*', warnings '#', as redis-server marks notice and warning.
    marks = {TEXT_LINE.match(line)["msg"]: TEXT_LINE.match(line)["mark"] for line in lines}
    started = [msg for msg in marks if msg.startswith(b"readthru ") and b" listening on " in msg]
    assert started and marks[started[0]] == b"*", log
    assert marks.get(b"readthru stopped") == b"*", log
    failed = [msg for msg in marks if b"AUTH failed for user" in msg]
    assert len(failed) == 1, log
    assert marks[failed[0]] == b"#"
    # The user's newline and control byte are escaped: the event stayed on its line.
    assert failed[0].endswith(b"AUTH failed for user 'm\"al\\lo\\nry\\x01\xff \xe2\x98\x83'"), failed


def test_json_lines_are_one_object_each(make_stack):
    pid, log = run_and_log(make_stack, log_format="json")
    lines = lines_of(log)
    assert len(lines) >= 3, log
    events = []
    for line in lines:
        obj = json.loads(line)  # raises on anything but one JSON value per line
        assert isinstance(obj, dict), line
        assert list(obj) == ["ts", "level", "pid", "msg"], line
        assert JSON_TS.match(obj["ts"]), line
        datetime.datetime.strptime(obj["ts"], "%Y-%m-%dT%H:%M:%S.%fZ")
        assert obj["level"] in ("debug", "info", "warning", "error"), line
        assert obj["pid"] == pid, line
        assert isinstance(obj["msg"], str), line
        events.append((obj["level"], obj["msg"]))
    assert any(level == "info" and " listening on " in msg for level, msg in events), events
    assert ("info", "readthru stopped") in events, events
    failed = [(level, msg) for level, msg in events if "AUTH failed for user" in msg]
    assert len(failed) == 1, events
    level, msg = failed[0]
    assert level == "warning"
    # Every byte of the name comes back, the one that is not UTF-8 as U+FFFD.
    assert msg.endswith("AUTH failed for user 'm\"al\\lo\nry\x01\ufffd \u2603'"), msg


def test_json_timestamps_are_utc(make_stack):
    before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    _, log = run_and_log(make_stack, log_format="json")
    after = datetime.datetime.now(datetime.timezone.utc)
    for line in lines_of(log):
        ts = datetime.datetime.strptime(json.loads(line)["ts"], "%Y-%m-%dT%H:%M:%S.%fZ")
        ts = ts.replace(tzinfo=datetime.timezone.utc)
        assert before <= ts <= after, (line, before, after)


@pytest.mark.parametrize("value,error", [
    ('"xml"', "'log_format' must be \"text\" or \"json\""),
    ("1", "'log_format' must be \"text\" or \"json\""),
])
def test_a_bad_log_format_is_a_config_error(tmp_path, value, error):
    path = tmp_path / "readthru.toml"
    path.write_text(f"log_format = {value}\n")
    result = check_config(path)
    assert result.returncode == 1, result
    assert f"{path}:1:14: {error}" in result.stderr, result.stderr
