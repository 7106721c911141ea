#include "backends/sqlite_backend.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "tests/unit/test_loop.h"
#include "tests/unit/test_query.h"

namespace readthru::backends {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Counts to 10^8 in SQL: seconds of work, interruptible at any point.
constexpr const char* kSlowSql =
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000000) "
    "SELECT count(*) FROM c";

// A fresh database file in its own temp directory, built with the sqlite3 C API; removed with the
// directory.
class TempDb {
 public:
  TempDb() {
    std::string templ =
        (std::filesystem::temp_directory_path() / "readthru-sqlite-XXXXXX").string();
    REQUIRE(mkdtemp(templ.data()) != nullptr);
    dir_ = templ;
    path_ = (dir_ / "test.db").string();
    REQUIRE(sqlite3_open_v2(path_.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                            nullptr) == SQLITE_OK);
    exec("PRAGMA synchronous = OFF");  // a throwaway file: no fsync per statement
    exec(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, score REAL, avatar BLOB, "
        "note TEXT);"
        "INSERT INTO users VALUES (1, 'ada', 0.1, x'00ff0010', NULL);"
        "INSERT INTO users VALUES (2, 'O''Brien', -2.5, x'', 'it''s \"quoted\"');"
        "INSERT INTO users VALUES (3, 'grace', 1e300, NULL, 'caf\xc3\xa9');");
    // Extreme integers and text holding a NUL byte, bound rather than written as literals.
    exec("CREATE TABLE extremes (k TEXT PRIMARY KEY, i INTEGER, t TEXT)");
    sqlite3_stmt* stmt = nullptr;
    REQUIRE(sqlite3_prepare_v2(db_, "INSERT INTO extremes VALUES (?, ?, ?)", -1, &stmt, nullptr) ==
            SQLITE_OK);
    struct Row {
      const char* k;
      int64_t i;
      std::string t;
    };
    for (const Row& row : {Row{"min", std::numeric_limits<int64_t>::min(), std::string("a\0b", 3)},
                           Row{"max", std::numeric_limits<int64_t>::max(), ""}}) {
      sqlite3_bind_text(stmt, 1, row.k, -1, SQLITE_STATIC);
      sqlite3_bind_int64(stmt, 2, row.i);
      sqlite3_bind_text(stmt, 3, row.t.data(), static_cast<int>(row.t.size()), SQLITE_STATIC);
      REQUIRE(sqlite3_step(stmt) == SQLITE_DONE);
      sqlite3_reset(stmt);
    }
    sqlite3_finalize(stmt);
  }
  ~TempDb() {
    sqlite3_close_v2(db_);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  TempDb(const TempDb&) = delete;
  TempDb& operator=(const TempDb&) = delete;

  void exec(const char* sql) {
    char* err = nullptr;
    int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
    CAPTURE(err != nullptr ? err : "");
    sqlite3_free(err);
    REQUIRE(rc == SQLITE_OK);
  }
  int64_t count(const char* table) {
    sqlite3_stmt* stmt = nullptr;
    std::string sql = std::string("SELECT count(*) FROM ") + table;
    REQUIRE(sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(stmt) == SQLITE_ROW);
    int64_t n = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return n;
  }
  const std::string& path() const { return path_; }
  std::string dir() const { return dir_.string(); }

 private:
  std::filesystem::path dir_;
  std::string path_;
  sqlite3* db_ = nullptr;
};

using test::Loop;

SqliteBackend* openBackend(Loop& loop, const TempDb& db,
                           const std::function<void(SqliteOptions&)>& tweak = nullptr) {
  SqliteOptions options;
  options.path = db.path();
  if (tweak) tweak(options);
  std::string error;
  SqliteBackend* backend = SqliteBackend::open(loop.get(), std::move(options), &error);
  CAPTURE(error);
  REQUIRE(backend != nullptr);
  return backend;
}

void closeBackend(Loop& loop, SqliteBackend* backend) {
  bool closed = false;
  backend->close([&closed] { closed = true; });
  REQUIRE(loop.runUntil([&] { return closed; }));
  CHECK(SqliteBackend::liveCount() == 0);
}

using test::runQuery;

SqlParam text(std::string name, std::string value) {
  return SqlParam{std::move(name), std::move(value), SqlParam::Kind::kText};
}

SqlParam integer(std::string name, std::string value) {
  return SqlParam{std::move(name), std::move(value), SqlParam::Kind::kInteger};
}

// Waits, off the loop, until a worker has taken a query.
void waitRunning(SqliteBackend* backend, size_t n) {
  auto deadline = Clock::now() + 10s;
  while (backend->stats().running < n && Clock::now() < deadline) std::this_thread::sleep_for(1ms);
  REQUIRE(backend->stats().running == n);
}

TEST_CASE("sqlite: cache_bytes sets each connection's page cache; 0 keeps SQLite's default") {
  TempDb db;
  Loop loop;
  SqliteBackend* sized = openBackend(loop, db, [](SqliteOptions& o) {
    o.cache_bytes = 8 * 1024 * 1024;
    o.workers = 2;
  });
  for (int i = 0; i < 4; ++i) {  // whichever worker runs it
    SqlResult r = runQuery(loop, sized, {"PRAGMA cache_size", {}, 0, 0});
    REQUIRE(r.ok);
    REQUIRE(r.rows.size() == 1);
    CHECK(r.rows[0][0].integer == -8192);  // KiB
  }
  SqliteBackend* plain = openBackend(loop, db);
  SqlResult r = runQuery(loop, plain, {"PRAGMA cache_size", {}, 0, 0});
  REQUIRE(r.ok);
  REQUIRE(r.rows.size() == 1);
  CHECK(r.rows[0][0].integer == -2000);  // SQLite's default
  bool closed = false;
  sized->close([&closed] { closed = true; });
  REQUIRE(loop.runUntil([&] { return closed; }));
  closeBackend(loop, plain);
}

struct ThreadInfo {
  std::string name;
  int nice = 0;
};

// This process's threads, from /proc/self/task/<tid>/comm and stat.
std::vector<ThreadInfo> threads() {
  std::vector<ThreadInfo> out;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    ThreadInfo t;
    std::ifstream comm(task.path() / "comm");
    std::getline(comm, t.name);
    std::ifstream stat_file(task.path() / "stat");
    std::string stat;
    std::getline(stat_file, stat);
    // After the ")" that ends the name: state is field 3, nice field 19.
    std::istringstream rest(stat.substr(stat.rfind(')') + 1));
    std::string field;
    for (int i = 3; i <= 19 && rest >> field; ++i) {
      if (i == 19) t.nice = std::stoi(field);
    }
    out.push_back(t);
  }
  return out;
}

