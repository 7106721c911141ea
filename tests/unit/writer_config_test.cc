// The [[writers]] tables of the config file.
#include <stdlib.h>

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

// A backend the writers in the cases below can name.
constexpr std::string_view kBackend = "[backends.main]\npath = \"main.db\"\n";

TEST_CASE("writer config: every key of a writer") {
  TempDir dir;
  std::string path = dir.write("readthru.toml", std::string(kBackend) + R"toml(
[backends.audit]
path = "audit.db"

[[writers]]
name = "user"
key = "user:{id:int}"
backend = "main"
mode = "behind"
upsert = "INSERT INTO users (id, name) VALUES (:id, :name) ON CONFLICT(id) DO UPDATE SET name = excluded.name"
delete = "DELETE FROM users WHERE id = :id"
timeout = "2s"
flush_interval = "100ms"
batch = 50
max_attempts = 3

[[writers]]
name = "audit"
key = "audit:{id}"
backend = "audit"
mode = "through"
upsert = "INSERT INTO audit VALUES (:id, :value)"
delete = "DELETE FROM audit WHERE id = :id"
timeout = 7
flush_interval = "1m"
batch = 100000
max_attempts = 1000000
)toml");
  Config c;
  std::string error;
  REQUIRE_MESSAGE(loadConfigFile(path, &c, &error), error);
  REQUIRE(c.writers.size() == 2);
  const WriterConfig& user = c.writers[0];
  CHECK(user.name == "user");
  CHECK(user.where == path + ":7:1");
  CHECK(user.key == "user:{id:int}");
  CHECK(user.backend == "main");
  CHECK(user.mode == WriteMode::kBehind);
  CHECK(user.upsert ==
        "INSERT INTO users (id, name) VALUES (:id, :name) ON CONFLICT(id) DO UPDATE SET name = "
        "excluded.name");
  CHECK(user.del == "DELETE FROM users WHERE id = :id");
  CHECK(user.timeout_ms == 2000);
  CHECK(user.flush_interval_ms == 100);
  CHECK(user.batch == 50);
  CHECK(user.max_attempts == 3);

  const WriterConfig& audit = c.writers[1];
  CHECK(audit.name == "audit");
  CHECK(audit.where == path + ":19:1");
  CHECK(audit.backend == "audit");
  CHECK(audit.mode == WriteMode::kThrough);
  CHECK(audit.timeout_ms == 7000);  // a bare integer is seconds
  CHECK(audit.flush_interval_ms == 60000);
  CHECK(audit.batch == 100000);
  CHECK(audit.max_attempts == 1000000);
  CHECK(c.loaders.empty());
}

TEST_CASE("writer config: defaults") {
  TempDir dir;
  std::string path = dir.write("readthru.toml", std::string(kBackend) + R"toml(
[[writers]]
name = "w"
key = "k:{id}"
backend = "main"
upsert = "U"
delete = "D"
)toml");
  Config c;
  std::string error;
  REQUIRE_MESSAGE(loadConfigFile(path, &c, &error), error);
  REQUIRE(c.writers.size() == 1);
  const WriterConfig& w = c.writers[0];
  CHECK(w.mode == WriteMode::kThrough);
  CHECK(w.timeout_ms == 5000);
  CHECK(w.flush_interval_ms == 500);
  CHECK(w.batch == 500);
  CHECK(w.max_attempts == 10);
  // The struct's defaults are the file's.
  const WriterConfig defaults;
  CHECK(defaults.mode == w.mode);
  CHECK(defaults.timeout_ms == w.timeout_ms);
  CHECK(defaults.flush_interval_ms == w.flush_interval_ms);
  CHECK(defaults.batch == w.batch);
  CHECK(defaults.max_attempts == w.max_attempts);

  // No [[writers]]: none.
  Config empty;
  REQUIRE(loadConfigFile(dir.write("empty.toml", kBackend), &empty, &error));
  CHECK(empty.writers.empty());
}

