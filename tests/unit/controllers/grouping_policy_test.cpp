// The grouping policy driven by a simulated pipeline and a fake clock: no threads, no sleeps.

#include "controllers/grouping_policy.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <random>
#include <set>

namespace weir::controllers {
namespace {

using namespace std::chrono_literals;
using kind = grouping_decision::kind;

constexpr std::int64_t period_ms = 250;
constexpr double period_ns = period_ms * 1e6;

struct stage_model {
  std::string name;
  bool blocking = false;
  std::size_t threads = 1;  // its pool when it runs alone
  double load = 0;          // work per window in threads' worth (0.1: a tenth of one thread)
  double runs = 0;          // runs per window
};

/// weir's five stages serving `rate` requests/s of small cache hits (one in twenty a miss), with
/// rough per-request costs; `send_us` is what a send costs (large responses cost more).
std::vector<stage_model> weir_at(double rate, double send_us = 6) {
  struct cost {
    const char* name;
    bool blocking;
    std::size_t threads;
    double runs_per_request, us;
  };
  const cost costs[] = {{"accept", false, 1, 0.1, 5},
                        {"read_parse", false, 1, 1, 4},
                        {"cache_lookup", false, 1, 1, 2},
                        {"disk_io", true, 2, 0.05, 50},
                        {"send", false, 1, 1, send_us}};
  std::vector<stage_model> out;
  for (const cost& c : costs) {
    out.push_back({c.name, c.blocking, c.threads, rate * c.runs_per_request * c.us * 1e-6,
                   rate * c.runs_per_request * period_ms / 1000.0});
  }
  return out;
}

using topology = std::vector<std::vector<std::string>>;
const topology all_apart = {{"accept"}, {"read_parse"}, {"cache_lookup"}, {"disk_io"}, {"send"}};
const topology all_fused = {{"accept", "read_parse", "cache_lookup", "send"}, {"disk_io"}};
const topology front_fused = {{"accept", "read_parse", "cache_lookup"}, {"disk_io"}, {"send"}};

std::string members(const std::vector<std::string>& stages) {
  std::string out;
  for (const auto& s : stages) out += (out.empty() ? "" : "+") + s;
  return out;
}

/// A pipeline as the policy sees it: each group's utilisation is the sum of its stages' loads over
/// its threads; wake-ups per hop fall and queue waits rise with that utilisation. Every number in
/// a sample carries an independent multiplicative jitter of ±`jitter`.
class pipeline_model {
 public:
  pipeline_model(std::vector<stage_model> stages, const topology& groups, double jitter = 0,
                 unsigned seed = 1)
      : stages_(std::move(stages)), rng_(seed), jitter_(1 - jitter, 1 + jitter) {
    for (const auto& g : groups) {
      std::size_t threads = 1;
      for (const auto& st : g) threads = std::max(threads, stage(st).threads);
      groups_.push_back({g, threads});
    }
    order();
  }

  stage_model& stage(const std::string& name) {
    for (auto& s : stages_)
      if (s.name == name) return s;
    ADD_FAILURE() << "no stage " << name;
    return stages_.front();
  }

  /// Overrides the queue wait the load implies (a busy group whose queue does not build).
  std::optional<std::chrono::microseconds> wait;
  /// The cores weir may use.
  unsigned cores = 2;

