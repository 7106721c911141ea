#include "proxy/latency_histogram.h"

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include <doctest/doctest.h>

namespace readthru {
namespace {

// The exact percentile by the histogram's rank rule: the sample at floor(q * n), counting from 0.
uint64_t exactPercentile(std::vector<uint64_t> samples, double q) {
  std::sort(samples.begin(), samples.end());
  size_t rank = static_cast<size_t>(q * static_cast<double>(samples.size()));
  if (rank >= samples.size()) rank = samples.size() - 1;
  return samples[rank];
}

TEST_CASE("latency: an empty histogram") {
  LatencyHistogram h;
  CHECK(h.count() == 0);
  CHECK(h.sum() == 0);
  CHECK(h.max() == 0);
  for (double q : {0.0, 0.5, 0.99, 1.0}) CHECK(h.percentile(q) == 0);
  for (uint64_t n : h.reportCounts()) CHECK(n == 0);
}

TEST_CASE("latency: count, max and small values exactly") {
  LatencyHistogram h;
  // 0..7 have a bucket of their own (4..7 as the four quarters of [4, 8)).
  for (uint64_t us = 0; us < 8; ++us) h.record(us);
  CHECK(h.count() == 8);
  CHECK(h.sum() == 28);
  CHECK(h.max() == 7);
  for (uint64_t k = 0; k < 8; ++k) {
    CAPTURE(k);
    CHECK(h.percentile(static_cast<double>(k) / 8) == k);
  }
  CHECK(h.percentile(1.0) == 7);

  h.record(3);
  CHECK(h.count() == 9);
  CHECK(h.max() == 7);  // max never goes down
  h.record(1000000);
  CHECK(h.max() == 1000000);
  CHECK(h.percentile(1.0) == 1000000);
}

TEST_CASE("latency: a percentile is capped by the largest sample") {
  LatencyHistogram h;
  h.record(1000);  // in [896, 1023]: the bucket bound is 1023, the sample 1000
  for (double q : {0.0, 0.5, 1.0}) CHECK(h.percentile(q) == 1000);

  LatencyHistogram one;
  one.record(UINT64_MAX);  // the last bucket
  CHECK(one.percentile(0.5) == UINT64_MAX);
  CHECK(one.max() == UINT64_MAX);
  CHECK(one.reportCounts().back() == 1);
}

TEST_CASE("latency: percentiles are within the bucket resolution") {
  // Four buckets per power of two: a bucket [lo, hi] has hi < lo * 1.25, and the answer is the
  // bound of the bucket the true sample is in (or the max), so true <= got < true * 1.25.
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> dist(7.0, 1.5);  // ~1 ms median, a long tail
  std::vector<uint64_t> samples;
  LatencyHistogram h;
  for (int i = 0; i < 20000; ++i) {
    uint64_t us = static_cast<uint64_t>(dist(rng));
    samples.push_back(us);
    h.record(us);
  }
  CHECK(h.count() == samples.size());
  CHECK(h.max() == *std::max_element(samples.begin(), samples.end()));
  for (double q : {0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0}) {
    CAPTURE(q);
    uint64_t want = exactPercentile(samples, q);
    uint64_t got = h.percentile(q);
    CAPTURE(want);
    CAPTURE(got);
    CHECK(got >= want);
    CHECK(static_cast<double>(got) < static_cast<double>(want) * 1.25);
  }
  CHECK(h.percentile(1.0) == h.max());
}

TEST_CASE("latency: bucket bounds across every power of two") {
  // For one sample per histogram, the percentile is the sample; for a sample and a larger one,
  // p0 is the sample's bucket bound: >= the sample and < 1.25 times it, and < the next bucket.
  for (int bit = 2; bit < 63; ++bit) {
    for (uint64_t quarter = 0; quarter < 4; ++quarter) {
      uint64_t lo = (uint64_t{4} + quarter) << (bit - 2);  // the first value of a bucket
      uint64_t hi = ((uint64_t{5} + quarter) << (bit - 2)) - 1;
      CAPTURE(bit);
      CAPTURE(quarter);
      LatencyHistogram h;
      h.record(lo);
      h.record(UINT64_MAX);
      uint64_t bound = h.percentile(0.0);
      if (bit < 62) {
        CHECK(bound == hi);
      } else {
        CHECK(bound >= hi);  // the top buckets report no bound below the max
      }
      // The last value of the bucket reports the same bound.
      LatencyHistogram h2;
      h2.record(hi);
      h2.record(UINT64_MAX);
      CHECK(h2.percentile(0.0) == bound);
      if (bound < UINT64_MAX) {
        LatencyHistogram h3;  // the next value is in the next bucket
        h3.record(hi + 1);
        h3.record(UINT64_MAX);
        CHECK(h3.percentile(0.0) > bound);
      }
    }
  }
}

TEST_CASE("latency: report buckets have inclusive upper bounds") {
  const auto& bounds = LatencyHistogram::kReportBounds;
  LatencyHistogram h;
  h.record(0);
  for (size_t i = 0; i + 1 < bounds.size(); ++i) {
    h.record(bounds[i]);      // the bound itself: this bucket
    h.record(bounds[i] + 1);  // one more: the next
  }
  h.record(UINT64_MAX);
  const auto& counts = h.reportCounts();
  REQUIRE(counts.size() == bounds.size());
  CHECK(counts[0] == 2);  // 0 and 100
  for (size_t i = 1; i + 1 < bounds.size(); ++i) {
    CAPTURE(bounds[i]);
    CHECK(counts[i] == 2);  // bounds[i - 1] + 1 and bounds[i]
  }
  CHECK(counts.back() == 2);  // 5000001 and UINT64_MAX
  uint64_t total = 0;
  for (uint64_t n : counts) total += n;
  CHECK(total == h.count());

  // Not cumulative: a sample counts in one bucket only.
  LatencyHistogram one;
  one.record(3000);
  for (size_t i = 0; i < bounds.size(); ++i) CHECK(one.reportCounts()[i] == (i == 5 ? 1u : 0u));
}

}  // namespace
}  // namespace readthru
