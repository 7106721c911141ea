"""Real processes for the integration tests: redis-server and readthru on ephemeral loopback ports.

Every process runs in its own temp dir, logs to a file there, is waited for with PING before a test
uses it, and is stopped with SIGTERM (then SIGKILL after a deadline). Nothing here talks to any
address but 127.0.0.1.

Environment:
  READTHRU_BIN      path to the readthru binary (default: <repo>/build/readthru)
  READTHRU_DIRECT   "1": no proxy; the "proxy" endpoint is redis-server itself. Used to check that
                    the tests themselves are right before (or without) a proxy.
  HIREDIS_CLIENT    path to the hiredis_client test program (built by CMake)
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from resp_client import RespConn

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parents[2]
DIRECT = os.environ.get("READTHRU_DIRECT") == "1"
REDIS_SERVER = os.environ.get("REDIS_SERVER", "redis-server")

# Generous: the suite also runs against an ASan build, roughly 3x slower.
START_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0
SOCKET_TIMEOUT = 15.0


def _die_with_parent() -> None:
    """Runs in the child before exec: if the test run is killed (ctest timeout, ^C), its servers
    get SIGKILL instead of living on as orphans."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def readthru_bin() -> str:
    path = os.environ.get("READTHRU_BIN") or str(REPO / "build" / "readthru")
    if not os.access(path, os.X_OK):
        raise RuntimeError(
            f"readthru binary not found at {path}; set READTHRU_BIN, or READTHRU_DIRECT=1 to run "
            "the tests against redis-server alone"
        )
    return os.path.abspath(path)  # processes run in their own temp dirs


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class TlsFiles:
    """A throwaway PKI made by make_tls_files() with the openssl CLI: a CA; a server certificate
    for "localhost" and 127.0.0.1 and a client certificate, both signed by it; and another CA
    that signed neither."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca_cert: Path

    def client_context(self, client_cert: bool = True) -> ssl.SSLContext:
        """How a test client connects to a TLS redis-server: trusts the CA, shows the client
        certificate (needed with tls-auth-clients yes), checks the server is "localhost"."""
        ctx = ssl.create_default_context(cafile=str(self.ca_cert))
        if client_cert:
            ctx.load_cert_chain(str(self.client_cert), str(self.client_key))
        return ctx


_TLS_CNF = """[req]
distinguished_name = dn
prompt = no
[dn]
CN = readthru test
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1
[client]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
"""


def make_tls_files(directory: Path) -> TlsFiles:
    """Generates TlsFiles in `directory` (P-256 keys, valid for two days)."""
    directory.mkdir(parents=True, exist_ok=True)
    cnf = directory / "openssl.cnf"
    cnf.write_text(_TLS_CNF)

    def openssl(*args) -> None:
        subprocess.run(["openssl", *map(str, args)], cwd=directory, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", "-new", *newkey, "-keyout", f"{ca}.key", "-out", f"{ca}.crt",
                "-days", "2", "-config", cnf, "-extensions", "ca", "-subj", f"/CN=readthru {ca}")
    for name, cn in (("server", "localhost"), ("client", "readthru")):
        openssl("req", "-new", *newkey, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-config", cnf, "-subj", f"/CN={cn}")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", cnf,
                "-extensions", name)
    return TlsFiles(
        ca_cert=directory / "ca.crt",
        server_cert=directory / "server.crt",
        server_key=directory / "server.key",
        client_cert=directory / "client.crt",
        client_key=directory / "client.key",
        other_ca_cert=directory / "other-ca.crt",
    )


def write_config(
    path: Path,
    *,
    listen_port: int,
    upstream_port: int,
    connections: int = 2,
    maxclients: int = 10000,
    requirepass: str | None = None,
    upstream_password: str | None = None,
    upstream_tls: dict | None = None,
    extra: str = "",
    upstream_extra: str = "",
    unixsocket: str | None = None,
    unixsocketperm: int | None = None,
    metrics: str | None = None,
    log_format: str | None = None,
    slowlog_log_slower_than: int | None = None,
    slowlog_max_len: int | None = None,
    shutdown_timeout: str | None = None,
    busy_poll: int | None = None,
) -> Path:
    """The one place that knows readthru's config format (conf/readthru.toml documents it).

    upstream_tls: {"ca_cert_file": path, "verify": False, ...} -> tls = true and tls_<key> = value
    in [upstream] ({"tls": False} overrides the tls = true).
    `metrics`: the body of a [metrics] table (e.g. 'listen = "127.0.0.1:9121"'), written last."""
    top = f'listen = "{HOST}:{listen_port}"\n'
    if log_format is not None:
        top += f'log_format = "{log_format}"\n'
    if slowlog_log_slower_than is not None:
        top += f"slowlog_log_slower_than = {slowlog_log_slower_than}\n"
    if slowlog_max_len is not None:
        top += f"slowlog_max_len = {slowlog_max_len}\n"
    if shutdown_timeout is not None:
        top += f'shutdown_timeout = "{shutdown_timeout}"\n'
    if busy_poll is not None:
        top += f"busy_poll = {busy_poll}\n"
    if requirepass is not None:
        top += f'requirepass = "{requirepass}"\n'
    if unixsocket is not None:
        top += f'unixsocket = "{unixsocket}"\n'
    if unixsocketperm is not None:
        top += f"unixsocketperm = {unixsocketperm}\n"  # digits read as octal, as in redis.conf
    upstream = f'address = "{HOST}:{upstream_port}"\nconnections = {connections}\n'
    if upstream_password is not None:
        upstream += f'password = "{upstream_password}"\n'
    if upstream_tls is not None:
        settings = {"tls": True, **upstream_tls}
        for key, value in settings.items():
            name = key if key == "tls" else f"tls_{key}"
            text = ("true" if value else "false") if isinstance(value, bool) else json.dumps(str(value))
            upstream += f"{name} = {text}\n"
    upstream += upstream_extra
    tail = f"\n[metrics]\n{metrics}\n" if metrics is not None else ""
    path.write_text(
        top + "\n[upstream]\n" + upstream + "\n[limits]\n" + f"maxclients = {maxclients}\n" + extra
        + tail
    )
    return path


def ping_ok(
    port: int,
    timeout: float = 1.0,
    password: str | None = None,
    tls: ssl.SSLContext | None = None,
) -> bool:
    try:
        with RespConn(HOST, port, timeout=timeout) as c:
            if tls is not None:
                c.sock = tls.wrap_socket(c.sock, server_hostname="localhost")
            if password is not None and c.command("AUTH", password) != b"OK":
                return False
            return c.command("PING") == b"PONG"
    except (OSError, ConnectionError):  # ssl.SSLError is an OSError
        return False


def info_field(endpoint: "Endpoint", field: str) -> int:
    """An integer field of INFO's # Readthru section, asked of `endpoint`."""
    with endpoint.raw() as c:
        info = c.command("INFO", "readthru").decode()
    for line in info.splitlines():
        if line.startswith(field + ":"):
            return int(line.split(":", 1)[1])
    raise AssertionError(f"{field} not in INFO readthru:\n{info}")


