#include "proxy/cache_registry.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <uv.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <doctest/doctest.h>

#include "tests/unit/test_loop.h"
#include "tests/unit/test_query.h"
#include "tests/unit/test_registry.h"

#include "proxy/key_template.h"

namespace readthru {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// A temp directory holding a small database file built with the sqlite3 C API.
class TempDb {
 public:
  TempDb() {
    std::string templ =
        (std::filesystem::temp_directory_path() / "readthru-registry-XXXXXX").string();
    REQUIRE(mkdtemp(templ.data()) != nullptr);
    dir_ = templ;
    path_ = (dir_ / "app.db").string();
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                            nullptr) == SQLITE_OK);
    char* err = nullptr;
    int rc = sqlite3_exec(db,
                          "PRAGMA synchronous = OFF;"
                          "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, email TEXT);"
                          "INSERT INTO users VALUES (1, 'ada', 'ada@example.com');"
                          "INSERT INTO users VALUES (2, 'grace', NULL);",
                          nullptr, nullptr, &err);
    CAPTURE(err != nullptr ? err : "");
    sqlite3_free(err);
    sqlite3_close_v2(db);
    REQUIRE(rc == SQLITE_OK);
  }
  ~TempDb() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  TempDb(const TempDb&) = delete;
  TempDb& operator=(const TempDb&) = delete;

  const std::string& path() const { return path_; }
  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
  std::string path_;
};

using test::Loop;

BackendConfig backend(std::string name, std::string path) {
  BackendConfig b;
  b.name = std::move(name);
  b.where = "test.toml:1:1";
  b.path = std::move(path);
  b.workers = 1;
  b.queue = 16;
  return b;
}

LoaderConfig loader(std::string name, std::string key, std::string query,
                    std::string backend_name = "main") {
  LoaderConfig l;
  l.name = std::move(name);
  l.where = "test.toml:9:1";
  l.key = std::move(key);
  l.backend = std::move(backend_name);
  l.query = std::move(query);
  return l;
}

using test::closeRegistry;
using test::openError;

// After a failed open() the registry has closed what it opened; the loop finishes the job.
void drain(Loop& loop) {
  REQUIRE(loop.runUntil([] { return backends::SqliteBackend::liveCount() == 0; }));
}

// Runs `l`'s query for `key` on its backend and decodes the result.
LoadedValue load(Loop& loop, Loader* l, std::string_view key) {
  return l->decode(test::runQuery(loop, l->backend(), l->query(key)));
}

TEST_CASE("cache registry: open makes every loader live, find() answers in config order") {
  TempDb db;
  Loop loop;
  Config config;
  config.backends.push_back(backend("main", db.path()));
  config.loaders.push_back(
      loader("by_id", "user:{id:int}", "SELECT name FROM users WHERE id = :id"));
  config.loaders.push_back(
      loader("by_name", "user:{name}", "SELECT email FROM users WHERE name = :name"));
  config.loaders.push_back(loader("profile", "profile:{id}", "SELECT * FROM users WHERE id = @id"));
  config.loaders.back().type = LoaderType::kHash;
  config.loaders.push_back(loader("count", "users:count", "SELECT count(*) FROM users"));

  CacheRegistry registry;
  CHECK(registry.empty());
  CHECK(registry.find("user:1") == nullptr);
  std::string error;
  REQUIRE_MESSAGE(registry.open(loop.get(), config, &error), error);
  CHECK(error.empty());
  CHECK_FALSE(registry.empty());

  REQUIRE(registry.backends().size() == 1);
  // The registry's own copy: it outlives the Config a reload replaces.
  CHECK(registry.backends()[0].config != &config.backends[0]);
  CHECK(registry.backends()[0].config->name == config.backends[0].name);
  CHECK(registry.backends()[0].config->path == config.backends[0].path);
  REQUIRE(registry.backends()[0].sqlite != nullptr);
  REQUIRE(registry.loaders().size() == 4);
  const char* names[] = {"by_id", "by_name", "profile", "count"};
  for (size_t i = 0; i < 4; ++i) {
    CHECK(registry.loaders()[i]->name() == names[i]);
    CHECK(registry.loaders()[i]->backend() == registry.backends()[0].sqlite);
  }

  // "user:1" matches both user templates: the first in the config wins.
  Loader* l = registry.find("user:1");
  REQUIRE(l != nullptr);
  CHECK(l->name() == "by_id");
  REQUIRE(registry.find("user:ada") != nullptr);
  CHECK(registry.find("user:ada")->name() == "by_name");
  REQUIRE(registry.find("user:01") != nullptr);  // not a canonical int
  CHECK(registry.find("user:01")->name() == "by_name");
  CHECK(registry.find("profile:2")->name() == "profile");
  CHECK(registry.find("users:count")->name() == "count");
  for (std::string_view miss : {"user:", "user:1:x", "users:count:x", "profile", "order:1", ""}) {
    CAPTURE(miss);
    CHECK(registry.find(miss) == nullptr);
  }

  // The loaders' queries run on the registry's backend.
  LoadedValue v = load(loop, l, "user:1");
  CHECK(v.kind == LoadedValue::Kind::kValue);
  CHECK(v.value == "ada");
  v = load(loop, registry.find("user:grace"), "user:grace");
  CHECK(v.kind == LoadedValue::Kind::kAbsent);  // a NULL email
  v = load(loop, registry.find("profile:1"), "profile:1");
  CHECK(v.kind == LoadedValue::Kind::kValue);
  CHECK(v.fields == std::vector<std::pair<std::string, std::string>>{
                        {"id", "1"}, {"name", "ada"}, {"email", "ada@example.com"}});
  v = load(loop, registry.find("user:42"), "user:42");
  CHECK(v.kind == LoadedValue::Kind::kAbsent);
  v = load(loop, registry.find("users:count"), "users:count");
  CHECK(v.value == "2");
  closeRegistry(loop, registry);
  // The loaders live on with the registry after close.
  CHECK(registry.loaders().size() == 4);
  CHECK(registry.backends().empty());
}

