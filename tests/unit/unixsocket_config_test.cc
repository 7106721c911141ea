// The unixsocket and unixsocketperm keys of the config file (redis.conf's keys of those names).
#include <cstdint>
#include <string>

#include <doctest/doctest.h>

#include "tests/unit/test_bad_config.h"
#include "tests/unit/test_temp_dir.h"

#include "proxy/config.h"

namespace readthru {
namespace {

using test::TempDir;

TEST_CASE("unixsocket config: off by default") {
  TempDir dir;
  Config c;
  std::string error;
  REQUIRE(loadConfigFile(dir.write("readthru.toml", "listen = \"127.0.0.1:6380\"\n"), &c, &error));
  CHECK(c.unixsocket.empty());
  CHECK(c.unixsocketperm == 0);
}

TEST_CASE("unixsocket config: the path is kept as written, relative or not") {
  TempDir dir;
  for (std::string path : {"/run/readthru/readthru.sock", "readthru.sock", "../x/r.sock", ""}) {
    CAPTURE(path);
    Config c;
    std::string error;
    REQUIRE(
        loadConfigFile(dir.write("readthru.toml", "unixsocket = \"" + path + "\"\n"), &c, &error));
    CHECK(c.unixsocket == path);
  }
}

TEST_CASE("unixsocket config: unixsocketperm is octal, as in redis.conf or TOML's 0o") {
  struct Case {
    std::string text;
    uint32_t perm;
  };
  TempDir dir;
  for (const Case& k :
       {Case{"700", 0700}, Case{"770", 0770}, Case{"777", 0777}, Case{"0", 0}, Case{"7", 07},
        Case{"644", 0644}, Case{"0o770", 0770}, Case{"0o7", 07}, Case{"0o777", 0777}}) {
    CAPTURE(k.text);
    Config c;
    std::string error;
    REQUIRE(loadConfigFile(dir.write("readthru.toml", "unixsocketperm = " + k.text + "\n"), &c,
                           &error));
    CHECK(c.unixsocketperm == k.perm);
  }
}

TEST_CASE("unixsocket config: bad values are refused naming line, column and key") {
  const std::string perm_error =
      "1:18: 'unixsocketperm' must be permission bits in octal, e.g. 770 or 0o770";
  const test::BadConfig cases[] = {
      {"unixsocketperm = 780\n", perm_error},
      {"unixsocketperm = 1777\n", perm_error},
      {"unixsocketperm = 0o1777\n", perm_error},
      {"unixsocketperm = -1\n", perm_error},
      {"unixsocketperm = \"770\"\n", perm_error},
      {"unixsocketperm = 7.0\n", perm_error},
      {"unixsocket = 5\n", "1:14: 'unixsocket' must be a string"},
      {"unixsocket = \"/" + std::string(107, 'a') + "\"\n",
       "1:14: 'unixsocket' is too long: a unix socket path must be under 108 bytes"},
  };
  test::checkRefused(cases);
  // The longest path that fits a socket address is accepted.
  TempDir dir;
  Config c;
  std::string error;
  std::string longest = "/" + std::string(106, 'a');
  CHECK(loadConfigFile(dir.write("ok.toml", "unixsocket = \"" + longest + "\"\n"), &c, &error));
  CHECK(c.unixsocket == longest);
}

}  // namespace
}  // namespace readthru
