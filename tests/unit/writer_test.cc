// Writer: how a key and its new state bind to the upsert or delete, the error texts; and the
// writers CacheRegistry makes live (a read-write connection per backend they use, statements
// checked against the database, findWriter in config order).
#include "proxy/writer.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <uv.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <doctest/doctest.h>

#include "tests/unit/test_loop.h"
#include "tests/unit/test_query.h"
#include "tests/unit/test_registry.h"

#include "proxy/cache_registry.h"
#include "proxy/key_template.h"

namespace readthru {
namespace {

using backends::SqlParam;
using backends::SqlQuery;
using backends::SqlResult;
using Clock = std::chrono::steady_clock;
using Fields = std::vector<std::pair<std::string, std::string>>;
using namespace std::literals;

WriteState stringState(std::string value) {
  WriteState s;
  s.kind = WriteState::Kind::kString;
  s.value = std::move(value);
  return s;
}

WriteState hashState(Fields fields) {
  WriteState s;
  s.kind = WriteState::Kind::kHash;
  s.fields = std::move(fields);
  return s;
}

WriteState deleted() { return WriteState{}; }

WriterConfig writerConfig(std::string key, std::string upsert, std::string del) {
  WriterConfig c;
  c.name = "user";
  c.where = "test.toml:12:1";
  c.key = std::move(key);
  c.backend = "main";
  c.upsert = std::move(upsert);
  c.del = std::move(del);
  c.timeout_ms = 1500;
  return c;
}

// A writer without a backend: nothing here runs a statement.
Writer makeWriter(WriterConfig config, const std::vector<std::string>& upsert_params,
                  const std::vector<std::string>& delete_params) {
  KeyTemplate tmpl;
  std::string error;
  REQUIRE_MESSAGE(KeyTemplate::parse(config.key, &tmpl, &error), error);
  return Writer(std::move(config), std::move(tmpl), nullptr, upsert_params, delete_params);
}

// Parameters compared as (name, kind, value), the value only when it is bound.
struct Bound {
  std::string name;
  SqlParam::Kind kind;
  std::string value;
  bool operator==(const Bound&) const = default;
};

std::ostream& operator<<(std::ostream& os, const std::vector<Bound>& v) {
  os << "[";
  for (const Bound& b : v) {
    const char* kind = b.kind == SqlParam::Kind::kText      ? "text"
                       : b.kind == SqlParam::Kind::kInteger ? "int"
                                                            : "null";
    os << " " << b.name << "=" << kind << "(" << b.value << ")";
  }
  return os << " ]";
}

std::ostream& operator<<(std::ostream& os, const Bound& b) { return os << std::vector<Bound>{b}; }

std::vector<Bound> bound(const SqlQuery& q) {
  std::vector<Bound> out;
  for (const SqlParam& p : q.params) {
    out.push_back({p.name, p.kind, p.kind == SqlParam::Kind::kNull ? "" : p.value});
  }
  return out;
}

constexpr SqlParam::Kind kText = SqlParam::Kind::kText;
constexpr SqlParam::Kind kInt = SqlParam::Kind::kInteger;
constexpr SqlParam::Kind kNull = SqlParam::Kind::kNull;

TEST_CASE("writer: captures bind by name, {name:int} as an integer, :value as the string") {
  Writer w = makeWriter(writerConfig("user:{id:int}", "INSERT INTO kv VALUES (:id, :value)",
                                     "DELETE FROM kv WHERE id = :id"),
                        {":id", ":value"}, {":id"});
  SqlQuery q = w.statement("user:42", stringState("hello"));
  CHECK(q.sql == "INSERT INTO kv VALUES (:id, :value)");
  // Every upsert of the writer refers to one copy of its SQL text.
  CHECK(&w.statement("user:43", stringState("x")).sql.str() == &q.sql.str());
  CHECK(q.timeout_ms == 1500);
  CHECK(q.max_rows == 0);
  CHECK(bound(q) == std::vector<Bound>{{":id", kInt, "42"}, {":value", kText, "hello"}});

  // An empty string is empty text, never NULL; binary bytes go through untouched.
  q = w.statement("user:0", stringState(""));
  CHECK(bound(q) == std::vector<Bound>{{":id", kInt, "0"}, {":value", kText, ""}});
  q = w.statement("user:9223372036854775807", stringState("\0\r\n\xff"s));
  CHECK(bound(q) ==
        std::vector<Bound>{{":id", kInt, "9223372036854775807"}, {":value", kText, "\0\r\n\xff"s}});

  // The delete binds the captures only; the state's value is not looked at.
  WriteState d = deleted();
  d.value = "ignored";
  q = w.statement("user:7", d);
  CHECK(q.sql == "DELETE FROM kv WHERE id = :id");
  CHECK(q.timeout_ms == 1500);
  CHECK(bound(q) == std::vector<Bound>{{":id", kInt, "7"}});
}

TEST_CASE("writer: string and integer captures, in the statement's parameter order") {
  Writer w = makeWriter(writerConfig("t:{tenant}:user:{id:int}:{lang}",
                                     "INSERT INTO t VALUES (:lang, :value, :id, :tenant)",
                                     "DELETE FROM t WHERE tenant = :tenant AND id = :id"),
                        {":lang", ":value", ":id", ":tenant"}, {":tenant", ":id"});
  SqlQuery q = w.statement("t:acme:user:12:en", stringState("v"));
  CHECK(bound(q) == std::vector<Bound>{{":lang", kText, "en"},
                                       {":value", kText, "v"},
                                       {":id", kInt, "12"},
                                       {":tenant", kText, "acme"}});
  q = w.statement("t: 1\r\n:user:3:x y", deleted());
  CHECK(bound(q) == std::vector<Bound>{{":tenant", kText, " 1\r\n"}, {":id", kInt, "3"}});

  // '@' and '$' names bind the same way; the name stays as written in the SQL.
  Writer at = makeWriter(writerConfig("user:{id:int}", "INSERT INTO kv VALUES (@id, $value)",
                                      "DELETE FROM kv WHERE id = $id"),
                         {"@id", "$value"}, {"$id"});
  q = at.statement("user:5", stringState("x"));
  CHECK(bound(q) == std::vector<Bound>{{"@id", kInt, "5"}, {"$value", kText, "x"}});
  q = at.statement("user:5", deleted());
  CHECK(bound(q) == std::vector<Bound>{{"$id", kInt, "5"}});

  // A statement without parameters binds nothing.
  Writer none =
      makeWriter(writerConfig("counter", "UPDATE c SET n = n + 1", "DELETE FROM c"), {}, {});
  CHECK(none.statement("counter", stringState("1")).params.empty());
  CHECK(none.statement("counter", deleted()).params.empty());
  CHECK(none.statement("counter", deleted()).sql == "DELETE FROM c");
}

TEST_CASE("writer: a hash binds its fields by name, NULL where it has none") {
  Writer w = makeWriter(
      writerConfig("user:{id:int}", "INSERT INTO users VALUES (:id, :name, @email, $age, :value)",
                   "DELETE FROM users WHERE id = :id"),
      {":id", ":name", "@email", "$age", ":value"}, {":id"});

  SqlQuery q = w.statement("user:1", hashState({{"name", "ada"}, {"extra", "x"}, {"age", ""}}));
  CHECK(q.sql == "INSERT INTO users VALUES (:id, :name, @email, $age, :value)");
  CHECK(bound(q) == std::vector<Bound>{{":id", kInt, "1"},
                                       {":name", kText, "ada"},
                                       {"@email", kNull, ""},
                                       {"$age", kText, ""},  // an empty field is not NULL
                                       {":value", kNull, ""}});

  // An empty hash: every field NULL; the captures still bind.
  q = w.statement("user:2", hashState({}));
  CHECK(bound(q) == std::vector<Bound>{{":id", kInt, "2"},
                                       {":name", kNull, ""},
                                       {"@email", kNull, ""},
                                       {"$age", kNull, ""},
                                       {":value", kNull, ""}});

  // :value is the string write's value: a hash field named "value" does not bind it.
  q = w.statement("user:3", hashState({{"value", "v"}, {"email", "e@x"}}));
  CHECK(bound(q) == std::vector<Bound>{{":id", kInt, "3"},
                                       {":name", kNull, ""},
                                       {"@email", kText, "e@x"},
                                       {"$age", kNull, ""},
                                       {":value", kNull, ""}});

  // A string write binds no field: they are all NULL.
  q = w.statement("user:4", stringState("raw"));
  CHECK(bound(q) == std::vector<Bound>{{":id", kInt, "4"},
                                       {":name", kNull, ""},
                                       {"@email", kNull, ""},
                                       {"$age", kNull, ""},
                                       {":value", kText, "raw"}});

  // Field names are case-sensitive and matched in full.
  q = w.statement("user:5", hashState({{"Name", "A"}, {"nam", "B"}, {"names", "C"}}));
  CHECK(bound(q)[1] == Bound{":name", kNull, ""});

  // Binary field values bind as they are.
  q = w.statement("user:6", hashState({{"name", "\0:\xff"s}}));
  CHECK(bound(q)[1] == Bound{":name", kText, "\0:\xff"s});
}

TEST_CASE("writer: every spelling of one name binds the value the state moved into the query") {
  // The state's value and fields move into the statement's parameters; a name written twice
  // (:value and @value are two parameters to SQLite) must get the bytes in both.
  Writer s = makeWriter(writerConfig("kv:{id}", "INSERT INTO kv VALUES (:id, :value, @value)",
                                     "DELETE FROM kv WHERE id = :id"),
                        {":id", ":value", "@value"}, {":id"});
  SqlQuery q = s.statement("kv:a", stringState(std::string(100, 'v')));
  CHECK(bound(q) == std::vector<Bound>{{":id", kText, "a"},
                                       {":value", kText, std::string(100, 'v')},
                                       {"@value", kText, std::string(100, 'v')}});

  Writer h = makeWriter(writerConfig("h:{id}", "INSERT INTO h VALUES (:id, :name, $name, @email)",
                                     "DELETE FROM h WHERE id = :id"),
                        {":id", ":name", "$name", "@email"}, {":id"});
  q = h.statement("h:b",
                  hashState({{"email", std::string(40, 'e')}, {"name", std::string(30, 'n')}}));
  CHECK(bound(q) == std::vector<Bound>{{":id", kText, "b"},
                                       {":name", kText, std::string(30, 'n')},
                                       {"$name", kText, std::string(30, 'n')},
                                       {"@email", kText, std::string(40, 'e')}});
}

TEST_CASE("writer: a capture wins over a hash field and over :value of the same name") {
  Writer w = makeWriter(writerConfig("kv:{value}:{name}", "INSERT INTO kv VALUES (:value, :name)",
                                     "DELETE FROM kv WHERE k = :value"),
                        {":value", ":name"}, {":value"});
  SqlQuery q = w.statement("kv:abc:n1", stringState("the value"));
  CHECK(bound(q) == std::vector<Bound>{{":value", kText, "abc"}, {":name", kText, "n1"}});
  q = w.statement("kv:abc:n1", hashState({{"name", "field"}, {"value", "field"}}));
  CHECK(bound(q) == std::vector<Bound>{{":value", kText, "abc"}, {":name", kText, "n1"}});
}

TEST_CASE("writer: error texts and accessors") {
  WriterConfig c = writerConfig("user:{id}", "INSERT INTO kv VALUES (:id, :value)",
                                "DELETE FROM kv WHERE id = :id");
  Writer w = makeWriter(c, {":id", ":value"}, {":id"});
  CHECK(w.failedError("database is locked") == "ERR writer 'user' failed: database is locked");
  CHECK(w.failedError("") == "ERR writer 'user' failed: ");
  CHECK(w.timeoutError() == "ERR writer 'user' timed out after 1500 ms");
  CHECK(w.name() == "user");
  CHECK(w.config().key == "user:{id}");
  CHECK(w.config().where == "test.toml:12:1");
  CHECK_FALSE(w.behind());
  CHECK(w.backend() == nullptr);
  CHECK(w.stats().writes == 0);
  CHECK(w.stats().db_writes == 0);
  CHECK(w.stats().dead_letters == 0);
  ++w.stats().writes;
  CHECK(static_cast<const Writer&>(w).stats().writes == 1);

  KeyTemplate::Captures scratch;
  CHECK(w.match("user:1", &scratch));
  CHECK_FALSE(w.match("user:", &scratch));
  CHECK_FALSE(w.match("user:1:x", &scratch));

  c.name = "orders \"eu\"";
  c.mode = WriteMode::kBehind;
  c.timeout_ms = 5000;
  Writer b = makeWriter(c, {":id", ":value"}, {":id"});
  CHECK(b.behind());
  CHECK(b.timeoutError() == "ERR writer 'orders \"eu\"' timed out after 5000 ms");
  CHECK(b.failedError("x") == "ERR writer 'orders \"eu\"' failed: x");
}

// ---- The writers CacheRegistry makes live, on a real database. ----

// A temp directory holding a small database file built with the sqlite3 C API; the test reads the
// file back through its own connection.
class TempDb {
 public:
  TempDb() {
    std::string templ =
        (std::filesystem::temp_directory_path() / "readthru-writer-XXXXXX").string();
    REQUIRE(mkdtemp(templ.data()) != nullptr);
    dir_ = templ;
    path_ = (dir_ / "app.db").string();
    REQUIRE(sqlite3_open_v2(path_.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                            nullptr) == SQLITE_OK);
    exec(
        "PRAGMA synchronous = OFF;"
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, email TEXT);"
        "INSERT INTO users VALUES (1, 'ada', 'ada@example.com');"
        "CREATE TABLE kv (k TEXT PRIMARY KEY, v);");
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
  // The rows of `sql`, each value as "type:text" ("null" for NULL).
  std::vector<std::string> rows(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    REQUIRE(sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK);
    std::vector<std::string> out;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
      std::string row;
      for (int i = 0; i < sqlite3_column_count(stmt); ++i) {
        if (i > 0) row += "|";
        int t = sqlite3_column_type(stmt, i);
        if (t == SQLITE_NULL) {
          row += "null";
          continue;
        }
        row += t == SQLITE_INTEGER ? "int:" : t == SQLITE_TEXT ? "text:" : "other:";
        const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, i));
        row.append(text, static_cast<size_t>(sqlite3_column_bytes(stmt, i)));
      }
      out.push_back(row);
    }
    sqlite3_finalize(stmt);
    return out;
  }

  const std::string& path() const { return path_; }
  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
  std::string path_;
  sqlite3* db_ = nullptr;
};