  sample next() {
    sample s;
    now_ms_ += period_ms;
    s.now_ms = now_ms_;
    s.window_ms = period_ms;
    s.cores = cores;
    std::vector<stage_sample> stages(stages_.size());
    for (const auto& g : groups_) {
      group_sample gs;
      gs.name = members(g.stages);
      gs.threads = g.threads;
      gs.queue_capacity = 4096;
      gs.stages = g.stages;
      double work = 0;
      for (const auto& name : g.stages) work += stage(name).load;
      const double util = work / static_cast<double>(g.threads);
      const double capacity = period_ns * static_cast<double>(g.threads);
      std::vector<double> sums;
      double total = 0;
      for (const auto& name : g.stages) {
        sums.push_back(stage(name).load * period_ns * j());
        total += sums.back();
      }
      const double scale = total > capacity ? capacity / total : 1.0;  // none busier than busy
      for (std::size_t i = 0; i < g.stages.size(); ++i) {
        const stage_model& m = stage(g.stages[i]);
        stage_sample& st = stages[index(m.name)];
        st.name = m.name;
        st.group = gs.name;
        st.blocking = m.blocking;
        st.tasks = static_cast<std::uint64_t>(std::llround(m.runs * j()));
        if (st.tasks > 0) {
          st.service.sum_ns = static_cast<std::uint64_t>(sums[i] * scale);
          st.service.counts[runtime::latency_bucket(st.service.sum_ns / st.tasks)] = st.tasks;
        }
        gs.blocking = gs.blocking || m.blocking;
        gs.tasks += st.tasks;
        gs.service_ns += st.service.sum_ns;
      }
      // A fused group pays a wake-up on a hop into it, not on its direct calls.
      const double per_hop = std::max(0.01, 0.7 * (1 - std::min(util, 1.0)));
      gs.wakeups = static_cast<std::uint64_t>(std::llround(
          per_hop * static_cast<double>(gs.tasks) / static_cast<double>(g.stages.size()) * j()));
      const double wait_us = wait ? static_cast<double>(wait->count())
                                  : (util >= 1     ? 5000
                                     : util >= 0.9 ? 1500
                                                   : 100 * util / (1 - util));
      const auto wait_ns = static_cast<std::uint64_t>(wait_us * 1e3 * j());
      gs.queue_wait.counts[runtime::latency_bucket(wait_ns)] = gs.tasks;
      gs.queue_wait.sum_ns = wait_ns * gs.tasks;
      s.groups.push_back(std::move(gs));
    }
    s.stages = std::move(stages);
    return s;
  }

  void apply(const grouping_decision& d) {
    if (d.action == kind::fuse) {
      std::vector<std::size_t> from;
      for (std::size_t i = 0; i < groups_.size(); ++i) {
        if (std::any_of(d.stages.begin(), d.stages.end(),
                        [&](const std::string& s) { return holds(groups_[i], s); }))
          from.push_back(i);
      }
      ASSERT_EQ(from.size(), 2u) << "a fuse of other than two groups: " << members(d.stages);
      // As the actuator: the two pools together, CPU-bound ones capped at one thread per core
      // (or the larger pool, if that is more).
      const std::size_t ta = groups_[from[0]].threads, tb = groups_[from[1]].threads;
      group fused{{}, ta + tb};
      bool blocks = false;
      for (const std::size_t i : from) {
        for (const auto& s : groups_[i].stages) {
          fused.stages.push_back(s);
          blocks = blocks || stage(s).blocking;
        }
      }
      if (!blocks) fused.threads = std::min(fused.threads, std::max<std::size_t>({ta, tb, cores}));
      std::sort(fused.stages.begin(), fused.stages.end(),
                [&](const auto& a, const auto& b) { return index(a) < index(b); });
      ASSERT_EQ(fused.stages, d.stages) << "the decision names the fused group's stages in order";
      groups_.erase(groups_.begin() + static_cast<std::ptrdiff_t>(from[1]));
      groups_[from[0]] = std::move(fused);
    } else {
      ASSERT_EQ(d.stages.size(), 1u);
      auto it = std::find_if(groups_.begin(), groups_.end(),
                             [&](const group& g) { return holds(g, d.stages[0]); });
      ASSERT_NE(it, groups_.end());
      ASSERT_GE(it->stages.size(), 2u) << "split a group of one";
      // As the actuator: the leaving stage takes half the pool (all of it if it blocks).
      const bool blocks = stage(d.stages[0]).blocking;
      const std::size_t leaving = blocks ? it->threads : std::max<std::size_t>(1, it->threads / 2);
      it->threads = blocks ? 1 : std::max<std::size_t>(1, it->threads - leaving);
      std::erase(it->stages, d.stages[0]);
      groups_.push_back({{d.stages[0]}, leaving});
    }
    order();
  }

  /// "accept+read_parse | disk_io | send"
  std::string layout() const {
    std::string out;
    for (const auto& g : groups_) out += (out.empty() ? "" : " | ") + members(g.stages);
    return out;
  }

