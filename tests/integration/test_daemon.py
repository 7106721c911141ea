"""Running readthru as a daemon: `cmake --install` puts the binary, the configuration and the
systemd unit in place, the installed unit passes `systemd-analyze verify` and is sandboxed, and the
command line answers --version, --help and --check-config with the documented exit codes
(0 good, 1 bad command line or config, 2 cannot start)."""

import os
import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from harness import HOST, REPO, free_port, readthru_bin, write_config

pytestmark = pytest.mark.proxy_only

TIMEOUT = 120  # cmake --install copies the binary; an ASan build's is large


def run(argv, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, **kwargs)


def build_dir() -> Path:
    """The CMake build directory READTHRU_BIN was built in."""
    build = Path(readthru_bin()).resolve().parent
    if not (build / "CMakeCache.txt").exists():
        pytest.skip(f"{readthru_bin()} is not in a CMake build directory: nothing to install from")
    return build


def install(prefix: Path, destdir: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("DESTDIR", None)
    if destdir is not None:
        env["DESTDIR"] = str(destdir)
    result = run(["cmake", "--install", str(build_dir()), "--prefix", str(prefix)], env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def exec_start(unit: Path) -> str:
    lines = [l for l in unit.read_text().splitlines() if l.startswith("ExecStart=")]
    assert len(lines) == 1, lines
    return lines[0][len("ExecStart="):]


def systemd_analyze() -> str:
    path = shutil.which("systemd-analyze")
    # Not a skip: tools/setup.sh installs it (Debian's systemd package), and the check runs
    # without a running systemd.
    assert path is not None, "systemd-analyze not found: run tools/setup.sh (package systemd)"
    return path


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    prefix = tmp_path_factory.mktemp("prefix")
    install(prefix)
    return prefix


def test_install_puts_binary_config_and_unit_under_the_prefix(installed):
    binary = installed / "bin" / "readthru"
    assert binary.is_file() and os.access(binary, os.X_OK)
    version = run([str(binary), "--version"])
    assert version.returncode == 0 and version.stdout.startswith("readthru "), version
    conf = installed / "etc" / "readthru" / "readthru.toml"
    assert conf.read_text() == (REPO / "conf" / "readthru.toml").read_text()
    unit = installed / "lib" / "systemd" / "system" / "readthru.service"
    assert exec_start(unit) == f"{binary} --config {conf}"
    # What the unit starts: the installed binary accepts the installed configuration.
    check = run([str(binary), "--check-config", "--config", str(conf)])
    assert check.returncode == 0, check.stderr


def test_install_with_prefix_usr_puts_config_in_etc(tmp_path):
    install(Path("/usr"), destdir=tmp_path)
    assert (tmp_path / "usr" / "bin" / "readthru").is_file()
    assert (tmp_path / "etc" / "readthru" / "readthru.toml").is_file()
    assert not (tmp_path / "usr" / "etc").exists()
    unit = tmp_path / "usr" / "lib" / "systemd" / "system" / "readthru.service"
    # The unit names the files where they will be, not where DESTDIR staged them.
    assert exec_start(unit) == "/usr/bin/readthru --config /etc/readthru/readthru.toml"


def test_install_keeps_an_existing_config(tmp_path):
    conf = tmp_path / "etc" / "readthru" / "readthru.toml"
    conf.parent.mkdir(parents=True)
    conf.write_text('listen = "127.0.0.1:7777"\n')
    result = install(tmp_path)
    assert conf.read_text() == 'listen = "127.0.0.1:7777"\n'
    assert "Keeping" in result.stdout, result.stdout
    assert (tmp_path / "lib" / "systemd" / "system" / "readthru.service").is_file()


def test_installed_unit_passes_systemd_analyze_verify(installed):
    unit = installed / "lib" / "systemd" / "system" / "readthru.service"
    result = run([systemd_analyze(), "verify", str(unit)])
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    # verify warns (exit 0) about unknown keys and bad values; other units' warnings on a host
    # with a real systemd are not this test's business.
    assert not [l for l in out.splitlines() if "readthru" in l], out


def test_installed_unit_runs_unprivileged_sandboxed_and_reloads_with_sighup(installed):
    unit = installed / "lib" / "systemd" / "system" / "readthru.service"
    text = unit.read_text()
    for line in ("DynamicUser=yes", "Restart=on-failure", "ExecReload=/bin/kill -HUP $MAINPID",
                 "ProtectSystem=strict", "NoNewPrivileges=yes", "CapabilityBoundingSet=",
                 "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
                 "SystemCallFilter=@system-service"):
        assert re.search(rf"^{re.escape(line)}$", text, re.M), line
    # systemd's own rating of the sandbox: exposure 0.0 (locked down) to 10.0 (none); the
    # threshold is in tenths.
    result = run([systemd_analyze(), "security", "--offline=true", "--threshold=20", str(unit)])
    exposure = re.search(r"Overall exposure level for readthru.service: ([0-9.]+)", result.stdout)
    assert result.returncode == 0 and exposure is not None, result.stdout + result.stderr
    assert float(exposure.group(1)) <= 2.0


def test_version_prints_and_exits_0():
    for flag in ("--version", "-v"):
        result = run([readthru_bin(), flag])
        assert result.returncode == 0, result
        assert re.fullmatch(r"readthru \d+\.\d+\.\d+\n", result.stdout), result.stdout


def test_help_prints_options_and_exit_codes_and_exits_0():
    for flag in ("--help", "-h"):
        result = run([readthru_bin(), flag])
        assert result.returncode == 0, result
        for option in ("--config", "--listen", "--upstream", "--check-config", "--version"):
            assert option in result.stdout, result.stdout
        for code in range(4):
            assert re.search(rf"^\s+{code}\s+\S", result.stdout, re.M), result.stdout


def test_exit_codes_in_help_match_the_readme():
    helped = run([readthru_bin(), "--help"]).stdout
    in_help = [int(c) for c in re.findall(r"^  (\d)  \S", helped, re.M)]
    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("**Exit codes**"):]
    in_readme = [int(c) for c in re.findall(r"^\| (\d) \|", table, re.M)]
    assert in_help == in_readme == [0, 1, 2, 3], (in_help, in_readme)


@pytest.mark.parametrize(
    "argv",
    [["--bogus"], ["--config"], ["--listen", "nohostport"], ["--upstream", "h:99999"], ["x"]],
)
def test_bad_command_line_exits_1(argv):
    result = run([readthru_bin(), *argv])
    assert result.returncode == 1, result
    assert result.stderr.startswith("readthru: "), result.stderr


def test_check_config_exits_0_on_good_and_1_on_bad(tmp_path):
    path = write_config(tmp_path / "c.toml", listen_port=free_port(), upstream_port=free_port())
    good = run([readthru_bin(), "--check-config", "--config", str(path)])
    assert good.returncode == 0, good
    path.write_text(path.read_text() + "unixsocketperm = 778\n")
    bad = run([readthru_bin(), "--check-config", "--config", str(path)])
    assert bad.returncode == 1, bad
    assert "unixsocketperm" in bad.stderr, bad.stderr


def test_listen_address_in_use_exits_2(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run([readthru_bin(), "--listen", f"{HOST}:{port}", "--upstream",
                      f"{HOST}:{free_port()}"], cwd=tmp_path)
    assert result.returncode == 2, result
    assert "in use" in result.stderr, result.stderr