TEST_CASE("cache registry: the other config order gives the other loader") {
  TempDb db;
  Loop loop;
  Config config;
  config.backends.push_back(backend("main", db.path()));
  config.loaders.push_back(
      loader("by_name", "user:{name}", "SELECT email FROM users WHERE name = :name"));
  config.loaders.push_back(
      loader("by_id", "user:{id:int}", "SELECT name FROM users WHERE id = :id"));
  CacheRegistry registry;
  std::string error;
  REQUIRE_MESSAGE(registry.open(loop.get(), config, &error), error);
  REQUIRE(registry.find("user:1") != nullptr);
  CHECK(registry.find("user:1")->name() == "by_name");
  CHECK(registry.find("user:ada")->name() == "by_name");
  closeRegistry(loop, registry);
}

TEST_CASE("cache registry: a query that does not prepare names the loader") {
  TempDb db;
  Loop loop;
  Config config;
  config.backends.push_back(backend("main", db.path()));
  config.loaders.push_back(loader("ok", "user:{id}", "SELECT name FROM users WHERE id = :id"));
  struct Case {
    std::string query;
    std::string why;
  };
  for (const Case& c : {
           Case{"SELECT name FROM nope WHERE id = :id", "no such table: nope"},
           Case{"SELECT nope FROM users WHERE id = :id", "no such column: nope"},
           Case{"SELEC name FROM users", "near \"SELEC\": syntax error"},
           Case{"SELECT 1; SELECT 2", "only one SQL statement is allowed"},
           Case{"", "empty SQL statement"},
           Case{"SELECT name FROM users WHERE id = ?",
                "positional parameter ? is not supported; use a named one (:name)"},
       }) {
    CAPTURE(c.query);
    Config bad = config;
    bad.loaders.push_back(loader("bad", "order:{id}", c.query));
    CHECK(openError(loop, bad) ==
          "test.toml:9:1: loader 'bad': the query does not prepare: " + c.why);
  }
}

TEST_CASE("cache registry: a parameter the key template does not capture") {
  TempDb db;
  Loop loop;
  Config config;
  config.backends.push_back(backend("main", db.path()));
  struct Case {
    std::string key;
    std::string query;
    std::string param;
  };
  for (const Case& c : {
           Case{"user:{id}", "SELECT name FROM users WHERE id = :uid", ":uid"},
           Case{"user:{id}", "SELECT name FROM users WHERE id = :id AND name = @name", "@name"},
           Case{"users:all", "SELECT name FROM users WHERE id = $id", "$id"},
           // Names are case-sensitive.
           Case{"user:{Id}", "SELECT name FROM users WHERE id = :id", ":id"},
       }) {
    CAPTURE(c.query);
    Config bad = config;
    bad.loaders.push_back(loader("u", c.key, c.query));
    CHECK(openError(loop, bad) == "test.toml:9:1: loader 'u': the query's parameter " + c.param +
                                      " is not captured by the key template '" + c.key + "'");
  }
  // The other way round is fine: a capture the query does not use.
  Config ok = config;
  ok.loaders.push_back(
      loader("u", "t:{tenant}:user:{id}", "SELECT name FROM users WHERE id = :id"));
  CacheRegistry registry;
  std::string error;
  REQUIRE_MESSAGE(registry.open(loop.get(), ok, &error), error);
  LoadedValue v = load(loop, registry.find("t:acme:user:2"), "t:acme:user:2");
  CHECK(v.value == "grace");
  closeRegistry(loop, registry);
}

