#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "controllers/pool_policy.hpp"
#include "controllers/sensor.hpp"
#include "runtime/pipeline.hpp"

namespace weir::controllers {

/// One decision as operators see it (log line, admin API): what, to what, why, and whether it
/// was applied (dry-run decides and logs only).
struct decision_record {
  std::int64_t at_ms = 0;
  std::string controller;  // "pool"
  std::string action;      // "grow", "shrink"
  std::string group;
  std::size_t from = 0, to = 0;
  std::string why;
  bool applied = false;
};

/// The controllers' thread (`weir-control`): every period, sensor -> policy -> actuator. The
/// pool controller resizes groups. Policies can be changed while it runs.
class control_loop {
 public:
  struct options {
    pool_settings pool;
    std::vector<std::string> blocking_stages{"disk_io"};
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

  /// One round at `now_ms`: what the thread runs each period (tests call it directly, with a
  /// clock of their own; never while the thread runs).
  void run_once(std::int64_t now_ms);

  pool_settings pool() const;
  void set_pool(const pool_settings& s);

  /// The most recent decisions, oldest first.
  std::vector<decision_record> recent() const;
  /// Decisions taken (applied or not) by the pool controller: grow, shrink.
  std::uint64_t pool_actions(bool grow) const { return pool_actions_[grow ? 0 : 1].load(); }

 private:
  void record(decision_record d);

  runtime::pipeline& pipe_;
  pipeline_sensor sensor_;
  const std::size_t history_;
  mutable std::mutex mutex_;  // settings, state and history; never taken by the request path
  pool_settings pool_settings_;
  pool_state pool_state_;
  std::deque<decision_record> recent_;
  // Dry-run changes nothing, so the policy takes the same decision every period: repeats of the
  // last one per group are logged and recorded at most once per second.
  struct last_dry_run {
    std::size_t from = 0, to = 0;
    std::int64_t at_ms = 0;
  };
  std::map<std::string, last_dry_run> dry_runs_;
  std::array<std::atomic<std::uint64_t>, 2> pool_actions_{};

  std::mutex wake_mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace weir::controllers
