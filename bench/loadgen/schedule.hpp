#pragma once
// Arrival times of an open-loop load: constant spacing or Poisson (exponential interarrivals) at
// a given rate, independent of how the server answers. Deterministic for a seed: the random
// numbers come from our own splitmix64 and the inverse CDF, not from <random>'s distributions,
// whose output differs between standard libraries.

#include <cstdint>

namespace weir::loadgen {

enum class arrival_process { constant, poisson };

/// A small, fast, seedable generator (splitmix64); also used to pick requests from the mix.
class rng {
 public:
  explicit rng(std::uint64_t seed) : s_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (s_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  /// Uniform in [0, 1).
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

 private:
  std::uint64_t s_;
};

/// The intended send times, in nanoseconds from the start of the run: first() is 0 for constant
/// arrivals and one exponential draw for Poisson; each next() is the following arrival.
class schedule {
 public:
  /// rate: arrivals per second (> 0).
  schedule(arrival_process process, double rate, std::uint64_t seed);

  /// The next arrival time (ns since the start), increasing.
  std::uint64_t next();

 private:
  arrival_process process_;
  double mean_gap_ns_;
  double t_ns_ = 0;  // accumulated in double: no drift from rounding each gap
  std::uint64_t n_ = 0;
  rng rng_;
};

}  // namespace weir::loadgen
