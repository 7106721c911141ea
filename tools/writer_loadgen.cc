// writer_loadgen: the client side of tools/bench_writers.sh (write-through / write-behind
// benchmarks). One thread and one blocking hiredis connection per client; one JSON object on
// stdout per invocation.
//
//   writer_loadgen set --port P [--clients 1] [--count 100000] [--keys 100000]
//       [--pattern random|distinct] [--prefix user:] [--first 1] [--value V]
//       [--redis-port R --stats-port S --writer NAME [--drain-timeout 300]]
//       SETs --count keys through P, every client back to back: "random" picks
//       PREFIX<first..first+keys-1> uniformly; "distinct" hands out PREFIX<first>,
//       PREFIX<first+1>, ... from a shared counter (every key once). Per-SET latency (us).
//       --vary 1: the n-th SET's value is {"name":"Bench User <n, 8 digits>",...} (64 bytes), so
//       `verify` can tell which write a row holds.
//       With --writer: READTHRU STATS writer:<NAME> on S before and after; after the load, the
//       stream readthru:wb:<NAME> on R is polled every 10 ms until it and the pending hashes are
//       empty (drain_s: from the end of the load), then STATS until queue_length is 0.
//
//   writer_loadgen drain --redis-port R --stats-port S --writer NAME [--timeout 300]
//       The same wait, alone (after a redis-benchmark run): backlog (XLEN at start), drain_s,
//       and the writer's STATS fields after it (rt_*).
//
//   writer_loadgen stats --stats-port S --writer NAME
//       The writer's STATS fields (rt_*).
//
//   writer_loadgen verify --redis-port R --db DB --keys K [--prefix user:] [--first 1]
//       For every key PREFIX<first..first+keys-1> Redis has: does the users row with that id
//       hold the name in Redis's value (the last write won)? Prints checked, missing, mismatched.
//
//   writer_loadgen sqlite --db DB --sql SQL [--count 2000] [--keys 100000] [--value V]
//       One statement at a time, as readthru's writer thread runs a write-through write:
//       BEGIN IMMEDIATE; the prepared upsert with :id bound as text (a {id} capture) and :value;
//       COMMIT. Per-statement latency, the database's journal_mode and synchronous.
//
// Exit status: 0 ok, 1 usage or setup error (message on stderr).
#include <hiredis/hiredis.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "loadgen_args.h"
#include "loadgen_hiredis.h"

namespace {

using Clock = std::chrono::steady_clock;

using loadgen::Args;
using loadgen::Die;

// ---------------------------------------------------------------- redis

using loadgen::Ctx;
using loadgen::Reply;

Ctx Connect(int port) {
  timeval tv{5, 0};
  Ctx c(redisConnectWithTimeout("127.0.0.1", port, tv));
  if (!c || c->err) {
    Die("connect 127.0.0.1:" + std::to_string(port) + ": " + (c ? c->errstr : "out of memory"));
  }
  timeval rw{30, 0};  // far above the writer timeout: a stuck reply is an error, not a hang
  redisSetTimeout(c.get(), rw);
  return c;
}

Reply Cmd(redisContext* c, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  void* r = redisvCommand(c, fmt, ap);
  va_end(ap);
  return Reply(static_cast<redisReply*>(r));
}

long long ReplyInt(const redisReply* r) {
  if (r->type == REDIS_REPLY_INTEGER) return r->integer;
  if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) return std::atoll(r->str);
  return -1;
}

long long IntCmd(redisContext* c, const char* fmt, const std::string& arg) {
  Reply r = Cmd(c, fmt, arg.c_str());
  if (!r || r->type != REDIS_REPLY_INTEGER) Die(std::string("command failed: ") + fmt + " " + arg);
  return r->integer;
}

