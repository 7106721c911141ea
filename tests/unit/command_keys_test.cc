#include "resp/command_keys.h"

#include <string_view>
#include <vector>

#include <doctest/doctest.h>

namespace readthru::resp {
namespace {

// Positions as redis-server's COMMAND GETKEYS gives them for the same arguments.
TEST_CASE("command keys: positions from the key specs") {
  auto keys = [](std::vector<std::string_view> argv) {
    const CommandInfo* info = findCommand(argv[0]);
    REQUIRE(info != nullptr);
    if (info->has_subcommands) info = findSubcommand(argv[0], argv[1]);
    REQUIRE(info != nullptr);
    std::vector<KeyRef> out;
    findKeys(*info, argv, &out);
    std::vector<int> pos;
    for (const KeyRef& k : out) pos.push_back(k.pos);
    return pos;
  };
  CHECK(keys({"GET", "k"}) == std::vector<int>{1});
  CHECK(keys({"MSET", "a", "1", "b", "2"}) == std::vector<int>{1, 3});
  CHECK(keys({"BLPOP", "a", "b", "0"}) == std::vector<int>{1, 2});
  CHECK(keys({"EVAL", "s", "2", "a", "b", "arg"}) == std::vector<int>{3, 4});
  CHECK(keys({"EVAL", "s", "x", "a"}).empty());  // not a count: no keys, Redis refuses it
  CHECK(keys({"EVAL", "s", "5", "a"}).empty());  // past the end
  CHECK(keys({"ZUNIONSTORE", "d", "2", "a", "b", "WEIGHTS", "1", "2"}) ==
        std::vector<int>{1, 3, 4});
  CHECK(keys({"XREAD", "COUNT", "2", "STREAMS", "a", "b", "0", "0"}) == std::vector<int>{4, 5});
  CHECK(keys({"GEORADIUS", "g", "0", "0", "1", "km", "STORE", "d"}) == std::vector<int>{1, 7});
  CHECK(keys({"OBJECT", "ENCODING", "k"}) == std::vector<int>{2});
  CHECK(keys({"SORT", "k", "STORE", "a", "STORE", "b"}) == std::vector<int>{1, 5});
  CHECK(keys({"SORT_RO", "k", "STORE", "a"}) == std::vector<int>{1});
  CHECK(keys({"MIGRATE", "h", "1", "", "0", "5", "AUTH2", "u", "keys", "KEYS", "a", "b"}) ==
        std::vector<int>{10, 11});
  CHECK(keys({"PUBLISH", "ch", "m"}).empty());
  CHECK(keys({"SPUBLISH", "ch", "m"}).empty());  // a channel, not a key
  CHECK(keys({"PING"}).empty());
}

}  // namespace
}  // namespace readthru::resp
