// The control loop against a real pipeline, driven round by round with a clock of the test's
// own: a blocked disk stage makes the pool controller grow its group; dry-run only records.

#include "controllers/control_loop.hpp"

#include <gtest/gtest.h>

#include "tests/unit/runtime/sync_support.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
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

}  // namespace
}  // namespace weir::controllers
