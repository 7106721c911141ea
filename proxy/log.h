#pragma once
// Logging: one line per event on stderr (journald keeps it), with a UTC timestamp and a level.
// Secrets (passwords) are never passed here.

#include <fmt/format.h>

#include <string_view>

namespace readthru::log {

enum class Level { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

void setLevel(Level level);
bool parseLevel(std::string_view name, Level* out);
bool enabled(Level level);
void write(Level level, std::string_view message);

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
