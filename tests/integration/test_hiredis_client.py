"""A C client on Debian's hiredis 0.14 (sync API) works through readthru unchanged."""

import subprocess

TIMEOUT = 120


def run_client(hiredis_client, endpoint, *args):
    return subprocess.run(
        [hiredis_client, endpoint.host, str(endpoint.port), *args],
        capture_output=True,
        timeout=TIMEOUT,
    )


def test_hiredis_scripted_checks_pass(hiredis_client, proxy):
    result = run_client(hiredis_client, proxy)
    out = result.stdout.decode(errors="replace")
    assert result.returncode == 0, out + result.stderr.decode(errors="replace")
    assert "all 6 checks passed" in out


def test_hiredis_checks_pass_in_parallel_clients(hiredis_client, proxy):
    procs = [
        subprocess.Popen(
            [hiredis_client, proxy.host, str(proxy.port), f"--prefix=par{i}:"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for i in range(4)
    ]
    outputs = [p.communicate(timeout=TIMEOUT)[0].decode(errors="replace") for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, outputs


def test_hiredis_single_commands_print_like_against_redis(hiredis_client, proxy, upstream, r):
    r.rpush("l", "a", "b")
    for args in (["PING"], ["LRANGE", "l", "0", "-1"], ["COMMAND", "INFO", "GET", "SET"], ["GET"]):
        want = run_client(hiredis_client, upstream, *args)
        got = run_client(hiredis_client, proxy, *args)
        assert (got.returncode, got.stdout) == (want.returncode, want.stdout), args