using test::Loop;

BackendConfig backend(std::string name, std::string path) {
  BackendConfig b;
  b.name = std::move(name);
  b.where = "test.toml:1:1";
  b.path = std::move(path);
  b.workers = 2;
  b.queue = 16;
  return b;
}

WriterConfig writer(std::string name, std::string key, std::string upsert, std::string del,
                    std::string backend_name = "main") {
  WriterConfig w;
  w.name = std::move(name);
  w.where = "test.toml:12:1";
  w.key = std::move(key);
  w.backend = std::move(backend_name);
  w.upsert = std::move(upsert);
  w.del = std::move(del);
  return w;
}

WriterConfig kvWriter(std::string name, std::string key, std::string backend_name = "main") {
  return writer(std::move(name), std::move(key),
                "INSERT INTO kv VALUES (:k, :value) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
                "DELETE FROM kv WHERE k = :k", std::move(backend_name));
}

WriterConfig userWriter(std::string name = "user", std::string key = "user:{id:int}") {
  return writer(std::move(name), std::move(key),
                "INSERT INTO users (id, name, email) VALUES (:id, :name, :email) "
                "ON CONFLICT(id) DO UPDATE SET name = excluded.name, email = excluded.email",
                "DELETE FROM users WHERE id = :id");
}

using test::closeRegistry;
using test::openError;

