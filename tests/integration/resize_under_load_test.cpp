// Regrouping and resizing stage pools while traffic flows must lose, duplicate and reorder
// nothing: eight keep-alive clients pipeline batches of requests and check every response byte
// while a controller thread resizes every group and fuses/splits read_parse + cache_lookup.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

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

  void fail(std::string what) {
    std::lock_guard lock(mutex);
    errors.push_back(std::move(what));
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

}  // namespace
}  // namespace weir::test