TEST_CASE("cache registry: an unknown backend or a bad key template") {
  TempDb db;
  Loop loop;
  Config config;
  config.backends.push_back(backend("main", db.path()));
  config.loaders.push_back(loader("u", "user:{id}", "SELECT 1", "replica"));
  CHECK(openError(loop, config) == "test.toml:9:1: loader 'u': unknown backend 'replica'");

  // No backends at all.
  Config none;
  none.loaders.push_back(loader("u", "user:{id}", "SELECT 1"));
  CHECK(openError(loop, none) == "test.toml:9:1: loader 'u': unknown backend 'main'");

  std::string why;
  {
    KeyTemplate t;
    CHECK_FALSE(KeyTemplate::parse("user:{id", &t, &why));
  }
  config.loaders = {loader("u", "user:{id", "SELECT 1")};
  CHECK(openError(loop, config) ==
        "test.toml:9:1: loader 'u': bad key template 'user:{id': " + why);
}

TEST_CASE("cache registry: a backend that cannot be opened closes the ones already open") {
  TempDb db;
  Loop loop;
  Config config;
  config.backends.push_back(backend("main", db.path()));
  std::string missing = (db.dir() / "missing.db").string();
  config.backends.push_back(backend("gone", missing));
  config.backends.back().where = "test.toml:4:1";
  CacheRegistry registry;
  std::string error;
  CHECK_FALSE(registry.open(loop.get(), config, &error));
  CHECK(error.rfind("test.toml:4:1: backend 'gone': cannot open " + missing + ": ", 0) == 0);
  CHECK(error.find("unable to open database file") != std::string::npos);
  CHECK(registry.backends().empty());
  drain(loop);                                    // "main" was opened, then closed again
  CHECK_FALSE(std::filesystem::exists(missing));  // never created
}

TEST_CASE("cache registry: a failure after some loaders still closes every backend") {
  TempDb db;
  Loop loop;
  Config config;
  config.backends.push_back(backend("main", db.path()));
  config.backends.push_back(backend("second", db.path()));
  config.loaders.push_back(loader("a", "a:{id}", "SELECT name FROM users WHERE id = :id"));
  config.loaders.push_back(loader("b", "b:{id}", "SELECT nope FROM users", "second"));
  CHECK(openError(loop, config) ==
        "test.toml:9:1: loader 'b': the query does not prepare: no such column: nope");
  CHECK(backends::SqliteBackend::liveCount() == 0);
}

TEST_CASE("cache registry: close calls done once, after every backend") {
  Loop loop;
  {
    // Nothing opened: done at once.
    CacheRegistry registry;
    int calls = 0;
    registry.close([&calls] { ++calls; });
    CHECK(calls == 1);
    registry.close();  // no callback: fine
  }
  TempDb db;
  Config config;
  for (const char* name : {"a", "b", "c"}) config.backends.push_back(backend(name, db.path()));
  CacheRegistry registry;
  std::string error;
  REQUIRE_MESSAGE(registry.open(loop.get(), config, &error), error);
  CHECK(registry.empty());  // backends but no loaders
  CHECK(backends::SqliteBackend::liveCount() == 3);
  int calls = 0;
  registry.close([&calls] { ++calls; });
  CHECK(calls == 0);  // never synchronously while backends are open
  REQUIRE(loop.runUntil([&] { return calls > 0; }));
  CHECK(backends::SqliteBackend::liveCount() == 0);
  loop.runUntil([] { return false; }, 20ms);
  CHECK(calls == 1);
}

TEST_CASE("cache registry: from a config file with a path relative to it") {
  TempDb db;
  Loop loop;
  std::string conf = (db.dir() / "readthru.toml").string();
  std::ofstream(conf) << R"([backends.main]
path = "app.db"

[[loaders]]
name = "user"
key = "user:{id:int}"
backend = "main"
query = "SELECT name FROM users WHERE id = :id"

[[loaders]]
name = "broken"
key = "broken:{id}"
backend = "main"
query = "SELECT name FROM users WHERE uid = :id"
)";
  Config config;
  std::string error;
  REQUIRE_MESSAGE(loadConfigFile(conf, &config, &error), error);
  // The file parses; the query is only checked against the database.
  CHECK(openError(loop, config) ==
        conf + ":10:1: loader 'broken': the query does not prepare: " + "no such column: uid");

  config.loaders.pop_back();
  CacheRegistry registry;
  REQUIRE_MESSAGE(registry.open(loop.get(), config, &error), error);
  LoadedValue v = load(loop, registry.find("user:2"), "user:2");
  CHECK(v.value == "grace");
  closeRegistry(loop, registry);
}

