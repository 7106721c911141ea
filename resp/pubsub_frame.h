#pragma once
// Reads the head of a pub/sub frame: ["message", channel, payload], ["subscribe", channel, count],
// ["pmessage", pattern, channel, payload], ... as RESP2 arrays or RESP3 pushes. A pinned connection
// uses it to tell messages (delivered whenever they arrive) from the replies its client awaits.

#include <cstdint>
#include <string_view>

namespace readthru::resp {

enum class PubsubKind {
  kNone,  // not a pub/sub frame
  kMessage,
  kPmessage,
  kSmessage,
  kSubscribe,
  kPsubscribe,
  kSsubscribe,
  kUnsubscribe,
  kPunsubscribe,
  kSunsubscribe,
  kPong,        // ["pong", payload]: PING's reply in RESP2 subscribe mode
  kInvalidate,  // client-side caching invalidation push
  kOtherPush,   // any other RESP3 push
};

struct PubsubFrame {
  PubsubKind kind = PubsubKind::kNone;
  int64_t count = -1;        // subscriptions left, for the (un)subscribe kinds
  std::string_view channel;  // the channel or pattern of an (un)subscribe reply; empty for nil
  bool channel_is_nil = false;
};

// `frame` must be one complete reply.
PubsubFrame peekPubsubFrame(std::string_view frame);

inline bool isMessage(PubsubKind k) {
  return k == PubsubKind::kMessage || k == PubsubKind::kPmessage || k == PubsubKind::kSmessage;
}
inline bool isSubscribeReply(PubsubKind k) {
  return k == PubsubKind::kSubscribe || k == PubsubKind::kPsubscribe ||
         k == PubsubKind::kSsubscribe || k == PubsubKind::kUnsubscribe ||
         k == PubsubKind::kPunsubscribe || k == PubsubKind::kSunsubscribe;
}

}  // namespace readthru::resp
