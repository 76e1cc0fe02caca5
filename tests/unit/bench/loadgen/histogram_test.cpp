#include "bench/loadgen/histogram.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <vector>

#include <gtest/gtest.h>

#include "bench/loadgen/schedule.hpp"

namespace weir::loadgen {
namespace {

double relative_error(std::uint64_t got, std::uint64_t want) {
  if (want == 0) return got == 0 ? 0 : 1;
  return std::fabs(static_cast<double>(got) - static_cast<double>(want)) /
         static_cast<double>(want);
}

TEST(Histogram, BucketsTileTheRangeWithoutGapsAndStayNarrow) {
  std::uint64_t expected_low = 0;
  for (std::size_t i = 0; i < histogram::bucket_count; ++i) {
    ASSERT_EQ(histogram::bucket_low(i), expected_low) << "bucket " << i;
    const std::uint64_t hi = histogram::bucket_high(i);
    ASSERT_GE(hi, expected_low);
    // Width relative to the lowest value: at most 1/128 (exact below 128).
    if (expected_low >= histogram::sub_buckets) {
      ASSERT_LE(static_cast<double>(hi - expected_low + 1) / static_cast<double>(expected_low),
                1.0 / 128 + 1e-12);
    }
    ASSERT_EQ(histogram::bucket_of(expected_low), i);
    ASSERT_EQ(histogram::bucket_of(hi), i);
    expected_low = hi + 1;
  }
  EXPECT_EQ(expected_low - 1, histogram::max_value());
  EXPECT_EQ(histogram::bucket_of(~std::uint64_t{0}), histogram::bucket_count - 1);
}

TEST(Histogram, EveryValueComesBackWithinOnePercent) {
  rng r(42);
  auto h = std::make_unique<histogram>();
  for (int i = 0; i < 200000; ++i) {
    // Log-uniform over 1 ns .. 2^38 ns.
    const auto v = static_cast<std::uint64_t>(std::exp2(r.uniform() * 38));
    h->reset();
    h->record(v);
    // Clamping to min/max would make a single value exact; compare the bucket midpoint instead.
    const std::size_t b = histogram::bucket_of(v);
    const std::uint64_t lo = histogram::bucket_low(b), hi = histogram::bucket_high(b);
    ASSERT_LE(relative_error(lo + (hi - lo) / 2, v), 0.01) << v;
    ASSERT_EQ(h->quantile(0.5), v);
  }
}

TEST(Histogram, PercentilesAreWithinOnePercentOfTheExactOrderStatistics) {
  rng r(7);
  auto h = std::make_unique<histogram>();
  std::vector<std::uint64_t> values;
  for (int i = 0; i < 100000; ++i) {
    // A latency-like spread: mostly around 100 us, a tail to seconds.
    const double x = r.uniform();
    const double ns = x < 0.99 ? 50e3 + 100e3 * r.uniform() : 1e6 * std::exp2(r.uniform() * 11);
    values.push_back(static_cast<std::uint64_t>(ns));
    h->record(values.back());
  }
  std::sort(values.begin(), values.end());
  for (double q : {0.001, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999, 1.0}) {
    const auto rank = static_cast<std::size_t>(std::ceil(q * values.size()));
    const std::uint64_t exact = values[std::max<std::size_t>(rank, 1) - 1];
    EXPECT_LE(relative_error(h->quantile(q), exact), 0.01) << "q=" << q;
  }
  EXPECT_EQ(h->max(), values.back());
  EXPECT_EQ(h->min(), values.front());
  EXPECT_EQ(h->count(), values.size());
}

TEST(Histogram, SmallValuesAreExactAndEmptyIsZero) {
  auto h = std::make_unique<histogram>();
  EXPECT_EQ(h->quantile(0.99), 0u);
  EXPECT_EQ(h->max(), 0u);
  for (std::uint64_t v = 0; v < 100; ++v) h->record(v);
  EXPECT_EQ(h->quantile(0.5), 49u);
  EXPECT_EQ(h->quantile(0.99), 98u);
  EXPECT_EQ(h->quantile(1.0), 99u);
  EXPECT_DOUBLE_EQ(h->mean(), 49.5);
}

TEST(Histogram, AddMergesCountsAndExtremes) {
  auto a = std::make_unique<histogram>();
  auto b = std::make_unique<histogram>();
  a->record(1000);
  b->record(5'000'000);
  a->add(*b);
  EXPECT_EQ(a->count(), 2u);
  EXPECT_EQ(a->max(), 5'000'000u);
  EXPECT_EQ(a->min(), 1000u);
  EXPECT_EQ(a->quantile(1.0), 5'000'000u);
}

TEST(Histogram, ValuesAboveTheRangeLandInTheLastBucket) {
  auto h = std::make_unique<histogram>();
  h->record(std::uint64_t{1} << 50);
  EXPECT_EQ(h->count(), 1u);
  EXPECT_EQ(h->max(), std::uint64_t{1} << 50);
}

}  // namespace
}  // namespace weir::loadgen
