#include "resp/reply_encoder.h"

#include <cstdint>
#include <limits>
#include <string>

#include <doctest/doctest.h>

#include "resp/reply_framer.h"

namespace readthru::resp {
namespace {

using namespace std::string_literals;

// Encodes with `f` in the given protocol and returns the bytes.
template <typename F>
std::string encode(int protocol, F f) {
  std::string out;
  ReplyEncoder e(&out, protocol);
  f(e);
  return out;
}

// The bytes are one whole reply: the framer ends it exactly at the last byte.
bool isOneReply(const std::string& bytes) {
  ReplyFramer framer;
  ReplyFramer::Result r = framer.feed(bytes.data(), bytes.size());
  return !r.error && r.complete && r.consumed == bytes.size();
}

TEST_CASE("reply encoder: what RESP2 and RESP3 write alike") {
  for (int protocol : {2, 3}) {
    CAPTURE(protocol);
    CHECK(encode(protocol, [](ReplyEncoder& e) { e.simple("PONG"); }) == "+PONG\r\n");
    CHECK(encode(protocol, [](ReplyEncoder& e) { e.ok(); }) == "+OK\r\n");
    CHECK(encode(protocol, [](ReplyEncoder& e) { e.simple(""); }) == "+\r\n");
    CHECK(encode(protocol, [](ReplyEncoder& e) { e.error("ERR syntax error"); }) ==
          "-ERR syntax error\r\n");
    CHECK(encode(protocol, [](ReplyEncoder& e) { e.error("NOAUTH Authentication required."); }) ==
          "-NOAUTH Authentication required.\r\n");
    CHECK(encode(protocol, [](ReplyEncoder& e) { e.integer(0); }) == ":0\r\n");
    CHECK(encode(protocol, [](ReplyEncoder& e) { e.integer(42); }) == ":42\r\n");
    CHECK(encode(protocol, [](ReplyEncoder& e) { e.integer(-1); }) == ":-1\r\n");
    CHECK(encode(protocol, [](ReplyEncoder& e) {
            e.integer(std::numeric_limits<int64_t>::min());
          }) == ":-9223372036854775808\r\n");
    CHECK(encode(protocol, [](ReplyEncoder& e) {
            e.integer(std::numeric_limits<int64_t>::max());
          }) == ":9223372036854775807\r\n");
    CHECK(encode(protocol, [](ReplyEncoder& e) { e.bulk("hello"); }) == "$5\r\nhello\r\n");
    CHECK(encode(protocol, [](ReplyEncoder& e) { e.bulk(""); }) == "$0\r\n\r\n");
    CHECK(encode(protocol, [](ReplyEncoder& e) { e.bulk("a\r\n\0b"s); }) == "$5\r\na\r\n\0b\r\n"s);
    CHECK(encode(protocol, [](ReplyEncoder& e) { e.arrayHeader(0); }) == "*0\r\n");
    CHECK(encode(protocol, [](ReplyEncoder& e) { e.arrayHeader(3); }) == "*3\r\n");
    CHECK(encode(protocol, [](ReplyEncoder& e) { e.arrayHeader(1234567890123); }) ==
          "*1234567890123\r\n");
  }
}

TEST_CASE("reply encoder: null and maps differ") {
  CHECK(encode(2, [](ReplyEncoder& e) { e.null(); }) == "$-1\r\n");
  CHECK(encode(3, [](ReplyEncoder& e) { e.null(); }) == "_\r\n");
  CHECK(encode(2, [](ReplyEncoder& e) { e.mapHeader(0); }) == "*0\r\n");
  CHECK(encode(3, [](ReplyEncoder& e) { e.mapHeader(0); }) == "%0\r\n");
  CHECK(encode(2, [](ReplyEncoder& e) { e.mapHeader(3); }) == "*6\r\n");
  CHECK(encode(3, [](ReplyEncoder& e) { e.mapHeader(3); }) == "%3\r\n");
}

TEST_CASE("reply encoder: an error line cannot carry CR or LF") {
  for (int protocol : {2, 3}) {
    CHECK(encode(protocol, [](ReplyEncoder& e) { e.error("ERR bad\r\nthing\n\r"); }) ==
          "-ERR bad  thing  \r\n");
    CHECK(encode(protocol, [](ReplyEncoder& e) { e.error("ERR\rx"); }) == "-ERR x\r\n");
  }
}

TEST_CASE("reply encoder: appends; a whole HELLO-style map frames as one reply") {
  for (int protocol : {2, 3}) {
    CAPTURE(protocol);
    std::string out = "prefix";
    ReplyEncoder e(&out, protocol);
    e.mapHeader(3);
    e.bulk("server");
    e.bulk("readthru");
    e.bulk("proto");
    e.integer(protocol);
    e.bulk("modules");
    e.arrayHeader(2);
    e.null();
    e.error("ERR x\ny");
    CHECK(out.rfind("prefix", 0) == 0);
    CHECK(isOneReply(out.substr(6)));
    CHECK(out.substr(6) == (protocol == 3 ? "%3\r\n" : "*6\r\n") +
                               "$6\r\nserver\r\n$8\r\nreadthru\r\n$5\r\nproto\r\n:"s +
                               std::to_string(protocol) + "\r\n$7\r\nmodules\r\n*2\r\n" +
                               (protocol == 3 ? "_\r\n" : "$-1\r\n") + "-ERR x y\r\n");
  }
}

TEST_CASE("reply encoder: command() writes a multibulk request") {
  std::string out;
  ReplyEncoder::command(&out, {"AUTH", "user", "p\r\nss"});
  CHECK(out == "*3\r\n$4\r\nAUTH\r\n$4\r\nuser\r\n$5\r\np\r\nss\r\n");
  ReplyEncoder::command(&out, {"PING"});
  CHECK(out == "*3\r\n$4\r\nAUTH\r\n$4\r\nuser\r\n$5\r\np\r\nss\r\n*1\r\n$4\r\nPING\r\n");
  std::string empty;
  ReplyEncoder::command(&empty, {});
  CHECK(empty == "*0\r\n");
}

TEST_CASE("reply encoder: verbatim is a bulk in RESP2 and =<len> txt:... in RESP3") {
  std::string two, three;
  ReplyEncoder(&two, 2).verbatim("txt", "id=1\n");
  ReplyEncoder(&three, 3).verbatim("txt", "id=1\n");
  CHECK(two == "$5\r\nid=1\n\r\n");
  CHECK(three == "=9\r\ntxt:id=1\n\r\n");
}

}  // namespace
}  // namespace readthru::resp
