#include "runtime/pipeline.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/unit/runtime/sync_support.hpp"

namespace weir::runtime {
namespace {

using namespace std::chrono_literals;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr std::size_t flow_tasks = 3'000;
#else
constexpr std::size_t flow_tasks = 30'000;
#endif

using testing_support::eventually;
using testing_support::gate;
using testing_support::gate_opener;

// Plain fields: each step must happen-after the previous one through the queues, which TSan checks.
struct trace_task : task {
  std::size_t id = 0;
  std::size_t steps = 0;
  std::array<stage_index, 4> path{};
  std::array<std::thread::id, 3> ran_on{};  // by stage index
};

class tracing_stage : public stage_handler {
 public:
  stage_index handle(task& t) override {
    auto& tt = static_cast<trace_task&>(t);
    if (tt.steps < tt.path.size()) tt.path[tt.steps] = self;
    ++tt.steps;
    tt.ran_on[self] = std::this_thread::get_id();
    if (before) before(tt);
    if (next == stage_done) finished->fetch_add(1);
    return next;
  }

  stage_index self = 0;
  stage_index next = stage_done;
  std::atomic<std::size_t>* finished = nullptr;
  std::function<void(trace_task&)> before;  // set before traffic starts
};

// a -> b -> c -> done.
struct abc_stages {
  void add_to(pipeline& p) {
    a.self = p.add_stage("a", a);
    b.self = p.add_stage("b", b);
    c.self = p.add_stage("c", c);
    a.next = b.self;
    b.next = c.self;
    c.next = stage_done;
    c.finished = &finished;
  }
  tracing_stage a, b, c;
  std::atomic<std::size_t> finished{0};
};

std::vector<trace_task> make_tasks(std::size_t n) {
  std::vector<trace_task> tasks(n);
  for (std::size_t i = 0; i < n; ++i) tasks[i].id = i;
  return tasks;
}

// Task 0 sets `held` in stage a and waits there until `release` opens.
void hold_first_in_a(abc_stages& s, gate& release, std::atomic<bool>& held) {
  s.a.before = [&release, &held](trace_task& t) {
    if (t.id == 0) {
      held.store(true);
      release.wait();
    }
  };
}

// Queues hold at least twice this many tasks, so no hop inside the pipeline is ever refused (a
// refused hop drops the task when there is no overload handler).
constexpr std::size_t in_flight = 64;
constexpr std::size_t flow_capacity = 2 * in_flight;

// Dispatches `t` once fewer than `in_flight` tasks are inside the pipeline; false if the
// pipeline stopped making progress.
bool dispatch_windowed(pipeline& p, trace_task& t, stage_index stage, std::size_t sent,
                       const std::atomic<std::size_t>& finished) {
  return eventually([&] { return sent - finished.load() < in_flight; }) &&
         eventually([&] { return p.dispatch(t, stage); });
}

void expect_passed_abc_once(const std::vector<trace_task>& tasks, std::size_t count,
                            const abc_stages& s) {
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const auto& t = tasks[i];
    const bool ok =
        t.steps == 3 && t.path[0] == s.a.self && t.path[1] == s.b.self && t.path[2] == s.c.self;
    if (!ok && wrong++ < 5) ADD_FAILURE() << "task " << i << " took " << t.steps << " steps";
  }
  EXPECT_EQ(wrong, 0u);
}

void expect_processed(const pipeline& p, const abc_stages& s, std::size_t n) {
  for (stage_index st : {s.a.self, s.b.self, s.c.self}) {
    EXPECT_EQ(p.processed(st), n) << p.stage_name(st);
    EXPECT_EQ(p.rejected(st, reject_reason::queue_full), 0u) << p.stage_name(st);
  }
}

// Sends every task through a -> b -> c, waits for all to finish, stops the pipeline and checks
// each passed every stage exactly once, in order.
void flow_all_then_stop(pipeline& p, std::vector<trace_task>& tasks, abc_stages& s) {
  for (std::size_t i = 0; i < tasks.size(); ++i)
    ASSERT_TRUE(dispatch_windowed(p, tasks[i], s.a.self, i, s.finished)) << "task " << i;
  ASSERT_TRUE(eventually([&] { return s.finished.load() == tasks.size(); }))
      << s.finished.load() << " of " << tasks.size();
  p.stop();
  expect_passed_abc_once(tasks, tasks.size(), s);
  expect_processed(p, s, tasks.size());
}

TEST(Pipeline, EachStageInItsOwnGroupRunsInOrder) {
  auto tasks = make_tasks(flow_tasks);
  abc_stages s;
  pipeline p;
  s.add_to(p);
  auto& ga = p.add_group({.name = "ga", .capacity = flow_capacity, .threads = 1});
  auto& gb = p.add_group({.name = "gb", .capacity = flow_capacity, .threads = 1});
  auto& gc = p.add_group({.name = "gc", .capacity = flow_capacity, .threads = 1});
  p.assign(s.a.self, ga);
  p.assign(s.b.self, gb);
  p.assign(s.c.self, gc);
  EXPECT_EQ(&p.group_of(s.b.self), &gb);
  EXPECT_EQ(p.stage_count(), 3u);

  ASSERT_NO_FATAL_FAILURE(flow_all_then_stop(p, tasks, s));
  // One worker per group: every hop lands on another thread.
  std::size_t same_thread = 0;
  for (const auto& t : tasks) {
    same_thread +=
        t.ran_on[s.a.self] == t.ran_on[s.b.self] || t.ran_on[s.b.self] == t.ran_on[s.c.self];
  }
  EXPECT_EQ(same_thread, 0u);
}

TEST(Pipeline, FusedStagesRunOnTheSameThread) {
  auto tasks = make_tasks(flow_tasks);
  abc_stages s;
  pipeline p;
  s.add_to(p);
  auto& ga = p.add_group({.name = "ga", .capacity = flow_capacity, .threads = 2});
  auto& gc = p.add_group({.name = "gc", .capacity = flow_capacity, .threads = 1});
  p.assign(s.a.self, ga);
  p.assign(s.b.self, ga);
  p.assign(s.c.self, gc);

  ASSERT_NO_FATAL_FAILURE(flow_all_then_stop(p, tasks, s));
  std::size_t split = 0;
  std::size_t not_hopped = 0;
  for (const auto& t : tasks) {
    split += t.ran_on[s.a.self] != t.ran_on[s.b.self];
    not_hopped += t.ran_on[s.b.self] == t.ran_on[s.c.self];
  }
  EXPECT_EQ(split, 0u) << "fused stages a and b ran on different threads";
  EXPECT_EQ(not_hopped, 0u);
}

TEST(Pipeline, RegroupWhileTasksFlowLosesAndDuplicatesNothing) {
  constexpr std::size_t max_tasks = 20 * flow_tasks;
  auto tasks = make_tasks(max_tasks);
  abc_stages s;
  std::atomic<std::size_t> fused{0};
  std::atomic<std::size_t> hopped{0};
  s.b.before = [&](trace_task& t) {
    (t.ran_on[s.a.self] == std::this_thread::get_id() ? fused : hopped).fetch_add(1);
  };
  pipeline p;
  s.add_to(p);
  auto& ga = p.add_group({.name = "ga", .capacity = flow_capacity, .threads = 2, .batch = 8});
  auto& gb = p.add_group({.name = "gb", .capacity = flow_capacity, .threads = 1, .batch = 8});
  auto& gc = p.add_group({.name = "gc", .capacity = flow_capacity, .threads = 1, .batch = 8});
  p.assign(s.a.self, ga);
  p.assign(s.b.self, gb);
  p.assign(s.c.self, gc);

  std::atomic<bool> toggling{true};
  std::thread toggler([&] {
    while (toggling.load()) {
      p.assign(s.b.self, ga);
      std::this_thread::yield();
      p.assign(s.b.self, gb);
      std::this_thread::yield();
    }
  });
  // Keep sending until both routes were taken at least once, so the test really regrouped.
  std::size_t sent = 0;
  while (sent < max_tasks && (sent < flow_tasks || fused.load() == 0 || hopped.load() == 0)) {
    if (!dispatch_windowed(p, tasks[sent], s.a.self, sent, s.finished)) {
      ADD_FAILURE() << "pipeline stuck after " << sent << " tasks";
      break;
    }
    ++sent;
  }
  toggling.store(false);
  toggler.join();

  ASSERT_TRUE(eventually([&] { return s.finished.load() == sent; }))
      << s.finished.load() << " of " << sent;
  p.stop();
  EXPECT_EQ(s.finished.load(), sent);
  EXPECT_GT(fused.load(), 0u);
  EXPECT_GT(hopped.load(), 0u);
  expect_passed_abc_once(tasks, sent, s);
  expect_processed(p, s, sent);
}

TEST(Pipeline, FullNextGroupCallsOverloadHandler) {
  auto tasks = make_tasks(4);
  abc_stages s;
  gate release;
  std::atomic<bool> c_blocked{false};
  s.c.before = [&](trace_task& t) {
    if (t.id == 0) {
      c_blocked.store(true);
      release.wait();
    }
  };
  std::mutex refusals_mutex;
  std::vector<std::pair<std::size_t, stage_index>> refusals;  // (task id, refused stage)
  std::atomic<int> overload_calls{0};

  pipeline p;
  gate_opener opener{release};  // destroyed before p stops its groups
  s.add_to(p);
  auto& ga = p.add_group({.name = "ga", .capacity = 16, .threads = 1});
  auto& gb = p.add_group({.name = "gb", .capacity = 16, .threads = 1});
  auto& gc = p.add_group({.name = "gc", .capacity = 1, .threads = 1});
  p.assign(s.a.self, ga);
  p.assign(s.b.self, gb);
  p.assign(s.c.self, gc);
  p.set_overload_handler([&](task& t, stage_index refused) {
    std::lock_guard lock(refusals_mutex);
    refusals.emplace_back(static_cast<trace_task&>(t).id, refused);
    overload_calls.fetch_add(1);
  });

  // Task 0 occupies c's only worker, task 1 its only queue slot; task 2 is refused on its hop b->c.
  ASSERT_TRUE(p.dispatch(tasks[0], s.a.self));
  ASSERT_TRUE(eventually([&] { return c_blocked.load(); }));
  ASSERT_TRUE(p.dispatch(tasks[1], s.a.self));
  ASSERT_TRUE(eventually([&] { return gc.depth() == 1; }));
  ASSERT_TRUE(p.dispatch(tasks[2], s.a.self));
  ASSERT_TRUE(eventually([&] { return overload_calls.load() == 1; }));
  {
    std::lock_guard lock(refusals_mutex);
    ASSERT_EQ(refusals.size(), 1u);
    EXPECT_EQ(refusals[0].first, 2u);
    EXPECT_EQ(refusals[0].second, s.c.self);
  }
  EXPECT_EQ(p.rejected(s.c.self, reject_reason::queue_full), 1u);
  EXPECT_EQ(tasks[2].steps, 2u) << "a refused task must not run the refused stage";

  // dispatch into the full group fails and leaves the task to the caller; no handler call.
  EXPECT_FALSE(p.dispatch(tasks[3], s.c.self));
  EXPECT_EQ(p.rejected(s.c.self, reject_reason::queue_full), 2u);
  EXPECT_EQ(overload_calls.load(), 1);
  EXPECT_EQ(tasks[3].steps, 0u);

  release.open();
  ASSERT_TRUE(eventually([&] { return s.finished.load() == 2; }));
  p.stop();
  EXPECT_EQ(p.processed(s.a.self), 3u);
  EXPECT_EQ(p.processed(s.b.self), 3u);
  EXPECT_EQ(p.processed(s.c.self), 2u);
  EXPECT_EQ(p.rejected(s.a.self, reject_reason::queue_full), 0u);
  EXPECT_EQ(p.rejected(s.b.self, reject_reason::queue_full), 0u);
  EXPECT_EQ(overload_calls.load(), 1);
}

// Runs a, b and c in the groups given (the same group twice: fused).
void assign_abc(pipeline& p, const abc_stages& s, group& ga, group& gb, group& gc) {
  p.assign(s.a.self, ga);
  p.assign(s.b.self, gb);
  p.assign(s.c.self, gc);
}

// Its workers parked, nothing queued.
bool becomes_idle(const group& g) {
  return eventually([&] { return g.busy_threads() == 0 && g.depth() == 0; });
}

// An idle group's stages run on the caller (fused ones too), and the hop out of the group is an
// ordinary submit, to a worker of the next group.
TEST(Pipeline, RunIfIdleRunsAnIdleGroupsStagesOnTheCaller) {
  auto tasks = make_tasks(1);
  abc_stages s;
  pipeline p;
  s.add_to(p);
  auto& gab = p.add_group({.name = "gab", .capacity = 16, .threads = 1});
  auto& gc = p.add_group({.name = "gc", .capacity = 16, .threads = 1});
  assign_abc(p, s, gab, gab, gc);
  ASSERT_TRUE(becomes_idle(gab));
  ASSERT_TRUE(p.run_if_idle(tasks[0], s.a.self, s.c.self, 0));
  ASSERT_TRUE(eventually([&] { return s.finished.load() == 1; }));
  p.stop();
  const std::thread::id me = std::this_thread::get_id();
  EXPECT_EQ(tasks[0].ran_on[s.a.self], me);
  EXPECT_EQ(tasks[0].ran_on[s.b.self], me) << "a fused stage hopped";
  EXPECT_NE(tasks[0].ran_on[s.c.self], me) << "the next group's stage ran on the caller";
  expect_passed_abc_once(tasks, 1, s);
}

// A group with a worker busy (or tasks queued) is not idle: the task is left to the caller.
TEST(Pipeline, RunIfIdleLeavesTheTaskWhenTheGroupIsBusy) {
  auto tasks = make_tasks(2);
  abc_stages s;
  gate release;
  std::atomic<bool> a_blocked{false};
  hold_first_in_a(s, release, a_blocked);
  pipeline p;
  gate_opener opener{release};
  s.add_to(p);
  auto& ga = p.add_group({.name = "ga", .capacity = 16, .threads = 1});
  auto& gbc = p.add_group({.name = "gbc", .capacity = 16, .threads = 1});
  assign_abc(p, s, ga, gbc, gbc);
  ASSERT_TRUE(p.dispatch(tasks[0], s.a.self));
  ASSERT_TRUE(eventually([&] { return a_blocked.load(); }));
  EXPECT_FALSE(p.run_if_idle(tasks[1], s.a.self, s.c.self, 0));
  EXPECT_EQ(tasks[1].steps, 0u) << "a task refused by run_if_idle was run";
  release.open();
  ASSERT_TRUE(eventually([&] { return s.finished.load() == 1; }));
  p.stop();
}

// A group that also runs the stage named blocking (fused in by an operator) never runs on the
// caller, idle or not.
TEST(Pipeline, RunIfIdleRefusesAGroupThatRunsTheBlockingStage) {
  auto tasks = make_tasks(1);
  abc_stages s;
  pipeline p;
  s.add_to(p);
  auto& gabc = p.add_group({.name = "gabc", .capacity = 16, .threads = 1});
  assign_abc(p, s, gabc, gabc, gabc);
  ASSERT_TRUE(becomes_idle(gabc));
  EXPECT_FALSE(p.run_if_idle(tasks[0], s.a.self, s.c.self, 0));
  EXPECT_EQ(tasks[0].steps, 0u);
  p.stop();
}

TEST(Pipeline, DispatchReturnsFalseWhenTheFirstGroupIsFull) {
  auto tasks = make_tasks(4);
  abc_stages s;
  gate release;
  std::atomic<bool> a_blocked{false};
  hold_first_in_a(s, release, a_blocked);
  std::atomic<int> overload_calls{0};
  pipeline p;
  gate_opener opener{release};
  s.add_to(p);
  auto& ga = p.add_group({.name = "ga", .capacity = 2, .threads = 1});
  auto& gbc = p.add_group({.name = "gbc", .capacity = 16, .threads = 1});
  p.assign(s.a.self, ga);
  p.assign(s.b.self, gbc);
  p.assign(s.c.self, gbc);
  p.set_overload_handler([&](task&, stage_index) { overload_calls.fetch_add(1); });

  ASSERT_TRUE(p.dispatch(tasks[0], s.a.self));
  ASSERT_TRUE(eventually([&] { return a_blocked.load(); }));
  ASSERT_TRUE(p.dispatch(tasks[1], s.a.self));
  ASSERT_TRUE(p.dispatch(tasks[2], s.a.self));
  EXPECT_FALSE(p.dispatch(tasks[3], s.a.self));
  EXPECT_EQ(p.rejected(s.a.self, reject_reason::queue_full), 1u);

  release.open();
  ASSERT_TRUE(eventually([&] { return s.finished.load() == 3; }));
  // The refused task is still the caller's: it can be dispatched again once there is room.
  ASSERT_TRUE(p.dispatch(tasks[3], s.a.self));
  ASSERT_TRUE(eventually([&] { return s.finished.load() == 4; }));
  p.stop();
  EXPECT_EQ(overload_calls.load(), 0);
  expect_passed_abc_once(tasks, tasks.size(), s);
}

// Tasks queued behind a blocked stage a when stop() is called must still leave through c.
// `c_group_first` creates c's group before a's, so stop() reaches it first.
std::size_t finished_after_stop(bool c_group_first) {
  constexpr std::size_t n = 200;
  auto tasks = make_tasks(n);
  abc_stages s;
  gate release;
  std::atomic<bool> a_blocked{false};
  hold_first_in_a(s, release, a_blocked);
  pipeline p;
  gate_opener opener{release};
  s.add_to(p);
  group::options c_options{.name = "gc", .capacity = 2 * n, .threads = 1};
  group* gc = c_group_first ? &p.add_group(c_options) : nullptr;
  auto& ga = p.add_group({.name = "ga", .capacity = 2 * n, .threads = 1});
  auto& gb = p.add_group({.name = "gb", .capacity = 2 * n, .threads = 1});
  if (gc == nullptr) gc = &p.add_group(c_options);
  p.assign(s.a.self, ga);
  p.assign(s.b.self, gb);
  p.assign(s.c.self, *gc);

  EXPECT_TRUE(p.dispatch(tasks[0], s.a.self));
  EXPECT_TRUE(eventually([&] { return a_blocked.load(); }));
  for (std::size_t i = 1; i < n; ++i) EXPECT_TRUE(p.dispatch(tasks[i], s.a.self));
  std::thread stopper([&] { p.stop(); });
  // Let stop() begin while every task is still held up behind a.
  EXPECT_TRUE(eventually([&] { return p.stopping(); }));
  release.open();
  stopper.join();
  return s.finished.load();
}

TEST(Pipeline, StopLetsTasksInFlightFinish) {
  EXPECT_EQ(finished_after_stop(/*c_group_first=*/false), 200u);
}

// A task hopping "backwards" in group creation order (possible after any assign()) must not
// reach a group that stop() has already stopped.
TEST(Pipeline, StopLetsTasksInFlightFinishWhateverTheGroupOrder) {
  EXPECT_EQ(finished_after_stop(/*c_group_first=*/true), 200u);
}

// A stage that names itself yields: the task goes to the back of the queue, so tasks queued
// behind it get a turn in between, and a yield is never mistaken for a fused direct call.
class yielding_stage : public stage_handler {
 public:
  struct turn_task : task {
    char name = '?';
    int turns_left = 0;
  };
  stage_index handle(task& t) override {
    auto& tt = static_cast<turn_task&>(t);
    if (hold_first && order.empty()) hold_first->wait();
    order.push_back(tt.name);  // one worker: plain writes, ordered by the queue
    if (tt.turns_left-- > 0) return self;
    finished.fetch_add(1);
    return stage_done;
  }
  stage_index self = 0;
  gate* hold_first = nullptr;
  std::vector<char> order;
  std::atomic<int> finished{0};
};

struct yield_run {
  std::string order;  // the tasks' names, one per turn
  std::uint64_t processed = 0, rejected_full = 0;
};

// Tasks a (yielding `a_turns` times) and b (`b_turns`), then c, into one worker's queue of
// `capacity`; b and c are queued while the worker holds a's first turn.
yield_run run_yielding(std::size_t capacity, int a_turns, int b_turns) {
  gate hold;
  gate_opener release{hold};
  yielding_stage y;
  y.hold_first = &hold;
  pipeline p;
  y.self = p.add_stage("y", y);
  auto& g = p.add_group({.name = "g", .capacity = capacity, .threads = 1});
  p.assign(y.self, g);
  yielding_stage::turn_task a, b, c;
  a.name = 'a';
  a.turns_left = a_turns;
  b.name = 'b';
  b.turns_left = b_turns;
  c.name = 'c';
  yield_run out;
  if (!p.dispatch(a, y.self) || !eventually([&] { return g.depth() == 0; }) ||
      !p.dispatch(b, y.self) || !p.dispatch(c, y.self)) {
    ADD_FAILURE() << "could not queue a, b and c";
    return out;
  }
  hold.open();
  if (!eventually([&] { return y.finished.load() == 3; })) ADD_FAILURE() << "tasks unfinished";
  p.stop();
  out.order.assign(y.order.begin(), y.order.end());
  out.processed = p.processed(y.self);
  out.rejected_full = p.rejected(y.self, reject_reason::queue_full);
  return out;
}

TEST(Pipeline, AStageThatNamesItselfYieldsToTheBackOfItsQueue) {
  const yield_run r = run_yielding(/*capacity=*/16, /*a_turns=*/2, /*b_turns=*/1);
  EXPECT_EQ(r.order, "abcaba");
  EXPECT_EQ(r.processed, 6u);
  EXPECT_EQ(r.rejected_full, 0u);
}

// With its queue full, a yielding task runs again at once rather than being refused.
TEST(Pipeline, AYieldIntoAFullQueueRunsOnAtOnce) {
  const yield_run r = run_yielding(/*capacity=*/2, /*a_turns=*/1, /*b_turns=*/0);
  EXPECT_EQ(r.order, "aabc");  // b and c filled the queue: a's yield could not be queued
  EXPECT_EQ(r.rejected_full, 0u);
}

// Busy-waits (no sleep: the time must be spent inside the stage).
void spin_for(std::chrono::microseconds d) {
  const auto until = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < until) {
  }
}

