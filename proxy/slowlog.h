#pragma once
// SlowLog: the recent slow loads, for READTHRU SLOWLOG, as redis-server's SLOWLOG keeps
// slow commands. A load (one query for one key, from when it is queued for a worker to its
// result) taking at least `slower_than_us` is kept with an id, the unix time it finished, its
// duration, the loader, the key and its outcome; past `max_len` entries the oldest is dropped.
//
// Like Redis's: ids grow by one per entry ever added (RESET does not restart them, and an entry
// dropped at once by max_len 0 still takes an id), a threshold of 0 keeps every load and a
// negative one none, and long strings are cut to 128 bytes plus "... (N more bytes)".
//
// Loop thread only. Entries copy the loader's name, so they outlive a loader that goes away.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

namespace readthru {

struct SlowLogEntry {
  uint64_t id = 0;
  int64_t unix_time = 0;  // seconds
  uint64_t duration_us = 0;
  std::string loader;
  std::string key;
  std::string outcome;  // "value", "absent", or the error waiters got ("ERR loader ...")
};

class SlowLog {
 public:
  // Redis's SLOWLOG_ENTRY_MAX_STRING: the longest key or outcome kept whole.
  static constexpr size_t kMaxString = 128;

  SlowLog(int64_t slower_than_us, size_t max_len) : slower_than_us_(slower_than_us) {
    setMaxLen(max_len);
  }

  // Whether a load of `duration_us` is to be added: ask first, so a fast load builds nothing.
  bool wants(uint64_t duration_us) const {
    return slower_than_us_ >= 0 && duration_us >= static_cast<uint64_t>(slower_than_us_);
  }
  // Keeps an entry stamped with the current time. Callers check wants() first.
  void add(uint64_t duration_us, std::string_view loader, std::string_view key,
           std::string_view outcome);

  // Newest first.
  const std::deque<SlowLogEntry>& entries() const { return entries_; }
  size_t size() const { return entries_.size(); }
  void reset() { entries_.clear(); }

  void setSlowerThan(int64_t us) { slower_than_us_ = us; }
  // Drops the oldest entries beyond `max_len`.
  void setMaxLen(size_t max_len);

 private:
  int64_t slower_than_us_;
  size_t max_len_ = 0;
  uint64_t next_id_ = 0;
  std::deque<SlowLogEntry> entries_;
};

}  // namespace readthru
