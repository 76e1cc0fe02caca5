// What a hop between groups costs: the queue alone, one hop under load (two groups vs the same
// stages fused into one), and one hop that has to wake a parked worker (ping-pong).
// A summary with the differences goes to stderr, so --benchmark_format=json stays parseable.
// `wakeups` counters come from group::wakeups(): submits that found a worker inside park(), which
// is more often than a worker actually slept.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <thread>
#include <vector>

#include <benchmark/benchmark.h>

#include "runtime/bounded_queue.hpp"
#include "runtime/pipeline.hpp"

namespace {

using namespace weir::runtime;

double process_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

// Last measurement of each configuration, for the summary.
struct stream_result {
  double wall_ns_per_lap = 0;
  double cpu_ns_per_lap = 0;
  double wakeups_per_lap = 0;
  bool measured = false;
};
enum class layout { two_groups, fused, fused_one_worker };
stream_result stream_results[3];  // indexed by layout
struct ping_pong_result {
  double ns_per_round_trip = 0;
  double wakeups_per_round_trip = 0;
  bool measured = false;
};
ping_pong_result ping_pong_last;

void queue_push_pop(benchmark::State& state) {
  bounded_queue<task> q(1024);
  task t;
  for (auto _ : state) {
    q.try_push(&t);
    benchmark::DoNotOptimize(q.try_pop());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(queue_push_pop)->UseRealTime();

std::uint64_t total_wakeups(const pipeline& p) {
  std::uint64_t n = 0;
  for (const auto& g : p.groups()) n += g->wakeups();
  return n;
}

// A cache line each, as real tasks (connections) are far larger: neighbours in the vector must not
// share a line between two workers.
struct alignas(64) lap_task : task {
  std::uint64_t laps_left = 0;
};

class forward_stage : public stage_handler {
 public:
  stage_index handle(task&) override { return next; }
  stage_index next = stage_done;
};

// Sends a task round again until its laps are done; wakes the benchmark thread when the number
// of finished tasks reaches `target`.
class lap_stage : public stage_handler {
 public:
  stage_index handle(task& t) override {
    if (--static_cast<lap_task&>(t).laps_left > 0) return first;
    if (finished.fetch_add(1, std::memory_order_acq_rel) + 1 ==
        target.load(std::memory_order_relaxed)) {
      finished.notify_one();
    }
    return stage_done;
  }
  void wait_for(std::uint64_t n) {
    for (auto seen = finished.load(std::memory_order_acquire); seen < n;
         seen = finished.load(std::memory_order_acquire)) {
      finished.wait(seen, std::memory_order_acquire);
    }
  }
  stage_index first = stage_done;
  std::atomic<std::uint64_t> finished{0};
  std::atomic<std::uint64_t> target{0};
};

// Two trivial stages a -> b, with every task going round a -> b many times and 512 tasks in
// flight, to keep both queues fed. two_groups: a and b each have a group of one worker, so a lap
// is two hops (a -> b, b -> a). fused: both stages in one group of two workers, so a lap is two
// direct calls on the same two threads; (two_groups - fused) / 2 is what one hop under load
// costs. fused_one_worker: the same on one thread, without the two workers sharing counters.
void stream(benchmark::State& state, layout l) {
  const bool fused = l != layout::two_groups;
  constexpr std::size_t in_flight = 512;
  constexpr std::uint64_t laps = 64;
  forward_stage first;
  lap_stage second;
  std::vector<lap_task> tasks(in_flight);
  pipeline p;
  const stage_index a = p.add_stage("a", first);
  const stage_index b = p.add_stage("b", second);
  first.next = b;
  second.first = a;
  auto& g1 =
      p.add_group({.name = "g1", .capacity = in_flight, .threads = l == layout::fused ? 2u : 1u});
  auto& g2 = p.add_group({.name = "g2", .capacity = in_flight, .threads = 1});
  p.assign(a, g1);
  p.assign(b, fused ? g1 : g2);

  const std::uint64_t wakeups_before = total_wakeups(p);
  const double cpu_before = process_cpu_ns();
  const auto wall_before = std::chrono::steady_clock::now();
  std::uint64_t started = 0;
  while (state.KeepRunningBatch(in_flight * laps)) {
    started += in_flight;
    second.target.store(started, std::memory_order_relaxed);
    for (auto& t : tasks) {
      t.laps_left = laps;
      while (!p.dispatch(t, a)) std::this_thread::yield();
    }
    second.wait_for(started);
  }
  const double wall =
      std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - wall_before)
          .count();
  const double cpu = process_cpu_ns() - cpu_before;
  const std::uint64_t wakeups = total_wakeups(p) - wakeups_before;
  p.stop();

  const auto n = static_cast<double>(started * laps);
  state.SetItemsProcessed(static_cast<std::int64_t>(started * laps));
  state.counters["ns_per_lap"] = wall / n;
  state.counters["cpu_ns_per_lap"] = cpu / n;  // all threads of the process
  state.counters["wakeups_per_lap"] = static_cast<double>(wakeups) / n;
  stream_results[static_cast<int>(l)] = {wall / n, cpu / n, static_cast<double>(wakeups) / n,
                                         n > 0};
}
BENCHMARK_CAPTURE(stream, two_groups, layout::two_groups)->UseRealTime();
BENCHMARK_CAPTURE(stream, fused, layout::fused)->UseRealTime();
BENCHMARK_CAPTURE(stream, fused_one_worker, layout::fused_one_worker)->UseRealTime();

// One task bounces between two groups of one worker each; with one task in flight, a hop
// usually finds the other worker parked and has to wake it. One iteration is one round trip.
struct rally : task {
  std::uint64_t remaining = 0;
};

class ping_stage : public stage_handler {
 public:
  stage_index handle(task&) override { return pong; }
  stage_index pong = stage_done;
};

class pong_stage : public stage_handler {
 public:
  stage_index handle(task& t) override {
    if (--static_cast<rally&>(t).remaining > 0) return ping;
    returned.fetch_add(1, std::memory_order_release);
    returned.notify_one();
    return stage_done;
  }
  stage_index ping = stage_done;
  std::atomic<std::uint64_t> returned{0};
};

void ping_pong(benchmark::State& state) {
  constexpr std::uint64_t round_trips = 1000;
  ping_stage ping;
  pong_stage pong;
  rally ball;
  pipeline p;
  pong.ping = p.add_stage("ping", ping);
  ping.pong = p.add_stage("pong", pong);
  p.assign(pong.ping, p.add_group({.name = "ping", .capacity = 4, .threads = 1}));
  p.assign(ping.pong, p.add_group({.name = "pong", .capacity = 4, .threads = 1}));

  const std::uint64_t wakeups_before = total_wakeups(p);
  const auto wall_before = std::chrono::steady_clock::now();
  std::uint64_t rallies = 0;
  while (state.KeepRunningBatch(round_trips)) {
    ball.remaining = round_trips;
    if (!p.dispatch(ball, pong.ping)) {
      state.SkipWithError("ping queue full");
      break;
    }
    ++rallies;
    for (auto seen = pong.returned.load(std::memory_order_acquire); seen < rallies;
         seen = pong.returned.load(std::memory_order_acquire)) {
      pong.returned.wait(seen, std::memory_order_acquire);
    }
  }
  const double wall =
      std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - wall_before)
          .count();
  const std::uint64_t wakeups = total_wakeups(p) - wakeups_before;
  p.stop();

  const auto n = static_cast<double>(rallies * round_trips);
  state.SetItemsProcessed(static_cast<std::int64_t>(rallies * round_trips));
  state.counters["ns_per_round_trip"] = wall / n;
  state.counters["wakeups_per_round_trip"] = static_cast<double>(wakeups) / n;
  ping_pong_last = {wall / n, static_cast<double>(wakeups) / n, n > 0};
}
BENCHMARK(ping_pong)->UseRealTime();

void print_summary() {
  const auto& hop = stream_results[static_cast<int>(layout::two_groups)];
  const auto& fused = stream_results[static_cast<int>(layout::fused)];
  if (hop.measured && fused.measured) {
    std::fprintf(stderr,
                 "one hop under load = (two groups - fused) / 2 per lap: wall (%.1f - %.1f) / 2 = "
                 "%.1f ns; CPU of all threads (%.1f - %.1f) / 2 = %.1f ns; wake-ups per lap %.4f "
                 "vs %.4f\n",
                 hop.wall_ns_per_lap, fused.wall_ns_per_lap,
                 (hop.wall_ns_per_lap - fused.wall_ns_per_lap) / 2, hop.cpu_ns_per_lap,
                 fused.cpu_ns_per_lap, (hop.cpu_ns_per_lap - fused.cpu_ns_per_lap) / 2,
                 hop.wakeups_per_lap, fused.wakeups_per_lap);
  }
  if (ping_pong_last.measured) {
    std::fprintf(stderr,
                 "hop to a parked worker: %.0f ns per round trip (2 hops), %.2f wake-ups per "
                 "round trip, so about %.0f ns per hop that wakes a worker\n",
                 ping_pong_last.ns_per_round_trip, ping_pong_last.wakeups_per_round_trip,
                 ping_pong_last.ns_per_round_trip / 2);
  }
}

}  // namespace

