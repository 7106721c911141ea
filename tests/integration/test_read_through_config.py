"""Read-through configuration: a bad [[loaders]] table makes readthru exit 1, with
`readthru: bad config: <file>:<line>:<col>: loader '<name>': <reason>` on stderr, both under
--check-config (which opens the database and prepares every query) and when starting for real,
and it never starts serving. A good file passes --check-config."""

from __future__ import annotations

import re
import subprocess

import pytest

from harness import HOST, free_port, readthru_bin, write_config
from loader_stack import Backend, Loader, build_db, check_config, loaders_toml

pytestmark = pytest.mark.proxy_only

TIMEOUT = 30
GOOD = Loader("good", "good:{id:int}", "SELECT name FROM users WHERE id = :id")
BAD_NAME = "broken"


def bad(**kwargs) -> Loader:
    fields = dict(name=BAD_NAME, key="broken:{id}", query="SELECT name FROM users WHERE id = :id")
    fields.update(kwargs)
    return Loader(**fields)


# case -> (loaders after GOOD, words of which the reason must contain at least one)
CASES = {
    "unknown_backend": ([bad(backend="nosuch")], ["nosuch"]),
    "query_does_not_prepare": ([bad(query="SELECT name FROM nosuchtable WHERE id = :id")],
                               ["nosuchtable"]),
    "query_syntax_error": ([bad(query="SELEC name FROM users WHERE id = :id")],
                           ["SELEC", "syntax"]),
    "parameter_not_captured": (
        [bad(query="SELECT name FROM users WHERE id = :id AND email = :other")], ["other"]),
    "bad_ttl": ([bad(ttl="5 parsecs")], ["ttl", "parsecs", "duration"]),
    "bad_negative_ttl": ([bad(negative_ttl="soon")], ["negative_ttl", "soon", "duration"]),
    "bad_timeout": ([bad(timeout="1x")], ["timeout", "1x", "duration"]),
    "jitter_not_below_ttl": ([bad(ttl="10s", jitter="10s")], ["jitter"]),
    "duplicate_name": ([bad(), bad(key="other:{id}")], ["duplicate", "already", "used", BAD_NAME]),
    "unknown_type": ([bad(type="xml")], ["xml", "type"]),
    "bad_key_template": ([bad(key="broken:{id")], ["key", "{", "template"]),
    "missing_query": ([bad(query=None)], ["query"]),
    "missing_backend": ([bad(backend=None)], ["backend"]),
}


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("rtconfig") / "app.db"
    return build_db(path, "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT, email TEXT);"
                          "INSERT INTO users VALUES (1, 'a', 'a@x');")


def write(tmp_path, db, loaders, backends=None):
    backends = backends if backends is not None else [Backend(str(db))]
    path = write_config(
        tmp_path / "readthru.toml",
        listen_port=free_port(),
        upstream_port=free_port(),
        extra=loaders_toml(backends, loaders, negative_cache_entries=1000),
    )
    return path


def block_lines(path, occurrence: int) -> range:
    """1-based line numbers of the `occurrence`-th [[loaders]] table named BAD_NAME."""
    lines = path.read_text().splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == "[[loaders]]"]
    starts.append(len(lines))
    found = 0
    for start, end in zip(starts, starts[1:]):
        if f'name = "{BAD_NAME}"' in lines[start:end]:
            found += 1
            if found == occurrence:
                return range(start + 1, end + 1)
    raise AssertionError("bad loader not in the file")


def assert_names_loader(stderr: str, path, words, occurrence: int = 1) -> None:
    m = re.search(
        rf"readthru: bad config: (?P<file>[^\n]*?):(?P<line>\d+):(?P<col>\d+): "
        rf"loader '{BAD_NAME}': (?P<reason>[^\n]+)",
        stderr,
    )
    assert m, f"no 'readthru: bad config: <file>:<line>:<col>: loader '{BAD_NAME}': ...':\n{stderr}"
    assert m["file"].endswith(path.name), stderr
    lines = block_lines(path, occurrence)
    assert int(m["line"]) in lines, f"line {m['line']} is not in the loader's table:\n{stderr}"
    reason = m["reason"]
    assert any(w.lower() in reason.lower() for w in words), f"names none of {words}: {reason}"


def test_good_loader_config_passes_check_config(tmp_path, db):
    path = write(tmp_path, db, [GOOD, Loader("j", "j:{id}", "SELECT * FROM users WHERE id = :id",
                                             type="json", ttl="5m", jitter="1m", timeout="250ms",
                                             negative_ttl="0s")])
    result = check_config(path)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("case", list(CASES))
def test_bad_loader_exits_1_naming_it_under_check_config(tmp_path, db, case):
    loaders, words = CASES[case]
    path = write(tmp_path, db, [GOOD, *loaders])
    result = check_config(path)
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert_names_loader(result.stderr, path, words, occurrence=2 if case == "duplicate_name" else 1)


@pytest.mark.parametrize("case", ["unknown_backend", "query_does_not_prepare",
                                  "parameter_not_captured", "bad_ttl", "jitter_not_below_ttl"])
def test_bad_loader_exits_1_when_starting_and_never_listens(tmp_path, db, case):
    loaders, words = CASES[case]
    path = write(tmp_path, db, [GOOD, *loaders])
    port = free_port()
    try:
        result = subprocess.run(
            [readthru_bin(), "--config", str(path), "--listen", f"{HOST}:{port}"],
            capture_output=True, text=True, timeout=TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("readthru started with a bad loader instead of exiting 1")
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert_names_loader(result.stderr, path, words)


def test_missing_database_fails_check_config(tmp_path, db):
    path = write(tmp_path, db, [GOOD], backends=[Backend(str(tmp_path / "nosuch.db"))])
    result = check_config(path)
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert "readthru: bad config:" in result.stderr and path.name in result.stderr, result.stderr
    assert not (tmp_path / "nosuch.db").exists()  # opened read-only: never created
