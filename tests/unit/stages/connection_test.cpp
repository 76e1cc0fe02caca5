// The ownership protocol of connection slots: generation, state and readiness in one word, so an
// event, a park and a timeout scan each decide and act in one compare-exchange.

#include "stages/connection.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

namespace weir {
namespace {

bool parks(connection& c, std::int64_t deadline = 0) {
  return !c.park(conn_state::parked_read, wakes_reader, deadline);
}

TEST(connection_table, acquire_gives_an_active_slot_without_readiness) {
  connection_table table(4);
  connection* c = table.acquire();
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->state(), conn_state::active);
  EXPECT_EQ(c->ready(), 0);
  EXPECT_EQ(table.in_use(), 1u);
}

TEST(connection_table, a_freed_slot_is_reused_with_a_new_generation) {
  connection_table table(4);
  connection* c = table.acquire();
  const std::uint64_t old_handle = connection_table::handle(*c);
  table.release(*c);
  connection* again = table.acquire();
  ASSERT_EQ(again, c);  // LIFO: the slot an event may still name
  EXPECT_NE(connection_table::handle(*again), old_handle);
  EXPECT_EQ(static_cast<std::uint32_t>(old_handle), again->slot);
}

TEST(connection_table, an_event_for_a_closed_connection_never_marks_the_next_one) {
  connection_table table(4);
  connection* c = table.acquire();
  const std::uint64_t old_handle = connection_table::handle(*c);
  table.release(*c);
  connection* next = table.acquire();
  EXPECT_EQ(table.deliver(old_handle, ready_read | ready_peer_eof | ready_hangup).owned, nullptr);
  EXPECT_EQ(next->ready(), 0) << "a stale event's bits landed on the slot's next connection";
  ASSERT_TRUE(parks(*next));
  EXPECT_EQ(table.deliver(old_handle, ready_hangup).owned, nullptr) << "a stale event took it";
  EXPECT_EQ(next->state(), conn_state::parked_read);
}

TEST(connection_table, readiness_before_parking_keeps_the_owner) {
  connection_table table(4);
  connection* c = table.acquire();
  const std::uint64_t h = connection_table::handle(*c);
  EXPECT_EQ(table.deliver(h, ready_read).owned, nullptr);  // active: recorded for the owner
  EXPECT_EQ(c->ready(), ready_read);
  EXPECT_FALSE(parks(*c)) << "parking lost readiness that had arrived";
  EXPECT_EQ(c->state(), conn_state::active);
  c->use_ready(ready_read);
  EXPECT_EQ(c->ready(), 0);
  EXPECT_TRUE(parks(*c));
}

TEST(connection_table, an_event_hands_a_parked_connection_over_once) {
  connection_table table(4);
  connection* c = table.acquire();
  const std::uint64_t h = connection_table::handle(*c);
  ASSERT_TRUE(parks(*c));
  EXPECT_EQ(table.deliver(h, ready_write).owned, nullptr) << "a reader was woken for writability";
  EXPECT_EQ(c->state(), conn_state::parked_read);
  const event_outcome first = table.deliver(h, ready_read);
  EXPECT_EQ(first.owned, c);
  EXPECT_EQ(first.was, conn_state::parked_read);
  EXPECT_EQ(c->state(), conn_state::active);
  EXPECT_EQ(table.deliver(h, ready_read).owned, nullptr) << "handed to two owners";
  EXPECT_EQ(c->ready(), ready_read | ready_write);
}

TEST(connection_table, a_writer_is_woken_by_writability_or_a_hangup) {
  connection_table table(4);
  connection* c = table.acquire();
  const std::uint64_t h = connection_table::handle(*c);
  ASSERT_FALSE(c->park(conn_state::parked_write, wakes_writer, 0));
  EXPECT_EQ(table.deliver(h, ready_read | ready_peer_eof).owned, nullptr);
  const event_outcome e = table.deliver(h, ready_hangup);
  EXPECT_EQ(e.owned, c);
  EXPECT_EQ(e.was, conn_state::parked_write);
}

TEST(connection_table, the_scan_takes_only_what_it_saw_parked) {
  connection_table table(4);
  connection* c = table.acquire();
  const std::uint64_t h = connection_table::handle(*c);
  ASSERT_TRUE(parks(*c, 100));
  const conn_word seen = c->load_word();
  // Woken and parked again (same state, same readiness) between the scan's look and its take.
  ASSERT_EQ(table.deliver(h, ready_read).owned, c);
  c->use_ready(ready_read);
  ASSERT_TRUE(parks(*c, 200));
  EXPECT_EQ(table.take_parked(*c, [&](conn_word w) { return w == seen; }), conn_state::free)
      << "took a connection parked again since it looked (ABA)";
  EXPECT_EQ(c->state(), conn_state::parked_read);
  // Taken by the scan, it is no longer anyone else's.
  EXPECT_EQ(table.take_parked(*c, [](conn_word) { return true; }), conn_state::parked_read);
  EXPECT_EQ(table.deliver(h, ready_read).owned, nullptr);
  EXPECT_EQ(table.take_parked(*c, [](conn_word) { return true; }), conn_state::free);
  // Closed and reused: a scan that looked at the old connection leaves the new one alone.
  const conn_word old = c->load_word();
  table.release(*c);
  connection* next = table.acquire();
  ASSERT_TRUE(parks(*next));
  EXPECT_EQ(table.take_parked(*next, [&](conn_word w) { return w == old; }), conn_state::free);
}

// Churn: one thread plays the owners (acquire, park, take back, close, reuse the slot at once);
// another plays the event loop, delivering events for the live connection as fast as it can, so
// many arrive just as it is closed and its slot reused. Events for even generations carry
// ready_peer_eof and odd ones ready_hangup: a connection that ever sees the other parity's bit
// got an event meant for its slot's previous connection. Every hand-off is checked for a single
// owner.
TEST(connection_table, stress_events_in_flight_while_slots_are_reused) {
  constexpr int rounds = 200000;
  constexpr std::uint64_t none = ~std::uint64_t{0};
  connection_table table(1);
  std::atomic<std::uint64_t> live{none};
  std::atomic<int> owners{0};
  std::atomic<bool> done{false};
  std::atomic<int> landed{0}, double_owner{0}, loop_took{0};
  const auto own_bit = [](std::uint32_t generation) {
    return generation % 2 == 0 ? ready_peer_eof : ready_hangup;
  };
  const auto foreign = [&](const connection& c) {
    const std::uint32_t g = c.load_word().generation();
    return (c.ready() & own_bit(g + 1)) != 0;
  };

  std::thread loop([&] {
    std::uint64_t turns = 0;
    while (!done.load(std::memory_order_relaxed)) {
      // Yields now and then: with fewer cores than spinning threads (a loaded machine) a loop
      // that never does would hold its core for a whole time slice at every hand-off. Not every
      // turn, so events still arrive back to back while a connection closes.
      if ((++turns & 63) == 0) std::this_thread::yield();
      const std::uint64_t h = live.load(std::memory_order_acquire);
      if (h == none) continue;
      const auto bits = static_cast<std::uint8_t>(ready_read | own_bit(h >> 32));
      if (event_outcome e = table.deliver(h, bits); e.owned != nullptr) {
        if (owners.fetch_add(1) != 0) double_owner.fetch_add(1);
        if (foreign(*e.owned)) landed.fetch_add(1);
        loop_took.fetch_add(1);
        owners.fetch_sub(1);
        // Hands it back parked, as a stage would after using the readiness up.
        do {
          e.owned->use_ready(ready_read | ready_peer_eof | ready_hangup);
        } while (e.owned->park(conn_state::parked_read, wakes_reader, 0));
      }
    }
  });

  struct stop_loop {
    std::atomic<bool>& done;
    std::thread& loop;
    ~stop_loop() {
      done = true;
      loop.join();
    }
  } stopper{done, loop};  // also when an assertion returns early

  for (int i = 0; i < rounds && landed.load() == 0; ++i) {
    connection* c = table.acquire();
    ASSERT_NE(c, nullptr);
    if (c->ready() != 0) landed.fetch_add(1);  // a new connection starts with no readiness
    live.store(connection_table::handle(*c), std::memory_order_release);
    for (int parks = 0; parks < 2; ++parks) {
      if (!c->park(conn_state::parked_read, wakes_reader, 0)) {
        if (i % 256 == 0) {
          // Now and then the event loop takes it first (it always delivers to the live
          // connection, so this is a wait for a condition that comes).
          const int before = loop_took.load();
          const auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(30);
          while (loop_took.load() == before && std::chrono::steady_clock::now() < limit) {
            std::this_thread::yield();
          }
          ASSERT_NE(loop_took.load(), before) << "the event loop never took a parked connection";
        }
        // Take it back as the timeout scan would (once the loop, if it holds it, parked it).
        while (table.take_parked(*c, [](conn_word) { return true; }) == conn_state::free) {
          std::this_thread::yield();
        }
      }
      if (owners.fetch_add(1) != 0) double_owner.fetch_add(1);
      if (foreign(*c)) landed.fetch_add(1);
      owners.fetch_sub(1);
      c->use_ready(ready_read | ready_peer_eof | ready_hangup);
    }
    table.release(*c);  // `live` still names it: events for it keep coming
  }
  EXPECT_EQ(landed.load(), 0) << "an event for a closed connection marked the slot's next one";
  EXPECT_EQ(double_owner.load(), 0);
}

}  // namespace
}  // namespace weir
