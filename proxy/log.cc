#include "proxy/log.h"

#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <ctime>
#include <mutex>

#include "proxy/json_string.h"

namespace readthru::log {
namespace {

std::atomic<Level> g_level{Level::kInfo};
std::atomic<Format> g_format{Format::kText};
// Held for a whole line's write, so a line cut short by the kernel (a full pipe, a signal) is
// finished before another thread's line starts.
std::mutex g_write_mutex;

constexpr char kMarks[] = {'.', '*', '#', '#'};  // redis-server's: debug, notice, warning
constexpr const char* kNames[] = {"debug", "info", "warning", "error"};

// The message with the bytes that could end or garble the line escaped.
void appendTextMessage(std::string_view message, std::string* out) {
  for (char ch : message) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '\n') {
      out->append("\\n");
    } else if (c == '\r') {
      out->append("\\r");
    } else if ((c < 0x20 && c != '\t') || c == 0x7f) {
      out->append(fmt::format("\\x{:02x}", c));
    } else {
      out->push_back(ch);
    }
  }
}

}  // namespace

void setLevel(Level level) { g_level.store(level, std::memory_order_relaxed); }

bool enabled(Level level) { return level >= g_level.load(std::memory_order_relaxed); }

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

void setFormat(Format format) { g_format.store(format, std::memory_order_relaxed); }

bool parseFormat(std::string_view name, Format* out) {
  if (name == "text") {
    *out = Format::kText;
  } else if (name == "json") {
    *out = Format::kJson;
  } else {
    return false;
  }
  return true;
}

std::string formatLine(Format format, Level level, std::string_view message, int64_t unix_ms,
                       long pid) {
  time_t secs = static_cast<time_t>(unix_ms / 1000);
  int ms = static_cast<int>(unix_ms % 1000);
  tm t;
  char stamp[64];
  std::string line;
  line.reserve(message.size() + 64);
  if (format == Format::kJson) {
    gmtime_r(&secs, &t);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &t);
    line = fmt::format("{{\"ts\":\"{}.{:03d}Z\",\"level\":\"{}\",\"pid\":{},\"msg\":", stamp, ms,
                       kNames[static_cast<int>(level)], pid);
    appendJsonString(message, &line);
    line += "}\n";
  } else {
    localtime_r(&secs, &t);
    strftime(stamp, sizeof stamp, "%d %b %Y %H:%M:%S", &t);
    line = fmt::format("{}:M {}.{:03d} {} ", pid, stamp, ms, kMarks[static_cast<int>(level)]);
    appendTextMessage(message, &line);
    line += '\n';
  }
  return line;
}

void write(Level level, std::string_view message) {
  timeval tv;
  gettimeofday(&tv, nullptr);
  int64_t unix_ms = static_cast<int64_t>(tv.tv_sec) * 1000 + tv.tv_usec / 1000;
  std::string line = formatLine(g_format.load(std::memory_order_relaxed), level, message, unix_ms,
                                static_cast<long>(getpid()));
  std::lock_guard<std::mutex> lock(g_write_mutex);
  // One write per line (a short write is finished before the lock is let go), so lines from
  // several threads, or from a crash, never interleave.
  size_t done = 0;
  while (done < line.size()) {
    ssize_t n = ::write(STDERR_FILENO, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // nowhere to log to: the event is lost, the daemon goes on
    done += static_cast<size_t>(n);
  }
}

}  // namespace readthru::log
