// The config keys of logging: log_format.
#include <cstdint>
#include <string>

#include <doctest/doctest.h>

#include "tests/unit/test_temp_dir.h"

#include "proxy/config.h"

namespace readthru {
namespace {

using test::TempDir;

TEST_CASE("observability config: defaults are Redis's") {
  TempDir dir;
  Config c;
  std::string error;
  REQUIRE(loadConfigFile(dir.write("readthru.toml", "listen = \"127.0.0.1:6380\"\n"), &c, &error));
  CHECK(c.log_format == "text");
}

TEST_CASE("observability config: values are read") {
  TempDir dir;
  Config c;
  std::string error;
  REQUIRE(loadConfigFile(dir.write("readthru.toml", "log_format = \"json\"\n"), &c, &error));
  CHECK(c.log_format == "json");
  REQUIRE(loadConfigFile(dir.write("readthru.toml", "log_format = \"text\"\n"), &c, &error));
  CHECK(c.log_format == "text");
}

TEST_CASE("observability config: bad values are refused naming line, column and key") {
  struct Case {
    std::string text;
    std::string error;  // after "<path>:"
  };
  TempDir dir;
  for (const Case& k : {
           Case{"log_format = \"xml\"\n", "1:14: 'log_format' must be \"text\" or \"json\""},
           Case{"log_format = 1\n", "1:14: 'log_format' must be \"text\" or \"json\""},
           Case{"log_format = \"JSON\"\n", "1:14: 'log_format' must be \"text\" or \"json\""},
           Case{"[limits]\nlog_format = \"json\"\n", "2:1: unknown key 'limits.log_format'"},
       }) {
    CAPTURE(k.text);
    std::string path = dir.write("bad.toml", k.text);
    Config c;
    std::string error;
    CHECK_FALSE(loadConfigFile(path, &c, &error));
    CHECK(error == path + ":" + k.error);
  }
}

}  // namespace
}  // namespace readthru
