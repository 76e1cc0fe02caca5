#pragma once
// The pool controller's policy: a pure function of a sample, its own state, its settings and the
// sample's `now`. It sizes each group's pool; applying (or, in dry-run, only logging) is the
// actuator's business.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "controllers/sample.hpp"

namespace weir::controllers {

struct pool_settings {
  bool enabled = true;
  bool dry_run = false;
  std::chrono::milliseconds period{20};
  /// A busy pool whose queue wait (p90 over the window) is above this is short of threads.
  std::chrono::microseconds grow_wait{1000};
  /// Utilisation at or above which a pool counts as busy.
  double busy = 0.85;
  /// A pool shrinks when its work would fit in one thread fewer at or below this utilisation.
  double idle = 0.35;
  /// Samples in a row of pressure before a CPU-bound pool grows (a blocking pool grows at the
  /// first).
  int grow_after = 3;
  /// How long a pool must stay idle before it loses a thread: CPU-bound, blocking.
  std::chrono::milliseconds shrink_after{2000};
  std::chrono::milliseconds shrink_after_blocking{10000};
  std::size_t min_threads = 1;
  /// All CPU-bound pools together: at most this many threads (0: one per core, and never fewer
  /// than one per group).
  std::size_t max_cpu_threads = 0;
  std::size_t max_blocking_threads = 64;

  friend bool operator==(const pool_settings&, const pool_settings&) = default;
};

/// One change to one pool, and why (the numbers it was based on).
struct pool_decision {
  std::string group;
  std::size_t from = 0, to = 0;
  std::string why;
};

/// What the policy remembers between samples, per group (by name: groups come and go as the
/// grouping controller fuses and splits).
struct pool_state {
  struct group_state {
    int pressure_runs = 0;
    std::int64_t idle_since_ms = -1;  // -1: not idle
  };
  std::map<std::string, group_state> groups;
};

std::vector<pool_decision> decide_pools(const sample& s, pool_state& state,
                                        const pool_settings& settings);

}  // namespace weir::controllers
