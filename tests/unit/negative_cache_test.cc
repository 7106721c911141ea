#include "proxy/negative_cache.h"

#include <cstdint>
#include <string>
#include <string_view>

#include <doctest/doctest.h>

namespace readthru {
namespace {

using namespace std::string_literals;

TEST_CASE("negative cache: an entry lives until its deadline, then is dropped") {
  NegativeCache c(10);
  CHECK(c.empty());
  CHECK_FALSE(c.contains("user:1", 0));

  c.insert("user:1", 1000);
  CHECK(c.size() == 1);
  CHECK_FALSE(c.empty());
  CHECK(c.contains("user:1", 0));
  CHECK(c.contains("user:1", 999));
  CHECK_FALSE(c.contains("user:2", 0));
  CHECK_FALSE(c.contains("user:", 0));
  CHECK_FALSE(c.contains("user:10", 0));

  // The deadline itself is past.
  CHECK_FALSE(c.contains("user:1", 1000));
  CHECK(c.size() == 0);  // the expired entry was dropped by the lookup
  CHECK(c.empty());
  // Once dropped it stays gone, even for an earlier clock.
  CHECK_FALSE(c.contains("user:1", 0));

  // Entries expire independently; an expired one lingers (counted) until looked up or evicted.
  c.insert("a", 100);
  c.insert("b", 200);
  CHECK_FALSE(c.contains("a", 150));
  CHECK(c.contains("b", 150));
  CHECK(c.size() == 1);
  c.insert("c", 50);
  CHECK(c.size() == 2);
  CHECK(c.contains("b", 199));
  CHECK_FALSE(c.contains("c", 199));
  CHECK(c.size() == 1);
}

TEST_CASE("negative cache: re-inserting a key sets its new deadline") {
  NegativeCache c(10);
  c.insert("k", 100);
  c.insert("k", 500);
  CHECK(c.size() == 1);
  CHECK(c.contains("k", 400));
  // A shorter deadline replaces a longer one too.
  c.insert("k", 50);
  CHECK(c.size() == 1);
  CHECK_FALSE(c.contains("k", 60));
}

TEST_CASE("negative cache: past capacity the oldest insertion goes first") {
  NegativeCache c(3);
  c.insert("a", 1000);
  c.insert("b", 1000);
  c.insert("c", 1000);
  CHECK(c.size() == 3);
  c.insert("d", 1000);
  CHECK(c.size() == 3);
  CHECK_FALSE(c.contains("a", 0));
  CHECK(c.contains("b", 0));
  CHECK(c.contains("c", 0));
  CHECK(c.contains("d", 0));

  // Age is insertion order, not deadline: "b" goes though it expires last.
  NegativeCache d(2);
  d.insert("b", 9000);
  d.insert("c", 10);
  d.insert("e", 20);
  CHECK_FALSE(d.contains("b", 0));
  CHECK(d.contains("c", 0));
  CHECK(d.contains("e", 0));

  // A lookup does not make an entry younger; a re-insert does.
  NegativeCache e(3);
  e.insert("x", 1000);
  e.insert("y", 1000);
  e.insert("z", 1000);
  CHECK(e.contains("x", 0));
  e.insert("x", 1000);  // now the youngest
  e.insert("w", 1000);  // evicts "y"
  CHECK(e.size() == 3);
  CHECK_FALSE(e.contains("y", 0));
  CHECK(e.contains("x", 0));
  CHECK(e.contains("z", 0));
  CHECK(e.contains("w", 0));
  // Re-inserting a key at capacity evicts nothing.
  e.insert("z", 2000);
  CHECK(e.size() == 3);
  CHECK(e.contains("x", 0));
  CHECK(e.contains("w", 0));
  CHECK(e.contains("z", 1500));

  // Many more keys than room: exactly the last `capacity` remain.
  NegativeCache big(100);
  for (int i = 0; i < 1000; ++i) big.insert("key:" + std::to_string(i), 1000);
  CHECK(big.size() == 100);
  for (int i = 0; i < 1000; ++i) {
    CAPTURE(i);
    CHECK(big.contains("key:" + std::to_string(i), 0) == (i >= 900));
  }
}

TEST_CASE("negative cache: erase and clear") {
  NegativeCache c(3);
  c.insert("a", 1000);
  c.insert("b", 1000);
  c.insert("c", 1000);
  c.erase("b");
  c.erase("nope");  // not there: nothing happens
  CHECK(c.size() == 2);
  CHECK_FALSE(c.contains("b", 0));
  CHECK(c.contains("a", 0));

  // The erased entry's slot is free: one more insert evicts nothing.
  c.insert("d", 1000);
  CHECK(c.size() == 3);
  CHECK(c.contains("a", 0));
  CHECK(c.contains("c", 0));
  CHECK(c.contains("d", 0));
  // And the order of the others is kept: "a" is still the oldest.
  c.insert("e", 1000);
  CHECK_FALSE(c.contains("a", 0));
  CHECK(c.contains("c", 0));

  c.clear();
  CHECK(c.empty());
  CHECK(c.size() == 0);
  for (const char* k : {"a", "b", "c", "d", "e"}) CHECK_FALSE(c.contains(k, 0));
  // Usable after clear, at the same capacity.
  for (const char* k : {"p", "q", "r", "s"}) c.insert(k, 1000);
  CHECK(c.size() == 3);
  CHECK_FALSE(c.contains("p", 0));
  CHECK(c.contains("s", 0));
}

TEST_CASE("negative cache: capacity 0 remembers nothing") {
  NegativeCache c(0);
  c.insert("a", 1000);
  CHECK(c.empty());
  CHECK_FALSE(c.contains("a", 0));
  c.erase("a");
  c.clear();
  CHECK(c.empty());
}

TEST_CASE("negative cache: setCapacity shrinks oldest-first and grows") {
  NegativeCache c(5);
  for (const char* k : {"a", "b", "c", "d", "e"}) c.insert(k, 1000);
  c.setCapacity(2);
  CHECK(c.size() == 2);
  CHECK(c.contains("d", 0));
  CHECK(c.contains("e", 0));
  CHECK_FALSE(c.contains("c", 0));

  c.setCapacity(4);
  c.insert("f", 1000);
  c.insert("g", 1000);
  CHECK(c.size() == 4);
  c.insert("h", 1000);
  CHECK(c.size() == 4);
  CHECK_FALSE(c.contains("d", 0));
  CHECK(c.contains("e", 0));

  c.setCapacity(0);
  CHECK(c.empty());
  c.insert("i", 1000);
  CHECK(c.empty());
}

TEST_CASE("negative cache: keys are binary-safe and looked up by view") {
  NegativeCache c(10);
  std::string with_nul = "user:\0a"s;
  c.insert(with_nul, 1000);
  CHECK(c.contains(with_nul, 0));
  CHECK_FALSE(c.contains("user:", 0));  // a C string would stop at the NUL
  CHECK_FALSE(c.contains("user:\0b"s, 0));

  // A view into a larger buffer, not NUL-terminated.
  std::string buffer = "GETuser:42\r\n";
  std::string_view key = std::string_view(buffer).substr(3, 7);
  c.insert(key, 1000);
  CHECK(c.contains("user:42", 0));
  CHECK(c.contains(key, 0));
  buffer[5] = 'X';  // the cache holds its own copy
  CHECK(c.contains("user:42", 0));
  c.erase(std::string_view("user:42\r\n").substr(0, 7));
  CHECK_FALSE(c.contains("user:42", 0));
  CHECK(c.size() == 1);

  c.insert("", 1000);  // the empty key is a key like any other
  CHECK(c.contains("", 0));
  CHECK(c.size() == 2);
}

}  // namespace
}  // namespace readthru