// What a regroup costs the controller's thread: pipeline::regroup (a new group and its threads,
// the map switched, the old group retired) and then reaping it (its grace period, its drain, its
// threads joined), alternating a+b fused and apart, idle or while a sender keeps tasks flowing.
void regroup(benchmark::State& state, bool under_load) {
  forward_stage first;
  lap_stage second;
  pipeline p;
  const stage_index a = p.add_stage("a", first);
  const stage_index b = p.add_stage("b", second);
  first.next = b;
  second.first = stage_done;
  p.assign(a, p.add_group({.name = "a", .capacity = 1024}));
  p.assign(b, p.add_group({.name = "b", .capacity = 1024}));
  std::atomic<bool> sending{under_load};
  std::vector<lap_task> tasks(256);
  std::thread sender([&] {
    std::uint64_t sent = 0;
    while (sending.load(std::memory_order_relaxed)) {
      // At most the vector's worth in flight: a task is reused only once it has finished.
      if (sent - second.finished.load(std::memory_order_acquire) >= tasks.size()) {
        std::this_thread::yield();
        continue;
      }
      lap_task& t = tasks[sent % tasks.size()];
      t.laps_left = 1;
      if (p.dispatch(t, a)) ++sent;
    }
  });
  double regroup_ns = 0, reap_ns = 0;
  std::uint64_t n = 0;
  bool fused = false;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    if (fused) {
      p.regroup({a}, {.name = "a", .capacity = 1024});
      p.regroup({b}, {.name = "b", .capacity = 1024});
    } else {
      p.regroup({a, b}, {.name = "a+b", .capacity = 1024});
    }
    const auto t1 = std::chrono::steady_clock::now();
    while (p.retiring() > 0) {
      p.reap();
      std::this_thread::yield();
    }
    const auto t2 = std::chrono::steady_clock::now();
    regroup_ns += std::chrono::duration<double, std::nano>(t1 - t0).count();
    reap_ns += std::chrono::duration<double, std::nano>(t2 - t1).count();
    ++n;
    fused = !fused;
  }
  sending.store(false);
  sender.join();
  p.stop();
  state.counters["regroup_us"] = regroup_ns / static_cast<double>(n) / 1e3;
  state.counters["retire_us"] = reap_ns / static_cast<double>(n) / 1e3;
}
BENCHMARK_CAPTURE(regroup, idle, false)->UseRealTime()->Iterations(200);
BENCHMARK_CAPTURE(regroup, under_load, true)->UseRealTime()->Iterations(200);

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  print_summary();
  benchmark::Shutdown();
  return 0;
}