  const std::vector<std::string>& group_of(const std::string& stage) const {
    for (const auto& g : groups_)
      if (holds(g, stage)) return g.stages;
    static const std::vector<std::string> none;
    return none;
  }

 private:
  struct group {
    std::vector<std::string> stages;
    std::size_t threads = 1;
  };
  static bool holds(const group& g, const std::string& s) {
    return std::find(g.stages.begin(), g.stages.end(), s) != g.stages.end();
  }
  std::size_t index(const std::string& name) const {
    for (std::size_t i = 0; i < stages_.size(); ++i)
      if (stages_[i].name == name) return i;
    return stages_.size();
  }
  void order() {
    std::sort(groups_.begin(), groups_.end(), [&](const group& a, const group& b) {
      return index(a.stages.front()) < index(b.stages.front());
    });
  }
  double j() { return jitter_.a() == 1 ? 1 : jitter_(rng_); }

  std::vector<stage_model> stages_;
  std::vector<group> groups_;
  std::int64_t now_ms_ = 0;
  std::mt19937 rng_;
  std::uniform_real_distribution<double> jitter_;
};

/// The defaults, with the run lengths these tests count samples by (fuse_after 4; the default
/// is longer, and nothing here depends on its value beyond the counting).
grouping_settings test_settings() {
  grouping_settings s;
  s.fuse_after = 4;
  return s;
}

/// Runs the policy over the model's samples, applying every decision as the actuator would.
struct grouping_run {
  explicit grouping_run(pipeline_model m, grouping_settings settings = test_settings(),
                        flow_edges f = weir_flow())
      : model(std::move(m)), cfg(settings), flow(std::move(f)) {
    layouts.push_back(model.layout());
  }

  std::vector<grouping_decision> step() {
    const sample s = model.next();
    auto out = decide_grouping(s, state, cfg, flow);
    EXPECT_LE(out.size(), 1u) << "more than one decision in one call";
    for (const auto& d : out) {
      model.apply(d);
      all.push_back({s.now_ms, d});
      layouts.push_back(model.layout());
    }
    return out;
  }
  /// Steps `n` times; returns the decisions taken meanwhile.
  std::size_t steps(int n) {
    std::size_t decisions = 0;
    for (int i = 0; i < n; ++i) decisions += step().size();
    return decisions;
  }

  pipeline_model model;
  grouping_settings cfg;
  flow_edges flow;
  grouping_state state;
  std::vector<std::pair<std::int64_t, grouping_decision>> all;
  std::vector<std::string> layouts;  // the start, then after each decision
};

std::string history(const grouping_run& run) {
  std::string out;
  for (const auto& l : run.layouts) out += "\n  " + l;
  for (const auto& [at, d] : run.all) out += "\n  at " + std::to_string(at) + " ms: " + d.why;
  return out;
}

std::vector<stage_model> two_stages(double first, double second, double runs = 1000) {
  return {{"read_parse", false, 1, first, runs}, {"cache_lookup", false, 1, second, runs}};
}
const flow_edges two_stage_flow = {{"read_parse", "cache_lookup"}};
const topology two_apart = {{"read_parse"}, {"cache_lookup"}};

TEST(grouping_policy, the_flow_names_the_hit_path_and_the_keep_alive_loop) {
  const flow_edges f = weir_flow();
  EXPECT_EQ(f.size(), 6u);
  EXPECT_NE(
      std::find(f.begin(), f.end(), std::pair<std::string, std::string>("cache_lookup", "send")),
      f.end());
  EXPECT_NE(
      std::find(f.begin(), f.end(), std::pair<std::string, std::string>("send", "read_parse")),
      f.end());
}

TEST(grouping_policy, fuses_quiet_neighbours_after_fuse_after_samples_not_before) {
  grouping_run run(pipeline_model(two_stages(0.08, 0.05), two_apart), test_settings(),
                   two_stage_flow);
  for (int i = 1; i < run.cfg.fuse_after; ++i) EXPECT_TRUE(run.step().empty()) << "sample " << i;
  const auto d = run.step();
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].action, kind::fuse);
  EXPECT_EQ(d[0].stages, (std::vector<std::string>{"read_parse", "cache_lookup"}));
  for (const char* part : {"read_parse 0.08", "cache_lookup 0.05", "of 1000 tasks",
                           "predicted fused utilisation 0.13", "4 samples in a row"})
    EXPECT_NE(d[0].why.find(part), std::string::npos) << part << " not in: " << d[0].why;
  EXPECT_EQ(run.state.last_change_ms, run.all.back().first);
  EXPECT_EQ(run.steps(100), 0u) << "nothing left to fuse";
}

