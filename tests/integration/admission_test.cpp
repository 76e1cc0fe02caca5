// Admission control end to end (weir::service: the server, the control loop, the real clock),
// with the disk made slow by the injected fault: misses over the target are refused with 503 +
// Retry-After on their kept connection while hits go on being served, and a step in miss load
// is followed by shedding and then by full admission again.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "service/service.hpp"
#include "stages/server.hpp"
#include "tests/integration/http_client.hpp"
#include "tests/integration/test_docroot.hpp"

using namespace std::chrono_literals;

namespace weir::test {
namespace {

constexpr int cold_files = 3000;
constexpr int fresh_files = 300;  // never asked for until the step is over
const std::string hot_body = "<html><body>hot</body></html>\n";
constexpr auto miss_index = static_cast<std::size_t>(runtime::admission_class::miss);
constexpr auto request_index = static_cast<std::size_t>(runtime::admission_class::request);

std::uint64_t shed_of(const server_snapshot& s, shed_class k, shed_reason r) {
  return s.shed[static_cast<std::size_t>(k)][static_cast<std::size_t>(r)];
}

class Admission : public ::testing::Test {
 protected:
  void SetUp() override {
    docroot_.write("hot.html", hot_body);
    for (int i = 0; i < cold_files; ++i)
      docroot_.write("cold/" + std::to_string(i) + ".txt", "cold " + std::to_string(i) + "\n");
    for (int i = 0; i < fresh_files; ++i)
      docroot_.write("fresh/" + std::to_string(i) + ".txt", "x");
  }
  void TearDown() override {
    stop_clients();
    if (svc_) svc_->stop(2s);
  }

  /// Pools and grouping fixed (disk_io: `disk_threads`), so that only admission control acts;
  /// windows of `period` against a 200 ms target (far above what a hit takes, even under a
  /// sanitizer on a loaded machine).
  config base_config(std::size_t disk_threads, std::chrono::milliseconds period) const {
    config c;
    c.root = docroot_.root().string();
    c.listen = "127.0.0.1:0";
    c.metrics_enabled = false;
    c.admin_enabled = false;
    c.pool.enabled = false;
    c.grouping.enabled = false;
    c.stages[server::disk_io].threads = disk_threads;
    c.admission.period = period;
    c.admission.target = 200ms;
    c.admission.min_samples = 3;
    return c;
  }

  void start(const config& c) {
    svc_ = std::make_unique<service>(c, nullptr);
    svc_->start();
    port_ = svc_->port();
  }

  server_snapshot snap() { return svc_->http().snapshot(); }

  /// `n` clients, each on one keep-alive connection, asking for cold files (each a first
  /// touch: a miss) until stopped. A 503 must carry Retry-After and keep the connection; the
  /// client then waits 10 ms, as a client honouring it briefly would.
  void miss_clients(int n) {
    for (int i = 0; i < n; ++i) {
      clients_.emplace_back([this, i, n] {
        try {
          http_client c(port_);
          for (int k = i; !stop_.load() && k < cold_files; k += n) {
            const response r = c.request(get("/cold/" + std::to_string(k) + ".txt"));
            if (r.status == 200) {
              if (r.body != "cold " + std::to_string(k) + "\n") ++bad_;
              ++miss_ok_;
            } else if (r.status == 503 && !r.header("Retry-After").empty() &&
                       !r.connection_has("close")) {
              ++miss_503_;
              std::this_thread::sleep_for(10ms);
            } else {
              ++bad_;
            }
          }
        } catch (const std::exception&) {
          ++bad_;
        }
      });
    }
  }

  void hit_clients(int n) {
    for (int i = 0; i < n; ++i) {
      clients_.emplace_back([this] {
        try {
          http_client c(port_);
          while (!stop_.load()) {
            const response r = c.request(get("/hot.html"));
            if (r.status == 200 && r.body == hot_body) {
              ++hit_ok_;
            } else {
              ++hit_bad_;
            }
          }
        } catch (const std::exception&) {
          ++hit_bad_;
        }
      });
    }
  }

  void stop_clients() {
    stop_ = true;
    for (auto& t : clients_) t.join();
    clients_.clear();
    stop_ = false;
  }