// The threads called `name`, once `count` of them exist (workers name themselves as they start).
std::vector<ThreadInfo> namedThreads(const std::string& name, size_t count) {
  auto deadline = Clock::now() + 10s;
  for (;;) {
    std::vector<ThreadInfo> found;
    for (const ThreadInfo& t : threads()) {
      if (t.name == name) found.push_back(t);
    }
    if (found.size() >= count || Clock::now() > deadline) return found;
    std::this_thread::sleep_for(1ms);
  }
}

TEST_CASE("sqlite: workers carry thread_name, cut to Linux's 15 bytes") {
  TempDb db;
  Loop loop;
  SqliteBackend* backend = openBackend(loop, db, [](SqliteOptions& o) {
    o.thread_name = "sql:a-long-backend-name";
    o.workers = 2;
  });
  CHECK(namedThreads("sql:a-long-back", 2).size() == 2);
  REQUIRE(runQuery(loop, backend, {"SELECT 1", {}, 0, 0}).ok);
  closeBackend(loop, backend);
}

TEST_CASE("sqlite: workers take the nice level they are given") {
  TempDb db;
  Loop loop;
  std::atomic<int> warnings{0};
  // Raising one's nice level needs no privilege.
  SqliteBackend* backend = openBackend(loop, db, [&warnings](SqliteOptions& o) {
    o.thread_name = "sql:nice5";
    o.workers = 2;
    o.nice = 5;
    o.warn = [&warnings](const std::string&) { ++warnings; };
  });
  std::vector<ThreadInfo> workers = namedThreads("sql:nice5", 2);
  REQUIRE(workers.size() == 2);
  for (const ThreadInfo& t : workers) CHECK(t.nice == 5);
  CHECK(warnings == 0);
  const int own = getpriority(PRIO_PROCESS, static_cast<id_t>(gettid()));
  for (const ThreadInfo& t : threads()) {
    if (t.name != "sql:nice5") CHECK(t.nice == own);  // the rest of the process keeps its own
  }
  REQUIRE(runQuery(loop, backend, {"SELECT 1", {}, 0, 0}).ok);
  closeBackend(loop, backend);
}

TEST_CASE("sqlite: a nice level below 0 applies with the privilege, else is warned about once") {
  TempDb db;
  Loop loop;
  std::atomic<int> warnings{0};
  std::string warning;
  std::mutex mu;
  SqliteBackend* backend = openBackend(loop, db, [&](SqliteOptions& o) {
    o.thread_name = "sql:nice-3";
    o.workers = 3;
    o.nice = -3;
    o.warn = [&](const std::string& what) {
      std::lock_guard lock(mu);
      warning = what;
      ++warnings;
    };
  });
  std::vector<ThreadInfo> workers = namedThreads("sql:nice-3", 3);
  REQUIRE(workers.size() == 3);
  // Whether it may: root (the CI) has CAP_SYS_NICE; others may have room in RLIMIT_NICE.
  bool applied = workers[0].nice == -3;
  if (applied) {
    for (const ThreadInfo& t : workers) CHECK(t.nice == -3);
    CHECK(warnings == 0);
  } else {
    // The warning comes from a worker right after it names itself: wait for it.
    auto deadline = Clock::now() + 10s;
    while (warnings == 0 && Clock::now() < deadline) std::this_thread::sleep_for(1ms);
    CHECK(warnings == 1);  // once, though each of the three workers failed
    std::lock_guard lock(mu);
    CHECK(warning.find("cannot set the sql:nice-3 workers' nice level to -3") != std::string::npos);
  }
  // Either way the workers serve.
  REQUIRE(runQuery(loop, backend, {"SELECT 1", {}, 0, 0}).ok);
  closeBackend(loop, backend);
}

