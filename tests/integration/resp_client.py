"""A raw RESP2/RESP3 client for the integration tests.

redis-py 4.3 speaks only RESP2 and hides the bytes on the wire, so the tests that care about exact
framing (the differential oracle, protocol errors, RESP3 types, pushes) use this instead.

Contracts:
- Every socket has a timeout: a proxy that never answers fails the test instead of hanging it.
- `read_reply()` returns one parsed reply; `read_raw_reply()` returns the exact bytes of one reply,
  so two servers can be compared byte for byte.
- RESP3 values keep their wire type through small wrapper types (RespMap, RespSet, Push, Double,
  BigNumber, Verbatim, Simple, RespError, Null); attributes ('|') are collected in
  `conn.attributes` and the reply they annotate is returned.
"""

from __future__ import annotations

import socket
import time

DEFAULT_TIMEOUT = 15.0


class Incomplete(Exception):
    """The buffer ends inside a reply. `need` is a lower bound on the buffer length required."""

    def __init__(self, need: int):
        super().__init__(need)
        self.need = need


class ProtocolViolation(Exception):
    """The peer sent bytes that are not RESP."""


class Simple(bytes):
    """'+' simple string."""


class RespError(bytes):
    """'-' simple error or '!' blob error. `code` is the first word (ERR, WRONGTYPE, ...)."""

    @property
    def code(self) -> bytes:
        return bytes(self).split(b" ", 1)[0]

    @property
    def text(self) -> str:
        return bytes(self).decode("utf-8", "replace")


class Null:
    """RESP3 '_' null (RESP2 nil bulk/array parse to None)."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "Null"

    def __bool__(self) -> bool:
        return False


NULL = Null()


class Double(float):
    """',' double."""


class BigNumber(int):
    """'(' big number."""


class Verbatim(bytes):
    """'=' verbatim string; `format` is the three-letter type (b'txt', b'mkd')."""

    format: bytes = b""


class RespMap(dict):
    """'%' map. Aggregate keys are made hashable (lists become tuples)."""


class RespSet(list):
    """'~' set, kept in wire order (members may be unhashable)."""


class Push(list):
    """'>' out-of-band push (pub/sub messages, invalidations)."""


def _hashable(value):
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple((k, _hashable(v)) for k, v in value.items())
    return value


def _line(buf: bytes | bytearray, pos: int) -> tuple[bytes, int]:
    end = buf.find(b"\r\n", pos)
    if end < 0:
        raise Incomplete(len(buf) + 1)
    return bytes(buf[pos:end]), end + 2


def _int(line: bytes) -> int:
    try:
        return int(line)
    except ValueError:
        raise ProtocolViolation(f"bad integer {line!r}") from None


def _blob(buf, pos: int, n: int) -> tuple[bytes, int]:
    end = pos + n
    if len(buf) < end + 2:
        raise Incomplete(end + 2)
    if buf[end : end + 2] != b"\r\n":
        raise ProtocolViolation(f"blob of {n} bytes not followed by CRLF")
    return bytes(buf[pos:end]), end + 2


def parse(buf: bytes | bytearray, pos: int = 0, attributes: list | None = None):
    """Parses one reply starting at `pos`. Returns (value, next_pos); raises Incomplete."""
    if pos >= len(buf):
        raise Incomplete(pos + 1)
    kind = buf[pos : pos + 1]
    line, p = _line(buf, pos + 1)
    if kind == b"+":
        return Simple(line), p
    if kind == b"-":
        return RespError(line), p
    if kind == b":":
        return _int(line), p
    if kind == b"$":
        n = _int(line)
        if n < 0:
            return None, p
        return _blob(buf, p, n)
    if kind in (b"*", b"~", b">"):
        n = _int(line)
        if n < 0:
            return None, p
        items = []
        for _ in range(n):
            item, p = parse(buf, p, attributes)
            items.append(item)
        if kind == b"~":
            return RespSet(items), p
        if kind == b">":
            return Push(items), p
        return items, p
    if kind == b"%":
        n = _int(line)
        result = RespMap()
        for _ in range(n):
            key, p = parse(buf, p, attributes)
            value, p = parse(buf, p, attributes)
            result[_hashable(key)] = value
        return result, p
    if kind == b"|":
        n = _int(line)
        attrs = RespMap()
        for _ in range(n):
            key, p = parse(buf, p, attributes)
            value, p = parse(buf, p, attributes)
            attrs[_hashable(key)] = value
        if attributes is not None:
            attributes.append(attrs)
        return parse(buf, p, attributes)
    if kind == b"_":
        if line != b"":
            raise ProtocolViolation(f"null with payload {line!r}")
        return NULL, p
    if kind == b"#":
        if line not in (b"t", b"f"):
            raise ProtocolViolation(f"bad boolean {line!r}")
        return line == b"t", p
    if kind == b",":
        text = line.lower()
        if text in (b"inf", b"+inf"):
            return Double("inf"), p
        if text == b"-inf":
            return Double("-inf"), p
        try:
            return Double(float(line)), p
        except ValueError:
            raise ProtocolViolation(f"bad double {line!r}") from None
    if kind == b"(":
        return BigNumber(_int(line)), p
    if kind == b"!":
        data, p = _blob(buf, p, _int(line))
        return RespError(data), p
    if kind == b"=":
        data, p = _blob(buf, p, _int(line))
        if len(data) < 4 or data[3:4] != b":":
            raise ProtocolViolation(f"verbatim string without format: {data[:8]!r}")
        value = Verbatim(data[4:])
        value.format = data[:3]
        return value, p
    raise ProtocolViolation(f"unknown reply type {kind!r} at offset {pos}")


def encode(*args) -> bytes:
    """Encodes one command as a RESP multibulk request."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, str):
            arg = arg.encode()
        elif isinstance(arg, (int, float)) and not isinstance(arg, bool):
            arg = str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(out)


