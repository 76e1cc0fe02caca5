#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "runtime/bounded_queue.hpp"
#include "runtime/task.hpp"

namespace weir::runtime {

/// A unit of concurrency: one bounded queue and one resizable pool of workers. A worker drains up
/// to `batch` tasks per wake-up and parks only when the queue is empty; a producer wakes a parked
/// worker only when one is parked. What a task does is up to the `runner` (the pipeline), so a
/// group knows nothing of stages.
class group {
 public:
  using runner = std::function<void(task*, group&)>;

  struct options {
    std::string name;
    std::size_t capacity = 4096;
    std::size_t threads = 1;
    std::size_t batch = 64;
    /// Deferred wake-ups wake one parked worker per this many tasks (0: per `batch`). One worker
    /// per batch suits short tasks: a hop costs one wake-up, not one per task. A group whose
    /// tasks block (disk I/O) wants 1, or a batch of misses runs one after another on one worker
    /// while the rest of its pool sleeps.
    std::size_t tasks_per_wake = 0;
  };

  group(options opts, runner run);
  ~group();

  group(const group&) = delete;
  group& operator=(const group&) = delete;

  /// Enqueues a task; false when the queue is full or the group is stopping (the task is
  /// untouched and still the caller's).
  bool submit(task* t);

  /// Changes the pool size (at least 1). Returns at once: surplus workers finish the task they hold
  /// and exit; queued tasks stay queued for the remaining workers, so nothing is lost.
  void resize(std::size_t threads);

  /// Lets the workers drain the queue, then joins them. Idempotent.
  void stop();
  /// Like stop(), without waiting: the workers leave once the queue is empty (live_threads()
  /// then reaches 0). Submitting after this is the caller's bug: nothing may run the task.
  void request_stop();

  const std::string& name() const { return name_; }
  std::size_t threads() const { return target_.load(std::memory_order_relaxed); }
  std::size_t live_threads() const { return live_.load(std::memory_order_relaxed); }
  /// Workers awake and draining (between a wake-up and the next park).
  std::size_t busy_threads() const { return busy_.load(std::memory_order_seq_cst); }
  std::size_t depth() const { return queue_.depth(); }
  std::size_t capacity() const { return queue_.capacity(); }
  /// How many times a worker slept and was woken (the cost a hop pays when the group is idle).
  std::uint64_t wakeups() const { return wakeups_.load(std::memory_order_relaxed); }

  /// Defers the wake-ups that submits made on this thread would do until the scope ends (or
  /// `flush()`), then wakes each target group once per batch instead of once per task. A batch
  /// of hops then costs one context switch, not one per task, even on a single core where the
  /// scheduler would otherwise switch to the woken worker at every submit. Workers run each
  /// batch inside one; event sources (the reactor) open one around each round of events.
  /// The outermost scope is also an epoch section (runtime/epoch.hpp): group pointers read
  /// inside it (from the pipeline's map, or owed a wake-up) are not used after it ends, which
  /// is what lets a retired group stop safely.
  class deferred_wakeups {
   public:
    deferred_wakeups();
    ~deferred_wakeups();
    deferred_wakeups(const deferred_wakeups&) = delete;
    deferred_wakeups& operator=(const deferred_wakeups&) = delete;
    static void flush();
  };

 private:
  void wake(std::size_t n);

  struct slot {
    std::thread thread;
    bool alive = false;  // guarded by mutex_
  };

  void work(std::size_t index);
  bool should_exit(std::size_t index);
  void park(std::size_t index);

  const std::string name_;
  const std::size_t batch_;
  const std::size_t tasks_per_wake_;
  const runner run_;
  bounded_queue<task> queue_;

  std::mutex control_mutex_;  // serialises resize/stop
  std::mutex mutex_;          // parking and worker lifecycle
  std::condition_variable wake_;
  std::vector<std::unique_ptr<slot>> slots_;
  std::atomic<std::size_t> target_{0};
  std::atomic<std::size_t> live_{0};
  std::atomic<bool> stopping_{false};
  // Every submit reads `parked_`; workers write `busy_`: keep them on separate cache lines.
  alignas(64) std::atomic<std::size_t> parked_{0};
  alignas(64) std::atomic<std::size_t> busy_{0};
  std::atomic<std::uint64_t> wakeups_{0};
};

}  // namespace weir::runtime
