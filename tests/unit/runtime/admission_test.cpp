// The admission gate: its limit holds under contention, places are held and given back exactly
// once, and what it records (admitted latency only) folds into snapshots.

#include "runtime/admission.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace weir::runtime {
namespace {

constexpr auto req = admission_class::request;
constexpr auto miss = admission_class::miss;
constexpr auto ri = static_cast<std::size_t>(req);
constexpr auto mi = static_cast<std::size_t>(miss);

TEST(AdmissionGate, UnlimitedAdmitsAllAndCounts) {
  admission_gate g;
  EXPECT_EQ(g.limit(req), admission_gate::unlimited);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(g.try_admit(req));
  EXPECT_EQ(g.in_flight(req), 5u);
  for (int i = 0; i < 5; ++i) g.release(req);
  const admission_snapshot s = g.take_window();
  EXPECT_EQ(s.classes[ri].admitted, 5u);
  EXPECT_EQ(s.classes[ri].refused, 0u);
  EXPECT_EQ(s.classes[ri].in_flight, 0u);
  EXPECT_EQ(s.classes[ri].peak_in_flight, 5u);
  EXPECT_EQ(g.snapshot().classes[ri].peak_in_flight, 0u);  // the peak restarted at 0
}

TEST(AdmissionGate, TheLimitRefusesAndCounts) {
  admission_gate g;
  g.set_limit(req, 2);
  EXPECT_TRUE(g.try_admit(req));
  EXPECT_TRUE(g.try_admit(req));
  EXPECT_FALSE(g.try_admit(req));
  EXPECT_EQ(g.in_flight(req), 2u);
  EXPECT_TRUE(g.try_admit(miss));  // the other class has its own limit
  g.release(req);
  EXPECT_TRUE(g.try_admit(req));
  const admission_snapshot s = g.snapshot();
  EXPECT_EQ(s.classes[ri].admitted, 3u);
  EXPECT_EQ(s.classes[ri].refused, 1u);
  EXPECT_EQ(s.classes[ri].limit, 2u);
  EXPECT_EQ(s.classes[mi].admitted, 1u);
}

TEST(AdmissionGate, TransferMovesAPlaceOnlyWhenTheOtherClassHasRoom) {
  admission_gate g;
  g.set_limit(miss, 1);
  ASSERT_TRUE(g.try_admit(req));
  ASSERT_TRUE(g.try_admit(req));
  EXPECT_TRUE(g.transfer(req, miss));
  EXPECT_EQ(g.in_flight(req), 1u);
  EXPECT_EQ(g.in_flight(miss), 1u);
  EXPECT_FALSE(g.transfer(req, miss));  // the disk is full: still holding the request place
  EXPECT_EQ(g.in_flight(req), 1u);
  EXPECT_EQ(g.in_flight(miss), 1u);
  EXPECT_EQ(g.snapshot().classes[mi].refused, 1u);
}

TEST(AdmissionGate, RecordsLatencyAgainstTheTarget) {
  admission_gate g;
  g.set_target_ns(10'000'000);
  g.record(req, 1'000'000, g.epoch(req));
  g.record(req, 10'000'000, g.epoch(req));  // at the target is within it
  g.record(req, 10'000'001, g.epoch(req));
  g.record(miss, 500'000'000, g.epoch(miss));
  const admission_snapshot s = g.snapshot();
  EXPECT_EQ(s.target_ns, 10'000'000u);
  EXPECT_EQ(s.classes[ri].completed, 3u);
  EXPECT_EQ(s.classes[ri].over_target, 1u);
  EXPECT_EQ(s.classes[ri].latency.count(), 3u);
  EXPECT_EQ(s.classes[mi].over_target, 1u);
  EXPECT_EQ(s.classes[mi].latency.count(), 1u);
}

// A request admitted under one limit and answered under the next is counted, but apart: the
// controller must not judge the new limit by it.
TEST(AdmissionGate, AnswersAdmittedUnderAnEarlierLimitAreStale) {
  admission_gate g;
  g.set_target_ns(10'000'000);
  const std::uint32_t before = g.epoch(req);
  g.set_limit(req, 8);
  const std::uint32_t after = g.epoch(req);
  EXPECT_NE(after, before);
  g.set_limit(req, 8);  // the same limit: the same epoch
  EXPECT_EQ(g.epoch(req), after);
  EXPECT_EQ(g.epoch(miss), 0u);       // each class its own
  g.record(req, 50'000'000, before);  // admitted before the change, slow
  g.record(req, 1'000'000, after);
  const admission_snapshot s = g.snapshot();
  EXPECT_EQ(s.classes[ri].completed, 2u);  // the metrics see both
  EXPECT_EQ(s.classes[ri].over_target, 1u);
  EXPECT_EQ(s.classes[ri].latency.count(), 2u);
  EXPECT_EQ(s.classes[ri].stale_completed, 1u);
  EXPECT_EQ(s.classes[ri].stale_over_target, 1u);
  EXPECT_EQ(s.classes[ri].stale_latency.count(), 1u);
}

// Eight threads hammer a limit of 3: at no moment do more than 3 hold a place, every place is
// given back, and admitted + refused is every attempt.
TEST(AdmissionGate, TheLimitHoldsUnderContention) {
  admission_gate g;
  g.set_limit(req, 3);
  std::atomic<int> holding{0}, most{0};
  std::atomic<std::uint64_t> attempts{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) {
        attempts.fetch_add(1, std::memory_order_relaxed);
        if (!g.try_admit(req)) continue;
        const int now = holding.fetch_add(1) + 1;
        int seen = most.load();
        while (now > seen && !most.compare_exchange_weak(seen, now)) {
        }
        holding.fetch_sub(1);
        g.release(req);
      }
    });
  }
  for (auto& t : threads) t.join();
  const admission_snapshot s = g.snapshot();
  EXPECT_LE(most.load(), 3);
  EXPECT_GE(most.load(), 1);
  EXPECT_EQ(s.classes[ri].in_flight, 0u);
  EXPECT_EQ(s.classes[ri].admitted + s.classes[ri].refused, attempts.load());
  EXPECT_LE(s.classes[ri].peak_in_flight, 3u);
}