def split_replies(data: bytes) -> list[bytes]:
    """Splits a complete byte stream of replies into the raw bytes of each reply."""
    out, pos = [], 0
    while pos < len(data):
        _, end = parse(data, pos, [])
        out.append(data[pos:end])
        pos = end
    return out


class RespConn:
    """One client connection speaking raw RESP. Not thread-safe."""

    def __init__(self, host: str, port: int, timeout: float = DEFAULT_TIMEOUT):
        self.host, self.port = host, port
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(timeout)
        self.buf = bytearray()
        self.attributes: list = []

    # -- writing ---------------------------------------------------------------------------------
    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_command(self, *args) -> None:
        self.sock.sendall(encode(*args))

    # -- reading ---------------------------------------------------------------------------------
    def _fill(self, need: int) -> None:
        while len(self.buf) < need:
            chunk = self.sock.recv(max(65536, min(need - len(self.buf), 1 << 24)))
            if not chunk:
                raise ConnectionError(
                    f"connection closed by peer with {len(self.buf)} unparsed bytes: "
                    f"{bytes(self.buf[:200])!r}"
                )
            self.buf += chunk

    def _next(self):
        need = 1
        while True:
            self._fill(need)
            try:
                attrs: list = []
                value, end = parse(self.buf, 0, attrs)
                self.attributes.extend(attrs)
                return value, end
            except Incomplete as exc:
                need = max(exc.need, len(self.buf) + 1)

    def read_reply(self):
        value, end = self._next()
        del self.buf[:end]
        return value

    def read_raw_reply(self) -> bytes:
        _, end = self._next()
        raw = bytes(self.buf[:end])
        del self.buf[:end]
        return raw

    def read_raw_replies(self, count: int) -> list[bytes]:
        return [self.read_raw_reply() for _ in range(count)]

    def command(self, *args):
        self.send_command(*args)
        return self.read_reply()

    def raw_command(self, *args) -> bytes:
        self.send_command(*args)
        return self.read_raw_reply()

    def read_until_close(self, timeout: float = DEFAULT_TIMEOUT) -> tuple[bytes, bool]:
        """Reads until the peer closes. Returns (bytes, closed); closed is False on timeout.

        A reset after the last reply counts as closed (the peer dropped its end)."""
        deadline = time.monotonic() + timeout
        data = bytes(self.buf)
        self.buf.clear()
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                return data, True
            if not chunk:
                return data, True
            data += chunk
        return data, False

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
