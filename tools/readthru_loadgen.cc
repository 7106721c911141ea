// readthru_loadgen: the client side of tools/bench_readthrough.sh (read-through benchmarks).
//
// One thread per client, each with its own blocking hiredis connection (and, for the
// application-side recipes, its own read-only SQLite connection), so 200 clients are 200 real
// concurrent clients with no interpreter lock between them. Prints one JSON object on stdout.
//
//   readthru_loadgen calibrate --db DB --sql-template SQL --target-ms 20
//       SQL contains @N@ (a loop bound); finds N so that the query takes about target-ms.
//       Prints {"n":..., "ms":..., "min_ms":...} (median and minimum of 7 runs with the final N;
//       N is found from minimums, which a busy host disturbs least).
//
//   readthru_loadgen stampede --mode readthru|recipe --port P --redis-port R [--stats-port S]
//       --db DB --sql SQL [--loader NAME] [--prefix hot:] [--keys 100] [--clients 200]
//       [--duration 30] [--ttl-ms 5000] [--jitter-ms 1000] [--lock-ex 5] [--retry-ms 100]
//       [--think-us 0]
//       Every client GETs uniformly random keys PREFIX1..PREFIX<keys> for --duration seconds
//       (back to back, or sleeping --think-us after each lookup).
//       readthru: a plain GET through readthru (which loads on a miss).
//       recipe:   cache-aside against redis-server: GET; on nil SET lock:<key> 1 NX EX lock-ex;
//                 the holder runs SQL itself, SETs the value with PX ttl +- jitter, DELs the lock;
//                 the others sleep retry-ms and start over with GET.
//       Before the timed window every key is fetched once (the same way), then counters are
//       snapshot: expiries = INFO expired_keys delta on R; loads = READTHRU STATS loads delta on
//       S (readthru) or the queries the clients ran (recipe).
//
//   readthru_loadgen cold --mode readthru|aside --port P --db DB --sql SQL [--stats-port S]
//       [--loader NAME] [--prefix user:] [--first 1] [--count 20000] [--clients 50]
//       [--ttl-ms 3600000]
//       Each key PREFIX<first>..PREFIX<first+count-1> is fetched exactly once (clients take the
//       next id from a shared counter). readthru: GET through readthru. aside: GET from redis;
//       on nil run SQL here and SET key value PX ttl.
//
// Exit status: 0 ok, 1 usage or setup error (message on stderr).
#include <hiredis/hiredis.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
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

Ctx Connect(const std::string& host, int port) {
  timeval tv{5, 0};
  Ctx c(redisConnectWithTimeout(host.c_str(), port, tv));
  if (!c || c->err) {
    Die("connect " + host + ":" + std::to_string(port) + ": " + (c ? c->errstr : "out of memory"));
  }
  timeval rw{30, 0};  // far above the loader timeout; a stuck reply is an error, not a hang
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

// INFO stats expired_keys
long long ExpiredKeys(redisContext* c) {
  Reply r = Cmd(c, "INFO stats");
  if (!r || r->type != REDIS_REPLY_STRING) Die("INFO stats failed");
  const char* p = std::strstr(r->str, "expired_keys:");
  if (p == nullptr) Die("INFO stats has no expired_keys");
  return std::atoll(p + std::strlen("expired_keys:"));
}

long long ReplyInt(const redisReply* r) {
  if (r->type == REDIS_REPLY_INTEGER) return r->integer;
  if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) return std::atoll(r->str);
  return -1;
}

// READTHRU STATS (RESP2: [name, [field, value, ...], ...]) -> the fields of one loader
std::map<std::string, long long> LoaderStats(redisContext* c, const std::string& loader) {
  std::map<std::string, long long> out;
  Reply r = Cmd(c, "READTHRU STATS");
  if (!r) Die("READTHRU STATS: connection error");
  if (r->type == REDIS_REPLY_ERROR) Die(std::string("READTHRU STATS: ") + r->str);
  if (r->type != REDIS_REPLY_ARRAY) Die("READTHRU STATS: not an array");
  for (size_t i = 0; i + 1 < r->elements; i += 2) {
    const redisReply* name = r->element[i];
    const redisReply* fields = r->element[i + 1];
    if (name->type != REDIS_REPLY_STRING && name->type != REDIS_REPLY_STATUS) continue;
    if (loader != std::string(name->str, name->len)) continue;
    if (fields->type != REDIS_REPLY_ARRAY) Die("READTHRU STATS: loader entry is not an array");
    for (size_t j = 0; j + 1 < fields->elements; j += 2) {
      const redisReply* v = fields->element[j + 1];
      if (v->type == REDIS_REPLY_ARRAY) {  // load_latency_histogram: [le_100, n, le_250, n, ...]
        for (size_t h = 0; h + 1 < v->elements; h += 2) {
          out["hist_" + std::string(v->element[h]->str, v->element[h]->len)] =
              ReplyInt(v->element[h + 1]);
        }
        continue;
      }
      out[std::string(fields->element[j]->str, fields->element[j]->len)] = ReplyInt(v);
    }
    return out;
  }
  Die("READTHRU STATS: no loader '" + loader + "'");
}

