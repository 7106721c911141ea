#pragma once
// Logging: one line per event on stderr (journald keeps it), each with a timestamp and a level.
// Secrets (passwords) are never passed here.
//
// log_format = "text" (the default) writes lines as redis-server does, so operators read them
// the same way:
//     12345:M 26 Nov 2026 16:20:01.123 * readthru 0.1.0 listening on 127.0.0.1:6380, ...
// pid, ":M" (readthru has one role), the local time to the millisecond, Redis's level mark
// ('.' debug, '*' info, '#' warning and error: Redis has no level above warning), the message
// with control characters escaped ("\n", "\r", "\xNN") so one event stays one line.
// log_format = "json" writes one JSON object per line, the time in UTC:
//     {"ts":"2026-11-26T16:20:01.123Z","level":"info","pid":12345,"msg":"..."}
// level is "debug", "info", "warning" or "error"; msg is escaped as JSON requires (bytes that are
// not UTF-8 become U+FFFD).
//
// Threads: any thread may log (SQLite workers do). Each line is built whole, then written with
// one write(2) under a lock, so lines never interleave. The level and format are read atomically
// and may be changed while other threads log.

#include <fmt/format.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace readthru::log {

enum class Level { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };
enum class Format { kText = 0, kJson = 1 };

void setLevel(Level level);
bool parseLevel(std::string_view name, Level* out);
void setFormat(Format format);
bool parseFormat(std::string_view name, Format* out);
bool enabled(Level level);
void write(Level level, std::string_view message);

// The line write() writes (with its '\n') for `message` logged at `unix_ms` (milliseconds since
// the epoch) by process `pid`. Text lines use the local time zone (TZ), as redis-server's do.
std::string formatLine(Format format, Level level, std::string_view message, int64_t unix_ms,
                       long pid);

template <typename... Args>
void debug(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::kDebug)) write(Level::kDebug, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void info(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::kInfo)) write(Level::kInfo, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void warning(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::kWarning)) write(Level::kWarning, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void error(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::kError)) write(Level::kError, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace readthru::log
