#include "proxy/log.h"

#include <sys/time.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>

namespace readthru::log {
namespace {
Level g_level = Level::kInfo;
constexpr const char* kNames[] = {"DEBUG", "INFO", "WARNING", "ERROR"};
}  // namespace

void setLevel(Level level) { g_level = level; }

bool enabled(Level level) { return level >= g_level; }

bool parseLevel(std::string_view name, Level* out) {
  // redis.conf's loglevel words are accepted too.
  if (name == "debug" || name == "verbose") {
    *out = Level::kDebug;
  } else if (name == "info" || name == "notice") {
    *out = Level::kInfo;
  } else if (name == "warning") {
    *out = Level::kWarning;
  } else if (name == "error") {
    *out = Level::kError;
  } else {
    return false;
  }
  return true;
}

void write(Level level, std::string_view message) {
  timeval tv;
  gettimeofday(&tv, nullptr);
  tm t;
  gmtime_r(&tv.tv_sec, &t);
  char stamp[32];
  strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &t);
  std::string line =
      fmt::format("{}.{:03d}Z {} readthru[{}]: {}\n", stamp, static_cast<int>(tv.tv_usec / 1000),
                  kNames[static_cast<int>(level)], getpid(), message);
  // One write per line so lines from a crash or from several processes do not interleave.
  ssize_t rc = ::write(STDERR_FILENO, line.data(), line.size());
  (void)rc;
}

}  // namespace readthru::log
