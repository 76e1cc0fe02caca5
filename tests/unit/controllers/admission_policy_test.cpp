// The admission policy driven by synthetic windows and a fake clock: no threads, no sleeps.

#include "controllers/admission_policy.hpp"

#include <gtest/gtest.h>

#include <random>

namespace weir::controllers {
namespace {

using namespace std::chrono_literals;
using runtime::admission_class;

constexpr std::int64_t period_ms = 100;
constexpr std::size_t unlimited = runtime::admission_gate::unlimited;
constexpr auto req = static_cast<std::size_t>(admission_class::request);
constexpr auto miss = static_cast<std::size_t>(admission_class::miss);

/// One class over a window: `completed` answered, `over` of them past the target, the
/// percentile at `p_ms`, `refused` turned away, at most `peak` in flight under `limit`.
admission_class_sample window(std::size_t limit, std::uint64_t completed, std::uint64_t over,
                              double p_ms, std::uint64_t refused, std::size_t peak) {
  admission_class_sample c;
  c.limit = limit;
  c.completed = completed;
  c.answered = completed;
  c.over_target = over;
  c.percentile_ns = static_cast<std::uint64_t>(p_ms * 1e6);
  c.refused = refused;
  c.peak_in_flight = peak;
  c.in_flight = peak;
  return c;
}

/// Runs the policy window after window, applying each decision to the limits of the next (as
/// the actuator would).
class admission_run {
 public:
  explicit admission_run(admission_settings settings = {}) : settings_(settings) {
    limits_.fill(settings.max_limit);
  }

  /// One window: `make(limit)` gives the class's sample for the limit in force.
  template <class Request, class Miss>
  std::vector<admission_decision> step(Request request, Miss miss_of) {
    admission_sample s;
    now_ms_ += period_ms;
    s.now_ms = now_ms_;
    s.window_ms = period_ms;
    s.classes[req] = request(limits_[req]);
    s.classes[miss] = miss_of(limits_[miss]);
    auto out = decide_admission(s, state_, settings_);
    for (const auto& d : out) limits_[static_cast<std::size_t>(d.cls)] = d.to;
    return out;
  }
  template <class Request>
  std::vector<admission_decision> step(Request request) {
    return step(request, [](std::size_t limit) { return window(limit, 0, 0, 0, 0, 0); });
  }

  std::size_t limit(std::size_t cls) const { return limits_[cls]; }
  void set_limit(std::size_t cls, std::size_t l) { limits_[cls] = l; }
  std::int64_t now() const { return now_ms_; }

 private:
  admission_settings settings_;
  admission_state state_;
  std::array<std::size_t, runtime::admission_classes> limits_{};
  std::int64_t now_ms_ = 0;
};

TEST(AdmissionPolicy, OverTargetCutsToWhatTheAnsweredRateAllowsByLittlesLaw) {
  admission_run run;
  // 400 in flight, 400 answered in 100 ms (4000/s), over the 100 ms target: 4000/s x 100 ms x
  // 0.75 = 300 in flight meets it. The percentile (200 ms) does not size the cut.
  auto d = run.step([](std::size_t l) { return window(l, 400, 50, 200, 0, 400); });
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].cls, admission_class::request);
  EXPECT_EQ(d[0].from, 10000u);
  EXPECT_EQ(d[0].to, 300u);
  EXPECT_NE(d[0].why.find("over the 100 ms target"), std::string::npos) << d[0].why;
  EXPECT_NE(d[0].why.find("4000 answered/s x 100 ms x 0.75 allows 300"), std::string::npos)
      << d[0].why;
  // A class's own window counts: the same answers over 200 ms are half the rate.
  admission_run slow;
  d = slow.step([](std::size_t l) {
    admission_class_sample c = window(l, 400, 50, 200, 0, 400);
    c.window_ms = 200;
    return c;
  });
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].to, 200u);  // 2000/s x 100 ms x 0.75 = 150, within the clamp: 400 x 0.5
}