// READTHRU STATS (RESP2: [name, [field, value, ...], ...]) -> the fields of "writer:<name>"
std::map<std::string, long long> WriterStats(redisContext* c, const std::string& writer) {
  std::map<std::string, long long> out;
  Reply r = Cmd(c, "READTHRU STATS");
  if (!r) Die("READTHRU STATS: connection error");
  if (r->type == REDIS_REPLY_ERROR) Die(std::string("READTHRU STATS: ") + r->str);
  if (r->type != REDIS_REPLY_ARRAY) Die("READTHRU STATS: not an array");
  const std::string want = "writer:" + writer;
  for (size_t i = 0; i + 1 < r->elements; i += 2) {
    const redisReply* name = r->element[i];
    const redisReply* fields = r->element[i + 1];
    if (name->type != REDIS_REPLY_STRING && name->type != REDIS_REPLY_STATUS) continue;
    if (want != std::string(name->str, name->len)) continue;
    if (fields->type != REDIS_REPLY_ARRAY) Die("READTHRU STATS: writer entry is not an array");
    for (size_t j = 0; j + 1 < fields->elements; j += 2) {
      const redisReply* v = fields->element[j + 1];
      if (v->type == REDIS_REPLY_ARRAY) continue;
      out[std::string(fields->element[j]->str, fields->element[j]->len)] = ReplyInt(v);
    }
    return out;
  }
  Die("READTHRU STATS: no entry '" + want + "'");
}

std::string StatsJson(const std::map<std::string, long long>& s, const char* prefix = "rt_") {
  std::string o;
  for (const auto& [k, v] : s) o += ",\"" + std::string(prefix) + k + "\":" + std::to_string(v);
  return o;
}

