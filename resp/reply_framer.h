#pragma once
// ReplyFramer: finds where each reply ends in a stream of upstream bytes, for RESP2 and every
// RESP3 type (maps, sets, doubles, big numbers, verbatim strings, attributes, pushes), at any
// nesting depth and any size. It does not decode or keep values: bytes are handed on as they are
// scanned, so a reply of hundreds of MB streams through without being held whole here.
// hiredis 0.14's reader stops at 7 levels (COMMAND DOCS has 13) and knows no RESP3; this scanner
// keeps an explicit stack instead of recursion.
//
// A push at the top is a reply of its own; inside an aggregate it is out of band, with one
// exception. Redis 7.0 writes the messages a transaction publishes to its own subscriber in the
// middle of EXEC's array, where they are not elements; but a SUBSCRIBE or UNSUBSCRIBE run by EXEC
// answers with a push that is its element. So a push inside an aggregate counts as an element
// only when it is such a confirmation (its first element is "subscribe", "unsubscribe",
// "psubscribe", "punsubscribe", "ssubscribe" or "sunsubscribe").

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace readthru::resp {

class ReplyFramer {
 public:
  struct Result {
    size_t consumed = 0;    // bytes of `data` that belong to the current reply
    bool complete = false;  // the current reply ended at data[consumed - 1]
    bool error = false;     // the stream is not RESP; message()
    char type = 0;          // first byte of the reply being scanned ('+', '*', '>', ...)
  };

  // Scans at most `len` bytes, stopping right after the end of the current reply. Call again
  // with the remaining bytes for the next reply. Partial replies are resumed across calls.
  Result feed(const char* data, size_t len);

  // True between the first byte of a reply and its end.
  bool inReply() const { return top_type_ != 0; }
  const std::string& message() const { return message_; }

  // Largest aggregate length or bulk length accepted, to bound a misbehaving peer.
  void setMaxLength(int64_t n) { max_length_ = n; }

 private:
  // A whole scalar (simple line, bulk, null bulk) or array, set or map of scalars at the start
  // of `data`, the replies of most commands, framed in one pass; false for anything else, or
  // anything not whole yet (then the state machine below runs).
  bool feedWhole(const char* data, size_t len, Result* r) const;

  enum class State { kType, kLine, kLength, kBulk };
  struct Level {
    int64_t remaining;
    bool attribute;     // an attribute map precedes the value it annotates and is not an element
    bool push = false;  // a push inside an aggregate: an element only if a confirmation
    bool confirmation = false;  // its first element names a (un)subscribe kind
    bool first = true;          // none of its elements has ended yet
  };
  // `not_element`: the value that ended annotates or interrupts its level (an empty attribute
  // map or push) instead of being one of its elements.
  void valueDone(bool not_element, Result* r);
  bool lengthDone(Result* r);

  State state_ = State::kType;
  char type_ = 0;      // type byte of the value being scanned
  char top_type_ = 0;  // type byte of the outermost value of the current reply
  bool saw_cr_ = false;
  std::string number_;     // digits of a length line
  int64_t bulk_left_ = 0;  // payload bytes plus the trailing CRLF
  std::vector<Level> stack_;
  bool capturing_ = false;  // the bulk being scanned is a nested push's first element
  std::string kind_;        // its payload so far
  int64_t max_length_ = 4ll * 1024 * 1024 * 1024;
  std::string message_;
};

}  // namespace readthru::resp
