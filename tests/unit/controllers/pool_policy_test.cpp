// The pool policy driven by synthetic samples and a fake clock: no threads, no sleeps.

#include "controllers/pool_policy.hpp"

#include <gtest/gtest.h>

#include <random>

namespace weir::controllers {
namespace {

using namespace std::chrono_literals;

constexpr std::int64_t period_ms = 20;

/// A group over one period: `util` of its threads' time in its stages, every queue wait that
/// ended taking `wait`.
group_sample group(std::string name, std::size_t threads, double util,
                   std::chrono::microseconds wait, std::size_t depth = 0, bool blocking = false) {
  group_sample g;
  g.name = std::move(name);
  g.blocking = blocking;
  g.threads = threads;
  g.queue_depth = depth;
  g.queue_capacity = 1024;
  g.tasks = 100;
  g.service_ns = static_cast<std::uint64_t>(util * period_ms * 1e6 * static_cast<double>(threads));
  g.queue_wait.counts[runtime::latency_bucket(static_cast<std::uint64_t>(wait.count()) * 1000)] =
      g.tasks;
  g.queue_wait.sum_ns = static_cast<std::uint64_t>(wait.count()) * 1000 * g.tasks;
  return g;
}

/// Runs the policy over samples one period apart, applying every decision to the next sample
/// (as the actuator would); returns the decisions in order.
class pool_run {
 public:
  explicit pool_run(unsigned cores, pool_settings settings = {}) : settings_(settings) {
    s_.cores = cores;
    s_.window_ms = period_ms;
  }
  std::vector<pool_decision> step(std::vector<group_sample> groups) {
    for (auto& g : groups) {
      if (auto it = threads_.find(g.name); it != threads_.end()) {
        // The same work (service time), spread over the pool as it is now.
        const double work = static_cast<double>(g.service_ns);
        g.threads = it->second;
        g.service_ns = static_cast<std::uint64_t>(work);
      }
    }
    s_.now_ms += period_ms;
    s_.groups = std::move(groups);
    auto out = decide_pools(s_, state_, settings_);
    for (const auto& d : out) {
      threads_[d.group] = d.to;
      all_.push_back(d);
    }
    return out;
  }
  std::size_t threads(const std::string& g, std::size_t initial) const {
    auto it = threads_.find(g);
    return it == threads_.end() ? initial : it->second;
  }
  const std::vector<pool_decision>& all() const { return all_; }
  pool_settings& settings() { return settings_; }
  std::int64_t now() const { return s_.now_ms; }

 private:
  pool_settings settings_;
  sample s_;
  pool_state state_;
  std::map<std::string, std::size_t> threads_;
  std::vector<pool_decision> all_;
};

TEST(pool_policy, a_busy_cpu_pool_grows_after_sustained_queueing) {
  pool_run run(4);
  EXPECT_TRUE(run.step({group("read_parse", 1, 0.97, 5000us)}).empty());
  EXPECT_TRUE(run.step({group("read_parse", 1, 0.97, 5000us)}).empty());
  const auto d = run.step({group("read_parse", 1, 0.97, 5000us)});
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].group, "read_parse");
  EXPECT_EQ(d[0].from, 1u);
  EXPECT_EQ(d[0].to, 2u);
  EXPECT_NE(d[0].why.find("queue wait p90"), std::string::npos) << d[0].why;
}

TEST(pool_policy, a_pause_in_the_pressure_starts_the_count_again) {
  pool_run run(4);
  run.step({group("send", 1, 0.97, 5000us)});
  run.step({group("send", 1, 0.97, 5000us)});
  run.step({group("send", 1, 0.97, 50us)});  // the queue emptied
  EXPECT_TRUE(run.step({group("send", 1, 0.97, 5000us)}).empty());
  EXPECT_TRUE(run.step({group("send", 1, 0.97, 5000us)}).empty());
  EXPECT_EQ(run.step({group("send", 1, 0.97, 5000us)}).size(), 1u);
}

TEST(pool_policy, a_pause_of_the_controller_starts_the_count_again) {
  pool_run run(4);
  run.step({group("send", 1, 0.97, 5000us)});
  run.step({group("send", 1, 0.97, 5000us)});
  run.settings().enabled = false;
  EXPECT_TRUE(run.step({group("send", 1, 0.97, 5000us)}).empty());
  run.settings().enabled = true;
  EXPECT_TRUE(run.step({group("send", 1, 0.97, 5000us)}).empty())
      << "counted samples before the pause";
  EXPECT_TRUE(run.step({group("send", 1, 0.97, 5000us)}).empty());
  EXPECT_EQ(run.step({group("send", 1, 0.97, 5000us)}).size(), 1u);
}

