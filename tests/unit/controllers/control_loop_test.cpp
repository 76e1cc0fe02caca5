// The control loop against a real pipeline, driven round by round with a clock of the test's
// own: a blocked disk stage makes the pool controller grow its group; dry-run only records.

#include "controllers/control_loop.hpp"

#include <gtest/gtest.h>

#include "tests/unit/runtime/sync_support.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string_view>
#include <thread>
#include <vector>

namespace weir::controllers {
namespace {

using namespace std::chrono_literals;
using runtime::testing_support::eventually;

// A disk that hangs until the test opens it.
class stuck_disk : public runtime::stage_handler {
 public:
  runtime::stage_index handle(runtime::task&) override {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [this] { return open_; });
    done.fetch_add(1);
    return runtime::stage_done;
  }
  void open() {
    std::lock_guard lock(mutex_);
    open_ = true;
    cv_.notify_all();
  }
  std::atomic<int> done{0};

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool open_ = false;
};

class control_loop_test : public ::testing::Test {
 protected:
  void SetUp() override {
    pipe_.add_stage("disk_io", disk_);
    group_ = &pipe_.add_group({"disk_io", 1024, 2});
    pipe_.assign(0, *group_);
  }
  void TearDown() override {
    disk_.open();
    pipe_.stop();
  }
  void flood(std::size_t n) {
    tasks_.resize(n);
    for (auto& t : tasks_) ASSERT_TRUE(pipe_.dispatch(t, 0));
  }
  /// A round once every worker of the pool is stuck (new threads start asynchronously).
  void round(control_loop& loop) {
    ASSERT_TRUE(eventually([&] { return group_->busy_threads() == group_->threads(); }))
        << group_->busy_threads() << " of " << group_->threads() << " busy";
    now_ += 20;
    loop.run_once(now_);
  }

  // Declared first: outlive the pipeline's workers.
  stuck_disk disk_;
  std::vector<runtime::task> tasks_;
  runtime::pipeline pipe_;
  runtime::group* group_ = nullptr;
  std::int64_t now_ = 1000;
};

TEST_F(control_loop_test, a_stuck_disk_pool_grows_within_a_few_periods) {
  control_loop loop(pipe_, {.cores = 2});
  loop.run_once(now_);  // baseline
  flood(200);
  for (int i = 0; i < 5; ++i) round(loop);  // 100 ms
  EXPECT_GE(group_->threads(), 16u);
  const auto recent = loop.recent();
  ASSERT_FALSE(recent.empty());
  EXPECT_EQ(recent.front().controller, "pool");
  EXPECT_EQ(recent.front().action, "grow");
  EXPECT_EQ(recent.front().group, "disk_io");
  EXPECT_EQ(recent.front().from, 2u);
  EXPECT_TRUE(recent.front().applied);
  EXPECT_EQ(loop.pool_actions(true), recent.size());
  disk_.open();
  ASSERT_TRUE(eventually([&] { return disk_.done.load() == 200; }));
}

TEST_F(control_loop_test, dry_run_records_and_applies_nothing) {
  pool_settings dry;
  dry.dry_run = true;
  control_loop loop(pipe_, {.pool = dry, .cores = 2});
  loop.run_once(now_);
  flood(100);
  for (int i = 0; i < 3; ++i) round(loop);
  EXPECT_EQ(group_->threads(), 2u);
  const auto recent = loop.recent();
  ASSERT_FALSE(recent.empty());
  for (const auto& d : recent) EXPECT_FALSE(d.applied);
  EXPECT_EQ(recent.front().to, 4u);
  // The same decision every period is recorded once per second, not once per period.
  EXPECT_EQ(recent.size(), 1u);
  for (int i = 0; i < 50; ++i) round(loop);  // another second
  EXPECT_EQ(loop.recent().size(), 2u);
  EXPECT_EQ(loop.pool_actions(true), 2u);
}

TEST_F(control_loop_test, policies_change_live) {
  control_loop loop(pipe_, {.cores = 2});
  pool_settings off = loop.pool();
  off.enabled = false;
  loop.set_pool(off);
  loop.run_once(now_);
  flood(100);
  for (int i = 0; i < 3; ++i) round(loop);
  EXPECT_EQ(group_->threads(), 2u);
  EXPECT_TRUE(loop.recent().empty());
  off.enabled = true;
  loop.set_pool(off);
  round(loop);
  EXPECT_EQ(group_->threads(), 4u);
}

TEST_F(control_loop_test, the_thread_runs_rounds_on_its_own) {
  pool_settings fast;
  fast.period = 5ms;
  control_loop loop(pipe_, {.pool = fast, .cores = 2});
  flood(200);
  loop.start();
  EXPECT_TRUE(eventually([&] { return group_->threads() > 2; })) << "the loop never grew the pool";
  loop.stop();
  const std::size_t after = group_->threads();
  disk_.open();
  ASSERT_TRUE(eventually([&] { return disk_.done.load() == 200; }));
  EXPECT_EQ(group_->threads(), after) << "a stopped loop still resized";
}

// --- the grouping actuator and manual actions, on a three-stage pipeline a -> b -> c ----------

class pass_on : public runtime::stage_handler {
 public:
  explicit pass_on(runtime::stage_index next) : next_(next) {}
  runtime::stage_index handle(runtime::task&) override { return next_; }

