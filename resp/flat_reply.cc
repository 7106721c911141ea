#include "resp/flat_reply.h"

#include <charconv>
#include <cstdint>

namespace readthru::resp {

bool splitFlatReply(std::string_view r, std::vector<std::pair<size_t, size_t>>* out) {
  auto line = [&r](size_t from, int64_t* n) -> size_t {
    size_t end = r.find("\r\n", from);
    if (end == std::string_view::npos) return 0;
    auto [p, ec] = std::from_chars(r.data() + from, r.data() + end, *n);
    if (ec != std::errc() || p != r.data() + end) return 0;
    return end + 2;
  };
  if (r.empty() || (r[0] != '*' && r[0] != '%')) return false;
  int64_t count = 0;
  size_t pos = line(1, &count);
  if (pos == 0 || count < 0) return false;
  if (r[0] == '%') count *= 2;
  out->clear();
  for (int64_t i = 0; i < count; ++i) {
    if (pos >= r.size()) return false;
    size_t start = pos;
    if (r[pos] == '_') {
      if (r.compare(pos, 3, "_\r\n") != 0) return false;
      pos += 3;
    } else if (r[pos] == '+' || r[pos] == '-' || r[pos] == ':' || r[pos] == '#' || r[pos] == ',' ||
               r[pos] == '(') {
      size_t end = r.find("\r\n", pos);
      if (end == std::string_view::npos) return false;
      pos = end + 2;
    } else if (r[pos] == '$' || r[pos] == '!' || r[pos] == '=') {
      int64_t len = 0;
      pos = line(pos + 1, &len);
      if (pos == 0) return false;
      if (len >= 0) {
        pos += static_cast<size_t>(len) + 2;
        if (pos > r.size()) return false;
      }
    } else {
      return false;
    }
    out->emplace_back(start, pos - start);
  }
  return pos == r.size();
}

bool bulkPayload(std::string_view e, std::string_view* payload) {
  if (isNilReply(e) || e.empty() || e[0] != '$') return false;
  size_t eol = e.find("\r\n");
  if (eol == std::string_view::npos || e.size() < eol + 4) return false;
  *payload = e.substr(eol + 2, e.size() - eol - 4);
  return true;
}

}  // namespace readthru::resp
