#include "resp/reply_framer.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <doctest/doctest.h>
#include <fmt/format.h>

namespace readthru::resp {
namespace {

using namespace std::string_literals;

// Where the replies of a stream end, as found by one way of feeding it.
struct Framing {
  std::vector<size_t> ends;  // stream offset just after each reply
  std::vector<char> types;   // Result::type of each reply
  std::string error;         // message() when the framer refused the stream
  size_t error_at = 0;       // stream offset just after the byte it refused
  std::string violation;     // a broken feed() contract, empty when none

  bool operator==(const Framing&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Framing& f) {
  os << "{ ends:";
  for (size_t i = 0; i < f.ends.size(); ++i) os << " " << f.ends[i] << "(" << f.types[i] << ")";
  if (!f.error.empty()) os << " error=\"" << f.error << "\" at " << f.error_at;
  if (!f.violation.empty()) os << " VIOLATION: " << f.violation;
  return os << " }";
}

// Feeds `stream` in reads ending at each offset of `cuts` (ascending) and at its end. Each read is
// scanned reply by reply: after a complete reply the rest of the read is fed again.
Framing frame(std::string_view stream, const std::vector<size_t>& cuts,
              ReplyFramer* framer = nullptr) {
  ReplyFramer own;
  if (framer == nullptr) framer = &own;
  Framing f;
  size_t prev = 0;
  auto read = [&](size_t end) {
    // A private copy, so that ASan sees any read past the end of this read.
    std::unique_ptr<char[]> piece(new char[end - prev]);
    std::copy(stream.begin() + static_cast<ptrdiff_t>(prev),
              stream.begin() + static_cast<ptrdiff_t>(end), piece.get());
    const char* p = piece.get();
    size_t n = end - prev;
    size_t base = prev;
    prev = end;
    while (n > 0) {
      ReplyFramer::Result r = framer->feed(p, n);
      if (r.consumed > n) {
        f.violation = "consumed past the input";
        return false;
      }
      if (r.error) {
        f.error = framer->message();
        f.error_at = base + r.consumed;
        return false;
      }
      if (!r.complete) {
        if (r.consumed != n) f.violation = "an incomplete reply left bytes unconsumed";
        if (!framer->inReply()) f.violation = "inReply() is false inside a reply";
        return f.violation.empty();
      }
      if (r.consumed == 0) {
        f.violation = "a complete reply of zero bytes";
        return false;
      }
      if (framer->inReply()) {
        f.violation = "inReply() is true after a complete reply";
        return false;
      }
      base += r.consumed;
      f.ends.push_back(base);
      f.types.push_back(r.type);
      p += r.consumed;
      n -= r.consumed;
    }
    return true;
  };
  for (size_t cut : cuts) {
    if (!read(cut)) return f;
  }
  read(stream.size());
  return f;
}

Framing frameByteByByte(std::string_view stream) {
  std::vector<size_t> cuts;
  for (size_t i = 1; i < stream.size(); ++i) cuts.push_back(i);
  return frame(stream, cuts);
}

// Builds a stream of replies and the framing a correct framer must find in it.
struct StreamBuilder {
  std::string bytes;
  Framing expected;

