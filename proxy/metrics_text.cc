#include "proxy/metrics_text.h"

#include <fmt/format.h>
#include <uv.h>

#include "proxy/busy_poll.h"
#include "proxy/command_metrics.h"
#include "proxy/json_string.h"
#include "proxy/loader.h"
#include "proxy/server.h"

namespace readthru {
namespace {

void appendEscaped(std::string_view s, bool quotes, std::string* out) {
  for (char c : s) {
    if (c == '\\') {
      out->append("\\\\");
    } else if (c == '\n') {
      out->append("\\n");
    } else if (c == '"' && quotes) {
      out->append("\\\"");
    } else {
      out->push_back(c);
    }
  }
}

// A counter of LoaderStats or WriterStats, by field.
template <typename Stats>
struct StatsCounter {
  const char* name;
  const char* help;
  uint64_t Stats::*field;
};

// README "Statistics" defines each; counted per key looked up.
constexpr StatsCounter<LoaderStats> kLoaderCounters[] = {
    {"readthru_loader_hits_total", "Keys of the loader's template that Redis had.",
     &LoaderStats::hits},
    {"readthru_loader_misses_total", "Keys of the loader's template that Redis did not have.",
     &LoaderStats::misses},
    {"readthru_loader_loads_total", "Queries started.", &LoaderStats::loads},
    {"readthru_loader_coalesced_total", "Misses that joined a load in progress.",
     &LoaderStats::coalesced},
    {"readthru_loader_negative_hits_total", "Misses answered from the negative cache.",
     &LoaderStats::negative_hits},
    {"readthru_loader_errors_total", "Loads that failed (SQL error, more than one row).",
     &LoaderStats::errors},
    {"readthru_loader_timeouts_total", "Loads that took longer than the loader's timeout.",
     &LoaderStats::timeouts},
    {"readthru_loader_rejected_total", "Loads refused because the backend's queue was full.",
     &LoaderStats::rejected},
    {"readthru_loader_superseded_total",
     "Loads not written to Redis because the key was written meanwhile.", &LoaderStats::superseded},
    {"readthru_loader_fills_total", "Loaded values written to Redis.", &LoaderStats::fills},
    {"readthru_loader_refreshes_total", "Values reloaded ahead of their expiry.",
     &LoaderStats::refreshes},
};

constexpr StatsCounter<WriterStats> kWriterCounters[] = {
    {"readthru_writer_writes_total", "Client write commands on the writer's keys.",
     &WriterStats::writes},
    {"readthru_writer_db_writes_total", "Rows upserted or deleted in the database.",
     &WriterStats::db_writes},
    {"readthru_writer_errors_total", "Failed database writes (timeouts apart).",
     &WriterStats::errors},
    {"readthru_writer_timeouts_total", "Database writes past the writer's timeout.",
     &WriterStats::timeouts},
    {"readthru_writer_batches_total", "Write-behind transactions committed.",
     &WriterStats::batches},
    {"readthru_writer_coalesced_total",
     "Write-behind entries absorbed by a later write to their key.", &WriterStats::coalesced},
    {"readthru_writer_retries_total", "Write-behind batches or entries tried again.",
     &WriterStats::retries},
    {"readthru_writer_dead_letters_total", "Write-behind entries moved to the dead-letter stream.",
     &WriterStats::dead_letters},
};

struct BackendPool {
  const CacheRegistry::Backend* backend;
  const char* pool;  // "read" (the loaders' connections) or "write" (the writers' one)
  backends::SqliteBackend* sqlite;
};

struct BackendCounter {
  const char* name;
  const char* type;
  const char* help;
  uint64_t (*value)(const BackendPool&, const backends::SqliteStats&);
};

constexpr BackendCounter kBackendCounters[] = {
    {"readthru_backend_up", "gauge", "1 while the backend's connections are open.",
     [](const BackendPool& p, const backends::SqliteStats&) -> uint64_t {
       return p.sqlite->closing() ? 0 : 1;
     }},
    {"readthru_backend_workers", "gauge", "Worker threads, one connection each.",
     [](const BackendPool& p, const backends::SqliteStats&) -> uint64_t {
       return p.sqlite->options().workers;
     }},
    {"readthru_backend_queue_depth", "gauge", "Queries waiting for a worker.",
     [](const BackendPool&, const backends::SqliteStats& s) -> uint64_t { return s.queued; }},
    {"readthru_backend_running", "gauge", "Queries on a worker now.",
     [](const BackendPool&, const backends::SqliteStats& s) -> uint64_t { return s.running; }},
    {"readthru_backend_queries_total", "counter", "Queries completed, failed ones included.",
     [](const BackendPool&, const backends::SqliteStats& s) { return s.completed; }},
    {"readthru_backend_errors_total", "counter", "Queries that failed (timeouts apart).",
     [](const BackendPool&, const backends::SqliteStats& s) { return s.errors; }},
    {"readthru_backend_timeouts_total", "counter", "Queries past their deadline.",
     [](const BackendPool&, const backends::SqliteStats& s) { return s.timeouts; }},
    {"readthru_backend_rejected_total", "counter", "Queries refused: the queue was full.",
     [](const BackendPool&, const backends::SqliteStats& s) { return s.rejected; }},
};

void renderCommands(Server* server, PrometheusText* t) {
  const CommandMetrics& m = *server->commandMetrics();
  constexpr CommandClass kClasses[] = {CommandClass::kRead, CommandClass::kWrite,
                                       CommandClass::kOther, CommandClass::kLocal};
  t->family("readthru_commands_total", "counter",
            "Client commands taken, by class: read, write, other (forwarded), local (answered "
            "by readthru).");
  for (CommandClass c : kClasses) {
    t->sample("readthru_commands_total", {{"class", commandClassName(c)}},
              m.commands[static_cast<size_t>(c)]);
  }
  t->family("readthru_command_duration_seconds", "histogram",
            "Time from reading a command to handing its reply to the client's socket.");
  for (CommandClass c : kClasses) {
    t->histogram("readthru_command_duration_seconds", {{"class", commandClassName(c)}},
                 m.latency[static_cast<size_t>(c)]);
  }
}

void renderLoaders(Server* server, PrometheusText* t) {
  const auto& loaders = server->loaders()->loaders();
  if (loaders.empty()) return;
  for (const auto& c : kLoaderCounters) {
    t->family(c.name, "counter", c.help);
    for (const auto& l : loaders) t->sample(c.name, {{"loader", l->name()}}, l->stats().*c.field);
  }
  t->family("readthru_loader_duration_seconds", "histogram",
            "Loads that completed, from queueing to the result.");
  for (const auto& l : loaders) {
    t->histogram("readthru_loader_duration_seconds", {{"loader", l->name()}}, l->stats().latency);
  }
  t->family("readthru_negative_cache_entries", "gauge", "Keys remembered as having no row.");
  t->sample("readthru_negative_cache_entries", {},
            static_cast<uint64_t>(server->readThrough()->negativeEntries()));
}

void renderWriters(Server* server, PrometheusText* t) {
  const auto& writers = server->loaders()->writers();
  if (writers.empty()) return;
  auto mode = [](const Writer& w) { return w.behind() ? "behind" : "through"; };
  for (const auto& c : kWriterCounters) {
    t->family(c.name, "counter", c.help);
    for (const auto& w : writers) {
      t->sample(c.name, {{"writer", w->name()}, {"mode", mode(*w)}}, w->stats().*c.field);
    }
  }
  t->family("readthru_writer_queue_length", "gauge", "Entries in the writer's write-behind queue.");
  for (const auto& w : writers) {
    t->sample("readthru_writer_queue_length", {{"writer", w->name()}, {"mode", mode(*w)}},
              server->writerQueue(*w).length);
  }
  t->family("readthru_writer_oldest_pending_seconds", "gauge",
            "Age of the oldest entry in the last write-behind batch read.");
  for (const auto& w : writers) {
    t->sample("readthru_writer_oldest_pending_seconds", {{"writer", w->name()}, {"mode", mode(*w)}},
              static_cast<double>(server->writerQueue(*w).oldest_pending_ms) / 1e3);
  }
}

void renderBackends(Server* server, PrometheusText* t) {
  std::vector<BackendPool> pools;
  for (const auto& b : server->loaders()->backends()) {
    if (b.sqlite != nullptr) pools.push_back({&b, "read", b.sqlite});
    if (b.writer != nullptr) pools.push_back({&b, "write", b.writer});
  }
  if (pools.empty()) return;
  for (const BackendCounter& c : kBackendCounters) {
    t->family(c.name, c.type, c.help);
    for (const BackendPool& p : pools) {
      t->sample(c.name, {{"backend", p.backend->config->name}, {"pool", p.pool}},
                c.value(p, p.sqlite->stats()));
    }
  }
}

}  // namespace

void PrometheusText::family(std::string_view name, std::string_view type, std::string_view help) {
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  appendEscaped(help, false, &out_);
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type;
  out_ += '\n';
}

void PrometheusText::line(std::string_view name, Labels labels, std::string_view le,
                          std::string_view value) {
  out_ += name;
  if (labels.size() > 0 || !le.empty()) {
    out_ += '{';
    bool first = true;
    for (const Label& l : labels) {
      if (!first) out_ += ',';
      first = false;
      out_ += l.first;
      out_ += "=\"";
      appendEscaped(l.second, true, &out_);
      out_ += '"';
    }
    if (!le.empty()) {
      if (!first) out_ += ',';
      out_ += "le=\"";
      out_ += le;
      out_ += '"';
    }
    out_ += '}';
  }
  out_ += ' ';
  out_ += value;
  out_ += '\n';
}

void PrometheusText::sample(std::string_view name, Labels labels, uint64_t value) {
  line(name, labels, {}, fmt::format("{}", value));
}

void PrometheusText::sample(std::string_view name, Labels labels, double value) {
  line(name, labels, {}, fmt::format("{}", value));
}

void PrometheusText::histogram(std::string_view name, Labels labels, const LatencyHistogram& h) {
  const auto& bounds = LatencyHistogram::kReportBounds;
  const auto& counts = h.reportCounts();
  std::string bucket = fmt::format("{}_bucket", name);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds.size(); ++i) {
    cumulative += counts[i];
    std::string le = bounds[i] == UINT64_MAX
                         ? std::string("+Inf")
                         : fmt::format("{}", static_cast<double>(bounds[i]) / 1e6);
    line(bucket, labels, le, fmt::format("{}", cumulative));
  }
  line(fmt::format("{}_sum", name), labels, {},
       fmt::format("{}", static_cast<double>(h.sum()) / 1e6));
  line(fmt::format("{}_count", name), labels, {}, fmt::format("{}", h.count()));
}

