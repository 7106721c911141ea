#!/usr/bin/python3
"""Generate resp/command_table.cc from redis-server's own COMMAND reply.

Usage:
  tools/gen_command_table.py                      # throwaway redis-server on a free port
  tools/gen_command_table.py --host H --port P    # a server that is already running

By default a throwaway redis-server (from $PATH, or --redis-server) is started on a free
127.0.0.1 port in a temporary directory, with persistence off, and stopped afterwards. A running
server may have modules loaded; their commands then end up in the table too.

Every command and every subcommand ("client|setname") becomes one entry: lower-case name, arity,
the CommandFlag bits of resp/command_table.h, the legacy first/last/step key positions, the ACL
categories (AclCategory bits) and the key specs (KeySpec, with KeySpecFlag bits). Redis flags
with no CommandFlag bit (for example no_async_loading, no_mandatory_keys) are dropped; so are
categories and key spec flags the header has no bit for, with a note on stderr. The output is run through clang-format when it is installed, so regenerating
against the same server gives the same bytes.

Only the standard library is used: the RESP2 reply is parsed here.
"""
import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO_ROOT / "resp" / "command_table.cc"

# Redis flag string -> CommandFlag enumerator in resp/command_table.h, in bit order.
FLAG_BITS = {
    "write": "kFlagWrite",
    "readonly": "kFlagReadonly",
    "denyoom": "kFlagDenyOom",
    "admin": "kFlagAdmin",
    "pubsub": "kFlagPubsub",
    "noscript": "kFlagNoscript",
    "blocking": "kFlagBlocking",
    "loading": "kFlagLoading",
    "stale": "kFlagStale",
    "skip_monitor": "kFlagSkipMonitor",
    "fast": "kFlagFast",
    "no_auth": "kFlagNoAuth",
    "may_replicate": "kFlagMayReplicate",
    "no_multi": "kFlagNoMulti",
    "movablekeys": "kFlagMovableKeys",
    "allow_busy": "kFlagAllowBusy",
}

# Flags Redis 7.0 reports that the table deliberately has no bit for. Anything outside both
# FLAG_BITS and this set is reported on stderr so a newer server's additions are noticed.
IGNORED_FLAGS = {
    "no_async_loading",
    "no_mandatory_keys",
    "asking",
    "module",
    "sentinel",
    "only_sentinel",
    "skip_slowlog",
    "touches_arbitrary_keys",
    "allow_cross_slot_keys",
}

# Redis ACL category -> AclCategory enumerator, in bit order (ACL CAT's order).
ACL_CATEGORY_BITS = {
    "keyspace": "kAclKeyspace",
    "read": "kAclRead",
    "write": "kAclWrite",
    "set": "kAclSet",
    "sortedset": "kAclSortedset",
    "list": "kAclList",
    "hash": "kAclHash",
    "string": "kAclString",
    "bitmap": "kAclBitmap",
    "hyperloglog": "kAclHyperloglog",
    "geo": "kAclGeo",
    "stream": "kAclStream",
    "pubsub": "kAclPubsub",
    "admin": "kAclAdmin",
    "fast": "kAclFast",
    "slow": "kAclSlow",
    "blocking": "kAclBlocking",
    "dangerous": "kAclDangerous",
    "connection": "kAclConnection",
    "transaction": "kAclTransaction",
    "scripting": "kAclScripting",
}

# Key spec flag -> KeySpecFlag enumerator, in bit order.
KEY_SPEC_FLAG_BITS = {
    "ro": "kKeyRO",
    "rw": "kKeyRW",
    "ow": "kKeyOW",
    "rm": "kKeyRM",
    "access": "kKeyAccess",
    "update": "kKeyUpdate",
    "insert": "kKeyInsert",
    "delete": "kKeyDelete",
    "not_key": "kKeyNotKey",
    "incomplete": "kKeyIncomplete",
    "variable_flags": "kKeyVariableFlags",
}

# Fields of one COMMAND entry (Redis 7): name, arity, flags, first key, last key, key step,
# ACL categories, tips, key specs, subcommands.
NAME, ARITY, FLAGS, FIRST_KEY, LAST_KEY, KEY_STEP, ACL_CATEGORIES = range(7)
KEY_SPECS = 8
SUBCOMMANDS = 9


