#include "runtime/pipeline.hpp"

#include <chrono>
#include <stdexcept>
#include <thread>

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
  groups_.push_back(
      std::make_unique<group>(std::move(opts), [this](task* t, group& g) { run(t, g); }));
  return *groups_.back();
}

void pipeline::assign(stage_index stage, group& g) {
  stage_group_.at(stage).store(&g, std::memory_order_release);
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
  t.next_stage = stage;
  t.enqueued_ns = timing() ? now_ns() : 0;
  group* g = stage_group_[stage].load(std::memory_order_acquire);
  if (g->submit(&t)) return true;
  count_rejected(stage, reject_reason::queue_full);
  return false;
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
    group* g = stage_group_[next].load(std::memory_order_acquire);
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
  out.reserve(groups_.size());
  for (const auto& g : groups_) {
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
  const auto all_idle = [this] {
    for (const auto& g : groups_) {
      if (g->depth() != 0 || g->busy_threads() != 0) return false;
    }
    return true;
  };
  for (;;) {
    const std::uint64_t before = processed_total();
    if (all_idle() && all_idle() && processed_total() == before) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  for (auto& g : groups_) g->stop();
}

}  // namespace weir::runtime
