#include "proxy/monitor_feed.h"

#include <uv.h>

#include <algorithm>

#include <fmt/format.h>

#include "proxy/client_conn.h"
#include "resp/ascii_case.h"

namespace readthru {

namespace {

constexpr std::string_view kRedacted = "(redacted)";

// Redis's sdscatrepr: the argument in double quotes, with \\ \" \n \r \t \a \b escaped and any
// other unprintable byte as \xHH.
void appendQuoted(std::string* out, std::string_view s) {
  out->push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '\\':
      case '"':
        out->push_back('\\');
        out->push_back(static_cast<char>(c));
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      case '\a':
        out->append("\\a");
        break;
      case '\b':
        out->append("\\b");
        break;
      default:
        if (c >= 0x20 && c < 0x7f) {
          out->push_back(static_cast<char>(c));
        } else {
          fmt::format_to(std::back_inserter(*out), "\\x{:02x}", c);
        }
    }
  }
  out->push_back('"');
}

// Which arguments Redis replaces by "(redacted)": every argument of AUTH (Redis leaves those of
// an AUTH with too many arguments, which fails, in the clear; readthru does not show them
// either), and the username and password after HELLO's AUTH.
std::vector<bool> redactions(const std::vector<std::string_view>& argv) {
  std::vector<bool> redact(argv.size(), false);
  if (argv.empty()) return redact;
  if (equalsIgnoreCase(argv[0], "auth")) {
    std::fill(redact.begin() + 1, redact.end(), true);
  } else if (equalsIgnoreCase(argv[0], "hello")) {
    // As helloCommand reads its options: AUTH takes two, SETNAME one, anything else ends them.
    for (size_t j = 2; j < argv.size(); ++j) {
      size_t more = argv.size() - j - 1;
      if (equalsIgnoreCase(argv[j], "auth") && more >= 2) {
        redact[j + 1] = redact[j + 2] = true;
        j += 2;
      } else if (equalsIgnoreCase(argv[j], "setname") && more >= 1) {
        j += 1;
      } else {
        break;
      }
    }
  }
  return redact;
}

}  // namespace

void MonitorFeed::add(ClientConn* c) {
  if (std::find(monitors_.begin(), monitors_.end(), c) == monitors_.end()) monitors_.push_back(c);
}

void MonitorFeed::remove(ClientConn* c) {
  monitors_.erase(std::remove(monitors_.begin(), monitors_.end(), c), monitors_.end());
}

void MonitorFeed::feed(const resp::CommandInfo* info, const std::vector<std::string_view>& argv,
                       int64_t db, std::string_view addr) {
  if (monitors_.empty() || !shown(info, argv)) return;
  uv_timeval64_t tv;
  uv_gettimeofday(&tv);
  uint64_t now_us = static_cast<uint64_t>(tv.tv_sec) * 1000000 + static_cast<uint64_t>(tv.tv_usec);
  std::string line = formatLine(now_us, db, addr, argv);
  // pushUnsolicited never closes a client synchronously, so the list stays as it is here.
  for (ClientConn* c : monitors_) c->pushUnsolicited(std::string(line), c->pinnedConn());
}

std::string MonitorFeed::formatLine(uint64_t unix_us, int64_t db, std::string_view addr,
                                    const std::vector<std::string_view>& argv) {
  std::string out =
      fmt::format("+{}.{:06} [{} {}] ", unix_us / 1000000, unix_us % 1000000, db, addr);
  std::vector<bool> redact = redactions(argv);
  for (size_t j = 0; j < argv.size(); ++j) {
    if (j > 0) out.push_back(' ');
    appendQuoted(&out, redact[j] ? kRedacted : argv[j]);
  }
  out.append("\r\n");
  return out;
}

bool MonitorFeed::shown(const resp::CommandInfo* info, const std::vector<std::string_view>& argv) {
  if (info == nullptr) return false;
  if (info->has_subcommands && argv.size() > 1) {
    if (const resp::CommandInfo* sub = resp::findSubcommand(info->name, argv[1])) info = sub;
  }
  return (info->flags & (resp::kFlagAdmin | resp::kFlagSkipMonitor)) == 0;
}

}  // namespace readthru
