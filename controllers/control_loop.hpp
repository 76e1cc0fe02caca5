#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "controllers/admission_policy.hpp"
#include "controllers/grouping_policy.hpp"
#include "controllers/pool_policy.hpp"
#include "controllers/sensor.hpp"
#include "runtime/admission.hpp"
#include "runtime/pipeline.hpp"

namespace weir::controllers {

/// One decision as operators see it (log line, admin API): what, to what, why, and whether it
/// was applied (dry-run decides and logs only).
struct decision_record {
  std::int64_t at_ms = 0;
  std::string controller;  // "pool", "grouping", "admission", or "admin" (a manual action)
  std::string action;      // "grow", "shrink", "fuse", "split", "lower", "raise", "resize"
  // pool: the group; grouping: the group made (a split: the stage's); admission: the class
  std::string group;
  // pool: threads; grouping: how many groups; admission: the limit (0: unlimited)
  std::size_t from = 0, to = 0;
  std::string why;
  bool applied = false;
};

/// How many decisions a controller took, by action (applied or not).
struct action_count {
  std::string controller, action;
  std::uint64_t count = 0;
};

/// The controllers' thread (`weir-control`): each controller at its own period, sensor ->
/// policy -> actuator. The pool controller resizes groups; the grouping controller fuses and
/// splits them (pipeline::regroup). Policies change while it runs; manual actions (the admin
/// API's) go through the same actuator, one at a time with the controllers'.
class control_loop {
 public:
  struct options {
    pool_settings pool;
    grouping_settings grouping;
    admission_settings admission;
    /// The gate the admission controller samples and sets (nullptr: no admission control).
    runtime::admission_gate* gate = nullptr;
    std::vector<std::string> blocking_stages{"disk_io"};
    /// Which stages hand tasks to which; only neighbours in it may fuse. Empty: the grouping
    /// controller never fuses (a pipeline whose flow it does not know).
    flow_edges flow;
    std::size_t history = 256;  // decisions kept for the admin API
    unsigned cores = usable_cores();
  };

  control_loop(runtime::pipeline& pipe, options opts);
  ~control_loop();
  control_loop(const control_loop&) = delete;
  control_loop& operator=(const control_loop&) = delete;

  void start();
  /// Stops the thread (idempotent); decisions already applied stay.
  void stop();

  /// One round at `now_ms`: each controller whose period has come samples, decides and acts, and
  /// retired groups move on (tests call it directly, with a clock of their own; never while the
  /// thread runs). The first round only takes the baseline samples.
  void run_once(std::int64_t now_ms);

  pool_settings pool() const;
  void set_pool(const pool_settings& s);
  grouping_settings grouping() const;
  void set_grouping(const grouping_settings& s);
  admission_settings admission() const;
  /// The new target holds for requests finishing from now on; limits move from the next window.
  void set_admission(const admission_settings& s);

  /// Manual actions (experiments, the admin API). Each returns "" when applied, or one line
  /// saying why not (nothing changed).
  std::string resize(std::string_view group, std::size_t threads);
  std::string fuse(std::string_view stage_a, std::string_view stage_b);
  std::string split(std::string_view stage);

  /// The most recent decisions, oldest first.
  std::vector<decision_record> recent() const;
  /// Every controller's decisions so far, by action (the known ones listed even at zero).
  std::vector<action_count> actions() const;
  /// Decisions taken (applied or not) by the pool controller: grow, shrink.
  std::uint64_t pool_actions(bool grow) const;

  /// Makes the pipeline run `layout` (SIGHUP with a changed `stages:` grouping): each entry is
  /// one group's stages in pipeline order and the options to make it with; together they name
  /// every stage once. An entry whose stages already run as one group of that name and queue
  /// capacity is left as it is (its threads too); every other one is made with
  /// pipeline::regroup while traffic flows, under the actuator's lock, logged, recorded as an
  /// admin "regroup" (why "reload") and counted as a change for the grouping cooldown. Returns
  /// "" or why not (nothing changed, unless the pipeline began to stop midway).
  std::string apply_layout(
      const std::vector<std::pair<std::vector<runtime::stage_index>, runtime::group::options>>&
          layout);

 private:
  void run_pool(std::int64_t now_ms);
  void run_grouping(std::int64_t now_ms);
  void run_admission(std::int64_t now_ms);
  /// The actuator for fuse and split; callers hold actuator_mutex_. "" or why not.
  std::string apply_fuse(const std::vector<runtime::stage_index>& members);
  std::string apply_split(runtime::stage_index stage);
  runtime::group* regroup(const std::vector<runtime::stage_index>& members, std::size_t threads,
                          std::size_t capacity);
  bool neighbours(runtime::stage_index a, runtime::stage_index b) const;
  bool blocking(runtime::stage_index s) const;
  std::optional<runtime::stage_index> stage_named(std::string_view name) const;
  /// Applies a manual regroup (callers hold actuator_mutex_), then logs, counts and records it.
  std::string manual(const char* action, std::string subject,
                     const std::function<std::string()>& apply);
  void record(decision_record d);
  /// Records a regroup the controller did not decide (admin API, reload) and starts the
  /// grouping controller's cooldown from it.
  void record_regroup(std::string action, std::string group, std::size_t before, std::size_t after,
                      std::string why);
  void count(const std::string& controller, const std::string& action);

  runtime::pipeline& pipe_;
  const std::vector<std::string> blocking_stages_;
  const flow_edges flow_;
  const unsigned cores_;
  pipeline_sensor pool_sensor_, grouping_sensor_;
  const std::size_t history_;

  mutable std::mutex
      mutex_;  // settings, state, counts and history; never taken by the request path
  pool_settings pool_settings_;
  grouping_settings grouping_settings_;
  admission_settings admission_settings_;
  pool_state pool_state_;
  grouping_state grouping_state_;
  admission_state admission_state_;
  runtime::admission_gate* const gate_;
  /// The target and the queue-delay gate from `s` (the limits are the policy's).
  void apply_to_gate(const admission_settings& s);
  // The admission windows (control thread). Each class's window runs until it holds
  // min_samples answers or max_window_periods periods: its start, and its peak in flight so far.
  runtime::admission_snapshot gate_before_;
  std::int64_t gate_before_ms_ = 0;  // the last period's end (accept pauses are per period)
  std::array<std::int64_t, runtime::admission_classes> class_since_ms_{};
  std::array<std::size_t, runtime::admission_classes> class_peak_{};
  std::deque<decision_record> recent_;
  std::map<std::pair<std::string, std::string>, std::uint64_t> counts_;
  // Dry-run changes nothing, so a policy takes the same decision every period: repeats of the
  // last one per subject are logged and recorded at most once per second.
  struct last_dry_run {
    std::size_t from = 0, to = 0;
    std::int64_t at_ms = 0;
  };
  std::map<std::string, last_dry_run> dry_runs_;
  // -1: baseline not taken yet
  std::int64_t next_pool_ms_ = -1, next_grouping_ms_ = -1, next_admission_ms_ = -1;
  std::int64_t last_ms_ = 0;

  std::mutex actuator_mutex_;  // one resize or regroup at a time (controllers and admin)

  std::mutex wake_mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace weir::controllers
