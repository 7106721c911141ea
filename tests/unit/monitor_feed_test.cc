#include <doctest/doctest.h>

#include <string_view>
#include <vector>

#include "proxy/monitor_feed.h"
#include "resp/command_table.h"

using readthru::MonitorFeed;

namespace {

std::string line(std::vector<std::string_view> argv) {
  return MonitorFeed::formatLine(1700000000'000042, 3, "127.0.0.1:5000", argv);
}

}  // namespace

TEST_CASE("a MONITOR line has Redis's time, db, address and quoting") {
  CHECK(line({"client", "setname", "app"}) ==
        "+1700000000.000042 [3 127.0.0.1:5000] \"client\" \"setname\" \"app\"\r\n");
  CHECK(line({"ping", std::string_view("a\"b\\c\r\n\t\a\b\x01\xff\0", 13)}) ==
        "+1700000000.000042 [3 127.0.0.1:5000] \"ping\" "
        "\"a\\\"b\\\\c\\r\\n\\t\\a\\b\\x01\\xff\\x00\"\r\n");
}

TEST_CASE("AUTH and HELLO AUTH secrets are redacted in MONITOR lines") {
  CHECK(line({"AUTH", "secret"}) ==
        "+1700000000.000042 [3 127.0.0.1:5000] \"AUTH\" \"(redacted)\"\r\n");
  CHECK(line({"auth", "user", "secret"}) ==
        "+1700000000.000042 [3 127.0.0.1:5000] \"auth\" \"(redacted)\" \"(redacted)\"\r\n");
  // SETNAME's value stays; AUTH's two arguments go, wherever AUTH stands among the options.
  CHECK(line({"hello", "3", "setname", "n", "auth", "user", "secret"}) ==
        "+1700000000.000042 [3 127.0.0.1:5000] \"hello\" \"3\" \"setname\" \"n\" \"auth\" "
        "\"(redacted)\" \"(redacted)\"\r\n");
  // An AUTH without its two arguments ends HELLO's options, as in Redis: nothing to redact.
  CHECK(line({"hello", "3", "auth", "user"}) ==
        "+1700000000.000042 [3 127.0.0.1:5000] \"hello\" \"3\" \"auth\" \"user\"\r\n");
}

TEST_CASE("commands Redis keeps out of MONITOR are not shown") {
  const auto* client = readthru::resp::findCommand("client");
  REQUIRE(client != nullptr);
  CHECK(MonitorFeed::shown(client, {"client", "setname", "x"}));
  CHECK(MonitorFeed::shown(readthru::resp::findCommand("auth"), {"auth", "x"}));
  CHECK_FALSE(MonitorFeed::shown(readthru::resp::findCommand("sync"), {"sync"}));
  CHECK_FALSE(MonitorFeed::shown(nullptr, {"nosuchcommand"}));
}