TEST_CASE("sqlite: rows and every value type round-trip losslessly") {
  TempDb db;
  Loop loop;
  SqliteBackend* backend = openBackend(loop, db);

  SqlResult r = runQuery(loop, backend,
                         {"SELECT id, name, score, avatar, note FROM users ORDER BY id", {}, 0, 0});
  REQUIRE(r.ok);
  CHECK_FALSE(r.timed_out);
  CHECK(r.error.empty());
  CHECK(r.columns == std::vector<std::string>{"id", "name", "score", "avatar", "note"});
  REQUIRE(r.rows.size() == 3);
  for (const auto& row : r.rows) REQUIRE(row.size() == 5);

  CHECK(r.rows[0][0].type == SqlValue::Type::kInteger);
  CHECK(r.rows[0][0].integer == 1);
  CHECK(r.rows[0][1].type == SqlValue::Type::kText);
  CHECK(r.rows[0][1].bytes == "ada");
  CHECK(r.rows[0][2].type == SqlValue::Type::kReal);
  CHECK(r.rows[0][2].real == 0.1);  // the same double, bit for bit
  CHECK(r.rows[0][3].type == SqlValue::Type::kBlob);
  CHECK(r.rows[0][3].bytes == std::string("\x00\xff\x00\x10", 4));
  CHECK(r.rows[0][4].type == SqlValue::Type::kNull);

  CHECK(r.rows[1][1].bytes == "O'Brien");
  CHECK(r.rows[1][2].real == -2.5);
  CHECK(r.rows[1][3].type == SqlValue::Type::kBlob);  // empty, but still a blob
  CHECK(r.rows[1][3].bytes.empty());
  CHECK(r.rows[1][4].bytes == "it's \"quoted\"");

  CHECK(r.rows[2][2].real == 1e300);
  CHECK(r.rows[2][3].type == SqlValue::Type::kNull);
  CHECK(r.rows[2][4].bytes == "caf\xc3\xa9");

  r = runQuery(loop, backend, {"SELECT k, i, t FROM extremes ORDER BY k", {}, 0, 0});
  REQUIRE(r.ok);
  REQUIRE(r.rows.size() == 2);
  CHECK(r.rows[0][0].bytes == "max");
  CHECK(r.rows[0][1].integer == std::numeric_limits<int64_t>::max());
  CHECK(r.rows[0][2].type == SqlValue::Type::kText);  // empty, but still text
  CHECK(r.rows[0][2].bytes.empty());
  CHECK(r.rows[1][1].integer == std::numeric_limits<int64_t>::min());
  CHECK(r.rows[1][2].bytes == std::string("a\0b", 3));

  // Computed columns and expressions keep their SQLite types.
  r = runQuery(loop, backend, {"SELECT 1.5 AS r, 'x' || 'y' AS t, NULL AS n, 7 AS i", {}, 0, 0});
  REQUIRE(r.ok);
  CHECK(r.columns == std::vector<std::string>{"r", "t", "n", "i"});
  REQUIRE(r.rows.size() == 1);
  CHECK(r.rows[0][0].type == SqlValue::Type::kReal);
  CHECK(r.rows[0][1].bytes == "xy");
  CHECK(r.rows[0][2].type == SqlValue::Type::kNull);
  CHECK(r.rows[0][3].integer == 7);

  SqliteStats s = backend->stats();
  CHECK(s.completed == 3);
  CHECK(s.errors == 0);
  CHECK(s.queued == 0);
  CHECK(s.running == 0);
  closeBackend(loop, backend);
}

TEST_CASE("sqlite: parameters are bound by name, as text or integer") {
  TempDb db;
  Loop loop;
  SqliteBackend* backend = openBackend(loop, db);

  // Text "2" meets the INTEGER PRIMARY KEY's affinity and finds the row.
  SqlResult r =
      runQuery(loop, backend, {"SELECT name FROM users WHERE id = :id", {text(":id", "2")}, 0, 0});
  REQUIRE(r.ok);
  REQUIRE(r.rows.size() == 1);
  CHECK(r.rows[0][0].bytes == "O'Brien");

  // A bare name means ":name"; "@" and "$" prefixes are taken as written.
  r = runQuery(loop, backend,
               {"SELECT typeof(:a), typeof(@b), $c + 1",
                {text("a", "5"), integer("@b", "5"), integer("$c", "-9223372036854775807")},
                0,
                0});
  REQUIRE(r.ok);
  CHECK(r.rows[0][0].bytes == "text");
  CHECK(r.rows[0][1].bytes == "integer");
  CHECK(r.rows[0][2].integer == -9223372036854775807 + 1);

  // An empty value is empty text, not NULL.
  r = runQuery(loop, backend, {"SELECT typeof(:v), length(:v)", {text(":v", "")}, 0, 0});
  REQUIRE(r.ok);
  CHECK(r.rows[0][0].bytes == "text");
  CHECK(r.rows[0][1].integer == 0);

  // A parameter used twice is bound once.
  r = runQuery(loop, backend, {"SELECT :v || :v", {text(":v", "ab")}, 0, 0});
  REQUIRE(r.ok);
  CHECK(r.rows[0][0].bytes == "abab");

  for (const char* bad : {"", "12x", "1.5", " 1", "99999999999999999999"}) {
    CAPTURE(bad);
    r = runQuery(loop, backend, {"SELECT :n", {integer(":n", bad)}, 0, 0});
    CHECK_FALSE(r.ok);
    CHECK(r.error == "parameter :n is not an integer");
  }

  r = runQuery(loop, backend, {"SELECT :id, :org", {text(":id", "1")}, 0, 0});
  CHECK_FALSE(r.ok);
  CHECK(r.error == "parameter :org is not bound");
  CHECK(r.rows.empty());
  CHECK(r.columns.empty());

  r = runQuery(loop, backend, {"SELECT :id", {text(":id", "1"), text(":other", "2")}, 0, 0});
  CHECK_FALSE(r.ok);
  CHECK(r.error == "the statement has no parameter :other");

  r = runQuery(loop, backend, {"SELECT ?", {}, 0, 0});
  CHECK_FALSE(r.ok);
  CHECK(r.error.find("positional parameter") != std::string::npos);

  // The statement is cached: a failed bind leaves no binding behind for the next use.
  r = runQuery(loop, backend, {"SELECT :id, :org", {text(":id", "1"), text(":org", "x")}, 0, 0});
  REQUIRE(r.ok);
  CHECK(r.rows[0][1].bytes == "x");
  closeBackend(loop, backend);
}

