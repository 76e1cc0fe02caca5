#include "controllers/grouping_policy.hpp"

#include <algorithm>
#include <chrono>
#include <optional>

#include <fmt/format.h>

namespace weir::controllers {
namespace {

// Fewer runs than this in a window and a ratio means little: at 50 tasks one wake-up moves
// wake-ups per task by 0.02, well under the 0.05 that makes a hop expensive. A stage's mean
// service time needs as many runs to count. Below it, a hop counts as a wake-up per task: at
// such rates (200 tasks a second at the default period) every hop finds the pool parked. Zero
// tasks count too: an idle pipeline converges to the cheap topology, and a wrong fuse costs
// nothing until traffic returns, when the split rules see it within split_after samples.
constexpr std::uint64_t min_tasks = 50;
// A fuse must leave the split rules nothing to undo. The fused group's utilisation is predicted
// as the parts' busy thread-time over the larger pool (the hop's wake-ups are not in the service
// time, so this errs high) and must stay within 75 % of split_above: a prediction 25 % low, or
// ±30 % noise around it, still stays below. Its slowest stage must stay under half
// split_service_ratio, or under half split_service_min (the same dead band as fuse_below against
// split_above).
constexpr double fuse_headroom = 0.75;
constexpr double fuse_service_headroom = 0.5;
// A stage busy for less than this share of one thread is never the slow one, however long its
// runs: a small task finds it running less than one time in twenty, so what it delays is noise.
// (accept takes 25-30 us a run, a burst of new connections at a time, but at a few runs a second.)
constexpr double slow_min_busy = 0.05;

enum class rank { saturated, slow_stage, fuse };

struct candidate {
  std::string key;
  rank order = rank::fuse;
  double score = 0;  // larger first within a rank
  grouping_decision decision;
};

std::string members(const std::vector<std::string>& stages) {
  std::string out;
  for (const std::string& st : stages) out += (out.empty() ? "" : "+") + st;
  return out;
}

const stage_sample* find_stage(const sample& s, const std::string& name) {
  for (const stage_sample& st : s.stages)
    if (st.name == name) return &st;
  return nullptr;
}

std::size_t position(const sample& s, const std::string& stage) {
  for (std::size_t i = 0; i < s.stages.size(); ++i)
    if (s.stages[i].name == stage) return i;
  return s.stages.size();
}

bool holds(const group_sample& g, const std::string& stage) {
  return std::find(g.stages.begin(), g.stages.end(), stage) != g.stages.end();
}

bool is_blocking(const sample& s, const group_sample& g) {
  if (g.blocking) return true;
  return std::any_of(g.stages.begin(), g.stages.end(), [&](const std::string& name) {
    const stage_sample* st = find_stage(s, name);
    return st != nullptr && st->blocking;
  });
}

bool has_edge(const flow_edges& flow, const group_sample& from, const group_sample& to) {
  return std::any_of(flow.begin(), flow.end(),
                     [&](const auto& e) { return holds(from, e.first) && holds(to, e.second); });
}

using stage_cost = grouping_state::stage_cost;

/// A stage's cost as this window measured it on enough runs, else none.
std::optional<stage_cost> window_cost(const sample& s, const stage_sample* st) {
  if (st == nullptr || s.window_ms <= 0) return std::nullopt;
  const std::uint64_t runs = st->service.count();
  if (runs < min_tasks || st->service.sum_ns == 0) return std::nullopt;
  const auto sum = static_cast<double>(st->service.sum_ns);
  return stage_cost{st->name, sum / static_cast<double>(runs),
                    sum / (static_cast<double>(s.window_ms) * 1e6)};
}

struct slowest {
  std::string stage;
  double mean_ns = 0, others_ns = 0, ratio = 0;  // ratio 0: fewer than two stages known
};

/// Of the stages busy for at least `min_busy` of a thread, the one whose mean service time is the
/// largest multiple of the mean of the others' means (all the others').
slowest slowest_stage(const std::vector<stage_cost>& known, double min_busy) {
  slowest out;
  if (known.size() < 2) return out;
  double total = 0;
  for (const stage_cost& k : known) total += k.mean_ns;
  for (const stage_cost& k : known) {
    if (k.busy < min_busy) continue;
    const double others = (total - k.mean_ns) / static_cast<double>(known.size() - 1);
    if (others <= 0) continue;
    if (k.mean_ns / others > out.ratio) out = {k.stage, k.mean_ns, others, k.mean_ns / others};
  }
  return out;
}

int run_of(const grouping_state& state, const std::string& key) {
  for (const auto& [k, n] : state.runs)
    if (k == key) return n;
  return 0;
}

void remember_costs(const sample& s, grouping_state& state) {
  for (const stage_sample& st : s.stages) {
    const std::optional<stage_cost> cost = window_cost(s, &st);
    if (!cost) continue;
    auto it = std::find_if(state.costs.begin(), state.costs.end(),
                           [&](const stage_cost& c) { return c.stage == st.name; });
    if (it == state.costs.end())
      state.costs.push_back(*cost);
    else
      *it = *cost;
  }
}

const stage_cost* remembered_cost(const grouping_state& state, const std::string& stage) {
  for (const stage_cost& c : state.costs)
    if (c.stage == stage) return &c;
  return nullptr;
}

std::size_t cpu_threads(const sample& s) {
  std::size_t n = 0;
  for (const group_sample& g : s.groups)
    if (!is_blocking(s, g)) n += g.threads;
  return n;
}

std::size_t cpu_groups(const sample& s) {
  return static_cast<std::size_t>(std::count_if(s.groups.begin(), s.groups.end(),
                                                [&](const auto& g) { return !is_blocking(s, g); }));
}

// Saturated: busy and queueing. The stage with the largest share of the service time leaves, so
// the rest run beside it on another core (with shares summing to one, it also balances best).
// Only while a core is free for it: with the CPU-bound threads already one per core, the parts
// would take turns on the same cores and pay a hop for it (more threads on the fused group is
// the pool controller's answer, and a better one). A group with a blocking stage may always
// split: its blocking stage's pool grows past the cores.
void saturated_splits(const sample& s, const grouping_settings& cfg, std::uint64_t split_wait_ns,
                      std::vector<candidate>& out) {
  const bool core_free = cpu_threads(s) < s.cores;
  for (const group_sample& g : s.groups) {
    if (g.stages.size() < 2) continue;
    if (!core_free && !is_blocking(s, g)) continue;
    const double util = utilisation(g, s.window_ms);
    const std::uint64_t wait_p90 = g.queue_wait.quantile_ns(0.9);
    if (util < cfg.split_above || wait_p90 <= split_wait_ns) continue;
    std::uint64_t total = 0, largest = 0;
    std::string pick;
    for (const std::string& name : g.stages) {
      const stage_sample* st = find_stage(s, name);
      const std::uint64_t ns = st == nullptr ? 0 : st->service.sum_ns;
      total += ns;
      if (pick.empty() || ns > largest) {
        largest = ns;
        pick = name;
      }
    }
    if (total == 0) {
      // Nothing finished (workers stuck in a long call): the blocking stage is the one to move.
      pick.clear();
      for (const std::string& name : g.stages) {
        const stage_sample* st = find_stage(s, name);
        if (st != nullptr && st->blocking) pick = name;
      }
      if (pick.empty()) continue;
    }
    const stage_sample* st = find_stage(s, pick);
    const std::uint64_t runs = st == nullptr ? 0 : st->service.count();
    const double share =
        total == 0 ? 1.0 : static_cast<double>(largest) / static_cast<double>(total);
    const double mean_us =
        runs == 0 ? 0 : static_cast<double>(largest) / static_cast<double>(runs) / 1e3;
    out.push_back(
        {"split-saturated:" + pick + "/" + members(g.stages),
         rank::saturated,
         util,
         {grouping_decision::kind::split,
          {pick},
          fmt::format("saturated: {} {:.2f} busy, queue wait p90 {:.2f} ms, {} has {:.2f} of its "
                      "service time (mean {:.1f} us over {} runs)",
                      members(g.stages), util, static_cast<double>(wait_p90) / 1e6, pick, share,
                      mean_us, runs)}});
  }
}

double min_ns(const grouping_settings& cfg) {
  return static_cast<double>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(cfg.split_service_min).count());
}

// The shortest mean service that makes a stage slow, split_service_min, unless its split would
// leave more CPU-bound groups than cores (`crowded`). Then the parts take turns on the cores, so
// the split buys only the scheduler's time slices (a small task runs while a long one waits for
// its turn) and every hop between them costs a context switch: worth it only for runs longer
// than a task may wait in a queue, split_wait. (On one core, a send that closes its connection
// costs 50-170 us, ten times a hit's other stages: split out, it came back at the next lull,
// crowded, and left again.)
double slow_min_ns(const grouping_settings& cfg, bool crowded) {
  const double wait = static_cast<double>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(cfg.split_wait).count());
  return crowded ? std::max(min_ns(cfg), wait) : min_ns(cfg);
}

