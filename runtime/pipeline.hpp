#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/group.hpp"
#include "runtime/stats.hpp"
#include "runtime/task.hpp"

namespace weir::runtime {

/// A stage is a unit of code: it runs one step of a task and names the stage to run next. It
/// knows nothing of threads or queues.
class stage_handler {
 public:
  virtual ~stage_handler() = default;
  /// Runs one step; returns the next stage, or `stage_done` when the task has left the pipeline
  /// (parked on the event loop, or finished). Returning its own index yields: the task goes to
  /// the back of the stage's queue (or, when that is full, runs again at once).
  virtual stage_index handle(task& t) = 0;
};

/// Stages plus groups plus the map between them. The map is run-time state: `assign` moves a
/// stage to another group while traffic flows, and `regroup` makes a new group for some stages
/// and retires the groups it leaves empty. Tasks already queued in the old group still run
/// there (a worker runs whatever stage a task names), so regrouping loses and duplicates nothing.
///
/// Retiring is safe because every thread that reads the map does so inside an epoch section
/// (runtime/epoch.hpp): a retired group stops only after a grace period, when no thread can
/// still hand it a task, then drains its queue and lets its threads go.
class pipeline {
 public:
  /// Called when the group of `refused` is full (or stopping): the task must be answered and
  /// released. Without a handler such a task is dropped (and counted in `rejected_full`).
  using overload_handler = std::function<void(task&, stage_index refused)>;

  pipeline() = default;
  pipeline(const pipeline&) = delete;
  pipeline& operator=(const pipeline&) = delete;
  ~pipeline();

  /// Registers a stage; returns its index. All stages are added before any group.
  stage_index add_stage(std::string name, stage_handler& handler);
  /// Creates a group (its workers start at once). Safe while traffic flows.
  group& add_group(group::options opts);
  void set_overload_handler(overload_handler h) { overload_ = std::move(h); }

  /// Runs `stage` in `g` from now on. Two adjacent stages in one group are fused: the first calls
  /// the second directly, with no queue between them.
  void assign(stage_index stage, group& g);
  group& group_of(stage_index stage) const { return *stage_group_[stage].load(); }

  /// Runs `members` in a new group made with `opts` from now on, while traffic flows; each
  /// group left running no stage retires (see above). One regroup at a time; the new group, or
  /// nullptr once stop() has begun. Two adjacent members are fused, as with `assign`.
  group* regroup(const std::vector<stage_index>& members, group::options opts);
  /// Moves retirements on: a retired group past its grace period is told to stop, and one whose
  /// threads have all left is dropped. Never blocks; regroup calls it, and the controllers do
  /// each period.
  void reap();
  /// Retired groups not yet dropped.
  std::size_t retiring() const;
  /// The stages `g` runs now, in pipeline order.
  std::vector<stage_index> stages_of(const group& g) const;

  /// Hands a task to the group that runs `stage`. False when that queue is full; the task is then
  /// still the caller's (to answer with 503 or retry later).
  bool dispatch(task& t, stage_index stage);
  /// Runs `stage` (and the stages fused with it) on the calling thread, as a worker of its group
  /// would, when that group is idle: no worker busy and nothing queued. Handing the task over
  /// would then only wake a sleeping worker (a futex wake and two context switches, a quarter of
  /// a small request's CPU on one core; bench/README.md) while the caller goes back to sleep.
  /// False, and the task untouched, when the group is not idle, or when it also runs `blocking`
  /// (a stage that may block the caller, fused in by an operator): dispatch it instead. For an
  /// event source (the reactor) with a small round of events in hand. `since_ns` (steady clock
  /// time, 0: none) is when the task's wait began (its round's start): counted as its queue wait,
  /// as a dispatch would count it.
  bool run_if_idle(task& t, stage_index stage, stage_index blocking, std::int64_t since_ns);
  /// The tasks waiting in the queue of the group that runs `stage` now, and that queue's
  /// capacity (a moment's reading: safe while groups are regrouped).
  struct queue_load {
    std::size_t depth = 0, capacity = 0;
  };
  queue_load load_of(stage_index stage) const;

  /// Waits until no task is queued or running anywhere (tasks may still hop between groups while
  /// this drains), then stops every group. Call after the event sources have stopped.
  void stop();
  /// True once stop() has begun.
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }

  std::size_t stage_count() const { return stages_.size(); }
  const std::string& stage_name(stage_index s) const { return stages_[s].name; }
  /// The groups that are not retiring (a snapshot: safe to use while groups come and go).
  std::vector<std::shared_ptr<group>> groups() const;

  /// Counts an event `stage` turned away for `why` (queue-full refusals are counted here already).
  void count_rejected(stage_index stage, reject_reason why) {
    stats_.local().stages[stage].rejected[static_cast<std::size_t>(why)].add();
  }
  /// Times queue waits and service times (on by default). Off, a hop reads no clock.
  void set_timing(bool on) { timing_.store(on, std::memory_order_relaxed); }
  bool timing() const { return timing_.load(std::memory_order_relaxed); }

  /// Every stage, folded from the workers' per-thread counters (takes a mutex; not for the hot
  /// path). Group fields describe the group the stage runs in now.
  std::vector<stage_snapshot> stage_snapshots() const;
  std::vector<group_snapshot> group_snapshots() const;
  std::uint64_t processed(stage_index s) const;
  std::uint64_t rejected(stage_index s, reject_reason why) const;

 private:
  struct stage_block {
    local_counter processed;
    std::array<local_counter, reject_reasons> rejected{};
    local_histogram queue_wait;
    local_histogram service;
  };
  struct stats_block {
    std::array<stage_block, max_stages> stages{};
  };

  void run(task* t, group& self);
  std::uint64_t processed_total() const;

  struct stage_entry {
    std::string name;
    stage_handler* handler;
  };
  std::vector<stage_entry> stages_;
  std::array<std::atomic<group*>, max_stages> stage_group_{};
  per_thread<stats_block> stats_;
  std::atomic<bool> timing_{true};

  struct retirement {
    std::shared_ptr<group> g;
    std::uint64_t epoch;  // stop once epoch::passed(epoch)
    bool stop_requested = false;
  };
  std::mutex regroup_mutex_;         // one regroup at a time
  mutable std::mutex groups_mutex_;  // groups_, retiring_ and map changes; never on the hot path
  std::vector<std::shared_ptr<group>> groups_;  // every group, retiring ones included
  std::vector<retirement> retiring_;
  overload_handler overload_;
  std::atomic<bool> stopping_{false};
};

}  // namespace weir::runtime