  StreamBuilder& add(std::string_view reply) {
    bytes.append(reply);
    expected.ends.push_back(bytes.size());
    expected.types.push_back(reply[0]);
    return *this;
  }
};

void checkEverySplit(std::string_view stream, const Framing& expected) {
  CHECK(frame(stream, {}) == expected);
  CHECK(frameByteByByte(stream) == expected);
  for (size_t i = 1; i < stream.size(); ++i) {
    Framing got = frame(stream, {i});
    if (!(got == expected)) {
      CAPTURE(i);
      CHECK(got == expected);
      return;
    }
  }
}

// n levels of aggregates of every kind around one scalar, with siblings at each level.
std::string nested(int levels) {
  std::string inner = ":42\r\n";
  for (int level = 0; level < levels; ++level) {
    switch (level % 5) {
      case 0:
        inner = "*2\r\n" + inner + "$3\r\nabc\r\n";
        break;
      case 1:
        inner = "%2\r\n+k1\r\n" + inner + "+k2\r\n_\r\n";
        break;
      case 2:
        inner = "~3\r\n#t\r\n" + inner + ",1.5\r\n";
        break;
      case 3:
        // A push inside an aggregate is an element only as a (un)subscribe confirmation.
        inner = ">2\r\n$9\r\nsubscribe\r\n" + inner;
        break;
      case 4:
        inner = "*3\r\n|1\r\n+ttl\r\n:10\r\n" + inner + "*0\r\n$-1\r\n";
        break;
    }
  }
  return inner;
}

// One of every RESP2 and RESP3 type, alone and in aggregates.
StreamBuilder everyType() {
  StreamBuilder b;
  b.add("+OK\r\n");
  b.add("-ERR unknown command 'foo'\r\n");
  b.add(":0\r\n");
  b.add(":-9223372036854775808\r\n");
  b.add("$5\r\nhello\r\n");
  b.add("$0\r\n\r\n");
  b.add("$8\r\n\r\n*1\r\n\0$\r\n"s);  // binary: CRLF, NUL and protocol bytes in the payload
  b.add("$-1\r\n");
  b.add("*-1\r\n");
  b.add("*0\r\n");
  b.add("*3\r\n:1\r\n$-1\r\n+two\r\n");
  b.add("_\r\n");
  b.add("#t\r\n");
  b.add("#f\r\n");
  b.add(",3.14\r\n");
  b.add(",-inf\r\n");
  b.add("(3492890328409238509324850943850943825024385\r\n");
  b.add("!21\r\nSYNTAX invalid syntax\r\n");
  b.add("=15\r\ntxt:Some string\r\n");
  b.add("%2\r\n+first\r\n:1\r\n$6\r\nsecond\r\n*2\r\n:2\r\n:3\r\n");
  b.add("%0\r\n");
  b.add("~3\r\n+a\r\n+b\r\n+c\r\n");
  b.add("~0\r\n");
  b.add(">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n");
  b.add(">0\r\n");
  // An attribute precedes the value it annotates and is not an element of its parent.
  b.add(
      "|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n"
      "*2\r\n:2039123\r\n:9543892\r\n");
  b.add("*2\r\n|1\r\n+ttl\r\n:3600\r\n:1\r\n:2\r\n");
  b.add("|0\r\n:7\r\n");
  b.add("|1\r\n+k\r\n*2\r\n:1\r\n:2\r\n:5\r\n");                 // an attribute whose value nests
  b.add("|1\r\n+k\r\n|1\r\n+k2\r\n:0\r\n:1\r\n+annotated\r\n");  // attributes inside attributes
  b.add("*2\r\n:1\r\n|1\r\n+k\r\n:1\r\n*1\r\n|0\r\n_\r\n");      // the last element annotated
  b.add(nested(20));
  b.add(nested(13));
  b.add("+" + std::string(3000, 'm') + "\r\n");  // a long line, as MONITOR writes
  return b;
}

TEST_CASE("reply framer: every RESP2 and RESP3 type, at every split and byte by byte") {
  StreamBuilder b = everyType();
  REQUIRE(frame(b.bytes, {}) == b.expected);
  checkEverySplit(b.bytes, b.expected);
}

TEST_CASE("reply framer: each reply alone") {
  StreamBuilder b = everyType();
  size_t start = 0;
  for (size_t i = 0; i < b.expected.ends.size(); ++i) {
    std::string_view reply(b.bytes.data() + start, b.expected.ends[i] - start);
    CAPTURE(reply.substr(0, 40));
    Framing expected;
    expected.ends.push_back(reply.size());
    expected.types.push_back(reply[0]);
    checkEverySplit(reply, expected);
    // Without its last byte it is not complete.
    ReplyFramer framer;
    ReplyFramer::Result r = framer.feed(reply.data(), reply.size() - 1);
    CHECK_FALSE(r.complete);
    CHECK_FALSE(r.error);
    CHECK(r.consumed == reply.size() - 1);
    CHECK(framer.inReply());
    start = b.expected.ends[i];
  }
}

TEST_CASE("reply framer: 20 levels of nesting, and a 13-level reply like COMMAND DOCS") {
  std::string deep = "*1\r\n";
  for (int i = 0; i < 19; ++i) deep += "*1\r\n";
  deep += "$4\r\nleaf\r\n";
  Framing expected;
  expected.ends = {deep.size()};
  expected.types = {'*'};
  checkEverySplit(deep, expected);

  std::string docs = nested(13);
  ReplyFramer framer;
  ReplyFramer::Result r = framer.feed(docs.data(), docs.size());
  CHECK(r.complete);
  CHECK(r.consumed == docs.size());
}

TEST_CASE("reply framer: pushes inside an aggregate are out of band unless they confirm") {
  StreamBuilder b;
  // Redis 7.0, HELLO 3, subscribed to foo: MULTI, PING abc, PUBLISH foo bar, PUBLISH foo vaz,
  // PING def, EXEC. The messages land inside EXEC's array without being among its 4 elements.
  b.add(
      "*4\r\n$3\r\nabc\r\n>3\r\n$7\r\nmessage\r\n$3\r\nfoo\r\n$3\r\nbar\r\n:1\r\n"
      ">3\r\n$7\r\nmessage\r\n$3\r\nfoo\r\n$3\r\nvaz\r\n:1\r\n$3\r\ndef\r\n");
  // MULTI, SUBSCRIBE foo, EXEC: the confirmation is EXEC's element; then a message.
  b.add("*1\r\n>3\r\n$9\r\nsubscribe\r\n$3\r\nfoo\r\n:1\r\n");
  b.add(">3\r\n$7\r\nmessage\r\n$3\r\nfoo\r\n$2\r\nhi\r\n");
  // Each confirmation kind counts; an invalidation does not.
  for (const char* kind :
       {"unsubscribe", "psubscribe", "punsubscribe", "ssubscribe", "sunsubscribe"}) {
    b.add(fmt::format("*2\r\n>3\r\n${}\r\n{}\r\n$1\r\nc\r\n:0\r\n+OK\r\n",
                      std::string_view(kind).size(), kind));
  }
  b.add("*2\r\n>2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\na\r\n+OK\r\n:1\r\n");
  // Near misses of a kind are not confirmations; nor is a kind that is not the first element,
  // nor one in a push that is not directly the element (a message whose payload is "subscribe").
  b.add("*1\r\n>2\r\n$10\r\nsubscribes\r\n:1\r\n>2\r\n$8\r\nsubscrib\r\n:1\r\n:7\r\n");
  b.add("*1\r\n>2\r\n:1\r\n$9\r\nsubscribe\r\n:7\r\n");
  b.add("*1\r\n>3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$9\r\nsubscribe\r\n:7\r\n");
  b.add("*2\r\n>0\r\n:1\r\n:2\r\n");
  // A push within a push inside an aggregate: the inner one interrupts the outer one.
  b.add("*1\r\n>2\r\n$7\r\nmessage\r\n>1\r\n$1\r\nx\r\n$1\r\ny\r\n:7\r\n");
  // At the top, a push is a reply whatever it carries.
  b.add(">2\r\n$3\r\nfoo\r\n:1\r\n");
  checkEverySplit(b.bytes, b.expected);
}

TEST_CASE("reply framer: a 10 MB bulk fed in 1000 pieces") {
  const size_t payload = 10 * 1024 * 1024;
  std::string reply = "$" + std::to_string(payload) + "\r\n";
  reply.reserve(reply.size() + payload + 2);
  for (size_t i = 0; i < payload; ++i) reply.push_back(static_cast<char>(i * 131 % 251));
  reply += "\r\n";
  std::string next = "+after\r\n";
  std::string stream = reply + next;

  ReplyFramer framer;
  const size_t piece = (reply.size() + 999) / 1000;
  size_t off = 0;
  int pieces = 0;
  int wrong = 0;
  while (off < reply.size()) {
    size_t n = std::min(piece, stream.size() - off);
    ReplyFramer::Result r = framer.feed(stream.data() + off, n);
    ++pieces;
    bool last = off + n >= reply.size();
    if (r.error || r.complete != last || r.type != '$' ||
        r.consumed != (last ? reply.size() - off : n)) {
      ++wrong;
    }
    off += r.consumed;
  }
  CHECK(pieces == 1000);
  CHECK(wrong == 0);
  CHECK(off == reply.size());
  CHECK_FALSE(framer.inReply());
  ReplyFramer::Result r = framer.feed(stream.data() + off, stream.size() - off);
  CHECK(r.complete);
  CHECK(r.type == '+');
  CHECK(r.consumed == next.size());
}

TEST_CASE("reply framer: Result::type and inReply() follow the outermost value") {
  ReplyFramer framer;
  CHECK_FALSE(framer.inReply());
  std::string s = "%1\r\n+k\r\n*1\r\n:1\r\n";
  ReplyFramer::Result r = framer.feed(s.data(), 1);
  CHECK_FALSE(r.complete);
  CHECK(r.type == '%');
  CHECK(framer.inReply());
  r = framer.feed(s.data() + 1, s.size() - 2);
  CHECK_FALSE(r.complete);
  CHECK(r.type == '%');
  r = framer.feed(s.data() + s.size() - 1, 1);
  CHECK(r.complete);
  CHECK(r.type == '%');
  CHECK(r.consumed == 1);
  CHECK_FALSE(framer.inReply());

  r = framer.feed("", 0);
  CHECK(r.consumed == 0);
  CHECK_FALSE(r.complete);
  CHECK_FALSE(r.error);
}

struct BadCase {
  std::string stream;
  std::string message;
  size_t error_at;     // stream offset just after the refused byte
  size_t replies = 0;  // complete replies before it
};

TEST_CASE("reply framer: errors") {
  const std::vector<BadCase> cases = {
      {"?\r\n", "unexpected byte in reply: ?", 1},
      {"hello\r\n", "unexpected byte in reply: h", 1},
      {"\r\n", "unexpected byte in reply: \r", 1},
      {"+OK\r\n:1\r\n\n", "unexpected byte in reply: \n", 10, 2},
      {"*2\r\n:1\r\nX\r\n", "unexpected byte in reply: X", 9},
      {"%1\r\n+k\r\n \r\n", "unexpected byte in reply:  ", 9},
      {"*abc\r\n", "invalid length in reply", 6},
      {"*\r\n", "invalid length in reply", 3},
      {"$-\r\n", "invalid length in reply", 4},
      {"$1x\r\n", "invalid length in reply", 5},
      {"$-2\r\n", "invalid negative length in reply", 5},
      {"*-0\r\n", "invalid negative length in reply", 5},
      {"%-1\r\n", "invalid negative length in reply", 5},
      {"~-1\r\n", "invalid negative length in reply", 5},
      {"!-1\r\n", "invalid negative length in reply", 5},
      {"$4294967297\r\n", "reply length over the limit", 13},
      {"*" + std::string(30, '1') + "\r\n", "length line too long in reply", 23},
  };
  for (const BadCase& c : cases) {
    CAPTURE(c.stream);
    Framing expected;
    for (size_t i = 0; i < c.replies; ++i) {
      expected.ends.push_back(c.stream.find("\r\n", i == 0 ? 0 : expected.ends.back()) + 2);
      expected.types.push_back(c.stream[i == 0 ? 0 : expected.ends[i - 1]]);
    }
    expected.error = c.message;
    expected.error_at = c.error_at;
    checkEverySplit(c.stream, expected);
  }
}

TEST_CASE("reply framer: whole replies and byte-by-byte reads agree on unusual forms") {
  // A bulk or simple line that arrives whole is framed in one pass; anything else, or any part
  // of it that looks unusual, goes through the byte-by-byte state machine. Both must agree.
  const std::vector<std::string> streams = {
      "$0\r\n\r\n"s,
      "$01\r\nx\r\n"s,
      "$3\r\nabcXY+OK\r\n"s,  // the two bytes after a payload are skipped
      "+OK\n:1\r\n"s,         // a line ended by LF alone
      "-ERR x\r\n$2\r\nab\r\n"s,
      ":-5\r\n"s,
      "$-1\r\n"s,
      "$3\r\nab"s,  // incomplete
      "$" + std::string(18, '1') + "\r\nx\r\n",
      "$" + std::string(19, '1') + "\r\nx\r\n",
      "$3\r\r\nabc\r\n"s,
      "$3\n\r\nabc\r\n"s,
      "$\r\n"s,
      "$3 \r\nabc\r\n"s,
      "$10\r\n0123456789\r\n$11\r\n0123456789a\r\n"s,
      "+"s,
      // Arrays of scalars take the one-pass path too; nested or unusual ones do not.
      "*3\r\n$1\r\na\r\n$-1\r\n:5\r\n"s,
      "*2\r\n*1\r\n:1\r\n:2\r\n"s,
      "*0\r\n*-1\r\n"s,
      "*2\r\n+OK\r\n"s,
      "*2\r\n$3\r\nab"s,
      "*1\r\n$-2\r\n"s,
      "*01\r\n:1\r\n"s,
      "*3\r\n_\r\n,1.5\r\n#t\r\n"s,
      "*11\r\n" +
          [] {
            std::string ones;
            for (int i = 0; i < 11; ++i) ones += ":1\r\n";
            return ones;
          }(),
      "*1\r\n$11\r\n0123456789a\r\n"s,
      "*2\r\n%1\r\n+a\r\n+b\r\n:1\r\n"s,
      "*1\r\n$-1\r"s,
      "*2\r\n(12345678901234567890\r\n$0\r\n\r\n"s,
      // RESP3 sets and maps of scalars too.
      "%2\r\n$1\r\na\r\n:1\r\n+b\r\n_\r\n~2\r\n#t\r\n$0\r\n\r\n"s,
      "%0\r\n~0\r\n"s,
      "%1\r\n+a\r\n"s,
      "%1\r\n+a\r\n*1\r\n:1\r\n"s,
      "%6\r\n" +
          [] {  // 6 entries: within a limit of 10, though 12 elements
            std::string ones;
            for (int i = 0; i < 12; ++i) ones += ":1\r\n";
            return ones;
          }(),
      "%11\r\n" +
          [] {  // complete, and over a limit of 10
            std::string ones;
            for (int i = 0; i < 22; ++i) ones += ":1\r\n";
            return ones;
          }(),
      "~11\r\n" +
          [] {
            std::string ones;
            for (int i = 0; i < 11; ++i) ones += "+x\r\n";
            return ones;
          }(),
      "%-1\r\n"s,
  };
  for (const std::string& s : streams) {
    CAPTURE(s);
    CHECK(frame(s, {}) == frameByteByByte(s));
    ReplyFramer whole, bytes;
    whole.setMaxLength(10);
    bytes.setMaxLength(10);
    std::vector<size_t> cuts;
    for (size_t i = 1; i < s.size(); ++i) cuts.push_back(i);
    CHECK(frame(s, {}, &whole) == frame(s, cuts, &bytes));
  }
}

TEST_CASE("reply framer: setMaxLength bounds aggregates and bulks") {
  std::string array10 = "*10\r\n";
  for (int i = 0; i < 10; ++i) array10 += ":1\r\n";
  for (const std::string& ok : {"$10\r\n0123456789\r\n"s, array10}) {
    ReplyFramer framer;
    framer.setMaxLength(10);
    Framing expected;
    expected.ends = {ok.size()};
    expected.types = {ok[0]};
    CHECK(frame(ok, {}, &framer) == expected);
  }
  for (std::string bad : {"$11\r\n", "*11\r\n", "%11\r\n", "~11\r\n", ">11\r\n", "=11\r\n"}) {
    ReplyFramer framer;
    framer.setMaxLength(10);
    Framing got = frame(bad, {}, &framer);
    CHECK(got.error == "reply length over the limit");
  }
}

// A random RESP2 reply, nesting arrays up to `max_depth` levels (hiredis 0.14 stops at 7).
void randomReply(std::mt19937& rng, int depth, int max_depth, std::string* out) {
  auto below = [&](int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); };
  auto text = [&](size_t max) {
    std::string s;
    size_t n = static_cast<size_t>(below(static_cast<int>(max) + 1));
    for (size_t i = 0; i < n; ++i) s.push_back(static_cast<char>(' ' + below(95)));
    return s;
  };
  int kind = below(depth < max_depth ? 10 : 7);
  switch (kind) {
    case 0:
      *out += "+" + text(20) + "\r\n";
      break;
    case 1:
      *out += "-ERR " + text(20) + "\r\n";
      break;
    case 2:
      *out += ":" + std::to_string(static_cast<int64_t>(rng()) - (1ll << 31)) + "\r\n";
      break;
    case 3:
    case 4: {
      std::string payload;
      size_t n = static_cast<size_t>(below(below(8) == 0 ? 600 : 12));
      for (size_t i = 0; i < n; ++i) {
        static const char kBytes[] = {'\r', '\n', '\0', '*', '$', 'a', 'b', ':'};
        payload.push_back(below(3) == 0 ? kBytes[below(8)] : static_cast<char>(below(256)));
      }
      *out += "$" + std::to_string(n) + "\r\n" + payload + "\r\n";
      break;
    }
    case 5:
      *out += "$-1\r\n";
      break;
    case 6:
      *out += below(2) == 0 ? "*-1\r\n" : "*0\r\n";
      break;
    default: {
      int n = 1 + below(5);
      *out += "*" + std::to_string(n) + "\r\n";
      for (int i = 0; i < n; ++i) randomReply(rng, depth + 1, max_depth, out);
      break;
    }
  }
}

char hiredisType(const redisReply* r) {
  switch (r->type) {
    case REDIS_REPLY_STATUS:
      return '+';
    case REDIS_REPLY_ERROR:
      return '-';
    case REDIS_REPLY_INTEGER:
      return ':';
    case REDIS_REPLY_STRING:
      return '$';
    case REDIS_REPLY_ARRAY:
      return '*';
    case REDIS_REPLY_NIL:
      return 'n';  // '$' or '*': hiredis does not say which
    default:
      return '?';
  }
}

// Where hiredis's reader finds each reply: fed one byte at a time, asked for a reply after each.
Framing hiredisFraming(std::string_view stream) {
  Framing f;
  redisReader* reader = redisReaderCreate();
  for (size_t i = 0; i < stream.size(); ++i) {
    if (redisReaderFeed(reader, stream.data() + i, 1) != REDIS_OK) {
      f.error = "feed failed";
      break;
    }
    void* reply = nullptr;
    if (redisReaderGetReply(reader, &reply) != REDIS_OK) {
      f.error = reader->errstr;
      f.error_at = i + 1;
      break;
    }
    if (reply != nullptr) {
      f.ends.push_back(i + 1);
      f.types.push_back(hiredisType(static_cast<redisReply*>(reply)));
      freeReplyObject(reply);
    }
  }
  redisReaderFree(reader);
  return f;
}

TEST_CASE("reply framer: agrees with hiredis's reader on random RESP2 replies") {
  std::mt19937 rng(6379);
  int disagreements = 0;
  size_t replies = 0;
  for (int round = 0; round < 300 && disagreements == 0; ++round) {
    StreamBuilder b;
    int n = 1 + static_cast<int>(rng() % 8);
    for (int i = 0; i < n; ++i) {
      std::string reply;
      randomReply(rng, 1, 6, &reply);
      b.add(reply);
    }
    replies += b.expected.ends.size();
    Framing from_hiredis = hiredisFraming(b.bytes);
    // hiredis has no type for a null: compare the boundaries, and the types where it has one.
    Framing hiredis_ends = from_hiredis;
    Framing ours = frame(b.bytes, {});
    hiredis_ends.types = ours.types;
    bool same_types = from_hiredis.types.size() == ours.types.size();
    for (size_t i = 0; same_types && i < ours.types.size(); ++i) {
      same_types = from_hiredis.types[i] == ours.types[i] || from_hiredis.types[i] == 'n';
    }
    CAPTURE(round);
    if (!(ours == b.expected) || !(hiredis_ends == ours) || !same_types) {
      ++disagreements;
      CHECK(ours == b.expected);
      CHECK(hiredis_ends == ours);
      CHECK(same_types);
    }
    // And the same boundaries however the stream is cut.
    std::vector<size_t> cuts;
    for (size_t i = 1; i < b.bytes.size(); ++i) {
      if (rng() % 7 == 0) cuts.push_back(i);
    }
    Framing cut = frame(b.bytes, cuts);
    if (!(cut == b.expected)) {
      ++disagreements;
      CHECK(cut == b.expected);
    }
    if (round % 10 == 0) {
      Framing bytewise = frameByteByByte(b.bytes);
      if (!(bytewise == b.expected)) {
        ++disagreements;
        CHECK(bytewise == b.expected);
      }
    }
  }
  CHECK(disagreements == 0);
  CHECK(replies > 1000);
}

}  // namespace
}  // namespace readthru::resp