TEST_CASE("writer config: writers and loaders are apart; a writer may come before its backend") {
  TempDir dir;
  std::string path = dir.write("readthru.toml", R"toml([[writers]]
name = "user"
key = "user:{id}"
backend = "late"
upsert = "U"
delete = "D"

[[loaders]]
name = "user"
key = "user:{id}"
backend = "late"
query = "SELECT 1"

[backends.late]
path = "late.db"
)toml");
  Config c;
  std::string error;
  REQUIRE_MESSAGE(loadConfigFile(path, &c, &error), error);
  REQUIRE(c.writers.size() == 1);
  REQUIRE(c.loaders.size() == 1);
  CHECK(c.writers[0].backend == "late");
  CHECK(c.writers[0].key == c.loaders[0].key);
  // Empty statements parse: they are checked against the database when the registry opens.
  path = dir.write("empty.toml", std::string(kBackend) +
                                     "[[writers]]\nname = \"w\"\nkey = \"k\"\nbackend = \"main\"\n"
                                     "upsert = \"\"\ndelete = \"\"\n");
  Config e;
  REQUIRE_MESSAGE(loadConfigFile(path, &e, &error), error);
  REQUIRE(e.writers.size() == 1);
  CHECK(e.writers[0].upsert.empty());
  CHECK(e.writers[0].del.empty());
}