TEST(grouping_policy, a_lapse_starts_the_count_again) {
  grouping_run run(pipeline_model(two_stages(0.08, 0.05), two_apart), test_settings(),
                   two_stage_flow);
  EXPECT_EQ(run.steps(3), 0u);
  run.model.stage("read_parse").load = 0.7;  // one busy sample
  EXPECT_EQ(run.steps(1), 0u);
  run.model.stage("read_parse").load = 0.08;
  EXPECT_EQ(run.steps(3), 0u) << "counted the samples before the lapse";
  EXPECT_EQ(run.steps(1), 1u);
}

TEST(grouping_policy, a_pause_of_the_controller_starts_the_count_again) {
  grouping_run run(pipeline_model(two_stages(0.08, 0.05), two_apart), test_settings(),
                   two_stage_flow);
  EXPECT_EQ(run.steps(3), 0u);
  run.cfg.enabled = false;
  EXPECT_EQ(run.steps(5), 0u);
  run.cfg.enabled = true;
  EXPECT_EQ(run.steps(3), 0u) << "counted the samples before the pause";
  EXPECT_EQ(run.steps(1), 1u);
}

TEST(grouping_policy, fuses_only_a_hop_that_wakes_a_worker_often_enough) {
  // Hops into the 0.05-busy cache_lookup wake a worker for 0.665 of its tasks (the model).
  grouping_settings cfg = test_settings();
  cfg.fuse_wakeups_per_task = 0.6;
  grouping_run dear(pipeline_model(two_stages(0.08, 0.05), two_apart), cfg, two_stage_flow);
  EXPECT_EQ(dear.steps(4), 1u);
  cfg.fuse_wakeups_per_task = 0.7;
  grouping_run cheap(pipeline_model(two_stages(0.08, 0.05), two_apart), cfg, two_stage_flow);
  EXPECT_EQ(cheap.steps(100), 0u) << history(cheap);
}

TEST(grouping_policy, does_not_fuse_what_would_land_in_the_split_region) {
  // Each is under fuse_below, but together they would be 0.9 busy: fusing would invite a split.
  grouping_run run(pipeline_model(two_stages(0.45, 0.45), two_apart), test_settings(),
                   two_stage_flow);
  EXPECT_EQ(run.steps(200), 0u) << history(run);
  // 0.3 + 0.35 = 0.65 is within 75 % of split_above: it fuses.
  grouping_run fits(pipeline_model(two_stages(0.3, 0.35), two_apart), test_settings(),
                    two_stage_flow);
  EXPECT_EQ(fits.steps(10), 1u);
}

TEST(grouping_policy, fuses_the_hit_path_though_disk_io_sits_between_them_in_the_list) {
  auto stages = weir_at(0);
  for (auto& [name, load] : std::vector<std::pair<std::string, double>>{{"accept", 0.7},
                                                                        {"read_parse", 0.7},
                                                                        {"cache_lookup", 0.1},
                                                                        {"disk_io", 0.05},
                                                                        {"send", 0.1}}) {
    for (auto& s : stages) {
      if (s.name != name) continue;
      s.load = load;
      s.runs = load * 20000;  // 12.5 us a run
    }
  }
  // On eight cores, so that the four CPU-bound groups are not crowded: the low-load rule alone.
  pipeline_model model(stages, all_apart);
  model.cores = 8;
  grouping_run run(std::move(model));
  EXPECT_EQ(run.steps(3), 0u);
  const auto d = run.step();
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].action, kind::fuse);
  EXPECT_EQ(d[0].stages, (std::vector<std::string>{"cache_lookup", "send"})) << d[0].why;
  EXPECT_NE(d[0].why.find("low load"), std::string::npos) << d[0].why;
  EXPECT_EQ(run.steps(100), 0u) << history(run);
}

