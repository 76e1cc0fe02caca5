#include "controllers/sensor.hpp"

#include <sched.h>

#include <algorithm>
#include <map>

namespace weir::controllers {

unsigned usable_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) != 0) return 1;
  return std::max(1, CPU_COUNT(&set));
}

pipeline_sensor::pipeline_sensor(const runtime::pipeline& pipe, std::vector<std::string> blocking,
                                 unsigned cores)
    : pipe_(pipe), blocking_(std::move(blocking)), cores_(cores) {
  for (const runtime::stage_snapshot& st : pipe_.stage_snapshots())
    previous_.push_back({st.processed, st.queue_wait, st.service});
  for (const runtime::group_snapshot& g : pipe_.group_snapshots())
    previous_wakeups_[g.name] = g.wakeups;
}

sample pipeline_sensor::take(std::int64_t now_ms) {
  sample s;
  s.now_ms = now_ms;
  s.window_ms = previous_ms_ < 0 ? 0 : now_ms - previous_ms_;
  s.cores = cores_;
  previous_ms_ = now_ms;
  const std::vector<runtime::stage_snapshot> stages = pipe_.stage_snapshots();
  previous_.resize(stages.size());
  for (std::size_t i = 0; i < stages.size(); ++i) {
    const runtime::stage_snapshot& st = stages[i];
    stage_totals& before = previous_[i];
    auto it = std::find_if(s.groups.begin(), s.groups.end(),
                           [&](const group_sample& g) { return g.name == st.group; });
    if (it == s.groups.end()) {
      group_sample g;
      g.name = st.group;
      g.threads = st.threads;
      g.busy_threads = st.busy_threads;
      g.queue_depth = st.queue_depth;
      g.queue_capacity = st.queue_capacity;
      it = s.groups.insert(s.groups.end(), std::move(g));
    }
    const bool blocking = std::find(blocking_.begin(), blocking_.end(), st.name) != blocking_.end();
    if (blocking) it->blocking = true;
    it->stages.push_back(st.name);
    stage_sample ss{.name = st.name,
                    .group = st.group,
                    .blocking = blocking,
                    .tasks = st.processed - std::min(st.processed, before.processed),
                    .queue_wait = st.queue_wait.since(before.queue_wait),
                    .service = st.service.since(before.service)};
    it->tasks += ss.tasks;
    it->queue_wait += ss.queue_wait;
    it->service_ns += ss.service.sum_ns;
    s.stages.push_back(std::move(ss));
    before = {st.processed, st.queue_wait, st.service};
  }
  // Wake-ups are kept per group; a group first seen now (made since the last sample) counts
  // from zero.
  std::map<std::string, std::uint64_t> wakeups;
  for (const runtime::group_snapshot& g : pipe_.group_snapshots()) {
    wakeups[g.name] = g.wakeups;
    auto it = std::find_if(s.groups.begin(), s.groups.end(),
                           [&](const group_sample& gs) { return gs.name == g.name; });
    if (it == s.groups.end()) continue;
    const auto before = previous_wakeups_.find(g.name);
    const std::uint64_t base = before == previous_wakeups_.end() ? 0 : before->second;
    it->wakeups = g.wakeups - std::min(g.wakeups, base);
  }
  previous_wakeups_ = std::move(wakeups);
  return s;
}

}  // namespace weir::controllers
