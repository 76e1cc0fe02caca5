#include "runtime/bounded_queue.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace weir::runtime {
namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr std::size_t stress_items = 20'000;
#else
constexpr std::size_t stress_items = 200'000;
#endif
constexpr std::size_t producers = 4;
constexpr std::size_t consumers = 4;

// Items are addresses into one array, so an item's index names it without any payload.
struct item {
  std::size_t producer = 0;
  std::size_t seq = 0;
};

TEST(BoundedQueue, PopOnEmptyReturnsNull) {
  bounded_queue<int> q(4);
  EXPECT_EQ(q.try_pop(), nullptr);

  int x = 1;
  ASSERT_TRUE(q.try_push(&x));
  EXPECT_EQ(q.try_pop(), &x);
  EXPECT_EQ(q.try_pop(), nullptr);
  EXPECT_EQ(q.depth(), 0u);
}

TEST(BoundedQueue, AcceptsExactlyCapacityThenRefusesWithoutChange) {
  constexpr std::size_t capacity = 8;
  bounded_queue<int> q(capacity);
  std::vector<int> values(capacity + 1);
  for (std::size_t i = 0; i < capacity; ++i) ASSERT_TRUE(q.try_push(&values[i])) << i;
  EXPECT_FALSE(q.try_push(&values[capacity]));
  EXPECT_FALSE(q.try_push(&values[capacity]));
  EXPECT_EQ(q.depth(), capacity);

  // The refused pushes left the contents alone: the same items come out, in order.
  for (std::size_t i = 0; i < capacity; ++i) EXPECT_EQ(q.try_pop(), &values[i]) << i;
  EXPECT_EQ(q.try_pop(), nullptr);
}

TEST(BoundedQueue, CapacityIsReusedAfterPops) {
  // Fill and drain many times: bounded_push must always find a recycled node.
  constexpr std::size_t capacity = 16;
  bounded_queue<int> q(capacity);
  std::vector<int> values(capacity + 1);
  for (int round = 0; round < 1000; ++round) {
    for (std::size_t i = 0; i < capacity; ++i) ASSERT_TRUE(q.try_push(&values[i]));
    ASSERT_FALSE(q.try_push(&values[capacity])) << "round " << round;
    for (std::size_t i = 0; i < capacity; ++i) ASSERT_EQ(q.try_pop(), &values[i]);
    ASSERT_EQ(q.try_pop(), nullptr);
  }
}

TEST(BoundedQueue, SingleThreadIsFifo) {
  constexpr std::size_t capacity = 32;
  bounded_queue<int> q(capacity);
  std::vector<int> values(1000);
  std::size_t next_in = 0;
  std::size_t next_out = 0;
  // Uneven bursts of pushes and pops, so the queue fills, drains and wraps over its nodes.
  for (std::size_t round = 0; next_out < values.size(); ++round) {
    const std::size_t pushes = round % 7;
    const std::size_t pops = round % 5;
    for (std::size_t k = 0; k < pushes && next_in < values.size(); ++k) {
      if (next_in - next_out == capacity) break;
      ASSERT_TRUE(q.try_push(&values[next_in++]));
    }
    for (std::size_t k = 0; k < pops && next_out < next_in; ++k) {
      ASSERT_EQ(q.try_pop(), &values[next_out++]);
    }
    if (next_in == values.size()) {
      while (next_out < next_in) ASSERT_EQ(q.try_pop(), &values[next_out++]);
    }
  }
  EXPECT_EQ(q.try_pop(), nullptr);
}

