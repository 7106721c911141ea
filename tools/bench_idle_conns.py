#!/usr/bin/python3
"""Open N idle client connections to a RESP server and measure its RSS growth.

Used by tools/idle_memory.sh.  Every connection sends one PING and waits for
+PONG so that the server has fully set the connection up (buffers allocated,
upstream connection made, ...).  VmRSS of --pid (and of each --extra-pid) is
read from /proc/PID/status after one warm-up connection (baseline) and again
after all N connections are established, idle, and a short settle time.

Prints one line of key=value pairs, e.g.
  conns=10000 errors=0 rss_before_kb=... rss_after_kb=... kb_per_conn=...
  extra_rss_before_kb=... extra_rss_after_kb=... extra_kb_per_conn=...
Exit status 1 if any connection failed.
"""
import argparse
import errno
import resource
import selectors
import socket
import sys
import time

PING = b"*1\r\n$4\r\nPING\r\n"


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for pid %d" % pid)


def ping_blocking(host, port, timeout):
    s = socket.create_connection((host, port), timeout=timeout)
    s.sendall(PING)
    buf = b""
    while not buf.endswith(b"\r\n"):
        chunk = s.recv(64)
        if not chunk:
            raise RuntimeError("warm-up connection closed by server")
        buf += chunk
    if not buf.startswith(b"+PONG"):
        raise RuntimeError("warm-up PING got %r" % buf)
    return s


def open_idle(host, port, n, inflight, deadline):
    """Return (list of open idle sockets, number of errors, first error)."""
    sel = selectors.DefaultSelector()
    done, errors, first_err = [], 0, None
    started = 0
    active = 0
    bufs = {}

    def fail(s, why):
        nonlocal errors, first_err, active
        errors += 1
        if first_err is None:
            first_err = why
        try:
            sel.unregister(s)
        except (KeyError, ValueError):
            pass
        s.close()
        active -= 1

    while (started < n or active > 0) and time.monotonic() < deadline:
        while started < n and active < inflight:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            rc = s.connect_ex((host, port))
            started += 1
            active += 1
            if rc not in (0, errno.EINPROGRESS):
                fail(s, "connect: %s" % errno.errorcode.get(rc, rc))
                continue
            sel.register(s, selectors.EVENT_WRITE, "connecting")
        for key, _ in sel.select(timeout=0.5):
            s = key.fileobj
            if key.data == "connecting":
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    fail(s, "connect: %s" % errno.errorcode.get(err, err))
                    continue
                try:
                    s.send(PING)  # 14 bytes always fit in a fresh socket buffer
                except OSError as e:
                    fail(s, "send: %s" % e)
                    continue
                bufs[s] = b""
                sel.modify(s, selectors.EVENT_READ, "reading")
            else:
                try:
                    chunk = s.recv(64)
                except BlockingIOError:
                    continue
                except OSError as e:
                    fail(s, "recv: %s" % e)
                    continue
                if not chunk:
                    fail(s, "closed by server")
                    continue
                b = bufs[s] + chunk
                if not b.endswith(b"\r\n"):
                    bufs[s] = b
                    continue
                del bufs[s]
                sel.unregister(s)
                active -= 1
                if b.startswith(b"+PONG"):
                    done.append(s)
                else:
                    errors += 1
                    first_err = first_err or "reply %r" % b[:80]
                    s.close()
    # anything still pending at the deadline counts as failed
    for key in list(sel.get_map().values()):
        fail(key.fileobj, "timeout")
    errors += n - started
    sel.close()
    return done, errors, first_err


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True, help="process whose RSS is measured")
    ap.add_argument("--extra-pid", type=int, default=0,
                    help="second process to measure (e.g. the proxy's backend redis)")
    ap.add_argument("--conns", type=int, default=10000)
    ap.add_argument("--inflight", type=int, default=200,
                    help="max connections being set up at once (keeps accept queues short)")
    ap.add_argument("--timeout", type=float, default=120.0, help="overall deadline, seconds")
    ap.add_argument("--settle", type=float, default=1.0, help="idle seconds before the 2nd RSS read")
    a = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = a.conns + 64
    if soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        if new < want:
            sys.exit("bench_idle_conns: RLIMIT_NOFILE hard limit %d too low for %d connections"
                     % (hard, a.conns))

    deadline = time.monotonic() + a.timeout
    warm = ping_blocking(a.host, a.port, 10)
    time.sleep(0.3)
    before = rss_kb(a.pid)
    extra_before = rss_kb(a.extra_pid) if a.extra_pid else None
    t0 = time.monotonic()
    socks, errors, first_err = open_idle(a.host, a.port, a.conns, a.inflight, deadline)
    setup_s = time.monotonic() - t0
    time.sleep(a.settle)
    after = rss_kb(a.pid)
    extra_after = rss_kb(a.extra_pid) if a.extra_pid else None
    # make sure the server did not drop them while idle: they must not be readable/closed
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    dropped = len(sel.select(timeout=0))
    sel.close()
    ok = len(socks)
    out = {
        "conns": ok,
        "errors": errors,
        "dropped_while_idle": dropped,
        "setup_s": "%.2f" % setup_s,
        "rss_before_kb": before,
        "rss_after_kb": after,
        "kb_per_conn": "%.2f" % ((after - before) / ok) if ok else "NA",
    }
    if a.extra_pid:
        out["extra_rss_before_kb"] = extra_before
        out["extra_rss_after_kb"] = extra_after
        out["extra_kb_per_conn"] = "%.2f" % ((extra_after - extra_before) / ok) if ok else "NA"
    if first_err:
        out["first_error"] = '"%s"' % first_err.replace('"', "'")
    print(" ".join("%s=%s" % kv for kv in out.items()), flush=True)
    for s in socks:
        s.close()
    warm.close()
    return 1 if errors or dropped else 0


if __name__ == "__main__":
    sys.exit(main())
