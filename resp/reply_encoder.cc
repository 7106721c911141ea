#include "resp/reply_encoder.h"

#include <charconv>
#include <cstring>

namespace readthru::resp {

void ReplyEncoder::header(char type, uint64_t n) {
  // One append per element: this runs for every element readthru encodes.
  char buf[24];
  buf[0] = type;
  auto [end, ec] = std::to_chars(buf + 1, buf + sizeof buf - 2, n);
  (void)ec;
  *end++ = '\r';
  *end++ = '\n';
  out_->append(buf, static_cast<size_t>(end - buf));
}

void ReplyEncoder::simple(std::string_view s) {
  out_->push_back('+');
  out_->append(s);
  out_->append("\r\n");
}

void ReplyEncoder::error(std::string_view message) {
  out_->push_back('-');
  // An error line cannot carry CR or LF; Redis replaces them with spaces.
  for (char c : message) out_->push_back(c == '\r' || c == '\n' ? ' ' : c);
  out_->append("\r\n");
}

void ReplyEncoder::integer(int64_t n) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
  (void)ec;
  out_->push_back(':');
  out_->append(buf, static_cast<size_t>(end - buf));
  out_->append("\r\n");
}

void ReplyEncoder::bulk(std::string_view s) {
  char head[24];
  head[0] = '$';
  auto [end, ec] = std::to_chars(head + 1, head + sizeof head - 2, s.size());
  (void)ec;
  *end++ = '\r';
  *end++ = '\n';
  auto h = static_cast<size_t>(end - head);
  size_t at = out_->size();
  out_->resize(at + h + s.size() + 2);
  char* p = out_->data() + at;
  std::memcpy(p, head, h);
  if (!s.empty()) std::memcpy(p + h, s.data(), s.size());
  p[h + s.size()] = '\r';
  p[h + s.size() + 1] = '\n';
}

void ReplyEncoder::verbatim(std::string_view format, std::string_view text) {
  if (protocol_ < 3) return bulk(text);
  header('=', format.size() + 1 + text.size());
  out_->append(format);
  out_->append(":");
  out_->append(text);
  out_->append("\r\n");
}

void ReplyEncoder::null() { out_->append(protocol_ >= 3 ? "_\r\n" : "$-1\r\n"); }

void ReplyEncoder::arrayHeader(size_t n) { header('*', n); }

void ReplyEncoder::mapHeader(size_t pairs) {
  if (protocol_ >= 3) {
    header('%', pairs);
  } else {
    header('*', pairs * 2);
  }
}

void ReplyEncoder::command(std::string* out, std::initializer_list<std::string_view> argv) {
  ReplyEncoder e(out, 2);
  e.arrayHeader(argv.size());
  for (auto a : argv) e.bulk(a);
}

}  // namespace readthru::resp
