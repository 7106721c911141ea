#include "proxy/redis_int.h"

#include <charconv>

namespace readthru {

bool parseRedisInt(std::string_view s, int64_t* v) {
  std::string_view digits = !s.empty() && s[0] == '-' ? s.substr(1) : s;
  if (digits.empty() || (digits[0] == '0' && s.size() > 1)) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *v);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace readthru
