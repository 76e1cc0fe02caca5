#include "metrics/collector.hpp"

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>

namespace weir::metrics {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using label_list = std::vector<ClientMetric::Label>;

constexpr double ns_per_second = 1e9;

MetricFamily family(std::string name, std::string help, MetricType type) {
  MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

/// Adds a counter or gauge series (whichever `f` is).
void add_value(MetricFamily& f, label_list labels, double value) {
  ClientMetric m;
  m.label = std::move(labels);
  if (f.type == MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  f.metric.push_back(std::move(m));
}

void add_histogram(MetricFamily& f, label_list labels, const runtime::histogram_snapshot& h) {
  ClientMetric m;
  m.label = std::move(labels);
  auto& out = m.histogram;
  out.bucket.reserve(runtime::latency_buckets);
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < runtime::latency_buckets; ++i) {
    cumulative += h.counts[i];
    const double bound = i < runtime::latency_bounds_ns.size()
                             ? static_cast<double>(runtime::latency_bounds_ns[i]) / ns_per_second
                             : std::numeric_limits<double>::infinity();
    out.bucket.push_back({.cumulative_count = cumulative, .upper_bound = bound});
  }
  out.sample_count = cumulative;
  out.sample_sum = static_cast<double>(h.sum_ns) / ns_per_second;
  f.metric.push_back(std::move(m));
}

MetricFamily scalar(std::string name, std::string help, MetricType type, double value) {
  MetricFamily f = family(std::move(name), std::move(help), type);
  add_value(f, {}, value);
  return f;
}

/// One series per stage, labelled `stage`, valued `value(stage)`.
template <class Value>
MetricFamily per_stage(const server_snapshot& s, std::string name, std::string help,
                       MetricType type, Value value) {
  MetricFamily f = family(std::move(name), std::move(help), type);
  for (const auto& st : s.stages) {
    add_value(f, {{"stage", st.name}}, static_cast<double>(value(st)));
  }
  return f;
}

template <class Histogram>
MetricFamily per_stage_histogram(const server_snapshot& s, std::string name, std::string help,
                                 Histogram histogram) {
  MetricFamily f = family(std::move(name), std::move(help), MetricType::Histogram);
  for (const auto& st : s.stages) add_histogram(f, {{"stage", st.name}}, histogram(st));
  return f;
}

std::string status_class(int code) {
  return std::to_string(code / 100) + "xx";
}

void add_stage_families(const server_snapshot& s, std::vector<MetricFamily>& out) {
  using st = runtime::stage_snapshot;
  constexpr auto gauge = MetricType::Gauge;
  out.push_back(per_stage(
      s, "weir_stage_queue_depth",
      "Events waiting in the queue of the group the stage runs in (shared by its stages).", gauge,
      [](const st& x) { return x.queue_depth; }));
  out.push_back(per_stage(s, "weir_stage_queue_capacity",
                          "Capacity, in events, of the queue of the group the stage runs in.",
                          gauge, [](const st& x) { return x.queue_capacity; }));
  out.push_back(per_stage(s, "weir_stage_threads", "Worker threads of the group the stage runs in.",
                          gauge, [](const st& x) { return x.threads; }));
  out.push_back(per_stage(s, "weir_stage_busy_threads",
                          "Worker threads of the stage's group that are awake and draining.", gauge,
                          [](const st& x) { return x.busy_threads; }));
  out.push_back(per_stage(s, "weir_stage_processed_total", "Events the stage has handled.",
                          MetricType::Counter, [](const st& x) { return x.processed; }));

  MetricFamily rejected = family("weir_stage_rejected_total",
                                 "Events the stage turned away, by reason.", MetricType::Counter);
  for (const auto& x : s.stages) {
    for (std::size_t r = 0; r < runtime::reject_reasons; ++r) {
      add_value(rejected, {{"reason", runtime::reject_reason_names[r]}, {"stage", x.name}},
                static_cast<double>(x.rejected[r]));
    }
  }
  out.push_back(std::move(rejected));

  out.push_back(per_stage_histogram(
      s, "weir_stage_queue_wait_seconds",
      "Seconds from dispatch to the start of the stage (hops between groups only).",
      [](const st& x) -> const auto& { return x.queue_wait; }));
  out.push_back(per_stage_histogram(
      s, "weir_stage_service_seconds", "Seconds spent in the stage's handler per event.",
      [](const st& x) -> const auto& { return x.service; }));

  MetricFamily info =
      family("weir_stage_group_info", "The group the stage runs in now (value always 1).", gauge);
  for (const auto& x : s.stages) add_value(info, {{"group", x.group}, {"stage", x.name}}, 1);
  out.push_back(std::move(info));

  MetricFamily wakeups =
      family("weir_group_wakeups_total", "Times a parked worker of the group was woken.",
             MetricType::Counter);
  for (const auto& g : s.groups) {
    add_value(wakeups, {{"group", g.name}}, static_cast<double>(g.wakeups));
  }
  out.push_back(std::move(wakeups));

  MetricFamily threads =
      family("weir_group_threads", "Worker threads the group's pool is sized to.", gauge);
  for (const auto& g : s.groups)
    add_value(threads, {{"group", g.name}}, static_cast<double>(g.threads));
  out.push_back(std::move(threads));

  MetricFamily actions = family("weir_controller_actions_total",
                                "Decisions taken by each controller, by action (dry-run ones too).",
                                MetricType::Counter);
  for (const auto& a : s.controller_actions)
    add_value(actions, {{"action", a.action}, {"controller", a.controller}},
              static_cast<double>(a.count));
  out.push_back(std::move(actions));
}

void add_request_families(const server_snapshot& s, std::vector<MetricFamily>& out) {
  MetricFamily requests =
      family("weir_requests_total", "Responses sent, by request method and status code.",
             MetricType::Counter);
  requests.metric.reserve(method_count * status_count);
  for (std::size_t m = 0; m < method_count; ++m) {
    for (std::size_t i = 0; i < status_count; ++i) {
      add_value(requests,
                {{"code", std::to_string(status_codes[i])},
                 {"method", method_names[m]},
                 {"status_class", status_class(status_codes[i])}},
                static_cast<double>(s.responses[m][i]));
    }
  }
  out.push_back(std::move(requests));

  MetricFamily duration =
      family("weir_request_duration_seconds",
             "Seconds from the first byte of a request to the last byte of its response handed "
             "to the kernel.",
             MetricType::Histogram);
  add_histogram(duration, {}, s.request_duration);
  out.push_back(std::move(duration));

  out.push_back(scalar("weir_sent_bytes_total",
                       "Response bytes (head and body) handed to the kernel.", MetricType::Counter,
                       static_cast<double>(s.sent_bytes)));
  out.push_back(scalar("weir_requests_in_flight",
                       "Requests parsed whose response is not finished yet.", MetricType::Gauge,
                       static_cast<double>(s.requests_in_flight)));
}

void add_admission_families(const runtime::admission_snapshot& a, std::vector<MetricFamily>& out) {
  MetricFamily limit =
      family("weir_admission_limit", "Requests each class may have in flight (+Inf: no limit).",
             MetricType::Gauge);
  MetricFamily in_flight =
      family("weir_admission_in_flight", "Admitted requests of each class in flight now.",
             MetricType::Gauge);
  MetricFamily admitted =
      family("weir_admission_admitted_total", "Requests admitted, by class.", MetricType::Counter);
  MetricFamily over =
      family("weir_admission_over_target_total",
             "Admitted requests answered slower than the target, by class.", MetricType::Counter);
  MetricFamily duration = family(
      "weir_admitted_request_duration_seconds",
      "Seconds admitted requests took, by class (refused and failed requests are not in it).",
      MetricType::Histogram);
  for (std::size_t i = 0; i < runtime::admission_classes; ++i) {
    const runtime::admission_class_snapshot& c = a.classes[i];
    const label_list labels = {{"class", runtime::admission_class_names[i]}};
    add_value(limit, labels,
              c.limit == runtime::admission_gate::unlimited
                  ? std::numeric_limits<double>::infinity()
                  : static_cast<double>(c.limit));
    add_value(in_flight, labels, static_cast<double>(c.in_flight));
    add_value(admitted, labels, static_cast<double>(c.admitted));
    add_value(over, labels, static_cast<double>(c.over_target));
    add_histogram(duration, labels, c.latency);
  }
  out.push_back(std::move(limit));
  out.push_back(std::move(in_flight));
  out.push_back(std::move(admitted));
  out.push_back(std::move(over));
  out.push_back(std::move(duration));
  out.push_back(scalar("weir_admission_target_seconds",
                       "The latency target admitted requests are held to (controllers.admission).",
                       MetricType::Gauge, static_cast<double>(a.target_ns) / ns_per_second));
  out.push_back(
      scalar("weir_listen_backlog",
             "The listen queue length asked of the kernel (controllers.admission sizes it "
             "while the load is held back; 0 before the server starts).",
             MetricType::Gauge, static_cast<double>(a.backlog)));
}

void add_connection_families(const server_snapshot& s, std::vector<MetricFamily>& out) {
  out.push_back(scalar("weir_connections_open", "Client connections open now.", MetricType::Gauge,
                       static_cast<double>(s.connections_open)));
  out.push_back(scalar("weir_connections_max",
                       "Client connections allowed at once (limits.max_connections).",
                       MetricType::Gauge, static_cast<double>(s.connections_max)));
  out.push_back(scalar("weir_connections_accepted_total", "Client connections accepted.",
                       MetricType::Counter, static_cast<double>(s.connections_accepted)));

  MetricFamily closed = family("weir_connections_closed_total",
                               "Client connections closed, by reason.", MetricType::Counter);
  for (std::size_t r = 0; r < close_reason_count; ++r) {
    add_value(closed, {{"reason", close_reason_names[r]}},
              static_cast<double>(s.connections_closed[r]));
  }
  out.push_back(std::move(closed));

  out.push_back(scalar("weir_accept_backoffs_total",
                       "Times accepting paused because file descriptors ran out (EMFILE, ENFILE).",
                       MetricType::Counter, static_cast<double>(s.accept_backoffs)));
  out.push_back(scalar("weir_accept_pauses_total",
                       "Times accepting paused because weir had no room for more work; the "
                       "connections wait in the listen queue meanwhile.",
                       MetricType::Counter, static_cast<double>(s.admission.accept_pauses)));
  out.push_back(scalar("weir_syn_gate_share",
                       "Share of new connections' SYNs the listener lets through now: 1 open, 0 "
                       "closed (weir is at its request limit), between: held to what weir answers.",
                       MetricType::Gauge, s.syn_gate_share));
  MetricFamily closes = family("weir_syn_gate_closes_total",
                               "Times the SYN gate closed, by reason: weir at its request limit, "
                               "or its listen queue longer than a quarter of that limit.",
                               MetricType::Counter);
  add_value(closes, {{"reason", "limit"}}, static_cast<double>(s.syn_gate_closes_limit));
  add_value(closes, {{"reason", "queue"}}, static_cast<double>(s.syn_gate_closes_queue));
  out.push_back(std::move(closes));

  MetricFamily shed =
      family("weir_shed_total", "Work refused with 503 + Retry-After, by class and reason.",
             MetricType::Counter);
  for (std::size_t k = 0; k < shed_class_count; ++k) {
    for (std::size_t r = 0; r < shed_reason_count; ++r)
      add_value(shed, {{"class", shed_class_names[k]}, {"reason", shed_reason_names[r]}},
                static_cast<double>(s.shed[k][r]));
  }
  out.push_back(std::move(shed));
  out.push_back(scalar("weir_shed_kept_alive_total",
                       "Refusals (503) whose connection was kept open for the next request.",
                       MetricType::Counter, static_cast<double>(s.shed_kept_alive)));
}

void add_cache_families(const cache_snapshot& c, std::vector<MetricFamily>& out) {
  constexpr auto counter = MetricType::Counter;
  constexpr auto gauge = MetricType::Gauge;
  out.push_back(scalar("weir_cache_hits_total", "File cache lookups that found an entry.", counter,
                       static_cast<double>(c.hits)));
  out.push_back(scalar("weir_cache_misses_total", "File cache lookups that found none.", counter,
                       static_cast<double>(c.misses)));
  out.push_back(scalar("weir_cache_insertions_total",
                       "Entries stored in the file cache, replacements included.", counter,
                       static_cast<double>(c.insertions)));
  out.push_back(scalar("weir_cache_evictions_total",
                       "Entries evicted from the file cache to make room.", counter,
                       static_cast<double>(c.evictions)));
  out.push_back(scalar("weir_cache_bytes", "Bytes held by the file cache.", gauge,
                       static_cast<double>(c.bytes)));
  out.push_back(scalar("weir_cache_entries", "Entries held by the file cache.", gauge,
                       static_cast<double>(c.entries)));
  out.push_back(scalar("weir_cache_capacity_bytes", "Bytes the file cache may hold at most.", gauge,
                       static_cast<double>(c.capacity_bytes)));
}

}  // namespace

std::vector<MetricFamily> collect(const server_snapshot& s, std::string_view version) {
  std::vector<MetricFamily> out;
  out.reserve(48);
  add_stage_families(s, out);
  add_request_families(s, out);
  add_connection_families(s, out);
  add_admission_families(s.admission, out);
  add_cache_families(s.cache, out);

  MetricFamily build = family(
      "weir_build_info", "The version of the running weir (value always 1).", MetricType::Gauge);
  add_value(build, {{"version", std::string(version)}}, 1);
  out.push_back(std::move(build));
  return out;
}

}  // namespace weir::metrics
