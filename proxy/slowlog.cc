#include "proxy/slowlog.h"

#include <fmt/format.h>

#include <chrono>

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
  // The precise clock: time() reads the kernel's coarse one, which can still show the previous
  // second a few milliseconds after a client saw the new one.
  e.unix_time = std::chrono::duration_cast<std::chrono::seconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
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
