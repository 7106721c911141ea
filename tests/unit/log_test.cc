#include "proxy/log.h"

#include <stdlib.h>
#include <unistd.h>

#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

namespace readthru {
namespace {

using namespace std::string_literals;
using log::Format;
using log::Level;

constexpr int64_t kNov26 = 1795710001123;  // 2026-11-26 16:20:01.123 UTC
constexpr int64_t kJan5 = 1799118245007;   // 2027-01-05 03:04:05.007 UTC

// Runs the test body with TZ set, and puts the old TZ back.
class ScopedTz {
 public:
  explicit ScopedTz(const char* tz) {
    if (const char* old = getenv("TZ")) old_ = old;
    setenv("TZ", tz, 1);
    tzset();
  }
  ~ScopedTz() {
    if (old_) {
      setenv("TZ", old_->c_str(), 1);
    } else {
      unsetenv("TZ");
    }
    tzset();
  }

 private:
  std::optional<std::string> old_;
};

TEST_CASE("log: text lines are redis-server's: pid:M, local time to the ms, level mark") {
  ScopedTz tz("UTC");
  CHECK(log::formatLine(Format::kText, Level::kInfo, "listening", kNov26, 12345) ==
        "12345:M 26 Nov 2026 16:20:01.123 * listening\n");
  CHECK(log::formatLine(Format::kText, Level::kDebug, "d", kJan5, 7) ==
        "7:M 05 Jan 2027 03:04:05.007 . d\n");
  CHECK(log::formatLine(Format::kText, Level::kWarning, "w", kJan5, 7) ==
        "7:M 05 Jan 2027 03:04:05.007 # w\n");
  CHECK(log::formatLine(Format::kText, Level::kError, "e", kJan5, 7) ==
        "7:M 05 Jan 2027 03:04:05.007 # e\n");
}

TEST_CASE("log: text lines use the local time zone, as redis-server's do") {
  ScopedTz tz("JST-9");  // UTC+9, no daylight saving
  CHECK(log::formatLine(Format::kText, Level::kInfo, "m", kNov26, 1) ==
        "1:M 27 Nov 2026 01:20:01.123 * m\n");
  // JSON stays in UTC whatever the zone.
  CHECK(log::formatLine(Format::kJson, Level::kInfo, "m", kNov26, 1) ==
        R"({"ts":"2026-11-26T16:20:01.123Z","level":"info","pid":1,"msg":"m"})"
        "\n");
}

TEST_CASE("log: a text message stays on one line") {
  ScopedTz tz("UTC");
  std::string line = log::formatLine(Format::kText, Level::kWarning,
                                     "user 'a\nb\r\x01\x7f\tc' \xc3\xa9", kNov26, 2);
  CHECK(line == "2:M 26 Nov 2026 16:20:01.123 # user 'a\\nb\\r\\x01\\x7f\tc' \xc3\xa9\n");
  CHECK(line.find('\n') == line.size() - 1);
  CHECK(log::formatLine(Format::kText, Level::kInfo, "nul\0byte"s, kNov26, 2) ==
        "2:M 26 Nov 2026 16:20:01.123 * nul\\x00byte\n");
}

TEST_CASE("log: json lines are one object with ts, level, pid and msg") {
  CHECK(log::formatLine(Format::kJson, Level::kInfo, "listening", kNov26, 12345) ==
        R"({"ts":"2026-11-26T16:20:01.123Z","level":"info","pid":12345,"msg":"listening"})"
        "\n");
  CHECK(log::formatLine(Format::kJson, Level::kDebug, "", kJan5, 1)
            .find(R"("ts":"2027-01-05T03:04:05.007Z","level":"debug")") != std::string::npos);
  CHECK(
      log::formatLine(Format::kJson, Level::kWarning, "", kJan5, 1).find(R"("level":"warning")") !=
      std::string::npos);
  CHECK(log::formatLine(Format::kJson, Level::kError, "", kJan5, 1).find(R"("level":"error")") !=
        std::string::npos);
}

TEST_CASE("log: json messages are escaped, and bytes that are not UTF-8 become U+FFFD") {
  CHECK(log::formatLine(Format::kJson, Level::kWarning, "failed AUTH for user 'a\"b\\c\nd\x01\xff'",
                        kNov26, 3) ==
        R"({"ts":"2026-11-26T16:20:01.123Z","level":"warning","pid":3,)"
        R"("msg":"failed AUTH for user 'a\"b\\c\nd\u0001\ufffd'"})"
        "\n");
}

TEST_CASE("log: lines from many threads never interleave, even past a pipe's atomic size") {
  // stderr becomes a pipe that a reader thread drains, as journald's stream would.
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  int saved = dup(STDERR_FILENO);
  REQUIRE(saved >= 0);
  std::string got;
  std::thread reader([&] {
    char buf[65536];
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof buf)) > 0) got.append(buf, static_cast<size_t>(n));
  });
  REQUIRE(dup2(fds[1], STDERR_FILENO) == STDERR_FILENO);
  close(fds[1]);
  log::setFormat(Format::kText);
  constexpr int kThreads = 8, kLines = 50;
  constexpr size_t kPayload = 3 * 4096;  // each line is written whole though longer than PIPE_BUF
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([t] {
      std::string payload(kPayload, static_cast<char>('a' + t));
      for (int i = 0; i < kLines; ++i) log::warning("t={} i={} {}", t, i, payload);
    });
  }
  for (auto& w : writers) w.join();
  dup2(saved, STDERR_FILENO);  // the pipe's last write end closes: the reader sees EOF
  close(saved);
  reader.join();
  close(fds[0]);

  int lines = 0;
  std::vector<int> next(kThreads, 0);
  size_t pos = 0;
  while (pos < got.size()) {
    size_t eol = got.find('\n', pos);
    REQUIRE(eol != std::string::npos);
    std::string_view line(got.data() + pos, eol - pos);
    pos = eol + 1;
    ++lines;
    size_t at = line.find(" # t=");
    REQUIRE(at != std::string_view::npos);
    int t = line[at + 5] - '0';
    REQUIRE(t >= 0);
    REQUIRE(t < kThreads);
    std::string want = fmt::format("t={} i={} {}", t, next[t]++,
                                   std::string(kPayload, static_cast<char>('a' + t)));
    CHECK(line.substr(at + 3) == want);
  }
  CHECK(lines == kThreads * kLines);
}

TEST_CASE("log: level and format names") {
  Level l = Level::kError;
  CHECK(log::parseLevel("debug", &l));
  CHECK(l == Level::kDebug);
  CHECK(log::parseLevel("notice", &l));  // redis.conf's word
  CHECK(l == Level::kInfo);
  CHECK_FALSE(log::parseLevel("loud", &l));
  Format f = Format::kText;
  CHECK(log::parseFormat("json", &f));
  CHECK(f == Format::kJson);
  CHECK(log::parseFormat("text", &f));
  CHECK(f == Format::kText);
  for (std::string_view bad : {"", "JSON", "Text", "logfmt", "json "}) {
    CAPTURE(bad);
    CHECK_FALSE(log::parseFormat(bad, &f));
  }
}

}  // namespace
}  // namespace readthru
