#pragma once
// Opening and closing a CacheRegistry in unit tests, on a test::Loop.

#include <string>

#include <doctest/doctest.h>

#include "backends/sqlite_backend.h"
#include "proxy/cache_registry.h"
#include "tests/unit/test_loop.h"

namespace readthru::test {

// Closes the registry and runs the loop until every backend has freed itself.
inline void closeRegistry(Loop& loop, CacheRegistry& registry) {
  bool closed = false;
  registry.close([&closed] { closed = true; });
  REQUIRE(loop.runUntil([&] { return closed; }));
  CHECK(backends::SqliteBackend::liveCount() == 0);
}

// The error of an open() that must fail. The registry keeps nothing, and closes what it had
// opened; the loop finishes the job.
inline std::string openError(Loop& loop, const Config& config) {
  CacheRegistry registry;
  std::string error;
  CHECK_FALSE(registry.open(loop.get(), config, &error));
  CHECK(registry.writers().empty());
  CHECK(registry.loaders().empty());
  CHECK(registry.backends().empty());
  REQUIRE(loop.runUntil([] { return backends::SqliteBackend::liveCount() == 0; }));
  return error;
}

}  // namespace readthru::test
