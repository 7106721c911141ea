#include "backends/sqlite_backend.h"

#include <pthread.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <climits>
#include <cstring>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>

namespace readthru::backends {
namespace {

using Clock = std::chrono::steady_clock;

std::atomic<size_t> g_live{0};

// VM instructions between deadline checks. A check is one clock read (tens of nanoseconds) and a
// thousand instructions run in microseconds, so a deadline is overshot by far less than 1 ms.
constexpr int kProgressOps = 1000;
// Longer deadlines are cut to a year: the clock arithmetic stays far from overflow.
constexpr uint64_t kMaxTimeoutMs = 365ULL * 24 * 3600 * 1000;
// Longest single sleep while another connection holds a lock the statement needs.
constexpr int kMaxBusySleepMs = 10;
// How long create() and validate() wait for a lock another connection holds.
constexpr uint64_t kProbeBusyTimeoutMs = 10000;

std::string sqliteError(sqlite3* db, int rc) {
  return db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
}

// Runs before SQLite's first use in the process (the first connection is a probe opened on the
// loop thread, before any worker starts). Memory statistics go off: with them on, every
// sqlite3_malloc and sqlite3_free takes one process-wide mutex, and Debian builds SQLite without
// lookaside memory, so a query allocates often and the worker threads queue on that mutex (two
// threads running one recursive query each took 1.3-2x as long as one alone, here; with the
// statistics off, about as long). readthru reads none of those statistics. Fails harmlessly
// (SQLITE_MISUSE) if SQLite is already in use.
void configureLibraryOnce() {
  static const int rc = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  (void)rc;
}

sqlite3* openConnection(const SqliteOptions& options, std::string* error) {
  configureLibraryOnce();
  int flags =
      (options.read_write ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY) | SQLITE_OPEN_NOMUTEX;
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(options.path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    *error = "cannot open " + options.path + ": " + sqliteError(db, rc);
    sqlite3_close_v2(db);
    return nullptr;
  }
  if (options.cache_bytes > 0) {
    // A negative cache_size is in KiB. Pages are cached as they are read, so an idle or small
    // database costs nothing near the limit.
    uint64_t kib = std::max<uint64_t>(1, options.cache_bytes / 1024);
    std::string pragma = "PRAGMA cache_size = -" + std::to_string(kib);
    rc = sqlite3_exec(db, pragma.c_str(), nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) {
      *error = "cannot set cache_size on " + options.path + ": " + sqliteError(db, rc);
      sqlite3_close_v2(db);
      return nullptr;
    }
  }
  return db;
}

// Prepares exactly one statement from `sql`: an empty text or a second statement is an error (the
// tail would otherwise be ignored without a word).
sqlite3_stmt* prepareOne(sqlite3* db, std::string_view sql, unsigned flags, std::string* error) {
  if (sql.size() > INT_MAX) {
    *error = "SQL text too long";
    return nullptr;
  }
  sqlite3_stmt* stmt = nullptr;
  const char* tail = nullptr;
  int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()), flags, &stmt, &tail);
  if (rc != SQLITE_OK) {
    *error = sqliteError(db, rc);
    return nullptr;
  }
  if (stmt == nullptr) {
    *error = "empty SQL statement";
    return nullptr;
  }
  const char* end = sql.data() + sql.size();
  if (tail != nullptr && tail < end) {
    // Whitespace, semicolons and comments prepare to no statement.
    sqlite3_stmt* extra = nullptr;
    rc = sqlite3_prepare_v3(db, tail, static_cast<int>(end - tail), 0, &extra, nullptr);
    sqlite3_finalize(extra);
    if (rc != SQLITE_OK || extra != nullptr) {
      sqlite3_finalize(stmt);
      *error = "only one SQL statement is allowed";
      return nullptr;
    }
  }
  return stmt;
}