// One stage's runs dwarf the others' and are long enough to matter: while it runs, the small tasks
// queue behind it.
void slow_stage_splits(const sample& s, const grouping_settings& cfg, std::vector<candidate>& out) {
  const std::size_t cpu_count = cpu_groups(s);
  for (const group_sample& g : s.groups) {
    if (g.stages.size() < 2) continue;
    const bool crowded = !is_blocking(s, g) && cpu_count + 1 > s.cores;
    std::vector<stage_cost> known;
    for (const std::string& name : g.stages)
      if (auto cost = window_cost(s, find_stage(s, name))) known.push_back(*cost);
    const slowest slow = slowest_stage(known, slow_min_busy);
    if (slow.ratio < cfg.split_service_ratio || slow.mean_ns < slow_min_ns(cfg, crowded)) continue;
    std::vector<std::string> others;
    for (const stage_cost& k : known)
      if (k.stage != slow.stage) others.push_back(k.stage);
    out.push_back(
        {"split-slow:" + slow.stage + "/" + members(g.stages),
         rank::slow_stage,
         slow.ratio,
         {grouping_decision::kind::split,
          {slow.stage},
          fmt::format("slow stage: {} mean service {:.1f} us vs {:.1f} us for {} ({:.1f}x), "
                      "{} {:.2f} busy",
                      slow.stage, slow.mean_ns / 1e3, slow.others_ns / 1e3, members(others),
                      slow.ratio, members(g.stages), utilisation(g, s.window_ms))}});
  }
}

