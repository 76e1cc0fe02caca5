#include "admin/topology.hpp"

#include <chrono>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace weir::admin {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

server_snapshot with_processed(std::uint64_t processed) {
  server_snapshot s;
  s.stages.push_back({.name = "read_parse", .group = "net", .processed = processed});
  s.groups.push_back({.name = "net", .threads = 1});
  return s;
}

struct window_seen {
  double window_s;
  double rate_per_s;
};

window_seen render(topology_window& w, std::uint64_t processed,
                   topology_window::clock::duration at) {
  const json t =
      json::parse(w.render(with_processed(processed), topology_window::clock::time_point(at)));
  return {t["window_s"].get<double>(), t["stages"][0]["rate_per_s"].get<double>()};
}

// processed = 100 per second of the fake clock throughout, so each rate is 100 whatever the
// window; which snapshot the window starts at shows in window_s.
TEST(TopologyWindow, StartsAtTheNewestSnapshotAtLeastTheMinimumOlder) {
  topology_window w(1s);
  EXPECT_EQ(render(w, 0, 0ms).window_s, 0.0);  // the first call has no window
  auto seen = render(w, 50, 500ms);            // none a second old yet: the oldest
  EXPECT_DOUBLE_EQ(seen.window_s, 0.5);
  EXPECT_DOUBLE_EQ(seen.rate_per_s, 100.0);
  EXPECT_DOUBLE_EQ(render(w, 100, 1000ms).window_s, 1.0);  // and 1000 ms is kept as the next start
  EXPECT_DOUBLE_EQ(render(w, 150, 1500ms).window_s, 1.5);
  seen = render(w, 200, 2000ms);  // the start moves to 1000 ms
  EXPECT_DOUBLE_EQ(seen.window_s, 1.0);
  EXPECT_DOUBLE_EQ(seen.rate_per_s, 100.0);
  EXPECT_DOUBLE_EQ(render(w, 210, 2100ms).window_s, 1.1);
  // A long quiet spell: the window is the time since the previous kept snapshot.
  seen = render(w, 1000, 10'000ms);
  EXPECT_DOUBLE_EQ(seen.window_s, 8.0);
  EXPECT_DOUBLE_EQ(seen.rate_per_s, 100.0);
  EXPECT_DOUBLE_EQ(render(w, 1100, 11'000ms).window_s, 1.0);
}

TEST(TopologyWindow, OneRequestASecondGetsOneSecondWindows) {
  topology_window w(1s);
  render(w, 0, 0s);
  for (int i = 1; i <= 5; ++i) {
    const auto seen = render(w, 100u * i, std::chrono::seconds(i));
    EXPECT_DOUBLE_EQ(seen.window_s, 1.0) << i;
    EXPECT_DOUBLE_EQ(seen.rate_per_s, 100.0) << i;
  }
}

TEST(TopologyJson, GroupsListTheirStagesFromTheStagesGroupField) {
  server_snapshot s;
  s.stages = {{.name = "accept", .group = "net"},
              {.name = "disk_io", .group = "disk"},
              {.name = "send", .group = "net"}};
  s.groups = {{.name = "net"}, {.name = "disk"}, {.name = "spare"}};
  const json t = json::parse(topology_json(s, nullptr, 0));
  EXPECT_EQ(t["groups"][0]["stages"], json({"accept", "send"}));
  EXPECT_EQ(t["groups"][1]["stages"], json({"disk_io"}));
  EXPECT_EQ(t["groups"][2]["stages"], json::array());
  EXPECT_EQ(t["stages"][1]["group"], "disk");
}

TEST(TopologyJson, RatesAndPercentilesComeFromTheDifference) {
  server_snapshot earlier, now;
  earlier.stages = {{.name = "send", .group = "net", .processed = 1000}};
  now.stages = {{.name = "send", .group = "net", .processed = 1500},
                {.name = "new", .group = "net", .processed = 20}};  // absent before: from 0
  earlier.stages[0].service.counts[6] = 1000;                       // 0.5..1 ms, before the window
  now.stages[0].service.counts[6] = 1000;
  now.stages[0].service.counts[9] = 100;  // 5..10 ms, in the window
  earlier.responses[0][0] = 10;
  now.responses[0][0] = 30;
  now.responses[1][6] = 5;
  earlier.cache = {.hits = 100, .misses = 100};
  now.cache = {.hits = 190, .misses = 110};

  const json t = json::parse(topology_json(now, &earlier, 2.0));
  EXPECT_EQ(t["window_s"], 2.0);
  const json& send = t["stages"][0];
  EXPECT_EQ(send["rate_per_s"], 250.0);
  EXPECT_EQ(send["service_p50_ms"], 7.5);  // the window's samples only, not the 1000 before
  EXPECT_TRUE(send["queue_wait_p50_ms"].is_null());
  EXPECT_EQ(t["stages"][1]["rate_per_s"], 10.0);
  EXPECT_EQ(t["requests_per_s"], 12.5);
  EXPECT_EQ(t["cache"]["hit_ratio"], 0.9);
  EXPECT_EQ(t["cache"]["hits"], 190);
}

TEST(TopologyJson, ACounterThatWentBackCountsFromZero) {
  server_snapshot earlier, now;
  earlier.stages = {{.name = "send", .group = "net", .processed = 1000}};
  now.stages = {{.name = "send", .group = "net", .processed = 10}};
  const json t = json::parse(topology_json(now, &earlier, 1.0));
  EXPECT_EQ(t["stages"][0]["rate_per_s"], 0.0);
}

TEST(TopologyJson, WithoutAWindowNothingIsRecent) {
  server_snapshot s;
  s.stages = {{.name = "send", .group = "net", .processed = 10}};
  s.stages[0].service.counts[3] = 5;
  s.cache = {.hits = 1, .misses = 1};
  const server_snapshot* none = nullptr;
  const server_snapshot* itself = &s;
  for (const server_snapshot* earlier : {none, itself}) {
    const json t = json::parse(topology_json(s, earlier, 0));
    EXPECT_EQ(t["window_s"], 0.0);
    EXPECT_EQ(t["stages"][0]["rate_per_s"], 0.0);
    EXPECT_TRUE(t["stages"][0]["service_p50_ms"].is_null());
    EXPECT_TRUE(t["cache"]["hit_ratio"].is_null());
    EXPECT_EQ(t["requests_per_s"], 0.0);
  }
}

}  // namespace
}  // namespace weir::admin