TEST(AdmissionPolicy, TheCutIsClamped) {
  admission_run run;
  // Slightly over (105 ms; 1300 answered/s allow 97): at most 0.9 of what was in flight, never
  // nearly all of it.
  auto d = run.step([](std::size_t l) { return window(l, 130, 20, 105, 0, 100); });
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].to, 90u);
  // A tail far over (5 of 50; 500 answered/s allow 37): at most halved in one window.
  admission_run far;
  d = far.step([](std::size_t l) { return window(l, 50, 5, 5000, 0, 100); });
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].to, 50u);
  // Most of the window over the target is a standing queue, no outlier: Little's law alone.
  admission_run most;
  d = most.step([](std::size_t l) { return window(l, 20, 11, 5000, 0, 100); });
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].to, 15u);
}

TEST(AdmissionPolicy, OverTargetWithNoMoreInFlightThanLittlesLawAllowsHolds) {
  // New connections' first requests count their wait in the listen queue: 143 answered in
  // 100 ms (1430/s allow 107 in flight) with at most 1 in flight, 19 over the target. The time
  // over it was not spent under the limit; a cut (to what was in flight) would only lower the
  // throughput, and with it the next window's allowance.
  admission_run run;
  run.set_limit(req, 62);
  EXPECT_TRUE(run.step([](std::size_t l) { return window(l, 143, 19, 240, 0, 1); }).empty());
  EXPECT_EQ(run.limit(req), 62u);
  // Just over the allowance (108 in flight under a limit of 200) it cuts, within the clamp:
  // at most 0.9 of what was in flight.
  run.set_limit(req, 200);
  auto d = run.step([](std::size_t l) { return window(l, 143, 19, 240, 0, 108); });
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].to, 97u);
}

TEST(AdmissionPolicy, NoSecondCutUntilTheRequestsAdmittedBeforeTheFirstHaveFinished) {
  admission_run run;
  auto over = [](std::size_t l) { return window(l, 200, 50, 200, 0, l); };  // allows 150
  run.set_limit(req, 400);
  ASSERT_EQ(run.step(over).size(), 1u);  // t=100: 400 -> 200, settles until t=200
  EXPECT_EQ(run.limit(req), 200u);
  admission_settings slow;
  slow.target = 250ms;  // settles for a whole 250 ms
  admission_run longer(slow);
  longer.set_limit(req, 400);
  // 100 answered a window (1000/s) x 250 ms x 0.75 allows 187
  auto over_250 = [](std::size_t l) { return window(l, 100, 50, 500, 0, l); };
  ASSERT_EQ(longer.step(over_250).size(), 1u);  // t=100: cut, settles until t=350
  EXPECT_TRUE(longer.step(over_250).empty());   // t=200
  EXPECT_TRUE(longer.step(over_250).empty());   // t=300
  EXPECT_EQ(longer.step(over_250).size(), 1u);  // t=400: over still, cut again
  EXPECT_EQ(longer.limit(req), 180u);           // 200 x 0.9: the clamp
}

TEST(AdmissionPolicy, RecoversMultiplicativelyWhileTheLimitHoldsTheLoadBack) {
  admission_run run;
  run.set_limit(req, 100);
  // Under target, refusing: x1.5 per window, to the bound (answering 100,000/s, so that even
  // 10,000 in flight are no queue).
  auto refusing = [](std::size_t l) { return window(l, 10000, 0, 20, 300, l); };
  run.step(refusing);
  EXPECT_EQ(run.limit(req), 150u);
  run.step(refusing);
  EXPECT_EQ(run.limit(req), 225u);
  for (int i = 0; i < 20; ++i) run.step(refusing);
  EXPECT_EQ(run.limit(req), 10000u);  // max_limit
  EXPECT_TRUE(run.step(refusing).empty());
}

TEST(AdmissionPolicy, ALimitThatBindsNothingNeverCreepsUp) {
  admission_run run;
  run.set_limit(req, 100);
  for (int i = 0; i < 50; ++i) {
    // Under target, nothing refused, at most 60 of 100 in flight.
    EXPECT_TRUE(run.step([](std::size_t l) { return window(l, 1000, 0, 20, 0, 60); }).empty());
  }
  EXPECT_EQ(run.limit(req), 100u);
  // In flight near the limit (90 %) counts as held back.
  run.step([](std::size_t l) { return window(l, 1000, 0, 20, 0, 90); });
  EXPECT_EQ(run.limit(req), 150u);
}