def wait_for(predicate, what: str, timeout: float = 10.0) -> None:
    """Polls `predicate` until it holds; fails the test with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return "<no log>"


@dataclass(frozen=True)
class Endpoint:
    """Where a client connects: redis-server itself or readthru in front of it."""

    host: str
    port: int
    password: str | None = None  # what client() and raw() authenticate with
    tls: TlsFiles | None = None  # a TLS redis-server: clients connect with TLS, client cert shown

    def client(self, **kwargs) -> redis.Redis:
        kwargs.setdefault("password", self.password)
        kwargs.setdefault("socket_timeout", SOCKET_TIMEOUT)
        kwargs.setdefault("socket_connect_timeout", SOCKET_TIMEOUT)
        if self.tls is not None:
            kwargs.setdefault("ssl", True)
            kwargs.setdefault("ssl_ca_certs", str(self.tls.ca_cert))
            kwargs.setdefault("ssl_certfile", str(self.tls.client_cert))
            kwargs.setdefault("ssl_keyfile", str(self.tls.client_key))
        return redis.Redis(host=self.host, port=self.port, **kwargs)

    def raw(self, timeout: float = SOCKET_TIMEOUT, auth: bool = True) -> RespConn:
        conn = RespConn(self.host, self.port, timeout=timeout)
        if self.tls is not None:
            conn.sock = self.tls.client_context().wrap_socket(conn.sock, server_hostname="localhost")
        if auth and self.password is not None:
            reply = conn.command("AUTH", self.password)
            assert reply == b"OK", reply
        return conn


class Process:
    """A child process with a log file, stopped by SIGTERM then SIGKILL."""

    def __init__(self, name: str, workdir: Path):
        self.name = name
        self.workdir = workdir
        self.log_path = workdir / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    def _spawn(self, argv: list[str]) -> None:
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                argv,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                preexec_fn=_die_with_parent,
            )
        finally:
            log.close()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return _tail(self.log_path)

    def wait_ready(
        self,
        port: int,
        timeout: float = START_TIMEOUT,
        password: str | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> bool:
        """True once PING answers; False if the process exited first or the deadline passed."""
        return self._wait(lambda: ping_ok(port, password=password, tls=tls), timeout)

    def wait_listening(self, port: int, timeout: float = START_TIMEOUT) -> bool:
        """True once `port` accepts a connection (nothing is sent on it)."""

        def accepts() -> bool:
            try:
                socket.create_connection((HOST, port), timeout=1.0).close()
                return True
            except OSError:
                return False

        return self._wait(accepts, timeout)

    def _wait(self, ready, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                return False
            if ready():
                return True
            time.sleep(0.02)
        return False

    def stop(self, timeout: float = STOP_TIMEOUT, sig: int = signal.SIGTERM) -> int | None:
        """Signals the process and waits. Returns its exit code (negative: killed by a signal)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout)
                return None  # did not stop in time
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT)


