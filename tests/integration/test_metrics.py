"""The [metrics] endpoint: Prometheus text on GET /metrics and a health report on GET /healthz.

Scrapes go through curl (a real HTTP client) and the text is parsed strictly here: every line is a
HELP, a TYPE or a sample of the 0.0.4 grammar, every family has one HELP and one TYPE before its
samples and its samples together, no series appears twice, and every histogram has cumulative
buckets ending in le="+Inf" with _sum and _count. Raw sockets cover what curl will not send:
oversized headers, garbage, pipelined requests.
"""

from __future__ import annotations

import json
import math
import re
import signal
import socket
import subprocess
import time

import pytest

import harness
from loader_stack import Backend, Loader, check_config
from writer_stack import Writer, WriterStack, wait_for

pytestmark = pytest.mark.proxy_only

SCHEMA = """
CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT);
CREATE TABLE kv(id INTEGER PRIMARY KEY, v TEXT);
CREATE TABLE kvb(id INTEGER PRIMARY KEY, v TEXT);
"""
USERS = [("INSERT INTO users VALUES (?, ?)", [(i, f"user{i}") for i in range(1, 51)])]
# A name that needs escaping in a label value.
ODD_LOADER = 'odd "name" \\ here'


def loaders() -> list[Loader]:
    return [
        Loader("user", "user:{id:int}", "SELECT name FROM users WHERE id = :id"),
        Loader(ODD_LOADER, "odd:{id:int}", "SELECT name FROM users WHERE id = :id"),
    ]


def writers() -> list[Writer]:
    return [
        Writer("kv", "kv:{id:int}",
               "INSERT INTO kv(id, v) VALUES (:id, :value) "
               "ON CONFLICT(id) DO UPDATE SET v = excluded.v",
               "DELETE FROM kv WHERE id = :id"),
        Writer("kvb", "kvb:{id:int}",
               "INSERT INTO kvb(id, v) VALUES (:id, :value) "
               "ON CONFLICT(id) DO UPDATE SET v = excluded.v",
               "DELETE FROM kvb WHERE id = :id", mode="behind", flush_interval="50ms"),
    ]


def make_metrics_stack(workdir, metrics_extra: str = "", with_writers: bool = True) -> WriterStack:
    port = harness.free_port()
    ws = WriterStack(
        workdir, db_script=SCHEMA, db_inserts=USERS, loaders=loaders(),
        writers=writers() if with_writers else (),
        metrics=f'listen = "{harness.HOST}:{port}"\n{metrics_extra}',
    )
    ws.metrics_port = port
    ws.metrics_url = f"http://{harness.HOST}:{port}"
    return ws


@pytest.fixture(scope="module")
def ms(tmp_path_factory):
    ws = make_metrics_stack(tmp_path_factory.mktemp("metrics"))
    yield ws
    log = ws.logs()
    assert ws.stop() == 0, f"readthru did not exit 0; stderr:\n{log}"


@pytest.fixture
def private(tmp_path):
    stacks: list[WriterStack] = []

    def make(metrics_extra: str = "", with_writers: bool = True) -> WriterStack:
        ws = make_metrics_stack(tmp_path / f"s{len(stacks)}", metrics_extra, with_writers)
        stacks.append(ws)
        return ws

    yield make
    for ws in stacks:
        log = ws.logs()
        assert ws.stop() == 0, f"readthru did not exit 0; stderr:\n{log}"


# -- HTTP through curl ---------------------------------------------------------------------------

def curl(url: str, *args: str) -> tuple[int, dict[str, str], bytes]:
    """(status, headers with lower-case names, body) of one request made by curl."""
    out = subprocess.run(
        ["curl", "-sS", "--http1.1", "--max-time", "15", "-i", *args, url],
        capture_output=True, timeout=30,
    )
    assert out.returncode == 0, out.stderr.decode()
    head, _, body = out.stdout.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


