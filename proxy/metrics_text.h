#pragma once
// The Prometheus text exposition format (version 0.0.4) of readthru's statistics, and the
// /healthz report. Both read the same counters as READTHRU STATS and INFO's "# Readthru"
// section (readthru_command.h): loaders', writers', backends', and the clients' commands
// (command_metrics.h). Rendering happens on the loop thread, per scrape.

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include "proxy/latency_histogram.h"

namespace readthru {

class Server;

// Builds exposition text: a family's HELP and TYPE lines, then its samples, all together.
// Label values are escaped (backslash, double quote, newline); names are the caller's and must be
// valid metric and label names.
class PrometheusText {
 public:
  using Label = std::pair<std::string_view, std::string_view>;
  using Labels = std::initializer_list<Label>;

  // type: "counter", "gauge" or "histogram".
  void family(std::string_view name, std::string_view type, std::string_view help);
  void sample(std::string_view name, Labels labels, uint64_t value);
  void sample(std::string_view name, Labels labels, double value);
  // A LatencyHistogram's samples (microseconds) in seconds: one cumulative _bucket per
  // LatencyHistogram::kReportBounds, the last one le="+Inf", then _sum and _count.
  void histogram(std::string_view name, Labels labels, const LatencyHistogram& h);

  const std::string& text() const { return out_; }

 private:
  void line(std::string_view name, Labels labels, std::string_view le, std::string_view value);

  std::string out_;
};

// GET /metrics.
std::string renderMetrics(Server* server);

// GET /healthz: true when the upstream is connected, every backend is open and readthru is not
// stopping. `json` gets {"status":"up"|"down"|"stopping","upstream":"up"|"down",
// "backends":{"<name>":"up"|"down",...}}.
bool renderHealth(Server* server, std::string* json);

}  // namespace readthru