TEST(pool_policy, queueing_without_busy_workers_is_no_reason_to_grow) {
  pool_run run(4);
  for (int i = 0; i < 50; ++i) EXPECT_TRUE(run.step({group("send", 1, 0.30, 5000us)}).empty());
}

TEST(pool_policy, a_blocking_pool_grows_at_once_and_fast) {
  pool_run run(2);
  // Every disk_io worker stuck in a slow read: nothing finished, a backlog in the queue.
  group_sample stuck = group("disk_io", 2, 0.0, 0us, 200, true);
  stuck.busy_threads = 2;
  stuck.tasks = 0;
  stuck.queue_wait = {};
  const auto first = run.step({stuck});
  ASSERT_EQ(first.size(), 1u) << "a blocked disk pool waited for a second sample";
  EXPECT_EQ(first[0].to, 4u);
  // Within 100 ms (5 periods) it has grown well past the cores.
  for (int i = 0; i < 4; ++i) {
    stuck.busy_threads = run.threads("disk_io", 2);
    run.step({stuck});
  }
  EXPECT_GE(run.threads("disk_io", 2), 16u);
}

TEST(pool_policy, a_blocking_pool_stops_at_its_bound) {
  pool_settings cfg;
  cfg.max_blocking_threads = 10;
  pool_run run(2, cfg);
  group_sample stuck = group("disk_io", 2, 1.0, 50000us, 500, true);
  for (int i = 0; i < 20; ++i) {
    stuck.busy_threads = run.threads("disk_io", 2);
    run.step({stuck});
  }
  EXPECT_EQ(run.threads("disk_io", 2), 10u);
}

TEST(pool_policy, cpu_pools_together_keep_one_thread_per_core) {
  pool_run run(2);
  // Two CPU-bound groups of one thread each already fill two cores: neither grows.
  for (int i = 0; i < 20; ++i) {
    EXPECT_TRUE(
        run.step({group("read_parse", 1, 0.99, 9000us), group("send", 1, 0.99, 9000us)}).empty());
  }
  // One fused group on two cores grows to two threads, and no further.
  pool_run fused(2);
  for (int i = 0; i < 50; ++i) fused.step({group("all", 1, 0.99, 9000us)});
  EXPECT_EQ(fused.threads("all", 1), 2u);
  // Blocking pools do not count against the cores.
  pool_run mixed(2);
  for (int i = 0; i < 50; ++i) {
    mixed.step({group("all", 1, 0.99, 9000us), group("disk_io", 8, 0.1, 10us, 0, true)});
  }
  EXPECT_EQ(mixed.threads("all", 1), 2u);
}

TEST(pool_policy, an_idle_pool_shrinks_slowly_and_not_below_its_minimum) {
  pool_settings cfg;
  cfg.min_threads = 2;
  pool_run run(8, cfg);
  std::int64_t first_shrink = -1;
  for (int i = 0; i < 400; ++i) {  // 8 s
    if (!run.step({group("send", 4, 0.02, 10us)}).empty() && first_shrink < 0)
      first_shrink = run.now();
  }
  ASSERT_GT(first_shrink, 0);
  EXPECT_GE(first_shrink, 2000 + period_ms) << "shrank before shrink_after";
  EXPECT_EQ(run.threads("send", 4), 2u) << "shrank one step per shrink_after, down to the minimum";
  for (const auto& d : run.all()) EXPECT_EQ(d.from - d.to, 1u);
}

TEST(pool_policy, a_blocking_pool_shrinks_slower_still) {
  pool_run run(2);
  std::size_t changes = 0;
  for (int i = 0; i < 9000 / period_ms; ++i)
    changes += run.step({group("disk_io", 16, 0.01, 10us, 0, true)}).size();
  EXPECT_EQ(changes, 0u) << "a blocking pool shrank within 9 s";
  for (int i = 0; i < 2000 / period_ms; ++i)
    changes += run.step({group("disk_io", 16, 0.01, 10us, 0, true)}).size();
  EXPECT_EQ(changes, 1u);
}

