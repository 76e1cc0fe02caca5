#pragma once
// GET /topology's body: the groups, their stages and pools, with rates and latency percentiles
// over a recent window rather than since start (a console wants "now", and counters since start
// flatten every change after the first minutes).

#include <chrono>
#include <optional>
#include <string>

#include "stages/stats.hpp"

namespace weir::admin {

/// The topology as JSON text. `earlier` is a snapshot taken `window_s` seconds before `now`
/// (nullptr, or a window of 0: none yet); rates, percentiles and the cache's hit ratio are
/// computed from the difference. Counters (processed, rejected, wakeups, hits, misses) are totals
/// since start; gauges (threads, depths, connections, bytes) are as of `now`. A percentile or the
/// hit ratio is null when the window saw no sample. A stage missing from `earlier` counts from 0.
std::string topology_json(const server_snapshot& now, const server_snapshot* earlier,
                          double window_s);

/// Keeps the snapshots that the windows are measured from: the window ends at the newest snapshot
/// and starts at the newest kept one at least `min_window` older (or, while there is none, the
/// oldest kept one; the first call has no window). Two are kept: with a request a second, each
/// window is about a second; with requests more often, between one and two; with requests less
/// often, the time since the previous one. Not thread-safe: the caller serialises calls.
class topology_window {
 public:
  using clock = std::chrono::steady_clock;

  explicit topology_window(clock::duration min_window = std::chrono::seconds(1))
      : min_window_(min_window) {}

  /// topology_json for `now`, taken at `at`, over the window that ends there.
  std::string render(server_snapshot now, clock::time_point at);

 private:
  struct kept {
    server_snapshot snapshot;
    clock::time_point at;
  };
  clock::duration min_window_;
  std::optional<kept> base_;  // the window's start
  std::optional<kept> next_;  // the next start, once it is old enough
};

}  // namespace weir::admin
