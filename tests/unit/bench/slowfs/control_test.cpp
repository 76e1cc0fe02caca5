#include "bench/slowfs/control.hpp"

#include <chrono>
#include <string>

#include <gtest/gtest.h>

namespace weir::slowfs {
namespace {

using namespace std::chrono_literals;

disk_settings some_settings() {
  disk_settings s;
  s.open_latency = 1ms;
  s.stat_latency = 2ms;
  s.read_latency = 3ms;
  s.queue = 7;
  return s;
}

TEST(ControlLine, LatencyMsSetsAllThreeAndQueue) {
  control_request r;
  ASSERT_EQ(parse_control("latency_ms=20 queue=4\n", some_settings(), r), "");
  EXPECT_EQ(r.settings.open_latency, 20ms);
  EXPECT_EQ(r.settings.stat_latency, 20ms);
  EXPECT_EQ(r.settings.read_latency, 20ms);
  EXPECT_EQ(r.settings.queue, 4u);
  EXPECT_FALSE(r.reset_counters);
}

TEST(ControlLine, LaterWordsWinAndOthersAreKept) {
  control_request r;
  ASSERT_EQ(parse_control("latency_ms=5 read_latency_ms=0.25", some_settings(), r), "");
  EXPECT_EQ(r.settings.open_latency, 5ms);
  EXPECT_EQ(r.settings.read_latency, 250us);
  EXPECT_EQ(r.settings.queue, 7u);  // not named: unchanged
}

TEST(ControlLine, ResetAlone) {
  control_request r;
  ASSERT_EQ(parse_control("reset", some_settings(), r), "");
  EXPECT_TRUE(r.reset_counters);
  EXPECT_EQ(r.settings, some_settings());
}

// Bad input: a one-line message naming the field and the accepted values, and nothing changed
// (not even the words before the bad one).
void expect_refused(const std::string& line, const std::string& names) {
  control_request r;
  r.settings.queue = 99;
  const std::string error = parse_control(line, some_settings(), r);
  EXPECT_NE(error.find(names), std::string::npos) << line << " -> " << error;
  EXPECT_EQ(error.find('\n'), std::string::npos) << error;
  EXPECT_EQ(r.settings.queue, 99u) << line;  // out untouched
}

TEST(ControlLine, BadInputIsRefusedWhole) {
  expect_refused("queue=4 latency_ms=abc", "latency_ms: want milliseconds 0..60000");
  expect_refused("latency_ms=-1", "latency_ms: want milliseconds 0..60000");
  expect_refused("latency_ms=60001", "latency_ms: want milliseconds 0..60000");
  expect_refused("latency_ms=1e3", "latency_ms: want milliseconds");
  expect_refused("latency_ms=nan", "latency_ms: want milliseconds");
  expect_refused("read_latency_ms=", "read_latency_ms: want milliseconds");
  expect_refused("queue=0",
                 "queue: want the number of operations served at a time, an integer 1..4096");
  expect_refused("queue=4097", "queue: want");
  expect_refused("queue=2.5", "queue: want");
  expect_refused("latency_ms=1 speed=3", "unknown key 'speed'");
  expect_refused("served=3", "unknown key 'served'");
  expect_refused("latency", "want key=value words or 'reset'");
  expect_refused("  \n", "empty line");
  expect_refused("latency_ms=1\nqueue=x\n", "queue: want");
}

TEST(ControlLine, StatusStartsWithALineTheParserTakesBack) {
  disk_settings s = some_settings();
  s.read_latency = 1500us;
  disk_counters c;
  c.served = 12;
  c.waiting = 3;
  c.max_waiting = 9;
  const std::string status = format_status(s, c);
  EXPECT_EQ(status.substr(0, status.find('\n')),
            "read_latency_ms=1.5 open_latency_ms=1 stat_latency_ms=2 queue=7");
  EXPECT_NE(status.find("\nserved=12\n"), std::string::npos);
  EXPECT_NE(status.find("\nwaiting=3\n"), std::string::npos);
  EXPECT_NE(status.find("\nmax_waiting=9\n"), std::string::npos);
  control_request r;
  ASSERT_EQ(parse_control(status.substr(0, status.find('\n')), disk_settings{}, r), "");
  EXPECT_EQ(r.settings, s);
}

TEST(ControlValue, CommandLineNamesTheOption) {
  std::chrono::nanoseconds ns = 7ms;
  EXPECT_EQ(parse_latency_ms("--latency-ms", "x", ns).rfind("--latency-ms: want", 0), 0u);
  EXPECT_EQ(ns, 7ms);
  unsigned q = 3;
  EXPECT_EQ(parse_queue("--queue", "-1", q).rfind("--queue: want", 0), 0u);
  EXPECT_EQ(q, 3u);
}

}  // namespace
}  // namespace weir::slowfs