TEST_CASE("sqlite: quotes and injection-looking values are only ever data") {
  TempDb db;
  Loop loop;
  SqliteBackend* backend = openBackend(loop, db, [](SqliteOptions& o) { o.read_write = true; });

  const char* sql = "SELECT id FROM users WHERE name = :name";
  SqlResult r = runQuery(loop, backend, {sql, {text(":name", "O'Brien")}, 0, 0});
  REQUIRE(r.ok);
  REQUIRE(r.rows.size() == 1);
  CHECK(r.rows[0][0].integer == 2);

  for (const char* attack :
       {"' OR '1'='1", "x'; DROP TABLE users; --", "\" OR 1=1 --", "1; DELETE FROM users",
        "ada' --", "'); DROP TABLE users; SELECT ('", "\\'; DROP TABLE users; --"}) {
    CAPTURE(attack);
    r = runQuery(loop, backend, {sql, {text(":name", attack)}, 0, 0});
    REQUIRE(r.ok);
    CHECK(r.rows.empty());
    // As an integer parameter it is refused outright.
    r = runQuery(loop, backend,
                 {"SELECT id FROM users WHERE id = :id", {integer(":id", attack)}, 0, 0});
    CHECK_FALSE(r.ok);
  }
  // The value comes back exactly as sent.
  r = runQuery(loop, backend, {"SELECT :v", {text(":v", "'); DROP TABLE users; --")}, 0, 0});
  REQUIRE(r.ok);
  CHECK(r.rows[0][0].bytes == "'); DROP TABLE users; --");
  CHECK(db.count("users") == 3);
  closeBackend(loop, backend);
}

TEST_CASE("sqlite: a missing row is zero rows, not an error") {
  TempDb db;
  Loop loop;
  SqliteBackend* backend = openBackend(loop, db);
  SqlResult r = runQuery(loop, backend,
                         {"SELECT name FROM users WHERE id = :id", {integer(":id", "42")}, 0, 0});
  REQUIRE(r.ok);
  CHECK(r.columns == std::vector<std::string>{"name"});
  CHECK(r.rows.empty());
  closeBackend(loop, backend);
}

TEST_CASE("sqlite: SQL errors are reported in the result") {
  TempDb db;
  Loop loop;
  SqliteBackend* backend = openBackend(loop, db);

  // At prepare time.
  SqlResult r = runQuery(loop, backend, {"SELECT * FROM nope", {}, 0, 0});
  CHECK_FALSE(r.ok);
  CHECK_FALSE(r.timed_out);
  CHECK(r.error == "no such table: nope");

  r = runQuery(loop, backend, {"SELEC 1", {}, 0, 0});
  CHECK_FALSE(r.ok);
  CHECK(r.error.find("syntax error") != std::string::npos);

  r = runQuery(loop, backend, {"SELECT 1; SELECT 2", {}, 0, 0});
  CHECK_FALSE(r.ok);
  CHECK(r.error == "only one SQL statement is allowed");

  r = runQuery(loop, backend, {"  -- nothing\n", {}, 0, 0});
  CHECK_FALSE(r.ok);
  CHECK(r.error == "empty SQL statement");

  // At run time, after rows had started: no partial result.
  r = runQuery(loop, backend,
               {"SELECT CASE WHEN id < 3 THEN id ELSE abs(-9223372036854775807 - 1) END "
                "FROM users ORDER BY id",
                {},
                0,
                0});
  CHECK_FALSE(r.ok);
  CHECK(r.error == "integer overflow");
  CHECK(r.rows.empty());
  CHECK(r.columns.empty());

  // The connections are read-only unless asked otherwise.
  r = runQuery(loop, backend, {"DELETE FROM users", {}, 0, 0});
  CHECK_FALSE(r.ok);
  CHECK(r.error == "attempt to write a readonly database");
  CHECK(db.count("users") == 3);

  // The row limit.
  r = runQuery(loop, backend, {"SELECT id FROM users", {}, 0, 2});
  CHECK_FALSE(r.ok);
  CHECK(r.error == "more than 2 rows");

  // A trailing semicolon and comment are one statement.
  r = runQuery(loop, backend, {"SELECT 1; -- done", {}, 0, 0});
  CHECK(r.ok);

  SqliteStats s = backend->stats();
  CHECK(s.completed == 8);
  CHECK(s.errors == 7);
  CHECK(s.timeouts == 0);
  closeBackend(loop, backend);
}

