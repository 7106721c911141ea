#include "resp/pubsub_frame.h"

#include <strings.h>
#include <cstring>

namespace readthru::resp {
namespace {

// A cursor over one complete reply; every read fails soft (returns false) on anything unexpected.
struct Cursor {
  std::string_view s;
  size_t pos = 0;

  bool line(char* type, std::string_view* body) {
    if (pos >= s.size()) return false;
    size_t cr = s.find("\r\n", pos);
    if (cr == std::string_view::npos) return false;
    *type = s[pos];
    *body = s.substr(pos + 1, cr - pos - 1);
    pos = cr + 2;
    return true;
  }
  static bool toInt(std::string_view b, int64_t* out) {
    if (b.empty()) return false;
    int64_t v = 0;
    bool neg = b[0] == '-';
    for (size_t i = neg ? 1 : 0; i < b.size(); ++i) {
      if (b[i] < '0' || b[i] > '9') return false;
      v = v * 10 + (b[i] - '0');
    }
    *out = neg ? -v : v;
    return true;
  }
  // Reads a string element (bulk or simple); `skip` accepts and ignores nulls too.
  bool string(std::string_view* out) {
    char t;
    std::string_view body;
    if (!line(&t, &body)) return false;
    if (t == '+') {
      *out = body;
      return true;
    }
    if (t == '_') {
      *out = {};
      return true;
    }
    if (t != '$') return false;
    int64_t n;
    if (!toInt(body, &n)) return false;
    if (n < 0) {
      *out = {};
      return true;
    }
    if (pos + static_cast<size_t>(n) + 2 > s.size()) return false;
    *out = s.substr(pos, static_cast<size_t>(n));
    pos += static_cast<size_t>(n) + 2;
    return true;
  }
};

bool is(std::string_view a, const char* b) {
  return a.size() == strlen(b) && strncasecmp(a.data(), b, a.size()) == 0;
}

}  // namespace

PubsubFrame peekPubsubFrame(std::string_view frame) {
  PubsubFrame f;
  Cursor c{frame};
  char t;
  std::string_view body;
  if (!c.line(&t, &body) || (t != '*' && t != '>')) return f;
  int64_t n;
  if (!Cursor::toInt(body, &n) || n < 1) {
    if (t == '>') f.kind = PubsubKind::kOtherPush;
    return f;
  }
  std::string_view kind;
  if (!c.string(&kind)) {
    if (t == '>') f.kind = PubsubKind::kOtherPush;
    return f;
  }
  static constexpr struct {
    const char* name;
    PubsubKind kind;
  } kKinds[] = {
      {"message", PubsubKind::kMessage},           {"pmessage", PubsubKind::kPmessage},
      {"smessage", PubsubKind::kSmessage},         {"subscribe", PubsubKind::kSubscribe},
      {"psubscribe", PubsubKind::kPsubscribe},     {"ssubscribe", PubsubKind::kSsubscribe},
      {"unsubscribe", PubsubKind::kUnsubscribe},   {"punsubscribe", PubsubKind::kPunsubscribe},
      {"sunsubscribe", PubsubKind::kSunsubscribe}, {"pong", PubsubKind::kPong},
      {"invalidate", PubsubKind::kInvalidate},
  };
  for (const auto& k : kKinds) {
    if (is(kind, k.name)) f.kind = k.kind;
  }
  if (f.kind == PubsubKind::kNone) {
    if (t == '>') f.kind = PubsubKind::kOtherPush;
    return f;
  }
  if (f.kind == PubsubKind::kPong && t != '*') f.kind = PubsubKind::kOtherPush;
  if (isSubscribeReply(f.kind) && n == 3) {
    size_t before = c.pos;
    if (c.string(&f.channel)) {
      f.channel_is_nil = frame.substr(before, 3) == "$-1" || frame.substr(before, 1) == "_";
      if (c.line(&t, &body) && t == ':') Cursor::toInt(body, &f.count);
    }
  }
  return f;
}

}  // namespace readthru::resp