// The statement's parameters must all be named: a positional one could not be bound by name.
bool checkNamedParameters(sqlite3_stmt* stmt, std::vector<std::string>* names, std::string* error) {
  int count = sqlite3_bind_parameter_count(stmt);
  for (int i = 1; i <= count; ++i) {
    const char* name = sqlite3_bind_parameter_name(stmt, i);
    if (name == nullptr || name[0] == '?') {
      *error = "positional parameter " + (name != nullptr ? std::string(name) : "?") +
               " is not supported; use a named one (:name)";
      return false;
    }
    if (names != nullptr) names->emplace_back(name);
  }
  return true;
}

std::string parameterName(const std::string& name) {
  if (!name.empty() && (name[0] == ':' || name[0] == '@' || name[0] == '$')) return name;
  return ":" + name;
}

// Binds every parameter by name. Text is bound SQLITE_STATIC: the values belong to the request,
// which outlives the statement's use, and the bindings are cleared before the request goes.
bool bindParameters(sqlite3* db, sqlite3_stmt* stmt, const std::vector<SqlParam>& params,
                    std::string* error) {
  int count = sqlite3_bind_parameter_count(stmt);
  std::vector<bool> bound(static_cast<size_t>(count) + 1, false);
  for (const SqlParam& p : params) {
    std::string name = parameterName(p.name);
    int index = sqlite3_bind_parameter_index(stmt, name.c_str());
    if (index == 0) {
      *error = "the statement has no parameter " + name;
      return false;
    }
    int rc;
    if (p.kind == SqlParam::Kind::kInteger) {
      int64_t v = 0;
      const char* end = p.value.data() + p.value.size();
      auto [ptr, ec] = std::from_chars(p.value.data(), end, v);
      if (ec != std::errc() || ptr != end || p.value.empty()) {
        *error = "parameter " + name + " is not an integer";
        return false;
      }
      rc = sqlite3_bind_int64(stmt, index, v);
    } else if (p.kind == SqlParam::Kind::kNull) {
      rc = sqlite3_bind_null(stmt, index);
    } else {
      rc = sqlite3_bind_text64(stmt, index, p.value.data(), p.value.size(), SQLITE_STATIC,
                               SQLITE_UTF8);
    }
    if (rc != SQLITE_OK) {
      *error = "parameter " + name + ": " + sqliteError(db, rc);
      return false;
    }
    bound[index] = true;
  }
  for (int i = 1; i <= count; ++i) {
    if (!bound[i]) {
      const char* name = sqlite3_bind_parameter_name(stmt, i);
      *error = "parameter " + std::string(name != nullptr ? name : "?") + " is not bound";
      return false;
    }
  }
  return true;
}

SqlValue readColumn(sqlite3_stmt* stmt, int i) {
  SqlValue v;
  switch (sqlite3_column_type(stmt, i)) {
    case SQLITE_INTEGER:
      v.type = SqlValue::Type::kInteger;
      v.integer = sqlite3_column_int64(stmt, i);
      break;
    case SQLITE_FLOAT:
      v.type = SqlValue::Type::kReal;
      v.real = sqlite3_column_double(stmt, i);
      break;
    case SQLITE_TEXT: {
      v.type = SqlValue::Type::kText;
      // The pointer first, then the length (sqlite.org c3ref/column_blob.html).
      const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, i));
      int n = sqlite3_column_bytes(stmt, i);
      if (text != nullptr && n > 0) v.bytes.assign(text, static_cast<size_t>(n));
      break;
    }
    case SQLITE_BLOB: {
      v.type = SqlValue::Type::kBlob;
      const auto* blob = static_cast<const char*>(sqlite3_column_blob(stmt, i));
      int n = sqlite3_column_bytes(stmt, i);
      if (blob != nullptr && n > 0) v.bytes.assign(blob, static_cast<size_t>(n));
      break;
    }
    default:
      break;
  }
  return v;
}

}  // namespace