// ---------------------------------------------------------------- sqlite

class Query {
 public:
  Query(const std::string& path, const std::string& sql) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr) !=
        SQLITE_OK) {
      Die("sqlite open " + path + ": " + sqlite3_errmsg(db_));
    }
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st_, nullptr) != SQLITE_OK) {
      Die("sqlite prepare: " + std::string(sqlite3_errmsg(db_)) + ": " + sql);
    }
    idx_ = sqlite3_bind_parameter_index(st_, ":id");
  }
  ~Query() {
    sqlite3_finalize(st_);
    sqlite3_close(db_);
  }
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;

  // First column of the one row, or nullopt (no row, or NULL).
  std::optional<std::string> Run(long long id) {
    sqlite3_reset(st_);
    if (idx_ > 0) sqlite3_bind_int64(st_, idx_, id);
    std::optional<std::string> v;
    int rc = sqlite3_step(st_);
    if (rc == SQLITE_ROW) {
      if (sqlite3_column_type(st_, 0) != SQLITE_NULL) {
        const unsigned char* t = sqlite3_column_text(st_, 0);
        v.emplace(reinterpret_cast<const char*>(t), sqlite3_column_bytes(st_, 0));
      }
    } else if (rc != SQLITE_DONE) {
      Die("sqlite step: " + std::string(sqlite3_errmsg(db_)));
    }
    sqlite3_reset(st_);
    return v;
  }

 private:
  sqlite3* db_ = nullptr;
  sqlite3_stmt* st_ = nullptr;
  int idx_ = 0;
};

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

std::string LatJson(const Lat& l) {
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"max_ms\":%.3f,\"mean_ms\":%.3f",
                l.p50, l.p99, l.p999, l.max, l.mean);
  return buf;
}

std::string StatsJson(const std::map<std::string, long long>& before,
                      const std::map<std::string, long long>& after) {
  // counters and histogram buckets (hist_le_<us>) as deltas over the window; the load time
  // percentiles (load_*) as readthru reports them now, over its whole life
  std::string s;
  for (const auto& [k, v] : after) {
    long long out = v;
    if (k.rfind("load_", 0) != 0) {
      auto it = before.find(k);
      out = v - (it == before.end() ? 0 : it->second);
    }
    s += ",\"rt_" + k + "\":" + std::to_string(out);
  }
  return s;
}

// ---------------------------------------------------------------- calibrate

int Calibrate(Args& a) {
  std::string db = a.Str("db");
  std::string tmpl = a.Str("sql-template");
  double target = a.Dbl("target-ms", "20");
  a.CheckAllUsed();
  if (tmpl.find("@N@") == std::string::npos) Die("--sql-template has no @N@");
  auto sql_for = [&](long long n) {
    std::string s = tmpl;
    s.replace(s.find("@N@"), 3, std::to_string(n));
    return s;
  };
  // {minimum, median} of reps runs: the minimum is the query's own work (a busy host only adds
  // to it), so N is chosen by it; the median is what the report shows
  auto measure = [&](long long n, int reps) {
    Query q(db, sql_for(n));
    std::vector<double> ms;
    for (int i = 0; i < reps; i++) {
      auto t0 = Clock::now();
      if (!q.Run(1)) Die("calibration query returned no value");
      ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    }
    std::sort(ms.begin(), ms.end());
    return std::pair<double, double>{ms.front(), ms[ms.size() / 2]};
  };
  long long n = 10000;
  for (int i = 0; i < 8; i++) {
    double t = measure(n, 5).first;
    if (i >= 2 && t > target * 0.95 && t < target * 1.05) break;
    long long next = static_cast<long long>(static_cast<double>(n) * target / std::max(t, 0.01));
    n = std::clamp<long long>(next, 100, 1000000000LL);
  }
  // A host whose speed changed during the search (a neighbour's load ending) leaves N off: the
  // final measurement corrects it, a few times at most.
  auto [min_ms, ms] = measure(n, 7);
  for (int i = 0; i < 3 && (min_ms < target * 0.9 || min_ms > target * 1.1); i++) {
    n = std::clamp<long long>(
        static_cast<long long>(static_cast<double>(n) * target / std::max(min_ms, 0.01)), 100,
        1000000000LL);
    std::tie(min_ms, ms) = measure(n, 7);
  }
  std::printf("{\"n\":%lld,\"ms\":%.3f,\"min_ms\":%.3f}\n", n, ms, min_ms);
  return 0;
}

