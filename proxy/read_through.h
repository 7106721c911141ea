#pragma once
// ReadThrough: the read-through engine (design.md, "Read-through and single-flight").
//
//   GET user:42 -> intercept(): a loader serves the key -> a ReadThroughRequest sees the reply
//   Redis has it ----------------------------------------> the reply goes out as is (a hit)
//   nil -> miss(): negative cache? ----------------------> nil, no query
//               a flight for the key? -------------------> wait for it (coalesced)
//               otherwise a new flight: the loader's query on its backend's worker threads
//   result: every waiter answered; a value is written to Redis (SET ... PX ttl NX, or a script
//           for hashes) unless a write to the key came meanwhile; an absent row is remembered
//   error, timeout, full queue: every waiter gets -ERR naming the loader; nothing is cached
//
// Threads: the loop thread only; SQL runs on the backends' workers and comes back through their
// uv_async. Ownership: flights and requests free themselves (see single_flight.h and
// read_through_request.h); the engine's timer is closed by close().

#include <uv.h>

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "backends/reply_target.h"
#include "proxy/cache_registry.h"
#include "proxy/config.h"
#include "proxy/negative_cache.h"
#include "proxy/refresh_table.h"
#include "proxy/single_flight.h"
#include "proxy/slot_interceptor.h"
#include "proxy/slowlog.h"
#include "resp/command_table.h"
#include "resp/request_parser.h"

namespace readthru {

class UpstreamPool;
class ReadThroughRequest;
class WriteBehind;

class ReadThrough {
 public:
  ReadThrough(uv_loop_t* loop, const Config& config, CacheRegistry* registry, UpstreamPool* pool);
  ~ReadThrough();
  ReadThrough(const ReadThrough&) = delete;
  ReadThrough& operator=(const ReadThrough&) = delete;

  // True when any loader is configured: only then is anything intercepted.
  bool active() const { return !registry_->empty(); }
  // For GET, MGET (string and json loaders) and HGET, HMGET, HGETALL (hash loaders) with at
  // least one key a loader serves: the interceptor for the command's slot. nullptr otherwise.
  // `protocol` is the client's, for the reply readthru may write in Redis's place.
  // A GET is not intercepted when `on_nil` is given, unless its key is due for refresh-ahead:
  // *on_nil is set to the loader instead, and the reply's slot asks interceptNil() only if Redis
  // answers nil, so a hit costs no more than forwarding and a look-up.
  SlotInterceptor* intercept(const resp::Command& cmd, const resp::CommandInfo* info, int protocol,
                             Loader** on_nil = nullptr);
  // The interceptor for a GET of `key` whose reply was nil (nullptr once closed). `registry`
  // owns `loader`: the registry that was current when the GET was sent.
  SlotInterceptor* interceptNil(RegistryRef registry, Loader* loader, std::string_view key,
                                int protocol);

  // A reload: `registry` is current from now on (requests already under way keep theirs), with
  // the negative cache bounded by `negative_cache_entries`. Keys remembered as absent are
  // forgotten when a loader's query, template, type or database changed.
  void setRegistry(CacheRegistry* registry, size_t negative_cache_entries);

  // Whether writes need to be reported at all (a load in flight, an absent key remembered, a key
  // due for refresh-ahead).
  bool watchingWrites() const {
    return !flights_.empty() || !negative_.empty() || !refresh_.empty() || !snapshots_.empty();
  }
  // A write through readthru (a command with the write flag, on db 0): loads of its keys in
  // flight are superseded and the keys are no longer remembered as absent. FLUSHALL, FLUSHDB and
  // SWAPDB touch every key.
  void noteWrite(const std::vector<std::string_view>& argv, const resp::CommandInfo* info);
  // One key written (a write-through's database commit).
  void noteKeyWritten(std::string_view key);

  // From ReadThroughRequest: key `index` of `request` is missing in Redis. The request gets
  // onLoaded(index, ...) exactly once, possibly before this returns.
  void miss(ReadThroughRequest* request, size_t index, Loader* loader, std::string_view key);
  // Sends EXISTS key for `target` (a hash whose field was nil: is the hash itself missing?).
  // False when the upstream is unavailable; the target is then never called.
  bool sendExists(std::string_view key, backends::ReplyTarget* target);

  // Misses on keys of write-behind writers ask it for a pending state first.
  void setWriteBehind(WriteBehind* wb) { write_behind_ = wb; }

  // A GET or MGET hit on `key` with value `value` (refresh_ahead loaders): reloads it in the
  // background when its TTL is nearly over. `registry` owns `loader`.
  void hit(const RegistryRef& registry, Loader* loader, std::string_view key,
           std::string_view value);
  // The same for a hash read (HGET, HMGET, HGETALL) that was not a miss. A field or two is not
  // the value a refresh must find unchanged before replacing it: the refresh first reads the
  // whole hash (HGETALL), then loads.
  void hashHit(const RegistryRef& registry, Loader* loader, std::string_view key);

  // A request that has finished, for reuse.
  void recycle(ReadThroughRequest* request);

  // No fills or new loads after this; closes the timer. Loads in flight still finish.
  void close();

  // Loads slower than slowlog_log_slower_than, for READTHRU SLOWLOG.
  SlowLog* slowlog() { return &slowlog_; }

  size_t negativeEntries() const { return negative_.size(); }
  size_t flights() const { return flights_.size(); }
  static size_t liveCount();  // flights and requests not yet freed, for leak checks

 private:
  class FillTarget;
  class SnapshotTarget;

  ReadThroughRequest* takeRequest();
  void startQuery(Flight* f);
  void onLoaded(Flight* f, backends::SqlResult&& result);
  void complete(Flight* f, LoadedValue&& value);
  void answer(Flight* f, const LoadedValue& v);
  void fill(Flight* f);
  void onFilled(Flight* f);
  void release(Flight* f);  // frees `f` once nothing refers to it
  void forgetRefresh(std::string_view key);
  bool refreshDue(std::string_view key);
  void onSnapshot(SnapshotTarget* t);
  void encodeRefresh(const Flight* f, uint64_t ttl, std::string* out) const;
  void supersede(Flight* f);
  Flight* newFlight(const RegistryRef& registry, Loader* loader, std::string_view key);
  void armTimer();
  void onTimer();
  uint64_t nowUs() const { return uv_hrtime() / 1000; }

  uv_loop_t* loop_;
  CacheRegistry* registry_;  // the current one
  UpstreamPool* pool_;
  WriteBehind* write_behind_ = nullptr;
  NegativeCache negative_;
  SlowLog slowlog_;
  SingleFlight flights_;
  std::multimap<uint64_t, Flight*> deadlines_;  // loop ms -> loading flight
  uv_timer_t timer_;
  std::mt19937_64 rng_;
  uint64_t fill_seq_ = 0;                   // spreads fills over the shared connections
  std::vector<ReadThroughRequest*> spare_;  // finished requests, reused by intercept()
  // Refresh-ahead: this process's fills of refresh_ahead keys, and which are due now. Bounded;
  // a key not tracked just expires and is loaded on its next miss.
  static constexpr size_t kMaxRefreshTracked = 100000;
  RefreshTable refresh_{kMaxRefreshTracked};
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  // Hash refreshes waiting for their HGETALL: key -> the snapshot's number. A write through
  // readthru drops the key, and the snapshot is then ignored when it comes.
  std::unordered_map<std::string, uint64_t, Hash, std::equal_to<>> snapshots_;
  uint64_t snapshot_seq_ = 0;
  bool closed_ = false;
};

}  // namespace readthru