// Spins 3 ms per call. The first call first announces itself and waits for `release`, so the
// test can queue more tasks behind it before the spinning starts.
class spinning_stage : public stage_handler {
 public:
  stage_index handle(task&) override {
    if (started.fetch_add(1) == 0) release.wait();
    spin_for(3ms);
    finished.fetch_add(1);
    return stage_done;
  }
  gate release;
  std::atomic<int> started{0};
  std::atomic<int> finished{0};
};

std::uint64_t observations_above(const histogram_snapshot& h, std::uint64_t ns) {
  std::uint64_t n = 0;
  for (std::size_t i = latency_bucket(ns) + 1; i < latency_buckets; ++i) n += h.counts[i];
  return n;
}

TEST(Pipeline, SnapshotTimesServiceAndQueueWait) {
  spinning_stage st;
  pipeline p;
  const stage_index s = p.add_stage("slow", st);
  auto& g = p.add_group({.name = "slow-group", .capacity = 8, .threads = 1});
  p.assign(s, g);
  gate_opener opener{st.release};  // destroyed before p stops its groups
  task a, b;
  ASSERT_TRUE(p.dispatch(a, s));
  ASSERT_TRUE(eventually([&] { return st.started.load() == 1; }));
  // b is queued before a starts spinning, however long this thread took to get here: b waits at
  // least a's 3 ms.
  ASSERT_TRUE(p.dispatch(b, s));
  EXPECT_EQ(g.depth(), 1u);
  st.release.open();
  ASSERT_TRUE(eventually([&] { return st.finished.load() == 2; }));
  p.stop();
  const std::vector<stage_snapshot> snap = p.stage_snapshots();
  ASSERT_EQ(snap.size(), 1u);
  const stage_snapshot& slow = snap[0];
  EXPECT_EQ(slow.name, "slow");
  EXPECT_EQ(slow.group, "slow-group");
  EXPECT_EQ(slow.queue_capacity, 8u);
  EXPECT_EQ(slow.queue_depth, 0u);
  EXPECT_EQ(slow.threads, 1u);
  EXPECT_EQ(slow.processed, 2u);
  EXPECT_EQ(slow.service.count(), 2u);
  EXPECT_EQ(observations_above(slow.service, 2'500'000), 2u) << "each call spun 3 ms";
  EXPECT_GE(slow.service.sum_ns, 6'000'000u);
  EXPECT_EQ(slow.queue_wait.count(), 2u);
  EXPECT_GE(observations_above(slow.queue_wait, 2'500'000), 1u) << "b waited for a's 3 ms";
}