// One worker thread and what only it touches while it runs: its connection, its prepared
// statements and the deadline of the statement in progress. The loop thread touches them only
// before the thread starts and after it has been joined.
struct SqliteBackend::Worker {
  enum class Abort { kNone, kDeadline, kClosed };

  explicit Worker(SqliteBackend* owner_in) : owner(owner_in) {}
  ~Worker() {
    for (auto& entry : statements) sqlite3_finalize(entry.second);
    sqlite3_close_v2(db);
  }
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void install() {
    sqlite3_progress_handler(db, kProgressOps, &Worker::onProgress, this);
    sqlite3_busy_handler(db, &Worker::onBusy, this);
  }

  // Non-zero interrupts the statement (SQLITE_INTERRUPT); `abort` says why.
  static int onProgress(void* arg) { return static_cast<Worker*>(arg)->shouldAbort() ? 1 : 0; }

  // Another connection holds a lock: wait a little and retry, up to the deadline. A busy wait
  // calls no progress handler, so the deadline is checked here too.
  static int onBusy(void* arg, int count) {
    auto* self = static_cast<Worker*>(arg);
    if (self->shouldAbort()) return 0;
    auto sleep = std::chrono::milliseconds(std::min(count + 1, kMaxBusySleepMs));
    std::this_thread::sleep_for(std::min<Clock::duration>(sleep, self->deadline - Clock::now()));
    return self->shouldAbort() ? 0 : 1;
  }

  bool shouldAbort() {
    if (rolling_back) return false;
    if (owner->stopping_.load(std::memory_order_relaxed)) {
      abort = Abort::kClosed;
      return true;
    }
    if (Clock::now() >= deadline) {
      abort = Abort::kDeadline;
      return true;
    }
    return false;
  }

  // The cached statement for `sql`, prepared on a miss. The cache is a bound, not a policy: the
  // SQL texts come from configuration and are few, so evicting any entry when full is enough.
  sqlite3_stmt* statement(const std::string& sql, std::string* error) {
    auto it = statements.find(sql);
    if (it != statements.end()) return it->second;
    sqlite3_stmt* stmt = prepareOne(db, sql, SQLITE_PREPARE_PERSISTENT, error);
    if (stmt == nullptr) return nullptr;
    if (!checkNamedParameters(stmt, nullptr, error)) {
      sqlite3_finalize(stmt);
      return nullptr;
    }
    if (statements.size() >= owner->options_.statement_cache) {
      sqlite3_finalize(statements.begin()->second);
      statements.erase(statements.begin());
    }
    statements.emplace(sql, stmt);
    return stmt;
  }

