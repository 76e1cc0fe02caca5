// SIGHUP as weir::service::reload runs it, with the file replaced by a config the test edits:
// a changed grouping regroups the running pipeline while clients keep asking, an invalid file
// changes nothing, and what needs a restart keeps its running value.

#include "service/service.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "controllers/control_loop.hpp"
#include "stages/server.hpp"
#include "tests/integration/http_client.hpp"
#include "tests/integration/test_docroot.hpp"

using namespace std::chrono_literals;

namespace weir::test {
namespace {

const std::string a_html = "<html><body>reload</body></html>\n";

class ServiceReload : public ::testing::Test {
 protected:
  void SetUp() override { docroot_.write("a.html", a_html); }
  void TearDown() override {
    if (svc_) svc_->stop(1s);
  }

  /// The controllers are off so that only the reload changes the topology.
  config base_config() const {
    config c;
    c.root = docroot_.root().string();
    c.listen = "127.0.0.1:0";
    c.metrics_enabled = false;
    c.admin_enabled = false;
    c.pool.enabled = false;
    c.grouping.enabled = false;
    return c;
  }

  void start(config c) {
    file_ = c;
    // As main's: the file read again and validated as a whole, or config_error.
    svc_ = std::make_unique<service>(c, [this] {
      validate(file_);
      return file_;
    });
    svc_->start();
    port_ = svc_->port();
  }

  runtime::group& group_of(server::stage s) { return svc_->http().pipeline().group_of(s); }

  hang_guard guard_{
      std::string("test ") + ::testing::UnitTest::GetInstance()->current_test_info()->name(),
      std::chrono::seconds(120)};
  test_docroot docroot_;
  config file_;
  std::unique_ptr<service> svc_;
  std::uint16_t port_ = 0;
};

/// Clients on keep-alive connections asking for a.html until stopped; every answer must be it.
class steady_clients {
 public:
  steady_clients(std::uint16_t port, int n) {
    for (int i = 0; i < n; ++i) {
      threads_.emplace_back([this, port] {
        try {
          http_client c(port);
          while (!stop_.load()) {
            const response r = c.request(get("/a.html"));
            if (r.status != 200 || r.body != a_html) ++failures_;
            ++served_;
          }
        } catch (const std::exception&) {
          ++failures_;
        }
      });
    }
  }
  ~steady_clients() { finish(); }
  void finish() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  int served() const { return served_.load(); }
  int failures() const { return failures_.load(); }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int> served_{0}, failures_{0};
  std::vector<std::thread> threads_;
};

TEST_F(ServiceReload, ChangedGroupingRegroupsWhileClientsKeepAsking) {
  start(base_config());
  runtime::group* const accept_before = &group_of(server::accept);
  ASSERT_NE(&group_of(server::read_parse), &group_of(server::cache_lookup));

  steady_clients clients(port_, 4);
  ASSERT_TRUE(eventually(10s, [&] { return clients.served() > 20; }));
  file_.stages[server::read_parse] = {"parse", 2, 2048};
  file_.stages[server::cache_lookup] = {"parse", 2, 2048};
  file_.stages[server::send].queue_capacity = 512;
  file_.keepalive_timeout = 20s;
  ASSERT_EQ(svc_->reload(), "");

  runtime::group& parse = group_of(server::read_parse);
  EXPECT_EQ(&parse, &group_of(server::cache_lookup));
  EXPECT_EQ(parse.name(), "parse");
  EXPECT_EQ(parse.threads(), 2u);
  EXPECT_EQ(parse.capacity(), 2048u);
  EXPECT_EQ(group_of(server::send).name(), "send");
  EXPECT_EQ(group_of(server::send).capacity(), 512u);
  EXPECT_EQ(&group_of(server::accept), accept_before) << "an unchanged group was remade";
  EXPECT_EQ(svc_->http().pipeline().groups().size(), 4u);
  EXPECT_EQ(svc_->running_config().keepalive_timeout, 20s);
  const int at_reload = clients.served();
  EXPECT_TRUE(eventually(10s, [&] { return clients.served() > at_reload + 20; }))
      << "no request served after the regroup";

  // And back to a group per stage, still under traffic.
  file_ = base_config();
  ASSERT_EQ(svc_->reload(), "");
  EXPECT_NE(&group_of(server::read_parse), &group_of(server::cache_lookup));
  EXPECT_EQ(group_of(server::read_parse).name(), "read_parse");
  EXPECT_EQ(group_of(server::cache_lookup).name(), "cache_lookup");
  EXPECT_EQ(group_of(server::send).capacity(), 4096u);
  const int at_second = clients.served();
  EXPECT_TRUE(eventually(10s, [&] { return clients.served() > at_second + 20; }));
  clients.finish();
  EXPECT_EQ(clients.failures(), 0);

  // Each regroup is in the decisions the admin API lists.
  int regroups = 0;
  for (const auto& d : svc_->decisions()) {
    if (d.controller == "admin" && d.action == "regroup" && d.why == "reload") ++regroups;
  }
  EXPECT_EQ(regroups, 5);     // parse, send; then read_parse, cache_lookup and send again
  std::uint64_t counted = 0;  // and counted, as weir_controller_actions_total shows them
  for (const auto& c : svc_->controllers().actions())
    if (c.controller == "admin" && c.action == "regroup") counted = c.count;
  EXPECT_EQ(counted, 5u);
}

// A file that fails validation changes nothing, not even the parts of it that were valid.
TEST_F(ServiceReload, InvalidFileChangesNothing) {
  start(base_config());
  runtime::group* const send_before = &group_of(server::send);
  file_.keepalive_timeout = 1s;                        // valid on its own
  file_.stages[server::send].queue_capacity = 256;     // valid on its own
  file_.stages[server::cache_lookup].group = "apart";  // send and cache_lookup, not disk_io between
  file_.stages[server::send].group = "apart";
  EXPECT_NE(svc_->reload(), "");
  const config now = svc_->running_config();
  EXPECT_EQ(now.keepalive_timeout, base_config().keepalive_timeout);
  EXPECT_EQ(now.stages, base_config().stages);
  EXPECT_EQ(&group_of(server::send), send_before);
  EXPECT_EQ(group_of(server::send).capacity(), 4096u);
  http_client c(port_);
  EXPECT_EQ(c.request(get("/a.html")).status, 200);
}

// What needs a restart keeps its running value (and is compared with it next time); what can
// change live does, in the same reload.
TEST_F(ServiceReload, RestartOnlySettingsKeepTheirRunningValue) {
  start(base_config());
  file_.listen = "127.0.0.1:1";
  file_.max_connections = 20'000;  // above the table's 10000 at start-up
  file_.max_header_bytes = 1024;
  file_.max_request_line = 512;
  ASSERT_EQ(svc_->reload(), "");
  const config now = svc_->running_config();
  EXPECT_EQ(now.listen, "127.0.0.1:0");
  EXPECT_EQ(now.max_connections, 10'000u);
  EXPECT_EQ(svc_->http().snapshot().connections_max, 10'000u);
  EXPECT_EQ(now.max_header_bytes, 1024u);
  http_client c(port_);
  EXPECT_EQ(c.request(get("/a.html", "X-Big: " + std::string(2000, 'x') + "\r\n")).status, 431);
}

}  // namespace
}  // namespace weir::test
