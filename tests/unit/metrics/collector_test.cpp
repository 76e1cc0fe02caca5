#include "metrics/collector.hpp"

#include <prometheus/text_serializer.h>

#include <algorithm>
#include <cstddef>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace weir::metrics {
namespace {

using prometheus::MetricFamily;
using prometheus::MetricType;

// Every field distinct, so a value read from the wrong field shows.
server_snapshot sample_snapshot() {
  server_snapshot s;
  const char* names[] = {"accept", "read_parse", "send"};
  const char* groups[] = {"acceptor", "io", "net"};
  for (std::size_t i = 0; i < 3; ++i) {
    runtime::stage_snapshot st;
    st.name = names[i];
    st.group = groups[i];
    st.queue_depth = 100 * i + 1;
    st.queue_capacity = 100 * i + 2;
    st.threads = 100 * i + 3;
    st.busy_threads = 100 * i + 4;
    st.processed = 100 * i + 5;
    st.rejected = {100 * i + 6, 100 * i + 7, 100 * i + 8};
    st.queue_wait.counts[0] = 100 * i + 9;
    st.queue_wait.sum_ns = 1'000 * (i + 1);
    s.stages.push_back(st);
  }
  s.stages[2].processed = 42;
  // send's service time: 1 at <= 10 us, 2 at <= 100 us, 3 at <= 1 s, 4 beyond 10 s.
  s.stages[2].service.counts[0] = 1;
  s.stages[2].service.counts[3] = 2;
  s.stages[2].service.counts[15] = 3;
  s.stages[2].service.counts[19] = 4;
  s.stages[2].service.sum_ns = 45'000'250'000;

  s.groups.push_back({.name = "acceptor", .threads = 14, .wakeups = 11});
  s.groups.push_back({.name = "io", .threads = 15, .wakeups = 12});
  s.groups.push_back({.name = "net", .threads = 16, .wakeups = 13});
  s.controller_actions = {{"pool", "grow", 17}, {"grouping", "fuse", 18}};

  std::uint64_t v = 1000;
  for (auto& by_status : s.responses) {
    for (auto& n : by_status) n = v++;
  }
  s.responses[static_cast<std::size_t>(method_label::get)][status_index(404)] = 7;
  s.request_duration.counts[6] = 5;  // <= 1 ms
  s.request_duration.counts[7] = 6;  // <= 2.5 ms
  s.request_duration.sum_ns = 12'000'000;
  s.sent_bytes = 123'456;
  s.requests_in_flight = 17;
  s.connections_open = 18;
  s.connections_max = 1024;
  s.connections_accepted = 19;
  s.connections_closed = {21, 22, 23, 24, 25, 26};
  s.accept_backoffs = 27;
  s.shed[static_cast<std::size_t>(shed_class::miss)]
        [static_cast<std::size_t>(shed_reason::queue_full)] = 41;
  s.shed[static_cast<std::size_t>(shed_class::request)]
        [static_cast<std::size_t>(shed_reason::fault)] = 42;
  s.shed_kept_alive = 43;
  s.admission.target_ns = 100'000'000;
  s.admission.classes[0].limit = 250;
  s.admission.classes[0].in_flight = 44;
  s.admission.classes[0].admitted = 45;
  s.admission.classes[0].over_target = 46;
  s.admission.classes[0].latency.counts[6] = 3;  // <= 1 ms
  s.admission.classes[1].limit = runtime::admission_gate::unlimited;
  s.cache = {.hits = 31,
             .misses = 32,
             .insertions = 33,
             .evictions = 34,
             .bytes = 35,
             .entries = 36,
             .capacity_bytes = 37};
  return s;
}

std::string expose(const std::vector<MetricFamily>& families) {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return out.str();
}

bool has_line(const std::string& text, const std::string& line) {
  return ("\n" + text).find("\n" + line + "\n") != std::string::npos;
}

std::vector<std::string> lines_starting_with(const std::string& text, const std::string& prefix) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(prefix, 0) == 0) out.push_back(line);
  }
  return out;
}

const MetricFamily* find_family(const std::vector<MetricFamily>& fs, const std::string& name) {
  const auto it = std::find_if(fs.begin(), fs.end(), [&](const auto& f) { return f.name == name; });
  return it == fs.end() ? nullptr : &*it;
}

class CollectorTest : public ::testing::Test {
 protected:
  std::vector<MetricFamily> families = collect(sample_snapshot(), "1.2.3");
  std::string text = expose(families);

  void expect_line(const std::string& line) const {
    EXPECT_TRUE(has_line(text, line)) << "missing line: " << line;
  }
};