TEST(AdmissionPolicy, HoldsOnNoiseUnderTheTarget) {
  // Latency that wanders under the target, with at most the allowed share over it (p99: 1 %),
  // never cuts; nor does a lone slow request or a window with too few samples.
  admission_run run;
  run.set_limit(req, 500);
  std::mt19937 rng(7);
  std::uniform_int_distribution<std::uint64_t> over(0, 10);  // of 1000: at most 1 %
  std::uniform_real_distribution<double> p99(40, 99);
  for (int i = 0; i < 200; ++i) {
    const std::uint64_t o = over(rng);
    const double p = p99(rng);
    for (const auto& d : run.step([&](std::size_t l) { return window(l, 1000, o, p, 0, 200); }))
      ADD_FAILURE() << "window " << i << ": " << d.from << " -> " << d.to << ": " << d.why;
  }
  EXPECT_EQ(run.limit(req), 500u);
  // One request over in a small window: not a trend.
  EXPECT_TRUE(run.step([](std::size_t l) { return window(l, 30, 1, 150, 0, 50); }).empty());
  // Too few samples to say anything, even all over the target.
  EXPECT_TRUE(run.step([](std::size_t l) { return window(l, 10, 10, 900, 0, 200); }).empty());
}

TEST(AdmissionPolicy, RefusedRequestsAreNotLatencySamples) {
  // A window where nearly everything was refused and the few admitted were fast is not "fast
  // enough to raise a lot" nor "over": refusals are not in the sample, so only their count
  // (the limit binds) matters, and the few admitted say the target is met.
  admission_run run;
  run.set_limit(req, 10);
  auto d = run.step([](std::size_t l) { return window(l, 5, 0, 3, 5000, l); });
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].to, 15u);  // one step, x1.5: not a jump to what was refused
}

TEST(AdmissionPolicy, RefusalsWithNothingAnsweredNeverRaise) {
  // Everything admitted is stuck (a disk that stopped): refusals alone do not say the target is
  // met, so the limit holds instead of creeping up under timeouts.
  admission_run run;
  run.set_limit(req, 20);
  EXPECT_TRUE(run.step([](std::size_t l) { return window(l, 0, 0, 0, 500, l); }).empty());
  EXPECT_EQ(run.limit(req), 20u);
}

TEST(AdmissionPolicy, APartialWindowDecidesNothing) {
  // The sensor extends a window short of answers: even far over the target it holds, and the
  // complete window then cuts.
  admission_run run;
  run.set_limit(req, 300);
  EXPECT_TRUE(run.step([](std::size_t l) {
                   auto c = window(l, 8, 8, 2000, 0, 300);
                   c.partial = true;
                   return c;
                 })
                  .empty());
  const auto d = run.step([](std::size_t l) { return window(l, 24, 24, 2000, 0, 300); });
  ASSERT_EQ(d.size(), 1u);
  // 24 answers in 100 ms (240/s) x 100 ms x 0.75: all over, so no clamp from below
  EXPECT_EQ(d[0].to, 18u);
}

TEST(AdmissionPolicy, ClassesAreSeparate) {
  // A slow disk: misses over the target, hits fast. Only the miss limit falls.
  admission_run run;
  auto hits = [](std::size_t l) { return window(l, 2000, 0, 5, 0, 30); };
  // 64 in flight answering 50 a window (500/s): 500/s x 100 ms x 0.75 allows 37.
  auto slow_misses = [](std::size_t l) { return window(l, 50, 30, 2000, 0, 64); };
  auto d = run.step(hits, slow_misses);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].cls, admission_class::miss);
  EXPECT_EQ(d[0].to, 37u);
  EXPECT_EQ(run.limit(req), 10000u);
}

TEST(AdmissionPolicy, NeverBelowMinLimit) {
  admission_settings cfg;
  cfg.min_limit = 8;
  cfg.target = 10ms;  // 200 answered/s x 10 ms x 0.75 allow 1.5 in flight
  admission_run run(cfg);
  run.set_limit(req, 10);
  for (int i = 0; i < 10; ++i)
    run.step([](std::size_t l) { return window(l, 20, 18, 5000, 0, l); });
  EXPECT_EQ(run.limit(req), 8u);
}