// ---------------------------------------------------------------- stampede

int Stampede(Args& a) {
  const std::string mode = a.Str("mode");
  const std::string host = a.Str("host", "127.0.0.1");
  const int port = static_cast<int>(a.Int("port"));
  const int redis_port = static_cast<int>(a.Int("redis-port"));
  const int stats_port = static_cast<int>(a.Int("stats-port", "0"));
  const std::string db = a.Str("db");
  const std::string sql = a.Str("sql");
  const std::string loader = a.Str("loader", "hot");
  const std::string prefix = a.Str("prefix", "hot:");
  const int keys = static_cast<int>(a.Int("keys", "100"));
  const int clients = static_cast<int>(a.Int("clients", "200"));
  const double duration = a.Dbl("duration", "30");
  const long long ttl_ms = a.Int("ttl-ms", "5000");
  const long long jitter_ms = a.Int("jitter-ms", "1000");
  const long long lock_ex = a.Int("lock-ex", "5");
  const long long retry_ms = a.Int("retry-ms", "100");
  const long long think_us = a.Int("think-us", "0");
  a.CheckAllUsed();
  if (mode != "readthru" && mode != "recipe") Die("--mode must be readthru or recipe");
  if (mode == "readthru" && stats_port == 0) Die("--mode readthru needs --stats-port");
  if (keys < 1 || clients < 1 || duration <= 0) Die("bad --keys/--clients/--duration");

  std::atomic<int> warm_done{0};
  std::atomic<bool> go{false}, stop{false};
  std::atomic<long long> queries{0}, errors{0}, nils{0}, lock_waits{0}, warm_errors{0};
  std::vector<std::vector<uint32_t>> lats(clients);
  std::mutex err_mu;
  std::string first_error;
  auto note_error = [&](const char* msg) {
    std::lock_guard<std::mutex> g(err_mu);
    if (first_error.empty()) first_error = msg;
  };
  enum class Got { kValue, kNil, kError, kBroken };

  auto worker = [&](int ti) {
    Ctx c = Connect(host, port);
    std::unique_ptr<Query> q;
    if (mode == "recipe") q = std::make_unique<Query>(db, sql);
    std::mt19937_64 rng(0x9e3779b97f4a7c15ULL * static_cast<uint64_t>(ti + 1));
    std::uniform_int_distribution<int> pick(1, keys);
    std::uniform_int_distribution<long long> jit(-jitter_ms, jitter_ms);
    lats[ti].reserve(1 << 16);

    // one lookup, until the client has a value (or nil/error)
    auto op = [&](int id) -> Got {
      std::string key = prefix + std::to_string(id);
      for (;;) {
        Reply r = Cmd(c.get(), "GET %s", key.c_str());
        if (!r) return Got::kBroken;
        if (r->type == REDIS_REPLY_STRING) return Got::kValue;
        if (r->type == REDIS_REPLY_ERROR) {
          note_error(r->str);
          return Got::kError;
        }
        if (mode == "readthru") return Got::kNil;
        // recipe: cache-aside with a lock
        std::string lock = "lock:" + key;
        Reply l = Cmd(c.get(), "SET %s 1 NX EX %lld", lock.c_str(), lock_ex);
        if (!l) return Got::kBroken;
        if (l->type == REDIS_REPLY_STATUS) {
          std::optional<std::string> v = q->Run(id);
          queries++;
          if (!v) {
            Cmd(c.get(), "DEL %s", lock.c_str());
            return Got::kNil;
          }
          long long px = ttl_ms + (jitter_ms > 0 ? jit(rng) : 0);
          Reply s = Cmd(c.get(), "SET %s %b PX %lld", key.c_str(), v->data(), v->size(), px);
          Reply d = Cmd(c.get(), "DEL %s", lock.c_str());
          if (!s || !d) return Got::kBroken;
          return Got::kValue;
        }
        lock_waits++;
        std::this_thread::sleep_for(std::chrono::milliseconds(retry_ms));
      }
    };

    // warm: every key once, spread over the clients (retried until it has a value)
    for (int id = ti + 1; id <= keys; id += clients) {
      for (int attempt = 0;; attempt++) {
        Got g = op(id);
        if (g == Got::kBroken) Die(std::string("connection lost during warm-up: ") + c->errstr);
        if (g == Got::kValue) break;
        warm_errors++;
        if (attempt == 20) Die("no value for " + prefix + std::to_string(id) + " in warm-up");
      }
    }
    warm_done++;
    warm_done.notify_all();
    go.wait(false);
    while (!stop.load(std::memory_order_relaxed)) {
      int id = pick(rng);
      auto t0 = Clock::now();
      Got g = op(id);
      if (g == Got::kBroken) {
        errors++;
        std::fprintf(stderr, "readthru_loadgen: client %d: %s\n", ti, c->errstr);
        return;
      }
      if (g == Got::kError) errors++;
      if (g == Got::kNil) nils++;
      lats[ti].push_back(UsSince(t0));
      if (think_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(think_us));
    }
  };

  std::vector<std::thread> threads;
  threads.reserve(clients);
  for (int i = 0; i < clients; i++) threads.emplace_back(worker, i);
  for (int n = warm_done.load(); n < clients; n = warm_done.load()) warm_done.wait(n);

  Ctx rc = Connect(host, redis_port);
  long long warm_missing = 0;
  for (int id = 1; id <= keys; id++) {
    Reply e = Cmd(rc.get(), "EXISTS %s", (prefix + std::to_string(id)).c_str());
    if (!e || e->type != REDIS_REPLY_INTEGER) Die("EXISTS failed");
    if (e->integer == 0) warm_missing++;
  }
  Ctx sc;
  std::map<std::string, long long> st0, st1;
  if (stats_port != 0) {
    sc = Connect(host, stats_port);
    st0 = LoaderStats(sc.get(), loader);
  }
  long long exp0 = ExpiredKeys(rc.get());
  long long q0 = queries.load();
  auto t0 = Clock::now();
  go = true;
  go.notify_all();
  std::this_thread::sleep_until(t0 + std::chrono::duration<double>(duration));
  stop = true;
  auto t1 = Clock::now();
  for (auto& t : threads) t.join();
  long long exp1 = ExpiredKeys(rc.get());
  if (sc) st1 = LoaderStats(sc.get(), loader);
  double elapsed = std::chrono::duration<double>(t1 - t0).count();

  std::vector<uint32_t> all;
  size_t total = 0;
  for (auto& v : lats) total += v.size();
  all.reserve(total);
  for (auto& v : lats) all.insert(all.end(), v.begin(), v.end());
  Lat l = Percentiles(all);

  long long expiries = exp1 - exp0;
  long long loads = mode == "recipe" ? queries.load() - q0 : st1["loads"] - st0["loads"];
  std::printf(
      "{\"bench\":\"stampede\",\"mode\":\"%s\",\"clients\":%d,\"keys\":%d,\"duration_s\":%.3f,"
      "\"ttl_ms\":%lld,\"jitter_ms\":%lld,\"ops\":%zu,\"ops_per_s\":%.1f,\"expiries\":%lld,"
      "\"loads\":%lld,\"loads_per_key_expiry\":%.4f,\"loads_per_key_per_ttl\":%.4f,"
      "\"think_us\":%lld,\"warm_errors\":%lld,\"warm_missing\":%lld,\"errors\":%lld,\"nils\":%lld,"
      "\"lock_waits\":%lld,\"first_error\":\"%s\",%s%s}\n",
      mode.c_str(), clients, keys, elapsed, ttl_ms, jitter_ms, all.size(),
      static_cast<double>(all.size()) / elapsed, expiries, loads,
      expiries > 0 ? static_cast<double>(loads) / static_cast<double>(expiries) : 0.0,
      static_cast<double>(loads) / (keys * elapsed * 1000.0 / static_cast<double>(ttl_ms)),
      think_us, warm_errors.load(), warm_missing, errors.load(), nils.load(), lock_waits.load(),
      JsonEscape(first_error).c_str(), LatJson(l).c_str(), sc ? StatsJson(st0, st1).c_str() : "");
  return 0;
}

