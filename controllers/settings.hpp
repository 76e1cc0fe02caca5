#pragma once
// What operators tune: one block of settings per controller, plain data. The config file
// (`controllers:`), the admin API and SIGHUP all fill these through the same validation
// (runtime/config.cpp); the policies read them.

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace weir::controllers {

/// The pool controller: sizes each group's pool (SEDA's thread-pool controller, with State
/// Threads' rule of about one runnable CPU-bound thread per core).
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

/// The grouping controller: fuses neighbouring stages into one group when the hop between them
/// costs more than their isolation is worth, and splits them again when one holds up the other.
struct grouping_settings {
  bool enabled = true;
  bool dry_run = false;
  std::chrono::milliseconds period{250};
  /// Two neighbouring groups fuse when both are at or below this utilisation...
  double fuse_below = 0.5;
  /// ...and the hop between them pays a wake-up for at least this share of its tasks.
  double fuse_wakeups_per_task = 0.05;
  /// A fused group splits when it is at or above this utilisation and its queue wait (p90) is
  /// above `split_wait`...
  double split_above = 0.9;
  std::chrono::microseconds split_wait{2000};
  /// ...or when one of its stages' mean service time is this many times the others' (a large
  /// send holding up small hits).
  double split_service_ratio = 10.0;
  /// ...and its mean service time is at least this: a stage that runs for less can delay the
  /// tasks behind it by no more than that, far under `split_wait`, so it never counts as slow.
  std::chrono::microseconds split_service_min{50};
  /// Samples in a row a condition must hold before the controller acts.
  int fuse_after = 8;
  int split_after = 2;
  /// After any regroup, the next one waits at least this long (the pools settle first).
  std::chrono::milliseconds cooldown{2000};
  /// Allow fusing the blocking stage (disk_io) with its neighbours: off, a slow disk can never
  /// hold up cache hits.
  bool fuse_blocking = false;

  friend bool operator==(const grouping_settings&, const grouping_settings&) = default;
};

/// The admission controller: a concurrency limit per class (controllers/admission_policy.hpp),
/// so that admitted requests meet `target` at `percentile` and the excess is refused with 503.
struct admission_settings {
  bool enabled = true;
  bool dry_run = false;
  /// The window: one decision per class per period.
  std::chrono::milliseconds period{100};
  /// Admitted requests meet this at `percentile`.
  std::chrono::milliseconds target{100};
  double percentile = 0.99;
  /// Bounds of each class's limit (requests in flight at once).
  std::size_t min_limit = 4;
  std::size_t max_limit = 10000;
  /// Above target the limit becomes what Little's law allows at the rate the class answered
  /// (rate x target x 0.75), clamped to [decrease_min, decrease_max] x what was in flight (a
  /// small excess does not halve it; one outlier window cannot take it to nothing).
  double decrease_min = 0.5;
  double decrease_max = 0.9;
  /// Well under target (at most half the allowed share over it) and bound by the limit: times
  /// this, at least +1.
  double increase = 1.5;
  /// A class's window runs until it has this many answers (at most max_window_periods); one
  /// that ends with fewer decides nothing, except a raise when it refused and answered some.
  std::uint64_t min_samples = 20;
  /// The kernel's listen queue, where connections wait unseen while accepting is paused: while
  /// the request limit holds the load back it is sized to what `backlog_share` of the target
  /// allows at the rate requests are answered (rate x target x share, within [backlog_min,
  /// backlog_max]); a second after the pressure ends it goes back to backlog_max, the length
  /// the listener opens with. A share of 0 (the default) leaves it at backlog_max: with the SYN
  /// gate closed while accepting is paused, few wait there, and a short queue makes Linux send
  /// SYN cookies whose connections it then cannot queue (docs/controllers.md).
  double backlog_share = 0;
  /// The fast signal (CoDel): a request that waited longer than `queue_delay` in weir's queue
  /// before read_parse is refused once that queue has stood above it for `queue_interval`
  /// (before that, as a burst, it is served up to `target`). 0 turns it off.
  std::chrono::milliseconds queue_delay{0};  // off by default: see docs/controllers.md
  std::chrono::milliseconds queue_interval{100};
  std::size_t backlog_min = 16;
  std::size_t backlog_max = 4096;

  friend bool operator==(const admission_settings&, const admission_settings&) = default;
};

}  // namespace weir::controllers