std::string renderMetrics(Server* server) {
  PrometheusText t;
  t.family("readthru_build_info", "gauge", "Always 1; the version is a label.");
  t.sample("readthru_build_info", {{"version", READTHRU_VERSION}}, uint64_t{1});
  t.family("readthru_uptime_seconds", "gauge", "Seconds since readthru started.");
  t.sample("readthru_uptime_seconds", {}, server->uptimeSeconds());
  t.family("readthru_connected_clients", "gauge", "Client connections open now.");
  t.sample("readthru_connected_clients", {}, static_cast<uint64_t>(server->clientCount()));
  t.family("readthru_upstream_up", "gauge",
           "1 while a shared connection to the upstream Redis is connected.");
  t.sample("readthru_upstream_up", {}, uint64_t{server->pool()->up() ? 1u : 0u});
  t.family("readthru_busy_poll_hits_total", "counter",
           "Events the loop found by busy polling instead of sleeping (busy_poll).");
  t.sample("readthru_busy_poll_hits_total", {}, busyPollHits());
  renderCommands(server, &t);
  renderLoaders(server, &t);
  renderWriters(server, &t);
  renderBackends(server, &t);
  return t.text();
}

bool renderHealth(Server* server, std::string* json) {
  bool upstream = server->pool()->up();
  bool all = upstream;
  std::string backends;
  for (const auto& b : server->loaders()->backends()) {
    bool up = b.sqlite != nullptr && !b.sqlite->closing() &&
              (b.writer == nullptr || !b.writer->closing());
    all = all && up;
    if (!backends.empty()) backends += ',';
    appendJsonString(b.config->name, &backends);
    backends += up ? ":\"up\"" : ":\"down\"";
  }
  // A stopping readthru takes no new clients: balancers should look elsewhere.
  const char* status = server->shuttingDown() ? "stopping" : all ? "up" : "down";
  *json = fmt::format(R"({{"status":"{}","upstream":"{}","backends":{{{}}}}})", status,
                      upstream ? "up" : "down", backends);
  return all && !server->shuttingDown();
}

}  // namespace readthru
