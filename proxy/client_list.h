#pragma once
// ClientList: CLIENT LIST, CLIENT INFO and CLIENT KILL over readthru's own clients.
//
// An application talks to readthru as to its Redis, so the clients these commands describe and
// kill are the ones connected to readthru, not readthru's upstream connections: a name set with
// CLIENT SETNAME shows in CLIENT LIST, CLIENT KILL ADDR finds the address CLIENT LIST printed,
// and INFO's connected_clients counts them. This file is the part without sockets: the line
// redis-server prints for a client, the arguments as redis-server (7.0, plus 7.4's MAXAGE)
// parses them, with its error texts, and which clients a KILL names. ClientConn describes
// itself (ClientSummary); Server walks its clients.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace readthru {

enum class ClientType { kNormal, kReplica, kPubsub, kMaster };

// What CLIENT LIST prints of one client, in its order.
struct ClientSummary {
  uint64_t id = 0;
  std::string addr;   // "ip:port", "[ip6]:port" or "/path/of/unixsocket:0"
  std::string laddr;  // the address the client connected to, same forms
  int fd = -1;
  std::string name;
  uint64_t age_s = 0;
  uint64_t idle_s = 0;
  std::string flags;  // Redis's letters; "N" when none applies
  int64_t db = 0;
  size_t sub = 0, psub = 0, ssub = 0;
  int64_t multi = -1;  // commands queued in MULTI, -1 outside one
  size_t qbuf = 0, qbuf_free = 0, argv_mem = 0, multi_mem = 0, rbs = 0, rbp = 0;
  size_t obl = 0, oll = 0, omem = 0, tot_mem = 0;
  std::string events;  // "r", "w", "rw" or ""
  std::string cmd;     // the last command, "client|list" for a subcommand, "NULL" before any
  std::string user;
  int64_t redir = -1;
  int resp = 2;
  ClientType type = ClientType::kNormal;
};

// "normal", "slave"/"replica", "pubsub", "master", any case.
std::optional<ClientType> parseClientType(std::string_view name);

// One line of CLIENT LIST / CLIENT INFO, without its "\n".
std::string formatClientLine(const ClientSummary& c);

// CLIENT LIST [TYPE type | ID id [id ...]]: an empty error means `out` holds the selection.
struct ClientListFilter {
  std::optional<ClientType> type;
  std::vector<uint64_t> ids;  // empty: any
  bool matches(const ClientSummary& c) const;
};
std::string parseClientList(const std::vector<std::string_view>& argv, ClientListFilter* out);

// CLIENT KILL addr:port (the old form: +OK, or "No such client") or
// CLIENT KILL <filter value> ... with ID, TYPE, USER, ADDR, LADDR, SKIPME and MAXAGE (a count).
// The USER filter names a user the caller checks exists (Redis: "No such user").
struct ClientKillFilter {
  bool old_form = false;
  std::optional<uint64_t> id;
  std::optional<ClientType> type;
  std::optional<std::string> addr, laddr, user;
  std::optional<uint64_t> max_age_s;
  bool skip_me = true;
  // `self`: c is the client running the KILL.
  bool matches(const ClientSummary& c, bool self) const;
};
std::string parseClientKill(const std::vector<std::string_view>& argv, ClientKillFilter* out);

}  // namespace readthru
