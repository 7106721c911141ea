// planWrite: what a write command means for the writers' keys; countWrites and applyHashChange.
// The writers come from a CacheRegistry opened on a real (tiny) database.
#include "proxy/write_plan.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <uv.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <doctest/doctest.h>

#include "proxy/cache_registry.h"
#include "resp/command_table.h"

namespace readthru {
namespace {

using Clock = std::chrono::steady_clock;
using Fields = std::vector<std::pair<std::string, std::string>>;
using namespace std::literals;

constexpr std::string_view kMixError =
    "ERR one command cannot write keys of both write-through and write-behind writers";
constexpr std::string_view kBackendsError =
    "ERR one command cannot write keys of writers on different backends";

std::string refusal(std::string_view writer, std::string_view command) {
  return "ERR writer '" + std::string(writer) + "' does not support " + std::string(command) +
         ": only SET, SETEX, PSETEX, MSET, HSET, HMSET, HDEL, DEL and UNLINK reach its database";
}

// Writers over two backends (two names for one file, so two read-write connections):
//   user     user:{id:int}     through  main
//   profile  profile:{id:int}  through  main
//   session  session:{sid}     behind   main
//   audit    audit:{id}        through  other
//   event    event:{id}        behind   other
// and a loader on "cached:{id}", which no writer owns.
class Writers {
 public:
  Writers() {
    std::string templ =
        (std::filesystem::temp_directory_path() / "readthru-writeplan-XXXXXX").string();
    REQUIRE(mkdtemp(templ.data()) != nullptr);
    dir_ = templ;
    std::string path = (dir_ / "app.db").string();
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                            nullptr) == SQLITE_OK);
    int rc = sqlite3_exec(db,
                          "CREATE TABLE kv (k TEXT PRIMARY KEY, v);"
                          "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, email TEXT);",
                          nullptr, nullptr, nullptr);
    sqlite3_close_v2(db);
    REQUIRE(rc == SQLITE_OK);

    REQUIRE(uv_loop_init(&loop_) == 0);
    for (const char* name : {"main", "other"}) {
      BackendConfig& b = config_.backends.emplace_back();
      b.name = name;
      b.where = "test.toml:1:1";
      b.path = path;
      b.workers = 1;
      b.queue = 16;
    }
    auto add = [this](const char* name, const char* key, WriteMode mode, const char* backend) {
      WriterConfig& w = config_.writers.emplace_back();
      w.name = name;
      w.where = "test.toml:5:1";
      w.key = key;
      w.backend = backend;
      w.mode = mode;
      w.upsert = "INSERT INTO kv VALUES (:k, :value)";
      w.del = "DELETE FROM kv WHERE k = :k";
    };
    add("user", "user:{k:int}", WriteMode::kThrough, "main");
    add("profile", "profile:{k:int}", WriteMode::kThrough, "main");
    add("session", "session:{k}", WriteMode::kBehind, "main");
    add("audit", "audit:{k}", WriteMode::kThrough, "other");
    add("event", "event:{k}", WriteMode::kBehind, "other");
    LoaderConfig& l = config_.loaders.emplace_back();
    l.name = "cached";
    l.where = "test.toml:9:1";
    l.key = "cached:{k}";
    l.backend = "main";
    l.query = "SELECT v FROM kv WHERE k = :k";
    std::string error;
    REQUIRE_MESSAGE(registry_.open(&loop_, config_, &error), error);
  }
  ~Writers() {
    bool closed = false;
    registry_.close([&closed] { closed = true; });
    auto deadline = Clock::now() + 10s;
    while (!closed && Clock::now() < deadline) uv_run(&loop_, UV_RUN_NOWAIT);
    CHECK(closed);
    uv_run(&loop_, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop_) == 0);
    CHECK(backends::SqliteBackend::liveCount() == 0);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  Writers(const Writers&) = delete;
  Writers& operator=(const Writers&) = delete;

  CacheRegistry* registry() { return &registry_; }
  Writer* writer(std::string_view name) {
    for (const auto& w : registry_.writers()) {
      if (w->name() == name) return w.get();
    }
    FAIL("no writer " << name);
    return nullptr;
  }