TEST(AdmissionPolicy, OffLiftsEveryLimitAndOnStartsFromTheBound) {
  admission_settings off;
  off.enabled = false;
  admission_run run(off);
  run.set_limit(req, 50);
  run.set_limit(miss, unlimited);
  auto d = run.step([](std::size_t l) { return window(l, 1000, 900, 5000, 0, l); });
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].to, unlimited);
  EXPECT_NE(d[0].why.find("off"), std::string::npos);
  EXPECT_TRUE(run.step([](std::size_t l) { return window(l, 1000, 900, 5000, 0, l); }).empty());

  // On again with the gate unlimited: the limit comes into its bounds, then the policy works.
  admission_settings on;
  on.max_limit = 2000;
  admission_run again(on);
  again.set_limit(req, unlimited);
  again.set_limit(miss, unlimited);
  d = again.step([](std::size_t l) { return window(l, 1000, 0, 5, 0, 10); });
  ASSERT_EQ(d.size(), 2u);
  for (const auto& x : d) {
    EXPECT_EQ(x.to, 2000u);
    EXPECT_NE(x.why.find("bounds"), std::string::npos) << x.why;
  }
}

TEST(AdmissionPolicy, AStepAndBackCutsThenRecoversWithinAFewWindows) {
  // A synthetic server: capacity 1000 req/s at 10 ms service, so in flight > 10 queues; latency
  // = in flight / throughput. 3x the capacity arrives; the limit must come down to a level
  // that meets the target, and once the load is gone it must recover to the bound fast.
  admission_run run;
  const auto server = [](std::size_t limit, std::size_t offered_in_flight) {
    const std::size_t in_flight = std::min(limit, offered_in_flight);
    const double latency_ms = std::max(10.0, static_cast<double>(in_flight));  // 1 ms per queued
    const std::uint64_t refused = offered_in_flight > limit ? offered_in_flight - limit : 0;
    const std::uint64_t over = latency_ms > 100 ? 100 : 0;
    return window(limit, 100, over, latency_ms, refused, in_flight);
  };
  run.set_limit(req, 3000);
  int windows_to_target = -1;
  for (int i = 0; i < 20; ++i) {
    run.step([&](std::size_t l) { return server(l, 3000); });
    if (run.limit(req) <= 100) {
      windows_to_target = i + 1;
      break;
    }
  }
  ASSERT_GT(windows_to_target, 0) << "never came under target; limit " << run.limit(req);
  EXPECT_LE(windows_to_target, 10);
  EXPECT_GE(run.limit(req), 50u);  // not far below what meets the target
  // The step ends: 50 in flight is offered, the limit binds nothing and stays.
  for (int i = 0; i < 5; ++i) run.step([&](std::size_t l) { return server(l, 50); });
  // Load near the limit again: it climbs by x1.5 a window.
  const std::size_t before = run.limit(req);
  run.step([&](std::size_t l) { return server(l, l); });
  EXPECT_GT(run.limit(req), before);
}

// Few answers can show a tail over the target, never one under it: a p99 needs a hundred.
TEST(AdmissionPolicy, AWindowNeedsAHundredAnswersToSayTheP99IsUnder) {
  admission_settings cfg;  // p99, min_samples 20
  EXPECT_EQ(raise_samples(cfg), 100u);
  EXPECT_FALSE(admission_window_done(window(50, 19, 19, 900, 40, 50), cfg));  // under min_samples
  EXPECT_TRUE(admission_window_done(window(50, 24, 14, 900, 40, 50), cfg));   // clearly over
  EXPECT_FALSE(admission_window_done(window(50, 60, 0, 20, 40, 50), cfg));    // 0 of 60 over
  EXPECT_TRUE(admission_window_done(window(50, 100, 0, 20, 40, 50), cfg));
  cfg.percentile = 0.9;
  EXPECT_EQ(raise_samples(cfg), 20u);  // 10, but never under min_samples
  cfg.percentile = 0.999;
  EXPECT_EQ(raise_samples(cfg), 1000u);
}

