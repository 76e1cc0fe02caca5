#include "bench/loadgen/histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace weir::loadgen {

std::size_t histogram::bucket_of(std::uint64_t v) {
  if (v > max_value()) v = max_value();
  if (v < sub_buckets) return static_cast<std::size_t>(v);
  const int msb = 63 - std::countl_zero(v);
  const int shift = msb - sub_bucket_bits;  // >= 0
  // top is in [128, 256): bucket shift*128 + top continues the exact buckets without a gap.
  const std::uint64_t top = v >> shift;
  return static_cast<std::size_t>(static_cast<std::uint64_t>(shift) * sub_buckets + top);
}

std::uint64_t histogram::bucket_low(std::size_t i) {
  if (i < 2 * sub_buckets) return i;
  const std::uint64_t shift = i / sub_buckets - 1;
  const std::uint64_t top = i - shift * sub_buckets;
  return top << shift;
}

std::uint64_t histogram::bucket_high(std::size_t i) {
  if (i < 2 * sub_buckets) return i;
  const std::uint64_t shift = i / sub_buckets - 1;
  return bucket_low(i) + (std::uint64_t{1} << shift) - 1;
}

void histogram::record(std::uint64_t v) {
  ++counts_[bucket_of(v)];
  ++count_;
  sum_ += static_cast<double>(v);
  min_ = std::min(min_, v);
  max_ = std::max(max_, v);
}

void histogram::reset() {
  counts_.fill(0);
  count_ = 0;
  min_ = ~std::uint64_t{0};
  max_ = 0;
  sum_ = 0;
}

void histogram::add(const histogram& o) {
  for (std::size_t i = 0; i < bucket_count; ++i) counts_[i] += o.counts_[i];
  count_ += o.count_;
  sum_ += o.sum_;
  min_ = std::min(min_, o.min_);
  max_ = std::max(max_, o.max_);
}

std::uint64_t histogram::quantile(double q) const {
  if (count_ == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_)));
  rank = std::clamp<std::uint64_t>(rank, 1, count_);
  if (rank == count_) return max_;  // known exactly
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < bucket_count; ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      const std::uint64_t lo = bucket_low(i), hi = bucket_high(i);
      return std::clamp(lo + (hi - lo) / 2, min_, max_);
    }
  }
  return max_;
}

}  // namespace weir::loadgen