TEST(grouping_policy, prefers_the_dearest_hop) {
  auto stages = weir_at(0);
  for (auto& [name, load] : std::vector<std::pair<std::string, double>>{
           {"accept", 0.3}, {"read_parse", 0.3}, {"cache_lookup", 0.02}, {"send", 0.2}}) {
    for (auto& s : stages) {
      if (s.name != name) continue;
      s.load = load;
      s.runs = load * 20000;  // 12.5 us a run
    }
  }
  // Hops into the quietest group (cache_lookup) wake a worker most often.
  grouping_run run(pipeline_model(stages, all_apart));
  EXPECT_EQ(run.steps(4), 1u);
  ASSERT_EQ(run.all.size(), 1u);
  EXPECT_EQ(run.all[0].second.stages, (std::vector<std::string>{"read_parse", "cache_lookup"}))
      << run.all[0].second.why;
}

TEST(grouping_policy, an_idle_pipeline_converges_to_the_cheap_topology) {
  grouping_run run(pipeline_model(weir_at(0), all_apart));
  run.steps(100);
  EXPECT_EQ(run.model.layout(), "accept+read_parse+cache_lookup+send | disk_io") << history(run);
  ASSERT_EQ(run.all.size(), 3u);
  EXPECT_NE(run.all[0].second.why.find("low traffic (0 tasks"), std::string::npos)
      << run.all[0].second.why;
}

TEST(grouping_policy, never_fuses_the_blocking_stage_unless_allowed) {
  for (const double rate : {0.0, 2000.0, 20000.0}) {
    grouping_run run(pipeline_model(weir_at(rate), all_apart, 0.3, 7));
    run.steps(1000);
    EXPECT_EQ(run.model.group_of("disk_io"), std::vector<std::string>{"disk_io"})
        << rate << " req/s" << history(run);
  }
  grouping_settings cfg = test_settings();
  cfg.fuse_blocking = true;
  grouping_run run(pipeline_model(weir_at(0), all_apart), cfg);
  run.steps(200);
  EXPECT_GE(run.model.group_of("disk_io").size(), 2u) << history(run);
}

TEST(grouping_policy, respects_the_cooldown) {
  grouping_run run(pipeline_model(weir_at(0), all_apart));
  run.steps(100);
  ASSERT_EQ(run.all.size(), 3u);
  // The first after fuse_after samples; the next ones as soon as the cooldown allows (their runs
  // counted meanwhile), never sooner.
  EXPECT_EQ(run.all[0].first, 4 * period_ms);
  for (std::size_t i = 1; i < run.all.size(); ++i)
    EXPECT_EQ(run.all[i].first - run.all[i - 1].first, run.cfg.cooldown.count());
}

TEST(grouping_policy, at_most_one_decision_per_call) {
  grouping_settings cfg = test_settings();
  cfg.cooldown = 0ms;
  cfg.fuse_after = 1;
  grouping_run run(pipeline_model(weir_at(0), all_apart), cfg);
  // Every pair is ripe at once: one fuse per call, three calls to converge.
  for (int i = 0; i < 3; ++i) EXPECT_EQ(run.step().size(), 1u);
  EXPECT_EQ(run.steps(50), 0u);
}

TEST(grouping_policy, splits_a_saturated_fused_group) {
  grouping_run run(pipeline_model(weir_at(90000), all_fused));
  EXPECT_TRUE(run.step().empty()) << "split at the first busy sample";
  const auto d = run.step();
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].action, kind::split);
  EXPECT_EQ(d[0].stages, std::vector<std::string>{"send"}) << "send has the largest share";
  for (const char* part : {"saturated", "1.00 busy", "queue wait p90 4.75 ms", "2 samples"})
    EXPECT_NE(d[0].why.find(part), std::string::npos) << part << " not in: " << d[0].why;
  EXPECT_EQ(run.steps(400), 0u) << "the parts are neither saturated nor quiet" << history(run);
}

TEST(grouping_policy, a_busy_group_whose_queue_does_not_build_stays_fused) {
  pipeline_model model(weir_at(90000), all_fused);
  model.wait = 300us;
  grouping_run run(std::move(model));
  EXPECT_EQ(run.steps(200), 0u) << history(run);
}