// What a hop into `to` costs: its wake-ups per task, or one per task when it ran too few tasks to
// measure (see min_tasks).
double hop_cost(const group_sample& to, std::string& text) {
  if (to.tasks < min_tasks) {
    text = fmt::format("hop into {}: low traffic ({} tasks, each counted as a wake-up)",
                       members(to.stages), to.tasks);
    return 1.0;
  }
  const double cost = static_cast<double>(to.wakeups) / static_cast<double>(to.tasks);
  text = fmt::format("hop into {} wakes a worker for {:.2f} of {} tasks", members(to.stages), cost,
                     to.tasks);
  return cost;
}

// Two neighbouring groups fuse when the hop between them costs more than their isolation is
// worth, which is so in either of two cases:
// - crowded: more CPU-bound groups than cores. Each needs a thread, so their threads take turns on
//   the cores and every hop between two of them is a context switch, whatever the load; fused,
//   the pool controller can give the group as many threads as it needs, up to the cores, and no
//   parallelism is lost. (So under full load on one core everything but disk_io fuses.)
// - low load: both groups lightly loaded and the hop wakes a parked worker often.
// In both, never a fuse that would put a slow stage (split_service_ratio and split_service_min,
// or split_wait when crowded, with their dead band) back with fast ones.
void fuses(const sample& s, const grouping_state& state, const grouping_settings& cfg,
           const flow_edges& flow, std::vector<candidate>& out) {
  const std::size_t cpu_count = cpu_groups(s);
  const bool crowded = cpu_count > s.cores;
  for (std::size_t i = 0; i < s.groups.size(); ++i) {
    for (std::size_t j = i + 1; j < s.groups.size(); ++j) {
      const group_sample& a = s.groups[i];
      const group_sample& b = s.groups[j];
      const bool blocks = is_blocking(s, a) || is_blocking(s, b);
      if (!cfg.fuse_blocking && blocks) continue;
      const bool a_to_b = has_edge(flow, a, b), b_to_a = has_edge(flow, b, a);
      if (!a_to_b && !b_to_a) continue;
      const double ua = utilisation(a, s.window_ms), ub = utilisation(b, s.window_ms);
      const bool crowd_fuse = crowded && !blocks;
      if (!crowd_fuse && (ua > cfg.fuse_below || ub > cfg.fuse_below)) continue;
      // Fusing removes the hop both ways: the dearer direction is what it saves.
      double cost = 0;
      std::string cost_text;
      for (const bool forward : {true, false}) {
        if (!(forward ? a_to_b : b_to_a)) continue;
        std::string text;
        const double c = hop_cost(forward ? b : a, text);
        if (cost_text.empty() || c > cost) {
          cost = c;
          cost_text = std::move(text);
        }
      }
      if (!crowd_fuse && cost < cfg.fuse_wakeups_per_task) continue;
      const double ta = static_cast<double>(a.threads), tb = static_cast<double>(b.threads);
      const double fused_threads = std::max({ta, tb, 1.0});
      const double predicted = (ua * ta + ub * tb) / fused_threads;
      if (!crowd_fuse && predicted > cfg.split_above * fuse_headroom) continue;

      std::vector<std::string> stages = a.stages;
      stages.insert(stages.end(), b.stages.begin(), b.stages.end());
      std::stable_sort(stages.begin(), stages.end(), [&](const auto& x, const auto& y) {
        return position(s, x) < position(s, y);
      });
      std::vector<stage_cost> known;
      for (const std::string& name : stages)
        if (const stage_cost* c = remembered_cost(state, name)) known.push_back(*c);
      const slowest slow = slowest_stage(known, slow_min_busy * fuse_service_headroom);
      if (slow.ratio >= cfg.split_service_ratio * fuse_service_headroom &&
          slow.mean_ns >= slow_min_ns(cfg, crowd_fuse) * fuse_service_headroom)
        continue;

      const std::string slow_text =
          slow.ratio > 0 ? fmt::format(", slowest stage {} {:.1f} us, {:.1f}x the others",
                                       slow.stage, slow.mean_ns / 1e3, slow.ratio)
                         : std::string();
      std::string key = "fuse:" + members(a.stages) + "|" + members(b.stages);
      std::string why =
          crowd_fuse
              ? fmt::format(
                    "crowded: {} CPU-bound groups on {} cores: {} {:.2f} and {} {:.2f} "
                    "busy, {}{}",
                    cpu_count, s.cores, members(a.stages), ua, members(b.stages), ub, cost_text,
                    slow_text)
              : fmt::format(
                    "low load: {} {:.2f} and {} {:.2f} busy, {}, predicted fused "
                    "utilisation {:.2f}{}",
                    members(a.stages), ua, members(b.stages), ub, cost_text, predicted, slow_text);
      out.push_back({std::move(key),
                     rank::fuse,
                     cost,
                     {grouping_decision::kind::fuse, std::move(stages), std::move(why)}});
    }
  }
}

}  // namespace