TEST(Pipeline, FusedCallsHaveNoQueueWaitAndTimingCanBeTurnedOff) {
  for (const bool timed : {true, false}) {
    SCOPED_TRACE(timed ? "timed" : "not timed");
    auto tasks = make_tasks(200);
    abc_stages s;
    pipeline p;
    p.set_timing(timed);
    s.add_to(p);
    auto& front = p.add_group({.name = "front", .capacity = flow_capacity, .threads = 1});
    auto& back = p.add_group({.name = "back", .capacity = flow_capacity, .threads = 1});
    p.assign(s.a.self, front);
    p.assign(s.b.self, front);
    p.assign(s.c.self, back);
    ASSERT_NO_FATAL_FAILURE(flow_all_then_stop(p, tasks, s));
    const auto snap = p.stage_snapshots();
    const std::uint64_t n = timed ? tasks.size() : 0;
    EXPECT_EQ(snap[s.a.self].queue_wait.count(), n);   // dispatched into front
    EXPECT_EQ(snap[s.b.self].queue_wait.count(), 0u);  // called directly by a
    EXPECT_EQ(snap[s.c.self].queue_wait.count(), n);   // hopped to back
    for (const auto& st : snap) {
      EXPECT_EQ(st.service.count(), n) << st.name;
      EXPECT_EQ(st.processed, tasks.size()) << st.name;
    }
    EXPECT_EQ(snap[s.b.self].group, "front");
    EXPECT_EQ(snap[s.c.self].group, "back");
  }
}

