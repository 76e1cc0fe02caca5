#include "runtime/pipeline.hpp"

#include <stdexcept>

namespace weir::runtime {

pipeline::~pipeline() { stop(); }

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
  for (auto& g : groups_) g->stop();
}

}  // namespace weir::runtime
