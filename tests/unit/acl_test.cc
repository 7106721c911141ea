#include "proxy/acl.h"

#include <string>
#include <string_view>
#include <vector>

#include <doctest/doctest.h>

#include "proxy/command_router.h"
#include "proxy/password_hash.h"

namespace readthru {
namespace {

constexpr std::string_view kNoPermKey =
    "NOPERM this user has no permissions to access one of the keys used as arguments";

std::string noPermCommand(std::string_view name) {
  return "NOPERM this user has no permissions to run the '" + std::string(name) + "' command";
}

// What the user may do with argv: "" when allowed, else the error.
std::string check(const Acl& acl, std::string_view user, std::vector<std::string_view> argv) {
  const AclUser* u = nullptr;
  if (user == "default") {
    u = &acl.defaultUser();
  } else {
    u = acl.authenticate(user, std::string(user) + "-pw");
  }
  REQUIRE(u != nullptr);
  RouteDecision d = routeCommand(argv);
  return acl.check(*u, d.info, argv);
}

UserConfig user(std::string name, std::vector<std::string> commands, std::vector<std::string> keys,
                std::vector<std::string> deny = {}) {
  UserConfig u;
  u.password = name + "-pw";
  u.has_password = true;
  u.name = std::move(name);
  u.commands = std::move(commands);
  u.keys = std::move(keys);
  u.deny_commands = std::move(deny);
  return u;
}

TEST_CASE("sha256: FIPS 180-4 vectors and the padding boundaries") {
  struct Case {
    std::string text;
    std::string_view hex;
  };
  const Case cases[] = {
      {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
      {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
      {std::string(55, 'a'), "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"},
      {std::string(56, 'a'), "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"},
      {std::string(64, 'a'), "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"},
      {std::string(119, 'a'), "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb"},
      {std::string(1000000, 'a'),
       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text.size());
    CHECK(toHex(sha256(c.text)) == c.hex);
    PasswordHash parsed;
    REQUIRE(parsePasswordHash(c.hex, &parsed));
    CHECK(hashesEqual(parsed, sha256(c.text)));
  }
  PasswordHash h;
  CHECK(parsePasswordHash("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD", &h));
  CHECK_FALSE(parsePasswordHash("ba7816bf", &h));
  CHECK_FALSE(parsePasswordHash(std::string(63, 'a') + "g", &h));
}

TEST_CASE("acl rules: what the config accepts") {
  std::string why;
  for (std::string_view ok :
       {"+@all", "-@all", "allcommands", "nocommands", "+@read", "-@DANGEROUS", "+get", "-FLUSHALL",
        "+config|get", "-client|kill", "+readthru", "+@admin"}) {
    CAPTURE(ok);
    CHECK(aclCheckCommandRule(ok, &why));
  }
  CHECK_FALSE(aclCheckCommandRule("+nosuchcommand", &why));
  CHECK(why == "unknown command 'nosuchcommand'");
  CHECK_FALSE(aclCheckCommandRule("+@nosuch", &why));
  CHECK(why == "unknown category '@nosuch' (ACL CAT lists them)");
  CHECK_FALSE(aclCheckCommandRule("get", &why));
  CHECK(why.find("'get' is not a command rule") == 0);
  CHECK_FALSE(aclCheckCommandRule("+config|nosuch", &why));
  CHECK_FALSE(aclCheckCommandRule("+get|x", &why));
  CHECK_FALSE(aclCheckCommandRule("+", &why));

  for (std::string_view ok :
       {"~*", "~user:*", "%R~ro:*", "%W~w:*", "%RW~x", "%wr~y", "allkeys", "resetkeys", "~"}) {
    CAPTURE(ok);
    CHECK(aclCheckKeyRule(ok, &why));
  }
  for (std::string_view bad : {"user:*", "%X~a", "%~a", "%R", "*"}) {
    CAPTURE(bad);
    CHECK_FALSE(aclCheckKeyRule(bad, &why));
  }

  CHECK(aclCheckDenyCommand("FLUSHALL", &why));
  CHECK(aclCheckDenyCommand("config|set", &why));
  CHECK(aclCheckDenyCommand("@dangerous", &why));
  CHECK_FALSE(aclCheckDenyCommand("-flushall", &why));
  CHECK_FALSE(aclCheckDenyCommand("nosuch", &why));
}

TEST_CASE("acl: the default user without [[users]] may do everything") {
  Config c;
  Acl acl(c);
  CHECK(acl.userCount() == 1);
  REQUIRE(acl.initialUser() == &acl.defaultUser());
  CHECK(acl.defaultUser().allowsEverything());
  CHECK(acl.defaultUser().noPassword());
  CHECK(acl.authenticate("default", "anything") == &acl.defaultUser());
  CHECK(acl.authenticate("nosuch", "anything") == nullptr);
}

TEST_CASE("acl: requirepass is the default user's password") {
  Config c;
  c.requirepass = "s3cret";
  Acl acl(c);
  CHECK(acl.initialUser() == nullptr);
  CHECK(acl.authenticate("default", "s3cret") == &acl.defaultUser());
  CHECK(acl.authenticate("default", "S3cret") == nullptr);
  CHECK(acl.authenticate("default", "") == nullptr);
}

TEST_CASE("acl: users authenticate with a password or its SHA-256, unless disabled") {
  Config c;
  c.users.push_back(user("app", {"+@all"}, {"~*"}));
  UserConfig hashed = user("hashed", {"+get"}, {"~*"});
  hashed.has_password = false;
  hashed.password_sha256 = toHex(sha256("hashed-pw"));
  c.users.push_back(hashed);
  UserConfig off = user("off", {"+@all"}, {"~*"});
  off.enabled = false;
  c.users.push_back(off);
  Acl acl(c);
  CHECK(acl.userCount() == 4);
  const AclUser* app = acl.authenticate("app", "app-pw");
  REQUIRE(app != nullptr);
  CHECK(app->name() == "app");
  CHECK(app->allowsEverything());
  CHECK(acl.authenticate("app", "wrong") == nullptr);
  CHECK(acl.authenticate("APP", "app-pw") == nullptr);  // names are case-sensitive, as in Redis
  REQUIRE(acl.authenticate("hashed", "hashed-pw") != nullptr);
  CHECK_FALSE(acl.authenticate("hashed", "hashed-pw")->allowsEverything());
  CHECK(acl.authenticate("off", "off-pw") == nullptr);
  CHECK(acl.initialUser() == &acl.defaultUser());  // still no requirepass
}

TEST_CASE("acl: a [[users]] entry for default replaces its rules and can disable it") {
  Config c;
  UserConfig d = user("default", {"+ping"}, {});
  d.has_password = false;
  c.users.push_back(d);
  Acl acl(c);
  CHECK(acl.userCount() == 1);
  REQUIRE(acl.initialUser() == &acl.defaultUser());
  CHECK_FALSE(acl.defaultUser().allowsEverything());
  CHECK(check(acl, "default", {"PING"}).empty());
  CHECK(check(acl, "default", {"GET", "k"}) == noPermCommand("get"));

  Config c2;
  c2.requirepass = "pw";
  UserConfig off;
  off.name = "default";
  off.enabled = false;
  off.commands = {"+@all"};
  c2.users.push_back(off);
  Acl acl2(c2);
  CHECK(acl2.initialUser() == nullptr);
  CHECK(acl2.authenticate("default", "pw") == nullptr);
}

TEST_CASE("acl: command rules apply in order, deny_commands last") {
  Config c;
  c.users.push_back(user("app", {"+@all", "-@dangerous", "+info"}, {"~*"},
                         {"FLUSHALL", "config", "debug", "SHUTDOWN"}));
  c.users.push_back(user("reader", {"+@read", "-@all", "+@read", "+readthru"}, {"~*"}));
  c.users.push_back(user("sub", {"+config|get", "+client"}, {"~*"}));
  c.users.push_back(user("slow", {"+@slow"}, {"~*"}, {"config|set"}));
  Acl acl(c);
  CHECK(check(acl, "app", {"GET", "k"}).empty());
  CHECK(check(acl, "app", {"SET", "k", "v"}).empty());
  CHECK(check(acl, "app", {"INFO"}).empty());  // dangerous, then allowed again
  CHECK(check(acl, "app", {"KEYS", "*"}) == noPermCommand("keys"));
  CHECK(check(acl, "app", {"FLUSHALL"}) == noPermCommand("flushall"));
  CHECK(check(acl, "app", {"CONFIG", "GET", "maxmemory"}) == noPermCommand("config|get"));
  CHECK(check(acl, "app", {"config", "resetstat"}) == noPermCommand("config|resetstat"));
  CHECK(check(acl, "app", {"CONFIG", "NOSUCH"}) == noPermCommand("config|nosuch"));
  CHECK(check(acl, "app", {"READTHRU", "STATS"}) == noPermCommand("readthru"));
  CHECK(check(acl, "app", {"ACL", "WHOAMI"}).empty());
  CHECK(check(acl, "app", {"ACL", "SETUSER", "x"}) == noPermCommand("acl|setuser"));
  // AUTH, HELLO, QUIT and RESET are open to every user.
  CHECK(check(acl, "reader", {"AUTH", "x", "y"}).empty());
  CHECK(check(acl, "reader", {"HELLO", "3"}).empty());
  CHECK(check(acl, "reader", {"RESET"}).empty());
  CHECK(check(acl, "reader", {"GET", "k"}).empty());
  CHECK(check(acl, "reader", {"SET", "k", "v"}) == noPermCommand("set"));
  CHECK(check(acl, "reader", {"READTHRU", "STATS"}).empty());
  CHECK(check(acl, "reader", {"readthru", "help"}).empty());
  CHECK(check(acl, "sub", {"CONFIG", "GET", "x"}).empty());
  CHECK(check(acl, "sub", {"CONFIG", "SET", "x", "y"}) == noPermCommand("config|set"));
  CHECK(check(acl, "sub", {"CLIENT", "KILL", "ID", "1"}).empty());  // +client: every subcommand
  CHECK(check(acl, "sub", {"CLIENT", "NOSUCH"}).empty());           // and the container itself
  CHECK(check(acl, "sub", {"GET", "k"}) == noPermCommand("get"));
  // A category reaches a container's subcommands through the container, as in Redis 7.0:
  // CONFIG is @slow, so +@slow allows CONFIG SET unless it is taken away.
  CHECK(check(acl, "slow", {"CONFIG", "GET", "x"}).empty());
  CHECK(check(acl, "slow", {"CONFIG", "SET", "x", "y"}) == noPermCommand("config|set"));
  CHECK(check(acl, "slow", {"GET", "k"}) == noPermCommand("get"));  // @fast
}

TEST_CASE("acl: key patterns, with read and write permissions from the key specs") {
  Config c;
  c.users.push_back(user("app", {"+@all"}, {"~user:*", "~product:*", "%R~ro:*", "%W~wo:*"}));
  c.users.push_back(user("reset", {"+@all"}, {"~*", "resetkeys", "~a*"}));
  c.users.push_back(user("readall", {"+@all"}, {"%R~*"}));
  Acl acl(c);
  std::string key(kNoPermKey);
  CHECK(check(acl, "app", {"GET", "user:1"}).empty());
  CHECK(check(acl, "app", {"GET", "other"}) == key);
  CHECK(check(acl, "app", {"MGET", "user:1", "product:2"}).empty());
  CHECK(check(acl, "app", {"MGET", "user:1", "other", "product:2"}) == key);
  CHECK(check(acl, "app", {"MSET", "user:1", "other", "product:2", "v"}).empty());  // values
  CHECK(check(acl, "app", {"SET", "user:1", "v"}).empty());
  CHECK(check(acl, "app", {"GET", "ro:1"}).empty());
  CHECK(check(acl, "app", {"SET", "ro:1", "v"}) == key);
  CHECK(check(acl, "app", {"SET", "wo:1", "v"}).empty());  // SET without GET does not read
  CHECK(check(acl, "app", {"SET", "wo:1", "v", "GET"}) == key);
  CHECK(check(acl, "app", {"GET", "wo:1"}) == key);
  CHECK(check(acl, "app", {"EXISTS", "wo:1", "ro:1"}).empty());  // neither read nor write
  CHECK(check(acl, "app", {"BITFIELD", "ro:1", "GET", "u8", "0"}).empty());
  CHECK(check(acl, "app", {"BITFIELD", "ro:1", "SET", "u8", "0", "1"}) == key);
  CHECK(check(acl, "app", {"COPY", "ro:1", "user:2"}).empty());
  CHECK(check(acl, "app", {"COPY", "user:2", "ro:1"}) == key);
  CHECK(check(acl, "app", {"EVAL", "return 1", "2", "user:1", "product:1", "other"}).empty());
  CHECK(check(acl, "app", {"EVAL", "return 1", "1", "other"}) == key);
  CHECK(check(acl, "app", {"EVAL", "return 1", "0"}).empty());
  CHECK(check(acl, "app", {"ZUNIONSTORE", "user:z", "2", "user:a", "other"}) == key);
  CHECK(check(acl, "app", {"XREAD", "COUNT", "1", "STREAMS", "user:s", "other", "0", "0"}) == key);
  CHECK(check(acl, "app", {"XREAD", "STREAMS", "user:s", "other"}).empty());  // ids, not keys
  CHECK(check(acl, "app", {"OBJECT", "ENCODING", "other"}) == key);
  CHECK(check(acl, "app", {"SORT", "user:l", "STORE", "other"}) == key);
  CHECK(check(acl, "app", {"SORT", "user:l", "LIMIT", "0", "1", "STORE", "user:d"}).empty());
  CHECK(check(acl, "app", {"SORT", "user:l", "BY", "nosort"}).empty());
  CHECK(check(acl, "app", {"SORT", "user:l", "BY", "w_*"}) ==
        "ERR BY option of SORT denied due to insufficient ACL permissions.");
  CHECK(check(acl, "app", {"SORT_RO", "user:l", "GET", "#"}) ==
        "ERR GET option of SORT denied due to insufficient ACL permissions.");
  CHECK(check(acl, "readall", {"SORT", "k", "BY", "w_*", "GET", "#"}).empty());
  CHECK(check(acl, "app", {"MIGRATE", "h", "1", "", "0", "10", "KEYS", "user:1", "other"}) == key);
  CHECK(check(acl, "app", {"MIGRATE", "h", "1", "user:1", "0", "10"}).empty());
  CHECK(check(acl, "app", {"PING"}).empty());
  CHECK(check(acl, "reset", {"GET", "abc"}).empty());
  CHECK(check(acl, "reset", {"GET", "b"}) == key);
}

}  // namespace
}  // namespace readthru