  // Plans `argv` (argv[0] names the command, looked up as the router does).
  WritePlan plan(std::initializer_list<std::string_view> args) {
    std::vector<std::string_view> argv(args);
    const resp::CommandInfo* info = resp::findCommand(argv[0]);
    REQUIRE_MESSAGE(info != nullptr, argv[0]);
    return planWrite(&registry_, argv, info);
  }

 private:
  std::filesystem::path dir_;
  uv_loop_t loop_;
  Config config_;
  CacheRegistry registry_;
};

std::string joined(std::initializer_list<std::string_view> args) {
  std::string out;
  for (std::string_view a : args) out += std::string(a) + " ";
  return out;
}

// A plan that does nothing: the command goes to Redis as it is.
void checkNone(const WritePlan& p) {
  CHECK(p.kind == WritePlan::Kind::kNone);
  CHECK(p.items.empty());
  CHECK(p.error.empty());
}

void checkRefused(const WritePlan& p, std::string_view error) {
  CHECK(p.kind == WritePlan::Kind::kRefuse);
  CHECK(p.error == error);
}

// A one-key string write.
void checkSet(const WritePlan& p, WritePlan::Kind kind, const Writer* w, std::string_view key,
              std::string_view value) {
  CHECK(p.kind == kind);
  CHECK(p.op == WritePlan::Op::kSet);
  CHECK(p.error.empty());
  REQUIRE(p.items.size() == 1);
  CHECK(p.items[0].writer == w);
  CHECK(p.items[0].key == key);
  CHECK(p.items[0].state.kind == WriteState::Kind::kString);
  CHECK(p.items[0].state.value == value);
  CHECK(p.items[0].state.fields.empty());
  CHECK(p.set_fields.empty());
  CHECK(p.del_fields.empty());
}

TEST_CASE("write plan: SET with every option combination Redis accepts") {
  Writers ws;
  Writer* user = ws.writer("user");
  struct Case {
    std::initializer_list<std::string_view> argv;
    bool nx, xx;
  };
  const Case cases[] = {
      {{"SET", "user:1", "v"}, false, false},
      {{"SET", "user:1", "v", "NX"}, true, false},
      {{"SET", "user:1", "v", "XX"}, false, true},
      {{"SET", "user:1", "v", "GET"}, false, false},
      {{"SET", "user:1", "v", "KEEPTTL"}, false, false},
      {{"SET", "user:1", "v", "EX", "10"}, false, false},
      {{"SET", "user:1", "v", "PX", "1"}, false, false},
      {{"SET", "user:1", "v", "EXAT", "1700000000"}, false, false},
      {{"SET", "user:1", "v", "PXAT", "1"}, false, false},
      {{"SET", "user:1", "v", "PXAT", "9223372036854775807"}, false, false},
      {{"SET", "user:1", "v", "NX", "GET"}, true, false},
      {{"SET", "user:1", "v", "GET", "XX"}, false, true},
      {{"SET", "user:1", "v", "NX", "EX", "5"}, true, false},
      {{"SET", "user:1", "v", "PX", "5", "XX", "GET"}, false, true},
      {{"SET", "user:1", "v", "GET", "KEEPTTL", "NX"}, true, false},
      {{"SET", "user:1", "v", "XX", "KEEPTTL"}, false, true},
      {{"SET", "user:1", "v", "EXAT", "1", "GET", "NX"}, true, false},
      // Options are case-insensitive; so is the command.
      {{"set", "user:1", "v", "nx", "Get", "pX", "99"}, true, false},
      {{"Set", "user:1", "v", "xX", "keepttl"}, false, true},
      {{"SET", "user:1", "v", "ex", "1", "get"}, false, false},
      {{"SET", "user:1", "v", "exat", "2"}, false, false},
      {{"SET", "user:1", "v", "pxat", "3"}, false, false},
  };
  for (const Case& c : cases) {
    CAPTURE(joined(c.argv));
    WritePlan p = ws.plan(c.argv);
    checkSet(p, WritePlan::Kind::kThrough, user, "user:1", "v");
    CHECK(p.nx == c.nx);
    CHECK(p.xx == c.xx);
  }
  // The value is taken as it is: empty, binary, option-like.
  const std::string binary = "\0\r\n\xff"s;
  checkSet(ws.plan({"SET", "user:2", ""}), WritePlan::Kind::kThrough, user, "user:2", "");
  checkSet(ws.plan({"SET", "user:2", binary}), WritePlan::Kind::kThrough, user, "user:2", binary);
  checkSet(ws.plan({"SET", "user:2", "NX", "XX"}), WritePlan::Kind::kThrough, user, "user:2", "NX");
  checkSet(ws.plan({"SET", "user:2", "EX"}), WritePlan::Kind::kThrough, user, "user:2", "EX");
  // A write-behind key.
  checkSet(ws.plan({"SET", "session:a b", "v", "EX", "60"}), WritePlan::Kind::kBehind,
           ws.writer("session"), "session:a b", "v");
  // Keys no writer owns: nothing to plan (a loader's key included).
  for (std::string_view key : {"plain", "user:01", "user:1:x", "user:", "cached:1", ""}) {
    CAPTURE(key);
    checkNone(ws.plan({"SET", key, "v"}));
  }
}

