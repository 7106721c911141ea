#include "resp/reply_framer.h"

#include <algorithm>
#include <cstring>
#include <string_view>

namespace readthru::resp {

namespace {

// The first element of a push that confirms a (un)subscription, as Redis writes it.
bool isConfirmationKind(std::string_view kind) {
  return kind == "subscribe" || kind == "unsubscribe" || kind == "psubscribe" ||
         kind == "punsubscribe" || kind == "ssubscribe" || kind == "sunsubscribe";
}

// The longest of those.
constexpr int64_t kMaxConfirmationKind = 12;

}  // namespace

void ReplyFramer::valueDone(bool not_element, Result* r) {
  if (not_element) return;  // the element is still to come at this position
  while (!stack_.empty()) {
    Level& top = stack_.back();
    top.first = false;
    if (--top.remaining > 0) return;
    bool element = !top.attribute && (!top.push || top.confirmation);
    stack_.pop_back();
    if (!element) return;
  }
  r->complete = true;
}

// Called when a length line ("*3", "$5", "%2", ...) has been read in full. Returns false on error.
bool ReplyFramer::lengthDone(Result* r) {
  int64_t n = 0;
  bool negative = false;
  size_t i = 0;
  if (!number_.empty() && number_[0] == '-') {
    negative = true;
    i = 1;
  }
  if (i == number_.size()) {
    message_ = "invalid length in reply";
    r->error = true;
    return false;
  }
  for (; i < number_.size(); ++i) {
    char c = number_[i];
    if (c < '0' || c > '9') {
      message_ = "invalid length in reply";
      r->error = true;
      return false;
    }
    if (n > (max_length_ - (c - '0')) / 10) {
      message_ = "reply length over the limit";
      r->error = true;
      return false;
    }
    n = n * 10 + (c - '0');
  }
  if (n > max_length_) {
    message_ = "reply length over the limit";
    r->error = true;
    return false;
  }
  if (negative) {
    if (n != 1 || (type_ != '$' && type_ != '*')) {
      message_ = "invalid negative length in reply";
      r->error = true;
      return false;
    }
    state_ = State::kType;
    valueDone(false, r);  // a RESP2 null bulk or null array
    return true;
  }
  switch (type_) {
    case '$':
    case '!':
    case '=':
      bulk_left_ = n + 2;
      state_ = State::kBulk;
      capturing_ = type_ == '$' && n <= kMaxConfirmationKind && !stack_.empty() &&
                   stack_.back().push && stack_.back().first;
      if (capturing_) kind_.clear();
      return true;
    case '%':
    case '|':
      n *= 2;
      [[fallthrough]];
    default:  // '*', '~', '>'
      state_ = State::kType;
      bool nested_push = type_ == '>' && !stack_.empty();
      if (n == 0) {
        valueDone(type_ == '|' || nested_push, r);
      } else {
        stack_.push_back(Level{n, type_ == '|'});
        stack_.back().push = nested_push;
      }
      return true;
  }
}

namespace {

// A length as Redis writes it, from data[*i]: 1 to 18 digits, then CRLF. Anything else (a sign,
// a lone CR, more digits) is left to the state machine.
bool lengthLine(const char* data, size_t len, size_t* i, int64_t* n) {
  size_t start = *i, j = *i;
  int64_t v = 0;
  // At most 18 digits are read, so `v` cannot overflow; a 19th fails the CRLF test.
  for (; j < len && j - start < 18 && data[j] >= '0' && data[j] <= '9'; ++j) {
    v = v * 10 + (data[j] - '0');
  }
  if (j == start || len - j < 2 || data[j] != '\r' || data[j + 1] != '\n') return false;
  *i = j + 2;
  *n = v;
  return true;
}

// The types whose value is the rest of the line: RESP2's + - :, RESP3's , # _ (.
bool isLineType(char t) {
  return t == '+' || t == '-' || t == ':' || t == ',' || t == '#' || t == '_' || t == '(';
}

// Where a whole scalar starting at data[i] ends (a simple line, a bulk, a null bulk), or 0.
size_t scalarEnd(const char* data, size_t len, size_t i, int64_t max_length) {
  if (i >= len) return 0;
  if (isLineType(data[i])) {
    const char* nl = static_cast<const char*>(memchr(data + i + 1, '\n', len - i - 1));
    return nl == nullptr ? 0 : static_cast<size_t>(nl - data) + 1;
  }
  if (data[i] != '$') return 0;
  if (len - i >= 5 && memcmp(data + i, "$-1\r\n", 5) == 0) return i + 5;
  size_t j = i + 1;
  int64_t n = 0;
  if (!lengthLine(data, len, &j, &n) || n > max_length || len - j < static_cast<size_t>(n) + 2) {
    return 0;
  }
  return j + static_cast<size_t>(n) + 2;  // the two bytes after the payload are skipped
}

}  // namespace

bool ReplyFramer::feedWhole(const char* data, size_t len, Result* r) const {
  size_t end = 0;
  if (data[0] == '*' || data[0] == '~' || data[0] == '%') {
    // An array, set or map of scalars (MGET, HMGET, EXEC of simple commands, SMEMBERS, HGETALL
    // to a RESP3 client); nested ones go the general way.
    size_t i = 1;
    int64_t n = 0;
    if (!lengthLine(data, len, &i, &n) || n > max_length_) return false;
    if (data[0] == '%') n *= 2;  // a key and a value per entry
    for (int64_t k = 0; k < n; ++k) {
      i = scalarEnd(data, len, i, max_length_);
      if (i == 0) return false;
    }
    end = i;
  } else {
    end = scalarEnd(data, len, 0, max_length_);
    if (end == 0) return false;
  }
  r->consumed = end;
  r->complete = true;
  r->type = data[0];
  return true;
}

ReplyFramer::Result ReplyFramer::feed(const char* data, size_t len) {
  Result r;
  if (len > 0 && top_type_ == 0 && feedWhole(data, len, &r)) return r;
  size_t i = 0;
  while (i < len && !r.complete) {
    switch (state_) {
      case State::kType: {
        type_ = data[i++];
        if (top_type_ == 0) top_type_ = type_;
        saw_cr_ = false;
        if (isLineType(type_)) {
          state_ = State::kLine;
          break;
        }
        switch (type_) {
          case '$':
          case '!':
          case '=':
          case '*':
          case '~':
          case '>':
          case '%':
          case '|':
            state_ = State::kLength;
            number_.clear();
            break;
          default:
            message_ = "unexpected byte in reply: ";
            message_.push_back(type_);
            r.error = true;
            r.consumed = i;
            r.type = top_type_;
            return r;
        }
        break;
      }
      case State::kLine: {
        // Simple lines can be long (MONITOR output): skip to the '\n' without copying.
        const char* nl = static_cast<const char*>(memchr(data + i, '\n', len - i));
        if (nl == nullptr) {
          i = len;
          break;
        }
        i = static_cast<size_t>(nl - data) + 1;
        state_ = State::kType;
        valueDone(false, &r);
        break;
      }
      case State::kLength: {
        char c = data[i++];
        if (c == '\r') {
          saw_cr_ = true;
          break;
        }
        if (saw_cr_ && c != '\n') {
          message_ = "CR without LF in a length line";
          r.error = true;
          r.consumed = i;
          r.type = top_type_;
          return r;
        }
        if (c == '\n') {
          if (!lengthDone(&r)) {
            r.consumed = i;
            return r;
          }
          break;
        }
        if (number_.size() > 20) {
          message_ = "length line too long in reply";
          r.error = true;
          r.consumed = i;
          return r;
        }
        number_.push_back(c);
        break;
      }
      case State::kBulk: {
        size_t take = len - i;
        if (static_cast<int64_t>(take) > bulk_left_) take = static_cast<size_t>(bulk_left_);
        if (capturing_ && bulk_left_ > 2) {
          kind_.append(data + i, std::min(take, static_cast<size_t>(bulk_left_ - 2)));
        }
        i += take;
        bulk_left_ -= static_cast<int64_t>(take);
        if (bulk_left_ == 0) {
          state_ = State::kType;
          if (capturing_) {
            capturing_ = false;
            stack_.back().confirmation = isConfirmationKind(kind_);
          }
          valueDone(false, &r);
        }
        break;
      }
    }
  }
  r.consumed = i;
  r.type = top_type_;
  if (r.complete) top_type_ = 0;
  return r;
}

}  // namespace readthru::resp
