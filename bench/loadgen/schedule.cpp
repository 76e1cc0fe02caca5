#include "bench/loadgen/schedule.hpp"

#include <cmath>
#include <utility>

namespace weir::loadgen {

schedule::schedule(arrival_process process, double rate, std::uint64_t seed)
    : schedule(process, std::vector<rate_step>{{rate}}, seed) {}

schedule::schedule(arrival_process process, std::vector<rate_step> steps, std::uint64_t seed)
    : process_(process), steps_(std::move(steps)), rng_(seed) {}

std::uint64_t schedule::next() {
  if (process_ == arrival_process::constant) {
    while (true) {
      // start + n * gap rather than a running sum: exact for any length of step.
      const double t = step_start_ns_ + static_cast<double>(n_) * gap_ns();
      if (t < step_end()) {
        ++n_;
        return static_cast<std::uint64_t>(t);
      }
      step_start_ns_ = step_end();
      ++step_;
      n_ = 0;
    }
  }
  // Inverse CDF of the exponential; 1 - u is in (0, 1], so the log is finite. The draw is in
  // units of the mean gap; what is left of it at a step's end continues at the next step's rate.
  double e = -std::log(1.0 - rng_.uniform());
  while (t_ns_ + e * gap_ns() >= step_end()) {
    e -= (step_end() - t_ns_) / gap_ns();
    t_ns_ = step_end();
    ++step_;
  }
  t_ns_ += e * gap_ns();
  return static_cast<std::uint64_t>(t_ns_);
}

}  // namespace weir::loadgen