TEST(grouping_policy, splits_the_stage_whose_service_time_dwarfs_the_others) {
  // 2000 req/s of large files: send takes 200 us a run, the others 2 to 5 us; the group is quiet.
  grouping_run run(pipeline_model(weir_at(2000, 200), all_fused));
  EXPECT_TRUE(run.step().empty());
  const auto d = run.step();
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].action, kind::split);
  EXPECT_EQ(d[0].stages, std::vector<std::string>{"send"});
  EXPECT_NE(d[0].why.find("slow stage: send mean service 200.0 us"), std::string::npos) << d[0].why;
  // The hop back is expensive and both are quiet, but fusing would only split again.
  EXPECT_EQ(run.steps(400), 0u) << history(run);
  // Nor when traffic stops: the policy remembers what a send costs.
  for (const char* name : {"accept", "read_parse", "cache_lookup", "disk_io", "send"}) {
    run.model.stage(name).load = 0;
    run.model.stage(name).runs = 0;
  }
  EXPECT_EQ(run.steps(400), 0u) << history(run);
}

TEST(grouping_policy, a_stage_with_too_few_runs_is_not_judged) {
  auto stages = weir_at(2000, 200);
  for (auto& s : stages) {
    if (s.name == "send") s.runs = 10;  // ten 2 ms sends
  }
  grouping_run run(pipeline_model(stages, all_fused));
  EXPECT_EQ(run.steps(100), 0u) << history(run);
}

TEST(grouping_policy, disabled_decides_nothing) {
  grouping_settings cfg = test_settings();
  cfg.enabled = false;
  grouping_run idle(pipeline_model(weir_at(0), all_apart), cfg);
  EXPECT_EQ(idle.steps(100), 0u);
  grouping_run busy(pipeline_model(weir_at(90000), all_fused), cfg);
  EXPECT_EQ(busy.steps(100), 0u);
}

TEST(grouping_policy, a_window_of_no_length_is_no_evidence) {
  grouping_settings cfg = test_settings();
  cfg.fuse_after = 1;
  grouping_state state;
  pipeline_model model(weir_at(0), all_apart);
  sample s = model.next();
  s.window_ms = 0;  // the sensor's first sample
  EXPECT_TRUE(decide_grouping(s, state, cfg, weir_flow()).empty());
  EXPECT_TRUE(state.runs.empty());
}

// Full load on one core (weir pinned to a CPU): four CPU-bound groups take turns on it, so every
// hop is a context switch. Everything but disk_io fuses, busy as it is, and the saturated fused
// group stays fused: with no core free, its parts would only take turns again.
TEST(grouping_policy, crowded_cores_fuse_everything_but_disk_io_even_at_full_load) {
  for (const unsigned seed : {1u, 2u, 3u}) {
    // 60k req/s of 500 B hits, send's 13 us of kernel time a run (measured on loopback): more
    // than the core can do, so every sample is saturated.
    pipeline_model model(weir_at(60000, 13), all_apart, 0.3, seed);
    model.cores = 1;
    grouping_run run(std::move(model));
    run.steps(1000);
    EXPECT_EQ(run.model.layout(), "accept+read_parse+cache_lookup+send | disk_io")
        << "seed " << seed << history(run);
    ASSERT_EQ(run.all.size(), 3u) << "seed " << seed << history(run);
    for (const auto& [at, d] : run.all) {
      EXPECT_EQ(d.action, kind::fuse);
      EXPECT_NE(d.why.find("CPU-bound groups on 1 cores"), std::string::npos) << d.why;
    }
  }
}

// On two cores, crowding alone fuses down to two CPU-bound groups; past that, the low-load rule
// decides, and at full load it does not.
TEST(grouping_policy, crowding_stops_at_one_group_per_core) {
  for (const unsigned seed : {1u, 2u}) {
    // 200k req/s: every group but accept above fuse_below, so the low-load rule fuses nothing.
    grouping_run run(pipeline_model(weir_at(200000), all_apart, 0.3, seed));
    run.steps(1000);
    std::size_t cpu_groups = 0;
    for (const char* st : {"accept", "read_parse", "cache_lookup", "send"})
      if (run.model.group_of(st).front() == st) ++cpu_groups;
    EXPECT_EQ(cpu_groups, 2u) << "seed " << seed << history(run);
    EXPECT_EQ(run.model.group_of("disk_io"), std::vector<std::string>{"disk_io"});
    EXPECT_EQ(run.steps(1000), 0u) << "seed " << seed << history(run);
  }
}