TEST_F(CollectorTest, StageSeriesCarryTheStageLabelInSnapshotOrder) {
  expect_line("weir_stage_processed_total{stage=\"send\"} 42");
  expect_line("weir_stage_processed_total{stage=\"read_parse\"} 105");
  expect_line("weir_stage_queue_depth{stage=\"read_parse\"} 101");
  expect_line("weir_stage_queue_capacity{stage=\"read_parse\"} 102");
  expect_line("weir_stage_threads{stage=\"read_parse\"} 103");
  expect_line("weir_stage_busy_threads{stage=\"read_parse\"} 104");
  EXPECT_EQ(lines_starting_with(text, "weir_stage_processed_total{"),
            (std::vector<std::string>{"weir_stage_processed_total{stage=\"accept\"} 5",
                                      "weir_stage_processed_total{stage=\"read_parse\"} 105",
                                      "weir_stage_processed_total{stage=\"send\"} 42"}));
}

TEST_F(CollectorTest, RejectedHasEveryReasonForEveryStage) {
  expect_line("weir_stage_rejected_total{reason=\"queue_full\",stage=\"send\"} 206");
  expect_line("weir_stage_rejected_total{reason=\"admission\",stage=\"send\"} 207");
  expect_line("weir_stage_rejected_total{reason=\"timeout\",stage=\"accept\"} 8");
  const auto* f = find_family(families, "weir_stage_rejected_total");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->metric.size(), 3 * runtime::reject_reasons);
}

TEST_F(CollectorTest, GroupInfoAndWakeups) {
  expect_line("weir_stage_group_info{group=\"io\",stage=\"read_parse\"} 1");
  expect_line("weir_stage_group_info{group=\"net\",stage=\"send\"} 1");
  expect_line("weir_group_wakeups_total{group=\"net\"} 13");
  EXPECT_EQ(lines_starting_with(text, "weir_group_wakeups_total{").size(), 3u);
}

TEST_F(CollectorTest, HistogramBucketsAreCumulativeAndInSeconds) {
  EXPECT_EQ(lines_starting_with(text, "weir_stage_service_seconds_bucket{stage=\"send\""),
            (std::vector<std::string>{
                "weir_stage_service_seconds_bucket{stage=\"send\",le=\"1e-05\"} 1",
                "weir_stage_service_seconds_bucket{stage=\"send\",le=\"2.5e-05\"} 1",
                "weir_stage_service_seconds_bucket{stage=\"send\",le=\"5e-05\"} 1",
                "weir_stage_service_seconds_bucket{stage=\"send\",le=\"0.0001\"} 3",
                "weir_stage_service_seconds_bucket{stage=\"send\",le=\"0.00025\"} 3",
                "weir_stage_service_seconds_bucket{stage=\"send\",le=\"0.0005\"} 3",
                "weir_stage_service_seconds_bucket{stage=\"send\",le=\"0.001\"} 3",
                "weir_stage_service_seconds_bucket{stage=\"send\",le=\"0.0025\"} 3",
                "weir_stage_service_seconds_bucket{stage=\"send\",le=\"0.005\"} 3",
                "weir_stage_service_seconds_bucket{stage=\"send\",le=\"0.01\"} 3",
                "weir_stage_service_seconds_bucket{stage=\"send\",le=\"0.025\"} 3",
                "weir_stage_service_seconds_bucket{stage=\"send\",le=\"0.05\"} 3",
                "weir_stage_service_seconds_bucket{stage=\"send\",le=\"0.1\"} 3",
                "weir_stage_service_seconds_bucket{stage=\"send\",le=\"0.25\"} 3",
                "weir_stage_service_seconds_bucket{stage=\"send\",le=\"0.5\"} 3",
                "weir_stage_service_seconds_bucket{stage=\"send\",le=\"1\"} 6",
                "weir_stage_service_seconds_bucket{stage=\"send\",le=\"2.5\"} 6",
                "weir_stage_service_seconds_bucket{stage=\"send\",le=\"5\"} 6",
                "weir_stage_service_seconds_bucket{stage=\"send\",le=\"10\"} 6",
                "weir_stage_service_seconds_bucket{stage=\"send\",le=\"+Inf\"} 10",
            }));
  expect_line("weir_stage_service_seconds_count{stage=\"send\"} 10");
  expect_line("weir_stage_service_seconds_sum{stage=\"send\"} 45.00025");
  expect_line("weir_stage_queue_wait_seconds_bucket{stage=\"read_parse\",le=\"1e-05\"} 109");
  expect_line("weir_stage_queue_wait_seconds_sum{stage=\"read_parse\"} 2e-06");
  expect_line("weir_request_duration_seconds_bucket{le=\"0.0005\"} 0");
  expect_line("weir_request_duration_seconds_bucket{le=\"0.001\"} 5");
  expect_line("weir_request_duration_seconds_bucket{le=\"0.0025\"} 11");
  expect_line("weir_request_duration_seconds_bucket{le=\"+Inf\"} 11");
  expect_line("weir_request_duration_seconds_count 11");
  expect_line("weir_request_duration_seconds_sum 0.012");
}

