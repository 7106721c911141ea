#pragma once
// LatencyHistogram: load latencies in microseconds, kept in log-spaced buckets (four per power of
// two, so a percentile read from it is at most 25% above the true value) plus coarse, fixed buckets
// for reporting. Recording is a few integer operations and never allocates.

#include <array>
#include <cstddef>
#include <cstdint>

namespace readthru {

class LatencyHistogram {
 public:
  // Upper bounds (inclusive, microseconds) of the reported buckets; the last one is +inf.
  static constexpr std::array<uint64_t, 16> kReportBounds = {
      100,   250,    500,    1000,   2500,    5000,    10000,   25000,
      50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, UINT64_MAX};

  void record(uint64_t us);
  // The smallest bucket bound below which a fraction `q` (0..1) of the samples lie, capped by the
  // largest sample; 0 when empty.
  uint64_t percentile(double q) const;
  uint64_t max() const { return max_; }
  uint64_t count() const { return count_; }
  // Of every sample, in microseconds (a Prometheus histogram's _sum).
  uint64_t sum() const { return sum_; }
  // Samples per reported bucket (not cumulative), parallel to kReportBounds.
  const std::array<uint64_t, kReportBounds.size()>& reportCounts() const { return report_; }

 private:
  static constexpr size_t kBuckets = 64 * 4;
  static size_t bucketOf(uint64_t us);
  static uint64_t bucketUpper(size_t index);

  std::array<uint64_t, kBuckets> fine_{};
  std::array<uint64_t, kReportBounds.size()> report_{};
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t max_ = 0;
};

}  // namespace readthru
