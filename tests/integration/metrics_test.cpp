// The /metrics endpoint against real traffic: what a scrape reports must agree with what was sent.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "metrics/endpoint.hpp"
#include "runtime/config.hpp"
#include "runtime/version.hpp"
#include "stages/server.hpp"
#include "tests/integration/http_client.hpp"
#include "tests/integration/test_docroot.hpp"

namespace weir {
namespace {

using namespace std::chrono_literals;
using test::http_client;
using test::response;
using test::test_docroot;

std::string get(const std::string& path, const std::string& method = "GET") {
  return method + " " + path + " HTTP/1.1\r\nHost: t\r\n\r\n";
}

/// One scrape: every sample by its series key, `name{label="value",...}` with the labels sorted
/// by name (the exposition's own order is not part of the format).
class scrape {
 public:
  explicit scrape(const std::string& text) {
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') continue;
      const auto space = line.rfind(' ');
      if (space == std::string::npos) throw std::runtime_error("bad sample line: " + line);
      samples_[canonical(line.substr(0, space))] = std::stod(line.substr(space + 1));
    }
  }

  bool has(const std::string& series) const { return samples_.count(canonical(series)) > 0; }
  double operator[](const std::string& series) const {
    const auto it = samples_.find(canonical(series));
    if (it == samples_.end()) throw std::runtime_error("no series " + series);
    return it->second;
  }
  /// How many series of metric `name` there are.
  std::size_t count(const std::string& name) const {
    std::size_t n = 0;
    for (const auto& [key, value] : samples_) n += key == name || key.rfind(name + "{", 0) == 0;
    return n;
  }

 private:
  static std::string canonical(const std::string& series) {
    const auto brace = series.find('{');
    if (brace == std::string::npos) return series;
    std::map<std::string, std::string> labels;
    std::size_t i = brace + 1;
    while (i < series.size() && series[i] != '}') {
      const auto eq = series.find('=', i);
      const auto close = series.find('"', eq + 2);
      if (eq == std::string::npos || close == std::string::npos)
        throw std::runtime_error("bad labels: " + series);
      labels[series.substr(i, eq - i)] = series.substr(eq + 2, close - eq - 2);
      i = close + 1;
      if (i < series.size() && series[i] == ',') ++i;
    }
    std::string out = series.substr(0, brace) + "{";
    for (const auto& [k, v] : labels) out += k + "=\"" + v + "\",";
    out.back() = '}';
    return out;
  }

  std::map<std::string, double> samples_;
};

class MetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    docroot_.write("index.html", "<p>hello</p>\n");
    docroot_.write("a.txt", std::string(1000, 'a'));
    config cfg;
    cfg.root = docroot_.root().string();
    cfg.listen = "127.0.0.1:0";
    server_ = std::make_unique<server>(cfg);
    server_->start();
    endpoint_ = std::make_unique<metrics::endpoint>(
        "127.0.0.1:0", [this] { return server_->snapshot(); }, "9.9.9-test");
  }
  void TearDown() override {
    endpoint_.reset();
    server_->stop(1s);
  }

  scrape scrape_now() {
    http_client c(endpoint_->port());
    const response r = c.request("GET /metrics HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n");
    if (r.status != 200) throw std::runtime_error("scrape: " + std::to_string(r.status));
    return scrape(r.body);
  }

  /// Scrapes until `done` holds (the server counts a response just after its last byte left,
  /// so a client can see the response a moment before the counter moves).
  scrape scrape_until(const std::function<bool(const scrape&)>& done) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    for (;;) {
      scrape s = scrape_now();
      if (done(s) || std::chrono::steady_clock::now() > deadline) return s;
      std::this_thread::sleep_for(5ms);
    }
  }

  test_docroot docroot_;
  std::unique_ptr<server> server_;
  std::unique_ptr<metrics::endpoint> endpoint_;
};

const char* const stages[] = {"accept", "read_parse", "cache_lookup", "disk_io", "send"};

std::string stage_series(const std::string& name, const std::string& stage) {
  return name + "{stage=\"" + stage + "\"}";
}