# -- the text format, strictly ---------------------------------------------------------------------

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL_NAME = r"[a-zA-Z_][a-zA-Z0-9_]*"
LABEL_VALUE = r'"(?:[^"\\\n]|\\\\|\\"|\\n)*"'
LABEL = rf"{LABEL_NAME}={LABEL_VALUE}"
FLOAT = r"[+-]?(?:Inf|NaN|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
SAMPLE = re.compile(rf"^({NAME})(?:\{{((?:{LABEL})(?:,{LABEL})*,?)?\}})? ({FLOAT})(?: -?\d+)?$")
HELP = re.compile(rf"^# HELP ({NAME}) ((?:[^\\\n]|\\\\|\\n)*)$")
TYPE = re.compile(rf"^# TYPE ({NAME}) (counter|gauge|histogram|summary|untyped)$")
ONE_LABEL = re.compile(rf"({LABEL_NAME})=({LABEL_VALUE})")


def unescape(quoted: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), quoted[1:-1])


class Family:
    def __init__(self, name: str):
        self.name = name
        self.help: str | None = None
        self.type: str | None = None
        self.samples: dict[tuple[str, frozenset], float] = {}


def parse_metrics(text: str) -> dict[str, Family]:
    """The families of an exposition, after checking it against the 0.0.4 format."""
    assert text.endswith("\n"), "the exposition must end with a newline"
    families: dict[str, Family] = {}
    current: Family | None = None
    closed: set[str] = set()  # families whose samples are over

    def family_of(name: str) -> Family:
        nonlocal current
        if current is not None and current.name != name:
            closed.add(current.name)
        assert name not in closed, f"family {name} is split: its lines must be together"
        current = families.setdefault(name, Family(name))
        return current

    for n, line in enumerate(text[:-1].split("\n"), 1):
        where = f"line {n}: {line!r}"
        if line.startswith("#"):
            if m := HELP.match(line):
                f = family_of(m.group(1))
                assert f.help is None and not f.samples, f"{where}: HELP twice or after samples"
                f.help = m.group(2)
            elif m := TYPE.match(line):
                f = family_of(m.group(1))
                assert f.type is None and not f.samples, f"{where}: TYPE twice or after samples"
                f.type = m.group(2)
            else:
                raise AssertionError(f"{where}: a comment that is neither HELP nor TYPE")
            continue
        m = SAMPLE.match(line)
        assert m, f"{where}: not a sample line"
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        base = name
        if current is not None and current.type == "histogram":
            for suffix in ("_bucket", "_sum", "_count"):
                if name == current.name + suffix:
                    base = current.name
        f = family_of(base)
        assert f.help is not None and f.type is not None, f"{where}: sample before HELP and TYPE"
        pairs = [(k, unescape(v)) for k, v in ONE_LABEL.findall(labels)]
        names = [k for k, _ in pairs]
        assert len(names) == len(set(names)), f"{where}: a label twice"
        key = (name, frozenset(pairs))
        assert key not in f.samples, f"{where}: the same series twice"
        f.samples[key] = float(value)
    for f in families.values():
        assert f.help is not None and f.type is not None, f"{f.name} lacks HELP or TYPE"
        assert f.samples, f"{f.name} has no samples"
        if f.type == "counter":
            assert f.name.endswith("_total"), f"counter {f.name} should end in _total"
            assert all(v >= 0 for v in f.samples.values()), f.name
        if f.type == "histogram":
            check_histogram(f)
    return families


def check_histogram(f: Family) -> None:
    series: dict[frozenset, dict[str, object]] = {}
    for (name, labels), value in f.samples.items():
        plain = frozenset((k, v) for k, v in labels if k != "le")
        s = series.setdefault(plain, {"buckets": []})
        if name == f.name + "_bucket":
            le = dict(labels).get("le")
            assert le is not None, f"{f.name}: a bucket without le"
            s["buckets"].append((float(le), value))
        elif name == f.name + "_sum":
            s["sum"] = value
        elif name == f.name + "_count":
            s["count"] = value
        else:
            raise AssertionError(f"{f.name}: stray sample {name}")
    for plain, s in series.items():
        buckets = s["buckets"]
        assert buckets, f"{f.name}{set(plain)}: no buckets"
        les = [le for le, _ in buckets]
        assert les == sorted(les) and len(set(les)) == len(les), f"{f.name}: le not increasing"
        assert math.isinf(les[-1]) and les[-1] > 0, f"{f.name}: the last bucket is not +Inf"
        counts = [c for _, c in buckets]
        assert all(a <= b for a, b in zip(counts, counts[1:])), f"{f.name}: not cumulative"
        assert "sum" in s and "count" in s, f"{f.name}{set(plain)}: _sum or _count missing"
        assert counts[-1] == s["count"], f"{f.name}: +Inf bucket != _count"
        assert s["sum"] >= 0