class RespError(Exception):
    pass


def read_reply(f):
    """Reads one RESP2 value from the binary file f. Bulk and simple strings become str."""
    line = f.readline()
    if not line.endswith(b"\r\n"):
        raise RespError("connection closed mid-reply")
    kind, body = line[:1], line[1:-2]
    if kind == b"+":
        return body.decode()
    if kind == b"-":
        raise RespError(body.decode())
    if kind == b":":
        return int(body)
    if kind == b"$":
        n = int(body)
        if n < 0:
            return None
        data = f.read(n + 2)
        if len(data) != n + 2:
            raise RespError("connection closed mid-reply")
        return data[:-2].decode()
    if kind == b"*":
        n = int(body)
        if n < 0:
            return None
        return [read_reply(f) for _ in range(n)]
    raise RespError(f"unexpected reply type {kind!r}")


def encode_command(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Connection:
    def __init__(self, host, port, timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.file = self.sock.makefile("rb")

    def call(self, *args):
        self.sock.sendall(encode_command(*args))
        return read_reply(self.file)

    def close(self):
        self.file.close()
        self.sock.close()


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_ping(proc, port, deadline):
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            conn = Connection("127.0.0.1", port, timeout=1.0)
            try:
                if conn.call("PING") == "PONG":
                    return True
            finally:
                conn.close()
        except (OSError, RespError):
            pass
        time.sleep(0.05)
    return False


def start_throwaway(redis_server, tmpdir):
    """Starts redis-server on a free loopback port; returns (process, port).

    The port is free when chosen but another process may take it before redis-server binds, so
    a server that exits early is retried on a new port.
    """
    for attempt in range(5):
        port = free_port()
        log = open(os.path.join(tmpdir, f"redis-{attempt}.log"), "wb")
        proc = subprocess.Popen(
            [redis_server, "--port", str(port), "--bind", "127.0.0.1", "--dir", tmpdir,
             "--save", "", "--appendonly", "no", "--daemonize", "no"],
            stdout=log, stderr=subprocess.STDOUT)
        log.close()
        if wait_for_ping(proc, port, time.monotonic() + 10):
            return proc, port
        stop(proc)
    sys.exit(f"gen_command_table: could not start {redis_server}; logs in {tmpdir}")


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def server_version(conn):
    for line in conn.call("INFO", "server").splitlines():
        if line.startswith("redis_version:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def flatten(entries):
    """Yields every command and, recursively, its subcommands as dicts."""
    for e in entries:
        subs = e[SUBCOMMANDS] if len(e) > SUBCOMMANDS and e[SUBCOMMANDS] else []
        yield {
            "name": e[NAME].lower(),
            "arity": e[ARITY],
            "flags": [f.lower() for f in e[FLAGS]],
            "first_key": e[FIRST_KEY],
            "last_key": e[LAST_KEY],
            "key_step": e[KEY_STEP],
            "has_subcommands": bool(subs),
            "categories": [c.lower().lstrip("@") for c in e[ACL_CATEGORIES]],
            "key_specs": [key_spec(k) for k in e[KEY_SPECS]] if len(e) > KEY_SPECS else [],
        }
        yield from flatten(subs)


def pairs(flat):
    """A RESP2 map (a flat list of alternating keys and values) as a dict."""
    return dict(zip(flat[::2], flat[1::2]))


def key_spec(flat):
    """One key spec of COMMAND as a dict: flags, begin_search and find_keys with their specs."""
    spec = pairs(flat)
    begin = pairs(spec["begin_search"])
    find = pairs(spec["find_keys"])
    return {
        "flags": [f.lower() for f in spec["flags"]],
        "begin": begin["type"],
        "begin_spec": pairs(begin["spec"]) if begin["spec"] else {},
        "find": find["type"],
        "find_spec": pairs(find["spec"]) if find["spec"] else {},
    }


def bits_expression(names, table, unknown, ignored=()):
    bits = []
    for f in names:
        if f in table:
            bits.append(table[f])
        elif f not in ignored:
            unknown.add(f)
    order = list(table.values())
    bits.sort(key=order.index)
    return " | ".join(bits) if bits else "0"


def flag_expression(flags, unknown):
    return bits_expression(flags, FLAG_BITS, unknown, IGNORED_FLAGS)


def key_spec_initializer(spec, unknown):
    """A KeySpec aggregate: flags, begin, begin_at, keyword, find, last, step, limit, keynum_at,
    keynum_first."""
    flags = bits_expression(spec["flags"], KEY_SPEC_FLAG_BITS, unknown)
    b, f = spec["begin_spec"], spec["find_spec"]
    if spec["begin"] == "index":
        begin = f'KeySpec::Begin::kIndex, {b["index"]}, ""'
    elif spec["begin"] == "keyword":
        begin = f'KeySpec::Begin::kKeyword, {b["startfrom"]}, "{b["keyword"].lower()}"'
    else:
        begin = 'KeySpec::Begin::kUnknown, 0, ""'
    if spec["find"] == "range":
        find = f'KeySpec::Find::kRange, {f["lastkey"]}, {f["keystep"]}, {f["limit"]}, 0, 0'
    elif spec["find"] == "keynum":
        find = f'KeySpec::Find::kKeynum, 0, {f["keystep"]}, 0, {f["keynumidx"]}, {f["firstkey"]}'
    else:
        find = "KeySpec::Find::kUnknown, 0, 0, 0, 0, 0"
    return f"{{{flags}, {begin}, {find}}}"


# HEADER is a str.format template; FOOTER is literal.
HEADER = """\
// Generated by tools/gen_command_table.py from redis-server {version}. Do not edit by hand:
// rerun the generator to update it.

#include "resp/command_table.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <iterator>

namespace readthru::resp {{
namespace {{

// The key specs of every command, in table order; each entry's key_specs is a slice of it.
// Fields: flags, begin, begin_at, keyword, find, last, step, limit, keynum_at, keynum_first.
constexpr KeySpec kKeySpecs[] = {{
{key_specs}}};

constexpr std::span<const KeySpec> specs(size_t at, size_t count) {{
  return {{kKeySpecs + at, count}};
}}

// Sorted by name (byte order): allCommands() promises that order.
constexpr CommandInfo kCommands[] = {{
"""

FOOTER = """\
};

static_assert(std::ranges::adjacent_find(kCommands, std::ranges::greater_equal{}, &CommandInfo::name) ==
                  std::end(kCommands),
              "kCommands must be sorted by name without duplicates");

constexpr size_t kMaxNameLength = [] {
  size_t n = 0;
  for (const CommandInfo& c : kCommands) n = std::max(n, c.name.size());
  return n;
}();

// Holds a lower-cased lookup key. A key longer than every name cannot match, so it never needs
// more room than this.
struct NameBuffer {
  std::array<char, kMaxNameLength> bytes;
  size_t size = 0;

  // Appends `part` lower-cased (ASCII: every name is ASCII, so other bytes can never match).
  // Returns false when the key would outgrow every name.
  bool appendLower(std::string_view part) {
    if (part.size() > bytes.size() - size) return false;
    for (char c : part) {
      bytes[size++] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c;
    }
    return true;
  }

  std::string_view view() const { return {bytes.data(), size}; }
};

// FNV-1a. Computed at compile time for the index and once per lookup.
constexpr uint32_t hashName(std::string_view name) {
  uint32_t h = 2166136261u;
  for (char c : name) {
    h ^= static_cast<unsigned char>(c);
    h *= 16777619u;
  }
  return h;
}

// Open-addressing hash index over kCommands, built at compile time: slot holds index + 1, 0 is
// empty. At most half full, so probe runs stay short and every probe ends at an empty slot.
constexpr size_t kSlots = std::bit_ceil(std::size(kCommands) * 2);
static_assert(std::size(kCommands) < 0xffff, "slot entries are uint16_t");

constexpr std::array<uint16_t, kSlots> kIndex = [] {
  std::array<uint16_t, kSlots> slots{};
  for (size_t i = 0; i < std::size(kCommands); ++i) {
    size_t s = hashName(kCommands[i].name) & (kSlots - 1);
    while (slots[s] != 0) s = (s + 1) & (kSlots - 1);
    slots[s] = static_cast<uint16_t>(i + 1);
  }
  return slots;
}();

const CommandInfo* findExact(std::string_view lowered) {
  for (size_t s = hashName(lowered) & (kSlots - 1); kIndex[s] != 0; s = (s + 1) & (kSlots - 1)) {
    const CommandInfo& c = kCommands[kIndex[s] - 1];
    if (c.name == lowered) return &c;
  }
  return nullptr;
}

}  // namespace

const CommandInfo* findCommand(std::string_view name) {
  // Redis answers "unknown command" for "client|list" sent as a command name; subcommand entries
  // are reachable only through findSubcommand.
  if (name.find('|') != std::string_view::npos) return nullptr;
  NameBuffer key;
  if (!key.appendLower(name)) return nullptr;
  return findExact(key.view());
}

const CommandInfo* findSubcommand(std::string_view container, std::string_view sub) {
  NameBuffer key;
  if (!key.appendLower(container) || !key.appendLower("|") || !key.appendLower(sub)) {
    return nullptr;
  }
  return findExact(key.view());
}

std::span<const CommandInfo> allCommands() { return kCommands; }

}  // namespace readthru::resp
"""


def render(version, commands):
    unknown = set()
    spec_lines = []
    spec_count = 0
    entries = []
    for c in commands:
        flags = flag_expression(c["flags"], unknown)
        has_subs = "true" if c["has_subcommands"] else "false"
        categories = bits_expression(c["categories"], ACL_CATEGORY_BITS, unknown)
        count = len(c["key_specs"])
        specs = f"specs({spec_count}, {count})" if count else "{}"
        if count:
            spec_lines.append(f"    // {c['name']}\n")
        for spec in c["key_specs"]:
            spec_lines.append(f"    {key_spec_initializer(spec, unknown)},\n")
        spec_count += count
        entries.append(
            f'    {{"{c["name"]}", {c["arity"]}, {flags}, {c["first_key"]}, {c["last_key"]}, '
            f'{c["key_step"]}, {has_subs}, {categories}, {specs}}},\n')
    lines = [HEADER.format(version=version, key_specs="".join(spec_lines))]
    lines.extend(entries)
    lines.append(FOOTER)
    return "".join(lines), unknown


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", help="use a running server instead of starting one")
    parser.add_argument("--port", type=int, help="port of the running server (with --host)")
    parser.add_argument("--redis-server", default="redis-server",
                        help="redis-server binary for the throwaway instance")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--no-format", action="store_true", help="skip clang-format")
    args = parser.parse_args()

    proc = None
    tmpdir = None
    try:
        if args.host or args.port:
            host, port = args.host or "127.0.0.1", args.port or 6379
        else:
            tmpdir = tempfile.mkdtemp(prefix="gen_command_table.")
            proc, port = start_throwaway(args.redis_server, tmpdir)
            host = "127.0.0.1"
        try:
            conn = Connection(host, port)
            try:
                version = server_version(conn)
                entries = conn.call("COMMAND")
            finally:
                conn.close()
        except (OSError, RespError) as e:
            sys.exit(f"gen_command_table: reading COMMAND from {host}:{port}: {e}")
    finally:
        if proc is not None:
            stop(proc)
        if tmpdir is not None:
            shutil.rmtree(tmpdir, ignore_errors=True)

    commands = sorted(flatten(entries), key=lambda c: c["name"].encode())
    names = [c["name"] for c in commands]
    if len(set(names)) != len(names):
        sys.exit("gen_command_table: COMMAND returned a name twice")

    text, unknown = render(version, commands)
    if unknown:
        print("gen_command_table: flags or categories with no bit in resp/command_table.h, "
              "dropped: " +
              ", ".join(sorted(unknown)), file=sys.stderr)
    args.output.write_text(text)

    clang_format = shutil.which("clang-format")
    if not args.no_format:
        if clang_format:
            subprocess.run([clang_format, "-i", f"--style=file:{REPO_ROOT / '.clang-format'}", str(args.output)], check=True)
        else:
            print("gen_command_table: clang-format not found; output left unformatted",
                  file=sys.stderr)
    print(f"gen_command_table: wrote {len(commands)} entries from redis-server {version} "
          f"to {args.output}")


if __name__ == "__main__":
    main()