TEST(Pipeline, CountRejectedAddsToTheStagesReason) {
  tracing_stage st;
  pipeline p;
  const stage_index s = p.add_stage("s", st);
  auto& g = p.add_group({.name = "g", .capacity = 4, .threads = 1});
  p.assign(s, g);
  p.count_rejected(s, reject_reason::timeout);
  std::thread([&] { p.count_rejected(s, reject_reason::timeout); }).join();
  p.count_rejected(s, reject_reason::admission);
  EXPECT_EQ(p.rejected(s, reject_reason::timeout), 2u);
  EXPECT_EQ(p.rejected(s, reject_reason::admission), 1u);
  EXPECT_EQ(p.rejected(s, reject_reason::queue_full), 0u);
  const auto snap = p.stage_snapshots();
  EXPECT_EQ(snap[0].rejected[static_cast<std::size_t>(reject_reason::timeout)], 2u);
  const auto groups = p.group_snapshots();
  ASSERT_EQ(groups.size(), 1u);
  EXPECT_EQ(groups[0].name, "g");
  EXPECT_EQ(groups[0].queue_capacity, 4u);
}

TEST(Pipeline, AddStageRefusesMoreThanMaxStages) {
  tracing_stage st;
  pipeline p;
  for (stage_index i = 0; i < max_stages; ++i) EXPECT_EQ(p.add_stage("s", st), i);
  EXPECT_THROW(p.add_stage("one too many", st), std::length_error);
}