// Generations (registry_ref.h): what a reload relies on.

// One backend on `db`, one loader of users' names.
Config usersConfig(const TempDb& db) {
  Config config;
  config.backends.push_back(backend("main", db.path()));
  config.loaders.push_back(
      loader("user", "user:{id:int}", "SELECT name FROM users WHERE id = :id"));
  return config;
}

TEST_CASE("cache registry: prepared on another thread, started on the loop, it serves loads") {
  TempDb db;
  Loop loop;
  Config config = usersConfig(db);
  auto* registry = new CacheRegistry;
  RegistryRef ref(registry);
  bool prepared = false;
  std::string error;
  std::thread worker([&] { prepared = registry->prepare(config, &error); });
  worker.join();
  REQUIRE_MESSAGE(prepared, error);
  REQUIRE_MESSAGE(registry->start(loop.get(), &error), error);
  CHECK(load(loop, registry->find("user:1"), "user:1").value == "ada");
  ref.reset();  // the last ref: the registry closes its backends and frees itself
  REQUIRE(loop.runUntil([] { return CacheRegistry::liveCount() == 0; }));
  CHECK(backends::SqliteBackend::liveCount() == 0);
}

TEST_CASE("cache registry: a failed prepare leaves nothing open, and its ref frees it at once") {
  Loop loop;
  Config config;
  config.backends.push_back(backend("main", "/nonexistent/dir/app.db"));
  auto* registry = new CacheRegistry;
  RegistryRef ref(registry);
  std::string error;
  CHECK_FALSE(registry->prepare(config, &error));
  CHECK(error.find("backend 'main'") != std::string::npos);
  CHECK(backends::SqliteBackend::liveCount() == 0);
  ref.reset();
  CHECK(CacheRegistry::liveCount() == 0);
}

TEST_CASE("cache registry: a replaced generation lives until its last load is done") {
  TempDb db;
  Loop loop;
  Config config = usersConfig(db);
  std::string error;
  RegistryRef current(new CacheRegistry);
  REQUIRE_MESSAGE(current->open(loop.get(), config, &error), error);

  // A load in flight holds the generation, as a Flight does.
  Loader* old_loader = current->find("user:2");
  REQUIRE(old_loader != nullptr);
  RegistryRef held = current;
  CHECK(current->refs() == 2);
  std::string loaded;
  bool done = false;
  REQUIRE(old_loader->backend()->query(old_loader->query("user:2"),
                                       [&, held](backends::SqlResult&& r) mutable {
                                         loaded = old_loader->decode(std::move(r)).value;
                                         ++old_loader->stats().loads;
                                         held.reset();  // the flight is done
                                         done = true;
                                       }));
  held.reset();

  // The reload: a new generation becomes current; it takes over the counters by name.
  RegistryRef next(new CacheRegistry);
  REQUIRE_MESSAGE(next->open(loop.get(), config, &error), error);
  next->adoptStats(*current);
  current = next;
  next.reset();
  CHECK(CacheRegistry::liveCount() == 2);  // the old one still has a load in flight

  REQUIRE(loop.runUntil([&] { return done; }));
  CHECK(loaded == "grace");
  REQUIRE(loop.runUntil([] { return CacheRegistry::liveCount() == 1; }));
  // Counted by the old loader, seen through the new one.
  CHECK(current->find("user:2")->stats().loads == 1);
  CHECK(load(loop, current->find("user:1"), "user:1").value == "ada");
  current.reset();
  REQUIRE(loop.runUntil([] { return CacheRegistry::liveCount() == 0; }));
  CHECK(backends::SqliteBackend::liveCount() == 0);
}

TEST_CASE("cache registry: closeAll closes the registries in use, not one being prepared") {
  TempDb db;
  Loop loop;
  Config config;
  config.backends.push_back(backend("main", db.path()));
  std::string error;
  RegistryRef in_use(new CacheRegistry);
  REQUIRE_MESSAGE(in_use->open(loop.get(), config, &error), error);
  auto* preparing = new CacheRegistry;  // a reload's, not yet handed to anyone
  CacheRegistry::closeAll();
  CHECK(in_use->backends().empty());
  REQUIRE(loop.runUntil([] { return backends::SqliteBackend::liveCount() == 0; }));
  REQUIRE_MESSAGE(preparing->prepare(config, &error), error);
  RegistryRef(preparing).reset();
  in_use.reset();
  REQUIRE(loop.runUntil([] { return CacheRegistry::liveCount() == 0; }));
}

}  // namespace
}  // namespace readthru