TEST_F(CollectorTest, RequestsHaveEveryMethodAndStatus) {
  expect_line("weir_requests_total{code=\"404\",method=\"GET\",status_class=\"4xx\"} 7");
  // responses[m][i] = 1000 + 16 * m + i, but for GET 404.
  expect_line("weir_requests_total{code=\"200\",method=\"GET\",status_class=\"2xx\"} 1000");
  expect_line("weir_requests_total{code=\"304\",method=\"HEAD\",status_class=\"3xx\"} 1019");
  expect_line("weir_requests_total{code=\"501\",method=\"other\",status_class=\"5xx\"} 1045");
  expect_line("weir_requests_total{code=\"505\",method=\"unknown\",status_class=\"5xx\"} 1063");
  const auto* f = find_family(families, "weir_requests_total");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->metric.size(), 64u);
}

TEST_F(CollectorTest, ServerConnectionCacheAndBuildSeries) {
  expect_line("weir_sent_bytes_total 123456");
  expect_line("weir_requests_in_flight 17");
  expect_line("weir_connections_open 18");
  expect_line("weir_connections_max 1024");
  expect_line("weir_connections_accepted_total 19");
  expect_line("weir_connections_closed_total{reason=\"client\"} 21");
  expect_line("weir_connections_closed_total{reason=\"overload\"} 25");
  expect_line("weir_connections_closed_total{reason=\"shutdown\"} 26");
  EXPECT_EQ(lines_starting_with(text, "weir_connections_closed_total{").size(), close_reason_count);
  expect_line("weir_accept_backoffs_total 27");
  expect_line("weir_shed_total{class=\"miss\",reason=\"queue_full\"} 41");
  expect_line("weir_shed_total{class=\"request\",reason=\"fault\"} 42");
  expect_line("weir_shed_total{class=\"connection\",reason=\"queue_full\"} 0");
  EXPECT_EQ(lines_starting_with(text, "weir_shed_total{").size(),
            shed_class_count * shed_reason_count);
  expect_line("weir_shed_kept_alive_total 43");
  expect_line("weir_admission_limit{class=\"request\"} 250");
  expect_line("weir_admission_limit{class=\"miss\"} +Inf");
  expect_line("weir_admission_in_flight{class=\"request\"} 44");
  expect_line("weir_admission_admitted_total{class=\"request\"} 45");
  expect_line("weir_admission_over_target_total{class=\"request\"} 46");
  expect_line("weir_admitted_request_duration_seconds_bucket{class=\"request\",le=\"0.001\"} 3");
  expect_line("weir_admitted_request_duration_seconds_count{class=\"miss\"} 0");
  expect_line("weir_admission_target_seconds 0.1");
  expect_line("weir_cache_hits_total 31");
  expect_line("weir_cache_misses_total 32");
  expect_line("weir_cache_insertions_total 33");
  expect_line("weir_cache_evictions_total 34");
  expect_line("weir_cache_bytes 35");
  expect_line("weir_cache_entries 36");
  expect_line("weir_cache_capacity_bytes 37");
  expect_line("weir_build_info{version=\"1.2.3\"} 1");
  expect_line("weir_group_threads{group=\"io\"} 15");
  expect_line("weir_controller_actions_total{action=\"grow\",controller=\"pool\"} 17");
  expect_line("weir_controller_actions_total{action=\"fuse\",controller=\"grouping\"} 18");
  expect_line("# TYPE weir_stage_service_seconds histogram");
  expect_line("# TYPE weir_cache_bytes gauge");
  expect_line("# TYPE weir_cache_hits_total counter");
}

