#include "proxy/command_metrics.h"

#include <string>
#include <string_view>
#include <vector>

#include <doctest/doctest.h>

namespace readthru {
namespace {

TEST_CASE("command metrics: classes from the command table") {
  auto cls = [](std::vector<std::string_view> argv) {
    return commandClassName(commandClass(routeCommand(argv)));
  };
  CHECK(std::string(cls({"GET", "k"})) == "read");
  CHECK(std::string(cls({"hgetall", "k"})) == "read");
  CHECK(std::string(cls({"SET", "k", "v"})) == "write");
  CHECK(std::string(cls({"DEL", "k"})) == "write");
  CHECK(std::string(cls({"PING"})) == "other");
  CHECK(std::string(cls({"SUBSCRIBE", "c"})) == "other");
  CHECK(std::string(cls({"NOSUCHCOMMAND"})) == "other");
  CHECK(std::string(cls({"AUTH", "p"})) == "local");
  CHECK(std::string(cls({"CLIENT", "SETNAME", "n"})) == "local");
  CHECK(std::string(cls({"READTHRU", "STATS"})) == "local");
}

TEST_CASE("command metrics: counted and timed per class") {
  CommandMetrics m;
  m.taken(CommandClass::kWrite);
  m.taken(CommandClass::kWrite);
  m.answered(CommandClass::kWrite, 120);
  CHECK(m.commands[static_cast<size_t>(CommandClass::kWrite)] == 2);
  CHECK(m.latency[static_cast<size_t>(CommandClass::kWrite)].count() == 1);
  CHECK(m.latency[static_cast<size_t>(CommandClass::kWrite)].sum() == 120);
  CHECK(m.commands[static_cast<size_t>(CommandClass::kRead)] == 0);
}

}  // namespace
}  // namespace readthru
