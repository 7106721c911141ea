#pragma once
// CacheRegistry: the configured backends, loaders and writers, made live. It opens every backend
// (read-only connections for the loaders; one read-write connection more when a writer uses it,
// since SQLite has one writer at a time anyway), prepares every loader's query and writer's
// statements once to check them (syntax, tables, columns, parameters the key template does not
// capture), and answers which loader or writer, if any, serves a key.
//
// Generations: a configuration reload opens a new registry beside the running one and makes it
// current; the old one lives on for the loads, writes and flushes that started with it, counted
// by RegistryRef (registry_ref.h), and frees itself when the last of them is done.
//
// Lifetime: open() (prepare(), then start()) blocks on the database files. prepare() runs on any
// one thread (a reload runs it off the loop); start() and everything else on the loop thread.
// close() closes the backends; every load still queued gets its callback (with an error) before
// the backends free themselves, so the loop must keep running until `done`.

#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "backends/sqlite_backend.h"
#include "proxy/config.h"
#include "proxy/loader.h"
#include "proxy/registry_ref.h"
#include "proxy/writer.h"

namespace readthru {

class CacheRegistry {
 public:
  struct Backend {
    const BackendConfig* config;      // the registry's own copy
    backends::SqliteBackend* sqlite;  // owned; freed by its close()
    backends::SqliteBackend* writer;  // read-write, one worker; nullptr when no writer uses it
  };

  CacheRegistry();
  ~CacheRegistry();
  CacheRegistry(const CacheRegistry&) = delete;
  CacheRegistry& operator=(const CacheRegistry&) = delete;

  // prepare() then start(). On failure returns false with *error naming the place in the config,
  // the loader or backend and the reason; whatever was opened is closed again (run the loop to
  // let it finish).
  [[nodiscard]] bool open(uv_loop_t* loop, const Config& config, std::string* error);
  // The blocking half of open(), on any one thread: opens the databases, checks every statement,
  // builds the loaders and writers; no loop is touched. On failure, as open(), but nothing is
  // left to close.
  [[nodiscard]] bool prepare(const Config& config, std::string* error);
  // The loop half: starts the backends' worker threads. On failure, as open().
  [[nodiscard]] bool start(uv_loop_t* loop, std::string* error);
  // Closes the backends. The loaders live on with the registry. `done` runs once they are all
  // closed (at once when they already are); calls after the first only add their `done`.
  void close(std::function<void()> done = nullptr);

  // The loaders and writers of `previous` with the same names hand their counters over: both
  // generations count into the same ones from now on, so statistics run on across a reload.
  // Backends of the same name go on from their predecessors' counters.
  void adoptStats(const CacheRegistry& previous);

  bool empty() const { return loaders_.empty(); }
  bool hasWriters() const { return !writers_.empty(); }
  // The first loader (in config order) whose template matches `key`; nullptr when none does.
  Loader* find(std::string_view key);
  const std::vector<std::unique_ptr<Loader>>& loaders() const { return loaders_; }
  const std::vector<Backend>& backends() const { return backends_; }
  size_t backendCount() const { return backend_configs_.size(); }
  // The first writer (in config order) whose template matches `key`; nullptr when none does.
  Writer* findWriter(std::string_view key);
  const std::vector<std::unique_ptr<Writer>>& writers() const { return writers_; }

  // RegistryRefs held now.
  size_t refs() const { return refs_; }
  // Registries not yet freed, for leak checks at exit.
  static size_t liveCount();
  // Closes the backends of every registry in use (held by a RegistryRef): the current one and
  // those a reload replaced that still have loads or writes in flight (at shutdown, so that
  // those end now).
  static void closeAll();

 private:
  friend class RegistryRef;
  // Every heap registry handed to a RegistryRef frees itself once the last one is gone.
  void release();
  void fail();
  void closeFinished();

  std::vector<BackendConfig> backend_configs_;
  std::vector<Backend> backends_;
  std::vector<std::unique_ptr<Loader>> loaders_;
  std::vector<std::unique_ptr<Writer>> writers_;
  KeyTemplate::Captures scratch_;
  size_t refs_ = 0;
  bool close_started_ = false;
  bool closed_ = false;
  size_t closing_left_ = 0;  // backends not yet closed
  std::vector<std::function<void()>> close_waiters_;
  CacheRegistry* prev_live_ = nullptr;  // every registry alive, for closeAll() and liveCount()
  CacheRegistry* next_live_ = nullptr;
};

}  // namespace readthru
