#include "proxy/latency_histogram.h"

#include <bit>

namespace readthru {

size_t LatencyHistogram::bucketOf(uint64_t us) {
  if (us < 4) return static_cast<size_t>(us);
  unsigned b = 63 - static_cast<unsigned>(std::countl_zero(us));  // floor(log2(us)), >= 2
  size_t sub = static_cast<size_t>((us >> (b - 2)) & 3);
  return static_cast<size_t>(b) * 4 + sub;
}

uint64_t LatencyHistogram::bucketUpper(size_t index) {
  if (index < 4) return index;  // 0..3 hold one value each; 4..7 are unused
  size_t b = index / 4, sub = index % 4;
  if (b >= 62) return UINT64_MAX;
  return ((uint64_t{4} + sub + 1) << (b - 2)) - 1;
}

void LatencyHistogram::record(uint64_t us) {
  ++fine_[bucketOf(us)];
  size_t r = 0;
  while (us > kReportBounds[r]) ++r;
  ++report_[r];
  ++count_;
  sum_ += us;
  if (us > max_) max_ = us;
}

uint64_t LatencyHistogram::percentile(double q) const {
  if (count_ == 0) return 0;
  uint64_t rank = static_cast<uint64_t>(q * static_cast<double>(count_));
  if (rank >= count_) rank = count_ - 1;
  uint64_t seen = 0;
  for (size_t i = 0; i < kBuckets; ++i) {
    seen += fine_[i];
    if (seen > rank) return bucketUpper(i) < max_ ? bucketUpper(i) : max_;
  }
  return max_;
}

}  // namespace readthru