double Secs(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// Waits until the writer's stream and pending hashes are empty (every queued write is in the
// database: entries are deleted only after their batch committed), then until readthru's
// STATS report queue_length 0. JSON fields: backlog, pending_at_start, drain_s,
// stats_lag_s (STATS queue_length 0 after the stream was empty), drained, final rt_* stats.
std::string Drain(int redis_port, int stats_port, const std::string& writer, double timeout_s,
                  Clock::time_point since) {
  Ctx rc = Connect(redis_port);
  Ctx sc = Connect(stats_port);
  const std::string stream = "readthru:wb:" + writer;
  const std::string pending = stream + ":pending";
  const std::string flushing = stream + ":flushing";
  long long backlog = IntCmd(rc.get(), "XLEN %s", stream);
  long long pend0 = IntCmd(rc.get(), "HLEN %s", pending) + IntCmd(rc.get(), "HLEN %s", flushing);
  auto deadline = since + std::chrono::duration<double>(timeout_s);
  bool drained = false;
  Clock::time_point t_empty;
  for (;;) {
    long long x = IntCmd(rc.get(), "XLEN %s", stream);
    long long h =
        x == 0 ? IntCmd(rc.get(), "HLEN %s", pending) + IntCmd(rc.get(), "HLEN %s", flushing) : 1;
    if (x == 0 && h == 0) {
      t_empty = Clock::now();
      drained = true;
      break;
    }
    if (Clock::now() > deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::map<std::string, long long> st;
  double lag = -1;
  bool stats_zero = false;
  if (drained) {
    // STATS' queue_length is XLEN as of the flusher's last cycle: it reaches 0 one cycle later.
    auto until = Clock::now() + std::chrono::seconds(15);
    for (;;) {
      st = WriterStats(sc.get(), writer);
      if (st["queue_length"] == 0) {
        stats_zero = true;
        lag = Secs(t_empty, Clock::now());
        break;
      }
      if (Clock::now() > until) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  } else {
    st = WriterStats(sc.get(), writer);
  }
  char buf[320];
  std::snprintf(buf, sizeof buf,
                "\"backlog\":%lld,\"pending_at_start\":%lld,\"drained\":%s,\"drain_s\":%.3f,"
                "\"stats_queue_zero\":%s,\"stats_lag_s\":%.3f,\"left_xlen\":%lld",
                backlog, pend0, drained ? "true" : "false", drained ? Secs(since, t_empty) : -1.0,
                stats_zero ? "true" : "false", lag,
                drained ? 0LL : IntCmd(rc.get(), "XLEN %s", stream));
  return std::string(buf) + StatsJson(st);
}

// ---------------------------------------------------------------- latency

struct Lat {
  double p50 = 0, p99 = 0, p999 = 0, max = 0, mean = 0;
};

// us samples -> ms percentiles (nearest rank)
Lat Percentiles(std::vector<uint32_t>& v) {
  Lat l;
  if (v.empty()) return l;
  std::sort(v.begin(), v.end());
  auto at = [&](double q) {
    size_t i = static_cast<size_t>(q * static_cast<double>(v.size()));
    if (i >= v.size()) i = v.size() - 1;
    return v[i] / 1000.0;
  };
  l.p50 = at(0.50);
  l.p99 = at(0.99);
  l.p999 = at(0.999);
  l.max = v.back() / 1000.0;
  double sum = 0;
  for (uint32_t x : v) sum += x;
  l.mean = sum / static_cast<double>(v.size()) / 1000.0;
  return l;
}

std::string LatJson(const Lat& l) {
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "\"p50_ms\":%.4f,\"p99_ms\":%.4f,\"p999_ms\":%.4f,\"max_ms\":%.3f,\"mean_ms\":%.4f",
                l.p50, l.p99, l.p999, l.max, l.mean);
  return buf;
}

uint32_t UsSince(Clock::time_point t0) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count();
  return static_cast<uint32_t>(std::min<int64_t>(us, UINT32_MAX));
}

std::string JsonEscape(const std::string& s) {
  std::string o;
  for (char ch : s) {
    if (ch == '"' || ch == '\\') o += '\\';
    if (static_cast<unsigned char>(ch) >= 0x20) o += ch;
  }
  return o;
}

const char* kDefaultValue = R"({"name":"Bench User","email":"bench.user@example.test","n":1234})";

// A 64-byte JSON value whose name carries a sequence number: {"name":"Bench User 00000042",...}
std::string NumberedValue(long long seq) {
  char buf[96];
  std::snprintf(buf, sizeof buf,
                R"({"name":"Bench User %08lld","email":"bench.user@example.test"})",
                seq % 100000000);
  return buf;
}

// The "name" member of a JSON value as the loadgen writes it (no escapes), or "".
std::string NameOf(const std::string& v) {
  const std::string tag = "\"name\":\"";
  size_t p = v.find(tag);
  if (p == std::string::npos) return "";
  p += tag.size();
  size_t e = v.find('"', p);
  return e == std::string::npos ? "" : v.substr(p, e - p);
}

// ---------------------------------------------------------------- set

int Set(Args& a) {
  const int port = static_cast<int>(a.Int("port"));
  const int clients = static_cast<int>(a.Int("clients", "1"));
  const long long count = a.Int("count", "100000");
  const long long keys = a.Int("keys", "100000");
  const std::string pattern = a.Str("pattern", "random");
  const std::string prefix = a.Str("prefix", "user:");
  const long long first = a.Int("first", "1");
  const std::string value = a.Str("value", kDefaultValue);
  const bool vary = a.Int("vary", "0") != 0;
  const int redis_port = static_cast<int>(a.Int("redis-port", "0"));
  const int stats_port = static_cast<int>(a.Int("stats-port", "0"));
  const std::string writer = a.Str("writer", "");
  const double drain_timeout = static_cast<double>(a.Int("drain-timeout", "300"));
  a.CheckAllUsed();
  if (pattern != "random" && pattern != "distinct") Die("--pattern must be random or distinct");
  if (clients < 1 || count < 1 || keys < 1) Die("bad --clients/--count/--keys");
  if (!writer.empty() && (redis_port == 0 || stats_port == 0)) {
    Die("--writer needs --redis-port and --stats-port");
  }

  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::atomic<long long> next{0}, errors{0};
  std::mutex err_mu;
  std::string first_error;
  std::vector<std::vector<uint32_t>> lats(clients);

  auto worker = [&](int ti) {
    Ctx c = Connect(port);
    std::mt19937_64 rng(0x9e3779b97f4a7c15ULL * static_cast<uint64_t>(ti + 1) +
                        Clock::now().time_since_epoch().count());
    std::uniform_int_distribution<long long> pick(first, first + keys - 1);
    lats[ti].reserve(static_cast<size_t>(count / clients + 16));
    ready++;
    ready.notify_all();
    go.wait(false);
    for (;;) {
      long long n = next.fetch_add(1);
      if (n >= count) return;
      long long id = pattern == "distinct" ? first + n : pick(rng);
      std::string key = prefix + std::to_string(id);
      std::string v = vary ? NumberedValue(n + 1) : value;
      auto t0 = Clock::now();
      Reply r = Cmd(c.get(), "SET %s %b", key.c_str(), v.data(), v.size());
      if (!r) {
        errors++;
        std::fprintf(stderr, "writer_loadgen: client %d: %s\n", ti, c->errstr);
        return;
      }
      lats[ti].push_back(UsSince(t0));
      if (r->type != REDIS_REPLY_STATUS) {
        errors++;
        std::lock_guard<std::mutex> g(err_mu);
        if (first_error.empty()) {
          first_error = r->type == REDIS_REPLY_ERROR ? r->str : "reply not +OK";
        }
      }
    }
  };

  std::vector<std::thread> threads;
  threads.reserve(clients);
  for (int i = 0; i < clients; i++) threads.emplace_back(worker, i);
  for (int n = ready.load(); n < clients; n = ready.load()) ready.wait(n);
  Ctx sc;
  std::map<std::string, long long> st0;
  if (!writer.empty()) {
    sc = Connect(stats_port);
    st0 = WriterStats(sc.get(), writer);
  }
  auto t0 = Clock::now();
  go = true;
  go.notify_all();
  for (auto& t : threads) t.join();
  auto t1 = Clock::now();
  double elapsed = Secs(t0, t1);
  std::string drain;
  if (!writer.empty()) drain = "," + Drain(redis_port, stats_port, writer, drain_timeout, t1);

  std::vector<uint32_t> all;
  for (auto& v : lats) all.insert(all.end(), v.begin(), v.end());
  Lat l = Percentiles(all);
  std::printf(
      "{\"clients\":%d,\"pattern\":\"%s\",\"keys\":%lld,\"ops\":%zu,\"duration_s\":%.3f,"
      "\"ops_per_s\":%.1f,\"errors\":%lld,\"first_error\":\"%s\",%s%s%s}\n",
      clients, pattern.c_str(), keys, all.size(), elapsed,
      static_cast<double>(all.size()) / elapsed, errors.load(), JsonEscape(first_error).c_str(),
      LatJson(l).c_str(), drain.c_str(), writer.empty() ? "" : StatsJson(st0, "rt0_").c_str());
  return 0;
}

int DrainCmd(Args& a) {
  const int redis_port = static_cast<int>(a.Int("redis-port"));
  const int stats_port = static_cast<int>(a.Int("stats-port"));
  const std::string writer = a.Str("writer");
  const double timeout = static_cast<double>(a.Int("timeout", "300"));
  a.CheckAllUsed();
  std::printf("{%s}\n", Drain(redis_port, stats_port, writer, timeout, Clock::now()).c_str());
  return 0;
}

int StatsCmd(Args& a) {
  const int stats_port = static_cast<int>(a.Int("stats-port"));
  const std::string writer = a.Str("writer");
  a.CheckAllUsed();
  Ctx sc = Connect(stats_port);
  std::string s = StatsJson(WriterStats(sc.get(), writer));
  std::printf("{%s}\n", s.empty() ? "" : s.c_str() + 1);
  return 0;
}

// Every key PREFIX<first..first+keys-1> that Redis has: is its database row's name the one in
// Redis's value (the last write won)? Keys Redis does not have are skipped.
int Verify(Args& a) {
  const int redis_port = static_cast<int>(a.Int("redis-port"));
  const std::string path = a.Str("db");
  const std::string prefix = a.Str("prefix", "user:");
  const long long first = a.Int("first", "1");
  const long long keys = a.Int("keys");
  a.CheckAllUsed();
  Ctx rc = Connect(redis_port);
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    Die("sqlite open " + path + ": " + sqlite3_errmsg(db));
  }
  sqlite3_busy_timeout(db, 5000);
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT name FROM users WHERE id = ?", -1, &st, nullptr) !=
      SQLITE_OK) {
    Die("sqlite prepare: " + std::string(sqlite3_errmsg(db)));
  }
  long long checked = 0, missing = 0, mismatched = 0;
  std::string example;
  const long long chunk = 1000;
  for (long long base = first; base < first + keys; base += chunk) {
    long long end = std::min(first + keys, base + chunk);
    for (long long id = base; id < end; id++) {
      redisAppendCommand(rc.get(), "GET %s", (prefix + std::to_string(id)).c_str());
    }
    for (long long id = base; id < end; id++) {
      void* rv = nullptr;
      if (redisGetReply(rc.get(), &rv) != REDIS_OK) Die("GET failed");
      Reply r(static_cast<redisReply*>(rv));
      if (r->type != REDIS_REPLY_STRING) continue;
      std::string want = NameOf(std::string(r->str, r->len));
      sqlite3_reset(st);
      sqlite3_bind_int64(st, 1, id);
      checked++;
      if (sqlite3_step(st) != SQLITE_ROW) {
        missing++;
        if (example.empty()) example = prefix + std::to_string(id) + " has no row";
        continue;
      }
      const unsigned char* t = sqlite3_column_text(st, 0);
      std::string got = t ? reinterpret_cast<const char*>(t) : "";
      if (got != want) {
        mismatched++;
        if (example.empty())
          example = prefix + std::to_string(id) + ": redis '" + want + "', db '" + got + "'";
      }
    }
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  std::printf("{\"checked\":%lld,\"missing\":%lld,\"mismatched\":%lld,\"example\":\"%s\"}\n",
              checked, missing, mismatched, JsonEscape(example).c_str());
  return 0;
}

// ---------------------------------------------------------------- sqlite

int Sqlite(Args& a) {
  const std::string path = a.Str("db");
  const std::string sql = a.Str("sql");
  const long long count = a.Int("count", "2000");
  const long long keys = a.Int("keys", "100000");
  const std::string value = a.Str("value", kDefaultValue);
  a.CheckAllUsed();
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) !=
      SQLITE_OK) {
    Die("sqlite open " + path + ": " + sqlite3_errmsg(db));
  }
  sqlite3_busy_timeout(db, 5000);
  auto pragma = [&](const char* q) {
    sqlite3_stmt* st = nullptr;
    std::string v = "?";
    if (sqlite3_prepare_v2(db, q, -1, &st, nullptr) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
      v = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    return v;
  };
  std::string journal = pragma("PRAGMA journal_mode");
  std::string sync = pragma("PRAGMA synchronous");
  auto exec = [&](const char* q) {
    char* err = nullptr;
    if (sqlite3_exec(db, q, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string m = err ? err : "?";
      sqlite3_free(err);
      Die(std::string(q) + ": " + m);
    }
  };
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
    Die("sqlite prepare: " + std::string(sqlite3_errmsg(db)) + ": " + sql);
  }
  int id_idx = sqlite3_bind_parameter_index(st, ":id");
  int value_idx = sqlite3_bind_parameter_index(st, ":value");
  std::mt19937_64 rng(static_cast<uint64_t>(Clock::now().time_since_epoch().count()));
  std::uniform_int_distribution<long long> pick(1, keys);
  std::vector<uint32_t> lat;
  lat.reserve(static_cast<size_t>(count));
  auto t0 = Clock::now();
  for (long long i = 0; i < count; i++) {
    std::string id = std::to_string(pick(rng));
    auto s0 = Clock::now();
    exec("BEGIN IMMEDIATE");
    sqlite3_reset(st);
    if (id_idx > 0)
      sqlite3_bind_text(st, id_idx, id.data(), static_cast<int>(id.size()), SQLITE_TRANSIENT);
    if (value_idx > 0) {
      sqlite3_bind_text(st, value_idx, value.data(), static_cast<int>(value.size()),
                        SQLITE_TRANSIENT);
    }
    if (sqlite3_step(st) != SQLITE_DONE) Die("sqlite step: " + std::string(sqlite3_errmsg(db)));
    exec("COMMIT");
    lat.push_back(UsSince(s0));
  }
  double elapsed = Secs(t0, Clock::now());
  sqlite3_finalize(st);
  sqlite3_close(db);
  Lat l = Percentiles(lat);
  std::printf(
      "{\"ops\":%lld,\"duration_s\":%.3f,\"ops_per_s\":%.1f,\"journal_mode\":\"%s\","
      "\"synchronous\":%s,%s}\n",
      count, elapsed, static_cast<double>(count) / elapsed, journal.c_str(), sync.c_str(),
      LatJson(l).c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  loadgen::g_program = "writer_loadgen";
  // SQLite as readthru configures it (backends/sqlite_backend.cc: no memory statistics, whose
  // process-wide mutex slows concurrent queries), so the application-side queries here cost
  // what readthru's do.
  sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  if (argc < 2) Die("usage: writer_loadgen set|drain|stats|verify|sqlite --option value ...");
  std::string cmd = argv[1];
  Args a(argc, argv);
  if (cmd == "set") return Set(a);
  if (cmd == "drain") return DrainCmd(a);
  if (cmd == "stats") return StatsCmd(a);
  if (cmd == "sqlite") return Sqlite(a);
  if (cmd == "verify") return Verify(a);
  Die("unknown command: " + cmd);
}
