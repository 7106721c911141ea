#pragma once
// Runs one SQLite query to completion on a test::Loop, for unit tests of what sits on a backend.

#include <string>
#include <utility>

#include <doctest/doctest.h>

#include "backends/sqlite_backend.h"
#include "tests/unit/test_loop.h"

namespace readthru::test {

inline backends::SqlResult runQuery(Loop& loop, backends::SqliteBackend* backend,
                                    backends::SqlQuery query) {
  backends::SqlResult out;
  bool done = false;
  std::string error;
  bool queued = backend->query(
      std::move(query),
      [&](backends::SqlResult&& r) {
        out = std::move(r);
        done = true;
      },
      &error);
  CAPTURE(error);
  REQUIRE(queued);
  REQUIRE(loop.runUntil([&] { return done; }));
  return out;
}

}  // namespace readthru::test