// ---------------------------------------------------------------- cold misses

int Cold(Args& a) {
  const std::string mode = a.Str("mode");
  const std::string host = a.Str("host", "127.0.0.1");
  const int port = static_cast<int>(a.Int("port"));
  const int stats_port = static_cast<int>(a.Int("stats-port", "0"));
  const std::string db = a.Str("db", "");
  const std::string sql = a.Str("sql", "");
  const std::string loader = a.Str("loader", "user");
  const std::string prefix = a.Str("prefix", "user:");
  const long long first = a.Int("first", "1");
  const long long count = a.Int("count", "20000");
  const int clients = static_cast<int>(a.Int("clients", "50"));
  const long long ttl_ms = a.Int("ttl-ms", "3600000");
  a.CheckAllUsed();
  if (mode != "readthru" && mode != "aside") Die("--mode must be readthru or aside");
  if (mode == "aside" && (db.empty() || sql.empty())) Die("--mode aside needs --db and --sql");
  if (count < 1 || clients < 1) Die("bad --count/--clients");

  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::atomic<long long> next{first}, queries{0}, errors{0}, nils{0};
  std::mutex err_mu;
  std::string first_error;
  const long long last = first + count - 1;
  std::vector<std::vector<uint32_t>> lats(clients);

  auto worker = [&](int ti) {
    Ctx c = Connect(host, port);
    std::unique_ptr<Query> q;
    if (mode == "aside") q = std::make_unique<Query>(db, sql);
    lats[ti].reserve(static_cast<size_t>(count / clients + 16));
    ready++;
    ready.notify_all();
    go.wait(false);
    for (;;) {
      long long id = next.fetch_add(1);
      if (id > last) return;
      std::string key = prefix + std::to_string(id);
      auto t0 = Clock::now();
      Reply r = Cmd(c.get(), "GET %s", key.c_str());
      if (!r) {
        errors++;
        std::fprintf(stderr, "readthru_loadgen: client %d: %s\n", ti, c->errstr);
        return;
      }
      if (r->type == REDIS_REPLY_ERROR) {
        errors++;
        std::lock_guard<std::mutex> g(err_mu);
        if (first_error.empty()) first_error = r->str;
      } else if (r->type == REDIS_REPLY_NIL) {
        if (mode == "readthru") {
          nils++;
        } else {
          std::optional<std::string> v = q->Run(id);
          queries++;
          if (!v) {
            nils++;
          } else {
            Reply s = Cmd(c.get(), "SET %s %b PX %lld", key.c_str(), v->data(), v->size(), ttl_ms);
            if (!s) {
              errors++;
              return;
            }
          }
        }
      }
      lats[ti].push_back(UsSince(t0));
    }
  };

  std::vector<std::thread> threads;
  threads.reserve(clients);
  for (int i = 0; i < clients; i++) threads.emplace_back(worker, i);
  for (int n = ready.load(); n < clients; n = ready.load()) ready.wait(n);
  Ctx sc;
  std::map<std::string, long long> st0, st1;
  if (stats_port != 0) {
    sc = Connect(host, stats_port);
    st0 = LoaderStats(sc.get(), loader);
  }
  auto t0 = Clock::now();
  go = true;
  go.notify_all();
  for (auto& t : threads) t.join();
  double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  if (sc) st1 = LoaderStats(sc.get(), loader);

  std::vector<uint32_t> all;
  for (auto& v : lats) all.insert(all.end(), v.begin(), v.end());
  Lat l = Percentiles(all);
  std::printf(
      "{\"bench\":\"cold\",\"mode\":\"%s\",\"clients\":%d,\"ops\":%zu,\"duration_s\":%.3f,"
      "\"ops_per_s\":%.1f,\"queries\":%lld,\"errors\":%lld,\"nils\":%lld,\"first_error\":\"%s\","
      "%s%s}\n",
      mode.c_str(), clients, all.size(), elapsed, static_cast<double>(all.size()) / elapsed,
      queries.load(), errors.load(), nils.load(), JsonEscape(first_error).c_str(),
      LatJson(l).c_str(), sc ? StatsJson(st0, st1).c_str() : "");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  loadgen::g_program = "readthru_loadgen";
  // SQLite as readthru configures it (backends/sqlite_backend.cc: no memory statistics, whose
  // process-wide mutex slows concurrent queries), so the application-side queries here cost
  // what readthru's do.
  sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  if (argc < 2) Die("usage: readthru_loadgen calibrate|stampede|cold --option value ...");
  std::string cmd = argv[1];
  Args a(argc, argv);
  if (cmd == "calibrate") return Calibrate(a);
  if (cmd == "stampede") return Stampede(a);
  if (cmd == "cold") return Cold(a);
  Die("unknown command: " + cmd);
}