// --- the fast signal: CoDel on the queue before read_parse (a fake clock, in ns) ---------------

constexpr std::int64_t ms_ns = 1'000'000;

TEST(AdmissionQueueDelay, OffServesEverything) {
  admission_gate g;
  EXPECT_TRUE(g.queue_admit(10'000 * ms_ns, 0));
  g.set_queue_delay(0, 100 * ms_ns);
  EXPECT_TRUE(g.queue_admit(10'000 * ms_ns, 50 * ms_ns));
}

TEST(AdmissionQueueDelay, ABurstIsServedUpToTheTargetAStandingQueueIsRefused) {
  admission_gate g;  // latency target 100 ms
  const std::int64_t t0 = 1'000 * ms_ns;
  g.set_queue_delay(20 * ms_ns, 100 * ms_ns);
  EXPECT_TRUE(g.queue_admit(5 * ms_ns, t0));
  // A burst: long waits for less than an interval are served up to the latency target...
  EXPECT_TRUE(g.queue_admit(60 * ms_ns, t0 + 50 * ms_ns));
  EXPECT_TRUE(g.queue_admit(100 * ms_ns, t0 + 90 * ms_ns));
  // ...but a request that waited past the target itself is not.
  EXPECT_FALSE(g.queue_admit(101 * ms_ns, t0 + 95 * ms_ns));
  // Long waits for a whole interval: the queue stands, and a wait past the delay target is
  // refused...
  EXPECT_FALSE(g.queue_admit(21 * ms_ns, t0 + 151 * ms_ns));
  EXPECT_FALSE(g.queue_admit(60 * ms_ns, t0 + 200 * ms_ns));
  // ...while a short one is served and ends the run.
  EXPECT_TRUE(g.queue_admit(19 * ms_ns, t0 + 210 * ms_ns));
  EXPECT_TRUE(g.queue_admit(60 * ms_ns, t0 + 220 * ms_ns));
  EXPECT_TRUE(g.queue_admit(60 * ms_ns, t0 + 300 * ms_ns));
  EXPECT_FALSE(g.queue_admit(60 * ms_ns, t0 + 321 * ms_ns));  // an interval after it: standing
}

TEST(AdmissionQueueDelay, AnIdleGapIsNotAStandingQueue) {
  // No requests for a while says nothing about the queue: the first long wait after it starts a
  // new run (the case a fresh start on a slow machine hit: its first request waited 20+ ms).
  admission_gate g;
  const std::int64_t t0 = 5'000 * ms_ns;
  g.set_queue_delay(20 * ms_ns, 100 * ms_ns);
  EXPECT_TRUE(g.queue_admit(50 * ms_ns, t0 + 500 * ms_ns));
  EXPECT_TRUE(g.queue_admit(50 * ms_ns, t0 + 700 * ms_ns));  // 200 ms since the last: a new run
  EXPECT_TRUE(g.queue_admit(50 * ms_ns, t0 + 760 * ms_ns));
  EXPECT_FALSE(g.queue_admit(50 * ms_ns, t0 + 800 * ms_ns));  // the run is 100 ms old
}

}  // namespace
}  // namespace weir::runtime
