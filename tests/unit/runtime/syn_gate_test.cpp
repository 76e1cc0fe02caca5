#include "runtime/syn_gate.hpp"

#include <cstdint>

#include <gtest/gtest.h>

namespace weir::runtime {
namespace {

constexpr double wanted = 50;  // the listen queue wanted at a pause

TEST(SynGate, AClosedGateWithNothingThroughItKeepsItsShare) {
  const syn_gate_settings s;
  syn_gate_state st;
  EXPECT_DOUBLE_EQ(syn_gate_closing(s, st, 0, 900, wanted, 0), 1.0);  // never opened
  EXPECT_EQ(st.cuts, 0u);
}

TEST(SynGate, ACycleThatLeftALongQueueLowersTheShare) {
  const syn_gate_settings s;
  syn_gate_state st;
  syn_gate_opened(st);
  // 150 taken and 250 waiting: 400 passed where 200 were wanted.
  EXPECT_DOUBLE_EQ(syn_gate_closing(s, st, 150, 250, wanted, 0), 0.5);
  EXPECT_EQ(st.cuts, 1u);
  syn_gate_opened(st);
  // 100 taken and 50 waiting: what was wanted, held.
  EXPECT_DOUBLE_EQ(syn_gate_closing(s, st, 100, 50, wanted, 10), 0.5);
}

TEST(SynGate, OneCycleCutsByHalfAtMost) {
  const syn_gate_settings s;
  syn_gate_state st;
  syn_gate_opened(st);
  EXPECT_DOUBLE_EQ(syn_gate_closing(s, st, 10, 5000, wanted, 0), 0.5);
}

TEST(SynGate, ACycleThatLeftNothingQueuedRaisesTheShareUpToAll) {
  const syn_gate_settings s;
  syn_gate_state st;
  st.share = 0.25;
  syn_gate_opened(st);
  // 100 taken, none left: (100 + 50) / 100.
  EXPECT_DOUBLE_EQ(syn_gate_closing(s, st, 100, 0, wanted, 0), 0.375);
  syn_gate_opened(st);
  EXPECT_DOUBLE_EQ(syn_gate_closing(s, st, 0, 0, wanted, 1), 0.75);  // nothing at all: doubles
  syn_gate_opened(st);
  EXPECT_DOUBLE_EQ(syn_gate_closing(s, st, 0, 0, wanted, 2), 1.0);  // never above all
}

TEST(SynGate, TheShareNeverFallsUnderItsFloor) {
  const syn_gate_settings s;
  syn_gate_state st;
  for (int i = 0; i < 20; ++i) {
    syn_gate_opened(st);
    syn_gate_closing(s, st, 10, 1000, wanted, i);
  }
  EXPECT_DOUBLE_EQ(st.share, s.min_share);
  EXPECT_EQ(st.cuts, 6u);  // 1 -> 1/64 in six halvings; then nothing left to cut
}

// At a share x the cycle lets through 800 x connections of which weir takes 100: the share
// settles where 150 pass (100 taken, the wanted 50 queued), at 3/16, and stays there.
TEST(SynGate, ASteadyOverloadSettlesWhereTheWantedQueueIsLeft) {
  const syn_gate_settings s;
  syn_gate_state st;
  for (int i = 0; i < 50; ++i) {
    syn_gate_opened(st);
    const auto passed = static_cast<std::size_t>(800 * st.share);
    const std::size_t taken = std::min<std::size_t>(passed, 100);
    syn_gate_closing(s, st, taken, passed - taken, wanted, i);
  }
  EXPECT_NEAR(st.share, 150.0 / 800, 0.01);
}

TEST(SynGate, AQueueIsTooLongPastTheWantedOneAndShortAtHalfOfIt) {
  EXPECT_FALSE(syn_gate_queue_too_long(50, wanted));
  EXPECT_TRUE(syn_gate_queue_too_long(51, wanted));
  EXPECT_TRUE(syn_gate_queue_short(25, wanted));
  EXPECT_FALSE(syn_gate_queue_short(26, wanted));
}

TEST(SynGate, TheQueueWantedIsAQuarterOfTheLimitWhenTheWaitIsNotKnown) {
  const syn_gate_settings s;
  EXPECT_DOUBLE_EQ(syn_gate_wanted_queue(s, 900, -1, 200, 100), 50);
  EXPECT_DOUBLE_EQ(syn_gate_wanted_queue(s, 900, -1, 2, 100), 1);  // never under one connection
  EXPECT_FALSE(syn_gate_queue_too_long(1, syn_gate_wanted_queue(s, 1, -1, 2, 100)));
}

// The limit starts at 10,000 (a queue of 2,500 wanted): only the wait tells a queue that has
// stood past a quarter of the target.
TEST(SynGate, AWaitPastAQuarterOfTheTargetMakesAQueueTooLongUnderAHighLimit) {
  const syn_gate_settings s;
  const double at_40ms = syn_gate_wanted_queue(s, 300, 40, 10'000, 100);
  EXPECT_DOUBLE_EQ(at_40ms, 300 * 25.0 / 40);
  EXPECT_TRUE(syn_gate_queue_too_long(300, at_40ms));
  const double at_20ms = syn_gate_wanted_queue(s, 300, 20, 10'000, 100);
  EXPECT_FALSE(syn_gate_queue_too_long(300, at_20ms));
  EXPECT_FALSE(syn_gate_queue_short(300, at_20ms));  // 12.5 ms or less is short
  EXPECT_TRUE(syn_gate_queue_short(300, syn_gate_wanted_queue(s, 300, 12, 10'000, 100)));
  // A wait read as 0 (under the kernel's tick) counts as 1 ms: no division by zero.
  EXPECT_DOUBLE_EQ(syn_gate_wanted_queue(s, 30, 0, 10'000, 100), 30 * 25.0);
  // Whichever wants the shorter queue decides: a low limit with a short wait.
  EXPECT_DOUBLE_EQ(syn_gate_wanted_queue(s, 300, 5, 200, 100), 50);
}

TEST(SynGate, WithoutPausesAtTheLimitTheShareDoublesOncePerIdleInterval) {
  const syn_gate_settings s;
  syn_gate_state st;
  st.share = 1.0 / 8;
  syn_gate_opened(st);
  syn_gate_closing(s, st, 100, 50, wanted, 1000);       // held at 1/8; the last pause at 1000 ms
  EXPECT_DOUBLE_EQ(syn_gate_tick(s, st, 1050), 0.125);  // too soon after the pause
  EXPECT_DOUBLE_EQ(syn_gate_tick(s, st, 1100), 0.25);
  EXPECT_DOUBLE_EQ(syn_gate_tick(s, st, 1150), 0.25);  // too soon after the raise
  EXPECT_DOUBLE_EQ(syn_gate_tick(s, st, 1200), 0.5);
  EXPECT_DOUBLE_EQ(syn_gate_tick(s, st, 1300), 1.0);
  EXPECT_DOUBLE_EQ(syn_gate_tick(s, st, 1400), 1.0);
  EXPECT_EQ(st.raises, 3u);
}

TEST(SynGate, APauseAtTheLimitHoldsTheIdleRaise) {
  const syn_gate_settings s;
  syn_gate_state st;
  st.share = 0.25;
  for (std::int64_t now = 0; now < 2000; now += 50) {
    syn_gate_closing(s, st, 0, 0, wanted, now);  // closed already: no cycle, but a pause
    syn_gate_tick(s, st, now + 10);
  }
  EXPECT_DOUBLE_EQ(st.share, 0.25);
}

}  // namespace
}  // namespace weir::runtime
