#include "bench/slowfs/disk_model.hpp"

#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace weir::slowfs {
namespace {

using namespace std::chrono_literals;
using time_point = disk_model::time_point;

disk_settings reads_of(std::chrono::nanoseconds latency, unsigned queue) {
  disk_settings s;
  s.read_latency = latency;
  s.queue = queue;
  return s;
}

TEST(DiskModel, TwoAtATimeTwentyMsEachServesSixInSixtyMs) {
  disk_model disk(reads_of(20ms, 2));
  std::vector<time_point> done;
  for (int i = 0; i < 6; ++i) done.push_back(disk.admit(op_kind::read, 0ms));
  EXPECT_EQ(done, (std::vector<time_point>{20ms, 20ms, 40ms, 40ms, 60ms, 60ms}));
}

TEST(DiskModel, FirstComeFirstServed) {
  disk_model disk(reads_of(10ms, 1));
  // Arrivals at 0, 1, 2 ms: each starts when the one before it ends, in arrival order.
  EXPECT_EQ(disk.admit(op_kind::read, 0ms), 10ms);
  EXPECT_EQ(disk.admit(op_kind::read, 1ms), 20ms);
  EXPECT_EQ(disk.admit(op_kind::read, 2ms), 30ms);
  // An op arriving after the disk went idle starts at once.
  EXPECT_EQ(disk.admit(op_kind::read, 50ms), 60ms);
}

TEST(DiskModel, ZeroLatencyPassesThroughWithoutQueueing) {
  disk_settings s = reads_of(10ms, 1);  // open and stat latencies are 0
  disk_model disk(s);
  EXPECT_EQ(disk.admit(op_kind::read, 0ms), 10ms);
  EXPECT_EQ(disk.admit(op_kind::stat, 0ms), 0ms);  // not behind the read
  EXPECT_EQ(disk.admit(op_kind::open, 1ms), 1ms);
  EXPECT_EQ(disk.admit(op_kind::read, 0ms), 20ms);  // the disk's queue is unchanged
}

TEST(DiskModel, KindsShareOneQueueWithTheirOwnLatency) {
  disk_settings s;
  s.open_latency = 5ms;
  s.stat_latency = 1ms;
  s.read_latency = 10ms;
  s.queue = 1;
  disk_model disk(s);
  EXPECT_EQ(disk.admit(op_kind::stat, 0ms), 1ms);
  EXPECT_EQ(disk.admit(op_kind::open, 0ms), 6ms);
  EXPECT_EQ(disk.admit(op_kind::read, 0ms), 16ms);
}

TEST(DiskModel, CountsWaitingInServiceAndTheMostWaiting) {
  disk_model disk(reads_of(10ms, 2));
  for (int i = 0; i < 5; ++i) disk.admit(op_kind::read, 0ms);  // start at 0,0,10,10,20
  disk_counters c = disk.counters(0ms);
  EXPECT_EQ(c.waiting, 3u);
  EXPECT_EQ(c.in_service, 2u);
  EXPECT_EQ(c.max_waiting, 3u);
  disk.finished(op_kind::read, 100);
  disk.finished(op_kind::read, 100);
  c = disk.counters(10ms);
  EXPECT_EQ(c.waiting, 1u);
  EXPECT_EQ(c.in_service, 2u);
  EXPECT_EQ(c.served, 2u);
  EXPECT_EQ(c.by_kind[static_cast<std::size_t>(op_kind::read)], 2u);
  EXPECT_EQ(c.read_bytes, 200u);
  EXPECT_EQ(c.max_waiting, 3u);
  for (int i = 0; i < 3; ++i) disk.finished(op_kind::read);
  c = disk.counters(30ms);
  EXPECT_EQ(c.waiting, 0u);
  EXPECT_EQ(c.in_service, 0u);
  EXPECT_EQ(c.served, 5u);
}

TEST(DiskModel, ResetZeroesTheHistoryNotThePresent) {
  disk_model disk(reads_of(10ms, 1));
  disk.admit(op_kind::read, 0ms);
  disk.admit(op_kind::read, 0ms);
  disk.admit(op_kind::read, 0ms);  // waiting: 2
  disk.finished(op_kind::read);
  disk.reset_counters(10ms);  // one finished, one in service, one waiting
  disk_counters c = disk.counters(10ms);
  EXPECT_EQ(c.served, 0u);
  EXPECT_EQ(c.waiting, 1u);
  EXPECT_EQ(c.in_service, 1u);
  EXPECT_EQ(c.max_waiting, 1u);
}

TEST(DiskModel, NewLatencyGovernsLaterOpsOnly) {
  disk_model disk(reads_of(10ms, 1));
  EXPECT_EQ(disk.admit(op_kind::read, 0ms), 10ms);
  disk.apply(reads_of(30ms, 1), 1ms);
  EXPECT_EQ(disk.admit(op_kind::read, 1ms), 40ms);  // behind the 10 ms op, then 30 ms
}

TEST(DiskModel, GrowingTheQueueStartsWaitingWorkSooner) {
  disk_model disk(reads_of(10ms, 1));
  EXPECT_EQ(disk.admit(op_kind::read, 0ms), 10ms);
  disk.apply(reads_of(10ms, 3), 0ms);
  EXPECT_EQ(disk.admit(op_kind::read, 0ms), 10ms);
  EXPECT_EQ(disk.admit(op_kind::read, 0ms), 10ms);
  EXPECT_EQ(disk.admit(op_kind::read, 0ms), 20ms);
}

TEST(DiskModel, ShrinkingTheQueueStartsNothingUntilBelowTheNewLimit) {
  disk_model disk(reads_of(10ms, 4));
  EXPECT_EQ(disk.admit(op_kind::read, 0ms), 10ms);
  EXPECT_EQ(disk.admit(op_kind::read, 2ms), 12ms);
  EXPECT_EQ(disk.admit(op_kind::read, 4ms), 14ms);
  EXPECT_EQ(disk.admit(op_kind::read, 6ms), 16ms);
  disk.apply(reads_of(10ms, 2), 6ms);
  // Four in service, limit two: the next starts when only one is left (at 14 ms).
  EXPECT_EQ(disk.admit(op_kind::read, 6ms), 24ms);
  EXPECT_EQ(disk.admit(op_kind::read, 6ms), 26ms);
}

TEST(DiskModel, AClockThatGoesBackIsHeldAtItsLatest) {
  disk_model disk(reads_of(10ms, 1), 100ms);
  EXPECT_EQ(disk.admit(op_kind::read, 50ms), 110ms);
}

// Real time, real threads: the gate holds six concurrent reads to two at a time. The lower bound
// is what proves the queue (all six at once would take 20 ms); the upper bound only catches a
// hang, so a loaded machine cannot fail it.
TEST(SlowDisk, SixConcurrentReadsTwoAtATimeTakeAtLeastSixtyMs) {
  slow_disk disk(reads_of(20ms, 2));
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&disk] {
      disk.serve(op_kind::read);
      disk.finished(op_kind::read);
    });
  }
  for (auto& t : threads) t.join();
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_GE(elapsed, 60ms);
  EXPECT_LT(elapsed, 10s);
  const disk_counters c = disk.model().counters(monotonic_now());
  EXPECT_EQ(c.served, 6u);
  EXPECT_EQ(c.waiting, 0u);
  EXPECT_EQ(c.in_service, 0u);
  EXPECT_GE(c.max_waiting, 1u);
}

TEST(SlowDisk, SleepUntilReturnsNoEarlierThanTheDeadline) {
  const auto deadline = monotonic_now() + 15ms;
  sleep_until(deadline);
  EXPECT_GE(monotonic_now(), deadline);
}

}  // namespace
}  // namespace weir::slowfs
