#include "bench/loadgen/schedule.hpp"

#include <cmath>

namespace weir::loadgen {

schedule::schedule(arrival_process process, double rate, std::uint64_t seed)
    : process_(process), mean_gap_ns_(1e9 / rate), rng_(seed) {}

std::uint64_t schedule::next() {
  if (process_ == arrival_process::constant) {
    // n * gap rather than a running sum: exact for any length of run.
    return static_cast<std::uint64_t>(static_cast<double>(n_++) * mean_gap_ns_);
  }
  // Inverse CDF of the exponential; 1 - u is in (0, 1], so the log is finite.
  t_ns_ += -std::log(1.0 - rng_.uniform()) * mean_gap_ns_;
  return static_cast<std::uint64_t>(t_ns_);
}

}  // namespace weir::loadgen