// --- Regrouping: new groups while traffic flows, retired groups drained and dropped ------------

std::shared_ptr<group> find_group(const pipeline& p, const std::string& name) {
  for (auto& g : p.groups())
    if (g->name() == name) return g;
  return nullptr;
}

std::vector<std::string> group_names(const pipeline& p) {
  std::vector<std::string> out;
  for (const auto& g : p.groups()) out.push_back(g->name());
  std::sort(out.begin(), out.end());
  return out;
}

// Keeps calling reap() until the retired groups are gone; false if they never go.
bool reaped(pipeline& p) {
  return eventually([&] {
    p.reap();
    return p.retiring() == 0;
  });
}

TEST(Pipeline, RegroupMakesTheNewGroupAndRetiresTheOnesItEmpties) {
  auto tasks = make_tasks(flow_tasks);
  abc_stages s;
  pipeline p;
  s.add_to(p);
  p.assign(s.a.self, p.add_group({.name = "ga", .capacity = flow_capacity}));
  p.assign(s.b.self, p.add_group({.name = "gb", .capacity = flow_capacity}));
  p.assign(s.c.self, p.add_group({.name = "gc", .capacity = flow_capacity}));
  const std::shared_ptr<group> ga = find_group(p, "ga"), gb = find_group(p, "gb");

  group* ab = p.regroup({s.a.self, s.b.self}, {.name = "a+b", .capacity = flow_capacity});
  ASSERT_NE(ab, nullptr);
  EXPECT_EQ(&p.group_of(s.a.self), ab);
  EXPECT_EQ(&p.group_of(s.b.self), ab);
  EXPECT_EQ(p.stages_of(*ab), (std::vector<stage_index>{s.a.self, s.b.self}));
  EXPECT_EQ(group_names(p), (std::vector<std::string>{"a+b", "gc"}));  // retiring ones hidden
  ASSERT_TRUE(reaped(p));
  // Dropped by the pipeline (only this test still holds them), their threads gone.
  EXPECT_EQ(ga->live_threads(), 0u);
  EXPECT_EQ(gb->live_threads(), 0u);
  EXPECT_EQ(ga.use_count(), 1);

  // The fused group really fuses: a and b run on one thread.
  ASSERT_NO_FATAL_FAILURE(flow_all_then_stop(p, tasks, s));
  std::size_t split = 0;
  for (const auto& t : tasks) split += t.ran_on[s.a.self] != t.ran_on[s.b.self];
  EXPECT_EQ(split, 0u);
  EXPECT_EQ(p.regroup({s.c.self}, {.name = "late"}), nullptr) << "regroup after stop";
}

