#include "proxy/slowlog.h"

#include <cstdint>
#include <ctime>
#include <string>

#include <doctest/doctest.h>

namespace readthru {
namespace {

TEST_CASE("slowlog: keeps loads at or over the threshold, newest first, with every field") {
  SlowLog log(1000, 128);
  CHECK_FALSE(log.wants(0));
  CHECK_FALSE(log.wants(999));
  CHECK(log.wants(1000));  // "at least", as redis-server's slowlog-log-slower-than
  CHECK(log.wants(UINT64_MAX));

  int64_t before = static_cast<int64_t>(std::time(nullptr));
  log.add(1500, "user", "user:42", "value");
  log.add(2500, "product", "product:7", "ERR loader 'product' failed: no such table: products");
  int64_t after = static_cast<int64_t>(std::time(nullptr));

  REQUIRE(log.size() == 2);
  const SlowLogEntry& newest = log.entries()[0];
  CHECK(newest.id == 1);
  CHECK(newest.duration_us == 2500);
  CHECK(newest.loader == "product");
  CHECK(newest.key == "product:7");
  CHECK(newest.outcome == "ERR loader 'product' failed: no such table: products");
  CHECK(newest.unix_time >= before);
  CHECK(newest.unix_time <= after);
  const SlowLogEntry& oldest = log.entries()[1];
  CHECK(oldest.id == 0);
  CHECK(oldest.duration_us == 1500);
  CHECK(oldest.loader == "user");
  CHECK(oldest.key == "user:42");
  CHECK(oldest.outcome == "value");
}

TEST_CASE("slowlog: a threshold of 0 keeps every load, a negative one none") {
  SlowLog every(0, 10);
  CHECK(every.wants(0));
  CHECK(every.wants(1));
  SlowLog none(-1, 10);
  CHECK_FALSE(none.wants(0));
  CHECK_FALSE(none.wants(UINT64_MAX));
  none.setSlowerThan(5);
  CHECK(none.wants(5));
  none.setSlowerThan(INT64_MIN);
  CHECK_FALSE(none.wants(UINT64_MAX));
}

TEST_CASE("slowlog: max_len bounds the ring; the oldest entries go first") {
  SlowLog log(0, 3);
  for (uint64_t i = 0; i < 10; ++i) log.add(i, "l", "k" + std::to_string(i), "absent");
  REQUIRE(log.size() == 3);
  CHECK(log.entries()[0].id == 9);
  CHECK(log.entries()[0].key == "k9");
  CHECK(log.entries()[1].id == 8);
  CHECK(log.entries()[2].id == 7);
  CHECK(log.entries()[2].duration_us == 7);

  // Shrinking drops the oldest at once; growing keeps what is there.
  log.setMaxLen(1);
  REQUIRE(log.size() == 1);
  CHECK(log.entries()[0].id == 9);
  log.setMaxLen(5);
  log.add(1, "l", "k", "value");
  CHECK(log.size() == 2);
}

TEST_CASE("slowlog: ids keep growing across RESET and entries max_len 0 drops at once") {
  SlowLog log(0, 0);
  log.add(1, "l", "a", "value");
  log.add(1, "l", "b", "value");
  CHECK(log.size() == 0);
  log.setMaxLen(10);
  log.add(1, "l", "c", "value");
  REQUIRE(log.size() == 1);
  CHECK(log.entries()[0].id == 2);  // the two dropped entries took ids 0 and 1, as in Redis
  log.reset();
  CHECK(log.size() == 0);
  CHECK(log.entries().empty());
  log.add(1, "l", "d", "value");
  REQUIRE(log.size() == 1);
  CHECK(log.entries()[0].id == 3);
}

TEST_CASE("slowlog: keys and outcomes past 128 bytes are cut as Redis cuts arguments") {
  SlowLog log(0, 10);
  std::string key = "k:" + std::string(200, 'x');  // 202 bytes
  std::string outcome(128, 'e');
  log.add(1, std::string(300, 'n'), key, outcome);
  REQUIRE(log.size() == 1);
  const SlowLogEntry& e = log.entries()[0];
  CHECK(e.key == key.substr(0, 128) + "... (74 more bytes)");
  CHECK(e.outcome == outcome);               // exactly 128: whole
  CHECK(e.loader == std::string(300, 'n'));  // a name from the config file is kept whole
  log.add(1, "l", std::string(129, 'y'), std::string(1000, 'z'));
  CHECK(log.entries()[0].key == std::string(128, 'y') + "... (1 more bytes)");
  CHECK(log.entries()[0].outcome == std::string(128, 'z') + "... (872 more bytes)");
}

}  // namespace
}  // namespace readthru