flow_edges weir_flow() {
  return {{"accept", "read_parse"},    {"read_parse", "cache_lookup"},
          {"cache_lookup", "disk_io"}, {"cache_lookup", "send"},
          {"disk_io", "send"},         {"send", "read_parse"}};
}

std::vector<grouping_decision> decide_grouping(const sample& s, grouping_state& state,
                                               const grouping_settings& cfg,
                                               const flow_edges& flow) {
  std::vector<grouping_decision> out;
  if (!cfg.enabled) {
    // Samples from before a pause are not "in a row" with those after it.
    state.runs.clear();
    return out;
  }
  // A window of no length (the sensor's first sample) is no evidence either way.
  if (s.window_ms <= 0) return out;
  remember_costs(s, state);

  const auto split_wait_ns = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(cfg.split_wait).count());
  std::vector<candidate> candidates;
  saturated_splits(s, cfg, split_wait_ns, candidates);
  slow_stage_splits(s, cfg, candidates);
  fuses(s, state, cfg, flow, candidates);

  // A run counts consecutive samples; a candidate absent from this sample starts again at zero.
  std::vector<std::pair<std::string, int>> runs;
  for (const candidate& c : candidates) runs.emplace_back(c.key, run_of(state, c.key) + 1);
  state.runs = std::move(runs);

  if (state.last_change_ms >= 0 && s.now_ms - state.last_change_ms < cfg.cooldown.count())
    return out;
  // Splits before fuses (a saturated group or a slow stage costs latency, a hop only CPU); within a
  // kind, the most pressing (utilisation, service ratio, dearest hop); ties in pipeline order.
  const candidate* best = nullptr;
  for (const candidate& c : candidates) {
    const int need = std::max(1, c.order == rank::fuse ? cfg.fuse_after : cfg.split_after);
    if (run_of(state, c.key) < need) continue;
    if (best == nullptr || c.order < best->order ||
        (c.order == best->order && c.score > best->score))
      best = &c;
  }
  if (best == nullptr) return out;
  grouping_decision d = best->decision;
  d.why += fmt::format(", {} samples in a row", run_of(state, best->key));
  out.push_back(std::move(d));
  state.last_change_ms = s.now_ms;
  state.runs.clear();  // the groups change: what was counted about the old ones is stale
  return out;
}

}  // namespace weir::controllers