TEST_CASE("write plan: a malformed SET plans nothing") {
  Writers ws;
  const std::initializer_list<std::string_view> cases[] = {
      {"SET", "user:1"},
      {"SET"},
      {"SET", "user:1", "v", "NX", "XX"},
      {"SET", "user:1", "v", "XX", "NX"},
      {"SET", "user:1", "v", "EX"},
      {"SET", "user:1", "v", "PX"},
      {"SET", "user:1", "v", "EXAT"},
      {"SET", "user:1", "v", "PXAT"},
      {"SET", "user:1", "v", "EX", "0"},
      {"SET", "user:1", "v", "PX", "0"},
      {"SET", "user:1", "v", "EXAT", "0"},
      {"SET", "user:1", "v", "PXAT", "0"},
      {"SET", "user:1", "v", "EX", "-1"},
      {"SET", "user:1", "v", "EX", "abc"},
      {"SET", "user:1", "v", "EX", "1.5"},
      {"SET", "user:1", "v", "EX", "5x"},
      {"SET", "user:1", "v", "EX", ""},
      {"SET", "user:1", "v", "EX", " 5"},
      {"SET", "user:1", "v", "EX", "+5"},
      {"SET", "user:1", "v", "EX", "99999999999999999999"},
      {"SET", "user:1", "v", "EX", "5", "PX", "5"},
      {"SET", "user:1", "v", "PX", "5", "EXAT", "5"},
      {"SET", "user:1", "v", "EXAT", "5", "PXAT", "5"},
      {"SET", "user:1", "v", "KEEPTTL", "EX", "5"},
      {"SET", "user:1", "v", "EX", "5", "KEEPTTL"},
      {"SET", "user:1", "v", "BOGUS"},
      {"SET", "user:1", "v", "NX", "BOGUS"},
      {"SET", "user:1", "v", "EX", "5", "10"},
      {"SET", "user:1", "v", "NXX"},
      {"SET", "user:1", "v", ""},
      {"SET", "session:1", "v", "EX", "0"},  // write-behind keys alike
      {"SET", "session:1", "v", "NX", "XX"},
  };
  for (const auto& argv : cases) {
    CAPTURE(joined(argv));
    checkNone(ws.plan(argv));
  }
}

// Redis (7.0.15 here, and its source to date) accepts a SET option given twice: NX NX, XX XX,
// GET GET, KEEPTTL KEEPTTL, and the same expiry option twice (EX 5 EX 6: the last one counts).
// planWrite refuses them as malformed and plans nothing, so the command is forwarded as it is:
// Redis stores the value, and the writer's database never hears of it.
TEST_CASE("write plan: SET options Redis accepts twice are still planned") {
  Writers ws;
  Writer* user = ws.writer("user");
  const std::initializer_list<std::string_view> cases[] = {
      {"SET", "user:1", "v", "NX", "NX"},
      {"SET", "user:1", "v", "XX", "XX"},
      {"SET", "user:1", "v", "GET", "GET"},
      {"SET", "user:1", "v", "KEEPTTL", "KEEPTTL"},
      {"SET", "user:1", "v", "EX", "5", "EX", "6"},
      {"SET", "user:1", "v", "PX", "5000", "PX", "6000"},
  };
  for (const auto& argv : cases) {
    CAPTURE(joined(argv));
    WritePlan p = ws.plan(argv);
    CHECK(p.kind == WritePlan::Kind::kThrough);
    CHECK(p.items.size() == 1);
    if (p.items.size() == 1) CHECK(p.items[0].writer == user);
  }
}

