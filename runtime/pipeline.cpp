#include "runtime/pipeline.hpp"

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <thread>

#include "runtime/epoch.hpp"

namespace weir::runtime {

pipeline::~pipeline() {
  stop();
}

stage_index pipeline::add_stage(std::string name, stage_handler& handler) {
  if (stages_.size() >= max_stages) throw std::length_error("pipeline: too many stages");
  stages_.push_back({std::move(name), &handler});
  return static_cast<stage_index>(stages_.size() - 1);
}

group& pipeline::add_group(group::options opts) {
  auto g = std::make_shared<group>(std::move(opts), [this](task* t, group& self) { run(t, self); });
  std::lock_guard lock(groups_mutex_);
  groups_.push_back(g);
  return *g;
}

void pipeline::assign(stage_index stage, group& g) {
  std::lock_guard lock(groups_mutex_);
  stage_group_.at(stage).store(&g, std::memory_order_seq_cst);
}

group* pipeline::regroup(const std::vector<stage_index>& members, group::options opts) {
  std::lock_guard one_at_a_time(regroup_mutex_);
  if (stopping()) return nullptr;
  for (stage_index s : members) {
    if (s >= stages_.size()) throw std::out_of_range("pipeline::regroup: no such stage");
  }
  // Threads start before the map points at the group: the first task finds workers.
  auto fresh =
      std::make_shared<group>(std::move(opts), [this](task* t, group& self) { run(t, self); });
  {
    std::lock_guard lock(groups_mutex_);
    groups_.push_back(fresh);
    std::vector<group*> old;
    for (stage_index s : members) {
      group* was = stage_group_[s].exchange(fresh.get(), std::memory_order_seq_cst);
      if (was != nullptr && std::find(old.begin(), old.end(), was) == old.end()) old.push_back(was);
    }
    // Threads that read the map before this point may still hand tasks to the old groups, until
    // their section ends.
    const std::uint64_t e = epoch::advance();
    for (group* was : old) {
      const bool still_runs_a_stage = std::any_of(
          stage_group_.begin(), stage_group_.begin() + static_cast<std::ptrdiff_t>(stages_.size()),
          [was](const std::atomic<group*>& g) { return g.load() == was; });
      if (still_runs_a_stage) continue;
      for (const auto& g : groups_) {
        if (g.get() == was) retiring_.push_back({g, e});
      }
    }
  }
  reap();
  return fresh.get();
}

void pipeline::reap() {
  std::vector<std::shared_ptr<group>> gone;
  {
    std::lock_guard lock(groups_mutex_);
    for (auto it = retiring_.begin(); it != retiring_.end();) {
      if (!it->stop_requested && epoch::passed(it->epoch)) {
        it->g->request_stop();  // nothing new can reach it: its workers drain it and leave
        it->stop_requested = true;
      }
      if (it->stop_requested && it->g->live_threads() == 0) {
        std::erase(groups_, it->g);
        gone.push_back(std::move(it->g));
        it = retiring_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& g : gone) g->stop();  // its threads have left: this only joins them
}

std::size_t pipeline::retiring() const {
  std::lock_guard lock(groups_mutex_);
  return retiring_.size();
}

std::vector<stage_index> pipeline::stages_of(const group& g) const {
  std::vector<stage_index> out;
  for (std::size_t i = 0; i < stages_.size(); ++i) {
    if (stage_group_[i].load(std::memory_order_acquire) == &g)
      out.push_back(static_cast<stage_index>(i));
  }
  return out;
}

std::vector<std::shared_ptr<group>> pipeline::groups() const {
  std::lock_guard lock(groups_mutex_);
  std::vector<std::shared_ptr<group>> out;
  for (const auto& g : groups_) {
    const bool retired = std::any_of(retiring_.begin(), retiring_.end(),
                                     [&](const retirement& r) { return r.g == g; });
    if (!retired) out.push_back(g);
  }
  return out;
}

namespace {

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::uint64_t elapsed(std::int64_t from, std::int64_t to) {
  return to > from ? static_cast<std::uint64_t>(to - from) : 0;
}

}  // namespace

bool pipeline::dispatch(task& t, stage_index stage) {
  const group::deferred_wakeups section;  // holds `g` only inside an epoch section
  t.next_stage = stage;
  t.enqueued_ns = timing() ? now_ns() : 0;
  // seq_cst (a plain load on x86): ordered after the section's entry, see epoch.hpp.
  group* g = stage_group_[stage].load(std::memory_order_seq_cst);
  if (g->submit(&t)) return true;
  count_rejected(stage, reject_reason::queue_full);
  return false;
}

bool pipeline::run_if_idle(task& t, stage_index stage, stage_index blocking,
                           std::int64_t since_ns) {
  const group::deferred_wakeups section;  // holds `g` only inside an epoch section
  group* g = stage_group_[stage].load(std::memory_order_seq_cst);
  if (g == stage_group_[blocking].load(std::memory_order_seq_cst)) return false;
  if (g->busy_threads() != 0 || g->depth() != 0) return false;
  t.next_stage = stage;
  t.enqueued_ns = timing() ? since_ns : 0;
  run(&t, *g);
  return true;
}

pipeline::queue_load pipeline::load_of(stage_index stage) const {
  const group::deferred_wakeups section;  // holds `g` only inside an epoch section
  const group* g = stage_group_[stage].load(std::memory_order_seq_cst);
  return {g->depth(), g->capacity()};
}

void pipeline::run(task* t, group& self) {
  stats_block& stats = stats_.local();
  const bool timed = timing();
  stage_index s = t->next_stage;
  std::int64_t start = 0;
  if (timed) {
    start = now_ns();
    if (t->enqueued_ns != 0) stats.stages[s].queue_wait.observe(elapsed(t->enqueued_ns, start));
  }
  for (;;) {
    const stage_index next = stages_[s].handler->handle(*t);
    // From here on, with `stage_done` the task may belong to another thread: do not touch it.
    stage_block& done = stats.stages[s];
    done.processed.add();
    std::int64_t end = 0;
    if (timed) {
      end = now_ns();
      done.service.observe(elapsed(start, end));
    }
    if (next == stage_done) return;
    t->next_stage = next;
    t->enqueued_ns = end;
    group* g = stage_group_[next].load(std::memory_order_seq_cst);
    if (next == s) {  // the stage yields: to the back of its queue, or on at once when full
      if (g->submit(t)) return;
      start = end;
      continue;
    }
    if (g == &self) {  // fused: a direct call, no hop
      s = next;
      start = end;
      continue;
    }
    // After a successful submit another worker may already own the task: do not touch it.
    if (g->submit(t)) return;
    stats.stages[next].rejected[static_cast<std::size_t>(reject_reason::queue_full)].add();
    if (overload_) overload_(*t, next);
    return;
  }
}

std::vector<stage_snapshot> pipeline::stage_snapshots() const {
  std::vector<stage_snapshot> out(stages_.size());
  std::unique_lock lock(groups_mutex_);  // a mapped group is not dropped while this is held
  for (std::size_t i = 0; i < stages_.size(); ++i) {
    stage_snapshot& o = out[i];
    o.name = stages_[i].name;
    const group* g = stage_group_[i].load(std::memory_order_acquire);
    if (g == nullptr) continue;
    o.group = g->name();
    o.queue_depth = g->depth();
    o.queue_capacity = g->capacity();
    o.threads = g->threads();
    o.busy_threads = g->busy_threads();
  }
  lock.unlock();
  stats_.for_each([&](const stats_block& b) {
    for (std::size_t i = 0; i < stages_.size(); ++i) {
      const stage_block& sb = b.stages[i];
      out[i].processed += sb.processed.get();
      for (std::size_t r = 0; r < reject_reasons; ++r) out[i].rejected[r] += sb.rejected[r].get();
      sb.queue_wait.fold_into(out[i].queue_wait);
      sb.service.fold_into(out[i].service);
    }
  });
  return out;
}

std::vector<group_snapshot> pipeline::group_snapshots() const {
  std::vector<group_snapshot> out;
  for (const auto& g : groups()) {
    out.push_back({.name = g->name(),
                   .queue_depth = g->depth(),
                   .queue_capacity = g->capacity(),
                   .threads = g->threads(),
                   .busy_threads = g->busy_threads(),
                   .wakeups = g->wakeups()});
  }
  return out;
}

std::uint64_t pipeline::processed(stage_index s) const {
  std::uint64_t n = 0;
  stats_.for_each([&](const stats_block& b) { n += b.stages[s].processed.get(); });
  return n;
}

std::uint64_t pipeline::rejected(stage_index s, reject_reason why) const {
  std::uint64_t n = 0;
  stats_.for_each([&](const stats_block& b) {
    n += b.stages[s].rejected[static_cast<std::size_t>(why)].get();
  });
  return n;
}

std::uint64_t pipeline::processed_total() const {
  std::uint64_t n = 0;
  stats_.for_each([&](const stats_block& b) {
    for (const stage_block& sb : b.stages) n += sb.processed.get();
  });
  return n;
}

void pipeline::stop() {
  stopping_.store(true, std::memory_order_release);
  // Quiescent when two passes find every group empty and idle and no stage ran in between: a task
  // can only move between groups by running a stage, which counts as processed. (A worker counts
  // a stage before its batch ends, and ends the batch with a seq_cst decrement of `busy`, which
  // is what the idle check reads: a count is visible once its worker looks idle.)
  {
    // No regroup starts from here on (regroup checks `stopping_` under this mutex).
    std::lock_guard no_regroup(regroup_mutex_);
  }
  std::vector<std::shared_ptr<group>> all;
  {
    std::lock_guard lock(groups_mutex_);
    all = groups_;
  }
  const auto all_idle = [&all] {
    for (const auto& g : all) {
      if (g->depth() != 0 || g->busy_threads() != 0) return false;
    }
    return true;
  };
  const auto quiescent = [&] {
    const std::uint64_t before = processed_total();
    return all_idle() && all_idle() && processed_total() == before;
  };
  for (;;) {
    if (quiescent()) {
      // The submit/stop handshake: a thread may have read the map and not yet pushed its task.
      // Once a grace period has passed every such push is done, and visible to the check.
      const std::uint64_t e = epoch::advance();
      while (!epoch::passed(e)) std::this_thread::sleep_for(std::chrono::microseconds(100));
      if (quiescent()) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  for (auto& g : all) g->stop();
}

}  // namespace weir::runtime