 private:
  runtime::stage_index next_;
};

class regroup_test : public ::testing::Test {
 protected:
  void SetUp() override {
    pipe_.add_stage("a", a_);
    pipe_.add_stage("b", b_);
    pipe_.add_stage("c", c_);
    for (runtime::stage_index s = 0; s < 3; ++s)
      pipe_.assign(s, pipe_.add_group({.name = pipe_.stage_name(s), .capacity = 64}));
  }
  void TearDown() override { pipe_.stop(); }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& g : pipe_.groups()) out.push_back(g->name());
    std::sort(out.begin(), out.end());
    return out;
  }
  control_loop::options opts() const {
    return {.blocking_stages = {"c"}, .flow = {{"a", "b"}, {"b", "c"}}, .cores = 2};
  }

  pass_on a_{1}, b_{2}, c_{runtime::stage_done};
  runtime::pipeline pipe_;
};

TEST_F(regroup_test, manual_fuse_and_split_regroup_and_are_recorded) {
  control_loop loop(pipe_, opts());
  EXPECT_EQ(loop.fuse("a", "b"), "");
  EXPECT_EQ(names(), (std::vector<std::string>{"a+b", "c"}));
  EXPECT_EQ(&pipe_.group_of(0), &pipe_.group_of(1));
  EXPECT_EQ(pipe_.group_of(0).threads(), 2u) << "two CPU-bound threads fit two cores";
  EXPECT_EQ(loop.fuse("a", "b"), "a and b already share a group");
  EXPECT_EQ(loop.fuse("a", "x"), "no stage named \"x\"");
  EXPECT_EQ(loop.split("a"), "");
  EXPECT_EQ(names(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(loop.split("a"), "it already runs alone");
  // c blocks: its group keeps a wake-up per task when fused, and takes its pool when it leaves.
  ASSERT_EQ(loop.resize("c", 6), "");
  EXPECT_EQ(loop.fuse("b", "c"), "");
  EXPECT_EQ(pipe_.group_of(2).threads(), 7u);
  EXPECT_EQ(loop.split("c"), "");
  EXPECT_EQ(pipe_.group_of(2).threads(), 7u);
  EXPECT_EQ(pipe_.group_of(1).threads(), 1u);
  EXPECT_EQ(loop.resize("nope", 2), "group \"nope\" does not exist (groups now: a, b, c)");
  EXPECT_EQ(loop.resize("a", 0), "threads: 0 is out of range 1..256");

  const auto recent = loop.recent();
  ASSERT_EQ(recent.size(), 5u);  // fuse, split, resize, fuse, split
  EXPECT_EQ(recent[0].controller, "admin");
  EXPECT_EQ(recent[0].action, "fuse");
  EXPECT_EQ(recent[0].from, 3u);
  EXPECT_EQ(recent[0].to, 2u);
  std::uint64_t fuses = 0;
  for (const auto& c : loop.actions())
    if (c.controller == "admin" && c.action == "fuse") fuses = c.count;
  EXPECT_EQ(fuses, 2u);
}

TEST_F(regroup_test, non_neighbours_do_not_fuse) {
  control_loop loop(pipe_, opts());
  EXPECT_EQ(loop.fuse("a", "c"),
            "a and c are not neighbours in the flow (their groups hand no tasks to each other)");
  EXPECT_EQ(names().size(), 3u);
}

TEST_F(regroup_test, the_grouping_controller_fuses_an_idle_pipeline_and_dry_run_only_records) {
  grouping_settings dry;
  dry.dry_run = true;
  dry.cooldown = 0ms;
  auto o = opts();
  o.grouping = dry;
  o.pool.enabled = false;
  control_loop loop(pipe_, o);
  std::int64_t now = 1000;
  for (int i = 0; i < 3 * dry.fuse_after; ++i, now += dry.period.count()) loop.run_once(now);
  EXPECT_EQ(names().size(), 3u);
  auto recent = loop.recent();
  ASSERT_FALSE(recent.empty());
  EXPECT_EQ(recent.front().controller, "grouping");
  EXPECT_EQ(recent.front().action, "fuse");
  EXPECT_FALSE(recent.front().applied);

  dry.dry_run = false;
  loop.set_grouping(dry);
  for (int i = 0; i < 3 * dry.fuse_after; ++i, now += dry.period.count()) loop.run_once(now);
  EXPECT_EQ(names(), (std::vector<std::string>{"a+b", "c"})) << "c blocks: it stays apart";
  recent = loop.recent();
  EXPECT_TRUE(recent.back().applied);
  EXPECT_EQ(recent.back().to, 2u);
  // Retired groups go once their grace period has passed (each round reaps).
  ASSERT_TRUE(eventually([&] {
    loop.run_once(now += 1);
    return pipe_.retiring() == 0;
  }));
}

/// A control loop running the admission controller alone, on a real gate, with the default
/// settings (period 100 ms, target 100 ms, min_samples 20).
struct admission_loop {
  static control_loop::options admission_only(runtime::admission_gate* gate) {
    control_loop::options o;
    o.pool.enabled = false;
    o.grouping.enabled = false;
    o.gate = gate;
    return o;
  }
  /// Admission decisions on `group` (a class) so far.
  std::size_t decisions(std::string_view group) const {
    std::size_t n = 0;
    for (const auto& d : loop.recent()) n += d.controller == "admission" && d.group == group;
    return n;
  }

  runtime::pipeline pipe;
  runtime::admission_gate gate;
  control_loop loop{pipe, admission_only(&gate)};
};

// The admission controller's windows: a class with fewer answers than min_samples in a period
// (misses on a slow disk) is not left undecided forever: its window goes on until it has them.
TEST(ControlLoopAdmission, ASlowClassesWindowGoesOnUntilItHoldsEnoughAnswers) {
  admission_loop a;
  runtime::admission_gate& gate = a.gate;
  control_loop& loop = a.loop;
  const auto miss = runtime::admission_class::miss;
  // Eight misses answered a period, each in 500 ms, with eight in flight.
  const auto answer_eight = [&] {
    for (int i = 0; i < 8; ++i) ASSERT_TRUE(gate.try_admit(miss));
    for (int i = 0; i < 8; ++i) {
      gate.record(miss, 500'000'000, gate.epoch(miss));
      gate.release(miss);
    }
  };
  const auto miss_decisions = [&] { return a.decisions("miss"); };
  loop.run_once(0);  // the baseline
  answer_eight();
  loop.run_once(100);  // 8 answers: the window goes on
  answer_eight();
  loop.run_once(200);  // 16
  EXPECT_EQ(miss_decisions(), 0u);
  EXPECT_EQ(gate.limit(miss), admission_settings{}.max_limit);
  answer_eight();
  loop.run_once(300);  // 24, all over the target: cut from the 8 in flight at most
  ASSERT_EQ(miss_decisions(), 1u);
  // 24 answers in its 300 ms window: 80/s x 100 ms x 0.75 allows 6 (within 8 x [0.5, 0.9])
  EXPECT_EQ(gate.limit(miss), 6u);
  // A class that never gets min_samples answers still ends its window after ten periods, and
  // then holds (too few answers to cut on): nothing is decided from a handful.
  for (std::int64_t t = 400; t <= 2000; t += 100) {
    ASSERT_TRUE(gate.try_admit(miss));
    gate.record(miss, 500'000'000, gate.epoch(miss));
    gate.release(miss);
    loop.run_once(t);
  }
  EXPECT_EQ(miss_decisions(), 1u);
}

// After a cut, the requests admitted under the old limit are still finishing, slowly: they say
// how the old limit did, so they never cut the new one a second time. The new limit's own
// answers decide.
TEST(ControlLoopAdmission, AnswersAdmittedBeforeACutDoNotCutAgain) {
  admission_loop a;
  runtime::admission_gate& gate = a.gate;
  control_loop& loop = a.loop;
  const auto req = runtime::admission_class::request;
  const auto decisions = [&] { return a.decisions("request"); };
  loop.run_once(0);
  const std::uint32_t old_epoch = gate.epoch(req);
  for (int i = 0; i < 40; ++i) ASSERT_TRUE(gate.try_admit(req));
  const auto answer = [&](int n, std::uint64_t ns, std::uint32_t epoch) {
    for (int i = 0; i < n; ++i) {
      gate.record(req, ns, epoch);
      gate.release(req);
    }
  };
  answer(20, 500'000'000, old_epoch);
  loop.run_once(100);  // 20 answers in 100 ms, all over the target: 200/s x 100 ms x 0.75
  ASSERT_EQ(decisions(), 1u);
  EXPECT_EQ(gate.limit(req), 15u);
  // The other 20 of the old limit end as slowly, after the settling time.
  answer(10, 500'000'000, old_epoch);
  loop.run_once(200);
  answer(10, 500'000'000, old_epoch);
  loop.run_once(300);
  loop.run_once(400);
  EXPECT_EQ(decisions(), 1u);
  EXPECT_EQ(gate.limit(req), 15u);
  // The new limit's own answers are fast, and it refuses. Twenty say nothing of a p99 yet: the
  // window goes on until it has a hundred, and then the limit is raised.
  const auto fast_fifteen = [&] {
    for (int i = 0; i < 15; ++i) ASSERT_TRUE(gate.try_admit(req));
    EXPECT_FALSE(gate.try_admit(req));
    answer(15, 1'000'000, gate.epoch(req));
  };
  fast_fifteen();
  loop.run_once(500);
  EXPECT_EQ(decisions(), 1u);
  for (int i = 0; i < 6; ++i) fast_fifteen();  // 105 answers
  loop.run_once(600);
  ASSERT_EQ(decisions(), 2u);
  EXPECT_EQ(gate.limit(req), 23u);  // x1.5, still under the 40 in flight at the cut
}

// An idle class's window does not stretch over the idle time: when misses start after a quiet
// second, their rate is taken over the time they came in, and the cut is sized by it.
TEST(ControlLoopAdmission, AWindowDoesNotStretchOverIdleTime) {
  admission_loop a;
  runtime::admission_gate& gate = a.gate;
  control_loop& loop = a.loop;
  const auto miss = runtime::admission_class::miss;
  loop.run_once(0);
  for (std::int64_t t = 100; t <= 900; t += 100) loop.run_once(t);  // nothing at all
  // Then, in one period: 40 misses in flight, 20 answered, all over the target.
  for (int i = 0; i < 40; ++i) ASSERT_TRUE(gate.try_admit(miss));
  for (int i = 0; i < 20; ++i) {
    gate.record(miss, 300'000'000, gate.epoch(miss));
    gate.release(miss);
  }
  loop.run_once(1000);
  // 20 answers in its 100 ms window: 200/s x 100 ms x 0.75 = 15 (over 1 s it would be 1.5,
  // and the limit would fall to min_limit).
  EXPECT_EQ(gate.limit(miss), 15u);
}

}  // namespace
}  // namespace weir::controllers
