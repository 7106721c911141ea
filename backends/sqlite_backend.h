#pragma once
// SqliteBackend: runs SQL against one SQLite database on worker threads, so the event loop never
// waits for the disk or a slow query. The read-through loaders sit on top of it (design.md,
// "Read-through and single-flight").
//
//   loop thread                                 worker threads (one sqlite3 connection each)
//   query({sql, {":id", "42"}}, cb)
//     | false at once: queue full or closing
//     v
//   bounded queue (mutex + condvar) ---------> prepare (cached per connection, keyed by SQL text)
//                                               bind by name, step until done or the deadline
//                                                   |
//   cb(result) on the loop thread <-- uv_async <-- completed list
//
// Threads: every public member is for the loop thread only (the one whose loop was given to
// open()). Callbacks run there too, from the uv_async callback: never synchronously inside query()
// or close().
//
// Lifetime: open() hands the caller an object it owns until it calls close(). Every query that
// was accepted gets its callback exactly once, before close()'s done callback; the object frees
// itself in its uv_close callback, then calls done. The loop must keep running until then.

#include <uv.h>

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct sqlite3;

namespace readthru::backends {

// One value of a result row, as SQLite stored it: nothing is converted or lost.
struct SqlValue {
  enum class Type : uint8_t { kNull, kInteger, kReal, kText, kBlob };
  Type type = Type::kNull;
  int64_t integer = 0;  // kInteger
  double real = 0;      // kReal
  std::string bytes;    // kText (the stored bytes, may hold NULs) and kBlob
};

// A named parameter. The value is bound as text (SQLite's type affinity converts it where the
// column wants a number) or as a 64-bit integer when the caller asks; it never becomes SQL text.
struct SqlParam {
  enum class Kind : uint8_t { kText, kInteger, kNull };
  std::string name;  // as written in the SQL (":id", "@id", "$id"); a bare "id" means ":id"
  std::string value;
  Kind kind = Kind::kText;  // kInteger: value must be a decimal int64, or the query fails;
                            // kNull: SQL NULL, value unused
};

// A query's SQL text, shared: the queries made from one configured statement (a loader's, a
// writer's upsert) refer to one copy, so making and queueing a query never copies the text.
// Immutable once made; safe to share across threads.
class SqlText {
 public:
  // Implicit, so that a query is written as its text: SqlQuery{"SELECT 1", {}, 0, 0}.
  SqlText() = default;
  SqlText(std::string text) : text_(std::make_shared<const std::string>(std::move(text))) {}
  SqlText(const char* text) : SqlText(std::string(text)) {}
  const std::string& str() const { return text_ ? *text_ : empty(); }
  friend bool operator==(const SqlText& a, std::string_view b) { return a.str() == b; }

 private:
  static const std::string& empty() {
    static const std::string e;
    return e;
  }
  std::shared_ptr<const std::string> text_;
};

struct SqlQuery {
  SqlText sql;  // exactly one statement; positional parameters (?, ?1) are refused
  // Every parameter the statement uses must be given, and no other: an unbound parameter would
  // silently be NULL.
  std::vector<SqlParam> params;
  uint64_t timeout_ms = 0;  // 0: SqliteOptions::timeout_ms
  size_t max_rows = 0;      // 0: SqliteOptions::max_rows; more rows fail the query
};

// ok, or an error with a message; timed_out is a kind of error (the deadline passed). On error,
// columns and rows are empty: a partial result is never handed on.
struct SqlResult {
  bool ok = false;
  bool timed_out = false;
  std::string error;
  std::vector<std::string> columns;
  std::vector<std::vector<SqlValue>> rows;  // each row has columns.size() values
  uint64_t changes = 0;  // rows inserted, updated or deleted (sqlite3_changes), summed
};

struct SqliteOptions {
  std::string path;  // an existing database file; it is never created
  // false (loaders): SQLITE_OPEN_READONLY. true (writers): SQLITE_OPEN_READWRITE.
  bool read_write = false;
  size_t workers = 2;           // threads, each with its own connection; at least 1
  size_t queue_limit = 1024;    // queries waiting for a worker; query() refuses beyond it
  uint64_t timeout_ms = 1000;   // default deadline per query, from when a worker takes it; 0: none
  size_t max_rows = 10000;      // default row limit per query; 0: none
  size_t statement_cache = 64;  // prepared statements kept per connection; at least 1
  uint64_t cache_bytes = 0;     // page cache per connection (PRAGMA cache_size); 0: SQLite's
  // The workers' thread name, as top -H and /proc/<pid>/task/*/comm show it (Linux keeps 15
  // bytes); empty: the process's.
  std::string thread_name;
  // The workers' nice level, as nice(1) sets a process's: -20 (most favoured) to 19; 0 leaves
  // them at the process's. Below it needs CAP_SYS_NICE or room in RLIMIT_NICE: a worker that
  // cannot take it runs on as it is, and the first to fail calls `warn`.
  int nice = 0;
  // Called on a worker thread (so it must be thread-safe) with what could not be applied.
  std::function<void(const std::string&)> warn;
};

// Counters for INFO-style reporting. completed counts every callback run; errors and timeouts are
// subsets of it (errors excludes timeouts and includes queries cancelled by close()).
struct SqliteStats {
  size_t queued = 0;   // waiting for a worker now
  size_t running = 0;  // on a worker now
  uint64_t completed = 0;
  uint64_t errors = 0;
  uint64_t timeouts = 0;
  uint64_t rejected = 0;  // query() returned false
};

class SqliteBackend {
 public:
  // Runs on the loop thread with the result, which the callee may move from.
  using Callback = std::function<void(SqlResult&& result)>;
  using DoneCallback = std::function<void()>;

