#include "proxy/client_list.h"

#include <fmt/format.h>

#include "proxy/redis_int.h"
#include "resp/ascii_case.h"
#include "resp/errors.h"

namespace readthru {

std::optional<ClientType> parseClientType(std::string_view name) {
  if (equalsIgnoreCase(name, "normal")) return ClientType::kNormal;
  if (equalsIgnoreCase(name, "slave") || equalsIgnoreCase(name, "replica")) {
    return ClientType::kReplica;
  }
  if (equalsIgnoreCase(name, "pubsub")) return ClientType::kPubsub;
  if (equalsIgnoreCase(name, "master")) return ClientType::kMaster;
  return std::nullopt;
}

std::string formatClientLine(const ClientSummary& c) {
  return fmt::format(
      "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} "
      "multi={} qbuf={} qbuf-free={} argv-mem={} multi-mem={} rbs={} rbp={} obl={} oll={} "
      "omem={} tot-mem={} events={} cmd={} user={} redir={} resp={}",
      c.id, c.addr, c.laddr, c.fd, c.name, c.age_s, c.idle_s, c.flags, c.db, c.sub, c.psub, c.ssub,
      c.multi, c.qbuf, c.qbuf_free, c.argv_mem, c.multi_mem, c.rbs, c.rbp, c.obl, c.oll, c.omem,
      c.tot_mem, c.events, c.cmd, c.user, c.redir, c.resp);
}

bool ClientListFilter::matches(const ClientSummary& c) const {
  if (type && c.type != *type) return false;
  if (ids.empty()) return true;
  for (uint64_t id : ids) {
    if (id == c.id) return true;
  }
  return false;
}

std::string parseClientList(const std::vector<std::string_view>& argv, ClientListFilter* out) {
  *out = ClientListFilter{};
  if (argv.size() == 2) return {};
  if (argv.size() == 4 && equalsIgnoreCase(argv[2], "type")) {
    out->type = parseClientType(argv[3]);
    if (!out->type) return fmt::format("ERR Unknown client type '{}'", argv[3]);
    return {};
  }
  if (argv.size() > 3 && equalsIgnoreCase(argv[2], "id")) {
    for (size_t i = 3; i < argv.size(); ++i) {
      int64_t id = 0;
      if (!parseRedisInt(argv[i], &id)) return "ERR Invalid client ID";
      // No client has an id below 1; the id still takes its place in the request.
      out->ids.push_back(id < 1 ? 0 : static_cast<uint64_t>(id));
    }
    return {};
  }
  return std::string(resp::err::kSyntax);
}

bool ClientKillFilter::matches(const ClientSummary& c, bool self) const {
  if (addr && c.addr != *addr) return false;
  if (laddr && c.laddr != *laddr) return false;
  if (type && c.type != *type) return false;
  if (id && c.id != *id) return false;
  if (user && c.user != *user) return false;
  if (max_age_s && c.age_s < *max_age_s) return false;
  return !(self && skip_me);
}

std::string parseClientKill(const std::vector<std::string_view>& argv, ClientKillFilter* out) {
  *out = ClientKillFilter{};
  if (argv.size() < 3) return "ERR wrong number of arguments for 'client|kill' command";
  if (argv.size() == 3) {
    // The old form names one address, and may name the caller itself.
    out->old_form = true;
    out->addr = std::string(argv[2]);
    out->skip_me = false;
    return {};
  }
  for (size_t i = 2; i < argv.size(); i += 2) {
    if (i + 1 >= argv.size()) return std::string(resp::err::kSyntax);
    std::string_view option = argv[i];
    std::string_view value = argv[i + 1];
    if (equalsIgnoreCase(option, "id")) {
      int64_t id = 0;
      if (!parseRedisInt(value, &id) || id < 1) return "ERR client-id should be greater than 0";
      out->id = static_cast<uint64_t>(id);
    } else if (equalsIgnoreCase(option, "type")) {
      out->type = parseClientType(value);
      if (!out->type) return fmt::format("ERR Unknown client type '{}'", value);
    } else if (equalsIgnoreCase(option, "addr")) {
      out->addr = std::string(value);
    } else if (equalsIgnoreCase(option, "laddr")) {
      out->laddr = std::string(value);
    } else if (equalsIgnoreCase(option, "user")) {
      out->user = std::string(value);
    } else if (equalsIgnoreCase(option, "skipme")) {
      if (equalsIgnoreCase(value, "yes")) {
        out->skip_me = true;
      } else if (equalsIgnoreCase(value, "no")) {
        out->skip_me = false;
      } else {
        return std::string(resp::err::kSyntax);
      }
    } else if (equalsIgnoreCase(option, "maxage")) {
      // Redis 7.4: the clients connected for at least this many seconds.
      int64_t age = 0;
      if (!parseRedisInt(value, &age)) return "ERR maxage is not an integer or out of range";
      if (age <= 0) return "ERR maxage should be greater than 0";
      out->max_age_s = static_cast<uint64_t>(age);
    } else {
      return std::string(resp::err::kSyntax);
    }
  }
  return {};
}

}  // namespace readthru
