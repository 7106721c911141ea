#pragma once
// ReplyReader: reads one complete RESP2 reply in place, element by element, for replies too nested
// for splitFlatReply (flat_reply.h) and too large to be worth a tree of allocations: a stream
// read of 500 entries is about 5,000 elements (hiredis's reader allocates and frees each).
//
//   ReplyReader r(bytes);
//   int64_t n;
//   if (r.array(&n)) for (int64_t i = 0; i < n; ++i) { std::string_view s; r.bulk(&s); ... }
//   if (!r.ok()) ...  // the reply was not of the shape read
//
// Each read consumes one element when it is of the kind asked for; otherwise it consumes nothing
// and the reader fails: every later read fails too, so a caller may check ok() once at the end.
// The views point into `bytes`, which must outlive them.

#include <cstdint>
#include <string_view>

namespace readthru::resp {

class ReplyReader {
 public:
  explicit ReplyReader(std::string_view bytes) : r_(bytes) {}

  // An array header: its element count, or -1 for a nil array ("*-1").
  bool array(int64_t* n);
  // A bulk string, or (nil set, when given) a nil ("$-1"); without `nil` a nil fails.
  bool bulk(std::string_view* s, bool* nil = nullptr);
  // Whether the next element is a nil bulk or nil array; consumes it if so.
  bool nil();
  // Any one element, with everything nested in it.
  bool skip();

  bool ok() const { return ok_; }
  bool atEnd() const { return ok_ && pos_ == r_.size(); }

 private:
  // The integer of a header line at pos_ + 1 ("*3\r\n"), and the position after the line.
  bool header(int64_t* n, size_t* next) const;
  bool fail() {
    ok_ = false;
    return false;
  }

  std::string_view r_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace readthru::resp
