// The config keys of logging and the loader slowlog: log_format,
// slowlog_log_slower_than and slowlog_max_len (redis.conf's
// slowlog-log-slower-than and slowlog-max-len).
#include <cstdint>
#include <string>

#include <doctest/doctest.h>

#include "tests/unit/test_bad_config.h"
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
  CHECK(c.slowlog_log_slower_than_us == 10000);
  CHECK(c.slowlog_max_len == 128);
}

TEST_CASE("observability config: values are read") {
  TempDir dir;
  Config c;
  std::string error;
  REQUIRE(loadConfigFile(dir.write("readthru.toml",
                                   "log_format = \"json\"\n"
                                   "slowlog_log_slower_than = -1\n"
                                   "slowlog_max_len = 0\n"),
                         &c, &error));
  CHECK(c.log_format == "json");
  CHECK(c.slowlog_log_slower_than_us == -1);
  CHECK(c.slowlog_max_len == 0);
  REQUIRE(loadConfigFile(dir.write("readthru.toml",
                                   "log_format = \"text\"\n"
                                   "slowlog_log_slower_than = 0\n"
                                   "slowlog_max_len = 1000000\n"),
                         &c, &error));
  CHECK(c.log_format == "text");
  CHECK(c.slowlog_log_slower_than_us == 0);
  CHECK(c.slowlog_max_len == 1000000);
}

TEST_CASE(
    "observability config: bad values are refused naming line, column "
    "and key") {
  const test::BadConfig cases[] = {
      {"log_format = \"xml\"\n", "1:14: 'log_format' must be \"text\" or \"json\""},
      {"log_format = 1\n", "1:14: 'log_format' must be \"text\" or \"json\""},
      {"log_format = \"JSON\"\n", "1:14: 'log_format' must be \"text\" or \"json\""},
      {"[limits]\nlog_format = \"json\"\n", "2:1: unknown key 'limits.log_format'"},
      {"slowlog_log_slower_than = \"10ms\"\n",
       "1:27: 'slowlog_log_slower_than' must be an integer"},
      {"slowlog_log_slower_than = 1.5\n", "1:27: 'slowlog_log_slower_than' must be an integer"},
      {"slowlog_max_len = -1\n", "1:19: 'slowlog_max_len' must be between 0 and 1000000"},
      {"slowlog_max_len = 1000001\n", "1:19: 'slowlog_max_len' must be between 0 and 1000000"},
      {"[limits]\nslowlog_max_len = 5\n", "2:1: unknown key 'limits.slowlog_max_len'"},
  };
  test::checkRefused(cases);
}

}  // namespace
}  // namespace readthru