TEST_CASE("writer config: bad writers are refused with file:line:column and the writer") {
  std::string bad_template_why;
  {
    KeyTemplate t;
    CHECK_FALSE(KeyTemplate::parse("user:{id", &t, &bad_template_why));
    REQUIRE_FALSE(bad_template_why.empty());
  }
  // The backend comes after the writers (allowed), so each case's [[writers]] starts on line 1;
  // a key after `ok` is on line 7.
  const std::string key = "key = \"u:{id}\"\n";
  const std::string backend = "backend = \"main\"\n";
  const std::string upsert = "upsert = \"U\"\n";
  const std::string del = "delete = \"D\"\n";
  const std::string ok = "[[writers]]\nname = \"u\"\n" + key + backend + upsert + del;
  const std::string duration_why = "must be a duration such as \"250ms\", \"30s\", \"5m\", \"1h\"";
  const test::BadConfig cases[] = {
      {"[writers]\nname = \"u\"\n",
       "1:2: 'writers' must be an array of tables: write each as [[writers]]"},
      {"writers = 5\n", "1:1: 'writers' must be an array of tables: write each as [[writers]]"},
      {"writers = [1, 2]\n",
       "1:1: 'writers' must be an array of tables: write each as [[writers]]"},
      {"[[writers]]\n" + key + backend + upsert + del, "1:1: writer without 'name'"},
      {"[[writers]]\nname = \"\"\n" + key + backend + upsert + del,
       "2:8: 'name' must not be empty"},
      {"[[writers]]\nname = 7\n" + key + backend + upsert + del, "2:8: 'name' must be a string"},
      // Required keys.
      {"[[writers]]\nname = \"u\"\n" + backend + upsert + del,
       "1:1: writer 'u': 'key' is required"},
      {"[[writers]]\nname = \"u\"\n" + key + upsert + del,
       "1:1: writer 'u': 'backend' is required"},
      {"[[writers]]\nname = \"u\"\n" + key + backend + del,
       "1:1: writer 'u': 'upsert' is required"},
      {"[[writers]]\nname = \"u\"\n" + key + backend + upsert,
       "1:1: writer 'u': 'delete' is required"},
      {"[[writers]]\nname = \"u\"\n", "1:1: writer 'u': 'key' is required"},
      // Values of the wrong kind.
      {ok + "mode = \"sideways\"\n", "7:8: writer 'u': 'mode' must be \"through\" or \"behind\""},
      {ok + "mode = \"Behind\"\n", "7:8: writer 'u': 'mode' must be \"through\" or \"behind\""},
      {ok + "mode = \"\"\n", "7:8: writer 'u': 'mode' must be \"through\" or \"behind\""},
      {ok + "mode = 1\n", "7:8: writer 'u': 'mode' must be \"through\" or \"behind\""},
      {ok + "mode = true\n", "7:8: writer 'u': 'mode' must be \"through\" or \"behind\""},
      {"[[writers]]\nname = \"u\"\nkey = 5\n" + backend + upsert + del,
       "3:7: writer 'u': 'key' must be a string"},
      {"[[writers]]\nname = \"u\"\n" + key + "backend = [\"main\"]\n" + upsert + del,
       "4:11: writer 'u': 'backend' must be a string"},
      {"[[writers]]\nname = \"u\"\n" + key + backend + "upsert = 1\n" + del,
       "5:10: writer 'u': 'upsert' must be a string"},
      {"[[writers]]\nname = \"u\"\n" + key + backend + upsert + "delete = false\n",
       "6:10: writer 'u': 'delete' must be a string"},
      {"[[writers]]\nname = \"u\"\nkey = \"user:{id\"\n" + backend + upsert + del,
       "3:7: writer 'u': bad key template 'user:{id': " + bad_template_why},
      {ok + "timeout = \"soon\"\n", "7:11: writer 'u': 'timeout' " + duration_why},
      {ok + "timeout = -1\n", "7:11: writer 'u': 'timeout' must not be negative"},
      {ok + "flush_interval = \"1x\"\n", "7:18: writer 'u': 'flush_interval' " + duration_why},
      {ok + "timeout = \"0ms\"\n", "7:11: writer 'u': 'timeout' must be more than 0"},
      {ok + "timeout = 0\n", "7:11: writer 'u': 'timeout' must be more than 0"},
      {ok + "flush_interval = \"0s\"\n", "7:18: writer 'u': 'flush_interval' must be more than 0"},
      {ok + "flush_interval = 0\n", "7:18: writer 'u': 'flush_interval' must be more than 0"},
      {ok + "batch = 0\n", "7:9: writer 'u': 'batch' must be between 1 and 100000"},
      {ok + "batch = 100001\n", "7:9: writer 'u': 'batch' must be between 1 and 100000"},
      {ok + "batch = \"5\"\n", "7:9: writer 'u': 'batch' must be an integer"},
      {ok + "max_attempts = 0\n", "7:16: writer 'u': 'max_attempts' must be between 1 and 1000000"},
      {ok + "max_attempts = 1000001\n",
       "7:16: writer 'u': 'max_attempts' must be between 1 and 1000000"},
      {ok + "max_attempts = 1.5\n", "7:16: writer 'u': 'max_attempts' must be an integer"},
      {ok + "query = \"SELECT 1\"\n", "7:1: writer 'u': unknown key 'query'"},
      {ok + "ttl = \"1s\"\n", "7:1: writer 'u': unknown key 'ttl'"},
      // Checked once every table is read: references and uniqueness.
      {"[[writers]]\nname = \"u\"\n" + key + "backend = \"other\"\n" + upsert + del,
       "1:1: writer 'u': unknown backend 'other' (define it as [backends.other])"},
      {ok + "[[writers]]\nname = \"u\"\nkey = \"v:{id}\"\n" + backend + upsert + del,
       "7:1: writer 'u': the name is used by another writer"},
      {ok + "[[writers]]\nname = \"v\"\n" + key + backend + upsert + del,
       "7:1: writer 'v': another writer has the key template 'u:{id}'"},
      // The second writer is named in its errors, not the first.
      {ok + "[[writers]]\nname = \"second\"\nkey = \"v:{id}\"\n" + backend + upsert + del +
           "batch = 0\n",
       "13:9: writer 'second': 'batch' must be between 1 and 100000"},
  };
  test::checkRefused(cases, kBackend);
}

TEST_CASE("writer config: loader errors come before writer errors, and name the loader") {
  TempDir dir;
  std::string text = std::string(kBackend) +
                     "[[writers]]\nname = \"w\"\nkey = \"k\"\nbackend = \"nope\"\nupsert = "
                     "\"U\"\ndelete = \"D\"\n"
                     "[[loaders]]\nname = \"l\"\nkey = \"k\"\nbackend = \"gone\"\nquery = \"Q\"\n";
  std::string path = dir.write("both.toml", text);
  Config c;
  std::string error;
  CHECK_FALSE(loadConfigFile(path, &c, &error));
  CHECK(error == path + ":9:1: loader 'l': unknown backend 'gone' (define it as [backends.gone])");
}

}  // namespace
}  // namespace readthru