// Before its answers show it: the answers are still fast, but what is in flight would take over
// two targets to drain at the rate they come (misses piling up on a slow disk in the first
// moments of the load). Little's law, looking ahead, cuts at once.
TEST(AdmissionPolicy, AQueueBuildingUpIsCutBeforeItsAnswersShowIt) {
  admission_run run;
  // 30 answered in 100 ms (300/s), all fast, with 200 in flight: 200 / 300/s = 667 ms to drain.
  auto d = run.step([](std::size_t l) { return window(l, 30, 0, 20, 0, 200); });
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].to, 22u);  // 300/s x 100 ms x 0.75, no lower clamp: a standing queue
  EXPECT_NE(d[0].why.find("a queue building"), std::string::npos) << d[0].why;
  admission_settings cfg;
  admission_class_sample c = window(10000, 30, 0, 20, 0, 200);
  c.window_ms = 100;
  EXPECT_TRUE(admission_window_done(c, cfg));  // no need for a hundred answers
  // A burst of five in a quiet second (20 answered), none left at its end: no queue. Five
  // still there would be one (250 ms to drain at 20/s).
  const auto quiet = [](std::size_t left) {
    return [left](std::size_t l) {
      admission_class_sample q = window(l, 20, 0, 25, 0, 5);
      q.window_ms = 1000;
      q.in_flight = left;
      return q;
    };
  };
  admission_run burst;
  EXPECT_TRUE(burst.step(quiet(0)).empty());
  admission_run queued;
  EXPECT_EQ(queued.step(quiet(5)).size(), 1u);
  // In flight that drains within two targets is no queue: a slow class, not a building one.
  admission_run slow;
  EXPECT_TRUE(slow.step([](std::size_t l) { return window(l, 30, 0, 20, 0, 60); }).empty());
}

// After a cut the limit comes back quickly to just under what was in flight when it came, and
// passes that level carefully (a x1.5 step past it overshot into the next cut: on the slow disk
// the miss limit cycled 10, 15, 23, cut, ...). Far past it, the cut is forgotten.
TEST(AdmissionPolicy, RaisesApproachTheLastCutQuicklyAndPassItCarefully) {
  admission_run run;
  run.set_limit(req, 100);
  // 100 in flight, over target, 100 answered in 100 ms: 1000/s x 100 ms x 0.75 = 75.
  ASSERT_EQ(run.step([](std::size_t l) { return window(l, 100, 50, 300, 0, 100); }).size(), 1u);
  EXPECT_EQ(run.limit(req), 75u);
  auto refusing = [](std::size_t l) { return window(l, 1000, 0, 20, 300, l); };
  run.step(refusing);
  EXPECT_EQ(run.limit(req), 99u);  // x1.5 would be 112: only to just under 100
  run.step(refusing);
  EXPECT_EQ(run.limit(req), 105u);  // past it: + 1/16 of the limit
  std::size_t steps = 0;
  while (run.limit(req) < 150 && steps < 20) {
    run.step(refusing);
    ++steps;
  }
  // 111, 117, 124, 131, 139, 147, 156: careful steps up to 1.5 x the level of the cut...
  EXPECT_EQ(run.limit(req), 156u);
  EXPECT_EQ(steps, 7u);
  run.step(refusing);
  EXPECT_EQ(run.limit(req), 234u);  // ...then x1.5 again
}

// --- the listen backlog ------------------------------------------------------------------------

/// A window for the backlog: `answered` request-class completions in 100 ms, `refused` by the
/// limit, `pauses` of accepting, with `backlog` asked for so far.
admission_sample backlog_window(std::int64_t now_ms, std::uint64_t answered, std::uint64_t refused,
                                std::uint64_t pauses, std::size_t backlog) {
  admission_sample s;
  s.now_ms = now_ms;
  s.window_ms = period_ms;
  s.classes[req] = window(100, answered, 0, 1, refused, 50);
  s.accept_pauses = pauses;
  s.backlog = backlog;
  return s;
}

TEST(AdmissionBacklog, HeldBackItHoldsWhatTheTargetsShareAllowsAtTheAnsweredRate) {
  admission_settings cfg;  // target 100 ms
  cfg.backlog_share = 0.5;
  admission_state st;
  // 250 answered in 100 ms: 2500/s x 0.1 s x 0.5 = 125 connections.
  const auto d = decide_backlog(backlog_window(100, 250, 0, 3, 4096), st, cfg);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->from, 4096u);
  EXPECT_EQ(d->to, 125u);
  EXPECT_NE(d->why.find("3 accept pauses"), std::string::npos) << d->why;
  // Refusals alone press too.
  admission_state st2;
  const auto r = decide_backlog(backlog_window(100, 250, 7, 0, 4096), st2, cfg);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->to, 125u);
}

