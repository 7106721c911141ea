#include "resp/request_parser.h"

#include <charconv>
#include <cstring>

#include "resp/errors.h"

namespace readthru::resp {
namespace {

// Finds `c` in [p, p+n) the way redis-server's strchr() on its NUL-terminated query buffer does:
// a NUL byte ends the search as if the buffer ended there.
const char* findStopAtNul(const char* p, size_t n, char c) {
  for (size_t i = 0; i < n; ++i) {
    if (p[i] == c) return p + i;
    if (p[i] == '\0') return nullptr;
  }
  return nullptr;
}

// redis-server's string2ll: optional '-', digits, no leading zeros (except "0"), no '+', no spaces.
bool parseLongLong(const char* p, size_t n, int64_t* out) {
  if (n == 0 || n > 20) return false;
  if (n == 1 && p[0] == '0') {
    *out = 0;
    return true;
  }
  size_t i = 0;
  bool negative = false;
  if (p[0] == '-') {
    negative = true;
    i = 1;
    if (n == 1) return false;
  }
  if (p[i] < '1' || p[i] > '9') return false;
  uint64_t v = 0;
  for (; i < n; ++i) {
    if (p[i] < '0' || p[i] > '9') return false;
    uint64_t d = static_cast<uint64_t>(p[i] - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  if (negative) {
    if (v > static_cast<uint64_t>(INT64_MAX) + 1) return false;
    *out = static_cast<int64_t>(0 - v);
  } else {
    if (v > static_cast<uint64_t>(INT64_MAX)) return false;
    *out = static_cast<int64_t>(v);
  }
  return true;
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// sdssplitargs skips isspace() between arguments, but an unquoted argument ends only at one of
// these (so "a\vb" is one argument).
bool isSpace(char c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\v' || c == '\f';
}
bool endsToken(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\0'; }

}  // namespace

bool splitInlineArgs(std::string_view line, std::vector<std::string_view>* out,
                     std::forward_list<std::string>* storage) {
  size_t i = 0;
  const size_t n = line.size();
  while (true) {
    while (i < n && isSpace(line[i])) ++i;
    if (i >= n) return true;
    // Fast path: an unquoted argument without escapes is a view into the line.
    size_t start = i;
    bool plain = true;
    for (size_t j = i; j < n && !endsToken(line[j]); ++j) {
      if (line[j] == '"' || line[j] == '\'') {
        plain = false;
        break;
      }
    }
    if (plain) {
      while (i < n && !endsToken(line[i])) ++i;
      out->push_back(line.substr(start, i - start));
      continue;
    }
    std::string& cur = storage->emplace_front();
    bool inq = false;   // inside "double quotes"
    bool insq = false;  // inside 'single quotes'
    bool done = false;
    while (!done) {
      if (inq) {
        if (i >= n) return false;
        if (line[i] == '\\' && i + 3 < n && line[i + 1] == 'x' && hexValue(line[i + 2]) >= 0 &&
            hexValue(line[i + 3]) >= 0) {
          cur.push_back(static_cast<char>(hexValue(line[i + 2]) * 16 + hexValue(line[i + 3])));
          i += 3;
        } else if (line[i] == '\\' && i + 1 < n) {
          ++i;
          char c;
          switch (line[i]) {
            case 'n':
              c = '\n';
              break;
            case 'r':
              c = '\r';
              break;
            case 't':
              c = '\t';
              break;
            case 'b':
              c = '\b';
              break;
            case 'a':
              c = '\a';
              break;
            default:
              c = line[i];
              break;
          }
          cur.push_back(c);
        } else if (line[i] == '"') {
          // The closing quote must be followed by a space or the end of the line.
          if (i + 1 < n && !isSpace(line[i + 1])) return false;
          done = true;
        } else {
          cur.push_back(line[i]);
        }
      } else if (insq) {
        if (i >= n) return false;
        if (line[i] == '\\' && i + 1 < n && line[i + 1] == '\'') {
          ++i;
          cur.push_back('\'');
        } else if (line[i] == '\'') {
          if (i + 1 < n && !isSpace(line[i + 1])) return false;
          done = true;
        } else {
          cur.push_back(line[i]);
        }
      } else {
        if (i >= n) {
          done = true;
          break;
        }
        switch (line[i]) {
          case ' ':
          case '\n':
          case '\r':
          case '\t':
          case '\0':
            done = true;
            break;
          case '"':
            inq = true;
            break;
          case '\'':
            insq = true;
            break;
          default:
            cur.push_back(line[i]);
            break;
        }
      }
      if (i < n) ++i;
    }
    out->push_back(cur);
  }
}

void RequestParser::reset() {
  argc_ = -1;
  bulk_len_ = -1;
  pos_ = 0;
  args_.clear();
}

ParseStatus RequestParser::fail(std::string_view message) {
  error_.assign(message);
  reset();
  return ParseStatus::kError;
}

size_t RequestParser::bytesWanted() const {
  if (argc_ > 0 && bulk_len_ >= 0) return pos_ + static_cast<size_t>(bulk_len_) + 2;
  return 0;
}

ParseStatus RequestParser::parse(const char* data, size_t len, size_t* consumed, Command* out,
                                 bool authenticated) {
  *consumed = 0;
  while (true) {
    if (len == 0) return ParseStatus::kNeedMore;
    ParseStatus st;
    size_t used = 0;
    if (argc_ >= 0 || data[0] == '*') {
      st = parseMultibulk(data, len, &used, out, authenticated);
    } else {
      st = parseInline(data, len, &used, out);
    }
    *consumed += used;
    if (st != ParseStatus::kNeedMore || used == 0) return st;
    // An empty request was skipped: go on with the bytes after it.
    data += used;
    len -= used;
  }
}

ParseStatus RequestParser::parseInline(const char* data, size_t len, size_t* consumed,
                                       Command* out) {
  const char* nl = findStopAtNul(data, len, '\n');
  if (nl == nullptr) {
    if (len > limits_->max_inline) return fail(err::kTooBigInline);
    return ParseStatus::kNeedMore;
  }
  size_t line_len = static_cast<size_t>(nl - data);
  size_t total = line_len + 1;
  if (line_len > 0 && data[line_len - 1] == '\r') --line_len;
  out->argv.clear();
  unescaped_.clear();
  if (!splitInlineArgs(std::string_view(data, line_len), &out->argv, &unescaped_)) {
    return fail(err::kUnbalancedQuotes);
  }
  *consumed = total;
  if (out->argv.empty()) return ParseStatus::kNeedMore;  // blank line: skipped
  out->raw = std::string_view(data, total);
  out->is_inline = true;
  return ParseStatus::kCommand;
}

bool RequestParser::parseWholeMultibulk(const char* data, size_t len, size_t* consumed,
                                        Command* out, bool authenticated) const {
  size_t i = 1;  // after the '*'
  // A length as every client writes it: 1 to 18 digits, no leading zero, then CRLF. Other forms
  // ("0", "-1", "+5", a lone CR, a NUL) and lengths past the limits are left to the general
  // path, which accepts or refuses them as redis-server does.
  auto length = [&](int64_t* v) {
    size_t start = i;
    if (i >= len || data[i] < '1' || data[i] > '9') return false;
    uint64_t n = 0;
    for (; i < len && i - start <= 18 && data[i] >= '0' && data[i] <= '9'; ++i) {
      n = n * 10 + static_cast<uint64_t>(data[i] - '0');
    }
    if (i - start > 18 || len - i < 2 || data[i] != '\r' || data[i + 1] != '\n') return false;
    i += 2;
    *v = static_cast<int64_t>(n);
    return true;
  };
  int64_t argc = 0;
  if (!length(&argc) || argc > limits_->max_multibulk ||
      (!authenticated && argc > limits_->unauth_max_multibulk)) {
    return false;
  }
  out->argv.clear();
  for (int64_t a = 0; a < argc; ++a) {
    int64_t n = 0;
    if (i >= len || data[i] != '$') return false;
    ++i;
    if (!length(&n) || n > limits_->max_bulk || (!authenticated && n > limits_->unauth_max_bulk)) {
      return false;
    }
    // Like redis-server, the two bytes after the payload are skipped, not checked.
    if (len - i < static_cast<size_t>(n) + 2) return false;
    out->argv.emplace_back(data + i, static_cast<size_t>(n));
    i += static_cast<size_t>(n) + 2;
  }
  out->raw = std::string_view(data, i);
  out->is_inline = false;
  *consumed = i;
  return true;
}

ParseStatus RequestParser::parseMultibulk(const char* data, size_t len, size_t* consumed,
                                          Command* out, bool authenticated) {
  if (argc_ < 0 && parseWholeMultibulk(data, len, consumed, out, authenticated)) {
    return ParseStatus::kCommand;
  }
  if (argc_ < 0) {
    const char* cr = findStopAtNul(data, len, '\r');
    if (cr == nullptr) {
      if (len > limits_->max_inline) return fail(err::kTooBigMbulkCount);
      return ParseStatus::kNeedMore;
    }
    size_t cr_off = static_cast<size_t>(cr - data);
    if (cr_off + 2 > len) return ParseStatus::kNeedMore;  // the '\n' is not here yet
    int64_t n = 0;
    if (!parseLongLong(data + 1, cr_off - 1, &n) || n > limits_->max_multibulk) {
      return fail(err::kInvalidMultibulkLength);
    }
    if (n > limits_->unauth_max_multibulk && !authenticated) {
      return fail(err::kUnauthMultibulkLength);
    }
    if (n <= 0) {
      *consumed = cr_off + 2;  // an empty request: skipped
      return ParseStatus::kNeedMore;
    }
    argc_ = n;
    pos_ = cr_off + 2;
    args_.clear();
    args_.reserve(static_cast<size_t>(n < 1024 ? n : 1024));
  }
  while (static_cast<int64_t>(args_.size()) < argc_) {
    if (bulk_len_ < 0) {
      const char* cr = findStopAtNul(data + pos_, len - pos_, '\r');
      if (cr == nullptr) {
        if (len - pos_ > limits_->max_inline) return fail(err::kTooBigBulkCount);
        return ParseStatus::kNeedMore;
      }
      size_t cr_off = static_cast<size_t>(cr - data);
      if (cr_off + 2 > len) return ParseStatus::kNeedMore;
      if (data[pos_] != '$') {
        std::string msg = "ERR Protocol error: expected '$', got '";
        msg.push_back(data[pos_]);
        msg.push_back('\'');
        return fail(msg);
      }
      int64_t n = 0;
      if (!parseLongLong(data + pos_ + 1, cr_off - pos_ - 1, &n) || n < 0 ||
          n > limits_->max_bulk) {
        return fail(err::kInvalidBulkLength);
      }
      if (n > limits_->unauth_max_bulk && !authenticated) return fail(err::kUnauthBulkLength);
      bulk_len_ = n;
      pos_ = cr_off + 2;
    }
    if (len - pos_ < static_cast<size_t>(bulk_len_) + 2) return ParseStatus::kNeedMore;
    args_.emplace_back(pos_, static_cast<size_t>(bulk_len_));
    pos_ += static_cast<size_t>(bulk_len_) + 2;
    bulk_len_ = -1;
  }
  out->argv.clear();
  for (const auto& [off, n] : args_) out->argv.emplace_back(data + off, n);
  out->raw = std::string_view(data, pos_);
  out->is_inline = false;
  *consumed = pos_;
  reset();
  return ParseStatus::kCommand;
}

}  // namespace readthru::resp