TEST(pool_policy, moderate_work_keeps_its_threads) {
  pool_run run(8);
  // Three threads carrying 1.5 threads' worth: it would not fit in two at the idle bound.
  for (int i = 0; i < 500; ++i) EXPECT_TRUE(run.step({group("send", 3, 0.5, 100us)}).empty());
}

// ±30 % jitter on every input around operating points: at most the one adjustment the load
// calls for, and never a grow undone by a shrink (or the reverse).
TEST(pool_policy, noisy_input_never_makes_it_oscillate) {
  std::mt19937 rng(12345);
  std::uniform_real_distribution<double> jitter(0.7, 1.3);
  struct point {
    std::size_t threads;
    double util;
    std::chrono::microseconds wait;
  };
  for (const point p : {point{1, 0.5, 400us}, point{2, 0.6, 700us}, point{1, 0.95, 3000us},
                        point{4, 0.2, 100us}, point{3, 0.4, 800us}}) {
    SCOPED_TRACE(testing::Message() << p.threads << " threads at " << p.util);
    pool_run run(8);
    // The work is fixed (threads × utilisation); a pool that grows spreads it thinner.
    const double work = static_cast<double>(p.threads) * p.util;
    for (int i = 0; i < 3000; ++i) {  // 60 s
      const std::size_t t = run.threads("g", p.threads);
      const double util = std::min(1.0, work / static_cast<double>(t) * jitter(rng));
      const auto wait = std::chrono::microseconds(
          static_cast<std::int64_t>(static_cast<double>(p.wait.count()) * jitter(rng) *
                                    static_cast<double>(p.threads) / static_cast<double>(t)));
      run.step({group("g", t, util, wait)});
    }
    const auto& all = run.all();
    EXPECT_LE(all.size(), 3u);
    for (std::size_t i = 1; i < all.size(); ++i) {
      EXPECT_EQ(all[i].to > all[i].from, all[0].to > all[0].from)
          << "changed direction: " << all[i - 1].from << "->" << all[i - 1].to << " then "
          << all[i].from << "->" << all[i].to;
    }
  }
}

TEST(pool_policy, disabled_decides_nothing) {
  pool_settings cfg;
  cfg.enabled = false;
  pool_run run(4, cfg);
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(run.step({group("send", 1, 1.0, 9000us, 99)}).empty());
}

TEST(pool_policy, forgets_groups_that_are_gone) {
  pool_run run(4);
  run.step({group("a", 1, 0.97, 5000us)});
  run.step({group("a", 1, 0.97, 5000us)});
  run.step({group("b", 1, 0.1, 10us)});  // a was fused away
  EXPECT_TRUE(run.step({group("a", 1, 0.97, 5000us)}).empty()) << "kept a's count across";
}

// A CPU-bound group's short tasks are in its service time: one instant's busy workers are noise.
// A blocking group's worker stuck in a long read has not finished yet: its busy share counts.
TEST(utilisation, counts_busy_workers_only_for_a_blocking_group) {
  group_sample g = group("send", 2, 0.1, 10us);
  g.busy_threads = 2;
  EXPECT_NEAR(utilisation(g, period_ms), 0.1, 1e-9);
  g.blocking = true;
  EXPECT_NEAR(utilisation(g, period_ms), 1.0, 1e-9);
  g.busy_threads = 0;
  EXPECT_NEAR(utilisation(g, period_ms), 0.1, 1e-9);
}

TEST(histogram_quantile, interpolates_inside_the_bucket) {
  runtime::histogram_snapshot h;
  EXPECT_EQ(h.quantile_ns(0.9), 0u);
  h.counts[runtime::latency_bucket(20'000)] = 10;  // (10 us, 25 us]
  EXPECT_EQ(h.quantile_ns(0.5), 17'500u);
  EXPECT_EQ(h.quantile_ns(1.0), 25'000u);
  h.counts[runtime::latency_buckets - 1] = 90;  // +Inf
  EXPECT_EQ(h.quantile_ns(0.9), runtime::latency_bounds_ns.back());
  const runtime::histogram_snapshot later = h;
  runtime::histogram_snapshot more = later;
  more.counts[0] += 5;
  more.sum_ns += 5000;
  const auto d = more.since(later);
  EXPECT_EQ(d.count(), 5u);
  EXPECT_EQ(d.sum_ns, 5000u);
}

}  // namespace
}  // namespace weir::controllers