// Redis refuses an expiry it does not read as a canonical integer ("010": "value is not an
// integer or out of range") and one that overflows once made absolute milliseconds (EX and EXAT
// above LLONG_MAX / 1000; PX near LLONG_MAX: "invalid expire time in 'set' command"); SETEX and
// PSETEX alike. planWrite plans them, so a write-through writer writes its database, and only
// then does Redis answer the error (the keys are DELeted, the database keeps the new value).
TEST_CASE("write plan: expiries Redis refuses plan nothing") {
  Writers ws;
  const std::initializer_list<std::string_view> cases[] = {
      {"SET", "user:1", "v", "EX", "010"},
      {"SET", "user:1", "v", "PX", "00100"},
      {"SET", "user:1", "v", "EX", "9223372036854775807"},
      {"SET", "user:1", "v", "EXAT", "9223372036854775807"},
      {"SET", "user:1", "v", "EX", "9223372036854776"},
      {"SET", "user:1", "v", "PX", "9223372036854775807"},
      {"SETEX", "user:1", "010", "v"},
      {"SETEX", "user:1", "9223372036854775807", "v"},
      {"PSETEX", "user:1", "9223372036854775807", "v"},
  };
  for (const auto& argv : cases) {
    CAPTURE(joined(argv));
    checkNone(ws.plan(argv));
  }
}

TEST_CASE("write plan: SETEX and PSETEX") {
  Writers ws;
  Writer* user = ws.writer("user");
  checkSet(ws.plan({"SETEX", "user:1", "10", "v"}), WritePlan::Kind::kThrough, user, "user:1", "v");
  checkSet(ws.plan({"psetex", "user:1", "1", ""}), WritePlan::Kind::kThrough, user, "user:1", "");
  checkSet(ws.plan({"SETEX", "session:x", "1", "v"}), WritePlan::Kind::kBehind,
           ws.writer("session"), "session:x", "v");
  WritePlan p = ws.plan({"SETEX", "user:1", "10", "v"});
  CHECK_FALSE(p.nx);
  CHECK_FALSE(p.xx);
  const std::initializer_list<std::string_view> bad[] = {
      {"SETEX", "user:1", "0", "v"},
      {"PSETEX", "user:1", "0", "v"},
      {"SETEX", "user:1", "-1", "v"},
      {"SETEX", "user:1", "abc", "v"},
      {"SETEX", "user:1", "1.5", "v"},
      {"SETEX", "user:1", "", "v"},
      {"SETEX", "user:1", "10"},
      {"SETEX", "user:1", "10", "v", "extra"},
      {"PSETEX", "user:1"},
      {"SETEX"},
      {"SETEX", "plain", "10", "v"},
      {"PSETEX", "cached:1", "10", "v"},
  };
  for (const auto& argv : bad) {
    CAPTURE(joined(argv));
    checkNone(ws.plan(argv));
  }
}