TEST_F(MetricsTest, CountsAgreeWithTheTrafficSent) {
  const scrape before = scrape_now();
  const std::string ok_get = R"(weir_requests_total{method="GET",code="200",status_class="2xx"})";
  const std::string not_found =
      R"(weir_requests_total{method="GET",code="404",status_class="4xx"})";
  const std::string ok_head = R"(weir_requests_total{method="HEAD",code="200",status_class="2xx"})";
  const std::string post = R"(weir_requests_total{method="other",code="405",status_class="4xx"})";
  const std::string bad = R"(weir_requests_total{method="unknown",code="400",status_class="4xx"})";

  std::uint64_t body_bytes = 0;
  {
    http_client c(server_->port());
    for (int i = 0; i < 100; ++i) {
      const response r = c.request(get(i % 2 ? "/a.txt" : "/"));
      ASSERT_EQ(r.status, 200);
      body_bytes += r.body.size();
    }
    for (int i = 0; i < 10; ++i)
      ASSERT_EQ(c.request(get("/missing-" + std::to_string(i))).status, 404);
    for (int i = 0; i < 5; ++i) ASSERT_EQ(c.request(get("/a.txt", "HEAD"), true).status, 200);
  }
  for (int i = 0; i < 3; ++i) {
    http_client c(server_->port());
    ASSERT_EQ(c.request("POST /a.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n").status,
              405);
  }
  {
    http_client c(server_->port());
    ASSERT_EQ(c.request("GARBAGE\r\n\r\n").status, 400);
  }

  const std::string closed_done = R"(weir_connections_closed_total{reason="done"})";
  const std::string closed_client = R"(weir_connections_closed_total{reason="client"})";
  const auto closed = [&](const scrape& s) {
    return s[closed_done] - before[closed_done] + s[closed_client] - before[closed_client];
  };
  // Every client has hung up by now; the server sees it a moment later.
  const scrape after = scrape_until([&](const scrape& s) {
    return s[ok_get] - before[ok_get] >= 100 && s[not_found] - before[not_found] >= 10 &&
           s[ok_head] - before[ok_head] >= 5 && s[post] - before[post] >= 3 &&
           s[bad] - before[bad] >= 1 && closed(s) >= 5 && s["weir_requests_in_flight"] == 0;
  });
  EXPECT_EQ(after[ok_get] - before[ok_get], 100);
  EXPECT_EQ(after[not_found] - before[not_found], 10);
  EXPECT_EQ(after[ok_head] - before[ok_head], 5);
  EXPECT_EQ(after[post] - before[post], 3);
  EXPECT_EQ(after[bad] - before[bad], 1);
  EXPECT_EQ(after.count("weir_requests_total"), 64u);  // every method x code, zeros included

  constexpr double responses = 100 + 10 + 5 + 3 + 1;
  EXPECT_EQ(
      after["weir_request_duration_seconds_count"] - before["weir_request_duration_seconds_count"],
      responses);
  EXPECT_GT(after["weir_request_duration_seconds_sum"],
            before["weir_request_duration_seconds_sum"]);
  EXPECT_EQ(after[R"(weir_request_duration_seconds_bucket{le="+Inf"})"],
            after["weir_request_duration_seconds_count"]);
  EXPECT_GE(after["weir_sent_bytes_total"] - before["weir_sent_bytes_total"],
            static_cast<double>(body_bytes));
  EXPECT_EQ(after["weir_requests_in_flight"], 0);

  // Each stage saw the requests: cache_lookup exactly once per GET/HEAD (the 405s and the 400
  // are answered by read_parse); send at least once per response.
  const auto delta = [&](const std::string& series) { return after[series] - before[series]; };
  EXPECT_EQ(delta(stage_series("weir_stage_processed_total", "cache_lookup")), 115);
  EXPECT_GE(delta(stage_series("weir_stage_processed_total", "read_parse")), responses);
  EXPECT_GE(delta(stage_series("weir_stage_processed_total", "send")), responses);
  EXPECT_GE(delta(stage_series("weir_stage_processed_total", "disk_io")), 2);  // cold cache
  EXPECT_GE(delta(stage_series("weir_stage_processed_total", "accept")), 1);
  EXPECT_EQ(delta(stage_series("weir_stage_service_seconds_count", "cache_lookup")), 115);
  EXPECT_GE(delta(stage_series("weir_stage_queue_wait_seconds_count", "send")), responses);

  EXPECT_EQ(delta("weir_connections_accepted_total"), 5);
  EXPECT_EQ(closed(after), 5);
  EXPECT_EQ(after["weir_connections_open"], 0);
  EXPECT_GE(after["weir_cache_hits_total"] - before["weir_cache_hits_total"], 90);
  EXPECT_GE(after["weir_cache_misses_total"] - before["weir_cache_misses_total"], 2);
}

TEST_F(MetricsTest, EveryStageHasItsSeriesFromTheFirstScrape) {
  const scrape s = scrape_now();
  for (const char* stage : stages) {
    SCOPED_TRACE(stage);
    for (const char* name :
         {"weir_stage_queue_depth", "weir_stage_queue_capacity", "weir_stage_threads",
          "weir_stage_busy_threads", "weir_stage_processed_total",
          "weir_stage_queue_wait_seconds_count", "weir_stage_service_seconds_count"}) {
      EXPECT_TRUE(s.has(stage_series(name, stage))) << name;
    }
    for (const char* reason : {"queue_full", "admission", "timeout"}) {
      EXPECT_TRUE(s.has(std::string("weir_stage_rejected_total{stage=\"") + stage + "\",reason=\"" +
                        reason + "\"}"))
          << reason;
    }
    // Each stage runs in its own group by default, named after it.
    EXPECT_EQ(
        s[std::string("weir_stage_group_info{stage=\"") + stage + "\",group=\"" + stage + "\"}"],
        1);
    EXPECT_EQ(s[stage_series("weir_stage_threads", stage)],
              std::string(stage) == "disk_io" ? 2 : 1);
  }
  EXPECT_EQ(s[stage_series("weir_stage_queue_capacity", "send")], 4096);
  EXPECT_EQ(s[R"(weir_build_info{version="9.9.9-test"})"], 1);
  EXPECT_GT(s["process_resident_memory_bytes"], 0);
  EXPECT_GT(s["process_open_fds"], 0);
  EXPECT_EQ(s["weir_connections_max"], 10000);
}

TEST_F(MetricsTest, RegroupingShowsInTheGroupInfo) {
  // Fuse cache_lookup into read_parse's group, as a controller would.
  auto& pipe = server_->pipeline();
  pipe.assign(server::cache_lookup, pipe.group_of(server::read_parse));
  const scrape s = scrape_now();
  EXPECT_EQ(s[R"(weir_stage_group_info{stage="cache_lookup",group="read_parse"})"], 1);
  EXPECT_FALSE(s.has(R"(weir_stage_group_info{stage="cache_lookup",group="cache_lookup"})"));
  http_client c(server_->port());
  EXPECT_EQ(c.request(get("/a.txt")).status, 200);
}

}  // namespace
}  // namespace weir