// A send costs ten times the other stages (3.7 us on average in the model), but 40 us delays a
// hit behind it by only that much: under split_service_min (50 us) a stage is never slow. A fuse
// is refused from half the minimum with half split_service_ratio (the dead band): a 20 us send
// (5.5x) fuses, a 30 us one (8.2x) does not, unless the cores are crowded, where a stage is slow
// only from split_wait (below). No jitter: these are the boundaries themselves.
TEST(grouping_policy, a_stage_under_split_service_min_is_never_slow) {
  for (const bool crowded : {false, true}) {
    SCOPED_TRACE(crowded ? "crowded" : "not crowded");
    const unsigned cores = crowded ? 1 : 8;
    pipeline_model fused(weir_at(5000, 40), all_fused);
    fused.cores = cores;
    grouping_run stays(std::move(fused));
    EXPECT_EQ(stays.steps(400), 0u) << history(stays);

    pipeline_model apart(weir_at(5000, 20), all_apart);
    apart.cores = cores;
    grouping_run fuses(std::move(apart));
    fuses.steps(400);
    EXPECT_EQ(fuses.model.layout(), "accept+read_parse+cache_lookup+send | disk_io")
        << history(fuses);

    pipeline_model slow(weir_at(5000, 30), all_apart);
    slow.cores = cores;
    grouping_run refuses(std::move(slow));
    refuses.steps(400);
    if (crowded) {
      EXPECT_EQ(refuses.model.layout(), "accept+read_parse+cache_lookup+send | disk_io")
          << history(refuses);
    } else {
      EXPECT_EQ(refuses.model.group_of("send"), std::vector<std::string>{"send"})
          << history(refuses);
    }
  }
  // A lower minimum makes the 40 us send slow again.
  grouping_settings cfg = test_settings();
  cfg.split_service_min = 30us;
  pipeline_model model(weir_at(5000, 40), all_fused);
  model.cores = 8;
  grouping_run run(std::move(model), cfg);
  EXPECT_EQ(run.steps(2), 1u);
  ASSERT_EQ(run.all.size(), 1u);
  EXPECT_EQ(run.all[0].second.stages, std::vector<std::string>{"send"});
}

// Split out on one core, a slow stage's thread takes turns with the others' on that core: the split
// buys only the scheduler's time slices, and every hop costs a context switch. So there a stage is
// slow only when its runs are longer than a task may wait in a queue (split_wait, 2 ms): a send
// of 170 us (a short connection's close, on one core) stays fused and a fused-back one is not
// split again; one of 3 ms is split out. On eight cores the 170 us send is split out.
TEST(grouping_policy, on_crowded_cores_a_stage_is_slow_only_past_split_wait) {
  pipeline_model one_core(weir_at(2000, 170), all_fused);
  one_core.cores = 1;
  grouping_run stays(std::move(one_core));
  EXPECT_EQ(stays.steps(400), 0u) << history(stays);

  pipeline_model apart(weir_at(2000, 170), all_apart);
  apart.cores = 1;
  grouping_run fuses(std::move(apart));
  fuses.steps(400);
  EXPECT_EQ(fuses.model.layout(), "accept+read_parse+cache_lookup+send | disk_io")
      << history(fuses);

  pipeline_model very_slow(weir_at(200, 3000), all_fused);
  very_slow.cores = 1;
  grouping_run splits(std::move(very_slow));
  splits.steps(400);
  EXPECT_EQ(splits.model.group_of("send"), std::vector<std::string>{"send"}) << history(splits);

  pipeline_model eight_cores(weir_at(2000, 170), all_fused);
  eight_cores.cores = 8;
  grouping_run parallel(std::move(eight_cores));
  parallel.steps(400);
  EXPECT_EQ(parallel.model.group_of("send"), std::vector<std::string>{"send"}) << history(parallel);
}

