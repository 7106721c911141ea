#include "proxy/readthru_command.h"

#include <fmt/format.h>

#include <charconv>

#include "proxy/command_router.h"
#include "proxy/reply_slot.h"
#include "proxy/server.h"
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

constexpr std::string_view kHelp[] = {
    "READTHRU <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "STATS",
    "    Per loader: hits, misses, loads, coalesced waiters, negative-cache hits, errors,",
    "    timeouts, rejected and superseded loads, fills, load latency percentiles and histogram.",
    "    Per writer (\"writer:<name>\"): writes, database writes, errors, timeouts, batches,",
    "    coalesced writes, retries, dead letters, queue length, oldest pending write.",
    "RELOAD",
    "    Read the configuration file again and apply it, as SIGHUP does. Replies OK once the",
    "    new configuration runs, or an error saying why it was rejected (the running one stays).",
    "HELP",
    "    Print this help.",
};

// INFO's reply is a bulk string (RESP2) or a verbatim string "txt:..." (RESP3).
class InfoInterceptor final : public SlotInterceptor {
 public:
  explicit InfoInterceptor(Server* server) : server_(server) {}
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
        if (!body.empty()) body += "\r\n";
        body += readthruInfoSection(server_);
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
};

}  // namespace

void answerReadthruCommand(Server* server, const std::vector<std::string_view>& argv, int protocol,
                           std::string* out) {
  resp::ReplyEncoder e(out, protocol);
  std::string_view sub = argv[1];
  if (equalsIgnoreCase(sub, "stats")) {
    if (argv.size() != 2) {
      e.error("ERR wrong number of arguments for 'readthru|stats' command");
      return;
    }
    answerStats(server, protocol, out);
  } else if (equalsIgnoreCase(sub, "help")) {
    if (argv.size() != 2) {
      e.error("ERR wrong number of arguments for 'readthru|help' command");
      return;
    }
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
  const auto& loaders = server->loaders()->loaders();
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
  return s;
}

SlotInterceptor* interceptInfo(Server* server, const std::vector<std::string_view>& argv) {
  bool wanted = argv.size() == 1;
  for (size_t i = 1; i < argv.size() && !wanted; ++i) {
    wanted = equalsIgnoreCase(argv[i], "all") || equalsIgnoreCase(argv[i], "everything") ||
             equalsIgnoreCase(argv[i], "default") || equalsIgnoreCase(argv[i], "readthru");
  }
  return wanted ? new InfoInterceptor(server) : nullptr;
}

}  // namespace readthru
