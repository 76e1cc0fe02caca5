#pragma once
// Admission control's meeting point: the request path admits, releases and records through an
// `admission_gate`; the admission controller samples it and sets its limits. Knows nothing of
// HTTP or of the policy (controllers/admission_policy.hpp).
//
// Two classes, so that a slow disk never sheds cache hits: `request`, every request read
// completely, admitted before the cache (the CPU path: its latency is that of the requests that
// never waited for the disk); `miss`, a cache miss admitted at the hop into disk_io. A request
// that becomes a miss moves from the first to the second (`transfer`), so misses waiting on the
// disk do not take the hits' budget.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "runtime/stats.hpp"

namespace weir::runtime {

enum class admission_class : std::uint8_t { request, miss };
inline constexpr std::size_t admission_classes = 2;
inline constexpr const char* admission_class_names[] = {"request", "miss"};

/// One class over what the gate counted, folded from every thread (monotonic counters, plus
/// the instant values): a sensor takes differences between two of these.
struct admission_class_snapshot {
  std::uint64_t admitted = 0;     // let in
  std::uint64_t refused = 0;      // turned away by the limit
  std::uint64_t completed = 0;    // admitted and answered (their latency recorded)
  std::uint64_t over_target = 0;  // of those, slower than the target in force when they ended
  histogram_snapshot latency;     // of the completed ones
  // Of the completed ones, those admitted under an earlier limit (answered after it changed):
  // the controller judges a limit by the requests it admitted only.
  std::uint64_t stale_completed = 0;
  std::uint64_t stale_over_target = 0;
  histogram_snapshot stale_latency;
  std::size_t limit = 0;           // in force now
  std::size_t in_flight = 0;       // now
  std::size_t peak_in_flight = 0;  // the most at once since the previous `take_peaks`
};

struct admission_snapshot {
  std::array<admission_class_snapshot, admission_classes> classes{};
  std::uint64_t target_ns = 0;
  std::uint64_t accept_pauses = 0;  // times accepting paused for want of room (monotonic)
  std::size_t backlog = 0;          // the listen queue length asked for (0: none yet)
};

/// The gate. `try_admit` and `release` are one atomic add each on the class's own cache line;
/// `record` writes the calling thread's counters only. A limit of `unlimited` admits everything
/// (the controller off), still counting.
class admission_gate {
 public:
  static constexpr std::size_t unlimited = SIZE_MAX;

  admission_gate();
  admission_gate(const admission_gate&) = delete;
  admission_gate& operator=(const admission_gate&) = delete;

  /// True when the class has room: the caller now holds one of its places and must `release`
  /// (or `transfer`) it exactly once, and should note `epoch(c)` to `record` its answer with.
  /// False: refused and counted; nothing held.
  bool try_admit(admission_class c) {
    slot& s = slots_[index(c)];
    const std::size_t now = s.in_flight.fetch_add(1, std::memory_order_relaxed) + 1;
    if (now > s.limit.load(std::memory_order_relaxed)) {
      s.in_flight.fetch_sub(1, std::memory_order_relaxed);
      counters_.local().c[index(c)].refused.add();
      return false;
    }
    // An approximate maximum (two threads may both store): it only sizes the next step.
    if (now > s.peak.load(std::memory_order_relaxed)) s.peak.store(now, std::memory_order_relaxed);
    counters_.local().c[index(c)].admitted.add();
    return true;
  }
  void release(admission_class c) {
    slots_[index(c)].in_flight.fetch_sub(1, std::memory_order_relaxed);
  }
  /// Moves a held place from `from` to `to` when `to` has room; false (still holding `from`)
  /// when it does not.
  bool transfer(admission_class from, admission_class to) {
    if (!try_admit(to)) return false;
    release(from);
    return true;
  }
  /// An admitted request of class `c`, admitted in `admitted_epoch` (`epoch(c)` then), was
  /// answered after `ns`. Admitted under an earlier limit it counts as stale: its latency says
  /// how the old limit did, not the one in force (a cut would otherwise be followed by a second
  /// one for the same excess, from the requests still finishing).
  void record(admission_class c, std::uint64_t ns, std::uint32_t admitted_epoch) {
    per_class& k = admitted_epoch == epoch(c) ? counters_.local().c[index(c)]
                                              : counters_.local().stale[index(c)];
    k.completed.add();
    if (ns > target_ns_.load(std::memory_order_relaxed)) k.over_target.add();
    k.latency.observe(ns);
  }

