#pragma once
// What a controller sees: one sample per period, taken by the sensor from counters the runtime
// keeps anyway. Plain data, so a policy can be driven by synthetic samples in tests.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/stats.hpp"

namespace weir::controllers {

/// One group over the window since the previous sample.
struct group_sample {
  std::string name;
  /// Runs a stage that blocks (disk_io): its pool may grow past the cores, and must grow fast.
  bool blocking = false;
  std::size_t threads = 0;       // the pool's size (its target)
  std::size_t busy_threads = 0;  // awake now (an instant, not an average)
  std::size_t queue_depth = 0, queue_capacity = 0;
  std::uint64_t tasks = 0;                 // stage runs in the window, all its stages
  runtime::histogram_snapshot queue_wait;  // waits that ended in the window (hops into it)
  std::uint64_t service_ns = 0;            // time spent inside its stages in the window
  /// Times a parked worker was woken in the window: what hops into the group cost when it idles.
  std::uint64_t wakeups = 0;
  /// Its stages, in pipeline order.
  std::vector<std::string> stages;
};

/// One stage over the window.
struct stage_sample {
  std::string name;
  std::string group;  // the group that runs it now
  bool blocking = false;
  std::uint64_t tasks = 0;                 // runs in the window
  runtime::histogram_snapshot queue_wait;  // waits for this stage that ended in the window (a
                                           // fused call has none: it does not queue)
  runtime::histogram_snapshot service;     // its runs' service times
};

struct sample {
  std::int64_t now_ms = 0;
  std::int64_t window_ms = 0;  // since the previous sample
  unsigned cores = 1;          // the cores weir may run on (sched_getaffinity)
  std::vector<group_sample> groups;
  std::vector<stage_sample> stages;  // in pipeline order
};

/// Share of the pool's capacity in use over the window (0 = idle, 1 = every worker always busy):
/// service time over thread time. For a blocking group, the instant busy share when that is
/// higher: a worker stuck in a long disk read has not finished a task yet, so its time is not in
/// `service_ns`. A CPU-bound group's tasks end within microseconds, so its window share is the
/// measurement, and one instant (busy or not) would only add noise.
inline double utilisation(const group_sample& g, std::int64_t window_ms) {
  if (g.threads == 0) return 0;
  const double capacity_ns = static_cast<double>(window_ms) * 1e6 * static_cast<double>(g.threads);
  const double over_window = capacity_ns > 0 ? static_cast<double>(g.service_ns) / capacity_ns : 0;
  if (!g.blocking) return over_window;
  const double now = static_cast<double>(g.busy_threads) / static_cast<double>(g.threads);
  return over_window > now ? over_window : now;
}

}  // namespace weir::controllers
