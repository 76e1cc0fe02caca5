#include "bench/loadgen/report.hpp"

#include <cstdio>
#include <ostream>

namespace weir::loadgen {

namespace {

double ms(std::uint64_t ns) {
  return static_cast<double>(ns) / 1e6;
}

nlohmann::json percentiles(const histogram& h) {
  return {{"count", h.count()},
          {"mean_ms", h.mean() / 1e6},
          {"p50_ms", ms(h.quantile(0.50))},
          {"p90_ms", ms(h.quantile(0.90))},
          {"p99_ms", ms(h.quantile(0.99))},
          {"p999_ms", ms(h.quantile(0.999))},
          {"max_ms", ms(h.max())}};
}

std::string latency_line(const char* name, const histogram& h) {
  char line[200];
  std::snprintf(line, sizeof line,
                "  %-9s p50 %9.3f  p90 %9.3f  p99 %9.3f  p99.9 %9.3f  max %9.3f\n", name,
                ms(h.quantile(0.50)), ms(h.quantile(0.90)), ms(h.quantile(0.99)),
                ms(h.quantile(0.999)), ms(h.max()));
  return line;
}

std::string p99_line(const char* name, const histogram& intended, const histogram& sent) {
  char line[200];
  std::snprintf(line, sizeof line, "  %-9s p99 %9.3f intended, %9.3f sent (%llu responses)\n", name,
                ms(intended.quantile(0.99)), ms(sent.quantile(0.99)),
                static_cast<unsigned long long>(intended.count()));
  return line;
}

// A slot's start in seconds: an integer when the slots are whole seconds (as before --series-ms).
nlohmann::json slot_start_s(std::size_t slot, int series_ms) {
  const std::uint64_t start_ms = slot * static_cast<std::uint64_t>(series_ms);
  if (series_ms % 1000 == 0) return start_ms / 1000;
  return static_cast<double>(start_ms) / 1000;
}

}  // namespace

void print_summary(std::ostream& out, const run_config& c, const run_description& d,
                   const run_result& r) {
  char line[256];
  std::snprintf(line, sizeof line,
                "weir-loadgen: %s, model %s, %d connections%s, %s arrivals at %.0f req/s\n",
                d.target.c_str(), d.model.c_str(), c.connections,
                c.model == client_model::users && c.session > 1
                    ? (", session " + std::to_string(c.session)).c_str()
                    : "",
                d.arrival.c_str(), c.rate);
  out << line;
  if (!c.profile.empty()) {
    out << "  rate profile:";
    for (const auto& [rate, secs] : c.profile) {
      std::snprintf(line, sizeof line, " %.0f/s for %g s", rate, secs);
      out << line;
    }
    out << '\n';
  }
  std::snprintf(line, sizeof line, "  mix %s; warm-up %.1f s, measured %.1f s, timeout %.3f s\n",
                d.mix.c_str(), c.warmup_s, c.duration_s, c.timeout_s);
  out << line;
  std::snprintf(
      line, sizeof line, "requests: %llu due, %llu sent, %llu unsent; goodput %.1f 2xx/s\n",
      static_cast<unsigned long long>(r.scheduled), static_cast<unsigned long long>(r.sent),
      static_cast<unsigned long long>(r.unsent), r.goodput());
  out << line;
  std::snprintf(line, sizeof line, "status:   2xx %llu  503 %llu  other %llu\n",
                static_cast<unsigned long long>(r.ok),
                static_cast<unsigned long long>(r.unavailable),
                static_cast<unsigned long long>(r.other));
  out << line;
  std::snprintf(line, sizeof line,
                "errors:   connect %llu  read/reset %llu  timeout %llu (%llu in the backlog, %llu "
                "connecting, %llu after the write)\n",
                static_cast<unsigned long long>(r.connect_errors),
                static_cast<unsigned long long>(r.read_errors),
                static_cast<unsigned long long>(r.timeouts),
                static_cast<unsigned long long>(r.timeouts_in_backlog),
                static_cast<unsigned long long>(r.timeouts_connecting),
                static_cast<unsigned long long>(r.timeouts_reading));
  out << line;
  out << "latency (ms), from the intended send time and from the write to the socket:\n";
  out << latency_line("intended", r.latency);
  out << latency_line("sent", r.service_latency);
  out << p99_line("2xx", r.ok_latency, r.ok_service_latency);
  out << p99_line("503", r.unavailable_latency, r.unavailable_service_latency);
  std::snprintf(line, sizeof line,
                "generator: CPU %.0f %% of a core, dispatch lag mean %.3f ms p99 %.3f ms, "
                "max backlog %llu, max open %d\n",
                r.cpu_share * 100, r.dispatch_lag.mean() / 1e6, ms(r.dispatch_lag.quantile(0.99)),
                static_cast<unsigned long long>(r.max_backlog), r.max_open);
  out << line;
  for (const std::string& w : r.warnings) out << "WARNING: " << w << "\n";
}

nlohmann::json to_json(const run_config& c, const run_description& d, const run_result& r) {
  nlohmann::json series = nlohmann::json::array();
  for (std::size_t i = 0; i < r.series.size(); ++i) {
    const slot_stats& s = r.series[i];
    series.push_back({{"second", slot_start_s(i, c.series_ms)},
                      {"start_ms", i * static_cast<std::uint64_t>(c.series_ms)},
                      {"sent", s.sent},
                      {"2xx", s.ok},
                      {"503", s.unavailable},
                      {"other", s.other},
                      {"errors", s.errors},
                      {"unsent", s.unsent},
                      {"p99_ms", ms(s.p99_ns)},
                      {"p99_2xx_ms", ms(s.p99_ok_ns)},
                      {"p99_2xx_sent_ms", ms(s.p99_ok_sent_ns)}});
  }
  nlohmann::json profile = nlohmann::json::array();
  for (const auto& [rate, secs] : c.profile) profile.push_back({{"rate", rate}, {"seconds", secs}});
  nlohmann::json mix = nlohmann::json::array();
  for (std::size_t i = 0; i < c.requests.entries().size(); ++i)
    mix.push_back({{"path", c.requests.entries()[i].path}, {"share", c.requests.share(i)}});
  return {{"config",
           {{"target", d.target},
            {"model", d.model},
            {"connections", c.connections},
            {"session", c.session},
            {"rate", c.rate},
            {"rate_profile", profile},
            {"arrival", d.arrival},
            {"seed", c.seed},
            {"warmup_s", c.warmup_s},
            {"duration_s", c.duration_s},
            {"timeout_s", c.timeout_s},
            {"series_ms", c.series_ms},
            {"sources", c.sources},
            {"mix_source", d.mix},
            {"mix", mix}}},
          {"summary",
           {{"scheduled", r.scheduled},
            {"sent", r.sent},
            {"unsent", r.unsent},
            {"status", {{"2xx", r.ok}, {"503", r.unavailable}, {"other", r.other}}},
            {"errors",
             {{"connect", r.connect_errors},
              {"read", r.read_errors},
              {"timeout", r.timeouts},
              {"timeout_in_backlog", r.timeouts_in_backlog},
              {"timeout_connecting", r.timeouts_connecting},
              {"timeout_reading", r.timeouts_reading}}},
            {"goodput_rps", r.goodput()},
            {"2xx_in_window", r.ok_in_window},
            {"body_bytes", r.body_bytes},
            {"latency_intended", percentiles(r.latency)},
            {"latency_sent", percentiles(r.service_latency)},
            {"latency_2xx_intended", percentiles(r.ok_latency)},
            {"latency_2xx_sent", percentiles(r.ok_service_latency)},
            {"latency_503_intended", percentiles(r.unavailable_latency)},
            {"latency_503_sent", percentiles(r.unavailable_service_latency)}}},
          {"generator",
           {{"cpu_s", r.cpu_s},
            {"cpu_share", r.cpu_share},
            {"dispatch_lag", percentiles(r.dispatch_lag)},
            {"max_backlog", r.max_backlog},
            {"max_open_connections", r.max_open},
            {"connections_opened", r.connects},
            {"limited", !r.warnings.empty()},
            {"warnings", r.warnings}}},
          {"series", series}};
}

}  // namespace weir::loadgen