TEST(BoundedQueue, DepthCountsPushedNotPopped) {
  bounded_queue<int> q(3);
  EXPECT_EQ(q.capacity(), 3u);
  EXPECT_EQ(q.depth(), 0u);
  int a = 0, b = 0, c = 0, d = 0;
  ASSERT_TRUE(q.try_push(&a));
  EXPECT_EQ(q.depth(), 1u);
  ASSERT_TRUE(q.try_push(&b));
  ASSERT_TRUE(q.try_push(&c));
  EXPECT_EQ(q.depth(), 3u);
  EXPECT_FALSE(q.try_push(&d));
  EXPECT_EQ(q.depth(), 3u);  // a refused push gives its reservation back
  ASSERT_NE(q.try_pop(), nullptr);
  EXPECT_EQ(q.depth(), 2u);
  ASSERT_TRUE(q.try_push(&d));
  EXPECT_EQ(q.depth(), 3u);
  while (q.try_pop() != nullptr) {
  }
  EXPECT_EQ(q.depth(), 0u);
  EXPECT_EQ(q.try_pop(), nullptr);
  EXPECT_EQ(q.depth(), 0u);  // popping an empty queue does not drive depth negative
}

// A full queue of capacity 1 with one thread (the refuser) hammering try_push, while the main
// thread takes the item out and at once puts one back, and reads depth() in between. A refusal
// of that put is honest only if the refuser got the slot first. These are the moments a push
// that raises the depth counter before checking it gets wrong: a refused push still counts for a
// while, so depth() reads 2, and a put right after a pop from a full queue is refused with the
// slot free.
struct full_queue_race {
  std::size_t puts = 0;
  std::size_t refused_puts = 0;  // honest or not
  std::size_t spurious = 0;      // refused although nobody else had the slot
  std::size_t depth_over = 0;    // depth() readings above capacity
  std::size_t max_depth = 0;
};

// Runs until `min_refusals` puts were refused (each a moment the two threads really overlapped)
// or `limit` passes, whichever is first.
full_queue_race race_on_full_queue(std::size_t min_refusals, std::chrono::seconds limit) {
  bounded_queue<int> q(1);
  int mine = 0;
  int theirs = 0;
  full_queue_race r;
  std::atomic<bool> done{false};
  // The main thread parks the refuser (request) and waits until it is outside try_push (parked).
  std::atomic<bool> park_request{false};
  std::atomic<bool> parked{false};
  EXPECT_TRUE(q.try_push(&mine));  // full before the refuser starts

  std::thread refuser([&] {
    while (!done.load(std::memory_order_relaxed)) {
      if (park_request.load()) {
        parked.store(true);
        while (park_request.load()) std::this_thread::yield();
        parked.store(false);
        continue;
      }
      q.try_push(&theirs);  // refused while the queue is full; fills it when it is not
    }
  });

  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (r.refused_puts < min_refusals &&
         (r.puts % 1024 != 0 || std::chrono::steady_clock::now() < deadline)) {
    const std::size_t d = q.depth();  // full, and the refuser is pushing
    r.depth_over += d > q.capacity();
    r.max_depth = std::max(r.max_depth, d);
    // The queue holds one item (ours or theirs, perhaps still being pushed): take it out.
    while (q.try_pop() == nullptr) std::this_thread::yield();
    ++r.puts;
    if (q.try_push(&mine)) continue;
    ++r.refused_puts;
    // Honest only if the refuser reserved the slot: then, once it is outside try_push, its item is
    // in the queue (only this thread pops). An empty queue means nobody ever had the slot.
    park_request.store(true);
    while (!parked.load()) std::this_thread::yield();
    if (q.try_pop() == nullptr) ++r.spurious;
    EXPECT_TRUE(q.try_push(&mine));  // nobody else pushes now: the slot is free
    park_request.store(false);
    while (parked.load()) std::this_thread::yield();
  }
  done.store(true);
  refuser.join();
  return r;
}

TEST(BoundedQueue, RefusesOnlyWhenReallyFull) {
  const full_queue_race r = race_on_full_queue(/*min_refusals=*/200, std::chrono::seconds(2));
  EXPECT_EQ(r.spurious, 0u) << "of " << r.refused_puts << " refused puts in " << r.puts;
  EXPECT_EQ(r.depth_over, 0u) << "of " << r.puts << " readings; highest " << r.max_depth;
  EXPECT_LE(r.max_depth, 1u);
}

