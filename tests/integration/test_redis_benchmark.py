"""redis-benchmark runs through readthru and completes every request."""

import re
import subprocess

import pytest

TIMEOUT = 180


def benchmark(endpoint, *args):
    return subprocess.run(
        ["redis-benchmark", "-h", endpoint.host, "-p", str(endpoint.port), *args],
        capture_output=True,
        timeout=TIMEOUT,
    )


def rates(output: bytes) -> dict[str, float]:
    # -q prints progress lines ending in \r and one final line per test.
    text = output.decode(errors="replace").replace("\r", "\n")
    return {
        m.group(1): float(m.group(2))
        for m in re.finditer(r"^\s*([A-Z0-9_]+(?: \([^)]*\))?): ([0-9.]+) requests per second", text, re.M)
    }


@pytest.mark.parametrize(
    "extra",
    [
        [],
        ["-P", "16"],
        ["-c", "100"],
        ["-3"],
    ],
    ids=["plain", "pipelined16", "100clients", "resp3"],
)
def test_set_get_benchmark_succeeds(proxy, direct_r, extra):
    result = benchmark(proxy, "-t", "set,get", "-n", "2000", "-q", *extra)
    assert result.returncode == 0, result.stdout + result.stderr
    got = rates(result.stdout)
    assert set(got) == {"SET", "GET"}, result.stdout
    assert all(v > 0 for v in got.values())
    assert b"rror" not in result.stdout + result.stderr
    assert direct_r.get("key:__rand_int__") is not None


def test_mixed_benchmark_with_large_values(proxy):
    result = benchmark(
        proxy, "-t", "incr,lpush,rpop,sadd,hset,mset,lrange_100", "-n", "1000", "-d", "4096", "-q"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    got = rates(result.stdout)
    assert {"INCR", "LPUSH", "RPOP", "SADD", "HSET", "LRANGE_100 (first 100 elements)"} <= set(
        got
    ), result.stdout
    assert any(name.startswith("MSET") for name in got), result.stdout
