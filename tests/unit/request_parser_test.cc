#include "resp/request_parser.h"

#include <algorithm>
#include <cstdio>
#include <forward_list>
#include <initializer_list>
#include <ostream>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <doctest/doctest.h>

#include "resp/errors.h"

namespace readthru::resp {
namespace {

using namespace std::string_literals;

// What a client connection gets out of a byte stream, however it was cut into reads.
struct Outcome {
  std::vector<std::vector<std::string>> commands;
  std::vector<std::string> raws;  // Command::raw of each command
  std::vector<bool> inline_flags;
  std::vector<size_t> ends;  // stream offset just after each command: the consumed bytes add up
  std::string error;         // redis-server's text, empty when the stream parsed cleanly
  size_t consumed = 0;       // sum of every `consumed` returned
  std::string violation;     // a broken parse() contract, empty when none

  bool operator==(const Outcome&) const = default;
};

std::string escape(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\\' || c == '"') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c < 0x20 || c >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

std::ostream& operator<<(std::ostream& os, const Outcome& o) {
  os << "{";
  for (size_t i = 0; i < o.commands.size(); ++i) {
    os << (o.inline_flags[i] ? " inline[" : " multibulk[");
    for (const auto& a : o.commands[i]) os << " \"" << escape(a) << "\"";
    os << " ] raw=\"" << escape(o.raws[i]) << "\" end=" << o.ends[i] << ";";
  }
  os << " error=\"" << o.error << "\" consumed=" << o.consumed;
  if (!o.violation.empty()) os << " VIOLATION: " << o.violation;
  return os << " }";
}

bool within(std::string_view inner, std::string_view outer) {
  return inner.data() >= outer.data() && inner.data() + inner.size() <= outer.data() + outer.size();
}

// Feeds `stream` as reads ending at each offset of `cuts` (ascending) and then at its end, the way
// a client connection does: the unconsumed bytes stay at the front of the buffer, the next read is
// appended behind them, and parsing always restarts at the first unconsumed byte.
Outcome feed(std::string_view stream, const std::vector<size_t>& cuts, const ParserLimits& limits,
             bool authenticated = true) {
  RequestParser parser(&limits);
  Outcome o;
  std::string buf;
  size_t prev = 0;
  auto read = [&](size_t end) {
    buf.append(stream.substr(prev, end - prev));
    prev = end;
    while (true) {
      size_t consumed = 987654321;
      Command cmd;
      ParseStatus st = parser.parse(buf.data(), buf.size(), &consumed, &cmd, authenticated);
      if (consumed > buf.size()) {
        o.violation = "consumed " + std::to_string(consumed) + " of " + std::to_string(buf.size());
        return false;
      }
      o.consumed += consumed;
      if (st == ParseStatus::kError) {
        o.error = parser.error();
        return false;
      }
      if (st == ParseStatus::kNeedMore) {
        buf.erase(0, consumed);
        return true;
      }
      if (cmd.raw.data() + cmd.raw.size() != buf.data() + consumed ||
          !within(cmd.raw, std::string_view(buf.data(), consumed))) {
        o.violation = "raw is not the tail of the consumed bytes";
        return false;
      }
      std::vector<std::string> argv;
      for (std::string_view a : cmd.argv) {
        if (!cmd.is_inline && !within(a, cmd.raw)) {
          o.violation = "a multibulk argument lies outside raw";
          return false;
        }
        argv.emplace_back(a);
      }
      o.commands.push_back(std::move(argv));
      o.raws.emplace_back(cmd.raw);
      o.inline_flags.push_back(cmd.is_inline);
      o.ends.push_back(o.consumed);
      buf.erase(0, consumed);
    }
  };
  for (size_t cut : cuts) {
    if (!read(cut)) return o;
  }
  read(stream.size());
  return o;
}

Outcome feedWhole(std::string_view stream, const ParserLimits& limits, bool auth = true) {
  return feed(stream, {}, limits, auth);
}

Outcome feedByteByByte(std::string_view stream, const ParserLimits& limits, bool auth = true) {
  std::vector<size_t> cuts;
  for (size_t i = 1; i < stream.size(); ++i) cuts.push_back(i);
  return feed(stream, cuts, limits, auth);
}

// Asserts that every way of cutting `stream` into one, two or one-byte reads gives `expected`.
void checkEverySplit(std::string_view stream, const Outcome& expected, const ParserLimits& limits,
                     bool auth = true) {
  CHECK(feedWhole(stream, limits, auth) == expected);
  CHECK(feedByteByByte(stream, limits, auth) == expected);
  for (size_t i = 1; i < stream.size(); ++i) {
    CAPTURE(i);
    Outcome got = feed(stream, {i}, limits, auth);
    if (!(got == expected)) {
      CHECK(got == expected);
      return;  // one split is enough to show
    }
  }
}

std::string multibulk(std::initializer_list<std::string_view> argv) {
  std::string out = "*" + std::to_string(argv.size()) + "\r\n";
  for (std::string_view a : argv) {
    out += "$" + std::to_string(a.size()) + "\r\n";
    out.append(a);
    out += "\r\n";
  }
  return out;
}

// Builds a stream and, alongside, the outcome a correct parser must produce for it.
struct StreamBuilder {
  std::string bytes;
  Outcome expected;

  void command(const std::string& request, std::vector<std::string> argv, bool is_inline) {
    bytes += request;
    expected.commands.push_back(std::move(argv));
    expected.raws.push_back(request);
    expected.inline_flags.push_back(is_inline);
    expected.ends.push_back(bytes.size());
    expected.consumed = bytes.size();
  }
  void multibulk(std::initializer_list<std::string_view> argv) {
    command(resp::multibulk(argv), std::vector<std::string>(argv.begin(), argv.end()), false);
  }
  void skipped(const std::string& request) {
    bytes += request;
    expected.consumed = bytes.size();
  }
};

// Binary values: CR, LF and NUL inside bulks, and bytes that look like protocol.
const std::string kBinary = "a\r\n\0*1\r\n$3\r\n\0"s;
const std::string kCrlfs = "\r\n\r\n\r\n";

StreamBuilder mixedStream() {
  StreamBuilder b;
  b.multibulk({"SET", "key", kBinary});
  b.skipped("\r\n");
  b.command("SET k \"a b\"\r\n", {"SET", "k", "a b"}, true);
  b.skipped("*0\r\n");
  b.command("ECHO \"\\x41\\n\" 'it\\'s'\n", {"ECHO", "A\n", "it's"}, true);
  b.skipped("*-1\r\n");
  b.multibulk({"GET", ""});
  b.command("PING\r\n", {"PING"}, true);
  b.multibulk({"MSET", "\0"s, kCrlfs, "$5\r\n"});
  b.skipped(" \t  \r\n");
  b.multibulk({"ECHO", std::string(40, 'x')});
  b.command("  GET\t key  \r\n", {"GET", "key"}, true);
  b.skipped("*0\r\n");
  return b;
}

TEST_CASE("request parser: a mixed stream, fed whole, at every split and byte by byte") {
  ParserLimits limits;
  StreamBuilder b = mixedStream();
  REQUIRE(feedWhole(b.bytes, limits) == b.expected);
  checkEverySplit(b.bytes, b.expected, limits);
}

TEST_CASE("request parser: a mixed stream cut at every pair of points") {
  ParserLimits limits;
  StreamBuilder b = mixedStream();
  size_t n = b.bytes.size();
  size_t bad = 0;
  for (size_t i = 1; i < n && bad == 0; ++i) {
    for (size_t j = i + 1; j < n; ++j) {
      Outcome got = feed(b.bytes, {i, j}, limits);
      if (!(got == b.expected)) {
        CAPTURE(i);
        CAPTURE(j);
        CHECK(got == b.expected);
        ++bad;
        break;
      }
    }
  }
  CHECK(bad == 0);
}

TEST_CASE("request parser: a mixed stream cut at random points") {
  ParserLimits limits;
  StreamBuilder b = mixedStream();
  std::mt19937 rng(20240601);
  for (int round = 0; round < 2000; ++round) {
    std::uniform_int_distribution<size_t> pick(1, b.bytes.size() - 1);
    std::vector<size_t> cuts;
    int k = std::uniform_int_distribution<int>(1, 12)(rng);
    for (int i = 0; i < k; ++i) cuts.push_back(pick(rng));
    std::sort(cuts.begin(), cuts.end());
    cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
    Outcome got = feed(b.bytes, cuts, limits);
    if (!(got == b.expected)) {
      CAPTURE(round);
      CHECK(got == b.expected);
      break;
    }
  }
}

TEST_CASE("request parser: whole requests and byte-by-byte reads agree on unusual headers") {
  // A request that arrives whole takes a one-pass path that accepts only the usual shape; all
  // else falls back to the byte-by-byte path. Both must end the same way, error texts included.
  const std::vector<std::string> streams = {
      "*2\r\n$3\r\nGET\r\n$0\r\n\r\n"s,              // an empty argument
      "*1\r\n$03\r\nabc\r\n"s,                       // leading zero in a length
      "*01\r\n$4\r\nPING\r\n"s,                      // leading zero in the count
      "*2\r\n$3\r\nGETxx$1\r\na\r\n"s,               // the bytes after a payload are skipped
      "*1\r$4\r\nPING\r\n"s,                         // CR without LF after the count
      "*1\r\n$4\rXPING\r\n"s,                        // CR without LF after a length
      "*1\r\n$-1\r\n"s,                              // negative length
      "*1\r\n$+4\r\nPING\r\n"s,                      // '+' sign
      "*1\r\n$4 \r\nPING\r\n"s,                      // a space after the digits
      "*1\r\n$99999999999999999999\r\nx\r\n"s,       // past int64
      "*1\r\n$123456789012345678\r\nx\r\n"s,         // 18 digits, past the bulk limit
      "*1\r\n$4\0\r\nPING\r\n"s,                     // NUL in a length
      "*1\r\n$4\r\nPI\0G\r\n*1\r\n$4\r\nPING\r\n"s,  // NUL in a payload
      "*3\r\n$1\r\na\r\n"s,                          // incomplete
      "*2\r\n:3\r\nGET\r\n"s,                        // not a bulk
      "*11\r\n" + std::string(11, 'x'),              // past the pre-auth count limit
      "*1\r\n$20000\r\n" + std::string(20002, 'y'),  // past the pre-auth bulk limit
      "*4\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n"s,  // past the configured count
      "*1\r\n$11\r\nhello world\r\n"s,                        // past the configured bulk
  };
  for (bool auth : {true, false}) {
    for (const ParserLimits& limits : {ParserLimits{}, [] {
                                         ParserLimits l;
                                         l.max_multibulk = 3;
                                         l.max_bulk = 10;
                                         return l;
                                       }()}) {
      for (const std::string& s : streams) {
        CAPTURE(escape(s));
        CAPTURE(auth);
        CHECK(feedWhole(s, limits, auth) == feedByteByByte(s, limits, auth));
      }
    }
  }
}

TEST_CASE("request parser: one call yields one command and the exact bytes it used") {
  ParserLimits limits;
  RequestParser parser(&limits);
  std::string stream = multibulk({"GET", "a"}) + "PING\r\n" + multibulk({"GET", "b"});
  size_t consumed = 0;
  Command cmd;
  REQUIRE(parser.parse(stream.data(), stream.size(), &consumed, &cmd) == ParseStatus::kCommand);
  CHECK(consumed == multibulk({"GET", "a"}).size());
  CHECK(cmd.argv == std::vector<std::string_view>{"GET", "a"});
  CHECK(cmd.raw == multibulk({"GET", "a"}));
  CHECK_FALSE(cmd.is_inline);
  // The caller's contract: drop `consumed` bytes, pass the rest.
  size_t off = consumed;
  REQUIRE(parser.parse(stream.data() + off, stream.size() - off, &consumed, &cmd) ==
          ParseStatus::kCommand);
  CHECK(consumed == 6);
  CHECK(cmd.argv == std::vector<std::string_view>{"PING"});
  CHECK(cmd.raw == "PING\r\n");
  CHECK(cmd.is_inline);
  off += consumed;
  REQUIRE(parser.parse(stream.data() + off, stream.size() - off, &consumed, &cmd) ==
          ParseStatus::kCommand);
  CHECK(off + consumed == stream.size());
  CHECK(cmd.argv == std::vector<std::string_view>{"GET", "b"});
  // Multibulk arguments are views into the caller's buffer, never copies.
  CHECK(cmd.argv[1].data() == stream.data() + stream.size() - 3);
  REQUIRE(parser.parse(stream.data() + stream.size(), 0, &consumed, &cmd) ==
          ParseStatus::kNeedMore);
  CHECK(consumed == 0);
}

TEST_CASE("request parser: empty requests are consumed and skipped") {
  ParserLimits limits;
  for (std::string empty : {"\r\n"s, "\n"s, "   \r\n"s, "*0\r\n"s, "*-1\r\n"s, "*-100\r\n"s}) {
    CAPTURE(escape(empty));
    RequestParser parser(&limits);
    size_t consumed = 0;
    Command cmd;
    CHECK(parser.parse(empty.data(), empty.size(), &consumed, &cmd) == ParseStatus::kNeedMore);
    CHECK(consumed == empty.size());
    // Followed by a command in the same buffer, both go in one call.
    std::string both = empty + "PING\r\n";
    CHECK(parser.parse(both.data(), both.size(), &consumed, &cmd) == ParseStatus::kCommand);
    CHECK(consumed == both.size());
    CHECK(cmd.raw == "PING\r\n");
    // Followed by a partial command: only the empty request is consumed.
    std::string partial = empty + "*1\r\n$4\r\nPI";
    CHECK(parser.parse(partial.data(), partial.size(), &consumed, &cmd) == ParseStatus::kNeedMore);
    CHECK(consumed == empty.size());
    std::string rest = "*1\r\n$4\r\nPING\r\n";
    CHECK(parser.parse(rest.data(), rest.size(), &consumed, &cmd) == ParseStatus::kCommand);
    CHECK(consumed == rest.size());
    CHECK(cmd.argv == std::vector<std::string_view>{"PING"});
  }
}

TEST_CASE("request parser: bytesWanted() sizes a partial large bulk") {
  ParserLimits limits;
  RequestParser parser(&limits);
  std::string request = multibulk({"SET", "k", std::string(100000, 'v')});
  size_t header_end = request.find("$100000\r\n") + 9;
  size_t consumed = 0;
  Command cmd;

  CHECK(parser.bytesWanted() == 0);
  // The bulk's header is not complete yet: its size is unknown.
  CHECK(parser.parse(request.data(), header_end - 3, &consumed, &cmd) == ParseStatus::kNeedMore);
  CHECK(consumed == 0);
  CHECK(parser.bytesWanted() == 0);
  // Header read, payload partial: the request needs its whole length from its first byte.
  CHECK(parser.parse(request.data(), header_end + 10, &consumed, &cmd) == ParseStatus::kNeedMore);
  CHECK(consumed == 0);
  CHECK(parser.bytesWanted() == request.size());
  CHECK(parser.parse(request.data(), request.size() - 1, &consumed, &cmd) ==
        ParseStatus::kNeedMore);
  CHECK(parser.bytesWanted() == request.size());
  CHECK(parser.parse(request.data(), request.size(), &consumed, &cmd) == ParseStatus::kCommand);
  CHECK(consumed == request.size());
  CHECK(cmd.argv.size() == 3);
  CHECK(cmd.argv[2].size() == 100000);
  CHECK(parser.bytesWanted() == 0);
}

// Expects `stream` to end in the protocol error `message` after `commands` commands, at every
// split.
void checkError(std::string_view stream, std::string_view message, size_t commands,
                const ParserLimits& limits, bool auth = true) {
  Outcome whole = feedWhole(stream, limits, auth);
  CHECK(whole.violation == "");
  CHECK(whole.error == message);
  CHECK(whole.commands.size() == commands);
  checkEverySplit(stream, whole, limits, auth);
}

TEST_CASE("request parser: redis-server 7's protocol errors") {
  ParserLimits limits;
  const std::string ping = multibulk({"PING"});

  checkError("*abc\r\n", err::kInvalidMultibulkLength, 0, limits);
  checkError(ping + "*abc\r\n", "ERR Protocol error: invalid multibulk length", 1, limits);
  checkError("*\r\n", err::kInvalidMultibulkLength, 0, limits);
  checkError("*01\r\n$4\r\nPING\r\n", err::kInvalidMultibulkLength, 0, limits);
  checkError("*+1\r\n$4\r\nPING\r\n", err::kInvalidMultibulkLength, 0, limits);
  checkError("*1 \r\n$4\r\nPING\r\n", err::kInvalidMultibulkLength, 0, limits);
  checkError("*99999999999999999999\r\n", err::kInvalidMultibulkLength, 0, limits);

  checkError("*1\r\n+foo\r\n", "ERR Protocol error: expected '$', got '+'", 0, limits);
  checkError(ping + "*1\r\nPING\r\n", "ERR Protocol error: expected '$', got 'P'", 1, limits);
  checkError("*2\r\n$3\r\nGET\r\n:1\r\n", "ERR Protocol error: expected '$', got ':'", 0, limits);

  checkError("*1\r\n$abc\r\n", "ERR Protocol error: invalid bulk length", 0, limits);
  checkError("*1\r\n$abc\r\n", err::kInvalidBulkLength, 0, limits);
  checkError("*1\r\n$-1\r\n", err::kInvalidBulkLength, 0, limits);
  checkError("*1\r\n$\r\n", err::kInvalidBulkLength, 0, limits);
  checkError("*1\r\n$04\r\nPING\r\n", err::kInvalidBulkLength, 0, limits);
  // 512 MB is proto-max-bulk-len's default; one byte more is refused before it is read.
  checkError("*1\r\n$536870913\r\n", err::kInvalidBulkLength, 0, limits);

  checkError("SET k \"a b\r\n", "ERR Protocol error: unbalanced quotes in request", 0, limits);
  checkError("PING\r\nSET k 'a b\r\n", err::kUnbalancedQuotes, 1, limits);
  checkError("ECHO \"a\"b\r\n", err::kUnbalancedQuotes, 0, limits);
}

TEST_CASE("request parser: configured limits") {
  ParserLimits limits;
  limits.max_bulk = 100;
  limits.max_multibulk = 5;
  limits.max_inline = 32;

  // A bulk at the limit is fine; over it is an invalid bulk length.
  std::string at_limit = multibulk({"ECHO", std::string(100, 'x')});
  Outcome ok = feedWhole(at_limit, limits);
  CHECK(ok.error == "");
  CHECK(ok.commands.size() == 1);
  checkError("*1\r\n$101\r\n", err::kInvalidBulkLength, 0, limits);

  checkError("*5\r\n", "", 0, limits);  // within the limit: waits for the arguments
  checkError("*6\r\n", err::kInvalidMultibulkLength, 0, limits);

  // An inline request without a newline may not grow past max_inline.
  checkError(std::string(32, 'a'), "", 0, limits);
  checkError(std::string(33, 'a'), "ERR Protocol error: too big inline request", 0, limits);
  checkError("PING\r\n" + std::string(40, 'a'), err::kTooBigInline, 1, limits);
  // A NUL ends the search for the newline, as redis-server's strchr() does.
  checkError("PI\0NG\r\n"s, "", 0, limits);
  checkError("PI\0NG\r\n"s + std::string(30, 'a'), err::kTooBigInline, 0, limits);

  // The same for a multibulk count line without its '\r'.
  checkError("*" + std::string(31, '1'), "", 0, limits);
  checkError("*" + std::string(40, '1'), "ERR Protocol error: too big mbulk count string", 0,
             limits);
  // And a bulk count line.
  checkError("*1\r\n$" + std::string(40, '1'), "ERR Protocol error: too big bulk count string", 0,
             limits);
}

TEST_CASE("request parser: default inline and count-line limits are 64 KB") {
  ParserLimits limits;
  CHECK(feedWhole(std::string(64 * 1024, 'a'), limits).error == "");
  CHECK(feedWhole(std::string(64 * 1024 + 1, 'a'), limits).error == err::kTooBigInline);
  // A long line with its newline is not an error (redis-server checks only while it waits).
  Outcome long_line = feedWhole("ECHO " + std::string(70 * 1024, 'a') + "\r\n", limits);
  CHECK(long_line.error == "");
  REQUIRE(long_line.commands.size() == 1);
  CHECK(long_line.commands[0][1].size() == 70 * 1024);

  CHECK(feedWhole("*" + std::string(64 * 1024, '1'), limits).error ==
        "ERR Protocol error: too "
        "big mbulk count string");
  CHECK(feedWhole("*1\r\n$" + std::string(64 * 1024, '1'), limits).error == err::kTooBigBulkCount);
}

TEST_CASE("request parser: limits before authentication") {
  ParserLimits limits;
  std::string argc10 = "*10\r\n";
  for (int i = 0; i < 10; ++i) argc10 += "$1\r\na\r\n";
  Outcome ok = feedWhole(argc10, limits, /*auth=*/false);
  CHECK(ok.error == "");
  CHECK(ok.commands.size() == 1);
  checkError("*11\r\n", "ERR Protocol error: unauthenticated multibulk length", 0, limits, false);
  checkError("*11\r\n", "", 0, limits, true);
  // A bad count is invalid first, unauthenticated second.
  checkError("*abc\r\n", err::kInvalidMultibulkLength, 0, limits, false);

  Outcome bulk_ok = feedWhole(multibulk({"AUTH", std::string(16384, 'p')}), limits, false);
  CHECK(bulk_ok.error == "");
  CHECK(bulk_ok.commands.size() == 1);
  checkError("*2\r\n$4\r\nAUTH\r\n$16385\r\n", "ERR Protocol error: unauthenticated bulk length", 0,
             limits, false);
  checkError("*2\r\n$4\r\nAUTH\r\n$16385\r\n", "", 0, limits, true);
  checkError("*1\r\n$-1\r\n", err::kInvalidBulkLength, 0, limits, false);
}

struct InlineCase {
  std::string line;
  std::vector<std::string> argv;  // empty with `unbalanced`
  bool unbalanced = false;
};

TEST_CASE("request parser: inline quoting as redis-server's sdssplitargs") {
  const std::vector<InlineCase> cases = {
      {R"(SET k "a b")", {"SET", "k", "a b"}},
      {R"(SET k "a\nb")", {"SET", "k", "a\nb"}},
      {R"(ECHO "\r\t\b\a\\\"")", {"ECHO", "\r\t\b\a\\\""}},
      {R"(ECHO "\x41\x7a\x00")", {"ECHO", "Az\0"s}},
      {R"(ECHO "\xZZ")", {"ECHO", "xZZ"}},  // not hex: the backslash escapes the 'x'
      {R"(ECHO "a\x4")", {"ECHO", "ax4"}},
      {R"(ECHO "\q")", {"ECHO", "q"}},
      {R"(ECHO 'it\'s')", {"ECHO", "it's"}},
      {R"(ECHO 'a\nb')", {"ECHO", "a\\nb"}},  // no escapes but \' in single quotes
      {R"(ECHO 'a"b')", {"ECHO", "a\"b"}},
      {R"(ECHO "a'b")", {"ECHO", "a'b"}},
      {R"(ECHO "" '')", {"ECHO", "", ""}},
      {R"(ECHO a"b c")", {"ECHO", "ab c"}},  // a quote may open mid-argument
      {R"(ECHO "a"	"b")", {"ECHO", "a", "b"}},
      {R"(ECHO "\"a\"b")", {"ECHO", "\"a\"b"}},
      {"  SET\t\tk   v  ", {"SET", "k", "v"}},
      {R"(ECHO "a"b)", {}, true},  // a closing quote must be followed by a space
      {R"(ECHO 'a'b)", {}, true},
      {R"(ECHO "abc)", {}, true},
      {R"(ECHO 'abc)", {}, true},
      {R"(ECHO "abc\")", {}, true},
      {R"(ECHO "abc\)", {}, true},
      {R"(ECHO 'abc\')", {}, true},
  };
  ParserLimits limits;
  for (const InlineCase& c : cases) {
    CAPTURE(escape(c.line));
    std::vector<std::string_view> out;
    std::forward_list<std::string> storage;
    bool ok = splitInlineArgs(c.line, &out, &storage);
    CHECK(ok == !c.unbalanced);
    if (ok) CHECK(std::vector<std::string>(out.begin(), out.end()) == c.argv);

    // The same through the parser, at every split, with CRLF and with LF alone.
    for (const char* eol : {"\r\n", "\n"}) {
      std::string request = c.line + eol;
      if (c.unbalanced) {
        checkError(request, err::kUnbalancedQuotes, 0, limits);
      } else {
        Outcome expected;
        expected.commands.push_back(c.argv);
        expected.raws.push_back(request);
        expected.inline_flags.push_back(true);
        expected.ends.push_back(request.size());
        expected.consumed = request.size();
        checkEverySplit(request, expected, limits);
      }
    }
  }
}

TEST_CASE("request parser: plain inline arguments are views into the line") {
  std::string line = R"(SET key "quoted value" plain)";
  std::vector<std::string_view> out;
  std::forward_list<std::string> storage;
  REQUIRE(splitInlineArgs(line, &out, &storage));
  REQUIRE(out.size() == 4);
  CHECK(out[0].data() == line.data());
  CHECK(out[1].data() == line.data() + 4);
  CHECK(out[2] == "quoted value");
  CHECK(out[3].data() == line.data() + line.size() - 5);
}

// redis-server's sdssplitargs skips leading blanks with isspace() (which includes \v and \f) but
// ends an unquoted argument only at ' ', \n, \r, \t or NUL. Checked against redis-server 7.0.15:
// "ECHO a\vb" replies "a\vb". readthru's fast path splits at \v and \f.
TEST_CASE("request parser: \\v and \\f inside an unquoted argument") {
  const std::vector<InlineCase> cases = {
      {"ECHO a\vb", {"ECHO", "a\vb"}},
      {"ECHO a\fb", {"ECHO", "a\fb"}},
      {"ECHO a\v\"b\"", {"ECHO", "a\vb"}},
      {"\vECHO x", {"ECHO", "x"}},  // leading \v is skipped (this one passes)
  };
  for (const InlineCase& c : cases) {
    CAPTURE(escape(c.line));
    std::vector<std::string_view> out;
    std::forward_list<std::string> storage;
    REQUIRE(splitInlineArgs(c.line, &out, &storage));
    CHECK(std::vector<std::string>(out.begin(), out.end()) == c.argv);
  }
}

TEST_CASE("request parser: unescaped inline arguments live until the next parse") {
  ParserLimits limits;
  RequestParser parser(&limits);
  std::string request = "SET \"k 1\" \"v\\x21\"\r\n";
  size_t consumed = 0;
  Command cmd;
  REQUIRE(parser.parse(request.data(), request.size(), &consumed, &cmd) == ParseStatus::kCommand);
  request.assign(request.size(), '#');  // the caller may already reuse its buffer
  REQUIRE(cmd.argv.size() == 3);
  CHECK(cmd.argv[1] == "k 1");
  CHECK(cmd.argv[2] == "v!");
}

}  // namespace
}  // namespace readthru::resp
