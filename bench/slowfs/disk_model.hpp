#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <vector>

namespace weir::slowfs {

enum class op_kind { open, stat, read };
inline constexpr std::size_t op_kinds = 3;

/// The disk's settings: a latency per kind of operation (0: pass-through, the op bypasses the
/// queue) and how many operations it serves at a time.
struct disk_settings {
  std::chrono::nanoseconds open_latency{0};
  std::chrono::nanoseconds stat_latency{0};
  std::chrono::nanoseconds read_latency{0};
  unsigned queue = 1;

  std::chrono::nanoseconds latency(op_kind kind) const;
  bool operator==(const disk_settings&) const = default;
};

struct disk_counters {
  std::uint64_t served = 0;                       // ops finished, pass-through included
  std::array<std::uint64_t, op_kinds> by_kind{};  // served, indexed by op_kind
  std::uint64_t waiting = 0;                      // admitted, not yet started (queued)
  std::uint64_t in_service = 0;                   // started, not yet finished
  std::uint64_t max_waiting = 0;                  // the most ever waiting at once (since a reset)
  std::uint64_t read_bytes = 0;                   // bytes the reads served returned
};

/// A disk that serves `queue` operations at a time, each taking its kind's latency; excess
/// operations wait first come, first served. The model only computes schedules: the caller passes
/// `now` (nanoseconds on any monotonic clock) and waits until the returned completion time itself,
/// so tests drive it with a fake clock. Thread-safe.
///
/// Settings changed by apply() govern operations admitted afterwards; admitted operations keep
/// their completion times. Shrinking the queue keeps the servers busy longest, so no new
/// operation starts until fewer than the new `queue` are in service.
class disk_model {
 public:
  using time_point = std::chrono::nanoseconds;

  explicit disk_model(const disk_settings& settings, time_point now = time_point{0});

  /// Schedules one operation arriving at `now`; returns when it completes (`now` when its
  /// latency is 0). Every admit must be followed by one finished().
  time_point admit(op_kind kind, time_point now);
  void finished(op_kind kind, std::uint64_t read_bytes = 0);

  void apply(const disk_settings& settings, time_point now);
  disk_settings settings() const;
  disk_counters counters(time_point now);
  /// Zeroes served, by_kind, read_bytes and max_waiting (waiting and in_service are the present).
  void reset_counters(time_point now);

 private:
  time_point advance(time_point now);  // the model's clock never goes back; drops started ops

  mutable std::mutex mutex_;
  disk_settings settings_;
  std::vector<time_point> free_at_;  // one per server: when it is next idle
  std::deque<time_point> starts_;    // start times of admitted ops not yet started, ascending
  time_point now_{0};
  std::uint64_t admitted_ = 0;
  disk_counters counters_;
};

/// The real-time disk: admit, sleep until done (clock_nanosleep on CLOCK_MONOTONIC).
class slow_disk {
 public:
  explicit slow_disk(const disk_settings& settings);

  /// Blocks for the operation's queueing and service time.
  void serve(op_kind kind);
  void finished(op_kind kind, std::uint64_t read_bytes = 0) { model_.finished(kind, read_bytes); }
  disk_model& model() { return model_; }

 private:
  disk_model model_;
};

disk_model::time_point monotonic_now();
void sleep_until(disk_model::time_point deadline);

}  // namespace weir::slowfs
