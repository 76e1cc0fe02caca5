#include "controllers/control_loop.hpp"

#include <pthread.h>

#include <chrono>

#include <spdlog/spdlog.h>

namespace weir::controllers {
namespace {

constexpr std::int64_t dry_run_repeat_ms = 1000;

std::int64_t steady_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

}  // namespace

control_loop::control_loop(runtime::pipeline& pipe, options opts)
    : pipe_(pipe),
      sensor_(pipe, std::move(opts.blocking_stages), opts.cores),
      history_(opts.history),
      pool_settings_(opts.pool) {}

control_loop::~control_loop() {
  stop();
}

void control_loop::start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] {
    ::pthread_setname_np(::pthread_self(), "weir-control");
    std::unique_lock lock(wake_mutex_);
    while (!stopping_) {
      const auto period = pool().period;
      wake_.wait_for(lock, period, [this] { return stopping_; });
      if (stopping_) break;
      lock.unlock();
      run_once(steady_ms());
      lock.lock();
    }
  });
}

void control_loop::stop() {
  {
    std::lock_guard lock(wake_mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void control_loop::run_once(std::int64_t now_ms) {
  const sample s = sensor_.take(now_ms);
  if (s.window_ms <= 0) return;  // the first sample only sets the baseline
  std::vector<pool_decision> decisions;
  pool_settings settings;
  {
    std::lock_guard lock(mutex_);
    settings = pool_settings_;
    decisions = decide_pools(s, pool_state_, settings);
  }
  for (pool_decision& d : decisions) {
    const bool grow = d.to > d.from;
    if (settings.dry_run) {
      last_dry_run& last = dry_runs_[d.group];
      if (last.from == d.from && last.to == d.to && now_ms - last.at_ms < dry_run_repeat_ms)
        continue;
      last = {d.from, d.to, now_ms};
    }
    bool applied = false;
    if (!settings.dry_run) {
      for (const auto& g : pipe_.groups()) {
        if (g->name() != d.group) continue;
        g->resize(d.to);
        applied = true;
      }
    }
    pool_actions_[grow ? 0 : 1].fetch_add(1);
    spdlog::info("controller pool: {} {} {} -> {} threads{}: {}", grow ? "grow" : "shrink", d.group,
                 d.from, d.to, settings.dry_run ? " (dry run, not applied)" : "", d.why);
    record({.at_ms = now_ms,
            .controller = "pool",
            .action = grow ? "grow" : "shrink",
            .group = std::move(d.group),
            .from = d.from,
            .to = d.to,
            .why = std::move(d.why),
            .applied = applied});
  }
}

pool_settings control_loop::pool() const {
  std::lock_guard lock(mutex_);
  return pool_settings_;
}

void control_loop::set_pool(const pool_settings& s) {
  {
    std::lock_guard lock(mutex_);
    pool_settings_ = s;
  }
  wake_.notify_all();  // a new period takes effect now
}

std::vector<decision_record> control_loop::recent() const {
  std::lock_guard lock(mutex_);
  return {recent_.begin(), recent_.end()};
}

void control_loop::record(decision_record d) {
  std::lock_guard lock(mutex_);
  recent_.push_back(std::move(d));
  while (recent_.size() > history_) recent_.pop_front();
}

}  // namespace weir::controllers
