#pragma once
// A log-bucketed latency histogram in the manner of HdrHistogram: values below 128 are counted
// exactly; above, each power-of-two range [2^k, 2^(k+1)) is split into 128 linear sub-buckets, so
// a bucket is at most 1/128 of its lowest value wide. A percentile reports its bucket's midpoint
// (clamped to the recorded min and max), which is within 1/256 (0.4 %) of the true order
// statistic. Values are nanoseconds; anything above max_value() is counted in the last bucket.
// Fixed size (32 KiB), no allocation after construction.

#include <array>
#include <cstddef>
#include <cstdint>

namespace weir::loadgen {

class histogram {
 public:
  static constexpr int sub_bucket_bits = 7;  // 128 sub-buckets per power of two
  static constexpr std::uint64_t sub_buckets = std::uint64_t{1} << sub_bucket_bits;
  static constexpr int max_bits = 38;  // values up to 2^38 ns (~275 s) keep the error bound
  static constexpr std::size_t bucket_count =
      static_cast<std::size_t>((max_bits - sub_bucket_bits) * sub_buckets + sub_buckets);

  static constexpr std::uint64_t max_value() { return (std::uint64_t{1} << max_bits) - 1; }

  /// The bucket that holds `v` (values above max_value() land in the last bucket).
  static std::size_t bucket_of(std::uint64_t v);
  /// The lowest and highest value bucket `i` holds.
  static std::uint64_t bucket_low(std::size_t i);
  static std::uint64_t bucket_high(std::size_t i);

  void record(std::uint64_t v);
  void reset();
  void add(const histogram& other);

  std::uint64_t count() const { return count_; }
  std::uint64_t min() const { return count_ ? min_ : 0; }
  std::uint64_t max() const { return max_; }
  double mean() const { return count_ ? sum_ / static_cast<double>(count_) : 0.0; }
  /// The q-quantile (0 < q <= 1): the value of the ceil(q * count)-th smallest recorded value,
  /// within 0.4 %; 0 when empty.
  std::uint64_t quantile(double q) const;

 private:
  std::array<std::uint64_t, bucket_count> counts_{};
  std::uint64_t count_ = 0;
  std::uint64_t min_ = ~std::uint64_t{0};
  std::uint64_t max_ = 0;
  double sum_ = 0;  // for the mean only
};

}  // namespace weir::loadgen
