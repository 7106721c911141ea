#pragma once
// CacheRegistry: the configured backends, loaders and writers, made live at startup. It opens
// every backend (read-only connections for the loaders; one read-write connection more when a
// writer uses it, since SQLite has one writer at a time anyway), prepares every loader's query
// and writer's statements once to check them (syntax, tables, columns, parameters the key
// template does not capture), and answers which loader or writer, if any, serves a key.
//
// Lifetime: open() blocks on the database files (startup and --check-config only). close() closes
// the backends; every load still queued gets its callback (with an error) before the backends
// free themselves, so the loop must keep running until `done`.

#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "backends/sqlite_backend.h"
#include "proxy/config.h"
#include "proxy/loader.h"
#include "proxy/writer.h"

namespace readthru {

class CacheRegistry {
 public:
  struct Backend {
    const BackendConfig* config;
    backends::SqliteBackend* sqlite;  // owned; freed by its close()
    backends::SqliteBackend* writer;  // read-write, one worker; nullptr when no writer uses it
  };

  CacheRegistry() = default;
  CacheRegistry(const CacheRegistry&) = delete;
  CacheRegistry& operator=(const CacheRegistry&) = delete;

  // On failure returns false with *error naming the place in the config, the loader or backend
  // and the reason; whatever was opened is closed again (run the loop to let it finish).
  [[nodiscard]] bool open(uv_loop_t* loop, const Config& config, std::string* error);
  // Closes the backends. The loaders live on with the registry.
  void close(std::function<void()> done = nullptr);

  bool empty() const { return loaders_.empty(); }
  bool hasWriters() const { return !writers_.empty(); }
  // The first loader (in config order) whose template matches `key`; nullptr when none does.
  Loader* find(std::string_view key);
  const std::vector<std::unique_ptr<Loader>>& loaders() const { return loaders_; }
  const std::vector<Backend>& backends() const { return backends_; }
  // The first writer (in config order) whose template matches `key`; nullptr when none does.
  Writer* findWriter(std::string_view key);
  const std::vector<std::unique_ptr<Writer>>& writers() const { return writers_; }

 private:
  std::vector<Backend> backends_;
  std::vector<std::unique_ptr<Loader>> loaders_;
  std::vector<std::unique_ptr<Writer>> writers_;
  KeyTemplate::Captures scratch_;
};

}  // namespace readthru
