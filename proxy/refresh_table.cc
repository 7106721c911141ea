#include "proxy/refresh_table.h"

namespace readthru {

void RefreshTable::track(std::string_view key, uint64_t now, uint64_t ttl_ms, double fraction) {
  advance(now);
  Entry e{now + static_cast<uint64_t>(static_cast<double>(ttl_ms) * (1.0 - fraction)), now + ttl_ms,
          Phase::kWaiting};
  auto it = entries_.find(key);
  if (it != entries_.end()) {
    // Its queue entry stays; advance() requeues it at the new due time when it comes up. A
    // refill comes after the previous fill's due time, so its own due time is later still.
    if (it->second.phase == Phase::kDue) leaveDue(it->first);
    if (it->second.phase == Phase::kForgotten) ++live_;
    it->second = e;
    return;
  }
  if (entries_.size() >= capacity_) return;
  auto ins = entries_.emplace(std::string(key), e).first;
  ++live_;
  queue_.push({e.due, &ins->first});
}

bool RefreshTable::due(std::string_view key, uint64_t now) {
  advance(now);
  return !due_.empty() && due_.count(key) > 0;
}

bool RefreshTable::claim(std::string_view key, uint64_t now) {
  advance(now);
  if (due_.empty()) return false;
  auto it = entries_.find(key);
  if (it == entries_.end() || it->second.phase != Phase::kDue) return false;
  leaveDue(it->first);
  it->second.phase = Phase::kRefreshing;
  return true;
}

void RefreshTable::forget(std::string_view key) {
  if (live_ == 0) return;
  auto it = entries_.find(key);
  if (it == entries_.end() || it->second.phase == Phase::kForgotten) return;
  if (it->second.phase == Phase::kDue) leaveDue(it->first);
  it->second.phase = Phase::kForgotten;
  --live_;
}

void RefreshTable::clear() {
  due_.clear();
  queue_ = {};
  entries_.clear();
  live_ = 0;
}

void RefreshTable::leaveDue(const std::string& key) { due_.erase(std::string_view(key)); }

void RefreshTable::advance(uint64_t now) {
  while (!queue_.empty() && queue_.top().at <= now) {
    const std::string* key = queue_.top().key;
    queue_.pop();
    auto it = entries_.find(*key);
    Entry& e = it->second;
    uint64_t next;
    if (e.phase == Phase::kForgotten) {
      entries_.erase(it);
      continue;
    }
    if (now >= e.expires) {  // the value has run out, refreshed or not
      if (e.phase == Phase::kDue) leaveDue(it->first);
      entries_.erase(it);
      --live_;
      continue;
    }
    if (e.phase == Phase::kWaiting && now >= e.due) {
      e.phase = Phase::kDue;
      due_.insert(std::string_view(it->first));
      next = e.expires;
    } else {
      next = e.phase == Phase::kWaiting ? e.due : e.expires;
    }
    queue_.push({next, key});
  }
}

}  // namespace readthru
