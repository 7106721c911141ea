#include "proxy/slowlog.h"

#include <fmt/format.h>

#include <ctime>

namespace readthru {
namespace {

std::string shortened(std::string_view s) {
  if (s.size() <= SlowLog::kMaxString) return std::string(s);
  return fmt::format("{}... ({} more bytes)", s.substr(0, SlowLog::kMaxString),
                     s.size() - SlowLog::kMaxString);
}

}  // namespace

void SlowLog::add(uint64_t duration_us, std::string_view loader, std::string_view key,
                  std::string_view outcome) {
  SlowLogEntry e;
  e.id = next_id_++;
  e.unix_time = static_cast<int64_t>(std::time(nullptr));
  e.duration_us = duration_us;
  e.loader = std::string(loader);
  e.key = shortened(key);
  e.outcome = shortened(outcome);
  entries_.push_front(std::move(e));
  setMaxLen(max_len_);
}

void SlowLog::setMaxLen(size_t max_len) {
  max_len_ = max_len;
  while (entries_.size() > max_len_) entries_.pop_back();
}

}  // namespace readthru
