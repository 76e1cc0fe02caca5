#include "bench/loadgen/schedule.hpp"

#include <cmath>
#include <cstdint>
#include <vector>

#include <gtest/gtest.h>

namespace weir::loadgen {
namespace {

TEST(Schedule, ConstantArrivalsAreEvenlySpaced) {
  schedule s(arrival_process::constant, 1000, 1);
  EXPECT_EQ(s.next(), 0u);
  EXPECT_EQ(s.next(), 1'000'000u);
  EXPECT_EQ(s.next(), 2'000'000u);
  schedule odd(arrival_process::constant, 3, 1);  // a gap that is not a whole number of ns
  std::uint64_t t = 0;
  for (int i = 0; i <= 3000; ++i) t = odd.next();
  EXPECT_NEAR(static_cast<double>(t), 1000e9, 1.0);  // no drift over 3000 gaps
}

TEST(Schedule, PoissonMeanRateIsTheRequestedRate) {
  for (double rate : {50.0, 1000.0, 200000.0}) {
    schedule s(arrival_process::poisson, rate, 12345);
    const int n = 200000;
    std::uint64_t t = 0, prev = 0;
    double sum_sq = 0;
    for (int i = 0; i < n; ++i) {
      t = s.next();
      ASSERT_GE(t, prev);
      const double gap = static_cast<double>(t - prev);
      sum_sq += gap * gap;
      prev = t;
    }
    const double measured = n / (static_cast<double>(t) / 1e9);
    EXPECT_NEAR(measured / rate, 1.0, 0.01) << "rate " << rate;
    // Exponential gaps: the coefficient of variation is 1 (constant gaps would give 0).
    const double mean = static_cast<double>(t) / n;
    const double cv = std::sqrt(sum_sq / n - mean * mean) / mean;
    EXPECT_NEAR(cv, 1.0, 0.02) << "rate " << rate;
  }
}

TEST(Schedule, SameSeedSameArrivalsOtherSeedOthers) {
  schedule a(arrival_process::poisson, 500, 99), b(arrival_process::poisson, 500, 99),
      c(arrival_process::poisson, 500, 100);
  std::vector<std::uint64_t> va, vb, vc;
  for (int i = 0; i < 1000; ++i) {
    va.push_back(a.next());
    vb.push_back(b.next());
    vc.push_back(c.next());
  }
  EXPECT_EQ(va, vb);
  EXPECT_NE(va, vc);
  // Pinned: the generator is ours, so the sequence is the same on every platform.
  rng r(1);
  EXPECT_EQ(r.next(), 0x910a2dec89025cc1ULL);
}

TEST(Rng, UniformIsInTheUnitInterval) {
  rng r(5);
  double sum = 0;
  for (int i = 0; i < 100000; ++i) {
    const double u = r.uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
  }
  EXPECT_NEAR(sum / 100000, 0.5, 0.01);
}

// A piecewise rate: each step's arrivals come at its own rate, Poisson or constant.
TEST(Schedule, StepsChangeTheRateAtTheirEnds) {
  const std::vector<rate_step> steps = {{1000, 2'000'000'000}, {10000, 4'000'000'000}, {500}};
  for (arrival_process p : {arrival_process::poisson, arrival_process::constant}) {
    schedule s(p, steps, 7);
    int in[3] = {0, 0, 0};
    std::uint64_t prev = 0, t = 0;
    while ((t = s.next()) < 10'000'000'000) {
      ASSERT_GE(t, prev);
      prev = t;
      ++in[t < 2'000'000'000 ? 0 : t < 4'000'000'000 ? 1 : 2];
    }
    EXPECT_NEAR(in[0], 2000, p == arrival_process::constant ? 1 : 150);   // 2 s at 1000/s
    EXPECT_NEAR(in[1], 20000, p == arrival_process::constant ? 1 : 450);  // 2 s at 10000/s
    EXPECT_NEAR(in[2], 3000, p == arrival_process::constant ? 1 : 200);   // 6 s at 500/s
  }
  schedule c(arrival_process::constant, steps, 7);  // the spacing restarts at a step's start
  for (int i = 0; i < 2000; ++i) c.next();
  EXPECT_EQ(c.next(), 2'000'000'000u);
  EXPECT_EQ(c.next(), 2'000'100'000u);
}

}  // namespace
}  // namespace weir::loadgen