  // Steps one statement to the end. On failure returns false with *error set (a deadline or
  // close is recorded in `abort`).
  bool runOne(const SqlQuery& q, size_t max_rows, SqlResult* r, std::string* error) {
    bool ok = false;
    if (sqlite3_stmt* stmt = statement(q.sql.str(), error)) {
      if (bindParameters(db, stmt, q.params, error)) {
        int columns = sqlite3_column_count(stmt);
        r->columns.clear();
        r->columns.reserve(static_cast<size_t>(columns));
        for (int i = 0; i < columns; ++i) {
          const char* name = sqlite3_column_name(stmt, i);
          r->columns.emplace_back(name != nullptr ? name : "");
        }
        int rc;
        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
          if (max_rows != 0 && r->rows.size() >= max_rows) {
            *error = "more than " + std::to_string(max_rows) + " rows";
            break;
          }
          std::vector<SqlValue>& row = r->rows.emplace_back();
          row.reserve(static_cast<size_t>(columns));
          for (int i = 0; i < columns; ++i) row.push_back(readColumn(stmt, i));
        }
        if (rc == SQLITE_DONE) {
          ok = true;
          r->changes += static_cast<uint64_t>(sqlite3_changes(db));
        } else if (rc != SQLITE_ROW) {
          *error = sqliteError(db, rc);
        }
      }
      // Ready for the next use, and no binding points into this request any more.
      sqlite3_reset(stmt);
      sqlite3_clear_bindings(stmt);
    }
    return ok;
  }

  bool exec(const char* sql, std::string* error) {
    int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
    if (rc == SQLITE_OK) return true;
    *error = sqliteError(db, rc);
    return false;
  }

  void execute(Request* req) {
    const SqlQuery& q = req->batch.empty() ? req->query : req->batch.front();
    SqlResult& r = req->result;
    const SqliteOptions& options = owner->options_;
    uint64_t timeout_ms =
        std::min(q.timeout_ms != 0 ? q.timeout_ms : options.timeout_ms, kMaxTimeoutMs);
    size_t max_rows = q.max_rows != 0 ? q.max_rows : options.max_rows;
    abort = Abort::kNone;
    deadline = timeout_ms != 0 ? Clock::now() + std::chrono::milliseconds(timeout_ms)
                               : Clock::time_point::max();

    std::string error;
    bool ok;
    if (req->batch.empty()) {
      ok = runOne(q, max_rows, &r, &error);
    } else {
      // One transaction: all statements or none. BEGIN IMMEDIATE takes the write lock up front,
      // so a busy database is waited for (up to the deadline) before anything runs.
      ok = exec("BEGIN IMMEDIATE", &error);
      for (size_t i = 0; ok && i < req->batch.size(); ++i) {
        r.rows.clear();
        ok = runOne(req->batch[i], max_rows, &r, &error);
      }
      if (ok) ok = exec("COMMIT", &error);
      if (!ok && !sqlite3_get_autocommit(db)) {
        // The rollback must not be interrupted by the deadline that ended the transaction.
        rolling_back = true;
        std::string ignored;
        exec("ROLLBACK", &ignored);
        rolling_back = false;
      }
    }
    deadline = Clock::time_point::max();

    if (ok) {
      r.ok = true;
      return;
    }
    r.ok = false;
    r.columns.clear();
    r.rows.clear();
    r.changes = 0;
    if (abort == Abort::kClosed) {
      r.error = kClosedError;
    } else if (abort == Abort::kDeadline) {
      r.timed_out = true;
      r.error = "query timed out after " + std::to_string(timeout_ms) + " ms";
    } else {
      r.error = std::move(error);
    }
  }

  SqliteBackend* owner;
  sqlite3* db = nullptr;
  std::thread thread;
  std::unordered_map<std::string, sqlite3_stmt*> statements;
  Clock::time_point deadline = Clock::time_point::max();
  Abort abort = Abort::kNone;
  bool rolling_back = false;
};

size_t SqliteBackend::liveCount() { return g_live.load(); }

SqliteBackend::SqliteBackend(SqliteOptions options) : options_(std::move(options)) {
  ++g_live;
  options_.workers = std::max<size_t>(options_.workers, 1);
  options_.statement_cache = std::max<size_t>(options_.statement_cache, 1);
  async_.data = this;
}

SqliteBackend::~SqliteBackend() {
  workers_.clear();  // joined already; closes each connection
  sqlite3_close_v2(probe_);
  --g_live;
}

SqliteBackend* SqliteBackend::open(uv_loop_t* loop, SqliteOptions options, std::string* error) {
  SqliteBackend* backend = create(std::move(options), error);
  if (backend == nullptr || !backend->start(loop, error)) return nullptr;
  return backend;
}

