#include "proxy/metrics_text.h"

#include <cstdint>
#include <string>

#include <doctest/doctest.h>

namespace readthru {
namespace {

TEST_CASE("metrics text: a family's HELP and TYPE lines, then its samples") {
  PrometheusText t;
  t.family("readthru_x_total", "counter", "Things counted.");
  t.sample("readthru_x_total", {}, uint64_t{18446744073709551615u});
  t.sample("readthru_x_total", {{"loader", "user"}, {"mode", "behind"}}, uint64_t{0});
  t.family("readthru_y", "gauge", "A level.");
  t.sample("readthru_y", {}, 1.5);
  CHECK(t.text() ==
        "# HELP readthru_x_total Things counted.\n"
        "# TYPE readthru_x_total counter\n"
        "readthru_x_total 18446744073709551615\n"
        "readthru_x_total{loader=\"user\",mode=\"behind\"} 0\n"
        "# HELP readthru_y A level.\n"
        "# TYPE readthru_y gauge\n"
        "readthru_y 1.5\n");
}

TEST_CASE("metrics text: label values and help text are escaped") {
  PrometheusText t;
  t.family("readthru_x", "gauge", "back\\slash and\nnewline, \"quotes\" kept");
  t.sample("readthru_x", {{"loader", "a\"b\\c\nd"}}, uint64_t{1});
  CHECK(t.text() ==
        "# HELP readthru_x back\\\\slash and\\nnewline, \"quotes\" kept\n"
        "# TYPE readthru_x gauge\n"
        "readthru_x{loader=\"a\\\"b\\\\c\\nd\"} 1\n");
}

TEST_CASE("metrics text: an empty histogram has every bucket at 0") {
  PrometheusText t;
  LatencyHistogram h;
  t.histogram("readthru_d_seconds", {}, h);
  const std::string& s = t.text();
  CHECK(s.find("readthru_d_seconds_bucket{le=\"0.0001\"} 0\n") == 0);
  CHECK(s.find("readthru_d_seconds_bucket{le=\"+Inf\"} 0\n") != std::string::npos);
  CHECK(s.find("readthru_d_seconds_sum 0\n") != std::string::npos);
  CHECK(s.find("readthru_d_seconds_count 0\n") != std::string::npos);
}

TEST_CASE("metrics text: histogram buckets are cumulative, in seconds, ending in +Inf") {
  LatencyHistogram h;
  h.record(50);        // <= 100 us
  h.record(100);       // <= 100 us (bounds are inclusive)
  h.record(101);       // <= 250 us
  h.record(3000);      // <= 5 ms
  h.record(10000000);  // 10 s: only +Inf
  PrometheusText t;
  t.histogram("readthru_d_seconds", {{"class", "read"}}, h);
  std::string expected;
  const char* les[] = {"0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
                       "0.05",   "0.1",     "0.25",   "0.5",   "1",      "2.5",   "5",    "+Inf"};
  const int counts[] = {2, 3, 3, 3, 3, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 5};
  static_assert(std::size(les) == LatencyHistogram::kReportBounds.size());
  for (size_t i = 0; i < std::size(les); ++i) {
    expected += std::string("readthru_d_seconds_bucket{class=\"read\",le=\"") + les[i] + "\"} " +
                std::to_string(counts[i]) + "\n";
  }
  expected += "readthru_d_seconds_sum{class=\"read\"} 10.003251\n";
  expected += "readthru_d_seconds_count{class=\"read\"} 5\n";
  CHECK(t.text() == expected);
}

}  // namespace
}  // namespace readthru
