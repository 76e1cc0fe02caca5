#pragma once
// Arrival times of an open-loop load: constant spacing or Poisson (exponential interarrivals) at
// a given rate, independent of how the server answers. Deterministic for a seed: the random
// numbers come from our own splitmix64 and the inverse CDF, not from <random>'s distributions,
// whose output differs between standard libraries.

#include <cstdint>
#include <limits>
#include <vector>

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

/// One piece of a piecewise-constant rate: `rate` arrivals per second (> 0) until `until_ns`
/// from the start of the run (the last piece's end is ignored: it lasts for ever).
struct rate_step {
  double rate;
  std::uint64_t until_ns = std::numeric_limits<std::uint64_t>::max();
};

/// The intended send times, in nanoseconds from the start of the run: first() is 0 for constant
/// arrivals and one exponential draw for Poisson; each next() is the following arrival. With
/// several steps, a Poisson process changes rate at each step's end (the exponential draw that
/// crosses it is carried over at the new rate, so the process stays Poisson); constant arrivals
/// restart their spacing at the step's start.
class schedule {
 public:
  /// rate: arrivals per second (> 0).
  schedule(arrival_process process, double rate, std::uint64_t seed);
  /// steps: at least one, their ends increasing.
  schedule(arrival_process process, std::vector<rate_step> steps, std::uint64_t seed);

  /// The next arrival time (ns since the start), increasing.
  std::uint64_t next();

 private:
  double gap_ns() const { return 1e9 / steps_[step_].rate; }
  double step_end() const {
    return step_ + 1 < steps_.size() ? static_cast<double>(steps_[step_].until_ns)
                                     : std::numeric_limits<double>::infinity();
  }

  arrival_process process_;
  std::vector<rate_step> steps_;
  std::size_t step_ = 0;
  double step_start_ns_ = 0;
  double t_ns_ = 0;  // accumulated in double: no drift from rounding each gap
  std::uint64_t n_ = 0;
  rng rng_;
};

}  // namespace weir::loadgen
