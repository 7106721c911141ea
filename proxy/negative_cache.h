#pragma once
// NegativeCache: keys whose row does not exist, remembered until a deadline so that floods of
// lookups for ids that do not exist stop reaching the database. Bounded: past `capacity` entries
// the oldest is dropped first. Lookups with a string_view never allocate.
//
// It only ever answers for a key Redis itself has just reported missing, so a value SET in Redis
// meanwhile is still served; a write through readthru to a key forgets it at once.

#include <cstddef>
#include <cstdint>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>

namespace readthru {

class NegativeCache {
 public:
  explicit NegativeCache(size_t capacity) : capacity_(capacity) {}

  // Remembers `key` as absent until `expires_ms` (on the loop's clock).
  void insert(std::string_view key, uint64_t expires_ms);
  // True while `key` is remembered as absent; an expired entry is dropped.
  bool contains(std::string_view key, uint64_t now_ms);
  void erase(std::string_view key);
  void clear();
  size_t size() const { return index_.size(); }
  bool empty() const { return index_.empty(); }
  void setCapacity(size_t capacity);

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  struct Entry {
    std::string key;
    uint64_t expires_ms;
  };
  using List = std::list<Entry>;  // oldest insertion first

  void evictTo(size_t n);

  size_t capacity_;
  List order_;
  std::unordered_map<std::string, List::iterator, Hash, std::equal_to<>> index_;
};

}  // namespace readthru
