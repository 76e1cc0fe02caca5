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

bool pipeline::dispatch(task& t, stage_index stage) {
  t.next_stage = stage;
  group* g = stage_group_[stage].load(std::memory_order_acquire);
  if (g->submit(&t)) return true;
  counters_[stage].rejected_full.fetch_add(1, std::memory_order_relaxed);
  return false;
}

void pipeline::run(task* t, group& self) {
  stage_index s = t->next_stage;
  for (;;) {
    const stage_index next = stages_[s].handler->handle(*t);
    counters_[s].processed.fetch_add(1, std::memory_order_relaxed);
    if (next == stage_done) return;
    t->next_stage = next;
    group* g = stage_group_[next].load(std::memory_order_acquire);
    if (next == s) {  // the stage yields: to the back of its queue, or on at once when full
      if (g->submit(t)) return;
      continue;
    }
    if (g == &self) {  // fused: a direct call, no hop
      s = next;
      continue;
    }
    // After a successful submit another worker may already own the task: do not touch it.
    if (g->submit(t)) return;
    counters_[next].rejected_full.fetch_add(1, std::memory_order_relaxed);
    if (overload_) overload_(*t, next);
    return;
  }
}

void pipeline::stop() {
  stopping_.store(true, std::memory_order_release);
  // Quiescent when two passes find every group empty and idle and no stage ran in between: a task
  // can only move between groups by running a stage, which counts as processed.
  const auto processed_total = [this] {
    std::uint64_t sum = 0;
    for (const auto& c : counters_) sum += c.processed.load(std::memory_order_seq_cst);
    return sum;
  };
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