SqliteBackend* SqliteBackend::create(SqliteOptions options, std::string* error) {
  if (sqlite3_threadsafe() == 0) {
    *error = "the SQLite library was built without thread support";
    return nullptr;
  }
  // Frees the object on the early returns below; it owns no handle and no thread yet.
  auto destroy = [](SqliteBackend* backend) { delete backend; };
  std::unique_ptr<SqliteBackend, decltype(destroy)> self(new SqliteBackend(std::move(options)),
                                                         destroy);

  // The probe connection also proves the file is a database before any worker starts.
  self->probe_ = openConnection(self->options_, error);
  if (self->probe_ == nullptr) return nullptr;
  // Reading the schema waits out a writer that holds the database (a running readthru's, when a
  // reload opens it again) rather than failing on the lock.
  sqlite3_busy_timeout(self->probe_, static_cast<int>(kProbeBusyTimeoutMs));
  sqlite3_stmt* check = prepareOne(self->probe_, "SELECT 1 FROM sqlite_master LIMIT 1", 0, error);
  if (check == nullptr) {
    *error = "cannot use " + self->options_.path + ": " + *error;
    return nullptr;
  }
  int rc = sqlite3_step(check);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
    *error = "cannot use " + self->options_.path + ": " + sqliteError(self->probe_, rc);
    sqlite3_finalize(check);
    return nullptr;
  }
  sqlite3_finalize(check);

  for (size_t i = 0; i < self->options_.workers; ++i) {
    auto worker = std::make_unique<Worker>(self.get());
    worker->db = openConnection(self->options_, error);
    if (worker->db == nullptr) return nullptr;
    worker->install();
    self->workers_.push_back(std::move(worker));
  }
  return self.release();
}

bool SqliteBackend::start(uv_loop_t* loop, std::string* error) {
  int uv_rc = uv_async_init(loop, &async_, [](uv_async_t* handle) {
    static_cast<SqliteBackend*>(handle->data)->onAsync();
  });
  if (uv_rc != 0) {
    *error = std::string("uv_async_init: ") + uv_strerror(uv_rc);
    close();  // the handle was not registered: frees the object now
    return false;
  }
  started_loop_ = true;

  // From here on the handle is live: failures end through close(), freed when the loop runs.
  for (auto& worker : workers_) {
    Worker* w = worker.get();
    // std::thread reports failure only by throwing; this is configuration, not the data path.
    try {
      w->thread = std::thread([this, w] { workerMain(w); });
    } catch (const std::system_error& e) {
      *error = std::string("cannot start a SQLite worker thread: ") + e.what();
      close();
      return false;
    }
    ++started_;
  }
  return true;
}

bool SqliteBackend::validate(std::string_view sql, std::vector<std::string>* param_names,
                             std::string* error) {
  if (closing_) {
    *error = kClosedError;
    return false;
  }
  sqlite3_stmt* stmt = prepareOne(probe_, sql, 0, error);
  if (stmt == nullptr) return false;
  std::vector<std::string> names;
  bool ok = checkNamedParameters(stmt, &names, error);
  sqlite3_finalize(stmt);
  if (ok && param_names != nullptr) *param_names = std::move(names);
  return ok;
}

bool SqliteBackend::transaction(std::vector<SqlQuery> statements, Callback cb, std::string* error) {
  if (statements.empty()) statements.push_back(SqlQuery{"SELECT 1", {}, 0, 0});
  return enqueue(Request{{}, std::move(cb), {}, std::move(statements)}, error);
}

bool SqliteBackend::query(SqlQuery query, Callback cb, std::string* error) {
  return enqueue(Request{std::move(query), std::move(cb), {}, {}}, error);
}

bool SqliteBackend::enqueue(Request&& req, std::string* error) {
  if (closing_ || !started_loop_) {
    ++rejected_;
    if (error != nullptr) *error = kClosedError;
    return false;
  }
  {
    std::lock_guard lock(mu_);
    if (queue_.size() >= options_.queue_limit) {
      ++rejected_;
      if (error != nullptr) {
        *error = "queue full (" + std::to_string(options_.queue_limit) + " queries waiting)";
      }
      return false;
    }
    queue_.push_back(std::move(req));
  }
  work_cv_.notify_one();
  return true;
}

