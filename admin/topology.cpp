#include "admin/topology.hpp"

#include <cmath>
#include <cstdint>
#include <numeric>
#include <utility>

#include <nlohmann/json.hpp>

namespace weir::admin {
namespace {

using nlohmann::json;

// Three decimals: microseconds for milliseconds, and no 17-digit noise for an operator to read.
double rounded(double v) {
  return std::round(v * 1000.0) / 1000.0;
}

std::uint64_t delta(std::uint64_t now, std::uint64_t earlier) {
  return now >= earlier ? now - earlier : 0;  // a counter that went back (a restart) counts from 0
}

double per_second(std::uint64_t n, double window_s) {
  return window_s > 0 ? rounded(static_cast<double>(n) / window_s) : 0.0;
}

json quantile_ms(const runtime::histogram_snapshot& h, double q) {
  if (h.count() == 0) return nullptr;
  return rounded(static_cast<double>(h.quantile_ns(q)) / 1e6);
}

std::uint64_t responses(const server_snapshot& s) {
  std::uint64_t n = 0;
  for (const auto& by_status : s.responses)
    n = std::accumulate(by_status.begin(), by_status.end(), n);
  return n;
}

const runtime::stage_snapshot* find_stage(const server_snapshot* s, const std::string& name) {
  if (s == nullptr) return nullptr;
  for (const auto& st : s->stages) {
    if (st.name == name) return &st;
  }
  return nullptr;
}

json stage_json(const runtime::stage_snapshot& now, const runtime::stage_snapshot* earlier,
                double window_s) {
  static const runtime::stage_snapshot zero;
  const runtime::stage_snapshot& base = earlier != nullptr ? *earlier : zero;
  json rejected = json::object();
  for (std::size_t r = 0; r < runtime::reject_reasons; ++r)
    rejected[runtime::reject_reason_names[r]] = now.rejected[r];
  // Without a window there are no recent samples, whatever the totals say.
  const auto wait =
      window_s > 0 ? now.queue_wait.since(base.queue_wait) : runtime::histogram_snapshot{};
  const auto service =
      window_s > 0 ? now.service.since(base.service) : runtime::histogram_snapshot{};
  return {
      {"name", now.name},
      {"group", now.group},
      {"processed", now.processed},
      {"rate_per_s", per_second(delta(now.processed, base.processed), window_s)},
      {"rejected", std::move(rejected)},
      {"queue_wait_p50_ms", quantile_ms(wait, 0.5)},
      {"queue_wait_p99_ms", quantile_ms(wait, 0.99)},
      {"service_p50_ms", quantile_ms(service, 0.5)},
      {"service_p99_ms", quantile_ms(service, 0.99)},
  };
}

}  // namespace

std::string topology_json(const server_snapshot& now, const server_snapshot* earlier,
                          double window_s) {
  if (earlier == nullptr) window_s = 0;

  json groups = json::array();
  for (const auto& g : now.groups) {
    json stages = json::array();
    for (const auto& st : now.stages) {
      if (st.group == g.name) stages.push_back(st.name);
    }
    groups.push_back({
        {"name", g.name},
        {"stages", std::move(stages)},
        {"threads", g.threads},
        {"busy_threads", g.busy_threads},
        {"queue_depth", g.queue_depth},
        {"queue_capacity", g.queue_capacity},
        {"wakeups", g.wakeups},
    });
  }

  json stages = json::array();
  for (const auto& st : now.stages)
    stages.push_back(stage_json(st, find_stage(earlier, st.name), window_s));

  const cache_snapshot zero_cache;
  const cache_snapshot& cache_base = earlier != nullptr ? earlier->cache : zero_cache;
  const std::uint64_t hits = delta(now.cache.hits, cache_base.hits);
  const std::uint64_t lookups = hits + delta(now.cache.misses, cache_base.misses);
  json hit_ratio = nullptr;
  if (window_s > 0 && lookups > 0)
    hit_ratio = rounded(static_cast<double>(hits) / static_cast<double>(lookups));

  const std::uint64_t requests =
      delta(responses(now), earlier != nullptr ? responses(*earlier) : 0);
  const json out = {
      {"window_s", rounded(window_s)},
      {"groups", std::move(groups)},
      {"stages", std::move(stages)},
      {"connections", {{"open", now.connections_open}, {"max", now.connections_max}}},
      {"cache",
       {
           {"hits", now.cache.hits},
           {"misses", now.cache.misses},
           {"hit_ratio", std::move(hit_ratio)},
           {"bytes", now.cache.bytes},
           {"capacity_bytes", now.cache.capacity_bytes},
       }},
      {"requests_per_s", per_second(requests, window_s)},
  };
  return out.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string topology_window::render(server_snapshot now, clock::time_point at) {
  if (next_ && at - next_->at >= min_window_) {
    base_ = std::move(next_);
    next_.reset();
  }
  const bool has_window = base_ && at > base_->at;
  const double window_s = has_window ? std::chrono::duration<double>(at - base_->at).count() : 0.0;
  std::string out = topology_json(now, has_window ? &base_->snapshot : nullptr, window_s);
  if (!base_) {
    base_ = kept{std::move(now), at};
  } else if (!next_ && at - base_->at >= min_window_) {
    next_ = kept{std::move(now), at};
  }
  return out;
}

}  // namespace weir::admin