TEST(Pipeline, ARetiredGroupStopsOnlyOnceNoThreadCanStillHandItATask) {
  abc_stages s;
  pipeline p;
  s.add_to(p);
  for (stage_index st : {s.a.self, s.b.self, s.c.self})
    p.assign(st, p.add_group({.name = "g" + p.stage_name(st), .capacity = flow_capacity}));
  // A thread that read the map (it holds gb) and has not submitted yet, inside its section.
  gate submit;
  gate_opener opener{submit};
  std::atomic<bool> holding{false};
  std::atomic<bool> accepted{false};
  trace_task late;
  late.id = 1;
  std::thread sender([&] {
    const group::deferred_wakeups section;
    group& gb = p.group_of(s.b.self);
    late.next_stage = s.b.self;
    holding.store(true);
    submit.wait();
    accepted.store(gb.submit(&late));
  });
  ASSERT_TRUE(eventually([&] { return holding.load(); }));
  const std::shared_ptr<group> gb = find_group(p, "gb");
  ASSERT_NE(p.regroup({s.b.self}, {.name = "gb2", .capacity = flow_capacity}), nullptr);
  for (int i = 0; i < 100; ++i) p.reap();
  EXPECT_EQ(p.retiring(), 1u);
  EXPECT_EQ(gb->live_threads(), 1u) << "stopped while a thread could still submit to it";

  submit.open();
  sender.join();
  EXPECT_TRUE(accepted.load());
  ASSERT_TRUE(reaped(p));
  // The late task ran (in the old group, then on through c): nothing was lost.
  EXPECT_TRUE(eventually([&] { return s.finished.load() == 1; }));
  EXPECT_EQ(late.steps, 2u);
  p.stop();
}