def value(families: dict[str, Family], name: str, **labels: str) -> float:
    """One sample's value; `name` may be a histogram's _count or _sum."""
    for f in families.values():
        for (sample, lbls), v in f.samples.items():
            if sample == name and dict(lbls) == labels:
                return v
    raise KeyError(f"no sample {name}{labels}")


def scrape(ws: WriterStack) -> dict[str, Family]:
    status, headers, body = curl(ws.metrics_url + "/metrics")
    assert status == 200
    assert headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert int(headers["content-length"]) == len(body)
    return parse_metrics(body.decode("utf-8"))


def health(ws: WriterStack) -> tuple[int, dict]:
    status, headers, body = curl(ws.metrics_url + "/healthz")
    assert headers["content-type"] == "application/json"
    return status, json.loads(body)


def raw_http(port: int, request: bytes, timeout: float = 15.0) -> bytes:
    """Sends `request` and reads until the server closes the connection."""
    with socket.create_connection((harness.HOST, port), timeout=timeout) as s:
        s.sendall(request)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


# -- tests ---------------------------------------------------------------------------------------

def test_scrape_parses_strictly_and_names_every_part(ms):
    families = scrape(ms)
    expected = {
        "readthru_build_info": "gauge",
        "readthru_uptime_seconds": "gauge",
        "readthru_connected_clients": "gauge",
        "readthru_upstream_up": "gauge",
        "readthru_busy_poll_hits_total": "counter",
        "readthru_commands_total": "counter",
        "readthru_command_duration_seconds": "histogram",
        "readthru_loader_hits_total": "counter",
        "readthru_loader_misses_total": "counter",
        "readthru_loader_loads_total": "counter",
        "readthru_loader_coalesced_total": "counter",
        "readthru_loader_negative_hits_total": "counter",
        "readthru_loader_errors_total": "counter",
        "readthru_loader_timeouts_total": "counter",
        "readthru_loader_duration_seconds": "histogram",
        "readthru_writer_writes_total": "counter",
        "readthru_writer_batches_total": "counter",
        "readthru_writer_coalesced_total": "counter",
        "readthru_writer_retries_total": "counter",
        "readthru_writer_dead_letters_total": "counter",
        "readthru_writer_queue_length": "gauge",
        "readthru_writer_oldest_pending_seconds": "gauge",
        "readthru_backend_up": "gauge",
        "readthru_backend_queue_depth": "gauge",
    }
    for name, kind in expected.items():
        assert name in families, f"{name} missing"
        assert families[name].type == kind, name
    assert value(families, "readthru_upstream_up") == 1
    assert value(families, "readthru_backend_up", backend="main", pool="read") == 1
    assert value(families, "readthru_backend_up", backend="main", pool="write") == 1
    for cls in ("read", "write", "other", "local"):
        value(families, "readthru_commands_total", **{"class": cls})
        value(families, "readthru_command_duration_seconds_count", **{"class": cls})
    # A loader name with a quote and a backslash comes back intact through the label escaping.
    for name in ("user", ODD_LOADER):
        value(families, "readthru_loader_hits_total", loader=name)
        value(families, "readthru_loader_duration_seconds_count", loader=name)
    assert value(families, "readthru_writer_queue_length", writer="kvb", mode="behind") >= 0


def test_counters_move_after_traffic_through_a_loader(ms):
    before = scrape(ms)
    r = ms.endpoint.client()
    try:
        assert r.get("user:7") == b"user7"     # a miss: one load
        assert r.get("user:7") == b"user7"     # a hit
        assert r.get("user:999") is None       # no row
        assert r.get("user:999") is None       # the negative cache
        r.set("kv:1", "one")                   # write-through
        r.ping()
        ms.wait_for(lambda: ms.rows() == {1: "one"}, what="the write-through row")
    finally:
        r.close()
    after = scrape(ms)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("readthru_loader_hits_total", loader="user") == 1
    assert delta("readthru_loader_misses_total", loader="user") == 3
    assert delta("readthru_loader_loads_total", loader="user") == 2
    assert delta("readthru_loader_negative_hits_total", loader="user") == 1
    assert delta("readthru_loader_duration_seconds_count", loader="user") == 2
    assert delta("readthru_loader_duration_seconds_sum", loader="user") > 0
    assert delta("readthru_loader_hits_total", loader=ODD_LOADER) == 0
    assert delta("readthru_writer_writes_total", writer="kv", mode="through") == 1
    assert delta("readthru_writer_db_writes_total", writer="kv", mode="through") == 1
    read, write, other = ({"class": c} for c in ("read", "write", "other"))
    assert delta("readthru_commands_total", **read) == 4
    assert delta("readthru_command_duration_seconds_count", **read) == 4
    assert delta("readthru_command_duration_seconds_sum", **read) > 0
    assert delta("readthru_commands_total", **write) == 1
    assert delta("readthru_command_duration_seconds_count", **write) == 1
    assert delta("readthru_commands_total", **other) >= 1  # PING (redis-py may add its own)
    assert delta("readthru_backend_queries_total", backend="main", pool="read") == 2