void SqliteBackend::workerMain(Worker* worker) {
  if (!options_.thread_name.empty()) {
    pthread_setname_np(pthread_self(), options_.thread_name.substr(0, 15).c_str());
  }
  // On Linux a PRIO_PROCESS id that names a thread sets that thread's nice level alone.
  if (options_.nice != 0 &&
      setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), options_.nice) != 0) {
    int e = errno;
    if (options_.warn && !nice_warned_.exchange(true)) {
      // The loaders' and the writers' workers of one backend are two pools: the name tells which.
      std::string whose = options_.thread_name.empty()
                              ? "the workers'"
                              : "the " + options_.thread_name + " workers'";
      options_.warn("cannot set " + whose + " nice level to " + std::to_string(options_.nice) +
                    " (" + std::strerror(e) +
                    "; below 0 needs CAP_SYS_NICE or LimitNICE=): they run at the process's");
    }
  }
  std::unique_lock lock(mu_);
  for (;;) {
    work_cv_.wait(lock, [this] { return stopping_.load() || !queue_.empty(); });
    if (stopping_.load()) break;  // close() took what was queued
    Request req = std::move(queue_.front());
    queue_.pop_front();
    ++running_;
    lock.unlock();

    worker->execute(&req);

    lock.lock();
    --running_;
    completed_list_.push_back(std::move(req));
    lock.unlock();
    uv_async_send(&async_);
    lock.lock();
  }
  ++exited_;
  lock.unlock();
  // The loop joins this thread before it closes the handle, so the handle outlives this call.
  uv_async_send(&async_);
}

void SqliteBackend::onAsync() {
  // uv_async_send calls coalesce: take everything that is ready.
  for (;;) {
    std::deque<Request> batch;
    {
      std::lock_guard lock(mu_);
      batch.swap(completed_list_);
    }
    if (batch.empty()) break;
    for (Request& req : batch) {
      ++completed_;
      if (req.result.timed_out) {
        ++timeouts_;
      } else if (!req.result.ok) {
        ++errors_;
      }
      // May call query() or close(); the object stays alive until its uv_close callback.
      if (req.callback) req.callback(std::move(req.result));
    }
  }
  finishCloseIfDone();
}

void SqliteBackend::close(DoneCallback done) {
  if (closing_) return;
  closing_ = true;
  if (!started_loop_) {
    // No handle, no thread, nothing queued (query() needs start()): nothing to wait for.
    delete this;
    if (done) done();
    return;
  }
  done_callback_ = std::move(done);
  {
    std::lock_guard lock(mu_);
    stopping_.store(true);
    for (Request& req : queue_) {
      req.result.error = kClosedError;
      completed_list_.push_back(std::move(req));
    }
    queue_.clear();
  }
  work_cv_.notify_all();
  // Delivers the cancelled callbacks even if no worker was ever started.
  uv_async_send(&async_);
}

void SqliteBackend::finishCloseIfDone() {
  if (!closing_ || handle_closing_) return;
  {
    std::lock_guard lock(mu_);
    if (exited_ < started_ || !completed_list_.empty()) return;
  }
  // Every started thread has left its loop and only returns now: these joins do not wait.
  for (auto& worker : workers_) {
    if (worker->thread.joinable()) worker->thread.join();
  }
  handle_closing_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&async_), [](uv_handle_t* handle) {
    auto* self = static_cast<SqliteBackend*>(handle->data);
    DoneCallback done = std::move(self->done_callback_);
    delete self;
    if (done) done();
  });
}

void SqliteBackend::continueCounters(const SqliteBackend& previous) {
  completed_ += previous.completed_;
  errors_ += previous.errors_;
  timeouts_ += previous.timeouts_;
  rejected_ += previous.rejected_;
}

SqliteStats SqliteBackend::stats() const {
  SqliteStats s;
  {
    std::lock_guard lock(mu_);
    s.queued = queue_.size();
    s.running = running_;
  }
  s.completed = completed_;
  s.errors = errors_;
  s.timeouts = timeouts_;
  s.rejected = rejected_;
  return s;
}

}  // namespace readthru::backends
