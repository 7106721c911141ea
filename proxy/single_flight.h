#pragma once
// SingleFlight: the loads in progress, one per key, so that concurrent misses for a key (from any
// number of clients, or within one client's pipeline) run the loader once and all wait for that
// one result.
//
//   miss(key) -- no flight --> a new Flight, queued on the backend; the miss is its first waiter
//             -- a flight ---> joins it (coalesced)
//   result ------------------> every waiter is answered; a value is then written to Redis and the
//                              flight stays findable, holding the value, until Redis has it, so a
//                              miss that raced the fill is answered from it instead of loading
//                              again
//   a write to the key ------> supersede: the flight leaves the table (later misses start afresh);
//                              its waiters still get its result, but Redis never does
//
// Ownership: ReadThrough creates flights and frees each one once nothing refers to it any more: the
// backend's callback has run and the fill, if any, has been answered. The table only indexes the
// flights that new misses may join.

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "proxy/loader.h"
#include "proxy/registry_ref.h"

namespace readthru {

class ReadThroughRequest;

struct Flight {
  struct Waiter {
    ReadThroughRequest* request;
    size_t index;  // which of the request's keys
  };

  Loader* loader = nullptr;
  RegistryRef registry;  // keeps `loader` (and its backend) alive across a reload
  std::string key;
  std::vector<Waiter> waiters;
  LoadedValue result;  // once loaded
  uint64_t queued_us = 0;
  std::multimap<uint64_t, Flight*>::iterator deadline;  // valid while has_deadline
  bool has_deadline = false;
  bool indexed = false;     // in the SingleFlight table
  bool loaded = false;      // the result is in (and was handed to the waiters)
  bool superseded = false;  // a write came while loading: never written to Redis
  bool abandoned = false;   // timed out: the waiters had their error; the result is dropped
  bool filling = false;     // the fill request is on its way to Redis
  // Refresh-ahead: a reload nobody waits for, of a value Redis still holds (`old`, or for a hash
  // `old_fields`). Its fill replaces that value only if it is still the one in Redis.
  bool refresh = false;
  std::string old;
  std::vector<std::pair<std::string, std::string>> old_fields;
};

class SingleFlight {
 public:
  Flight* find(std::string_view key) const {
    auto it = table_.find(key);
    return it == table_.end() ? nullptr : it->second;
  }
  void insert(Flight* f) {
    table_.emplace(f->key, f);
    f->indexed = true;
  }
  // Takes `f` out of the table (if it is there); the flight itself lives on.
  void remove(Flight* f) {
    if (!f->indexed) return;
    table_.erase(f->key);
    f->indexed = false;
  }
  bool empty() const { return table_.empty(); }
  size_t size() const { return table_.size(); }
  template <typename Fn>
  void forEach(Fn fn) const {
    for (auto& [k, f] : table_) fn(f);
  }

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  std::unordered_map<std::string, Flight*, Hash, std::equal_to<>> table_;
};

}  // namespace readthru