def test_local_commands_and_connected_clients(ms):
    before = scrape(ms)
    with ms.endpoint.raw() as conn:
        assert conn.command("CLIENT", "SETNAME", "metrics-test") == b"OK"
        families = scrape(ms)
        assert value(families, "readthru_connected_clients") >= 1
    local = {"class": "local"}
    assert value(families, "readthru_commands_total", **local) == (
        value(before, "readthru_commands_total", **local) + 1)


def test_head_answers_headers_only(ms):
    status, headers, body = curl(ms.metrics_url + "/metrics", "-I")
    assert status == 200
    assert body == b""
    assert int(headers["content-length"]) > 0
    assert headers["content-type"].startswith("text/plain; version=0.0.4")


def test_healthz_is_200_with_every_part_up(ms):
    status, report = health(ms)
    assert status == 200
    assert report == {"status": "up", "upstream": "up", "backends": {"main": "up"}}


def test_unknown_path_is_404_and_other_methods_405(ms):
    for path in ("/", "/metric", "/metrics/x", "/HEALTHZ"):
        status, _, _ = curl(ms.metrics_url + path)
        assert status == 404, path
    for method in ("POST", "PUT", "DELETE", "OPTIONS"):
        for path in ("/metrics", "/healthz"):
            status, headers, _ = curl(ms.metrics_url + path, "-X", method)
            assert status == 405, (method, path)
            assert headers["allow"] == "GET, HEAD"
    # A query string is not part of the path.
    status, _, _ = curl(ms.metrics_url + "/healthz?verbose=1")
    assert status == 200


