#pragma once
// ReplyTarget: where an upstream connection delivers the reply (or replies) to one request.

#include <cstddef>
#include <string>
#include <string_view>

namespace readthru::backends {

class ReplyTarget {
 public:
  // Part of the current reply, in order; a large reply arrives in many pieces.
  virtual void replyData(const char* data, size_t len) = 0;
  // A whole reply at once (buffered connections); the target may steal the bytes.
  virtual void replyFrame(std::string& frame) { replyData(frame.data(), frame.size()); }
  // The current reply ended. Returns true when this request expects another reply (SUBSCRIBE a b
  // gets one per channel); the target then stays at the head of the connection's queue.
  virtual bool replyDone(char type) = 0;
  // The connection lost the request: `error` is a Redis-style error text (no leading '-'). Called
  // once, instead of any further replyData/replyDone, possibly after part of a reply arrived.
  virtual void replyFailed(std::string_view error) = 0;

 protected:
  ~ReplyTarget() = default;
};

}  // namespace readthru::backends
