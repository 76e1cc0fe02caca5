// Regrouping and resizing stage pools while traffic flows must lose, duplicate and reorder
// nothing: eight keep-alive clients pipeline batches of requests and check every response byte
// while a controller thread resizes every group and fuses/splits read_parse + cache_lookup.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <iterator>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "controllers/control_loop.hpp"
#include "stages/server.hpp"
#include "tests/integration/http_client.hpp"
#include "tests/integration/test_docroot.hpp"

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define WEIR_TEST_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define WEIR_TEST_SANITIZED 1
#endif

using namespace std::chrono_literals;

namespace weir::test {
namespace {

constexpr int client_count = 8;
constexpr int batch_size = 20;
#ifdef WEIR_TEST_SANITIZED
constexpr int batches_per_client = 15;  // 8 x 300 requests
#else
constexpr int batches_per_client = 100;  // 8 x 2000 requests
#endif

const std::string sentinel_target = "/sentinel.txt";
const std::string sentinel_body = "the last response on every connection\n";

struct served_file {
  std::string target;
  int status;
  std::string body;  // checked for 200 only
};

struct run_result {
  std::atomic<std::uint64_t> verified{0};
  std::mutex mutex;
  std::vector<std::string> errors;
  std::atomic<bool> failed{false};

  void fail(std::string what) {
    std::lock_guard lock(mutex);
    errors.push_back(std::move(what));
    failed = true;
  }
};

// One keep-alive connection; every batch goes out in one write, then every response is checked
// in order. Stops at the first wrong or missing response (the rest would be out of step).
void run_client(int id, std::uint16_t port, const std::vector<served_file>& files,
                run_result& result) {
  const std::string who = "client " + std::to_string(id);
  try {
    http_client c(port);
    std::minstd_rand rng(static_cast<std::uint32_t>(id) + 1);
    std::vector<std::size_t> picks(batch_size);
    for (int b = 0; b < batches_per_client; ++b) {
      std::string requests;
      for (auto& pick : picks) {
        pick = rng() % files.size();
        requests += get(files[pick].target);
      }
      c.send(requests);
      for (int i = 0; i < batch_size; ++i) {
        const served_file& want = files[picks[i]];
        const std::string where = who + " batch " + std::to_string(b) + " request " +
                                  std::to_string(i) + " (" + want.target + "): ";
        response r;
        const read_status s = c.try_read_response(r);
        if (s != read_status::ok) {
          result.fail(where + to_string(s) + ": " + c.last_error());
          return;
        }
        if (r.status != want.status) {
          result.fail(where + "status " + std::to_string(r.status));
          return;
        }
        if (want.status == 200 && (r.header("Content-Length") != std::to_string(want.body.size()) ||
                                   r.body != want.body)) {
          result.fail(where + "Content-Length " + r.header("Content-Length") + ", body of " +
                      std::to_string(r.body.size()) + " bytes differs");
          return;
        }
        result.verified.fetch_add(1, std::memory_order_relaxed);
      }
    }
    // A duplicated response still on its way would arrive before this one.
    const response last = c.request(get(sentinel_target));
    if (last.status != 200 || last.body != sentinel_body)
      result.fail(who + ": the response after the last batch is not the sentinel's");
  } catch (const std::exception& e) {
    result.fail(who + ": " + e.what());
  }
}

TEST(ResizeUnderLoad, EveryResponseArrivesWhileGroupsChange) {
  const hang_guard guard("ResizeUnderLoad", std::chrono::seconds(300));
  test_docroot docroot;
  std::vector<served_file> files = {
      {"/small.txt", 200, test_docroot::pattern(100, 1)},
      {"/page.html", 200, test_docroot::pattern(3000, 2)},
      {"/style.css", 200, test_docroot::pattern(12000, 3)},
      {"/data.json", 200, test_docroot::pattern(40000, 4)},
      {"/large.bin", 200, test_docroot::pattern(300u << 10, 5)},  // > cache_max_file_bytes
      {"/missing-1.txt", 404, ""},
      {"/nodir/missing-2.html", 404, ""},
  };
  for (const served_file& f : files) {
    if (f.status == 200) docroot.write(f.target.substr(1), f.body);
  }
  docroot.write(sentinel_target.substr(1), sentinel_body);
  // Weight the small cached files: repeat them in the table the clients pick from.
  for (int i = 0; i < 3; ++i) {
    for (std::size_t k = 0; k < 4; ++k) files.push_back(files[k]);
  }

  config cfg;
  cfg.root = docroot.root().string();
  cfg.listen = "127.0.0.1:0";
  ASSERT_GT(std::size_t{300u << 10}, cfg.cache_max_file_bytes);
  server srv(cfg);
  srv.start();

  runtime::pipeline& p = srv.pipeline();
  ASSERT_EQ(p.stage_count(), stage_count);
  runtime::group& cache_group = p.group_of(server::cache_lookup);
  ASSERT_NE(&cache_group, &p.group_of(server::read_parse)) << "expected separate groups";

  std::atomic<bool> clients_done{false};
  std::uint64_t resizes = 0, regroupings = 0;
  std::thread controller([&] {
    std::minstd_rand rng(42);
    bool fused = false;
    for (std::uint64_t round = 1; !clients_done.load(); ++round) {
      for (runtime::stage_index s = 0; s < stage_count; ++s) {
        p.group_of(s).resize(1 + rng() % 4);
        ++resizes;
      }
      if (round % 3 == 0) {
        if (fused) {
          p.assign(server::cache_lookup, cache_group);
        } else {
          p.assign(server::cache_lookup, p.group_of(server::read_parse));
        }
        fused = !fused;
        ++regroupings;
      }
      std::this_thread::sleep_for(2ms);  // pacing the controller, not synchronisation
    }
    p.assign(server::cache_lookup, cache_group);
  });

  run_result result;
  std::vector<std::thread> clients;
  for (int id = 0; id < client_count; ++id)
    clients.emplace_back(run_client, id, srv.port(), std::cref(files), std::ref(result));
  for (auto& t : clients) t.join();
  clients_done = true;
  controller.join();

  for (std::size_t i = 0; i < result.errors.size() && i < 10; ++i)
    ADD_FAILURE() << result.errors[i];
  EXPECT_EQ(result.verified.load(), std::uint64_t{client_count} * batches_per_client * batch_size);
  EXPECT_GT(regroupings, 2u) << "the controller barely ran during the load";
  RecordProperty("resizes", static_cast<int>(resizes));
  RecordProperty("regroupings", static_cast<int>(regroupings));

  // Split again and at rest: still serving.
  http_client c(srv.port());
  const response r = c.request(get("/page.html"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, files[1].body);
  c.close();
  EXPECT_TRUE(srv.stop(2s));
}

// The controllers' actuator (pipeline::regroup: new groups, retired ones drained behind a grace
// period) fuses and splits hundreds of times while eight clients pipeline: every response
// arrives once, complete and in order. The pool and grouping controllers run too.
TEST(ResizeUnderLoad, FusingAndSplittingHundredsOfTimesLosesNothing) {
  const hang_guard guard("FusingAndSplitting", std::chrono::seconds(300));
  test_docroot docroot;
  std::vector<served_file> files = {
      {"/small.txt", 200, test_docroot::pattern(100, 1)},
      {"/page.html", 200, test_docroot::pattern(3000, 2)},
      {"/data.json", 200, test_docroot::pattern(40000, 4)},
      {"/large.bin", 200, test_docroot::pattern(300u << 10, 5)},  // > cache_max_file_bytes
      {"/missing-1.txt", 404, ""},
  };
  for (const served_file& f : files) {
    if (f.status == 200) docroot.write(f.target.substr(1), f.body);
  }
  docroot.write(sentinel_target.substr(1), sentinel_body);

  config cfg;
  cfg.root = docroot.root().string();
  cfg.listen = "127.0.0.1:0";
  cfg.cache_revalidate = 0ms;  // every hit checks the disk: disk_io runs all the time
  server srv(cfg);
  srv.start();
  controllers::grouping_settings grouping;
  grouping.period = 10ms;
  grouping.cooldown = 0ms;
  controllers::pool_settings pool;
  pool.period = 5ms;
  controllers::control_loop loop(
      srv.pipeline(),
      {.pool = pool, .grouping = grouping, .flow = controllers::weir_flow(), .cores = 2});
  loop.start();

#ifdef WEIR_TEST_SANITIZED
  constexpr std::uint64_t target = 100;
#else
  constexpr std::uint64_t target = 400;
#endif
  std::atomic<bool> actuator_done{false};
  std::uint64_t regroups = 0;
  std::thread actuator([&] {
    // Pairs of neighbours in the flow; the hit path and the keep-alive loop included.
    const std::pair<const char*, const char*> pairs[] = {{"accept", "read_parse"},
                                                         {"read_parse", "cache_lookup"},
                                                         {"cache_lookup", "send"},
                                                         {"disk_io", "send"},
                                                         {"send", "read_parse"}};
    std::minstd_rand rng(7);
    while (regroups < target) {
      const auto& [a, b] = pairs[rng() % std::size(pairs)];
      // Either may be refused when the controller got there first ("already share a group").
      if (loop.fuse(a, b).empty()) ++regroups;
      if (loop.split(rng() % 2 ? a : b).empty()) ++regroups;
      std::this_thread::sleep_for(1ms);  // pacing, not synchronisation
    }
    actuator_done = true;
  });

  // Each client keeps pipelining (a new connection per round) until the actuator is done.
  run_result result;
  std::atomic<std::uint64_t> rounds{0};
  std::vector<std::thread> clients;
  for (int id = 0; id < client_count; ++id) {
    clients.emplace_back([&, id] {
      do {
        run_client(id, srv.port(), files, result);
        rounds.fetch_add(1);
      } while (!actuator_done.load() && !result.failed.load());
    });
  }
  for (auto& t : clients) t.join();
  actuator.join();
  loop.stop();

  for (std::size_t i = 0; i < result.errors.size() && i < 10; ++i)
    ADD_FAILURE() << result.errors[i];
  EXPECT_EQ(result.verified.load(), rounds.load() * batches_per_client * batch_size);
  EXPECT_GE(regroups, target);
  RecordProperty("regroups", static_cast<int>(regroups));
  std::printf("regroups under load: %llu\n", static_cast<unsigned long long>(regroups));
  EXPECT_TRUE(eventually(20s, [&] {
    srv.pipeline().reap();
    return srv.pipeline().retiring() == 0;
  }));
  http_client c(srv.port());
  EXPECT_EQ(c.request(get("/page.html")).body, files[1].body);
  c.close();
  EXPECT_TRUE(srv.stop(2s));
}

// A slow disk (injected latency) makes the pool controller grow disk_io, and it shrinks again
// once the disk is fast.
TEST(ResizeUnderLoad, ASlowDiskGrowsTheDiskPoolAndAFastOneShrinksIt) {
  const hang_guard guard("ASlowDisk", std::chrono::seconds(120));
  test_docroot docroot;
  const std::string body = test_docroot::pattern(500, 9);
  docroot.write("f.txt", body);
  config cfg;
  cfg.root = docroot.root().string();
  cfg.listen = "127.0.0.1:0";
  cfg.cache_max_bytes = 0;  // no cache: every request reads the disk
  cfg.cache_max_file_bytes = 0;
  server srv(cfg);
  srv.start();
  controllers::pool_settings pool;
  pool.shrink_after_blocking = 100ms;
  controllers::grouping_settings grouping;
  grouping.enabled = false;
  controllers::control_loop loop(srv.pipeline(), {.pool = pool, .grouping = grouping, .cores = 2});
  loop.start();
  runtime::pipeline& p = srv.pipeline();
  const std::size_t before = p.group_of(server::disk_io).threads();

  srv.set_fault_disk_latency(20ms);
  const auto fault_at = std::chrono::steady_clock::now();
  std::atomic<bool> stop{false};
  run_result result;
  std::vector<std::thread> clients;
  for (int id = 0; id < client_count; ++id) {
    clients.emplace_back([&, id] {
      try {
        http_client c(srv.port());
        while (!stop.load()) {
          const response r = c.request(get("/f.txt"));
          if (r.status != 200 || r.body != body) {
            result.fail("client " + std::to_string(id) + ": status " + std::to_string(r.status));
            return;
          }
          result.verified.fetch_add(1);
        }
      } catch (const std::exception& e) {
        result.fail(e.what());
      }
    });
  }
  const bool grew = eventually(
      20s, [&] { return p.group_of(server::disk_io).threads() > before; }, 1ms);
  const auto grew_after = std::chrono::steady_clock::now() - fault_at;
  EXPECT_TRUE(grew) << "disk_io never grew";
  // Eight clients each wait for one slow read: at least eight threads keep the queue empty.
  EXPECT_TRUE(
      eventually(20s, [&] { return p.group_of(server::disk_io).threads() >= client_count; }));
  const std::size_t peak = p.group_of(server::disk_io).threads();
  std::printf("disk_io grew from %zu threads %lld ms after the fault, to %zu\n", before,
              static_cast<long long>(
                  std::chrono::duration_cast<std::chrono::milliseconds>(grew_after).count()),
              peak);
  RecordProperty(
      "grew_after_ms",
      static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(grew_after).count()));

  srv.set_fault_disk_latency(0us);
  EXPECT_TRUE(eventually(20s, [&] { return p.group_of(server::disk_io).threads() < peak / 2; }))
      << "disk_io stayed at " << p.group_of(server::disk_io).threads() << " threads";
  stop = true;
  for (auto& t : clients) t.join();
  loop.stop();
  for (std::size_t i = 0; i < result.errors.size() && i < 10; ++i)
    ADD_FAILURE() << result.errors[i];
  EXPECT_GT(result.verified.load(), 0u);
  bool grow_logged = false;
  for (const auto& d : loop.recent())
    grow_logged = grow_logged || (d.group == "disk_io" && d.action == "grow" && d.applied);
  EXPECT_TRUE(grow_logged);
  EXPECT_TRUE(srv.stop(2s));
}

}  // namespace
}  // namespace weir::test