TEST_CASE("write plan: MSET plans the writers' keys, in command order") {
  Writers ws;
  Writer* user = ws.writer("user");
  Writer* profile = ws.writer("profile");
  WritePlan p = ws.plan({"MSET", "user:1", "a", "plain", "b", "profile:2", "c", "user:3", ""});
  CHECK(p.kind == WritePlan::Kind::kThrough);
  CHECK(p.op == WritePlan::Op::kSet);
  CHECK(p.error.empty());
  REQUIRE(p.items.size() == 3);
  const std::pair<Writer*, std::string_view> expected[] = {
      {user, "user:1"}, {profile, "profile:2"}, {user, "user:3"}};
  const std::string_view values[] = {"a", "c", ""};
  for (size_t i = 0; i < 3; ++i) {
    CAPTURE(i);
    CHECK(p.items[i].writer == expected[i].first);
    CHECK(p.items[i].key == expected[i].second);
    CHECK(p.items[i].state.kind == WriteState::Kind::kString);
    CHECK(p.items[i].state.value == values[i]);
  }
  // The same key twice: both, in order (the last one is what Redis keeps).
  p = ws.plan({"mset", "user:1", "a", "user:1", "b"});
  REQUIRE(p.items.size() == 2);
  CHECK(p.items[0].state.value == "a");
  CHECK(p.items[1].state.value == "b");

  // Write-behind keys on two backends: fine.
  p = ws.plan({"MSET", "session:1", "a", "event:1", "b", "plain", "c"});
  CHECK(p.kind == WritePlan::Kind::kBehind);
  REQUIRE(p.items.size() == 2);
  CHECK(p.items[0].writer == ws.writer("session"));
  CHECK(p.items[1].writer == ws.writer("event"));

  // Plain keys only: nothing to plan.
  checkNone(ws.plan({"MSET", "plain", "a", "cached:1", "b"}));
  // Malformed: no pair, or an odd one.
  checkNone(ws.plan({"MSET"}));
  checkNone(ws.plan({"MSET", "user:1"}));
  checkNone(ws.plan({"MSET", "user:1", "a", "user:2"}));
  checkNone(ws.plan({"MSET", "plain", "a", "user:2"}));

  // Mixing write-through and write-behind writers, or write-through backends, is refused.
  checkRefused(ws.plan({"MSET", "user:1", "a", "session:1", "b"}), kMixError);
  checkRefused(ws.plan({"MSET", "session:1", "b", "user:1", "a"}), kMixError);
  checkRefused(ws.plan({"MSET", "user:1", "a", "audit:1", "b"}), kBackendsError);
  checkRefused(ws.plan({"MSET", "plain", "x", "audit:1", "b", "user:1", "a"}), kBackendsError);
}

TEST_CASE("write plan: HSET, HMSET and HDEL") {
  Writers ws;
  Writer* profile = ws.writer("profile");
  for (std::string_view cmd : {"HSET", "hmset"}) {
    CAPTURE(cmd);
    WritePlan p = ws.plan({cmd, "profile:1", "name", "ada", "email", "", "name", "grace"});
    CHECK(p.kind == WritePlan::Kind::kThrough);
    CHECK(p.op == WritePlan::Op::kHset);
    REQUIRE(p.items.size() == 1);
    CHECK(p.items[0].writer == profile);
    CHECK(p.items[0].key == "profile:1");
    CHECK(p.items[0].state.kind == WriteState::Kind::kHash);
    CHECK(p.items[0].state.fields.empty());  // worked out later, from what Redis holds
    CHECK(p.set_fields == Fields{{"name", "ada"}, {"email", ""}, {"name", "grace"}});
    CHECK(p.del_fields.empty());
    CHECK_FALSE(p.nx);
    CHECK_FALSE(p.xx);
  }
  WritePlan p = ws.plan({"HDEL", "profile:1", "name", "nope", "name"});
  CHECK(p.kind == WritePlan::Kind::kThrough);
  CHECK(p.op == WritePlan::Op::kHdel);
  REQUIRE(p.items.size() == 1);
  CHECK(p.items[0].writer == profile);
  CHECK(p.items[0].state.kind == WriteState::Kind::kHash);
  CHECK(p.del_fields == std::vector<std::string>{"name", "nope", "name"});
  CHECK(p.set_fields.empty());

  p = ws.plan({"HSET", "event:9", "f", "v"});
  CHECK(p.kind == WritePlan::Kind::kBehind);
  REQUIRE(p.items.size() == 1);
  CHECK(p.items[0].writer == ws.writer("event"));

  const std::initializer_list<std::string_view> bad[] = {
      {"HSET", "profile:1"},
      {"HSET", "profile:1", "f"},
      {"HSET", "profile:1", "f", "v", "g"},
      {"HMSET", "profile:1", "f"},
      {"HDEL", "profile:1"},
      {"HSET"},
      {"HDEL"},
      {"HSET", "plain", "f", "v"},
      {"HDEL", "cached:1", "f"},
  };
  for (const auto& argv : bad) {
    CAPTURE(joined(argv));
    checkNone(ws.plan(argv));
  }
}

