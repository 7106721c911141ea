#pragma once
// Loader: one [[loaders]] entry made live: the key template it serves, the query it runs on its
// backend, how a result row becomes a Redis value (string, JSON object or hash), the TTL it is
// stored with, the error texts its waiters get, and its counters.
//
// A loader never runs anything by itself: ReadThrough asks it for the query of a key, hands the
// query to the backend and gives the result back to decode().

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "backends/sqlite_backend.h"
#include "proxy/config.h"
#include "proxy/key_template.h"
#include "proxy/latency_histogram.h"

namespace readthru {

// What one load produced, shared by every waiter of that load.
struct LoadedValue {
  enum class Kind : uint8_t {
    kValue,   // value (string and json loaders) or fields (hash loaders)
    kAbsent,  // no row: a nil, remembered for negative_ttl
    kError,   // error holds the reply text without the leading '-'; nothing is cached
  };
  Kind kind = Kind::kAbsent;
  std::string value;
  std::vector<std::pair<std::string, std::string>> fields;  // column order
  std::string error;
  bool timed_out = false;  // a kError that is a timeout
};

// Counted per key looked up: an MGET of three keys counts three. See README "Read-through".
struct LoaderStats {
  uint64_t hits = 0;           // the key was in Redis
  uint64_t misses = 0;         // it was not: negative_hits + coalesced + loads + rejected
  uint64_t loads = 0;          // queries started
  uint64_t coalesced = 0;      // misses that joined a load in progress (or being filled)
  uint64_t negative_hits = 0;  // misses answered from the negative cache
  uint64_t errors = 0;         // loads that failed (SQL error, more than one row)
  uint64_t timeouts = 0;       // loads that took longer than the loader's timeout
  uint64_t rejected = 0;       // loads refused because the backend's queue was full
  uint64_t superseded = 0;     // loads not written to Redis because the key was written meanwhile
  uint64_t fills = 0;          // values written to Redis
  uint64_t refreshes = 0;      // values reloaded ahead of their expiry (refresh_ahead)
  LatencyHistogram latency;    // of loads that completed, from queueing to the result
};

class Loader {
 public:
  // `params` are the query's parameter names as the backend reported them (":id"); each must
  // name a capture of `tmpl` (the registry checks that before constructing).
  Loader(LoaderConfig config, KeyTemplate tmpl, backends::SqliteBackend* backend,
         const std::vector<std::string>& params);

  const LoaderConfig& config() const { return config_; }
  const std::string& name() const { return config_.name; }
  bool isHash() const { return config_.type == LoaderType::kHash; }
  const KeyTemplate& keyTemplate() const { return template_; }
  backends::SqliteBackend* backend() const { return backend_; }
  LoaderStats& stats() { return *stats_; }
  const LoaderStats& stats() const { return *stats_; }
  // Counts into `other`'s counters from now on (the loader of the same name in the registry a
  // reload replaced; see CacheRegistry::adoptStats).
  void shareStats(const Loader& other) { stats_ = other.stats_; }

  // True when `key` is this loader's; `scratch` is reused between calls (see KeyTemplate::match).
  bool match(std::string_view key, KeyTemplate::Captures* scratch) const {
    return template_.match(key, scratch);
  }
  // The query for a key that match()ed: captures bound by name, never pasted into the SQL.
  backends::SqlQuery query(std::string_view key) const;
  // Turns the backend's result into the value every waiter gets.
  LoadedValue decode(backends::SqlResult&& result) const;

  // Error texts, without the leading '-'.
  std::string failedError(std::string_view why) const;
  std::string timeoutError() const;
  std::string rejectedError(std::string_view why) const;

  // The TTL to store a value with: uniform in ttl +/- jitter; 0 for no expiry.
  uint64_t pickTtlMs(std::mt19937_64& rng) const;
  // The request that stores `v` (a kValue) under `key` only if the key is still absent, as one
  // atomic step: SET ... PX ttl NX for strings, a script for hashes.
  void encodeFill(std::string_view key, const LoadedValue& v, uint64_t ttl_ms,
                  std::string* out) const;

 private:
  struct Param {
    std::string name;  // as written in the SQL
    size_t capture;    // index into the template's captures
    bool integer;
  };

  LoaderConfig config_;
  KeyTemplate template_;
  backends::SqliteBackend* backend_;
  backends::SqlText sql_;
  std::vector<Param> params_;
  std::shared_ptr<LoaderStats> stats_ = std::make_shared<LoaderStats>();
};

// A column value as the bytes stored in Redis: integers in decimal, reals in the shortest form
// that reads back the same, text and blobs as they are. NULL is "".
std::string sqlValueBytes(const backends::SqlValue& v);
// The row as one JSON object; blobs become base64 strings (JSON strings must be text), and TEXT
// bytes that are not UTF-8 become U+FFFD.
std::string rowJson(const std::vector<std::string>& columns,
                    const std::vector<backends::SqlValue>& row);

}  // namespace readthru