TEST(AdmissionBacklog, NoPressureLeavesTheListenersOwnLength) {
  admission_settings cfg;
  cfg.backlog_share = 0.5;
  admission_state st;
  for (std::int64_t t = 100; t <= 3000; t += 100)
    EXPECT_FALSE(decide_backlog(backlog_window(t, 250, 0, 0, 4096), st, cfg).has_value()) << t;
}

TEST(AdmissionBacklog, ItStaysWithinTheBounds) {
  admission_settings cfg;
  cfg.backlog_share = 0.5;
  cfg.backlog_min = 32;
  cfg.backlog_max = 1000;
  admission_state st;
  auto d = decide_backlog(backlog_window(100, 10, 0, 1, 1000), st, cfg);  // 5 by the rate
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->to, 32u);
  admission_state st2;
  d = decide_backlog(backlog_window(100, 100000, 0, 1, 1000), st2, cfg);  // 50,000 by the rate
  EXPECT_FALSE(d.has_value());  // already at the upper bound
}

TEST(AdmissionBacklog, SmallChangesAreNotMadeAndTheRateIsSmoothed) {
  admission_settings cfg;
  cfg.backlog_share = 0.5;
  admission_state st;
  auto d = decide_backlog(backlog_window(100, 200, 0, 1, 4096), st, cfg);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->to, 100u);
  // One noisy window at 240 smooths to 2200/s: 110, a tenth more: left alone.
  EXPECT_FALSE(decide_backlog(backlog_window(200, 240, 0, 1, 100), st, cfg).has_value());
  // A window at a third of the rate smooths to 1433/s: 72, a quarter less or more: made.
  d = decide_backlog(backlog_window(300, 67, 0, 1, 100), st, cfg);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->to, 72u);
}

TEST(AdmissionBacklog, ItGrowsBackASecondAfterThePressureEnds) {
  admission_settings cfg;
  cfg.backlog_share = 0.5;
  admission_state st;
  ASSERT_TRUE(decide_backlog(backlog_window(100, 250, 0, 2, 4096), st, cfg).has_value());
  // Calm windows: nothing for the first second, then back to backlog_max.
  std::int64_t t = 200;
  for (; t < 1200; t += 100)
    EXPECT_FALSE(decide_backlog(backlog_window(t, 250, 0, 0, 125), st, cfg).has_value()) << t;
  const auto d = decide_backlog(backlog_window(t, 250, 0, 0, 125), st, cfg);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->to, 4096u);
  EXPECT_NE(d->why.find("no load held back for 1000 ms"), std::string::npos) << d->why;
  // Pressure within the second restarts it.
  admission_state st2;
  ASSERT_TRUE(decide_backlog(backlog_window(100, 250, 0, 2, 4096), st2, cfg).has_value());
  EXPECT_FALSE(decide_backlog(backlog_window(600, 250, 0, 0, 125), st2, cfg).has_value());
  EXPECT_FALSE(decide_backlog(backlog_window(700, 250, 0, 1, 125), st2, cfg).has_value());
  EXPECT_FALSE(decide_backlog(backlog_window(1600, 250, 0, 0, 125), st2, cfg).has_value());
}

TEST(AdmissionBacklog, OffOrAShareOfZeroGivesBackTheFullLength) {
  admission_settings cfg;
  cfg.backlog_share = 0;
  admission_state st;
  auto d = decide_backlog(backlog_window(100, 250, 5, 5, 125), st, cfg);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->to, 4096u);
  EXPECT_FALSE(decide_backlog(backlog_window(100, 250, 5, 5, 4096), st, cfg).has_value());
  admission_settings off;
  off.enabled = false;
  admission_state st2;
  d = decide_backlog(backlog_window(100, 250, 5, 5, 125), st2, off);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->to, 4096u);
  EXPECT_NE(d->why.find("off"), std::string::npos);
}

}  // namespace
}  // namespace weir::controllers