  // The error text of queries cancelled or interrupted by close().
  static constexpr std::string_view kClosedError = "backend closed";

  // Opens every connection (and a probe connection for validate()) and starts the workers. Blocks
  // on the database file, so it is for startup and configuration, not the data path. On failure
  // returns nullptr with *error set; an object that had started threads then frees itself when
  // the loop next runs. The same as create() then start().
  [[nodiscard]] static SqliteBackend* open(uv_loop_t* loop, SqliteOptions options,
                                           std::string* error);
  // The blocking half of open(), for any one thread (a configuration reload runs it off the
  // loop): opens the connections, touches no loop and starts no thread. validate() works on the
  // result; query() does not until start(). On failure returns nullptr with *error set. Both wait
  // (up to 10 s) for a lock another connection holds on the database.
  [[nodiscard]] static SqliteBackend* create(SqliteOptions options, std::string* error);
  // The loop half, on the loop thread: binds the object to `loop` and starts the workers. On
  // failure returns false with *error set, and the object is closing (as after close()): the
  // caller must not use it again.
  [[nodiscard]] bool start(uv_loop_t* loop, std::string* error);

  SqliteBackend(const SqliteBackend&) = delete;
  SqliteBackend& operator=(const SqliteBackend&) = delete;

  // Prepares `sql` on the probe connection without running it: reports SQL errors (syntax, unknown
  // tables or columns, more than one statement, positional parameters) in *error, and otherwise
  // the parameter names the statement uses, as written (":id"), in order of first use. Blocks on
  // the database file: for startup and configuration checks.
  [[nodiscard]] bool validate(std::string_view sql, std::vector<std::string>* param_names,
                              std::string* error);

  // Queues `query`. Returns false at once, without calling `cb`, when the queue is full or the
  // backend is closing (*error, when given, says which). Otherwise `cb` runs exactly once, later.
  [[nodiscard]] bool query(SqlQuery query, Callback cb, std::string* error = nullptr);
  // As query(), for several statements run as one transaction (BEGIN IMMEDIATE ... COMMIT): all
  // take effect or none. The first statement's timeout_ms and max_rows apply to the whole; the
  // result holds the rows of the last statement and the changes of all.
  [[nodiscard]] bool transaction(std::vector<SqlQuery> statements, Callback cb,
                                 std::string* error = nullptr);

  // Stops accepting queries. Queued ones are cancelled and running ones interrupted; their
  // callbacks still run, with kClosedError. Once every worker has exited, the threads are joined,
  // the uv_async handle is closed, the object is freed and then `done` runs (when given). Calls
  // after the first are ignored. An object that was never start()ed is freed at once, and `done`
  // runs before close() returns.
  void close(DoneCallback done = nullptr);

  bool closing() const { return closing_; }
  SqliteStats stats() const;
  // A reload's backend of the same name goes on from its predecessor's counters (completed,
  // errors, timeouts, rejected), so INFO and the metrics never go backwards. What the
  // predecessor finishes after this call is not carried over. Loop thread, before any query.
  void continueCounters(const SqliteBackend& previous);
  const SqliteOptions& options() const { return options_; }

  // Objects not yet freed, for leak checks at shutdown.
  static size_t liveCount();

 private:
  struct Worker;
  struct Request {
    SqlQuery query;
    Callback callback;
    SqlResult result;
    std::vector<SqlQuery> batch;  // a transaction (then `query` is unused)
  };

  explicit SqliteBackend(SqliteOptions options);
  ~SqliteBackend();
  bool enqueue(Request&& req, std::string* error);
  void workerMain(Worker* worker);
  void onAsync();
  void finishCloseIfDone();

  SqliteOptions options_;
  uv_async_t async_;          // workers -> loop: results are ready, or a worker has exited
  sqlite3* probe_ = nullptr;  // loop thread only: validate()
  std::vector<std::unique_ptr<Worker>> workers_;
  size_t started_ = 0;  // workers whose thread is running (or has run)

  // Loop thread only.
  bool started_loop_ = false;  // start() bound async_ to a loop
  bool closing_ = false;
  bool handle_closing_ = false;
  DoneCallback done_callback_;
  uint64_t completed_ = 0;
  uint64_t errors_ = 0;
  uint64_t timeouts_ = 0;
  uint64_t rejected_ = 0;

  // Shared with the workers, under mu_. stopping_ is also read without the lock by a running
  // statement's progress handler, to interrupt it.
  mutable std::mutex mu_;
  std::condition_variable work_cv_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> nice_warned_{false};  // options_.warn was called about options_.nice
  std::deque<Request> queue_;
  std::deque<Request> completed_list_;
  size_t running_ = 0;
  size_t exited_ = 0;
};

}  // namespace readthru::backends