class RedisServer(Process):
    """`tls`: serve TLS only, on `port` (--port 0 --tls-port), with the server certificate;
    `tls_auth_clients`: require a client certificate signed by the CA."""

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        extra_args: tuple = (),
        tls: TlsFiles | None = None,
        tls_auth_clients: bool = False,
    ):
        workdir.mkdir(parents=True, exist_ok=True)
        super().__init__("redis-server", workdir)
        self.port = port
        self.extra_args = tuple(extra_args)
        self.tls = tls
        self.tls_auth_clients = tls_auth_clients

    def _listen_args(self, port: int) -> list[str]:
        if self.tls is None:
            return ["--port", str(port)]
        return [
            "--port", "0", "--tls-port", str(port),
            "--tls-cert-file", str(self.tls.server_cert),
            "--tls-key-file", str(self.tls.server_key),
            "--tls-ca-cert-file", str(self.tls.ca_cert),
            "--tls-auth-clients", "yes" if self.tls_auth_clients else "no",
        ]

    def start(self) -> "RedisServer":
        fixed = self.port is not None
        tls = self.tls.client_context() if self.tls is not None else None
        for _ in range(1 if fixed else 5):
            port = self.port if fixed else free_port()
            self._spawn(
                [
                    REDIS_SERVER, *self._listen_args(port), "--bind", HOST, "--save", "",
                    "--appendonly", "no", "--dir", str(self.workdir), *self.extra_args,
                ]
            )
            if self.wait_ready(port, password=self.password, tls=tls):
                self.port = port
                return self
            self.kill()
        raise RuntimeError(f"redis-server did not start; log:\n{self.log()}")

    @property
    def password(self) -> str | None:
        args = list(self.extra_args)
        return args[args.index("--requirepass") + 1] if "--requirepass" in args else None

    @property
    def endpoint(self) -> Endpoint:
        assert self.port is not None
        return Endpoint(HOST, self.port, self.password, self.tls)


