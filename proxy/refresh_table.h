#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace readthru {

// Refresh-ahead's bookkeeping: the values this process filled for loaders with refresh_ahead,
// and which of them a hit should reload now.
//
// Every GET of a loader's key asks whether it is due, so that question must cost next to
// nothing: while no tracked value is inside its refresh window, one comparison; otherwise a
// look-up in the set of keys that are (a few percent of those tracked, so it stays in cache).
// Keys enter that set when their due time comes, found through a queue ordered by time, and
// leave it when their reload starts, when a write forgets them, or when the value runs out.
//
// At most `capacity` keys are tracked; a fill beyond that is not (its key just expires and is
// loaded on its next miss), until the entries of values that have run out are dropped.
// Times are the caller's clock in milliseconds (the loop's), never going back.
class RefreshTable {
 public:
  explicit RefreshTable(size_t capacity) : capacity_(capacity) {}

  // A fill of `key` at `now` with a TTL of `ttl_ms`: due for a reload once less than
  // `fraction` of the TTL is left. A key tracked already is tracked from this fill on.
  void track(std::string_view key, uint64_t now, uint64_t ttl_ms, double fraction);
  // Whether a hit on `key` at `now` would start its reload (claim() would say yes).
  bool due(std::string_view key, uint64_t now);
  // Takes the reload of `key` at `now`: true once per fill, while the value is due and has not
  // run out. The key stays tracked; the reload's own fill (track()) schedules the next one.
  bool claim(std::string_view key, uint64_t now);
  // A write to `key`: it is not refreshed any more (until a new fill).
  void forget(std::string_view key);
  void clear();

  bool empty() const { return live_ == 0; }
  size_t size() const { return live_; }
  size_t dueCount() const { return due_.size(); }

 private:
  enum class Phase : uint8_t {
    kWaiting,     // queued at its due time
    kDue,         // in due_, queued at its expiry
    kRefreshing,  // claimed, queued at its expiry
    kForgotten,   // written to; dropped when its queue entry comes up
  };
  struct Entry {
    uint64_t due;
    uint64_t expires;
    Phase phase;
  };
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  using Map = std::unordered_map<std::string, Entry, Hash, std::equal_to<>>;
  // A queue entry names its key by a pointer into the map's node, which stays valid: every
  // entry of the map has exactly one queue entry, and only the queue erases map entries.
  struct Event {
    uint64_t at;
    const std::string* key;
    bool operator>(const Event& o) const { return at > o.at; }
  };

  void advance(uint64_t now);
  void leaveDue(const std::string& key);

  size_t capacity_;
  size_t live_ = 0;  // entries not forgotten
  Map entries_;
  std::priority_queue<Event, std::vector<Event>, std::greater<>> queue_;
  std::unordered_set<std::string_view, Hash, std::equal_to<>> due_;  // keys of kDue entries
};

}  // namespace readthru
