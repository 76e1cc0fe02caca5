#include "runtime/stats.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <latch>
#include <memory>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace weir::runtime {
namespace {

struct block {
  local_counter events;
  local_histogram latency;
};

std::uint64_t total_events(const per_thread<block>& p) {
  std::uint64_t n = 0;
  p.for_each([&](const block& b) { n += b.events.get(); });
  return n;
}

TEST(LatencyBuckets, BoundsAreInclusiveAndTheLastBucketTakesTheRest) {
  EXPECT_EQ(latency_bucket(0), 0u);
  EXPECT_EQ(latency_bucket(10'000), 0u);  // <= 10 us
  EXPECT_EQ(latency_bucket(10'001), 1u);
  EXPECT_EQ(latency_bucket(25'000), 1u);
  EXPECT_EQ(latency_bucket(1'000'000), 6u);                                 // 1 ms
  EXPECT_EQ(latency_bucket(10'000'000'000), latency_bounds_ns.size() - 1);  // 10 s
  EXPECT_EQ(latency_bucket(10'000'000'001), latency_buckets - 1);           // +Inf
  for (std::size_t i = 1; i < latency_bounds_ns.size(); ++i)
    EXPECT_LT(latency_bounds_ns[i - 1], latency_bounds_ns[i]);
}

TEST(LocalHistogram, FoldsCountsAndSum) {
  local_histogram h;
  h.observe(5'000);
  h.observe(7'000);
  h.observe(300'000);
  h.observe(20'000'000'000);
  histogram_snapshot s;
  h.fold_into(s);
  h.fold_into(s);  // folding adds: two threads' histograms sum up
  EXPECT_EQ(s.counts[0], 4u);
  EXPECT_EQ(s.counts[latency_bucket(300'000)], 2u);
  EXPECT_EQ(s.counts[latency_buckets - 1], 2u);
  EXPECT_EQ(s.count(), 8u);
  EXPECT_EQ(s.sum_ns, 2 * (5'000 + 7'000 + 300'000 + 20'000'000'000ull));
}

TEST(PerThread, OneBlockPerThreadAndTheSameBlockEachTime) {
  per_thread<block> p;
  block& a = p.local();
  EXPECT_EQ(&a, &p.local());
  block* other = nullptr;
  std::thread([&] { other = &p.local(); }).join();
  EXPECT_NE(other, &a);
  EXPECT_EQ(p.blocks(), 2u);
}

TEST(PerThread, BlocksOfDifferentThreadsNeverShareACacheLine) {
  per_thread<block> p;
  constexpr int threads = 6;
  std::vector<std::uintptr_t> at(threads);
  std::latch all_claimed(threads);  // a thread's block is reused once it exits: hold them all
  std::vector<std::thread> ts;
  for (int i = 0; i < threads; ++i) {
    ts.emplace_back([&, i] {
      at[i] = reinterpret_cast<std::uintptr_t>(&p.local());
      all_claimed.arrive_and_wait();
    });
  }
  for (auto& t : ts) t.join();
  // Each block starts on a line and no two blocks' byte ranges touch a common line.
  std::sort(at.begin(), at.end());
  for (int i = 0; i < threads; ++i) {
    EXPECT_EQ(at[i] % 64, 0u) << "block " << i;
    if (i > 0) {
      const std::uintptr_t last_line_of_previous = (at[i - 1] + sizeof(block) - 1) / 64;
      EXPECT_LT(last_line_of_previous, at[i] / 64) << "blocks " << i - 1 << " and " << i;
    }
  }
}

TEST(PerThread, ConcurrentWritersAndAReaderLoseNothing) {
  per_thread<block> p;
  constexpr int threads = 4;
  constexpr std::uint64_t each = 20'000;
  std::atomic<bool> writing{true};
  std::thread reader([&] {
    std::uint64_t last = 0;
    while (writing.load()) {
      const std::uint64_t now = total_events(p);
      EXPECT_GE(now, last);  // counters only grow
      last = now;
    }
  });
  std::vector<std::thread> writers;
  for (int i = 0; i < threads; ++i) {
    writers.emplace_back([&] {
      for (std::uint64_t k = 0; k < each; ++k) {
        block& b = p.local();
        b.events.add();
        b.latency.observe(k);
      }
    });
  }
  for (auto& w : writers) w.join();
  writing.store(false);
  reader.join();
  EXPECT_EQ(total_events(p), threads * each);
  histogram_snapshot h;
  p.for_each([&](const block& b) { b.latency.fold_into(h); });
  EXPECT_EQ(h.count(), threads * each);
}

// A pool resized over and over starts new threads; their blocks must be reused, and the counts
// of the threads that left must stay in the total.
TEST(PerThread, BlocksOfExitedThreadsAreReusedAndKeepTheirCounts) {
  per_thread<block> p;
  for (int round = 0; round < 20; ++round) {
    std::vector<std::thread> pool;
    for (int i = 0; i < 3; ++i) pool.emplace_back([&] { p.local().events.add(5); });
    for (auto& t : pool) t.join();
  }
  EXPECT_LE(p.blocks(), 3u);
  EXPECT_EQ(total_events(p), 20u * 3u * 5u);
}

TEST(PerThread, ANewInstanceNeverSeesAnOldInstancesBlock) {
  // Same thread, instances created and destroyed in turn (possibly at the same address).
  for (int i = 0; i < 50; ++i) {
    auto p = std::make_unique<per_thread<block>>();
    EXPECT_EQ(p->local().events.get(), 0u) << "instance " << i;
    p->local().events.add(7);
    EXPECT_EQ(total_events(*p), 7u);
  }
}

TEST(PerThread, ManyInstancesOnOneThreadEachKeepTheirOwnBlock) {
  // More instances than the thread-local cache has ways: evicted entries are found again.
  std::vector<std::unique_ptr<per_thread<block>>> ps;
  for (int i = 0; i < 20; ++i) ps.push_back(std::make_unique<per_thread<block>>());
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 20; ++i) ps[i]->local().events.add(static_cast<std::uint64_t>(i));
  }
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(total_events(*ps[i]), 3u * static_cast<std::uint64_t>(i));
    EXPECT_EQ(ps[i]->blocks(), 1u);
  }
}

}  // namespace
}  // namespace weir::runtime
