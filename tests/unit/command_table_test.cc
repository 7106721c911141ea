#include "resp/command_table.h"

#include <algorithm>
#include <span>
#include <string>

#include <doctest/doctest.h>

namespace readthru::resp {
namespace {

bool has(const CommandInfo* c, uint32_t flag) { return (c->flags & flag) != 0; }

TEST_CASE("command table: GET is a fast read of key 1") {
  const CommandInfo* get = findCommand("get");
  REQUIRE(get != nullptr);
  CHECK(get->name == "get");
  CHECK(get->arity == 2);
  CHECK(has(get, kFlagReadonly));
  CHECK(has(get, kFlagFast));
  CHECK_FALSE(has(get, kFlagWrite));
  CHECK(get->first_key == 1);
  CHECK(get->last_key == 1);
  CHECK(get->key_step == 1);
  CHECK_FALSE(get->has_subcommands);
}

TEST_CASE("command table: flags of representative commands") {
  const CommandInfo* set = findCommand("set");
  REQUIRE(set != nullptr);
  CHECK(has(set, kFlagWrite));
  CHECK_FALSE(has(set, kFlagReadonly));

  const CommandInfo* blpop = findCommand("blpop");
  REQUIRE(blpop != nullptr);
  CHECK(has(blpop, kFlagBlocking));
  CHECK(blpop->last_key == -2);  // the timeout follows the keys

  const CommandInfo* subscribe = findCommand("subscribe");
  REQUIRE(subscribe != nullptr);
  CHECK(has(subscribe, kFlagPubsub));

  const CommandInfo* xread = findCommand("xread");
  REQUIRE(xread != nullptr);
  CHECK(has(xread, kFlagMovableKeys));
}

TEST_CASE("command table: MSET keys are every other argument from 1") {
  const CommandInfo* mset = findCommand("mset");
  REQUIRE(mset != nullptr);
  CHECK(mset->arity == -3);
  CHECK(mset->first_key == 1);
  CHECK(mset->last_key == -1);
  CHECK(mset->key_step == 2);
}

TEST_CASE("command table: lookups ignore case") {
  const CommandInfo* get = findCommand("get");
  CHECK(findCommand("GET") == get);
  CHECK(findCommand("gEt") == get);
  CHECK(findSubcommand("CLIENT", "SetName") == findSubcommand("client", "setname"));
}

TEST_CASE("command table: unknown names") {
  CHECK(findCommand("nosuchcommand") == nullptr);
  CHECK(findCommand("") == nullptr);
  CHECK(findCommand("ge") == nullptr);
  CHECK(findCommand("gett") == nullptr);
  CHECK(findCommand(std::string_view("get\0", 4)) == nullptr);
  CHECK(findCommand(std::string(1000, 'a')) == nullptr);
  // Redis treats "client|setname" as an unknown command name, not as the subcommand.
  CHECK(findCommand("client|setname") == nullptr);
}

TEST_CASE("command table: subcommands") {
  const CommandInfo* client = findCommand("client");
  REQUIRE(client != nullptr);
  CHECK(client->has_subcommands);

  const CommandInfo* setname = findSubcommand("client", "setname");
  REQUIRE(setname != nullptr);
  CHECK(setname->name == "client|setname");
  CHECK(setname->arity == 3);

  CHECK(findSubcommand("CLIENT", "nope") == nullptr);
  CHECK(findSubcommand("client", "") == nullptr);
  CHECK(findSubcommand("get", "x") == nullptr);
  CHECK(findSubcommand("client", std::string(1000, 'a')) == nullptr);

  // Subcommand key positions count from the container: OBJECT ENCODING key.
  const CommandInfo* encoding = findSubcommand("object", "encoding");
  REQUIRE(encoding != nullptr);
  CHECK(encoding->first_key == 2);
}

TEST_CASE("command table: allCommands is sorted, unique and complete") {
  std::span<const CommandInfo> all = allCommands();
  CHECK(all.size() > 200);
  CHECK(std::ranges::is_sorted(all, {}, &CommandInfo::name));
  CHECK(std::ranges::adjacent_find(all, {}, &CommandInfo::name) == all.end());
  for (const CommandInfo& c : all) {
    CAPTURE(c.name);
    CHECK(std::ranges::none_of(c.name, [](char ch) { return ch >= 'A' && ch <= 'Z'; }));
    size_t bar = c.name.find('|');
    if (bar == std::string_view::npos) {
      CHECK(findCommand(c.name) == &c);
    } else {
      CHECK(findSubcommand(c.name.substr(0, bar), c.name.substr(bar + 1)) == &c);
      const CommandInfo* container = findCommand(c.name.substr(0, bar));
      REQUIRE(container != nullptr);
      CHECK(container->has_subcommands);
    }
  }
}

}  // namespace
}  // namespace readthru::resp
