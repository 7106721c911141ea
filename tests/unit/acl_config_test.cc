// [[users]] and protected_mode in the config file (proxy/config.cc, proxy/acl.h).

#include <string>

#include <doctest/doctest.h>

#include "proxy/acl.h"
#include "proxy/config.h"
#include "tests/unit/test_bad_config.h"
#include "tests/unit/test_temp_dir.h"

namespace readthru {
namespace {

using test::BadConfig;
using test::TempDir;

TEST_CASE("config: [[users]] with every key") {
  TempDir dir;
  std::string path = dir.write("users.toml", R"(requirepass = "admin-pw"
protected_mode = "no"

[[users]]
name = "app"
password = "app-pw"
enabled = true
commands = ["+@all", "-@dangerous", "+get"]
keys = ["~user:*", "%R~product:*"]
deny_commands = ["FLUSHALL", "CONFIG", "DEBUG", "SHUTDOWN"]

[[users]]
name = "ops"
password_sha256 = "05547dd11b298e04b4937dc62a8d94b26e22a8b5621239b795fa884e2a1a4c86"
enabled = false

[[users]]
name = "default"
password = "admin-pw"
commands = ["+@read"]
keys = ["~*"]
)");
  Config c;
  std::string error;
  REQUIRE_MESSAGE(loadConfigFile(path, &c, &error), error);
  CHECK_FALSE(c.protected_mode);
  REQUIRE(c.users.size() == 3);
  const UserConfig& app = c.users[0];
  CHECK(app.name == "app");
  CHECK(app.where == path + ":4:1");
  CHECK(app.has_password);
  CHECK(app.password == "app-pw");
  CHECK(app.enabled);
  CHECK(app.commands == std::vector<std::string>{"+@all", "-@dangerous", "+get"});
  CHECK(app.keys == std::vector<std::string>{"~user:*", "%R~product:*"});
  CHECK(app.deny_commands == std::vector<std::string>{"FLUSHALL", "CONFIG", "DEBUG", "SHUTDOWN"});
  CHECK_FALSE(c.users[1].enabled);
  CHECK_FALSE(c.users[1].has_password);
  CHECK(c.users[1].password_sha256.size() == 64);
  Acl acl(c);
  CHECK(acl.userCount() == 3);
  CHECK(acl.authenticate("app", "app-pw") != nullptr);
  CHECK(acl.authenticate("ops", "app-pw") == nullptr);  // the right password, but disabled
  const AclUser* d = acl.authenticate("default", "admin-pw");
  REQUIRE(d != nullptr);
  CHECK_FALSE(d->allowsEverything());
}

TEST_CASE("config: protected_mode defaults to yes and takes yes, no, true or false") {
  TempDir dir;
  for (auto [text, want] : {std::pair{"", true}, std::pair{"protected_mode = \"yes\"\n", true},
                            std::pair{"protected_mode = \"no\"\n", false},
                            std::pair{"protected_mode = false\n", false}}) {
    CAPTURE(text);
    Config c;
    std::string error;
    REQUIRE(loadConfigFile(dir.write("p.toml", text), &c, &error));
    CHECK(c.protected_mode == want);
  }
}

TEST_CASE("config: bad [[users]] are refused with file:line:column") {
  const BadConfig cases[] = {
      {"users = 1\n", "1:1: 'users' must be an array of tables: write each as [[users]]"},
      {"[[users]]\npassword = \"x\"\n", "1:1: user without 'name'"},
      {"[[users]]\nname = \"\"\npassword = \"x\"\n", "2:8: 'name' must not be empty"},
      {"[[users]]\nname = \"a b\"\npassword = \"x\"\n",
       "2:8: user 'a b': 'name' must not contain spaces or control characters"},
      {"[[users]]\nname = \"app\"\n",
       "1:1: user 'app': 'password' or 'password_sha256' is required"},
      {"[[users]]\nname = \"app\"\npassword = \"x\"\nenabled = \"yes\"\n",
       "4:11: user 'app': 'enabled' must be true or false"},
      {"[[users]]\nname = \"app\"\npassword_sha256 = \"abc\"\n",
       "3:19: user 'app': 'password_sha256' must be 64 hex digits (the SHA-256 of the password)"},
      {"[[users]]\nname = \"app\"\npassword = \"x\"\ncommands = \"+@all\"\n",
       "4:12: user 'app': 'commands' must be an array of strings"},
      {"[[users]]\nname = \"app\"\npassword = \"x\"\ncommands = [\"+@all\", \"+nosuch\"]\n",
       "4:22: user 'app': 'commands': unknown command 'nosuch'"},
      {"[[users]]\nname = \"app\"\npassword = \"x\"\ncommands = [\"+@all\", 5]\n",
       "4:22: user 'app': 'commands' must hold strings only"},
      {"[[users]]\nname = \"app\"\npassword = \"x\"\ncommands = [\"-@nosuch\"]\n",
       "4:13: user 'app': 'commands': unknown category '@nosuch' (ACL CAT lists them)"},
      {"[[users]]\nname = \"app\"\npassword = \"x\"\nkeys = [\"~a*\", \"user:*\"]\n",
       "4:16: user 'app': 'keys': 'user:*' is not a key pattern: write ~<pattern>, "
       "%R~<pattern>, %W~<pattern>, %RW~<pattern> or allkeys"},
      {"[[users]]\nname = \"app\"\npassword = \"x\"\ndeny_commands = [\"-flushall\"]\n",
       "4:18: user 'app': 'deny_commands': '-flushall': name the command alone, without + or -"},
      {"[[users]]\nname = \"app\"\npassword = \"x\"\nchannels = [\"&*\"]\n",
       "4:1: user 'app': unknown key 'channels'"},
      {"[[users]]\nname = \"app\"\npassword = \"x\"\n\n[[users]]\nname = \"app\"\npassword = "
       "\"y\"\n",
       "5:1: user 'app': the name is used by another user"},
      {"requirepass = \"a\"\n[[users]]\nname = \"default\"\npassword = \"b\"\n",
       "2:1: user 'default': its password differs from requirepass, which is the default user's "
       "password too: set it in one place, or the same in both"},
      {"protected_mode = \"off\"\n", "1:18: 'protected_mode' must be \"yes\" or \"no\""},
  };
  test::checkRefused(cases);
}

TEST_CASE("config: requirepass and the default user's own password may agree") {
  TempDir dir;
  Config c;
  std::string error;
  CHECK(loadConfigFile(
      dir.write("ok.toml",
                "requirepass = \"a\"\n[[users]]\nname = \"default\"\npassword = \"a\"\n"),
      &c, &error));
  CHECK(error == "");
}

TEST_CASE("protected mode: refuses beyond loopback while the default user has no password") {
  auto refused = [](const char* host, auto&& tweak) {
    Config c;
    c.listen.host = host;
    tweak(c);
    std::string error;
    bool ok = checkProtectedMode(c, &error);
    CHECK(ok == error.empty());
    return !ok;
  };
  auto none = [](Config&) {};
  for (const char* loopback : {"127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"}) {
    CAPTURE(loopback);
    CHECK_FALSE(refused(loopback, none));
  }
  for (const char* open :
       {"0.0.0.0", "::", "10.1.2.3", "192.168.0.1", "::ffff:10.0.0.1", "128.0.0.1"}) {
    CAPTURE(open);
    CHECK(refused(open, none));
  }
  CHECK_FALSE(refused("0.0.0.0", [](Config& c) { c.protected_mode = false; }));
  CHECK_FALSE(refused("0.0.0.0", [](Config& c) { c.requirepass = "pw"; }));
  CHECK_FALSE(refused("0.0.0.0", [](Config& c) {
    UserConfig d;
    d.name = "default";
    d.password_sha256 = std::string(64, 'a');
    c.users.push_back(d);
  }));
  CHECK_FALSE(refused("0.0.0.0", [](Config& c) {
    UserConfig d;
    d.name = "default";
    d.enabled = false;
    c.users.push_back(d);
  }));
  // Other users with passwords do not close the default user's door.
  CHECK(refused("0.0.0.0", [](Config& c) {
    UserConfig app;
    app.name = "app";
    app.password = "x";
    app.has_password = true;
    c.users.push_back(app);
  }));
  Config c;
  c.listen.host = "0.0.0.0";
  c.listen.port = 6380;
  std::string error;
  REQUIRE_FALSE(checkProtectedMode(c, &error));
  CHECK(error.find("0.0.0.0:6380") != std::string::npos);
  CHECK(error.find("requirepass") != std::string::npos);
  CHECK(error.find("protected_mode = \"no\"") != std::string::npos);
}

}  // namespace
}  // namespace readthru