TEST_CASE("sqlite: read_write connections can write") {
  TempDb db;
  Loop loop;
  SqliteBackend* backend = openBackend(loop, db, [](SqliteOptions& o) { o.read_write = true; });
  SqlResult r = runQuery(loop, backend,
                         {"INSERT INTO users (id, name) VALUES (:id, :name)",
                          {integer(":id", "9"), text(":name", "x")},
                          0,
                          0});
  CHECK(r.ok);
  CHECK(r.columns.empty());
  CHECK(db.count("users") == 4);
  closeBackend(loop, backend);
}

// Runs one transaction to completion on the loop.
SqlResult runTransaction(Loop& loop, SqliteBackend* backend, std::vector<SqlQuery> statements) {
  SqlResult out;
  bool done = false;
  REQUIRE(backend->transaction(std::move(statements), [&](SqlResult&& r) {
    out = std::move(r);
    done = true;
  }));
  REQUIRE(loop.runUntil([&] { return done; }));
  return out;
}

TEST_CASE("sqlite: a transaction applies every statement, and counts the changes") {
  TempDb db;
  Loop loop;
  SqliteBackend* backend = openBackend(loop, db, [](SqliteOptions& o) { o.read_write = true; });
  SqlResult r =
      runTransaction(loop, backend,
                     {{"INSERT INTO users (id, name) VALUES (:id, :name)",
                       {integer(":id", "9"), text(":name", "x")},
                       0,
                       0},
                      {"UPDATE users SET name = :name WHERE id <= 2", {text(":name", "y")}, 0, 0},
                      {"DELETE FROM users WHERE id = 3", {}, 0, 0}});
  CHECK(r.ok);
  CHECK(r.changes == 4);
  CHECK(db.count("users") == 3);
  closeBackend(loop, backend);
}

TEST_CASE("sqlite: a failing statement rolls the whole transaction back") {
  TempDb db;
  Loop loop;
  SqliteBackend* backend = openBackend(loop, db, [](SqliteOptions& o) { o.read_write = true; });
  SqlResult r =
      runTransaction(loop, backend,
                     {{"INSERT INTO users (id, name) VALUES (10, 'a')", {}, 0, 0},
                      {"INSERT INTO users (id, name) VALUES (1, 'duplicate id')", {}, 0, 0}});
  CHECK_FALSE(r.ok);
  CHECK(r.changes == 0);
  CHECK(r.error.find("UNIQUE") != std::string::npos);
  CHECK(db.count("users") == 3);  // the first insert was undone
  // The connection is usable again, outside any transaction.
  CHECK(runTransaction(loop, backend, {{"DELETE FROM users WHERE id = 1", {}, 0, 0}}).ok);
  CHECK(db.count("users") == 2);
  closeBackend(loop, backend);
}

TEST_CASE("sqlite: a transaction waits for a locked database, up to its deadline") {
  TempDb db;
  Loop loop;
  SqliteBackend* backend = openBackend(loop, db, [](SqliteOptions& o) { o.read_write = true; });
  db.exec("BEGIN EXCLUSIVE");
  SqlResult r = runTransaction(loop, backend, {{"DELETE FROM users", {}, 200, 0}});
  CHECK_FALSE(r.ok);
  CHECK(r.timed_out);
  db.exec("COMMIT");
  CHECK(db.count("users") == 3);
  CHECK(runTransaction(loop, backend, {{"DELETE FROM users", {}, 2000, 0}}).ok);
  CHECK(db.count("users") == 0);
  closeBackend(loop, backend);
}

TEST_CASE("sqlite: a slow query times out and the worker stays usable") {
  TempDb db;
  Loop loop;
  SqliteBackend* backend = openBackend(loop, db, [](SqliteOptions& o) { o.workers = 1; });

  auto start = Clock::now();
  SqlResult r = runQuery(loop, backend, {kSlowSql, {}, 100, 0});
  auto elapsed = Clock::now() - start;
  CHECK_FALSE(r.ok);
  CHECK(r.timed_out);
  CHECK(r.error == "query timed out after 100 ms");
  CHECK(r.rows.empty());
  CHECK(elapsed >= 100ms);
  CHECK(elapsed < 2s);

  // The same (only) worker and the same cached statement, again.
  r = runQuery(loop, backend, {"SELECT name FROM users WHERE id = 1", {}, 0, 0});
  REQUIRE(r.ok);
  CHECK(r.rows[0][0].bytes == "ada");
  r = runQuery(loop, backend, {kSlowSql, {}, 50, 0});
  CHECK(r.timed_out);

  // The options' default deadline applies when the query gives none.
  backend->close();
  REQUIRE(loop.runUntil([] { return SqliteBackend::liveCount() == 0; }));
  backend = openBackend(loop, db, [](SqliteOptions& o) {
    o.workers = 1;
    o.timeout_ms = 80;
  });
  r = runQuery(loop, backend, {kSlowSql, {}, 0, 0});
  CHECK(r.timed_out);
  CHECK(r.error == "query timed out after 80 ms");

  SqliteStats s = backend->stats();
  CHECK(s.timeouts == 1);
  CHECK(s.errors == 0);
  closeBackend(loop, backend);
}

