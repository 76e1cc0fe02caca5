#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
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
/// stage to another group while traffic flows. Tasks already queued in the old group still run
/// there (a worker runs whatever stage a task names), so regrouping loses and duplicates nothing.
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
  /// Creates a group (its workers start at once).
  group& add_group(group::options opts);
  void set_overload_handler(overload_handler h) { overload_ = std::move(h); }

  /// Runs `stage` in `g` from now on. Two adjacent stages in one group are fused: the first calls
  /// the second directly, with no queue between them.
  void assign(stage_index stage, group& g);
  group& group_of(stage_index stage) const { return *stage_group_[stage].load(); }

  /// Hands a task to the group that runs `stage`. False when that queue is full; the task is then
  /// still the caller's (to answer with 503 or retry later).
  bool dispatch(task& t, stage_index stage);

  /// Waits until no task is queued or running anywhere (tasks may still hop between groups while
  /// this drains), then stops every group. Call after the event sources have stopped.
  void stop();
  /// True once stop() has begun.
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }

  std::size_t stage_count() const { return stages_.size(); }
  const std::string& stage_name(stage_index s) const { return stages_[s].name; }
  const std::vector<std::unique_ptr<group>>& groups() const { return groups_; }

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
  std::vector<std::unique_ptr<group>> groups_;
  overload_handler overload_;
  std::atomic<bool> stopping_{false};
};

}  // namespace weir::runtime
