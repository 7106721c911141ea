#include "proxy/refresh_table.h"

#include <string>

#include <doctest/doctest.h>

namespace readthru {
namespace {

// A fill at t=1000 with a TTL of 1000 ms and fraction 0.2: due from 1800, runs out at 2000.
TEST_CASE("refresh table: a value is due in the last fraction of its TTL, and claimed once") {
  RefreshTable t(10);
  t.track("k", 1000, 1000, 0.2);
  CHECK(t.size() == 1);
  CHECK_FALSE(t.due("k", 1000));
  CHECK_FALSE(t.due("k", 1799));
  CHECK_FALSE(t.claim("k", 1799));
  CHECK(t.due("k", 1800));
  CHECK_FALSE(t.due("other", 1800));
  CHECK(t.dueCount() == 1);
  CHECK(t.claim("k", 1850));
  CHECK_FALSE(t.due("k", 1850));  // its reload has started
  CHECK_FALSE(t.claim("k", 1860));
  CHECK(t.size() == 1);  // still tracked, for the reload's fill
  // The reload's fill: due again 800 ms after it.
  t.track("k", 1900, 1000, 0.2);
  CHECK_FALSE(t.due("k", 2000));
  CHECK_FALSE(t.due("k", 2699));
  CHECK(t.due("k", 2700));
  CHECK(t.claim("k", 2700));
}

TEST_CASE("refresh table: a value that runs out unclaimed is dropped") {
  RefreshTable t(10);
  t.track("k", 1000, 1000, 0.2);
  CHECK(t.due("k", 1900));
  CHECK_FALSE(t.due("k", 2000));
  CHECK_FALSE(t.claim("k", 2000));
  CHECK(t.empty());
  CHECK(t.dueCount() == 0);
  // A claimed value whose reload never fills again is dropped at its expiry too.
  t.track("j", 3000, 1000, 0.2);
  CHECK(t.claim("j", 3900));
  CHECK(t.size() == 1);
  CHECK_FALSE(t.due("j", 4000));
  CHECK(t.empty());
}

TEST_CASE("refresh table: a write forgets the key until its next fill") {
  RefreshTable t(10);
  t.track("a", 1000, 1000, 0.2);
  t.track("b", 1000, 1000, 0.2);
  CHECK(t.due("a", 1850));
  t.forget("a");
  t.forget("b");
  t.forget("never tracked");
  CHECK(t.empty());
  CHECK(t.dueCount() == 0);
  CHECK_FALSE(t.due("a", 1900));
  CHECK_FALSE(t.claim("b", 1900));
  // Filled again after the write: tracked from that fill, and due on its schedule.
  t.track("b", 1950, 1000, 0.2);
  CHECK(t.size() == 1);
  CHECK_FALSE(t.due("b", 2000));
  CHECK(t.due("b", 2750));
  CHECK(t.claim("b", 2750));
}

TEST_CASE("refresh table: a refill of a key that is due or forgotten takes the new schedule") {
  RefreshTable t(10);
  t.track("k", 1000, 1000, 0.2);
  CHECK(t.due("k", 1800));
  t.track("k", 1810, 1000, 0.2);  // filled again (a miss elsewhere) before any hit claimed it
  CHECK_FALSE(t.due("k", 1810));
  CHECK(t.dueCount() == 0);
  CHECK_FALSE(t.due("k", 2000));  // the first fill's expiry does not drop the second
  CHECK(t.size() == 1);
  CHECK(t.due("k", 2610));
}

TEST_CASE("refresh table: a full table tracks no new key until values run out") {
  RefreshTable t(100);
  for (int i = 0; i < 100; ++i) t.track("k" + std::to_string(i), 1000 + i, 1000, 0.05);
  CHECK(t.size() == 100);
  t.track("new", 1500, 1000, 0.05);
  CHECK(t.size() == 100);
  // k<i> is due from 1950 + i and runs out at 2000 + i; only the keys inside their window are
  // in the due set (k0..k10 at 1960), and "new" is not tracked.
  CHECK(t.due("k0", 1960));
  CHECK(t.dueCount() == 11);
  CHECK_FALSE(t.due("new", 1960));
  // By 2010 k0..k10 have run out: their places are free.
  t.track("new", 2010, 1000, 0.05);
  CHECK(t.size() == 90);
  CHECK(t.due("new", 2960));
  CHECK(t.claim("new", 2960));
}

TEST_CASE("refresh table: clear forgets everything") {
  RefreshTable t(10);
  t.track("a", 1000, 1000, 0.2);
  t.track("b", 1000, 2000, 0.2);
  CHECK(t.due("a", 1900));
  t.clear();
  CHECK(t.empty());
  CHECK(t.dueCount() == 0);
  CHECK_FALSE(t.due("a", 1900));
  CHECK_FALSE(t.due("b", 2700));
  t.track("a", 3000, 1000, 0.2);
  CHECK(t.due("a", 3800));
}

}  // namespace
}  // namespace readthru