class Readthru(Process):
    def __init__(
        self,
        workdir: Path,
        upstream_port: int,
        *,
        config: Path | None = None,
        listen_port: int | None = None,
        binary: str | None = None,
        password: str | None = None,
    ):
        workdir.mkdir(parents=True, exist_ok=True)
        super().__init__("readthru", workdir)
        self.password = password  # readthru's own requirepass, if its config sets one
        self.binary = binary or readthru_bin()
        self.upstream_port = upstream_port
        self.config = config
        self.port = listen_port

    def argv(self, port: int) -> list[str]:
        argv = [self.binary, "--listen", f"{HOST}:{port}", "--upstream", f"{HOST}:{self.upstream_port}"]
        if self.config is not None:
            argv += ["--config", str(self.config)]
        return argv

    def start(self, upstream_up: bool = True) -> "Readthru":
        """upstream_up=False: ready once the listener accepts, for an upstream readthru cannot
        use (PING goes to the upstream)."""
        fixed = self.port is not None
        for _ in range(1 if fixed else 3):
            port = self.port if fixed else free_port()
            log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
            self._spawn(self.argv(port))
            ready = (self.wait_ready(port, password=self.password) if upstream_up
                     else self.wait_listening(port))
            if ready:
                self.port = port
                return self
            running = self.alive()
            self.kill()
            new_log = self.log_path.read_bytes()[log_start:].lower()
            if running or b"in use" not in new_log:
                break  # not a race for the port (another process took it): a real failure
        raise RuntimeError(f"readthru did not answer PING; stderr:\n{self.log()}")

    @property
    def endpoint(self) -> Endpoint:
        assert self.port is not None
        return Endpoint(HOST, self.port, self.password)


class Stack:
    """One redis-server and (unless DIRECT) one readthru in front of it."""

    def __init__(
        self,
        workdir: Path,
        *,
        config_kwargs: dict | None = None,
        upstream_args: tuple = (),
        tls_files: TlsFiles | None = None,
        tls_auth_clients: bool = False,
    ):
        """tls_files: redis-server serves TLS only (see RedisServer); readthru's side is
        config_kwargs["upstream_tls"]."""
        self.workdir = workdir
        self.upstream = RedisServer(
            workdir / "redis",
            extra_args=upstream_args,
            tls=tls_files,
            tls_auth_clients=tls_auth_clients,
        ).start()
        self.proxy: Readthru | None = None
        if not DIRECT:
            config = None
            if config_kwargs is not None:
                listen_port = free_port()
                config = write_config(
                    workdir / "readthru.toml",
                    listen_port=listen_port,
                    upstream_port=self.upstream.port,
                    **config_kwargs,
                )
                self.proxy = Readthru(
                    workdir / "readthru",
                    self.upstream.port,
                    config=config,
                    listen_port=listen_port,
                    password=config_kwargs.get("requirepass"),
                ).start()
            else:
                self.proxy = Readthru(workdir / "readthru", self.upstream.port).start()

    @property
    def endpoint(self) -> Endpoint:
        """What the tests talk to: readthru, or redis-server itself in DIRECT mode."""
        return self.proxy.endpoint if self.proxy is not None else self.upstream.endpoint

    @property
    def direct(self) -> Endpoint:
        return self.upstream.endpoint

    def stop(self) -> int | None:
        """Stops readthru first (it drains), then redis-server. Returns readthru's exit code."""
        rc = 0
        if self.proxy is not None:
            rc = self.proxy.stop()
        self.upstream.stop()
        return rc