TEST(Pipeline, StopWaitsForAThreadThatMaySubmit) {
  abc_stages s;
  pipeline p;
  s.add_to(p);
  for (stage_index st : {s.a.self, s.b.self, s.c.self})
    p.assign(st, p.add_group({.name = "g" + p.stage_name(st), .capacity = flow_capacity}));
  gate submit;
  gate_opener opener{submit};
  std::atomic<bool> holding{false};
  std::atomic<bool> accepted{false};
  trace_task late;
  std::thread sender([&] {
    const group::deferred_wakeups section;
    group& ga = p.group_of(s.a.self);
    late.next_stage = s.a.self;
    holding.store(true);
    submit.wait();
    accepted.store(ga.submit(&late));
  });
  ASSERT_TRUE(eventually([&] { return holding.load(); }));
  std::atomic<bool> stopped{false};
  std::thread stopper([&] {
    p.stop();
    stopped.store(true);
  });
  ASSERT_TRUE(eventually([&] { return p.stopping(); }));
  // Everything is idle, but a submit may still come: stop must not finish (the old stop left
  // the groups stopped here, and the late task was refused or never ran).
  EXPECT_FALSE(eventually([&] { return stopped.load(); }, std::chrono::seconds(1)));
  submit.open();
  sender.join();
  stopper.join();
  EXPECT_TRUE(accepted.load());
  EXPECT_EQ(s.finished.load(), 1u);
  EXPECT_EQ(late.steps, 3u);
}