// accept's runs are long (a burst of new connections each) but rare: busy for a few hundredths of
// a thread, it holds nothing up, so it is never the slow stage, neither for a split nor against a
// fuse.
TEST(grouping_policy, a_rarely_run_stage_is_never_slow) {
  const auto with_accept = [](double us) {
    auto stages = weir_at(20000, 13);
    for (auto& st : stages) {
      if (st.name != "accept") continue;
      st.runs = 100;                                    // 400 runs a second...
      st.load = st.runs / period_ms * 1e3 * us * 1e-6;  // ...of `us` each
    }
    return stages;
  };
  // 40 us a run is 6.3x the others' mean and over half split_service_min, busy 0.016.
  pipeline_model apart(with_accept(40), all_apart, 0.3, 3);
  apart.cores = 1;
  grouping_run fuses(std::move(apart));
  fuses.steps(400);
  EXPECT_EQ(fuses.model.layout(), "accept+read_parse+cache_lookup+send | disk_io")
      << history(fuses);
  // 80 us is 12.7x and over split_service_min, busy 0.032.
  pipeline_model fused(with_accept(80), all_fused, 0.3, 3);
  fused.cores = 8;
  grouping_run stays(std::move(fused));
  EXPECT_EQ(stays.steps(400), 0u) << history(stays);
}

// ±30 % jitter on every number around a load clearly in one region: at most the one decision
// that region calls for.
TEST(grouping_policy, noisy_input_never_makes_it_flip) {
  struct regime {
    const char* name;
    double rate, send_us;
    topology start;
    std::optional<kind> expected;  // the one decision, if any
    std::vector<std::string> stages;
  };
  const regime regimes[] = {
      {"quiet: send joins the front",
       20000,
       6,
       front_fused,
       kind::fuse,
       {"accept", "read_parse", "cache_lookup", "send"}},
      {"saturated: send leaves", 90000, 6, all_fused, kind::split, {"send"}},
      {"between: busy, not saturated", 120000, 6, front_fused, std::nullopt, {}},
      {"large sends: send leaves", 2000, 200, all_fused, kind::split, {"send"}},
  };
  for (const regime& r : regimes) {
    SCOPED_TRACE(r.name);
    for (const unsigned seed : {1u, 2u, 3u}) {
      grouping_run run(pipeline_model(weir_at(r.rate, r.send_us), r.start, 0.3, seed));
      run.steps(1000);
      ASSERT_EQ(run.all.size(), r.expected ? 1u : 0u) << "seed " << seed << history(run);
      if (r.expected) {
        EXPECT_EQ(run.all[0].second.action, *r.expected);
        EXPECT_EQ(run.all[0].second.stages, r.stages);
      }
    }
  }
}

// The simulated pipeline applies each decision and feeds the next sample: at a steady load the
// topology converges and stays, and never goes back to a layout it left. With ±30 % noise a load
// near a boundary (a pair predicted at 0.78 busy, say) may fuse late, on a rare run of low
// samples: the layout still only moves forward.
TEST(grouping_policy, a_simulated_pipeline_converges_and_does_not_oscillate) {
  for (const double jitter : {0.0, 0.3}) {
    for (const double rate :
         {0.0, 2000.0, 20000.0, 50000.0, 70000.0, 90000.0, 120000.0, 200000.0}) {
      for (const double send_us : {6.0, 200.0}) {
        for (const topology& start : {all_apart, all_fused}) {
          SCOPED_TRACE(testing::Message() << rate << " req/s, send " << send_us << " us, jitter "
                                          << jitter << ", from " << members(start.front()));
          grouping_run run(pipeline_model(weir_at(rate, send_us), start, jitter, 42));
          run.steps(1000);
          const std::size_t later = run.steps(1000);
          if (jitter == 0) {
            EXPECT_EQ(later, 0u) << "still changing" << history(run);
          }
          EXPECT_LE(run.all.size(), 4u) << history(run);
          const std::set<std::string> distinct(run.layouts.begin(), run.layouts.end());
          EXPECT_EQ(distinct.size(), run.layouts.size()) << "went back to a layout" << history(run);
        }
      }
    }
  }
}

}  // namespace
}  // namespace weir::controllers
