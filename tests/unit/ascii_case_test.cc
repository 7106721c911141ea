#include "resp/ascii_case.h"

#include <doctest/doctest.h>

#include <string>

namespace readthru {
namespace {

TEST_CASE("equalsIgnoreCase folds A-Z only") {
  CHECK(equalsIgnoreCase("GET", "get"));
  CHECK(equalsIgnoreCase("cLiEnT", "CLIENT"));
  CHECK(equalsIgnoreCase("", ""));
  CHECK_FALSE(equalsIgnoreCase("get", "gets"));
  CHECK_FALSE(equalsIgnoreCase("[", "{"));  // 0x5B and 0x7B differ by 0x20 but are not letters
  CHECK_FALSE(equalsIgnoreCase("\xc4", "\xe4"));  // Latin-1 Ä and ä: bytes, not letters
  CHECK(equalsIgnoreCase(std::string("a\0B", 3), std::string("A\0b", 3)));
}

TEST_CASE("asciiLower leaves every byte but A-Z as it is") {
  CHECK(asciiLower("HSET") == "hset");
  CHECK(asciiLower("Config|SET") == "config|set");
  CHECK(asciiLower("\xc4@[Z]") == "\xc4@[z]");
  CHECK(asciiLower(std::string("X\0Y", 3)) == std::string("x\0y", 3));
}

}  // namespace
}  // namespace readthru