TEST_CASE("write plan: DEL and UNLINK") {
  Writers ws;
  Writer* user = ws.writer("user");
  Writer* profile = ws.writer("profile");
  for (std::string_view cmd : {"DEL", "unlink"}) {
    CAPTURE(cmd);
    WritePlan p = ws.plan({cmd, "user:1", "plain", "profile:2", "user:1"});
    CHECK(p.kind == WritePlan::Kind::kThrough);
    CHECK(p.op == WritePlan::Op::kDel);
    CHECK(p.error.empty());
    REQUIRE(p.items.size() == 3);
    CHECK(p.items[0].writer == user);
    CHECK(p.items[0].key == "user:1");
    CHECK(p.items[1].writer == profile);
    CHECK(p.items[1].key == "profile:2");
    CHECK(p.items[2].key == "user:1");
    for (const auto& item : p.items) {
      CHECK(item.state.kind == WriteState::Kind::kDeleted);
      CHECK(item.state.value.empty());
    }
    checkNone(ws.plan({cmd, "plain", "cached:1"}));
    checkNone(ws.plan({cmd}));
    WritePlan b = ws.plan({cmd, "session:1", "event:2"});
    CHECK(b.kind == WritePlan::Kind::kBehind);
    CHECK(b.items.size() == 2);
    checkRefused(ws.plan({cmd, "plain", "user:1", "session:1"}), kMixError);
    checkRefused(ws.plan({cmd, "audit:1", "user:1"}), kBackendsError);
  }
}

TEST_CASE("write plan: other writes to a writer's key are refused, naming the writer") {
  Writers ws;
  struct Case {
    std::initializer_list<std::string_view> argv;
    std::string_view writer;
    std::string_view command;
  };
  const Case cases[] = {
      {{"INCR", "user:1"}, "user", "incr"},
      {{"incrby", "user:1", "5"}, "user", "incrby"},
      {{"DECR", "user:1"}, "user", "decr"},
      {{"INCRBYFLOAT", "user:1", "1.5"}, "user", "incrbyfloat"},
      {{"APPEND", "user:1", "x"}, "user", "append"},
      {{"SETRANGE", "user:1", "0", "x"}, "user", "setrange"},
      {{"SETNX", "user:1", "x"}, "user", "setnx"},
      {{"GETSET", "user:1", "x"}, "user", "getset"},
      {{"GETDEL", "user:1"}, "user", "getdel"},
      {{"SETBIT", "user:1", "0", "1"}, "user", "setbit"},
      {{"LPUSH", "user:1", "x"}, "user", "lpush"},
      {{"SADD", "session:1", "x"}, "session", "sadd"},
      {{"ZADD", "audit:1", "1", "x"}, "audit", "zadd"},
      {{"HINCRBY", "profile:1", "f", "1"}, "profile", "hincrby"},
      {{"HSETNX", "profile:1", "f", "v"}, "profile", "hsetnx"},
      // RENAME moves the key away, or over a writer's key: either way, refused.
      {{"RENAME", "user:1", "plain"}, "user", "rename"},
      {{"RENAME", "plain", "user:1"}, "user", "rename"},
      {{"RENAMENX", "plain", "event:1"}, "event", "renamenx"},
      {{"MOVE", "user:1", "1"}, "user", "move"},
      {{"COPY", "plain", "user:1"}, "user", "copy"},
      // Every key of the command is looked at, with the command's key step.
      {{"MSETNX", "plain", "a", "user:1", "b"}, "user", "msetnx"},
      // The first writer key found names the error.
      {{"RENAME", "profile:1", "user:1"}, "profile", "rename"},
  };
  for (const Case& c : cases) {
    CAPTURE(joined(c.argv));
    WritePlan p = ws.plan(c.argv);
    checkRefused(p, refusal(c.writer, c.command));
    CHECK(p.items.empty());
  }
  // The same commands on keys no writer owns are not planned.
  checkNone(ws.plan({"INCR", "plain"}));
  checkNone(ws.plan({"RENAME", "plain", "cached:1"}));
  // A value that looks like a writer's key is not a key: MSETNX's step skips it.
  checkNone(ws.plan({"MSETNX", "plain", "user:1"}));
  checkNone(ws.plan({"LPUSH", "plain", "user:1"}));
  // Commands without keys are not planned.
  checkNone(ws.plan({"FLUSHALL"}));
}

