#include "proxy/readthru_command.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <variant>

#include "proxy/busy_poll.h"
#include "proxy/client_conn.h"
#include "proxy/command_router.h"
#include "proxy/redis_int.h"
#include "proxy/reply_slot.h"
#include "proxy/server.h"
#include "resp/ascii_case.h"
#include "resp/reply_encoder.h"

namespace readthru {
namespace {

struct Counter {
  std::string_view name;
  uint64_t value;
};

std::vector<Counter> loaderCounters(const LoaderStats& s) {
  return {
      {"hits", s.hits},
      {"misses", s.misses},
      {"loads", s.loads},
      {"coalesced", s.coalesced},
      {"negative_hits", s.negative_hits},
      {"errors", s.errors},
      {"timeouts", s.timeouts},
      {"rejected", s.rejected},
      {"superseded", s.superseded},
      {"fills", s.fills},
      {"refreshes", s.refreshes},
      {"load_p50_us", s.latency.percentile(0.5)},
      {"load_p99_us", s.latency.percentile(0.99)},
      {"load_p999_us", s.latency.percentile(0.999)},
      {"load_max_us", s.latency.max()},
  };
}

std::vector<Counter> writerCounters(Server* server, const Writer& w) {
  const WriterStats& s = w.stats();
  WriterQueueState q = server->writerQueue(w);
  return {
      {"writes", s.writes},       {"db_writes", s.db_writes},
      {"errors", s.errors},       {"timeouts", s.timeouts},
      {"batches", s.batches},     {"coalesced", s.coalesced},
      {"retries", s.retries},     {"dead_letters", s.dead_letters},
      {"queue_length", q.length}, {"oldest_pending_ms", q.oldest_pending_ms},
  };
}

void answerStats(Server* server, int protocol, std::string* out) {
  resp::ReplyEncoder e(out, protocol);
  const auto& loaders = server->loaders()->loaders();
  const auto& writers = server->loaders()->writers();
  e.mapHeader(loaders.size() + writers.size());
  for (const auto& l : loaders) {
    e.bulk(l->name());
    std::vector<Counter> counters = loaderCounters(l->stats());
    e.mapHeader(counters.size() + 1);
    for (const Counter& c : counters) {
      e.bulk(c.name);
      e.integer(static_cast<int64_t>(c.value));
    }
    // The load-latency histogram: loads per bucket (not cumulative), by upper bound in us.
    e.bulk("load_latency_histogram");
    const auto& bounds = LatencyHistogram::kReportBounds;
    const auto& counts = l->stats().latency.reportCounts();
    e.mapHeader(bounds.size());
    for (size_t i = 0; i < bounds.size(); ++i) {
      e.bulk(bounds[i] == UINT64_MAX ? std::string("le_inf") : fmt::format("le_{}", bounds[i]));
      e.integer(static_cast<int64_t>(counts[i]));
    }
  }
  for (const auto& w : writers) {
    e.bulk("writer:" + w->name());
    std::vector<Counter> counters = writerCounters(server, *w);
    e.mapHeader(counters.size());
    for (const Counter& c : counters) {
      e.bulk(c.name);
      e.integer(static_cast<int64_t>(c.value));
    }
  }
}

std::string_view loaderTypeName(LoaderType t) {
  switch (t) {
    case LoaderType::kString:
      return "string";
    case LoaderType::kJson:
      return "json";
    case LoaderType::kHash:
      return "hash";
  }
  return "string";
}

// One field of READTHRU LOADERS or WRITERS: an integer or a string.
struct ConfigField {
  std::string_view name;
  std::variant<int64_t, std::string> value;
};

// A loader's configuration as conf/readthru.toml spells it, durations in milliseconds,
// refresh_ahead as a decimal string (as CONFIG GET gives numbers).
std::vector<ConfigField> loaderFields(const Loader& l) {
  const LoaderConfig& c = l.config();
  auto i64 = [](uint64_t v) { return static_cast<int64_t>(v); };
  return {
      {"key", c.key},
      {"backend", c.backend},
      {"type", std::string(loaderTypeName(c.type))},
      {"ttl_ms", i64(c.ttl_ms)},
      {"jitter_ms", i64(c.jitter_ms)},
      {"negative_ttl_ms", i64(c.negative_ttl_ms)},
      {"timeout_ms", i64(c.timeout_ms)},
      {"refresh_ahead", fmt::format("{}", c.refresh_ahead)},
      {"query", c.query},
  };
}

// A writer's, likewise. flush_interval_ms, batch and max_attempts are given for every writer,
// though only "behind" writers use them.
std::vector<ConfigField> writerFields(const Writer& w) {
  const WriterConfig& c = w.config();
  auto i64 = [](uint64_t v) { return static_cast<int64_t>(v); };
  return {
      {"key", c.key},
      {"backend", c.backend},
      {"mode", std::string(w.behind() ? "behind" : "through")},
      {"timeout_ms", i64(c.timeout_ms)},
      {"flush_interval_ms", i64(c.flush_interval_ms)},
      {"batch", i64(c.batch)},
      {"max_attempts", int64_t{c.max_attempts}},
      {"upsert", c.upsert},
      {"delete", c.del},
  };
}

// READTHRU LOADERS and WRITERS: per loader or writer (by name), its fields; shaped like
// READTHRU STATS (RESP3 a map of maps, RESP2 flat arrays).
template <typename Items, typename FieldsOf>
void answerConfigs(resp::ReplyEncoder& e, const Items& items, FieldsOf fields_of) {
  e.mapHeader(items.size());
  for (const auto& item : items) {
    e.bulk(item->name());
    std::vector<ConfigField> fields = fields_of(*item);
    e.mapHeader(fields.size());
    for (const ConfigField& f : fields) {
      e.bulk(f.name);
      if (const int64_t* v = std::get_if<int64_t>(&f.value)) {
        e.integer(*v);
      } else {
        e.bulk(std::get<std::string>(f.value));
      }
    }
  }
}

constexpr std::string_view kSlowlogHelp[] = {
    "READTHRU SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET [<count>]",
    "    Return top <count> entries from the loader slowlog (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, [loader name, key], outcome",
    "LEN",
    "    Return the length of the loader slowlog.",
    "RESET",
    "    Reset the loader slowlog.",
    "HELP",
    "    Prints this help.",
};

// READTHRU SLOWLOG ...: Redis's SLOWLOG, with its replies and error texts, over loads. An entry
// is [id, unix time, microseconds, [loader, key], outcome]: Redis's shape, the loader and key
// where Redis has the command's arguments, the outcome where it has the client's address.
void answerSlowlog(SlowLog* slowlog, const std::vector<std::string_view>& argv,
                   resp::ReplyEncoder& e) {
  if (argv.size() < 3) {
    e.error("ERR wrong number of arguments for 'readthru|slowlog' command");
    return;
  }
  std::string_view sub = argv[2];
  std::string typed(sub.substr(0, 128));
  if (equalsIgnoreCase(sub, "get") && argv.size() <= 4) {
    int64_t count = 10;
    if (argv.size() == 4 && (!parseRedisInt(argv[3], &count) || count < -1)) {
      e.error("ERR count should be greater than or equal to -1");
      return;
    }
    const auto& entries = slowlog->entries();
    size_t n = count < 0 ? entries.size() : std::min(entries.size(), static_cast<size_t>(count));
    e.arrayHeader(n);
    for (size_t i = 0; i < n; ++i) {
      const SlowLogEntry& entry = entries[i];
      e.arrayHeader(5);
      e.integer(static_cast<int64_t>(entry.id));
      e.integer(entry.unix_time);
      e.integer(static_cast<int64_t>(entry.duration_us));
      e.arrayHeader(2);
      e.bulk(entry.loader);
      e.bulk(entry.key);
      e.bulk(entry.outcome);
    }
    return;
  }
  if (equalsIgnoreCase(sub, "get")) {
    e.error(fmt::format(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try READTHRU SLOWLOG HELP.",
        typed));
    return;
  }
  for (std::string_view name : {"len", "reset", "help"}) {
    if (equalsIgnoreCase(sub, name) && argv.size() != 3) {
      e.error(fmt::format("ERR wrong number of arguments for 'readthru|slowlog|{}' command", name));
      return;
    }
  }
  if (equalsIgnoreCase(sub, "len")) {
    e.integer(static_cast<int64_t>(slowlog->size()));
  } else if (equalsIgnoreCase(sub, "reset")) {
    slowlog->reset();
    e.ok();
  } else if (equalsIgnoreCase(sub, "help")) {
    e.arrayHeader(std::size(kSlowlogHelp));
    for (std::string_view line : kSlowlogHelp) e.simple(line);
  } else {
    e.error(fmt::format("ERR unknown subcommand '{}'. Try READTHRU SLOWLOG HELP.", typed));
  }
}

constexpr std::string_view kHelp[] = {
    "READTHRU <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "STATS",
    "    Per loader: hits, misses, loads, coalesced waiters, negative-cache hits, errors,",
    "    timeouts, rejected and superseded loads, fills, load latency percentiles and histogram.",
    "    Per writer (\"writer:<name>\"): writes, database writes, errors, timeouts, batches,",
    "    coalesced writes, retries, dead letters, queue length, oldest pending write.",
    "LOADERS",
    "    Per loader: its key template, backend, type, ttl_ms, jitter_ms, negative_ttl_ms,",
    "    timeout_ms, refresh_ahead and query.",
    "WRITERS",
    "    Per writer: its key template, backend, mode, timeout_ms, flush_interval_ms, batch,",
    "    max_attempts, upsert and delete statements.",
    "SLOWLOG GET [<count>]|LEN|RESET|HELP",
    "    The loads that took at least slowlog_log_slower_than microseconds, newest first:",
    "    id, timestamp, time in microseconds, [loader name, key], outcome.",
    "RELOAD",
    "    Read the configuration file again and apply it, as SIGHUP does. Replies OK once the",
    "    new configuration runs, or an error saying why it was rejected (the running one stays).",
    "HELP",
    "    Print this help.",
};

// Sets the value of INFO's `field` (its first line "<field>:...") to `value`, if it is there.
void setInfoField(std::string* body, std::string_view field, std::string_view value) {
  std::string line = fmt::format("{}:", field);
  size_t at = body->rfind(line, 0) == 0 ? 0 : body->find("\r\n" + line);
  if (at == std::string::npos) return;
  if (at != 0) at += 2;
  size_t start = at + line.size();
  size_t end = body->find("\r\n", start);
  body->replace(start, (end == std::string::npos ? body->size() : end) - start, value);
}

// INFO's clients are readthru's: connected_clients counts the clients connected to readthru
// (without replicas, as redis-server counts), not readthru's upstream connections; maxclients
// is readthru's limit, and the connections received and refused at it are readthru's.
void describeOwnClients(Server* server, std::string* body) {
  size_t clients = 0;
  for (ClientConn* c : server->openClients()) clients += !c->replica();
  setInfoField(body, "connected_clients", std::to_string(clients));
  setInfoField(body, "maxclients", std::to_string(server->config().maxclients));
  setInfoField(body, "total_connections_received", std::to_string(server->connectionsReceived()));
  setInfoField(body, "rejected_connections", std::to_string(server->connectionsRejected()));
}

// INFO's reply is a bulk string (RESP2) or a verbatim string "txt:..." (RESP3).
class InfoInterceptor final : public SlotInterceptor {
 public:
  // `add_section`: the reply gets readthru's own section too.
  InfoInterceptor(Server* server, bool add_section) : server_(server), add_section_(add_section) {}
  void onReply(ReplySlot* slot) override {
    std::string reply;
    reply.swap(slot->data_);
    std::string_view r = reply;
    char type = r.empty() ? 0 : r[0];
    size_t eol = r.find("\r\n");
    size_t len = 0;
    if ((type == '$' || type == '=') && eol != std::string_view::npos) {
      auto [p, ec] = std::from_chars(r.data() + 1, r.data() + eol, len);
      if (ec == std::errc() && p == r.data() + eol && eol + 2 + len + 2 == r.size()) {
        std::string body(r.substr(eol + 2, len));
        describeOwnClients(server_, &body);
        if (add_section_) {
          if (!body.empty()) body += "\r\n";
          body += readthruInfoSection(server_);
        }
        std::string out = fmt::format("{}{}\r\n", type, body.size());
        out += body;
        out += "\r\n";
        reply.swap(out);
      }
    }
    slot->finishHeld(std::move(reply));
    delete this;
  }

