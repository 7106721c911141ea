#include "proxy/client_list.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <doctest/doctest.h>

namespace readthru {
namespace {

using Argv = std::vector<std::string_view>;

// A client every filter below can name; each test changes one field to exclude it.
ClientSummary victim() {
  ClientSummary c;
  c.id = 7;
  c.addr = "10.0.0.1:50000";
  c.laddr = "127.0.0.1:6379";
  c.user = "bob";
  c.age_s = 100;
  c.type = ClientType::kNormal;
  return c;
}

ClientKillFilter parsedKill(const Argv& argv) {
  ClientKillFilter f;
  std::string err = parseClientKill(argv, &f);
  REQUIRE(err == "");
  return f;
}

TEST_CASE("client line: every field in redis-server 7.0's order, without a newline") {
  ClientSummary c;
  c.id = 42;
  c.addr = "127.0.0.1:51234";
  c.laddr = "127.0.0.1:6379";
  c.fd = 9;
  c.name = "app";
  c.age_s = 120;
  c.idle_s = 3;
  c.flags = "x";
  c.db = 2;
  c.sub = 1;
  c.psub = 2;
  c.ssub = 3;
  c.multi = 4;
  c.qbuf = 26;
  c.qbuf_free = 20448;
  c.argv_mem = 10;
  c.multi_mem = 181;
  c.rbs = 1024;
  c.rbp = 5;
  c.obl = 0;
  c.oll = 0;
  c.omem = 0;
  c.tot_mem = 22298;
  c.events = "rw";
  c.cmd = "client|list";
  c.user = "default";
  c.redir = 17;
  c.resp = 3;
  c.type = ClientType::kPubsub;  // not printed
  CHECK(formatClientLine(c) ==
        "id=42 addr=127.0.0.1:51234 laddr=127.0.0.1:6379 fd=9 name=app age=120 idle=3 flags=x "
        "db=2 sub=1 psub=2 ssub=3 multi=4 qbuf=26 qbuf-free=20448 argv-mem=10 multi-mem=181 "
        "rbs=1024 rbp=5 obl=0 oll=0 omem=0 tot-mem=22298 events=rw cmd=client|list user=default "
        "redir=17 resp=3");
}

TEST_CASE("client line: defaults print an empty name and events, multi=-1 and redir=-1") {
  ClientSummary c;
  c.id = 1;
  c.addr = "/tmp/redis.sock:0";
  c.laddr = "/tmp/redis.sock:0";
  c.flags = "N";
  c.cmd = "NULL";
  c.user = "default";
  CHECK(formatClientLine(c) ==
        "id=1 addr=/tmp/redis.sock:0 laddr=/tmp/redis.sock:0 fd=-1 name= age=0 idle=0 flags=N "
        "db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 "
        "rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events= cmd=NULL user=default redir=-1 resp=2");
}

TEST_CASE("client type names: normal, slave/replica, pubsub, master in any case; others none") {
  CHECK(parseClientType("normal") == ClientType::kNormal);
  CHECK(parseClientType("slave") == ClientType::kReplica);
  CHECK(parseClientType("replica") == ClientType::kReplica);
  CHECK(parseClientType("pubsub") == ClientType::kPubsub);
  CHECK(parseClientType("master") == ClientType::kMaster);
  CHECK(parseClientType("NORMAL") == ClientType::kNormal);
  CHECK(parseClientType("Slave") == ClientType::kReplica);
  CHECK(parseClientType("RePlIcA") == ClientType::kReplica);
  CHECK(parseClientType("PUBSUB") == ClientType::kPubsub);
  CHECK(parseClientType("Master") == ClientType::kMaster);
  CHECK(parseClientType("bad") == std::nullopt);
  CHECK(parseClientType("") == std::nullopt);
  CHECK(parseClientType("normals") == std::nullopt);
  CHECK(parseClientType("monitor") == std::nullopt);
}

TEST_CASE("client list: no arguments, TYPE and ID parse; bad ones give Redis's errors") {
  ClientListFilter f;
  CHECK(parseClientList({"CLIENT", "LIST"}, &f) == "");
  CHECK_FALSE(f.type.has_value());
  CHECK(f.ids.empty());

  CHECK(parseClientList({"client", "list", "type", "PubSub"}, &f) == "");
  CHECK(f.type == ClientType::kPubsub);
  CHECK(f.ids.empty());

  CHECK(parseClientList({"CLIENT", "LIST", "TYPE", "bad"}, &f) == "ERR Unknown client type 'bad'");

  CHECK(parseClientList({"CLIENT", "LIST", "ID", "1", "2", "3"}, &f) == "");
  CHECK_FALSE(f.type.has_value());
  CHECK(f.ids == std::vector<uint64_t>{1, 2, 3});

  CHECK(parseClientList({"CLIENT", "LIST", "id", "3", "1"}, &f) == "");
  CHECK(f.ids == std::vector<uint64_t>{3, 1});

  CHECK(parseClientList({"CLIENT", "LIST", "ID", "1", "x"}, &f) == "ERR Invalid client ID");
  CHECK(parseClientList({"CLIENT", "LIST", "foo"}, &f) == "ERR syntax error");
  CHECK(parseClientList({"CLIENT", "LIST", "TYPE"}, &f) == "ERR syntax error");
  CHECK(parseClientList({"CLIENT", "LIST", "ID"}, &f) == "ERR syntax error");
  CHECK(parseClientList({"CLIENT", "LIST", "TYPE", "normal", "extra"}, &f) == "ERR syntax error");
}

TEST_CASE("client list: a new parse starts from an empty filter") {
  ClientListFilter f;
  REQUIRE(parseClientList({"CLIENT", "LIST", "TYPE", "master"}, &f) == "");
  REQUIRE(parseClientList({"CLIENT", "LIST", "ID", "5"}, &f) == "");
  CHECK_FALSE(f.type.has_value());
  CHECK(f.ids == std::vector<uint64_t>{5});
  REQUIRE(parseClientList({"CLIENT", "LIST"}, &f) == "");
  CHECK(f.ids.empty());
}

TEST_CASE("client list filter: TYPE selects clients of that type, ID those ids, none all") {
  ClientSummary normal = victim();
  ClientSummary pubsub = victim();
  pubsub.id = 8;
  pubsub.type = ClientType::kPubsub;

  ClientListFilter any;
  REQUIRE(parseClientList({"CLIENT", "LIST"}, &any) == "");
  CHECK(any.matches(normal));
  CHECK(any.matches(pubsub));

  ClientListFilter by_type;
  REQUIRE(parseClientList({"CLIENT", "LIST", "TYPE", "pubsub"}, &by_type) == "");
  CHECK_FALSE(by_type.matches(normal));
  CHECK(by_type.matches(pubsub));

  REQUIRE(parseClientList({"CLIENT", "LIST", "TYPE", "normal"}, &by_type) == "");
  CHECK(by_type.matches(normal));
  CHECK_FALSE(by_type.matches(pubsub));

  REQUIRE(parseClientList({"CLIENT", "LIST", "TYPE", "replica"}, &by_type) == "");
  CHECK_FALSE(by_type.matches(normal));
  CHECK_FALSE(by_type.matches(pubsub));

  ClientListFilter by_id;
  REQUIRE(parseClientList({"CLIENT", "LIST", "ID", "8", "99"}, &by_id) == "");
  CHECK_FALSE(by_id.matches(normal));
  CHECK(by_id.matches(pubsub));
}

TEST_CASE("client kill: argument count, old form and each option's error") {
  ClientKillFilter f;
  CHECK(parseClientKill({"CLIENT", "KILL"}, &f) ==
        "ERR wrong number of arguments for 'client|kill' command");

  CHECK(parseClientKill({"CLIENT", "KILL", "1.2.3.4:5"}, &f) == "");
  CHECK(f.old_form);
  CHECK(f.addr == "1.2.3.4:5");
  CHECK_FALSE(f.skip_me);
  CHECK_FALSE(f.id.has_value());
  CHECK_FALSE(f.type.has_value());

  CHECK(parseClientKill({"CLIENT", "KILL", "ID", "abc"}, &f) ==
        "ERR client-id should be greater than 0");
  CHECK(parseClientKill({"CLIENT", "KILL", "ID", "0"}, &f) ==
        "ERR client-id should be greater than 0");
  CHECK(parseClientKill({"CLIENT", "KILL", "ID", "-1"}, &f) ==
        "ERR client-id should be greater than 0");
  CHECK(parseClientKill({"CLIENT", "KILL", "TYPE", "foo"}, &f) == "ERR Unknown client type 'foo'");
  CHECK(parseClientKill({"CLIENT", "KILL", "SKIPME", "maybe"}, &f) == "ERR syntax error");
  CHECK(parseClientKill({"CLIENT", "KILL", "foo", "bar", "baz"}, &f) == "ERR syntax error");
  CHECK(parseClientKill({"CLIENT", "KILL", "ID", "5", "TYPE"}, &f) == "ERR syntax error");
  CHECK(parseClientKill({"CLIENT", "KILL", "BOGUS", "x"}, &f) == "ERR syntax error");
  // MAXAGE as redis-server 7.4, where it comes from, words its errors.
  CHECK(parseClientKill({"CLIENT", "KILL", "MAXAGE", "x"}, &f) ==
        "ERR maxage is not an integer or out of range");
  CHECK(parseClientKill({"CLIENT", "KILL", "MAXAGE", "0"}, &f) ==
        "ERR maxage should be greater than 0");
  CHECK(parseClientKill({"CLIENT", "KILL", "MAXAGE", "-3"}, &f) ==
        "ERR maxage should be greater than 0");
}

TEST_CASE("client kill: a full set of options sets every field, in any case") {
  ClientKillFilter f =
      parsedKill({"CLIENT", "KILL", "ID", "5", "TYPE", "normal", "SKIPME", "no", "ADDR",
                  "1.2.3.4:5", "LADDR", "127.0.0.1:6379", "USER", "bob", "MAXAGE", "10"});
  CHECK_FALSE(f.old_form);
  CHECK(f.id == uint64_t{5});
  CHECK(f.type == ClientType::kNormal);
  CHECK_FALSE(f.skip_me);
  CHECK(f.addr == "1.2.3.4:5");
  CHECK(f.laddr == "127.0.0.1:6379");
  CHECK(f.user == "bob");
  CHECK(f.max_age_s == uint64_t{10});

  ClientKillFilter lower =
      parsedKill({"client", "kill", "id", "6", "type", "SLAVE", "skipme", "YES", "maxage", "1"});
  CHECK(lower.id == uint64_t{6});
  CHECK(lower.type == ClientType::kReplica);
  CHECK(lower.skip_me);
  CHECK(lower.max_age_s == uint64_t{1});
  CHECK_FALSE(lower.addr.has_value());
  CHECK_FALSE(lower.laddr.has_value());
  CHECK_FALSE(lower.user.has_value());

  // The new form skips the caller unless told otherwise.
  ClientKillFilter by_id = parsedKill({"CLIENT", "KILL", "ID", "7"});
  CHECK_FALSE(by_id.old_form);
  CHECK(by_id.skip_me);
}

TEST_CASE("client kill filter: each of ID, ADDR, LADDR, TYPE and USER excludes other clients") {
  const ClientSummary c = victim();

  CHECK(parsedKill({"CLIENT", "KILL", "ID", "7"}).matches(c, false));
  CHECK_FALSE(parsedKill({"CLIENT", "KILL", "ID", "8"}).matches(c, false));

  CHECK(parsedKill({"CLIENT", "KILL", "ADDR", "10.0.0.1:50000"}).matches(c, false));
  CHECK_FALSE(parsedKill({"CLIENT", "KILL", "ADDR", "10.0.0.1:50001"}).matches(c, false));

  CHECK(parsedKill({"CLIENT", "KILL", "LADDR", "127.0.0.1:6379"}).matches(c, false));
  CHECK_FALSE(parsedKill({"CLIENT", "KILL", "LADDR", "127.0.0.1:6380"}).matches(c, false));

  CHECK(parsedKill({"CLIENT", "KILL", "TYPE", "normal"}).matches(c, false));
  CHECK_FALSE(parsedKill({"CLIENT", "KILL", "TYPE", "pubsub"}).matches(c, false));
  CHECK_FALSE(parsedKill({"CLIENT", "KILL", "TYPE", "master"}).matches(c, false));
  CHECK_FALSE(parsedKill({"CLIENT", "KILL", "TYPE", "replica"}).matches(c, false));

  CHECK(parsedKill({"CLIENT", "KILL", "USER", "bob"}).matches(c, false));
  CHECK_FALSE(parsedKill({"CLIENT", "KILL", "USER", "alice"}).matches(c, false));

  // Filters are ANDed: one mismatch is enough.
  CHECK(parsedKill({"CLIENT", "KILL", "ID", "7", "USER", "bob"}).matches(c, false));
  CHECK_FALSE(parsedKill({"CLIENT", "KILL", "ID", "7", "USER", "alice"}).matches(c, false));

  // The old form names an address.
  CHECK(parsedKill({"CLIENT", "KILL", "10.0.0.1:50000"}).matches(c, false));
  CHECK_FALSE(parsedKill({"CLIENT", "KILL", "10.0.0.1:1"}).matches(c, false));
}

TEST_CASE("client kill filter: MAXAGE names clients at least that old") {
  ClientSummary c = victim();
  ClientKillFilter f = parsedKill({"CLIENT", "KILL", "MAXAGE", "10"});
  c.age_s = 9;
  CHECK_FALSE(f.matches(c, false));
  c.age_s = 10;
  CHECK(f.matches(c, false));
  c.age_s = 11;
  CHECK(f.matches(c, false));
  c.age_s = 0;
  CHECK_FALSE(f.matches(c, false));
}

TEST_CASE("client kill filter: SKIPME yes spares the caller; SKIPME no and the old form do not") {
  const ClientSummary c = victim();

  ClientKillFilter by_default = parsedKill({"CLIENT", "KILL", "ID", "7"});
  CHECK_FALSE(by_default.matches(c, true));
  CHECK(by_default.matches(c, false));

  ClientKillFilter yes = parsedKill({"CLIENT", "KILL", "ID", "7", "SKIPME", "yes"});
  CHECK_FALSE(yes.matches(c, true));
  CHECK(yes.matches(c, false));

  ClientKillFilter no = parsedKill({"CLIENT", "KILL", "ID", "7", "SKIPME", "no"});
  CHECK(no.matches(c, true));
  CHECK(no.matches(c, false));

  ClientKillFilter old_form = parsedKill({"CLIENT", "KILL", "10.0.0.1:50000"});
  CHECK(old_form.matches(c, true));
}

}  // namespace
}  // namespace readthru
