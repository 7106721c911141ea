#pragma once
// Writer: one [[writers]] entry made live: the key template it owns, the upsert and delete
// statements it runs on its backend's read-write connection, how a Redis value binds to them,
// its error texts and its counters. Write-through (write_through.h) and write-behind
// (write_behind.h) decide when the statements run.
//
// Binding: template captures bind by name (":id"); `:value` binds a string write's value; any
// other parameter of the upsert binds the hash field of that name, NULL when the hash has none.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "backends/sqlite_backend.h"
#include "proxy/config.h"
#include "proxy/key_template.h"

namespace readthru {

// A key's value as a writer stores it.
struct WriteState {
  enum class Kind : uint8_t { kString, kHash, kDeleted };
  Kind kind = Kind::kDeleted;
  std::string value;                                        // kString
  std::vector<std::pair<std::string, std::string>> fields;  // kHash
};

struct WriterStats {
  uint64_t writes = 0;        // client write commands on the writer's keys
  uint64_t db_writes = 0;     // rows upserted or deleted
  uint64_t errors = 0;        // failed database writes (timeouts apart)
  uint64_t timeouts = 0;      // database writes past the writer's timeout
  uint64_t batches = 0;       // write-behind transactions committed
  uint64_t coalesced = 0;     // write-behind writes absorbed by a later write to their key
  uint64_t retries = 0;       // write-behind batches or entries tried again
  uint64_t dead_letters = 0;  // write-behind entries moved to the dead-letter stream
};

class Writer {
 public:
  // `upsert_params` and `delete_params` are the statements' parameter names as the backend
  // reported them; the registry has checked that delete uses captures only.
  Writer(WriterConfig config, KeyTemplate tmpl, backends::SqliteBackend* backend,
         const std::vector<std::string>& upsert_params,
         const std::vector<std::string>& delete_params);

  const WriterConfig& config() const { return config_; }
  const std::string& name() const { return config_.name; }
  bool behind() const { return config_.mode == WriteMode::kBehind; }
  backends::SqliteBackend* backend() const { return backend_; }
  WriterStats& stats() { return *stats_; }
  const WriterStats& stats() const { return *stats_; }
  // Counts into `other`'s counters from now on (see CacheRegistry::adoptStats).
  void shareStats(const Writer& other) { stats_ = other.stats_; }
  bool match(std::string_view key, KeyTemplate::Captures* scratch) const {
    return template_.match(key, scratch);
  }

  // The statement that makes the database hold `state` for `key` (a match()ed key): the upsert,
  // or the delete for kDeleted. The state's value and fields move into the parameters.
  backends::SqlQuery statement(std::string_view key, WriteState state) const;

  std::string failedError(std::string_view why) const;
  std::string timeoutError() const;

 private:
  struct Param {
    enum class Source : uint8_t { kCapture, kValue, kField };
    std::string name;  // as written in the SQL
    Source source;
    size_t capture;  // kCapture
    bool integer;    // kCapture of an {name:int}
    bool last_use;   // kValue, kField: no later parameter binds the same value, so it may move
  };
  std::vector<Param> plan(const std::vector<std::string>& params) const;

  WriterConfig config_;
  KeyTemplate template_;
  backends::SqliteBackend* backend_;
  backends::SqlText upsert_sql_;
  backends::SqlText delete_sql_;
  std::vector<Param> upsert_;
  std::vector<Param> delete_;
  std::shared_ptr<WriterStats> stats_ = std::make_shared<WriterStats>();
};

}  // namespace readthru