// Runs `w`'s statement for (key, state) on its backend.
SqlResult run(Loop& loop, Writer* w, std::string_view key, const WriteState& state) {
  REQUIRE(w != nullptr);
  return test::runQuery(loop, w->backend(), w->statement(key, state));
}

TEST_CASE("writer registry: a read-write connection per backend that writers use") {
  TempDb db;
  Loop loop;
  Config config;
  config.backends.push_back(backend("main", db.path()));
  config.backends.push_back(backend("archive", db.path()));
  config.backends.push_back(backend("readonly", db.path()));
  config.writers.push_back(userWriter());
  config.writers.push_back(kvWriter("kv", "kv:{k}", "archive"));
  config.writers.push_back(kvWriter("kv_main", "main:{k}"));

  CacheRegistry registry;
  CHECK_FALSE(registry.hasWriters());
  CHECK(registry.findWriter("user:1") == nullptr);
  std::string error;
  REQUIRE_MESSAGE(registry.open(loop.get(), config, &error), error);
  CHECK(error.empty());
  CHECK(registry.hasWriters());
  CHECK(registry.empty());  // no loaders
  // Per backend: the read-only pool, plus a read-write connection when a writer uses it.
  CHECK(backends::SqliteBackend::liveCount() == 5);

  const auto& b = registry.backends();
  REQUIRE(b.size() == 3);
  for (size_t i = 0; i < 2; ++i) {
    CAPTURE(b[i].config->name);
    REQUIRE(b[i].sqlite != nullptr);
    REQUIRE(b[i].writer != nullptr);
    CHECK(b[i].writer != b[i].sqlite);
    CHECK_FALSE(b[i].sqlite->options().read_write);
    CHECK(b[i].sqlite->options().workers == 2);
    CHECK(b[i].writer->options().read_write);
    CHECK(b[i].writer->options().workers == 1);
    CHECK(b[i].writer->options().max_rows == 0);
    CHECK(b[i].writer->options().queue_limit == 16);
    CHECK(b[i].writer->options().path == db.path());
  }
  CHECK(b[2].config->name == "readonly");
  CHECK(b[2].sqlite != nullptr);
  CHECK(b[2].writer == nullptr);  // no writer uses it

  const auto& w = registry.writers();
  REQUIRE(w.size() == 3);
  CHECK(w[0]->name() == "user");
  CHECK(w[0]->backend() == b[0].writer);
  CHECK(w[1]->name() == "kv");
  CHECK(w[1]->backend() == b[1].writer);
  CHECK(w[2]->name() == "kv_main");
  CHECK(w[2]->backend() == b[0].writer);  // shared with "user"
  CHECK(w[0]->config().upsert == config.writers[0].upsert);

  // The writers' statements run on their read-write connection.
  Writer* user = registry.findWriter("user:7");
  REQUIRE(user != nullptr);
  SqlResult r = run(loop, user, "user:7", hashState({{"name", "grace"}, {"other", "x"}}));
  CHECK_MESSAGE(r.ok, r.error);
  CHECK(r.changes == 1);
  CHECK(db.rows("SELECT id, name, email FROM users WHERE id = 7") ==
        std::vector<std::string>{"int:7|text:grace|null"});
  r = run(loop, user, "user:1", hashState({{"email", ""}}));
  CHECK_MESSAGE(r.ok, r.error);
  CHECK(db.rows("SELECT id, name, email FROM users WHERE id = 1") ==
        std::vector<std::string>{"int:1|null|text:"});
  r = run(loop, user, "user:7", deleted());
  CHECK_MESSAGE(r.ok, r.error);
  CHECK(r.changes == 1);
  CHECK(db.rows("SELECT id FROM users ORDER BY id") == std::vector<std::string>{"int:1"});

  CHECK(registry.findWriter("kv:a:b") == nullptr);  // a capture holds no ':'
  r = run(loop, registry.findWriter("kv:ab"), "kv:ab", stringState("12"));
  CHECK_MESSAGE(r.ok, r.error);
  r = run(loop, registry.findWriter("main:x"), "main:x", stringState(""));
  CHECK_MESSAGE(r.ok, r.error);
  CHECK(db.rows("SELECT k, v FROM kv ORDER BY k") ==
        std::vector<std::string>{"text:ab|text:12", "text:x|text:"});

  // The loaders' connection cannot write.
  SqlResult ro;
  bool done = false;
  REQUIRE(b[0].sqlite->query(user->statement("user:8", hashState({})), [&](SqlResult&& res) {
    ro = std::move(res);
    done = true;
  }));
  REQUIRE(loop.runUntil([&] { return done; }));
  CHECK_FALSE(ro.ok);
  CHECK(ro.error.find("readonly") != std::string::npos);

  closeRegistry(loop, registry);
  CHECK(registry.writers().size() == 3);  // the writers live on with the registry
}