TEST_CASE("sqlite: a full queue refuses at once") {
  TempDb db;
  Loop loop;
  SqliteBackend* backend = openBackend(loop, db, [](SqliteOptions& o) {
    o.workers = 1;
    o.queue_limit = 2;
  });

  int done = 0;
  int timed_out = 0;
  auto cb = [&](SqlResult&& r) {
    ++done;
    if (r.timed_out) ++timed_out;
  };
  REQUIRE(backend->query({kSlowSql, {}, 300, 0}, cb));
  waitRunning(backend, 1);  // the worker holds it; the queue is empty again
  REQUIRE(backend->query({"SELECT 1", {}, 0, 0}, cb));
  REQUIRE(backend->query({"SELECT 2", {}, 0, 0}, cb));
  CHECK(backend->stats().queued == 2);

  std::string error;
  auto start = Clock::now();
  bool refused_cb_ran = false;
  CHECK_FALSE(backend->query(
      {"SELECT 3", {}, 0, 0}, [&](SqlResult&&) { refused_cb_ran = true; }, &error));
  CHECK(Clock::now() - start < 100ms);
  CHECK(error == "queue full (2 queries waiting)");
  CHECK(backend->stats().rejected == 1);
  CHECK(backend->stats().queued == 2);

  REQUIRE(loop.runUntil([&] { return done == 3; }));
  CHECK(timed_out == 1);
  CHECK_FALSE(refused_cb_ran);
  // Room again.
  SqlResult r = runQuery(loop, backend, {"SELECT 4", {}, 0, 0});
  CHECK(r.ok);
  closeBackend(loop, backend);
}

TEST_CASE("sqlite: 200 concurrent queries on 4 workers all complete") {
  TempDb db;
  Loop loop;
  SqliteBackend* backend = openBackend(loop, db, [](SqliteOptions& o) {
    o.workers = 4;
    o.queue_limit = 256;
  });

  constexpr int kQueries = 200;
  std::vector<int64_t> got(kQueries, -1);
  int done = 0;
  int failed = 0;
  for (int i = 0; i < kQueries; ++i) {
    // Some rows exist, most do not; every query also does a little work.
    SqlQuery q{
        "SELECT :n * 2 AS twice, (SELECT name FROM users WHERE id = :n) AS name, "
        "(WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000) "
        "SELECT count(*) FROM c) AS work",
        {integer(":n", std::to_string(i))},
        0,
        0};
    bool queued = backend->query(std::move(q), [&, i](SqlResult&& r) {
      ++done;
      if (!r.ok || r.rows.size() != 1) {
        ++failed;
        return;
      }
      got[i] = r.rows[0][0].integer;
      if (i >= 1 && i <= 3) CHECK(r.rows[0][1].type == SqlValue::Type::kText);
      if (i > 3) CHECK(r.rows[0][1].type == SqlValue::Type::kNull);
      CHECK(r.rows[0][2].integer == 2000);
    });
    REQUIRE(queued);
  }
  REQUIRE(loop.runUntil([&] { return done == kQueries; }));
  CHECK(failed == 0);
  for (int i = 0; i < kQueries; ++i) CHECK(got[i] == 2 * i);
  SqliteStats s = backend->stats();
  CHECK(s.completed == kQueries);
  CHECK(s.errors == 0);
  CHECK(s.queued == 0);
  CHECK(s.running == 0);
  closeBackend(loop, backend);
}

TEST_CASE("sqlite: validate reports parameter names and SQL errors") {
  TempDb db;
  Loop loop;
  SqliteBackend* backend = openBackend(loop, db);

  std::vector<std::string> names;
  std::string error;
  REQUIRE(backend->validate(
      "SELECT name FROM users WHERE id = :id AND (note = @note OR name = :id) AND score > $min",
      &names, &error));
  CHECK(names == std::vector<std::string>{":id", "@note", "$min"});

  names = {"stale"};
  REQUIRE(backend->validate("SELECT count(*) FROM users", &names, &error));
  CHECK(names.empty());

  struct Bad {
    const char* sql;
    const char* error;
  };
  for (const Bad& bad : {
           Bad{"SELEC name FROM users", "near \"SELEC\": syntax error"},
           Bad{"SELECT name FROM nope WHERE id = :id", "no such table: nope"},
           Bad{"SELECT nope FROM users", "no such column: nope"},
           Bad{"SELECT 1; SELECT 2", "only one SQL statement is allowed"},
           Bad{"", "empty SQL statement"},
           Bad{"SELECT name FROM users WHERE id = ?",
               "positional parameter ? is not supported; "
               "use a named one (:name)"},
           Bad{"SELECT name FROM users WHERE id = ?1",
               "positional parameter ?1 is not supported; "
               "use a named one (:name)"},
       }) {
    CAPTURE(bad.sql);
    names = {"stale"};
    error.clear();
    CHECK_FALSE(backend->validate(bad.sql, &names, &error));
    CHECK(error == bad.error);
    CHECK(names == std::vector<std::string>{"stale"});  // untouched on failure
  }
  // validate runs nothing: a write validates on a read-only backend, and changes nothing.
  CHECK(backend->validate("DELETE FROM users WHERE id = :id", &names, &error));
  CHECK(db.count("users") == 3);
  CHECK(backend->stats().completed == 0);
  closeBackend(loop, backend);
}