struct mpmc_result {
  std::vector<int> seen;  // how often each item was popped
  std::size_t full_signals = 0;
  bool per_producer_order_kept = true;
  bool gave_up = false;  // an item never arrived (or the queue stayed full) before the deadline
};

// Producers push disjoint slices of `items` (retrying while full), consumers pop until every item
// came out. With `fill_first`, consumers start only after a producer saw the queue full, so the
// full signal is certain to be exercised.
mpmc_result run_mpmc(std::size_t capacity, bool fill_first) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  std::atomic<bool> gave_up{false};
  auto past_deadline = [&] {
    if (!gave_up.load() && std::chrono::steady_clock::now() < deadline) return false;
    gave_up.store(true);
    return true;
  };

  std::vector<item> items(stress_items);
  const std::size_t per_producer = stress_items / producers;
  for (std::size_t i = 0; i < items.size(); ++i) items[i] = {i / per_producer, i % per_producer};

  bounded_queue<item> q(capacity);
  std::vector<std::atomic<int>> seen(items.size());
  std::atomic<std::size_t> popped{0};
  std::atomic<std::size_t> full_signals{0};
  std::atomic<bool> order_kept{true};
  std::atomic<bool> consumers_go{!fill_first};

  std::vector<std::thread> threads;
  for (std::size_t p = 0; p < producers; ++p) {
    threads.emplace_back([&, p] {
      std::size_t refused = 0;
      for (std::size_t i = p * per_producer; i < (p + 1) * per_producer; ++i) {
        while (!q.try_push(&items[i])) {
          ++refused;
          consumers_go.store(true, std::memory_order_relaxed);
          if (past_deadline()) break;
          std::this_thread::yield();
        }
      }
      consumers_go.store(true, std::memory_order_relaxed);
      full_signals.fetch_add(refused);
    });
  }
  for (std::size_t c = 0; c < consumers; ++c) {
    threads.emplace_back([&] {
      while (!consumers_go.load(std::memory_order_relaxed)) std::this_thread::yield();
      // A linearizable FIFO hands one consumer each producer's items in push order.
      std::vector<std::size_t> next_seq(producers, 0);
      while (popped.load() < items.size()) {
        item* it = q.try_pop();
        if (it == nullptr) {
          if (past_deadline()) break;
          std::this_thread::yield();
          continue;
        }
        seen[static_cast<std::size_t>(it - items.data())].fetch_add(1);
        if (it->seq < next_seq[it->producer]) order_kept.store(false);
        next_seq[it->producer] = it->seq + 1;
        popped.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();

  mpmc_result r;
  for (auto& s : seen) r.seen.push_back(s.load());
  r.full_signals = full_signals.load();
  r.per_producer_order_kept = order_kept.load();
  r.gave_up = gave_up.load();
  EXPECT_EQ(q.try_pop(), nullptr);
  EXPECT_EQ(q.depth(), 0u);
  return r;
}

void expect_each_once(const std::vector<int>& seen) {
  std::size_t lost = 0, duplicated = 0;
  for (int n : seen) {
    if (n == 0) ++lost;
    if (n > 1) ++duplicated;
  }
  EXPECT_EQ(lost, 0u);
  EXPECT_EQ(duplicated, 0u);
}

TEST(BoundedQueue, ConcurrentProducersAndConsumersPopEveryItemOnce) {
  const mpmc_result r = run_mpmc(/*capacity=*/1024, /*fill_first=*/false);
  EXPECT_FALSE(r.gave_up);
  expect_each_once(r.seen);
  EXPECT_TRUE(r.per_producer_order_kept);
}

TEST(BoundedQueue, FullSignalUnderConcurrencyLosesNothing) {
  const mpmc_result r = run_mpmc(/*capacity=*/4, /*fill_first=*/true);
  EXPECT_FALSE(r.gave_up);
  EXPECT_GT(r.full_signals, 0u);
  expect_each_once(r.seen);
  EXPECT_TRUE(r.per_producer_order_kept);
}

}  // namespace
}  // namespace weir::runtime