TEST_CASE("writer registry: findWriter answers in config order") {
  TempDb db;
  Loop loop;
  Config config;
  config.backends.push_back(backend("main", db.path()));
  config.writers.push_back(kvWriter("by_id", "user:{k:int}"));
  config.writers.push_back(kvWriter("by_name", "user:{k}"));
  config.writers.push_back(
      writer("exact", "users:all", "INSERT INTO kv VALUES ('all', :value)", "DELETE FROM kv"));
  CacheRegistry registry;
  std::string error;
  REQUIRE_MESSAGE(registry.open(loop.get(), config, &error), error);
  CHECK(registry.findWriter("user:1")->name() == "by_id");
  CHECK(registry.findWriter("user:ada")->name() == "by_name");
  CHECK(registry.findWriter("user:01")->name() == "by_name");  // not a canonical int
  CHECK(registry.findWriter("users:all")->name() == "exact");
  for (std::string_view miss : {"user:", "user:1:x", "users:all:x", "users", "kv:1", ""}) {
    CAPTURE(miss);
    CHECK(registry.findWriter(miss) == nullptr);
  }
  // Writers and loaders are looked up apart.
  CHECK(registry.find("user:1") == nullptr);
  closeRegistry(loop, registry);

  // The other order gives the other writer.
  std::swap(config.writers[0], config.writers[1]);
  CacheRegistry other;
  REQUIRE_MESSAGE(other.open(loop.get(), config, &error), error);
  CHECK(other.findWriter("user:1")->name() == "by_name");
  closeRegistry(loop, other);
}