TEST_CASE("sqlite: open reports a missing or unusable database") {
  TempDb db;
  Loop loop;
  std::string error;
  SqliteOptions options;
  options.path = db.dir() + "/missing.db";
  CHECK(SqliteBackend::open(loop.get(), options, &error) == nullptr);
  CHECK(error.find("cannot open " + options.path) == 0);
  CHECK_FALSE(std::filesystem::exists(options.path));  // never created

  options.path = db.dir() + "/garbage.db";
  {
    sqlite3* raw = nullptr;
    REQUIRE(sqlite3_open(options.path.c_str(), &raw) == SQLITE_OK);
    sqlite3_close(raw);
    FILE* f = fopen(options.path.c_str(), "wb");
    REQUIRE(f != nullptr);
    fputs("this is not an SQLite database, not at all, no header here.........", f);
    fclose(f);
  }
  error.clear();
  CHECK(SqliteBackend::open(loop.get(), options, &error) == nullptr);
  CHECK(error == "cannot use " + options.path + ": file is not a database");
  CHECK(SqliteBackend::liveCount() == 0);
}

TEST_CASE("sqlite: close with work in flight completes every callback, then frees") {
  TempDb db;
  Loop loop;
  SqliteBackend* backend = openBackend(loop, db, [](SqliteOptions& o) {
    o.workers = 2;
    o.queue_limit = 64;
  });

  std::vector<std::string> errors;
  int timed_out = 0;
  for (int i = 0; i < 12; ++i) {
    // Long deadlines: only close() can end these.
    REQUIRE(backend->query({kSlowSql, {}, 60000, 0}, [&](SqlResult&& r) {
      CHECK_FALSE(r.ok);
      if (r.timed_out) ++timed_out;
      errors.push_back(r.error);
    }));
  }
  waitRunning(backend, 2);
  CHECK(backend->stats().queued == 10);

  bool closed = false;
  size_t callbacks_at_done = 0;
  auto start = Clock::now();
  backend->close([&] {
    closed = true;
    callbacks_at_done = errors.size();
  });
  CHECK(errors.empty());  // never synchronously inside close()
  CHECK(backend->closing());

  std::string error;
  CHECK_FALSE(backend->query(
      {"SELECT 1", {}, 0, 0}, [](SqlResult&&) {}, &error));
  CHECK(error == "backend closed");

  REQUIRE(loop.runUntil([&] { return closed; }));
  CHECK(Clock::now() - start < 2s);
  CHECK(callbacks_at_done == 12);  // every callback ran before done
  CHECK(timed_out == 0);
  for (const std::string& e : errors) CHECK(e == "backend closed");
  CHECK(SqliteBackend::liveCount() == 0);
}

TEST_CASE("sqlite: close from inside a result callback") {
  TempDb db;
  Loop loop;
  SqliteBackend* backend = openBackend(loop, db, [](SqliteOptions& o) { o.workers = 1; });
  bool closed = false;
  int done = 0;
  REQUIRE(backend->query({"SELECT 1", {}, 0, 0}, [&](SqlResult&& r) {
    CHECK(r.ok);
    ++done;
    backend->close([&] { closed = true; });
    // The backend is still alive here; it refuses new work.
    CHECK_FALSE(backend->query({"SELECT 2", {}, 0, 0}, [](SqlResult&&) {}));
  }));
  REQUIRE(loop.runUntil([&] { return closed; }));
  CHECK(done == 1);
  CHECK(SqliteBackend::liveCount() == 0);
}

TEST_CASE("sqlite: close with nothing ever queued") {
  TempDb db;
  Loop loop;
  SqliteBackend* backend = openBackend(loop, db, [](SqliteOptions& o) { o.workers = 3; });
  closeBackend(loop, backend);
}