def test_keep_alive_answers_pipelined_requests_in_order(ms):
    reply = raw_http(
        ms.metrics_port,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
        b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    statuses = re.findall(rb"^HTTP/1\.1 (\d{3}) ", reply, re.M)
    assert statuses == [b"200", b"404", b"200", b"200"]
    assert reply.endswith(b'"backends":{"main":"up"}}\n')


def test_http10_without_keep_alive_is_closed_after_the_response(ms):
    reply = raw_http(ms.metrics_port, b"GET /healthz HTTP/1.0\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nConnection: close\r\n" in reply


def test_oversized_header_is_refused_and_redis_clients_go_on(ms):
    r = ms.endpoint.client()
    try:
        assert r.ping()
        big = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n"
        reply = raw_http(ms.metrics_port, big)
        assert reply.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
        many = b"GET /metrics HTTP/1.1\r\n" + b"".join(
            b"X-H%d: %s\r\n" % (i, b"v" * 60) for i in range(200)) + b"\r\n"
        assert raw_http(ms.metrics_port, many).startswith(b"HTTP/1.1 431 ")
        url = b"GET /metrics?" + b"q" * 9000 + b" HTTP/1.1\r\n\r\n"
        assert raw_http(ms.metrics_port, url).startswith(b"HTTP/1.1 431 ")
        body = (b"GET /metrics HTTP/1.1\r\nContent-Length: 20000\r\n\r\n" + b"b" * 20000)
        assert raw_http(ms.metrics_port, body).startswith(b"HTTP/1.1 413 ")
        assert raw_http(ms.metrics_port, b"\x16\x03\x01 not http\r\n\r\n").startswith(
            b"HTTP/1.1 400 Bad Request\r\n")
        assert r.ping()
        assert r.get("user:8") == b"user8"
    finally:
        r.close()
    scrape(ms)  # the endpoint itself still answers


def test_healthz_is_503_naming_the_upstream_when_redis_stops(private):
    # No writers: write-behind would wait for the upstream until shutdown_timeout at the stop.
    ws = private(with_writers=False)
    status, report = health(ws)
    assert status == 200
    ws.stack.upstream.stop()

    def down() -> bool:
        status, report = health(ws)
        return status == 503
    wait_for(down, what="/healthz to report the upstream down")
    status, report = health(ws)
    assert report == {"status": "down", "upstream": "down", "backends": {"main": "up"}}
    assert value(scrape(ws), "readthru_upstream_up") == 0


def test_healthz_is_503_stopping_while_readthru_finishes_its_replies(private):
    ws = private(with_writers=False)
    with ws.endpoint.raw() as blocked:
        blocked.send_command("BLPOP", "metrics:drain", "0")
        # The BLPOP is in flight once Redis counts a blocked client.
        direct = ws.direct.client()
        try:
            wait_for(lambda: direct.info("clients")["blocked_clients"] == 1, what="BLPOP")
            ws.stack.proxy.proc.send_signal(signal.SIGTERM)
            # readthru owes the BLPOP a reply: it waits for it (up to shutdown_timeout).
            wait_for(lambda: health(ws)[0] == 503, what="/healthz to say stopping")
            status, report = health(ws)
            assert report == {"status": "stopping", "upstream": "up", "backends": {"main": "up"}}
            direct.lpush("metrics:drain", "x")
        finally:
            direct.close()
        assert blocked.read_reply() == [b"metrics:drain", b"x"]


def test_connections_past_max_connections_get_503(private):
    ws = private("max_connections = 1\nidle_timeout = \"60s\"")
    with socket.create_connection((harness.HOST, ws.metrics_port), timeout=15) as held:
        held.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        first = held.recv(65536)
        assert first.startswith(b"HTTP/1.1 200 ")
        # The held connection is open (keep-alive): the next one is turned away.
        reply = raw_http(ws.metrics_port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    # Once it is closed, a new one is served.
    wait_for(lambda: curl(ws.metrics_url + "/healthz")[0] == 200, what="a free connection")


def test_a_silent_connection_is_closed_after_idle_timeout(private):
    ws = private('idle_timeout = "200ms"')
    with socket.create_connection((harness.HOST, ws.metrics_port), timeout=30) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\n")  # and never the rest
        assert s.recv(100) == b""  # closed by readthru, without a response
    status, _, _ = curl(ws.metrics_url + "/healthz")
    assert status == 200


def bad_config(tmp_path, listen: str):
    path = harness.write_config(
        tmp_path / "readthru.toml", listen_port=harness.free_port(),
        upstream_port=harness.free_port(), metrics=f"listen = {json.dumps(listen)}",
    )
    line = path.read_text().split("\n").index(f"listen = {json.dumps(listen)}", 2) + 1
    return path, line


@pytest.mark.parametrize("listen", ["nonsense", "localhost:9121", "127.0.0.1:0", "127.0.0.1:x",
                                    "127.0.0.1"])
def test_bad_metrics_listen_is_a_config_error(tmp_path, listen):
    path, line = bad_config(tmp_path, listen)
    message = (f"{path}:{line}:10: 'metrics.listen' must be \"<ip>:<port>\", "
               f"e.g. \"127.0.0.1:9121\", or \"\" (off)")
    result = check_config(path)
    assert result.returncode == 1
    assert message in result.stderr
    daemon = subprocess.run([harness.readthru_bin(), "--config", str(path)],
                            capture_output=True, text=True, timeout=30)
    assert daemon.returncode == 1
    assert message in daemon.stderr


def test_metrics_port_in_use_stops_the_daemon_at_start(tmp_path):
    with socket.socket() as taken:
        taken.bind((harness.HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        path = harness.write_config(
            tmp_path / "readthru.toml", listen_port=harness.free_port(),
            upstream_port=harness.free_port(), metrics=f'listen = "{harness.HOST}:{port}"',
        )
        daemon = subprocess.run([harness.readthru_bin(), "--config", str(path)],
                                capture_output=True, text=True, timeout=30)
    assert daemon.returncode == 2
    assert f"cannot listen for metrics on {harness.HOST}:{port}" in daemon.stderr