TEST_CASE("writer registry: an upsert or delete that does not prepare names the writer") {
  TempDb db;
  Loop loop;
  Config config;
  config.backends.push_back(backend("main", db.path()));
  config.writers.push_back(userWriter());
  struct Case {
    std::string sql;
    std::string why;
  };
  const Case cases[] = {
      {"INSERT INTO nope VALUES (:id)", "no such table: nope"},
      {"UPDATE users SET nope = :v WHERE id = :id", "no such column: nope"},
      {"INSER INTO users VALUES (:id)", "near \"INSER\": syntax error"},
      {"DELETE FROM users; DELETE FROM kv", "only one SQL statement is allowed"},
      {"", "empty SQL statement"},
      {"DELETE FROM users WHERE id = ?",
       "positional parameter ? is not supported; use a named one (:name)"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.sql);
    Config bad = config;
    bad.writers.push_back(writer("w", "order:{id}", c.sql, "DELETE FROM users WHERE id = :id"));
    CHECK(openError(loop, bad) ==
          "test.toml:12:1: writer 'w': the upsert does not prepare: " + c.why);
    bad.writers.back() = writer("w", "order:{id}", "DELETE FROM kv WHERE k = :id", c.sql);
    CHECK(openError(loop, bad) ==
          "test.toml:12:1: writer 'w': the delete does not prepare: " + c.why);
  }
  CHECK(backends::SqliteBackend::liveCount() == 0);
}

