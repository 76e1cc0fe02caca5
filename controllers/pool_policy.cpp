#include "controllers/pool_policy.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace weir::controllers {
namespace {

std::string describe(double util, std::uint64_t wait_p90_ns, const group_sample& g) {
  return fmt::format("utilisation {:.2f}, queue wait p90 {:.3f} ms, depth {}/{}, {} tasks", util,
                     static_cast<double>(wait_p90_ns) / 1e6, g.queue_depth, g.queue_capacity,
                     g.tasks);
}

}  // namespace

std::vector<pool_decision> decide_pools(const sample& s, pool_state& state,
                                        const pool_settings& cfg) {
  std::vector<pool_decision> out;
  if (!cfg.enabled) {
    state.groups.clear();  // runs and idle times from before a pause do not carry over
    return out;
  }
  std::erase_if(state.groups, [&](const auto& entry) {
    return std::none_of(s.groups.begin(), s.groups.end(),
                        [&](const group_sample& g) { return g.name == entry.first; });
  });
  // State Threads' rule: CPU-bound pools together keep about one runnable thread per core. Only
  // blocking work needs more threads than cores.
  std::size_t cpu_groups = 0, cpu_threads = 0;
  for (const group_sample& g : s.groups) {
    if (g.blocking) continue;
    ++cpu_groups;
    cpu_threads += g.threads;
  }
  const std::size_t cpu_budget =
      std::max(cpu_groups, cfg.max_cpu_threads != 0 ? cfg.max_cpu_threads : s.cores);
  const auto grow_wait_ns = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(cfg.grow_wait).count());

  for (const group_sample& g : s.groups) {
    pool_state::group_state& st = state.groups[g.name];
    const double util = utilisation(g, s.window_ms);
    const std::uint64_t wait_p90 = g.queue_wait.quantile_ns(0.9);
    // Short of threads: busy, and tasks wait (long waits ended in the window, or more queued
    // than the workers can take at once, which also catches workers stuck in a long call).
    const bool waiting = wait_p90 > grow_wait_ns || g.queue_depth > g.threads;
    const bool pressure = util >= cfg.busy && waiting;
    std::size_t to = g.threads;
    std::string why;
    if (pressure) {
      st.idle_since_ms = -1;
      ++st.pressure_runs;
      if (g.blocking) {
        // Blocking work grows at once and doubles: a slow disk must not queue for seconds.
        // (A pool already past the bound, after the bound was lowered live, stays: pressure
        // never shrinks a pool.)
        to = std::max(g.threads,
                      std::min(cfg.max_blocking_threads, std::max(g.threads + 1, g.threads * 2)));
      } else if (st.pressure_runs >= cfg.grow_after && cpu_threads < cpu_budget) {
        to = g.threads + 1;
        ++cpu_threads;
      }
      if (to > g.threads) why = "short of threads: " + describe(util, wait_p90, g);
    } else {
      st.pressure_runs = 0;
      // Idle: the work would fit in one thread fewer, comfortably. Far below `busy`, so input
      // jitter between the two never turns a grow into a shrink.
      const bool fits_in_fewer =
          g.threads > cfg.min_threads &&
          util * static_cast<double>(g.threads) <= cfg.idle * static_cast<double>(g.threads - 1);
      const auto hold = (g.blocking ? cfg.shrink_after_blocking : cfg.shrink_after).count();
      if (!fits_in_fewer) {
        st.idle_since_ms = -1;
      } else if (st.idle_since_ms < 0) {
        st.idle_since_ms = s.now_ms;
      } else if (s.now_ms - st.idle_since_ms >= hold) {
        to = g.threads - 1;
        why = fmt::format("idle for {} ms: ", s.now_ms - st.idle_since_ms) +
              describe(util, wait_p90, g);
        st.idle_since_ms = s.now_ms;  // the next thread goes only after as long again
      }
    }
    if (to < cfg.min_threads) {
      to = cfg.min_threads;
      why = "below min_threads";
    }
    if (to == g.threads) continue;
    st.pressure_runs = 0;
    out.push_back({g.name, g.threads, to, std::move(why)});
  }
  return out;
}

}  // namespace weir::controllers