 private:
  Server* server_;
  bool add_section_;
};

}  // namespace

void answerReadthruCommand(Server* server, const std::vector<std::string_view>& argv, int protocol,
                           std::string* out) {
  resp::ReplyEncoder e(out, protocol);
  if (argv.size() < 2) {
    e.error("ERR wrong number of arguments for 'readthru' command");
    return;
  }
  std::string_view sub = argv[1];
  if (equalsIgnoreCase(sub, "slowlog")) {
    answerSlowlog(server->readThrough()->slowlog(), argv, e);
    return;
  }
  // The subcommands without arguments.
  for (std::string_view name : {"stats", "loaders", "writers", "help"}) {
    if (equalsIgnoreCase(sub, name) && argv.size() != 2) {
      e.error(fmt::format("ERR wrong number of arguments for 'readthru|{}' command", name));
      return;
    }
  }
  if (equalsIgnoreCase(sub, "stats")) {
    answerStats(server, protocol, out);
  } else if (equalsIgnoreCase(sub, "loaders")) {
    answerConfigs(e, server->loaders()->loaders(), loaderFields);
  } else if (equalsIgnoreCase(sub, "writers")) {
    answerConfigs(e, server->loaders()->writers(), writerFields);
  } else if (equalsIgnoreCase(sub, "help")) {
    e.arrayHeader(std::size(kHelp));
    for (std::string_view line : kHelp) e.simple(line);
  } else if (equalsIgnoreCase(sub, "reload")) {
    // The well-formed one never comes here (isReadthruReload).
    e.error("ERR wrong number of arguments for 'readthru|reload' command");
  } else {
    std::string s(sub.substr(0, 128));
    e.error(fmt::format("ERR unknown subcommand '{}'. Try READTHRU HELP.", s));
  }
}

bool isReadthruReload(const std::vector<std::string_view>& argv) {
  return argv.size() == 2 && equalsIgnoreCase(argv[1], "reload");
}

std::string readthruInfoSection(Server* server) {
  std::string s = "# Readthru\r\n";
  s += fmt::format("readthru_version:{}\r\n", READTHRU_VERSION);
  s += fmt::format("uptime_in_seconds:{}\r\n", static_cast<uint64_t>(server->uptimeSeconds()));
  s += fmt::format("connected_clients:{}\r\n", server->clientCount());
  s += fmt::format("pinned_clients:{}\r\n", server->pinnedClientCount());
  s += fmt::format("upstream_status:{}\r\n", server->pool()->up() ? "up" : "down");
  s += fmt::format("busy_poll_hits:{}\r\n", busyPollHits());
  const CommandMetrics& m = *server->commandMetrics();
  auto taken = [&m](CommandClass c) { return m.commands[static_cast<size_t>(c)]; };
  s += fmt::format(
      "commands_forwarded:{}\r\n",
      taken(CommandClass::kRead) + taken(CommandClass::kWrite) + taken(CommandClass::kOther));
  s += fmt::format("commands_local:{}\r\n", taken(CommandClass::kLocal));
  const auto& loaders = server->loaders()->loaders();
  s += fmt::format("writers:{}\r\n", server->loaders()->writers().size());
  s += fmt::format("loaders:{}\r\n", loaders.size());
  for (const auto& l : loaders) {
    s += fmt::format("loader_{}:", l->name());
    bool first = true;
    for (const Counter& c : loaderCounters(l->stats())) {
      if (c.name == "load_p999_us") continue;  // INFO keeps to the common percentiles
      s += fmt::format("{}{}={}", first ? "" : ",", c.name, c.value);
      first = false;
    }
    s += "\r\n";
  }
  for (const auto& w : server->loaders()->writers()) {
    s += fmt::format("writer_{}:mode={}", w->name(), w->behind() ? "behind" : "through");
    for (const Counter& c : writerCounters(server, *w)) s += fmt::format(",{}={}", c.name, c.value);
    s += "\r\n";
  }
  for (const auto& b : server->loaders()->backends()) {
    backends::SqliteStats st = b.sqlite->stats();
    s += fmt::format(
        "backend_{}:kind={},workers={},queued={},running={},completed={},errors={},timeouts={},"
        "rejected={}\r\n",
        b.config->name, b.config->kind, b.config->workers, st.queued, st.running, st.completed,
        st.errors, st.timeouts, st.rejected);
  }
  s += fmt::format("negative_cache_entries:{}\r\n", server->readThrough()->negativeEntries());
  s += fmt::format("users:{}\r\n", server->acl().userCount());
  s += fmt::format("auth_failures:{}\r\n", server->acl().authFailures());
  return s;
}

SlotInterceptor* interceptInfo(Server* server, const std::vector<std::string_view>& argv) {
  bool wanted = argv.size() == 1;
  for (size_t i = 1; i < argv.size() && !wanted; ++i) {
    wanted = equalsIgnoreCase(argv[i], "all") || equalsIgnoreCase(argv[i], "everything") ||
             equalsIgnoreCase(argv[i], "default") || equalsIgnoreCase(argv[i], "readthru");
  }
  // The sections readthru rewrites fields of (describeOwnClients).
  bool ours = wanted;
  for (size_t i = 1; i < argv.size() && !ours; ++i) {
    ours = equalsIgnoreCase(argv[i], "clients") || equalsIgnoreCase(argv[i], "stats");
  }
  return ours ? new InfoInterceptor(server, wanted) : nullptr;
}

}  // namespace readthru