TEST_CASE("writer registry: a delete parameter the key template does not capture") {
  TempDb db;
  Loop loop;
  Config config;
  config.backends.push_back(backend("main", db.path()));
  struct Case {
    std::string key;
    std::string del;
    std::string param;
  };
  const Case cases[] = {
      {"user:{id}", "DELETE FROM users WHERE id = :uid", ":uid"},
      {"user:{id}", "DELETE FROM users WHERE id = :id AND name = :name", ":name"},
      {"user:{id}", "DELETE FROM kv WHERE k = :id AND v = :value", ":value"},  // no value to delete
      {"users:all", "DELETE FROM users WHERE id = @id", "@id"},
      {"user:{Id}", "DELETE FROM users WHERE id = $id", "$id"},  // names are case-sensitive
  };
  for (const Case& c : cases) {
    CAPTURE(c.del);
    Config bad = config;
    bad.writers.push_back(
        writer("w", c.key, "INSERT INTO kv VALUES ('x', :anything_at_all)", c.del));
    CHECK(openError(loop, bad) == "test.toml:12:1: writer 'w': the delete's parameter " + c.param +
                                      " is not captured by the key template '" + c.key + "'");
  }
  // The upsert may name parameters the template does not capture: they are hash fields. And the
  // delete need not use every capture.
  Config ok = config;
  ok.writers.push_back(writer("w", "t:{tenant}:user:{id:int}",
                              "INSERT INTO users VALUES (:id, :name, :email)",
                              "DELETE FROM users WHERE id = :id"));
  CacheRegistry registry;
  std::string error;
  REQUIRE_MESSAGE(registry.open(loop.get(), ok, &error), error);
  SqlResult r = run(loop, registry.findWriter("t:acme:user:5"), "t:acme:user:5",
                    hashState({{"name", "n"}, {"email", "e"}}));
  CHECK_MESSAGE(r.ok, r.error);
  CHECK(db.rows("SELECT * FROM users WHERE id = 5") ==
        std::vector<std::string>{"int:5|text:n|text:e"});
  closeRegistry(loop, registry);
}