  /// A new limit starts a new epoch (when it differs from the one in force).
  void set_limit(admission_class c, std::size_t limit) {
    slot& s = slots_[index(c)];
    if (s.limit.exchange(limit, std::memory_order_relaxed) != limit)
      s.epoch.fetch_add(1, std::memory_order_relaxed);
  }
  /// Counts the limit changes of class `c`: which limit a request was admitted under.
  std::uint32_t epoch(admission_class c) const {
    return slots_[index(c)].epoch.load(std::memory_order_relaxed);
  }
  std::size_t limit(admission_class c) const {
    return slots_[index(c)].limit.load(std::memory_order_relaxed);
  }
  /// Accepting paused: the work inside weir is at the request class's limit (or its queue half
  /// full), so new connections wait in the listen queue.
  void note_accept_pause() { counters_.local().accept_pauses.add(); }
  /// The listen queue's length the controller asks for (0: none asked yet); the accept stage
  /// applies it.
  void set_backlog(std::size_t n) { backlog_.store(n, std::memory_order_relaxed); }
  std::size_t backlog() const { return backlog_.load(std::memory_order_relaxed); }

  /// The fast signal, CoDel on weir's queue before read_parse (as Facebook's servers run it):
  /// true to serve a request that waited `waited_ns` there, false to refuse it. A wait under the
  /// delay target is served and ends any run of long waits. A longer one is served up to the
  /// latency target while its run is younger than the interval (a burst), and refused once the
  /// waits have stayed above the delay target for a whole interval (a standing queue: it only
  /// adds latency). A gap of an interval without long waits (an idle server) starts a new run.
  /// Two relaxed loads in the common case; a store at most once a millisecond.
  bool queue_admit(std::int64_t waited_ns, std::int64_t now_ns) {
    const std::int64_t delay = queue_delay_ns_.load(std::memory_order_relaxed);
    if (delay == 0) return true;  // off
    if (waited_ns < delay) {
      if (above_since_ns_.load(std::memory_order_relaxed) != 0)
        above_since_ns_.store(0, std::memory_order_relaxed);
      return true;
    }
    const std::int64_t interval = queue_interval_ns_.load(std::memory_order_relaxed);
    const std::int64_t since = above_since_ns_.load(std::memory_order_relaxed);
    const std::int64_t last = last_above_ns_.load(std::memory_order_relaxed);
    if (since == 0 || now_ns - last > interval) {  // a new run of long waits
      above_since_ns_.store(now_ns, std::memory_order_relaxed);
      last_above_ns_.store(now_ns, std::memory_order_relaxed);
      return waited_ns <= static_cast<std::int64_t>(target_ns());
    }
    if (now_ns - last > 1'000'000) last_above_ns_.store(now_ns, std::memory_order_relaxed);
    const bool standing = now_ns - since >= interval;
    return waited_ns <= (standing ? delay : static_cast<std::int64_t>(target_ns()));
  }
  /// Sets the delay target (0: off) and the interval; any run of long waits ends.
  void set_queue_delay(std::int64_t delay_ns, std::int64_t interval_ns) {
    queue_interval_ns_.store(interval_ns, std::memory_order_relaxed);
    above_since_ns_.store(0, std::memory_order_relaxed);
    queue_delay_ns_.store(delay_ns, std::memory_order_relaxed);
  }

  void set_target_ns(std::uint64_t ns) { target_ns_.store(ns, std::memory_order_relaxed); }
  std::uint64_t target_ns() const { return target_ns_.load(std::memory_order_relaxed); }
  std::size_t in_flight(admission_class c) const {
    return slots_[index(c)].in_flight.load(std::memory_order_relaxed);
  }

  /// Folds every thread's counters (takes a mutex; not for the request path).
  admission_snapshot snapshot() const { return fold(false); }
  /// The same, for the controller's window: each class's peak then restarts from what is in
  /// flight now.
  admission_snapshot take_window() { return fold(true); }

 private:
  static constexpr std::size_t index(admission_class c) { return static_cast<std::size_t>(c); }
  admission_snapshot fold(bool restart_peaks) const;

  struct alignas(64) slot {
    std::atomic<std::size_t> in_flight{0};
    std::atomic<std::size_t> limit{unlimited};
    std::atomic<std::size_t> peak{0};
    std::atomic<std::uint32_t> epoch{0};
  };
  struct per_class {
    local_counter admitted, refused, completed, over_target;
    local_histogram latency;
  };
  struct block {
    std::array<per_class, admission_classes> c{};
    std::array<per_class, admission_classes> stale{};  // completed, over_target, latency only
    local_counter accept_pauses;
  };

  mutable std::array<slot, admission_classes> slots_{};  // peaks restart in take_window
  alignas(64) std::atomic<std::uint64_t> target_ns_{100'000'000};
  std::atomic<std::size_t> backlog_{0};
  std::atomic<std::int64_t> queue_delay_ns_{0}, queue_interval_ns_{100'000'000};
  // The current run of waits above the delay target (0: none), and its latest such wait.
  alignas(64) std::atomic<std::int64_t> above_since_ns_{0}, last_above_ns_{0};
  mutable per_thread<block> counters_;  // local() on the request path; folded when asked
};

}  // namespace weir::runtime
