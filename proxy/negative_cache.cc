#include "proxy/negative_cache.h"

namespace readthru {

void NegativeCache::insert(std::string_view key, uint64_t expires_ms) {
  if (capacity_ == 0) return;
  auto it = index_.find(key);
  if (it != index_.end()) {
    order_.erase(it->second);
    index_.erase(it);
  }
  evictTo(capacity_ - 1);
  order_.push_back({std::string(key), expires_ms});
  index_.emplace(order_.back().key, std::prev(order_.end()));
}

bool NegativeCache::contains(std::string_view key, uint64_t now_ms) {
  auto it = index_.find(key);
  if (it == index_.end()) return false;
  if (it->second->expires_ms > now_ms) return true;
  order_.erase(it->second);
  index_.erase(it);
  return false;
}

void NegativeCache::erase(std::string_view key) {
  auto it = index_.find(key);
  if (it == index_.end()) return;
  order_.erase(it->second);
  index_.erase(it);
}

void NegativeCache::clear() {
  index_.clear();
  order_.clear();
}

void NegativeCache::setCapacity(size_t capacity) {
  capacity_ = capacity;
  evictTo(capacity_);
}

void NegativeCache::evictTo(size_t n) {
  while (index_.size() > n) {
    index_.erase(order_.front().key);
    order_.pop_front();
  }
}

}  // namespace readthru
