#include "proxy/redis_int.h"

#include <cstdint>
#include <string_view>

#include <doctest/doctest.h>

namespace readthru {
namespace {

TEST_CASE("redis int: what string2ll takes") {
  struct Case {
    std::string_view text;
    int64_t value;
  };
  for (const Case& c :
       {Case{"0", 0}, Case{"7", 7}, Case{"-1", -1}, Case{"10", 10},
        Case{"9223372036854775807", INT64_MAX}, Case{"-9223372036854775808", INT64_MIN}}) {
    CAPTURE(c.text);
    int64_t v = 3;
    CHECK(parseRedisInt(c.text, &v));
    CHECK(v == c.value);
  }
}

TEST_CASE("redis int: what string2ll refuses") {
  for (std::string_view bad : {"", "-", "+1", "01", "-01", "-0", "00", " 1", "1 ", "1.5", "1e3",
                               "0x10", "ten", "9223372036854775808", "-9223372036854775809"}) {
    CAPTURE(bad);
    int64_t v = 3;
    CHECK_FALSE(parseRedisInt(bad, &v));
  }
}

}  // namespace
}  // namespace readthru
