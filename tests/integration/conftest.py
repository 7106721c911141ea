"""Fixtures: a real redis-server and a real readthru per test module, plus factories for tests that
need their own (killing the upstream, config limits, signals).

  stack      the module's Stack; before each test every db of redis-server is flushed, after it
             readthru must still be running
  proxy      the Endpoint under test (readthru, or redis-server when READTHRU_DIRECT=1)
  upstream   redis-server's own Endpoint, for checking what really landed and as the oracle
  r          a redis-py client to `proxy`; `direct_r` the same to `upstream`
  make_stack a factory for private stacks, stopped (and readthru's exit code checked) at teardown

Mark tests that only make sense with readthru in the path with @pytest.mark.proxy_only; they are
skipped in DIRECT mode.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

import harness
from harness import DIRECT, Stack


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "proxy_only: needs readthru itself in the path (skipped when READTHRU_DIRECT=1)"
    )


def pytest_collection_modifyitems(config, items):
    if not DIRECT:
        return
    skip = pytest.mark.skip(reason="readthru-specific; READTHRU_DIRECT=1 runs without readthru")
    for item in items:
        if "proxy_only" in item.keywords:
            item.add_marker(skip)


def pytest_report_header(config):
    if DIRECT:
        return "readthru: DIRECT mode (tests talk to redis-server itself)"
    try:
        return f"readthru: {harness.readthru_bin()}"
    except RuntimeError as exc:
        return f"readthru: {exc}"


def _check_stopped(stack: Stack) -> None:
    log = stack.proxy.log() if stack.proxy is not None else ""
    rc = stack.stop()
    assert rc == 0, f"readthru exited with {rc} on SIGTERM (None: had to be killed); stderr:\n{log}"


@pytest.fixture(scope="module")
def module_stack(tmp_path_factory):
    stack = Stack(tmp_path_factory.mktemp("stack"))
    yield stack
    _check_stopped(stack)


@pytest.fixture
def stack(module_stack):
    module_stack.direct.client().flushall()
    yield module_stack
    if module_stack.proxy is not None and not module_stack.proxy.alive():
        pytest.fail(f"readthru died during the test; stderr:\n{module_stack.proxy.log()}")
    if not module_stack.upstream.alive():
        pytest.fail(f"redis-server died during the test; log:\n{module_stack.upstream.log()}")


@pytest.fixture
def proxy(stack):
    return stack.endpoint


@pytest.fixture
def upstream(stack):
    return stack.direct


@pytest.fixture
def r(proxy):
    client = proxy.client()
    yield client
    client.close()


@pytest.fixture
def direct_r(upstream):
    client = upstream.client()
    yield client
    client.close()


@pytest.fixture
def make_stack(tmp_path):
    """Factory for stacks private to one test. Stopped at teardown; readthru must exit 0."""
    stacks: list[Stack] = []

    def make(
        upstream_args: tuple = (),
        tls_files: harness.TlsFiles | None = None,
        tls_auth_clients: bool = False,
        **config_kwargs,
    ) -> Stack:
        """config_kwargs go to harness.write_config; upstream_args, tls_files (TLS only) and
        tls_auth_clients to redis-server."""
        stack = Stack(
            tmp_path / f"stack{len(stacks)}",
            config_kwargs=config_kwargs or None,
            upstream_args=upstream_args,
            tls_files=tls_files,
            tls_auth_clients=tls_auth_clients,
        )
        stacks.append(stack)
        return stack

    yield make
    errors = []
    for stack in stacks:
        try:
            _check_stopped(stack)
        except AssertionError as exc:
            errors.append(str(exc))
    assert not errors, "\n".join(errors)


@pytest.fixture(scope="session")
def hiredis_client(tmp_path_factory) -> str:
    """The hiredis test program: $HIREDIS_CLIENT, else built here from hiredis_client.cc."""
    path = os.environ.get("HIREDIS_CLIENT")
    if path:
        assert os.access(path, os.X_OK), f"HIREDIS_CLIENT={path} is not executable"
        return path
    compiler = shutil.which("c++") or shutil.which("g++")
    if compiler is None:
        pytest.skip("HIREDIS_CLIENT not set and no C++ compiler to build it")
    out = tmp_path_factory.mktemp("hiredis") / "hiredis_client"
    src = Path(__file__).with_name("hiredis_client.cc")
    build = subprocess.run(
        [compiler, "-std=c++20", "-Wall", "-Wextra", "-Werror", "-O1", str(src), "-o", str(out),
         "-lhiredis"],
        capture_output=True, text=True, timeout=300,
    )
    if build.returncode != 0:
        pytest.skip(f"HIREDIS_CLIENT not set and building it failed:\n{build.stderr[-2000:]}")
    return str(out)
