#include "resp/pubsub_frame.h"

#include <string>
#include <string_view>
#include <vector>

#include <doctest/doctest.h>

namespace readthru::resp {
namespace {

using namespace std::string_literals;

std::string bulk(std::string_view s) {
  return "$" + std::to_string(s.size()) + "\r\n" + std::string(s) + "\r\n";
}

// An aggregate of `type` ('*' or '>') holding the given already-encoded elements.
std::string frame(char type, const std::vector<std::string>& elements) {
  std::string out(1, type);
  out += std::to_string(elements.size()) + "\r\n";
  for (const auto& e : elements) out += e;
  return out;
}

TEST_CASE("pubsub frame: messages in RESP2 and RESP3") {
  for (char type : {'*', '>'}) {
    CAPTURE(type);
    PubsubFrame f = peekPubsubFrame(frame(type, {bulk("message"), bulk("news"), bulk("hi")}));
    CHECK(f.kind == PubsubKind::kMessage);
    CHECK(isMessage(f.kind));
    CHECK_FALSE(isSubscribeReply(f.kind));
    CHECK(f.count == -1);

    f = peekPubsubFrame(frame(type, {bulk("pmessage"), bulk("n*"), bulk("news"), bulk("a\r\nb")}));
    CHECK(f.kind == PubsubKind::kPmessage);
    CHECK(isMessage(f.kind));

    f = peekPubsubFrame(frame(type, {bulk("smessage"), bulk("shard"), bulk("")}));
    CHECK(f.kind == PubsubKind::kSmessage);
    CHECK(isMessage(f.kind));
  }
}

TEST_CASE("pubsub frame: (un)subscribe replies carry the channel and the count") {
  struct Case {
    std::string name;
    PubsubKind kind;
  };
  const std::vector<Case> cases = {
      {"subscribe", PubsubKind::kSubscribe},       {"psubscribe", PubsubKind::kPsubscribe},
      {"ssubscribe", PubsubKind::kSsubscribe},     {"unsubscribe", PubsubKind::kUnsubscribe},
      {"punsubscribe", PubsubKind::kPunsubscribe}, {"sunsubscribe", PubsubKind::kSunsubscribe},
  };
  for (char type : {'*', '>'}) {
    for (const Case& c : cases) {
      CAPTURE(type);
      CAPTURE(c.name);
      std::string bytes = frame(type, {bulk(c.name), bulk("chan\r\nnel"), ":12345\r\n"});
      PubsubFrame f = peekPubsubFrame(bytes);
      CHECK(f.kind == c.kind);
      CHECK(isSubscribeReply(f.kind));
      CHECK_FALSE(isMessage(f.kind));
      CHECK(f.channel == "chan\r\nnel");
      CHECK_FALSE(f.channel_is_nil);
      CHECK(f.count == 12345);
      // The channel is a view into the frame.
      CHECK(f.channel.data() == bytes.data() + bytes.find("chan"));

      f = peekPubsubFrame(frame(type, {bulk(c.name), bulk(""), ":0\r\n"}));
      CHECK(f.kind == c.kind);
      CHECK(f.channel == "");
      CHECK_FALSE(f.channel_is_nil);
      CHECK(f.count == 0);
    }
  }
}

TEST_CASE("pubsub frame: unsubscribing from nothing names a nil channel") {
  // redis-server's reply to UNSUBSCRIBE without any subscription.
  PubsubFrame f = peekPubsubFrame("*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n");
  CHECK(f.kind == PubsubKind::kUnsubscribe);
  CHECK(f.channel_is_nil);
  CHECK(f.channel.empty());
  CHECK(f.count == 0);

  f = peekPubsubFrame(">3\r\n$12\r\npunsubscribe\r\n_\r\n:0\r\n");
  CHECK(f.kind == PubsubKind::kPunsubscribe);
  CHECK(f.channel_is_nil);
  CHECK(f.channel.empty());
  CHECK(f.count == 0);
}

TEST_CASE("pubsub frame: simple-string elements and letter case") {
  PubsubFrame f = peekPubsubFrame("*3\r\n+subscribe\r\n+ch\r\n:2\r\n");
  CHECK(f.kind == PubsubKind::kSubscribe);
  CHECK(f.channel == "ch");
  CHECK(f.count == 2);
  CHECK(peekPubsubFrame("*3\r\n$7\r\nMESSAGE\r\n$1\r\nc\r\n$1\r\nm\r\n").kind ==
        PubsubKind::kMessage);
}

TEST_CASE("pubsub frame: pong, invalidation and other pushes") {
  // PING in RESP2 subscribe mode.
  CHECK(peekPubsubFrame("*2\r\n$4\r\npong\r\n$0\r\n\r\n").kind == PubsubKind::kPong);
  CHECK(peekPubsubFrame("*2\r\n$4\r\npong\r\n$5\r\nhello\r\n").kind == PubsubKind::kPong);
  // A push that happens to say "pong" is not PING's reply.
  CHECK(peekPubsubFrame(">2\r\n$4\r\npong\r\n$0\r\n\r\n").kind == PubsubKind::kOtherPush);

  CHECK(peekPubsubFrame(">2\r\n$10\r\ninvalidate\r\n*1\r\n$3\r\nfoo\r\n").kind ==
        PubsubKind::kInvalidate);
  CHECK(peekPubsubFrame(">2\r\n$10\r\ninvalidate\r\n_\r\n").kind == PubsubKind::kInvalidate);

  CHECK(peekPubsubFrame(">1\r\n$3\r\nfoo\r\n").kind == PubsubKind::kOtherPush);
  CHECK(peekPubsubFrame(">1\r\n+foo\r\n").kind == PubsubKind::kOtherPush);
  CHECK(peekPubsubFrame(">2\r\n$-1\r\n:1\r\n").kind == PubsubKind::kOtherPush);
  CHECK(peekPubsubFrame(">0\r\n").kind == PubsubKind::kOtherPush);
}

// The header promises kOtherPush for "any other RESP3 push", but a push whose first element is not
// a string comes back as kNone, and ClientConn::onUpstreamFrame then takes it for the reply to the
// command at the head of the queue. redis-server always starts a push with a string, so this needs
// a misbehaving upstream.
TEST_CASE("pubsub frame: a push whose first element is not a string") {
  CHECK(peekPubsubFrame(">2\r\n:1\r\n:2\r\n").kind == PubsubKind::kOtherPush);
  CHECK(peekPubsubFrame(">2\r\n*1\r\n:1\r\n:2\r\n").kind == PubsubKind::kOtherPush);
}

TEST_CASE("pubsub frame: other replies are not pub/sub frames") {
  const std::vector<std::string> replies = {
      "+OK\r\n",
      "-ERR unknown command\r\n",
      ":3\r\n",
      "$7\r\nmessage\r\n",
      "$-1\r\n",
      "_\r\n",
      "*-1\r\n",
      "*0\r\n",
      "*2\r\n$3\r\nfoo\r\n$3\r\nbar\r\n",
      "*3\r\n:1\r\n$2\r\nch\r\n:1\r\n",
      "*1\r\n*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n",
      "*3\r\n$8\r\nmessages\r\n$1\r\nc\r\n$1\r\nm\r\n",
      "*3\r\n$6\r\nmessag\r\n$1\r\nc\r\n$1\r\nm\r\n",
      "%1\r\n$7\r\nmessage\r\n$1\r\nm\r\n",
      "~1\r\n$9\r\nsubscribe\r\n",
      "",
      "*",
  };
  for (const std::string& r : replies) {
    CAPTURE(r);
    PubsubFrame f = peekPubsubFrame(r);
    CHECK(f.kind == PubsubKind::kNone);
    CHECK(f.count == -1);
    CHECK(f.channel.empty());
    CHECK_FALSE(f.channel_is_nil);
  }
}

TEST_CASE("pubsub frame: a truncated or mangled frame fails soft") {
  // Not a contract (frames are complete replies), but no prefix may read out of bounds.
  const std::vector<std::string> frames = {
      "*3\r\n$9\r\nsubscribe\r\n$4\r\nchan\r\n:1\r\n",
      ">3\r\n$11\r\nunsubscribe\r\n_\r\n:0\r\n",
      "*4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$2\r\nhi\r\n",
      "*3\r\n$9\r\nsubscribe\r\n$40\r\nchan\r\n:1\r\n",
  };
  for (const std::string& full : frames) {
    for (size_t n = 0; n <= full.size(); ++n) {
      std::string prefix = full.substr(0, n);
      PubsubFrame f = peekPubsubFrame(prefix);
      CHECK(f.channel.size() <= prefix.size());
    }
  }
}

}  // namespace
}  // namespace readthru::resp