// Names, types and series counts, checked on the families themselves.
TEST_F(CollectorTest, EveryFamilyIsNamedTypedAndDocumented) {
  const std::map<std::string, MetricType> expected = {
      {"weir_stage_queue_depth", MetricType::Gauge},
      {"weir_stage_queue_capacity", MetricType::Gauge},
      {"weir_stage_threads", MetricType::Gauge},
      {"weir_stage_busy_threads", MetricType::Gauge},
      {"weir_stage_processed_total", MetricType::Counter},
      {"weir_stage_rejected_total", MetricType::Counter},
      {"weir_stage_queue_wait_seconds", MetricType::Histogram},
      {"weir_stage_service_seconds", MetricType::Histogram},
      {"weir_stage_group_info", MetricType::Gauge},
      {"weir_group_wakeups_total", MetricType::Counter},
      {"weir_group_threads", MetricType::Gauge},
      {"weir_controller_actions_total", MetricType::Counter},
      {"weir_requests_total", MetricType::Counter},
      {"weir_request_duration_seconds", MetricType::Histogram},
      {"weir_sent_bytes_total", MetricType::Counter},
      {"weir_requests_in_flight", MetricType::Gauge},
      {"weir_connections_open", MetricType::Gauge},
      {"weir_connections_max", MetricType::Gauge},
      {"weir_connections_accepted_total", MetricType::Counter},
      {"weir_connections_closed_total", MetricType::Counter},
      {"weir_accept_backoffs_total", MetricType::Counter},
      {"weir_shed_total", MetricType::Counter},
      {"weir_shed_kept_alive_total", MetricType::Counter},
      {"weir_admission_limit", MetricType::Gauge},
      {"weir_admission_in_flight", MetricType::Gauge},
      {"weir_admission_admitted_total", MetricType::Counter},
      {"weir_admission_over_target_total", MetricType::Counter},
      {"weir_admitted_request_duration_seconds", MetricType::Histogram},
      {"weir_admission_target_seconds", MetricType::Gauge},
      {"weir_cache_hits_total", MetricType::Counter},
      {"weir_cache_misses_total", MetricType::Counter},
      {"weir_cache_insertions_total", MetricType::Counter},
      {"weir_cache_evictions_total", MetricType::Counter},
      {"weir_cache_bytes", MetricType::Gauge},
      {"weir_cache_entries", MetricType::Gauge},
      {"weir_cache_capacity_bytes", MetricType::Gauge},
      {"weir_build_info", MetricType::Gauge},
      {"weir_accept_pauses_total", MetricType::Counter},
      {"weir_listen_backlog", MetricType::Gauge},
      {"weir_syn_gate_share", MetricType::Gauge},
      {"weir_syn_gate_closes_total", MetricType::Counter},
  };
  std::map<std::string, MetricType> got;
  for (const auto& f : families) {
    EXPECT_TRUE(got.emplace(f.name, f.type).second) << "duplicate family " << f.name;
    EXPECT_EQ(f.name.rfind("weir_", 0), 0u) << f.name;
    EXPECT_EQ(f.name.ends_with("_total"), f.type == MetricType::Counter) << f.name;
    EXPECT_FALSE(f.help.empty()) << f.name;
    EXPECT_EQ(f.help.find('\n'), std::string::npos) << f.name;
    EXPECT_FALSE(f.metric.empty()) << f.name;

    std::set<std::vector<prometheus::ClientMetric::Label>> label_sets;
    for (const auto& m : f.metric) {
      EXPECT_TRUE(std::is_sorted(m.label.begin(), m.label.end(), [](const auto& a, const auto& b) {
        return a.name < b.name;
      })) << f.name;
      EXPECT_TRUE(label_sets.insert(m.label).second) << "duplicate series in " << f.name;
      if (f.type == MetricType::Histogram) {
        ASSERT_EQ(m.histogram.bucket.size(), runtime::latency_buckets) << f.name;
        EXPECT_EQ(m.histogram.bucket.back().cumulative_count, m.histogram.sample_count) << f.name;
      }
    }
    const bool per_stage = f.name.rfind("weir_stage_", 0) == 0;
    if (per_stage && f.name != "weir_stage_rejected_total") {
      EXPECT_EQ(f.metric.size(), 3u) << f.name;
    }
  }
  EXPECT_EQ(got, expected);
}

// A server that has done nothing yet still shows every series, at 0.
TEST(Collector, EverySeriesExistsAtZero) {
  server_snapshot s;
  s.stages.push_back({.name = "send", .group = "net"});
  s.groups.push_back({.name = "net"});
  const auto families = collect(s, "0.1.0");
  std::size_t series = 0;
  for (const auto& f : families) series += f.metric.size();
  // 8 per-stage families of one series and rejected (3 reasons), 2 per group, 64 requests,
  // 6 close reasons, 12 sheds (3 classes x 4 reasons), 5 admission families of 2 classes, 2 gate
  // closing reasons and 20 families of one series. (Controller actions come from the control loop,
  // which lists every known action at 0; none here.)
  EXPECT_EQ(series, 8 + 3 + 2 + 64 + 6 + 12 + 5 * 2 + 2 + 20);
  const std::string text = expose(families);
  EXPECT_TRUE(has_line(text, "weir_stage_rejected_total{reason=\"timeout\",stage=\"send\"} 0"));
  EXPECT_TRUE(
      has_line(text, "weir_requests_total{code=\"416\",method=\"HEAD\",status_class=\"4xx\"} 0"));
  EXPECT_TRUE(has_line(text, "weir_stage_service_seconds_bucket{stage=\"send\",le=\"+Inf\"} 0"));
  EXPECT_TRUE(has_line(text, "weir_request_duration_seconds_count 0"));
  EXPECT_TRUE(has_line(text, "weir_cache_hits_total 0"));
}

}  // namespace
}  // namespace weir::metrics
