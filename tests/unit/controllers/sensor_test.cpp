// The sensor against a real pipeline: per-group deltas of what the stages did between samples.

#include "controllers/sensor.hpp"

#include <gtest/gtest.h>

#include "tests/unit/runtime/sync_support.hpp"

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace weir::controllers {
namespace {

using namespace std::chrono_literals;
using runtime::testing_support::eventually;

// Spends about 200 us per run, then hands the task on.
class busy_stage : public runtime::stage_handler {
 public:
  explicit busy_stage(runtime::stage_index next) : next_(next) {}
  runtime::stage_index handle(runtime::task&) override {
    const auto until = std::chrono::steady_clock::now() + 200us;
    while (std::chrono::steady_clock::now() < until) {
    }
    if (next_ == runtime::stage_done) done.fetch_add(1);
    return next_;
  }
  std::atomic<int> done{0};

 private:
  runtime::stage_index next_;
};

const group_sample* find(const sample& s, const std::string& name) {
  for (const auto& g : s.groups)
    if (g.name == name) return &g;
  return nullptr;
}

TEST(pipeline_sensor, groups_what_the_stages_did_since_the_last_sample) {
  constexpr int n = 20;
  // Declared before the pipeline, so they outlive its workers even when an assertion returns.
  busy_stage first(1), second(2), third(runtime::stage_done);
  std::vector<runtime::task> tasks(n);
  runtime::pipeline pipe;
  pipe.add_stage("first", first);
  pipe.add_stage("second", second);
  pipe.add_stage("disk", third);
  auto& front = pipe.add_group({"front", 64, 1});
  auto& disk = pipe.add_group({"disk", 64, 3});
  pipe.assign(0, front);
  pipe.assign(1, front);  // fused with first
  pipe.assign(2, disk);
  pipeline_sensor sensor(pipe, {"disk"}, 2);

  for (auto& t : tasks) ASSERT_TRUE(pipe.dispatch(t, 0));
  ASSERT_TRUE(eventually([&] { return third.done.load() == n; }));

  const sample s = sensor.take(1000);
  EXPECT_EQ(s.cores, 2u);
  ASSERT_EQ(s.groups.size(), 2u);
  const group_sample* f = find(s, "front");
  const group_sample* d = find(s, "disk");
  ASSERT_NE(f, nullptr);
  ASSERT_NE(d, nullptr);
  EXPECT_FALSE(f->blocking);
  EXPECT_TRUE(d->blocking);
  EXPECT_EQ(f->threads, 1u);
  EXPECT_EQ(d->threads, 3u);
  EXPECT_EQ(f->tasks, 2u * n) << "both fused stages' runs";
  EXPECT_EQ(d->tasks, static_cast<std::uint64_t>(n));
  EXPECT_GE(f->service_ns, 2u * n * 200'000);
  EXPECT_GE(d->service_ns, n * 200'000u);
  // Only hops wait in a queue: into front (dispatch) and into disk; first -> second is a call.
  EXPECT_EQ(f->queue_wait.count(), static_cast<std::uint64_t>(n));
  EXPECT_EQ(d->queue_wait.count(), static_cast<std::uint64_t>(n));

  // Nothing happened since: the next sample is empty, over the window between the two.
  const sample quiet = sensor.take(1020);
  EXPECT_EQ(quiet.window_ms, 20);
  EXPECT_EQ(find(quiet, "front")->tasks, 0u);
  EXPECT_EQ(find(quiet, "front")->service_ns, 0u);
  EXPECT_EQ(find(quiet, "disk")->queue_wait.count(), 0u);

  // Regrouped: the sample follows the map as it is now.
  pipe.assign(1, disk);
  for (auto& t : tasks) ASSERT_TRUE(pipe.dispatch(t, 0));
  ASSERT_TRUE(eventually([&] { return third.done.load() == 2 * n; }));
  const sample after = sensor.take(1040);
  EXPECT_EQ(find(after, "front")->tasks, static_cast<std::uint64_t>(n));
  EXPECT_EQ(find(after, "disk")->tasks, 2u * n);
  pipe.stop();
}

TEST(pipeline_sensor, usable_cores_follows_the_affinity_mask) {
  cpu_set_t saved;
  ASSERT_EQ(::sched_getaffinity(0, sizeof saved, &saved), 0);
  const unsigned all = usable_cores();
  EXPECT_EQ(all, static_cast<unsigned>(CPU_COUNT(&saved)));
  std::thread pinned([&] {
    cpu_set_t one;
    CPU_ZERO(&one);
    for (int c = 0; c < CPU_SETSIZE; ++c) {
      if (CPU_ISSET(c, &saved)) {
        CPU_SET(c, &one);
        break;
      }
    }
    ASSERT_EQ(::sched_setaffinity(0, sizeof one, &one), 0);
    EXPECT_EQ(usable_cores(), 1u);
  });
  pinned.join();
}

}  // namespace
}  // namespace weir::controllers
