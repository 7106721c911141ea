#include "resp/reply_reader.h"

#include <charconv>

namespace readthru::resp {

bool ReplyReader::header(int64_t* n, size_t* next) const {
  size_t end = r_.find("\r\n", pos_ + 1);
  if (end == std::string_view::npos) return false;
  auto [p, ec] = std::from_chars(r_.data() + pos_ + 1, r_.data() + end, *n);
  if (ec != std::errc() || p != r_.data() + end) return false;
  *next = end + 2;
  return true;
}

bool ReplyReader::array(int64_t* n) {
  size_t next = 0;
  if (!ok_ || pos_ >= r_.size() || r_[pos_] != '*' || !header(n, &next) || *n < -1) return fail();
  pos_ = next;
  return true;
}

bool ReplyReader::bulk(std::string_view* s, bool* nil) {
  int64_t len = 0;
  size_t next = 0;
  if (!ok_ || pos_ >= r_.size() || r_[pos_] != '$' || !header(&len, &next) || len < -1) {
    return fail();
  }
  if (len == -1) {
    if (nil == nullptr) return fail();
    *nil = true;
    *s = {};
    pos_ = next;
    return true;
  }
  auto size = static_cast<size_t>(len);
  if (next + size + 2 > r_.size() || r_.compare(next + size, 2, "\r\n") != 0) return fail();
  if (nil != nullptr) *nil = false;
  *s = r_.substr(next, size);
  pos_ = next + size + 2;
  return true;
}

bool ReplyReader::nil() {
  if (!ok_ || pos_ >= r_.size() || (r_[pos_] != '$' && r_[pos_] != '*')) return false;
  int64_t n = 0;
  size_t next = 0;
  if (!header(&n, &next) || n != -1) return false;
  pos_ = next;
  return true;
}

bool ReplyReader::skip() {
  if (!ok_ || pos_ >= r_.size()) return fail();
  switch (r_[pos_]) {
    case '+':
    case '-':
    case ':': {
      size_t end = r_.find("\r\n", pos_);
      if (end == std::string_view::npos) return fail();
      pos_ = end + 2;
      return true;
    }
    case '$': {
      std::string_view s;
      bool is_nil = false;
      return bulk(&s, &is_nil);
    }
    case '*': {
      int64_t n = 0;
      if (!array(&n)) return false;
      for (int64_t i = 0; i < n; ++i) {
        if (!skip()) return false;
      }
      return true;
    }
    default:
      return fail();
  }
}

}  // namespace readthru::resp