TEST_CASE("writer registry: an unknown backend or a bad key template") {
  TempDb db;
  Loop loop;
  Config config;
  config.backends.push_back(backend("main", db.path()));
  config.writers.push_back(kvWriter("w", "kv:{k}", "replica"));
  CHECK(openError(loop, config) == "test.toml:12:1: writer 'w': unknown backend 'replica'");

  Config none;
  none.writers.push_back(kvWriter("w", "kv:{k}"));
  CHECK(openError(loop, none) == "test.toml:12:1: writer 'w': unknown backend 'main'");

  std::string why;
  {
    KeyTemplate t;
    CHECK_FALSE(KeyTemplate::parse("kv:{k", &t, &why));
  }
  config.writers = {kvWriter("w", "kv:{k")};
  CHECK(openError(loop, config) == "test.toml:12:1: writer 'w': bad key template 'kv:{k': " + why);
}

TEST_CASE("writer registry: a failing writer closes every connection, loaders' and writers'") {
  TempDb db;
  Loop loop;
  Config config;
  config.backends.push_back(backend("main", db.path()));
  config.backends.push_back(backend("second", db.path()));
  LoaderConfig l;
  l.name = "u";
  l.where = "test.toml:9:1";
  l.key = "user:{id}";
  l.backend = "main";
  l.query = "SELECT name FROM users WHERE id = :id";
  config.loaders.push_back(l);
  config.writers.push_back(userWriter());
  config.writers.push_back(writer("bad", "b:{k}", "INSERT INTO nope VALUES (:k)",
                                  "DELETE FROM kv WHERE k = :k", "second"));
  CHECK(openError(loop, config) ==
        "test.toml:12:1: writer 'bad': the upsert does not prepare: no such table: nope");
  CHECK(backends::SqliteBackend::liveCount() == 0);
}

TEST_CASE("writer registry: from a config file") {
  TempDb db;
  Loop loop;
  std::string conf = (db.dir() / "readthru.toml").string();
  std::ofstream(conf) << R"toml([backends.main]
path = "app.db"

[[writers]]
name = "kv"
key = "kv:{k}"
backend = "main"
mode = "behind"
upsert = "INSERT INTO kv VALUES (:k, :value) ON CONFLICT(k) DO UPDATE SET v = excluded.v"
delete = "DELETE FROM kv WHERE k = :k"

[[writers]]
name = "broken"
key = "broken:{id}"
backend = "main"
upsert = "INSERT INTO users (uid) VALUES (:id)"
delete = "DELETE FROM users WHERE id = :id"
)toml";
  Config config;
  std::string error;
  REQUIRE_MESSAGE(loadConfigFile(conf, &config, &error), error);
  // The file parses; the statements are only checked against the database.
  CHECK(openError(loop, config) == conf + ":12:1: writer 'broken': the upsert does not prepare: " +
                                       "table users has no column named uid");

  config.writers.pop_back();
  CacheRegistry registry;
  REQUIRE_MESSAGE(registry.open(loop.get(), config, &error), error);
  Writer* kv = registry.findWriter("kv:x");
  REQUIRE(kv != nullptr);
  CHECK(kv->behind());
  CHECK(kv->config().where == conf + ":4:1");
  SqlResult r = run(loop, kv, "kv:x", stringState("1"));
  CHECK_MESSAGE(r.ok, r.error);
  r = run(loop, kv, "kv:x", stringState("2"));
  CHECK_MESSAGE(r.ok, r.error);
  CHECK(db.rows("SELECT k, v FROM kv") == std::vector<std::string>{"text:x|text:2"});
  closeRegistry(loop, registry);
}

}  // namespace
}  // namespace readthru
