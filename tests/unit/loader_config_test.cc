// The read-through parts of the config file: [backends.<name>], [[loaders]] and
// [limits] negative_cache_entries.
#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include <doctest/doctest.h>

#include "tests/unit/test_bad_config.h"
#include "tests/unit/test_temp_dir.h"

#include "proxy/config.h"
#include "proxy/key_template.h"

namespace readthru {
namespace {

using test::TempDir;

TEST_CASE("loader config: backends and loaders with every key") {
  TempDir dir;
  std::string path = dir.write("readthru.toml", R"([limits]
negative_cache_entries = 500

[backends.main]
kind = "sqlite"
path = "/var/lib/app/main.db"
workers = 8
queue = 64
cache_size = "64mb"
nice = -5

[backends.archive]
path = "archive.db"

[[loaders]]
name = "user"
key = "user:{id:int}"
backend = "main"
query = "SELECT name FROM users WHERE id = :id"
type = "string"
ttl = "10m"
jitter = "30s"
negative_ttl = "5s"
timeout = "750ms"

[[loaders]]
name = "profile"
key = "profile:{id}"
backend = "archive"
query = "SELECT * FROM profiles WHERE id = :id"
type = "hash"
ttl = 0
negative_ttl = 0
timeout = 3

[[loaders]]
name = "order"
key = "order:{region}:{id:int}"
backend = "main"
query = "SELECT * FROM orders WHERE region = :region AND id = :id"
type = "json"
)");
  Config c;
  std::string error;
  REQUIRE_MESSAGE(loadConfigFile(path, &c, &error), error);
  CHECK(c.negative_cache_entries == 500);

  // Tables are kept in name order (toml++ sorts a table's keys).
  REQUIRE(c.backends.size() == 2);
  const BackendConfig& archive = c.backends[0];
  const BackendConfig& main = c.backends[1];
  CHECK(archive.name == "archive");
  CHECK(archive.kind == "sqlite");
  CHECK(archive.path == (dir.path() / "archive.db").string());
  CHECK(archive.workers == 2);
  CHECK(archive.queue == 1024);
  CHECK(archive.cache_size == 0);
  CHECK(archive.nice == 0);
  CHECK(archive.where == path + ":12:1");
  CHECK(main.name == "main");
  CHECK(main.kind == "sqlite");
  CHECK(main.path == "/var/lib/app/main.db");
  CHECK(main.workers == 8);
  CHECK(main.queue == 64);
  CHECK(main.cache_size == 64ull * 1024 * 1024);
  CHECK(main.nice == -5);
  CHECK(main.where == path + ":4:1");

  // Loaders keep the file's order.
  REQUIRE(c.loaders.size() == 3);
  const LoaderConfig& user = c.loaders[0];
  CHECK(user.name == "user");
  CHECK(user.where == path + ":15:1");
  CHECK(user.key == "user:{id:int}");
  CHECK(user.backend == "main");
  CHECK(user.query == "SELECT name FROM users WHERE id = :id");
  CHECK(user.type == LoaderType::kString);
  CHECK(user.ttl_ms == 600000);
  CHECK(user.jitter_ms == 30000);
  CHECK(user.negative_ttl_ms == 5000);
  CHECK(user.timeout_ms == 750);

  const LoaderConfig& profile = c.loaders[1];
  CHECK(profile.name == "profile");
  CHECK(profile.where == path + ":26:1");
  CHECK(profile.backend == "archive");
  CHECK(profile.type == LoaderType::kHash);
  CHECK(profile.ttl_ms == 0);  // no expiry
  CHECK(profile.jitter_ms == 0);
  CHECK(profile.negative_ttl_ms == 0);  // absent rows are not remembered
  CHECK(profile.timeout_ms == 3000);    // a bare integer is seconds

  const LoaderConfig& order = c.loaders[2];
  CHECK(order.name == "order");
  CHECK(order.type == LoaderType::kJson);
}

TEST_CASE("loader config: defaults of a backend, a loader and the negative cache") {
  TempDir dir;
  std::string path = dir.write("readthru.toml", R"([backends.db]
path = "db.sqlite"

[[loaders]]
name = "n"
key = "k:{id}"
backend = "db"
query = "SELECT v FROM t WHERE id = :id"
)");
  Config c;
  std::string error;
  REQUIRE_MESSAGE(loadConfigFile(path, &c, &error), error);
  const BackendConfig defaults_b;
  const LoaderConfig defaults_l;
  REQUIRE(c.backends.size() == 1);
  CHECK(c.backends[0].kind == "sqlite");
  CHECK(c.backends[0].workers == defaults_b.workers);
  CHECK(c.backends[0].queue == defaults_b.queue);
  REQUIRE(c.loaders.size() == 1);
  const LoaderConfig& l = c.loaders[0];
  CHECK(l.type == LoaderType::kString);
  CHECK(l.ttl_ms == 3600 * 1000);
  CHECK(l.ttl_ms == defaults_l.ttl_ms);
  CHECK(l.jitter_ms == 0);
  CHECK(l.negative_ttl_ms == 30 * 1000);
  CHECK(l.timeout_ms == 2000);
  CHECK(c.negative_cache_entries == 100000);

  // No [backends] and no [[loaders]] at all: read-through is off, nothing else changes.
  Config empty;
  REQUIRE(loadConfigFile(dir.write("empty.toml", "listen = \"127.0.0.1:7000\"\n"), &empty, &error));
  CHECK(empty.backends.empty());
  CHECK(empty.loaders.empty());
}

TEST_CASE("loader config: a relative backend path resolves against the config file") {
  TempDir dir;
  struct Case {
    std::string written;
    std::string resolved;
  };
  std::string conf_dir = (dir.path() / "conf").string();
  for (const Case& c :
       {Case{"data.db", conf_dir + "/data.db"}, Case{"./data.db", conf_dir + "/data.db"},
        Case{"../var/data.db", dir.path().string() + "/var/data.db"},
        Case{"sub/./x/../data.db", conf_dir + "/sub/data.db"}, Case{"/abs/data.db", "/abs/data.db"},
        Case{"/abs/../abs//data.db", "/abs/data.db"}}) {
    CAPTURE(c.written);
    std::string path =
        dir.write("conf/readthru.toml", "[backends.b]\npath = \"" + c.written + "\"\n");
    Config config;
    std::string error;
    REQUIRE_MESSAGE(loadConfigFile(path, &config, &error), error);
    REQUIRE(config.backends.size() == 1);
    CHECK(config.backends[0].path == c.resolved);
  }
}

TEST_CASE("loader config: [limits] negative_cache_entries") {
  TempDir dir;
  for (auto [text, n] :
       {std::pair<std::string_view, size_t>{"0", 0}, {"1", 1}, {"100000000", 100000000}}) {
    CAPTURE(text);
    Config c;
    std::string error;
    REQUIRE_MESSAGE(
        loadConfigFile(
            dir.write("n.toml", "[limits]\nnegative_cache_entries = " + std::string(text) + "\n"),
            &c, &error),
        error);
    CHECK(c.negative_cache_entries == n);
  }
  for (std::string_view bad : {"-1", "100000001"}) {
    CAPTURE(bad);
    Config c;
    std::string error;
    std::string path =
        dir.write("n.toml", "[limits]\nnegative_cache_entries = " + std::string(bad) + "\n");
    CHECK_FALSE(loadConfigFile(path, &c, &error));
    CHECK(error == path + ":2:26: 'limits.negative_cache_entries' must be between 0 and 100000000");
  }
  Config c;
  std::string error;
  std::string path = dir.write("n.toml", "[limits]\nnegative_cache_entries = \"10\"\n");
  CHECK_FALSE(loadConfigFile(path, &c, &error));
  CHECK(error == path + ":2:26: 'limits.negative_cache_entries' must be an integer");
}

// A backend the loaders in the cases below can name.
constexpr std::string_view kBackend = "[backends.main]\npath = \"main.db\"\n";

TEST_CASE("loader config: bad backends are refused with file:line:column and the backend") {
  const test::BadConfig cases[] = {
      {"[backends.main]\nkind = \"postgres\"\npath = \"x.db\"\n",
       "2:8: backend 'main': 'kind' must be \"sqlite\" (the only kind so far)"},
      {"[backends.main]\nkind = 1\npath = \"x.db\"\n",
       "2:8: backend 'main': 'kind' must be \"sqlite\" (the only kind so far)"},
      {"[backends.main]\nworkers = 2\n",
       "1:1: backend 'main': 'path' is required: the database file"},
      {"[backends.main]\npath = \"\"\n",
       "1:1: backend 'main': 'path' is required: the database file"},
      {"[backends.main]\npath = 5\n", "2:8: backend 'main': 'path' must be a string"},
      {"[backends.main]\npath = \"x.db\"\nworkers = 0\n",
       "3:11: backend 'main': 'workers' must be between 1 and 64"},
      {"[backends.main]\npath = \"x.db\"\nworkers = 65\n",
       "3:11: backend 'main': 'workers' must be between 1 and 64"},
      {"[backends.main]\npath = \"x.db\"\nworkers = \"2\"\n",
       "3:11: backend 'main': 'workers' must be an integer"},
      {"[backends.main]\npath = \"x.db\"\nqueue = 0\n",
       "3:9: backend 'main': 'queue' must be between 1 and 1000000"},
      {"[backends.main]\npath = \"x.db\"\nnice = -21\n",
       "3:8: backend 'main': 'nice' must be between -20 and 19"},
      {"[backends.main]\npath = \"x.db\"\ncache_size = \"lots\"\n",
       "3:14: backend 'main': 'cache_size' must be a size such as \"64kb\", \"512mb\", \"1gb\""},
      {"[backends.main]\npath = \"x.db\"\nhost = \"db.internal\"\n",
       "3:1: backend 'main': unknown key 'host'"},
      {"backends = 5\n", "1:1: 'backends' must hold tables, e.g. [backends.main]"},
      {"[backends]\nmain = \"x.db\"\n",
       "2:1: backend 'main': must be a table, e.g. [backends.main]"},
      // The second backend is named in its errors, not the first.
      {"[backends.a]\npath = \"a.db\"\n[backends.b]\nqueue = 0\npath = \"b.db\"\n",
       "4:9: backend 'b': 'queue' must be between 1 and 1000000"},
  };
  test::checkRefused(cases);
}

TEST_CASE("loader config: bad loaders are refused with file:line:column and the loader") {
  std::string bad_template_why;
  {
    KeyTemplate t;
    CHECK_FALSE(KeyTemplate::parse("user:{id", &t, &bad_template_why));
    REQUIRE_FALSE(bad_template_why.empty());
  }
  // The backend comes after the loaders (allowed), so each case's [[loaders]] starts on line 1.
  const std::string ok_keys = "key = \"u:{id}\"\nbackend = \"main\"\nquery = \"SELECT 1\"\n";
  const test::BadConfig cases[] = {
      {"[loaders]\nname = \"u\"\n",
       "1:2: 'loaders' must be an array of tables: write each as [[loaders]]"},
      {"loaders = 5\n", "1:1: 'loaders' must be an array of tables: write each as [[loaders]]"},
      {"[[loaders]]\n" + ok_keys, "1:1: loader without 'name'"},
      {"[[loaders]]\nname = \"\"\n" + ok_keys, "2:8: 'name' must not be empty"},
      {"[[loaders]]\nname = 7\n" + ok_keys, "2:8: 'name' must be a string"},
      {"[[loaders]]\nname = \"u\"\nbackend = \"main\"\nquery = \"SELECT 1\"\n",
       "1:1: loader 'u': 'key' is required"},
      {"[[loaders]]\nname = \"u\"\nkey = \"u:{id}\"\nquery = \"SELECT 1\"\n",
       "1:1: loader 'u': 'backend' is required"},
      {"[[loaders]]\nname = \"u\"\nkey = \"u:{id}\"\nbackend = \"main\"\n",
       "1:1: loader 'u': 'query' is required"},
      {"[[loaders]]\nname = \"u\"\n" + ok_keys + "type = \"list\"\n",
       "6:8: loader 'u': 'type' must be \"string\", \"json\" or \"hash\""},
      {"[[loaders]]\nname = \"u\"\n" + ok_keys + "type = 1\n",
       "6:8: loader 'u': 'type' must be \"string\", \"json\" or \"hash\""},
      {"[[loaders]]\nname = \"u\"\n" + ok_keys + "ttl = \"forever\"\n",
       "6:7: loader 'u': 'ttl' must be a duration such as \"250ms\", \"30s\", \"5m\", \"1h\""},
      {"[[loaders]]\nname = \"u\"\n" + ok_keys + "negative_ttl = -1\n",
       "6:16: loader 'u': 'negative_ttl' must not be negative"},
      {"[[loaders]]\nname = \"u\"\n" + ok_keys + "ttl_ms = 5\n",
       "6:1: loader 'u': unknown key 'ttl_ms'"},
      {"[[loaders]]\nname = \"u\"\nkey = 5\nbackend = \"main\"\nquery = \"SELECT 1\"\n",
       "3:7: loader 'u': 'key' must be a string"},
      {"[[loaders]]\nname = \"u\"\nkey = \"user:{id\"\nbackend = \"main\"\nquery = \"SELECT 1\"\n",
       "3:7: loader 'u': bad key template 'user:{id': " + bad_template_why},
      {"[[loaders]]\nname = \"u\"\n" + ok_keys + "ttl = \"0s\"\njitter = \"1s\"\n",
       "7:10: loader 'u': 'jitter' needs a 'ttl' (ttl = \"0s\" means no expiry)"},
      {"[[loaders]]\nname = \"u\"\n" + ok_keys + "ttl = \"10s\"\njitter = \"10s\"\n",
       "7:10: loader 'u': 'jitter' must be less than 'ttl'"},
      {"[[loaders]]\nname = \"u\"\n" + ok_keys + "timeout = \"0ms\"\n",
       "6:11: loader 'u': 'timeout' must be more than 0"},
      // Checked once every table is read: references and uniqueness.
      {"[[loaders]]\nname = \"u\"\nkey = \"u:{id}\"\nbackend = \"other\"\nquery = \"SELECT 1\"\n",
       "1:1: loader 'u': unknown backend 'other' (define it as [backends.other])"},
      {"[[loaders]]\nname = \"u\"\n" + ok_keys + "[[loaders]]\nname = \"u\"\n" +
           "key = \"v:{id}\"\nbackend = \"main\"\nquery = \"SELECT 1\"\n",
       "6:1: loader 'u': the name is used by another loader"},
      {"[[loaders]]\nname = \"u\"\n" + ok_keys + "[[loaders]]\nname = \"v\"\n" + ok_keys,
       "6:1: loader 'v': another loader has the key template 'u:{id}'"},
  };
  test::checkRefused(cases, kBackend);
}

TEST_CASE("loader config: a loader may come before the backend it names") {
  TempDir dir;
  std::string path = dir.write("readthru.toml", R"([[loaders]]
name = "u"
key = "u:{id}"
backend = "late"
query = "SELECT 1"

[backends.late]
path = "late.db"
)");
  Config c;
  std::string error;
  REQUIRE_MESSAGE(loadConfigFile(path, &c, &error), error);
  REQUIRE(c.loaders.size() == 1);
  CHECK(c.loaders[0].backend == "late");
}

// The string form of a duration is refused when it overflows 64 bits ("config: durations and
// sizes that overflow 64 bits"); a bare integer of seconds is multiplied by 1000 unchecked.
// 18446744073709552 s is 18446744073709552000 ms, 384 ms more than 2^64: it must be refused, not
// stored as a TTL of 384 ms.
TEST_CASE("loader config: an integer duration that overflows 64 bits is refused") {
  TempDir dir;
  std::string path = dir.write("readthru.toml", std::string(kBackend) + R"([[loaders]]
name = "u"
key = "u:{id}"
backend = "main"
query = "SELECT 1"
ttl = 18446744073709552
)");
  Config c;
  std::string error;
  CHECK_FALSE(loadConfigFile(path, &c, &error));
  CHECK(error.find("loader 'u': 'ttl'") != std::string::npos);
  if (!c.loaders.empty()) CHECK(c.loaders[0].ttl_ms != 384);
}

}  // namespace
}  // namespace readthru