  hang_guard guard_{
      std::string("test ") + ::testing::UnitTest::GetInstance()->current_test_info()->name(),
      std::chrono::seconds(240)};
  test_docroot docroot_;
  std::unique_ptr<service> svc_;
  std::uint16_t port_ = 0;
  std::vector<std::thread> clients_;
  std::atomic<bool> stop_{false};
  std::atomic<int> miss_ok_{0}, miss_503_{0}, hit_ok_{0}, hit_bad_{0}, bad_{0};
};

// Every miss takes at least 400 ms against a 200 ms target: the miss limit falls and the excess
// misses are refused, while hits (their own budget, never sent to the disk) are all served.
TEST_F(Admission, ASlowDiskShedsMissesNotHits) {
  start(base_config(8, 400ms));
  {
    http_client warm(port_);
    ASSERT_EQ(warm.request(get("/hot.html")).status, 200);  // cached before the disk slows
  }
  svc_->set_fault_disk_latency(400ms);
  hit_clients(2);
  miss_clients(16);
  EXPECT_TRUE(eventually(
      60s,
      [&] { return miss_503_.load() >= 20 && hit_ok_.load() >= 200 && miss_ok_.load() >= 10; }))
      << "misses 503 " << miss_503_ << ", misses 200 " << miss_ok_ << ", hits " << hit_ok_;
  const int seen_503 = miss_503_.load();  // each counted by the server before it was sent
  const server_snapshot during = snap();
  stop_clients();

  EXPECT_EQ(bad_.load(), 0);
  EXPECT_EQ(hit_bad_.load(), 0) << "a hit was refused or failed";
  EXPECT_GE(shed_of(during, shed_class::miss, shed_reason::limit),
            static_cast<std::uint64_t>(seen_503));
  EXPECT_EQ(shed_of(during, shed_class::request, shed_reason::limit), 0u);
  EXPECT_EQ(shed_of(during, shed_class::miss, shed_reason::queue_full), 0u);
  EXPECT_LT(during.admission.classes[miss_index].limit, 16u);
  EXPECT_EQ(during.admission.classes[request_index].limit, config{}.admission.max_limit);
  EXPECT_GT(during.shed_kept_alive, 0u);
  // Rejected requests are not latency samples: the misses recorded are the ones admitted (and
  // all answered, once the last response's bookkeeping is done).
  EXPECT_TRUE(eventually(10s, [&] {
    const server_snapshot after = snap();
    return after.admission.classes[miss_index].completed ==
               after.admission.classes[miss_index].admitted &&
           after.admission.classes[miss_index].in_flight == 0;
  }));
  // The warming request for hot.html was a miss too.
  EXPECT_EQ(snap().admission.classes[miss_index].completed,
            static_cast<std::uint64_t>(miss_ok_.load()) + 1);
}

// A step: one client's misses (20 ms each, under the 200 ms target) are all admitted; 32
// clients queue on two disk threads (about 320 ms each), go over the target and are shed; back
// to one client, it is admitted again.
TEST_F(Admission, AStepInMissLoadIsShedAndThenAdmittedAgain) {
  start(base_config(2, 200ms));
  svc_->set_fault_disk_latency(20ms);
  {
    http_client c(port_);
    for (int k = 0; k < 30; ++k) {
      const response r = c.request(get("/cold/" + std::to_string(cold_files - 1 - k) + ".txt"));
      EXPECT_EQ(r.status, 200) << "below the target nothing is refused";
    }
  }
  EXPECT_EQ(shed_of(snap(), shed_class::miss, shed_reason::limit), 0u);

  miss_clients(32);
  EXPECT_TRUE(eventually(60s, [&] { return miss_503_.load() >= 50; }))
      << "no shedding under the step: 503 " << miss_503_ << ", 200 " << miss_ok_;
  stop_clients();
  EXPECT_EQ(bad_.load(), 0);

  // After the step: one client again, on files never asked for (misses), eventually served 10
  // in a row.
  http_client c(port_);
  int k = 0, in_a_row = 0;
  EXPECT_TRUE(eventually(30s, [&] {
    if (k >= fresh_files) return false;
    const response r = c.request(get("/fresh/" + std::to_string(k++) + ".txt"));
    in_a_row = r.status == 200 ? in_a_row + 1 : 0;
    return in_a_row >= 10;
  })) << "still refused after the step";
}

// At the request limit weir stops accepting: new connections wait in the kernel's listen queue,
// not in weir's queues (where each would cost an accept, a read and a refusal), and are taken,
// and answered, as soon as the admitted requests end. No controller here: the limit is set by
// hand, and two responses that their clients do not read hold both places.
TEST(AdmissionAccept, AtTheLimitNewConnectionsWaitInTheListenQueueUntilRoomFrees) {
  hang_guard guard("test AtTheLimitNewConnectionsWaitInTheListenQueueUntilRoomFrees", 120s);
  test_docroot docroot;
  const std::string big(1u << 20, 'b');  // far more than the socket buffers hold
  docroot.write("big.bin", big);
  docroot.write("small.txt", "small\n");
  config c;
  c.root = docroot.root().string();
  c.listen = "127.0.0.1:0";
  c.metrics_enabled = true;  // queue timing on, as in production
  c.admin_enabled = false;
  c.cache_max_file_bytes = 2u << 20;  // big.bin is a cache hit once read: it holds a request place
  c.cache_max_bytes = 64u << 20;
  server srv(c);
  srv.start();
  {
    http_client warm(srv.port());
    ASSERT_EQ(warm.request(get("/big.bin")).body.size(), big.size());
  }
  srv.admission().set_limit(runtime::admission_class::request, 2);
  // Far above what a small hit takes, even under a sanitizer; below the five's wait (at least
  // 250 ms of failed reads below).
  srv.admission().set_target_ns(200'000'000);

  // Two cache hits admitted whose responses stall: their clients read nothing yet.
  std::vector<http_client> holders;
  for (int i = 0; i < 2; ++i) {
    holders.emplace_back(srv.port(), http_client::options{.receive_buffer = 4096});
    holders.back().send(get("/big.bin"));
  }
  ASSERT_TRUE(eventually(
      10s, [&] { return srv.admission().in_flight(runtime::admission_class::request) == 2; }))
      << srv.admission().in_flight(runtime::admission_class::request) << " in flight, "
      << srv.snapshot().connections_accepted << " accepted, cache hits "
      << srv.snapshot().cache.hits;
  const std::uint64_t accepted = srv.snapshot().connections_accepted;
  ASSERT_EQ(accepted, 3u);

  // Five more connect (the kernel completes the handshake) and send their request.
  std::vector<http_client> waiting;
  for (int i = 0; i < 5; ++i) {
    waiting.emplace_back(srv.port());
    waiting.back().send(get("/small.txt"));
  }
  ASSERT_TRUE(eventually(10s, [&] { return srv.snapshot().admission.accept_pauses >= 1; }));
  // Paused: none of them was taken in, so none was refused either.
  EXPECT_EQ(srv.snapshot().connections_accepted, accepted);
  for (auto& w : waiting) {
    w.set_timeout(50ms);
    response r;
    EXPECT_EQ(w.try_read_response(r), read_status::timeout);
    w.set_timeout(http_client::default_timeout);
  }

  // The holders read their responses: both places free, accepting resumes, all five answered.
  for (auto& h : holders) {
    const response r = h.read_response();
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body.size(), big.size());
  }
  for (auto& w : waiting) {
    const response r = w.read_response();
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "small\n");
  }
  // Their latency counts from their bytes' arrival (the kernel's receive timestamp), so their
  // wait in the listen queue is in it: each of the five took longer than the target (without
  // it at most the two holders would). Counted just after each response is sent: wait for all
  // eight, the warm-up's (a miss) included.
  const auto request = static_cast<std::size_t>(runtime::admission_class::request);
  const auto miss = static_cast<std::size_t>(runtime::admission_class::miss);
  ASSERT_TRUE(eventually(10s, [&] {
    const runtime::admission_snapshot a = srv.snapshot().admission;
    return a.classes[request].completed + a.classes[miss].completed == 8;
  }));
  EXPECT_GE(srv.snapshot().admission.classes[request].over_target, 5u);
  const server_snapshot s = srv.snapshot();
  EXPECT_EQ(s.connections_accepted, accepted + 5);
  std::uint64_t shed = 0;
  for (const auto& k : s.shed)
    for (const auto v : k) shed += v;
  EXPECT_EQ(shed, 0u);
  srv.stop(2s);
}

}  // namespace
}  // namespace weir::test