TEST_CASE("sqlite: create opens on any thread, start binds it to the loop") {
  TempDb db;
  Loop loop;
  SqliteOptions options;
  options.path = db.path();
  std::string error;
  SqliteBackend* backend = nullptr;
  std::thread opener([&] { backend = SqliteBackend::create(options, &error); });
  opener.join();
  REQUIRE_MESSAGE(backend != nullptr, error);
  std::vector<std::string> params;
  CHECK(backend->validate("SELECT name FROM users WHERE id = :id", &params, &error));
  CHECK(params == std::vector<std::string>{":id"});
  // Not started: nothing would run a query.
  CHECK_FALSE(backend->query(
      {"SELECT 1", {}, 0, 0}, [](SqlResult&&) {}, &error));
  REQUIRE_MESSAGE(backend->start(loop.get(), &error), error);
  CHECK(runQuery(loop, backend, {"SELECT count(*) FROM users", {}, 0, 0}).rows[0][0].integer == 3);
  closeBackend(loop, backend);
}

TEST_CASE("sqlite: a backend never started is freed by close at once") {
  TempDb db;
  SqliteOptions options;
  options.path = db.path();
  options.workers = 2;
  std::string error;
  SqliteBackend* backend = SqliteBackend::create(options, &error);
  REQUIRE_MESSAGE(backend != nullptr, error);
  bool done = false;
  backend->close([&done] { done = true; });
  CHECK(done);
  CHECK(SqliteBackend::liveCount() == 0);
}

SqlParam null(std::string name, std::string ignored = "") {
  return SqlParam{std::move(name), std::move(ignored), SqlParam::Kind::kNull};
}

TEST_CASE("sqlite: a kNull parameter binds SQL NULL, whatever its value") {
  TempDb db;
  Loop loop;
  SqliteBackend* backend = openBackend(loop, db);
  SqlResult r = runQuery(loop, backend,
                         {"SELECT typeof(:a), :a IS NULL, typeof(@b), coalesce($c, 'none')",
                          {null(":a"), null("@b", "not an integer"), null("$c", "12")},
                          0,
                          0});
  REQUIRE(r.ok);
  REQUIRE(r.rows.size() == 1);
  CHECK(r.rows[0][0].bytes == "null");
  CHECK(r.rows[0][1].integer == 1);
  CHECK(r.rows[0][2].bytes == "null");
  CHECK(r.rows[0][3].bytes == "none");
  // NULL compares equal to nothing: no row has id = NULL.
  r = runQuery(loop, backend, {"SELECT name FROM users WHERE id = :id", {null("id")}, 0, 0});
  REQUIRE(r.ok);
  CHECK(r.rows.empty());
  // As the value of a column.
  r = runQuery(loop, backend, {"SELECT :n", {null(":n", "x")}, 0, 0});
  REQUIRE(r.ok);
  CHECK(r.rows[0][0].type == SqlValue::Type::kNull);
  // A kNull parameter the statement does not have is refused like any other.
  r = runQuery(loop, backend, {"SELECT :id", {text(":id", "1"), null(":other")}, 0, 0});
  CHECK_FALSE(r.ok);
  CHECK(r.error == "the statement has no parameter :other");
  closeBackend(loop, backend);
}

TEST_CASE("sqlite: NULL, text and integer bindings of one cached statement do not leak") {
  TempDb db;
  Loop loop;
  SqliteBackend* backend = openBackend(loop, db, [](SqliteOptions& o) {
    o.read_write = true;
    o.workers = 1;
  });
  const std::string sql = "INSERT INTO users (id, name, note) VALUES (:id, :name, :note)";
  SqlResult r = runQuery(loop, backend,
                         {sql, {integer(":id", "10"), text(":name", "a"), null(":note")}, 0, 0});
  CHECK_MESSAGE(r.ok, r.error);
  r = runQuery(loop, backend,
               {sql, {integer(":id", "11"), null(":name", "b"), text(":note", "n")}, 0, 0});
  CHECK_MESSAGE(r.ok, r.error);
  r = runQuery(loop, backend,
               {sql, {integer(":id", "12"), text(":name", ""), text(":note", "")}, 0, 0});
  CHECK_MESSAGE(r.ok, r.error);
  // An UPDATE to NULL, in a transaction.
  r = [&] {
    SqlResult out;
    bool done = false;
    REQUIRE(backend->transaction({{"UPDATE users SET note = :note WHERE id = :id",
                                   {null(":note"), integer(":id", "3")},
                                   0,
                                   0}},
                                 [&](SqlResult&& res) {
                                   out = std::move(res);
                                   done = true;
                                 }));
    REQUIRE(loop.runUntil([&] { return done; }));
    return out;
  }();
  CHECK_MESSAGE(r.ok, r.error);
  CHECK(r.changes == 1);

  r = runQuery(
      loop, backend,
      {"SELECT id, typeof(name), typeof(note) FROM users WHERE id >= 3 ORDER BY id", {}, 0, 0});
  REQUIRE(r.ok);
  REQUIRE(r.rows.size() == 4);
  const char* expected[4][2] = {
      {"text", "null"}, {"text", "null"}, {"null", "text"}, {"text", "text"}};
  const int64_t ids[4] = {3, 10, 11, 12};
  for (size_t i = 0; i < 4; ++i) {
    CAPTURE(i);
    CHECK(r.rows[i][0].integer == ids[i]);
    CHECK(r.rows[i][1].bytes == expected[i][0]);
    CHECK(r.rows[i][2].bytes == expected[i][1]);
  }
  closeBackend(loop, backend);
}

}  // namespace
}  // namespace readthru::backends