// Fuses and splits hundreds of times while two threads keep tasks flowing: every task passes
// a, b and c exactly once, and every retired group is eventually dropped.
TEST(Pipeline, RegroupingHundredsOfTimesUnderTrafficLosesNothing) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  constexpr int regroups = 200;
#else
  constexpr int regroups = 600;
#endif
  constexpr std::size_t per_sender = 40 * flow_tasks / 30;
  auto tasks = make_tasks(2 * per_sender);
  abc_stages s;
  pipeline p;
  s.add_to(p);
  for (stage_index st : {s.a.self, s.b.self, s.c.self})
    p.assign(st, p.add_group({.name = p.stage_name(st), .capacity = flow_capacity, .batch = 8}));

  std::atomic<bool> sending{true};
  std::atomic<std::size_t> sent{0};
  std::atomic<bool> stuck{false};
  auto send = [&](std::size_t from) {
    for (std::size_t i = from; i < from + per_sender && sending.load(); ++i) {
      // The window is shared: each sender keeps at most half of it in flight.
      if (!eventually([&] { return sent.load() - s.finished.load() < in_flight / 2; }) ||
          !eventually([&] { return p.dispatch(tasks[i], s.a.self); })) {
        stuck.store(true);
        return;
      }
      sent.fetch_add(1);
    }
  };
  std::thread first(send, 0), second(send, per_sender);
  const std::vector<std::vector<std::vector<stage_index>>> layouts = {
      {{s.a.self, s.b.self}, {s.c.self}},
      {{s.a.self}, {s.b.self, s.c.self}},
      {{s.a.self, s.b.self, s.c.self}},
      {{s.a.self}, {s.b.self}, {s.c.self}},
  };
  for (int r = 0; r < regroups && !stuck.load(); ++r) {
    for (const auto& members : layouts[static_cast<std::size_t>(r) % layouts.size()]) {
      std::string name;
      for (stage_index m : members) name += (name.empty() ? "" : "+") + p.stage_name(m);
      ASSERT_NE(p.regroup(members, {.name = name, .capacity = flow_capacity, .batch = 8}), nullptr);
    }
    std::this_thread::yield();
  }
  sending.store(false);
  first.join();
  second.join();
  ASSERT_FALSE(stuck.load()) << "the pipeline stopped making progress";
  ASSERT_TRUE(eventually([&] { return s.finished.load() == sent.load(); }))
      << s.finished.load() << " of " << sent.load();
  ASSERT_TRUE(reaped(p));
  EXPECT_EQ(p.groups().size(), 3u);  // the last layout: each stage its own group
  p.stop();
  // Tasks are dispatched in index order per sender; check the ones that were sent.
  std::size_t checked = 0, wrong = 0;
  for (const auto& t : tasks) {
    if (t.steps == 0) continue;
    ++checked;
    const bool ok =
        t.steps == 3 && t.path[0] == s.a.self && t.path[1] == s.b.self && t.path[2] == s.c.self;
    if (!ok && wrong++ < 5) ADD_FAILURE() << "task " << t.id << " took " << t.steps << " steps";
  }
  EXPECT_EQ(checked, sent.load());
  EXPECT_EQ(wrong, 0u);
  expect_processed(p, s, sent.load());
}

}  // namespace
}  // namespace weir::runtime