TEST_CASE("write plan: TTL changes stay plain Redis") {
  Writers ws;
  const std::initializer_list<std::string_view> cases[] = {
      {"EXPIRE", "user:1", "10"},         {"pexpire", "user:1", "10"},
      {"EXPIREAT", "user:1", "1"},        {"PEXPIREAT", "profile:1", "1"},
      {"PERSIST", "session:1"},           {"EXPIRE", "event:1", "10", "NX"},
      {"EXPIRE", "user:1", "notanumber"}, {"PERSIST", "plain"},
  };
  for (const auto& argv : cases) {
    CAPTURE(joined(argv));
    checkNone(ws.plan(argv));
  }
}

TEST_CASE("write plan: countWrites counts one write per writer touched") {
  Writers ws;
  Writer* user = ws.writer("user");
  Writer* profile = ws.writer("profile");
  countWrites(ws.plan({"MSET", "user:1", "a", "user:2", "b"}));
  CHECK(user->stats().writes == 1);
  CHECK(profile->stats().writes == 0);
  countWrites(ws.plan({"DEL", "user:1", "profile:1", "user:2", "profile:2"}));
  CHECK(user->stats().writes == 2);
  CHECK(profile->stats().writes == 1);
  countWrites(ws.plan({"SET", "plain", "v"}));
  countWrites(WritePlan{});
  CHECK(user->stats().writes == 2);
  CHECK(profile->stats().writes == 1);
  countWrites(ws.plan({"HSET", "profile:1", "f", "v"}));
  CHECK(profile->stats().writes == 2);
  for (const auto& w : ws.registry()->writers()) {
    if (w.get() != user && w.get() != profile) CHECK(w->stats().writes == 0);
    CHECK(w->stats().db_writes == 0);
  }
}

TEST_CASE("write plan: applyHashChange applies HSET and HDEL to the hash Redis held") {
  WritePlan set;
  set.op = WritePlan::Op::kHset;
  set.set_fields = {{"name", "grace"}, {"age", "36"}, {"email", ""}, {"age", "37"}};
  // Existing fields change in place; new ones follow, in command order; the last value wins.
  CHECK(applyHashChange(set, {{"email", "a@x"}, {"name", "ada"}, {"id", "1"}}) ==
        Fields{{"email", ""}, {"name", "grace"}, {"id", "1"}, {"age", "37"}});
  CHECK(applyHashChange(set, {}) == Fields{{"name", "grace"}, {"age", "37"}, {"email", ""}});

  WritePlan del;
  del.op = WritePlan::Op::kHdel;
  del.del_fields = {"name", "nope", "name", "id"};
  CHECK(applyHashChange(del, {{"id", "1"}, {"name", "ada"}, {"email", "e"}}) ==
        Fields{{"email", "e"}});
  CHECK(applyHashChange(del, {}).empty());
  CHECK(applyHashChange(del, {{"id", "1"}, {"name", "ada"}}).empty());

  // Field names are compared byte for byte.
  WritePlan bin;
  bin.set_fields = {{"\0"s, "z"}};
  bin.del_fields = {"Name"};
  CHECK(applyHashChange(bin, {{"name", "a"}, {""s, "e"}}) ==
        Fields{{"name", "a"}, {""s, "e"}, {"\0"s, "z"}});

  // Nothing to change: the hash as it was.
  CHECK(applyHashChange(WritePlan{}, {{"b", "2"}, {"a", "1"}}) == Fields{{"b", "2"}, {"a", "1"}});
}

}  // namespace
}  // namespace readthru
