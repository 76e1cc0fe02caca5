#include "runtime/config.hpp"

#include <arpa/inet.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <limits>
#include <memory>
#include <span>
#include <type_traits>

namespace weir {

namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;

constexpr std::size_t kib = 1024;
constexpr std::size_t mib = kib * 1024;
constexpr std::size_t gib = mib * 1024;
constexpr std::int64_t minute_ms = 60'000;
constexpr std::int64_t hour_ms = 60 * minute_ms;

// Limits shared by the loader (which must reject "-1" before it becomes a size_t) and validate().
struct range {
  std::uint64_t lo, hi;
};
constexpr range threads_range{1, 256};
constexpr range queue_range{2, 1'048'576};
constexpr range max_connections_range{1, 1'000'000};
constexpr range max_headers_range{1, 10'000};
constexpr range retry_after_range{0, 3600};
constexpr range max_request_line_range{64, mib};
constexpr std::size_t max_header_bytes_max = mib;
constexpr std::size_t send_lowat_max = 64 * mib;
constexpr std::size_t cache_shards = 16;
constexpr milliseconds timeout_min{1};
constexpr milliseconds timeout_max{hour_ms};
constexpr milliseconds revalidate_max{hour_ms};

// Controller settings. Queue-wait thresholds are compared with histogram quantiles, whose buckets
// run from 10us to 10s.
struct ratio_range {
  double lo, hi;
};
template <class Duration>
struct duration_range {
  Duration lo, hi;
};
struct flag {};
constexpr duration_range<milliseconds> pool_period_range{milliseconds(1), milliseconds(10'000)};
constexpr duration_range<milliseconds> grouping_period_range{milliseconds(10),
                                                             milliseconds(minute_ms)};
constexpr duration_range<microseconds> queue_wait_range{microseconds(10), microseconds(1'000'000)};
constexpr duration_range<microseconds> service_min_range{microseconds(1), microseconds(1'000'000)};
constexpr duration_range<milliseconds> hold_range{milliseconds(0), milliseconds(hour_ms)};
constexpr ratio_range busy_range{0.05, 1};   // utilisation that counts as busy
constexpr ratio_range fraction_range{0, 1};  // shares of capacity or of tasks
constexpr ratio_range service_ratio_range{2, 1000};
constexpr range samples_range{1, 1000};      // samples in a row
constexpr range cpu_threads_range{0, 1024};  // all CPU-bound pools together; 0: one per core
constexpr duration_range<milliseconds> admission_period_range{milliseconds(10),
                                                              milliseconds(10'000)};
constexpr duration_range<milliseconds> admission_target_range{milliseconds(1),
                                                              milliseconds(minute_ms)};
constexpr ratio_range percentile_range{0.5, 0.9999};
constexpr range admission_limit_range{1, 1'000'000};  // requests in flight per class
constexpr ratio_range decrease_range{0.05, 0.99};
constexpr ratio_range backlog_share_range{0, 1};
constexpr duration_range<milliseconds> queue_delay_range{milliseconds(0), milliseconds(10'000)};
constexpr ratio_range increase_range{1.01, 10};
constexpr range admission_samples_range{1, 1'000'000};
constexpr range backlog_range{1, 65535};  // listen(2) queue length; the kernel caps at somaxconn

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw config_error("config: " + (path.empty() ? what : path + ": " + what));
}

// Operator text echoed back on one line, whatever it contains.
std::string quoted(std::string_view s) {
  constexpr std::size_t max_echo = 80;
  std::string out = "\"";
  for (char c : s.substr(0, max_echo)) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  if (s.size() > max_echo) out += "...";
  return out + "\"";
}

// A parser's message on one line: control characters escaped (yaml-cpp's "unknown escape
// character" quotes the character, a newline included; found by tests/fuzz/config_fuzz).
std::string one_line(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

template <class Names>
std::string join(const Names& names) {
  std::string out;
  for (std::string_view n : names) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

std::string stage_path(std::size_t stage, std::string_view field) {
  return std::string("stages.") + stage_names[stage] + "." + std::string(field);
}

void check_count(const std::string& path, std::uint64_t v, range r) {
  if (v < r.lo || v > r.hi)
    fail(path, std::to_string(v) + " is out of range " + std::to_string(r.lo) + ".." +
                   std::to_string(r.hi));
}

void check_size(const std::string& path, std::size_t v, std::size_t lo, std::size_t hi,
                std::string_view why = {}) {
  if (v < lo || v > hi)
    fail(path, format_size(v) + " is out of range " + format_size(lo) + ".." + format_size(hi) +
                   std::string(why));
}

void check_duration(const std::string& path, milliseconds v, milliseconds lo, milliseconds hi) {
  if (v < lo || v > hi)
    fail(path, format_duration(v) + " is out of range " + format_duration(lo) + ".." +
                   format_duration(hi));
}

std::optional<std::uint64_t> parse_digits(std::string_view s) {
  if (s.empty() || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// Splits "64MiB" / "64 MiB" into digits and unit.
std::pair<std::string_view, std::string_view> split_number(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
  std::string_view unit = s.substr(i);
  while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  return {s.substr(0, i), unit};
}

// --- YAML readers: each one reads a node into a field or throws naming `path`. ---

const std::string& scalar(const YAML::Node& n, const std::string& path) {
  if (!n.IsScalar())
    fail(path, std::string("expected a single value, got a ") + (n.IsMap() ? "mapping" : "list"));
  return n.Scalar();
}

std::uint64_t read_count(const YAML::Node& n, const std::string& path, range r) {
  const std::string& s = scalar(n, path);
  std::string_view digits = s;
  const bool negative = !digits.empty() && digits.front() == '-';
  if (negative) digits.remove_prefix(1);
  if (digits.empty() ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
    fail(path, quoted(s) + " is not a whole number (range " + std::to_string(r.lo) + ".." +
                   std::to_string(r.hi) + ")");
  auto v = parse_digits(digits);
  if (negative || !v)
    fail(path, s + " is out of range " + std::to_string(r.lo) + ".." + std::to_string(r.hi));
  check_count(path, *v, r);
  return *v;
}

std::size_t read_size(const YAML::Node& n, const std::string& path) {
  const std::string& s = scalar(n, path);
  auto v = parse_size(s);
  if (!v) fail(path, quoted(s) + " is not a size (e.g. 4096, 256KiB, 64MiB)");
  return *v;
}

milliseconds read_duration(const YAML::Node& n, const std::string& path) {
  const std::string& s = scalar(n, path);
  auto v = parse_duration(s);
  if (!v) fail(path, quoted(s) + " is not a duration (e.g. 250ms, 10s, 2m)");
  return *v;
}

bool read_bool(const YAML::Node& n, const std::string& path) {
  const std::string& s = scalar(n, path);
  bool b = false;
  if (!YAML::convert<bool>::decode(n, b)) fail(path, quoted(s) + " is not a boolean (true, false)");
  return b;
}

struct field {
  std::string_view key;
  std::function<void(const YAML::Node&, const std::string& path)> read;
};

// Reads a mapping whose keys must all be in `fields`. A null value (`key:` with nothing after it)
// counts as absent, so commenting out a value keeps the default.
void read_map(const YAML::Node& node, const std::string& path, std::span<const field> fields) {
  auto accepted = [&] {
    std::string out;
    for (const field& f : fields) out += (out.empty() ? "" : ", ") + std::string(f.key);
    return out;
  };
  if (!node || node.IsNull()) return;
  if (!node.IsMap()) fail(path, "expected a mapping with keys " + accepted());
  std::vector<std::string> seen;
  for (const auto& kv : node) {
    if (!kv.first.IsScalar()) fail(path, "keys must be plain names, one of " + accepted());
    const std::string& key = kv.first.Scalar();
    // A key is echoed as it is unless it holds bytes that would break the one-line message (a
    // fuzzer found a CR in one); those are shown quoted and escaped.
    const bool printable = std::all_of(key.begin(), key.end(), [](char ch) {
      return static_cast<unsigned char>(ch) >= 0x20 && static_cast<unsigned char>(ch) < 0x7f;
    });
    const std::string shown = printable ? key : quoted(key);
    const std::string child = path.empty() ? shown : path + "." + shown;
    auto f = std::find_if(fields.begin(), fields.end(),
                          [&](const field& candidate) { return candidate.key == key; });
    if (f == fields.end()) fail(child, "unknown key (expected one of " + accepted() + ")");
    if (std::find(seen.begin(), seen.end(), key) != seen.end()) fail(child, "appears twice");
    seen.push_back(key);
    if (!kv.second.IsNull()) f->read(kv.second, child);
  }
}

void read_map(const YAML::Node& node, const std::string& path,
              std::initializer_list<field> fields) {
  read_map(node, path, std::span<const field>(fields.begin(), fields.size()));
}

// --- Controller settings: each knob once, with its limits; the reader, the checks and the JSON
// writer all walk the same list. ---

// The shortest spelling that reads back as the same double ("0.85", "10", "1e-05").
std::string format_number(double v) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc{} ? std::string(buf, end) : std::string("nan");
}

std::string range_text(ratio_range r) {
  return format_number(r.lo) + ".." + format_number(r.hi);
}

double read_number(const YAML::Node& n, const std::string& path, ratio_range r) {
  const std::string& s = scalar(n, path);
  double v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec == std::errc::result_out_of_range && end == s.data() + s.size())
    fail(path, s + " is out of range " + range_text(r));
  if (s.empty() || ec != std::errc{} || end != s.data() + s.size() || !std::isfinite(v))
    fail(path, quoted(s) + " is not a number (" + range_text(r) + ")");
  return v;
}

microseconds read_duration_us(const YAML::Node& n, const std::string& path) {
  const std::string& s = scalar(n, path);
  auto v = parse_duration_us(s);
  if (!v) fail(path, quoted(s) + " is not a duration (e.g. 500us, 2ms, 1s)");
  return *v;
}

void check_ratio(const std::string& path, double v, ratio_range r) {
  if (!(v >= r.lo && v <= r.hi))  // NaN, set in code, fails too
    fail(path, format_number(v) + " is out of range " + range_text(r));
}

void check_duration_us(const std::string& path, microseconds v, microseconds lo, microseconds hi) {
  if (v < lo || v > hi)
    fail(path, format_duration_us(v) + " is out of range " + format_duration_us(lo) + ".." +
                   format_duration_us(hi));
}

// Calls f(key, member, limits) for each knob of a controller's settings (const or not), in
// declaration order.
template <class Settings, class F>
void knobs(Settings& s, F&& f) {
  using plain = std::remove_const_t<Settings>;
  if constexpr (std::is_same_v<plain, controllers::pool_settings>) {
    f("enabled", s.enabled, flag{});
    f("dry_run", s.dry_run, flag{});
    f("period", s.period, pool_period_range);
    f("grow_wait", s.grow_wait, queue_wait_range);
    f("busy", s.busy, busy_range);
    f("idle", s.idle, fraction_range);
    f("grow_after", s.grow_after, samples_range);
    f("shrink_after", s.shrink_after, hold_range);
    f("shrink_after_blocking", s.shrink_after_blocking, hold_range);
    f("min_threads", s.min_threads, threads_range);
    f("max_cpu_threads", s.max_cpu_threads, cpu_threads_range);
    f("max_blocking_threads", s.max_blocking_threads, threads_range);
  } else if constexpr (std::is_same_v<plain, controllers::admission_settings>) {
    f("enabled", s.enabled, flag{});
    f("dry_run", s.dry_run, flag{});
    f("period", s.period, admission_period_range);
    f("target", s.target, admission_target_range);
    f("percentile", s.percentile, percentile_range);
    f("min_limit", s.min_limit, admission_limit_range);
    f("max_limit", s.max_limit, admission_limit_range);
    f("decrease_min", s.decrease_min, decrease_range);
    f("decrease_max", s.decrease_max, decrease_range);
    f("increase", s.increase, increase_range);
    f("min_samples", s.min_samples, admission_samples_range);
    f("queue_delay", s.queue_delay, queue_delay_range);
    f("queue_interval", s.queue_interval, admission_period_range);
    f("backlog_share", s.backlog_share, backlog_share_range);
    f("backlog_min", s.backlog_min, backlog_range);
    f("backlog_max", s.backlog_max, backlog_range);
  } else {
    static_assert(std::is_same_v<plain, controllers::grouping_settings>);
    f("enabled", s.enabled, flag{});
    f("dry_run", s.dry_run, flag{});
    f("period", s.period, grouping_period_range);
    f("fuse_below", s.fuse_below, fraction_range);
    f("fuse_wakeups_per_task", s.fuse_wakeups_per_task, fraction_range);
    f("split_above", s.split_above, busy_range);
    f("split_wait", s.split_wait, queue_wait_range);
    f("split_service_ratio", s.split_service_ratio, service_ratio_range);
    f("split_service_min", s.split_service_min, service_min_range);
    f("fuse_after", s.fuse_after, samples_range);
    f("split_after", s.split_after, samples_range);
    f("cooldown", s.cooldown, hold_range);
    f("fuse_blocking", s.fuse_blocking, flag{});
  }
}

// Calls f(settings) with the settings of controller `which` (an index into controller_names).
static_assert(std::size(controller_names) == 3);
template <class Config, class F>
void with_settings(Config& c, std::size_t which, F&& f) {
  if (which == 0) {
    f(c.pool);
  } else if (which == 1) {
    f(c.grouping);
  } else {
    f(c.admission);
  }
}

std::size_t controller_index(std::string_view name) {
  for (std::size_t i = 0; i < std::size(controller_names); ++i)
    if (name == controller_names[i]) return i;
  fail("controllers", quoted(name) + " is not one of " + join(controller_names));
}

std::string controller_path(std::size_t which, std::string_view key = {}) {
  std::string p = std::string("controllers.") + controller_names[which];
  if (!key.empty()) p += "." + std::string(key);
  return p;
}

template <class Settings>
std::string knob_keys(const Settings& s) {
  std::vector<std::string_view> keys;
  knobs(s, [&](std::string_view key, const auto&, const auto&) { keys.push_back(key); });
  return join(keys);
}

template <class T, class Limits>
void read_knob(const YAML::Node& n, const std::string& path, T& target, const Limits& limits) {
  if constexpr (std::is_same_v<Limits, flag>) {
    target = read_bool(n, path);
  } else if constexpr (std::is_same_v<Limits, ratio_range>) {
    target = read_number(n, path, limits);
  } else if constexpr (std::is_same_v<T, milliseconds>) {
    target = read_duration(n, path);
  } else if constexpr (std::is_same_v<T, microseconds>) {
    target = read_duration_us(n, path);
  } else {
    target = static_cast<T>(read_count(n, path, limits));
  }
}

template <class T, class Limits>
void check_knob(const std::string& path, const T& v, const Limits& limits) {
  if constexpr (std::is_same_v<Limits, flag>) {
    // any value will do
  } else if constexpr (std::is_same_v<Limits, ratio_range>) {
    check_ratio(path, v, limits);
  } else if constexpr (std::is_same_v<T, milliseconds>) {
    check_duration(path, v, limits.lo, limits.hi);
  } else if constexpr (std::is_same_v<T, microseconds>) {
    check_duration_us(path, v, limits.lo, limits.hi);
  } else {
    if constexpr (std::is_signed_v<T>) {
      if (v < 0)
        fail(path, std::to_string(v) + " is out of range " + std::to_string(limits.lo) + ".." +
                       std::to_string(limits.hi));
    }
    check_count(path, static_cast<std::uint64_t>(v), limits);
  }
}

template <class T>
std::string json_value(const T& v) {
  if constexpr (std::is_same_v<T, bool>) {
    return v ? "true" : "false";
  } else if constexpr (std::is_same_v<T, double>) {
    return format_number(v);
  } else if constexpr (std::is_same_v<T, milliseconds>) {
    return "\"" + format_duration(v) + "\"";
  } else if constexpr (std::is_same_v<T, microseconds>) {
    return "\"" + format_duration_us(v) + "\"";
  } else {
    return std::to_string(v);
  }
}

template <class Settings>
void read_settings(const YAML::Node& n, const std::string& path, Settings& s) {
  std::vector<field> fields;
  knobs(s, [&](std::string_view key, auto& member, const auto& limits) {
    fields.push_back({key, [&member, limits](const YAML::Node& v, const std::string& vp) {
                        read_knob(v, vp, member, limits);
                      }});
  });
  read_map(n, path, fields);
}

std::string effective_group(const config& c, std::size_t stage) {
  return c.stages[stage].group.empty() ? stage_names[stage] : c.stages[stage].group;
}

std::size_t first_of_group(const config& c, std::size_t stage) {
  const std::string g = effective_group(c, stage);
  for (std::size_t i = 0; i < stage; ++i)
    if (effective_group(c, i) == g) return i;
  return stage;
}

bool valid_group_name(std::string_view g) {
  return !g.empty() && std::all_of(g.begin(), g.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

void validate_stages(const config& c) {
  if (c.stages.size() != stage_count)
    fail("stages", "expected " + std::to_string(stage_count) + " stages (" + join(stage_names) +
                       "), got " + std::to_string(c.stages.size()));
  for (std::size_t i = 0; i < stage_count; ++i) {
    const stage_config& s = c.stages[i];
    if (!s.group.empty() && !valid_group_name(s.group))
      fail(stage_path(i, "group"), quoted(s.group) + " is not a group name ([a-z0-9_]+)");
    check_count(stage_path(i, "threads"), s.threads, threads_range);
    check_count(stage_path(i, "queue"), s.queue_capacity, queue_range);
  }
  // A group runs a contiguous stretch of the pipeline: fusing is a direct call to the next stage.
  for (std::size_t i = 1; i < stage_count; ++i) {
    const std::size_t first = first_of_group(c, i);
    if (first == i) continue;
    const std::string g = effective_group(c, i);
    if (effective_group(c, i - 1) != g)
      fail(stage_path(i, "group"),
           quoted(g) + " also holds " + stage_names[first] +
               ", which is not adjacent; a group may only fuse neighbouring stages of " +
               join(stage_names));
    const stage_config& lead = c.stages[first];
    const stage_config& s = c.stages[i];
    auto mismatch = [&](std::string_view what, std::size_t mine, std::size_t theirs) {
      fail(stage_path(i, what), std::to_string(mine) + " differs from " + std::to_string(theirs) +
                                    " in " + stage_path(first, what) +
                                    " (the first stage of group " + quoted(g) +
                                    " sets its threads and queue)");
    };
    if (s.threads != lead.threads) mismatch("threads", s.threads, lead.threads);
    if (s.queue_capacity != lead.queue_capacity)
      mismatch("queue", s.queue_capacity, lead.queue_capacity);
  }
}

void validate_controllers(const config& c) {
  for (std::size_t i = 0; i < std::size(controller_names); ++i)
    with_settings(c, i, [&](const auto& s) {
      knobs(s, [&](std::string_view key, const auto& v, const auto& limits) {
        check_knob(controller_path(i, key), v, limits);
      });
    });
  const controllers::pool_settings& p = c.pool;
  // Hysteresis: a pool that just grew must not count as idle at once.
  if (!(p.idle < p.busy))
    fail("controllers.pool.idle", format_number(p.idle) + " must be below controllers.pool.busy (" +
                                      format_number(p.busy) + ")");
  if (p.min_threads > p.max_blocking_threads)
    fail("controllers.pool.min_threads",
         std::to_string(p.min_threads) +
             " must be at most controllers.pool.max_blocking_threads (" +
             std::to_string(p.max_blocking_threads) + ")");
  // The controller caps a blocking pool at max_blocking_threads: one configured larger would be
  // cut down the first time it is short of threads.
  constexpr std::size_t disk_io = 3;
  static_assert(std::string_view(stage_names[disk_io]) == "disk_io");
  if (p.enabled && p.max_blocking_threads < c.stages[disk_io].threads)
    fail("controllers.pool.max_blocking_threads",
         std::to_string(p.max_blocking_threads) + " must be at least " +
             stage_path(disk_io, "threads") + " (" + std::to_string(c.stages[disk_io].threads) +
             ")");
  const controllers::grouping_settings& g = c.grouping;
  // Otherwise a group could qualify for fusing and splitting at once, and flap.
  if (!(g.fuse_below < g.split_above))
    fail("controllers.grouping.fuse_below",
         format_number(g.fuse_below) + " must be below controllers.grouping.split_above (" +
             format_number(g.split_above) + ")");
  const controllers::admission_settings& a = c.admission;
  if (a.min_limit > a.max_limit)
    fail("controllers.admission.min_limit",
         std::to_string(a.min_limit) + " must be at most controllers.admission.max_limit (" +
             std::to_string(a.max_limit) + ")");
  if (a.decrease_min > a.decrease_max)
    fail("controllers.admission.decrease_min",
         format_number(a.decrease_min) + " must be at most controllers.admission.decrease_max (" +
             format_number(a.decrease_max) + ")");
  if (a.backlog_min > a.backlog_max)
    fail("controllers.admission.backlog_min",
         std::to_string(a.backlog_min) + " must be at most controllers.admission.backlog_max (" +
             std::to_string(a.backlog_max) + ")");
}

// Two listeners collide when they bind one port on the same address or on a wildcard.
bool same_port(const listen_address& a, const listen_address& b) {
  auto wildcard = [](const std::string& h) { return h == "0.0.0.0" || h == "::"; };
  return a.port != 0 && a.port == b.port &&
         (a.host == b.host || wildcard(a.host) || wildcard(b.host));
}

void validate_admin(const config& c) {
  // Served by civetweb, as the metrics are: IPv4 only.
  const auto addr = parse_listen(c.admin_listen);
  if (!addr || addr->host.find(':') != std::string::npos)
    fail("admin.listen", quoted(c.admin_listen) +
                             " is not IPv4ADDR:PORT (e.g. 127.0.0.1:9465; IPv6 is not supported)");
  if (!c.admin_enabled) return;
  auto collide = [&](std::string_view key, const std::string& other, std::string_view same) {
    const auto other_addr = parse_listen(other);
    if (!other_addr || !same_port(*addr, *other_addr)) return;
    fail("admin.listen",
         quoted(c.admin_listen) +
             (c.admin_listen == other ? std::string(same)
                                      : " shares port " + std::to_string(addr->port) + " with " +
                                            std::string(key) + " (" + quoted(other) + ")") +
             "; the admin API needs its own port");
  };
  collide("listen", c.listen, " is the public listen address");
  if (c.metrics_enabled) collide("metrics.listen", c.metrics_listen, " is metrics.listen");
  if (!addr->host.starts_with("127.") && c.admin_token_file.empty())
    fail("admin.listen", quoted(c.admin_listen) +
                             " is not a loopback address; set admin.token_file (a bearer token) "
                             "to expose the admin API");
}

std::string read_file(const std::string& path) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) throw config_error("config: " + path + ": " + std::strerror(errno));
  std::string text;
  char buf[8192];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f.get())) > 0) text.append(buf, n);
  if (std::ferror(f.get())) throw config_error("config: " + path + ": " + std::strerror(errno));
  return text;
}

}  // namespace

std::optional<listen_address> parse_listen(std::string_view text) {
  std::string_view host, port;
  int family = AF_INET;
  if (text.starts_with('[')) {
    const auto close = text.find("]:");
    if (close == std::string_view::npos) return std::nullopt;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    family = AF_INET6;
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  const std::string host_str(host);
  unsigned char addr[sizeof(in6_addr)];
  if (inet_pton(family, host_str.c_str(), addr) != 1) return std::nullopt;
  auto p = port.size() <= 5 ? parse_digits(port) : std::nullopt;
  if (!p || *p > 65535) return std::nullopt;
  return listen_address{host_str, static_cast<std::uint16_t>(*p)};
}

std::optional<std::size_t> parse_size(std::string_view text) {
  auto [digits, unit] = split_number(text);
  auto v = parse_digits(digits);
  if (!v) return std::nullopt;
  std::size_t scale = 0;
  if (unit.empty() || unit == "B") {
    scale = 1;
  } else if (unit == "k" || unit == "K" || unit == "KiB") {
    scale = kib;
  } else if (unit == "M" || unit == "MiB") {
    scale = mib;
  } else if (unit == "G" || unit == "GiB") {
    scale = gib;
  } else {
    return std::nullopt;
  }
  if (*v > std::numeric_limits<std::size_t>::max() / scale) return std::nullopt;
  return static_cast<std::size_t>(*v * scale);
}

std::optional<milliseconds> parse_duration(std::string_view text) {
  auto [digits, unit] = split_number(text);
  auto v = parse_digits(digits);
  if (!v) return std::nullopt;
  std::uint64_t scale = 0;
  if (unit.empty() || unit == "ms") {
    scale = 1;
  } else if (unit == "s") {
    scale = 1000;
  } else if (unit == "m") {
    scale = minute_ms;
  } else if (unit == "h") {
    scale = hour_ms;
  } else {
    return std::nullopt;
  }
  constexpr auto max = static_cast<std::uint64_t>(std::numeric_limits<milliseconds::rep>::max());
  if (*v > max / scale) return std::nullopt;
  return milliseconds(static_cast<milliseconds::rep>(*v * scale));
}

std::string format_size(std::size_t bytes) {
  if (bytes != 0) {
    if (bytes % gib == 0) return std::to_string(bytes / gib) + "GiB";
    if (bytes % mib == 0) return std::to_string(bytes / mib) + "MiB";
    if (bytes % kib == 0) return std::to_string(bytes / kib) + "KiB";
  }
  return std::to_string(bytes);
}

std::optional<microseconds> parse_duration_us(std::string_view text) {
  constexpr auto max = static_cast<std::uint64_t>(std::numeric_limits<microseconds::rep>::max());
  auto [digits, unit] = split_number(text);
  if (unit == "us") {
    auto v = parse_digits(digits);
    if (!v || *v > max) return std::nullopt;
    return microseconds(static_cast<microseconds::rep>(*v));
  }
  auto ms = parse_duration(text);
  if (!ms || static_cast<std::uint64_t>(ms->count()) > max / 1000) return std::nullopt;
  return microseconds(*ms);
}

std::string format_duration(milliseconds d) {
  const auto ms = d.count();
  if (ms != 0) {
    if (ms % hour_ms == 0) return std::to_string(ms / hour_ms) + "h";
    if (ms % minute_ms == 0) return std::to_string(ms / minute_ms) + "m";
    if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  }
  return std::to_string(ms) + "ms";
}

std::string format_duration_us(microseconds d) {
  if (d.count() % 1000 == 0) return format_duration(std::chrono::duration_cast<milliseconds>(d));
  return std::to_string(d.count()) + "us";
}

config load_config_file(const std::string& path, const config& base) {
  return load_config_text(read_file(path), path, base);
}

config load_config_text(const std::string& text, const std::string& path, const config& base) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    std::string where = one_line(path);
    if (!e.mark.is_null())
      where += ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1);
    throw config_error("config: " + where + ": YAML syntax error: " + one_line(e.msg));
  }

  config c = base;
  // Which stages set threads/queue themselves; the others inherit them from their group's lead.
  std::array<bool, stage_count> threads_set{}, queue_set{};

  auto stage_fields = [&](std::size_t i) {
    return [&, i](const YAML::Node& n, const std::string& p) {
      read_map(n, p,
               {{"threads",
                 [&, i](const YAML::Node& v, const std::string& vp) {
                   c.stages[i].threads = read_count(v, vp, threads_range);
                   threads_set[i] = true;
                 }},
                {"queue",
                 [&, i](const YAML::Node& v, const std::string& vp) {
                   c.stages[i].queue_capacity = read_count(v, vp, queue_range);
                   queue_set[i] = true;
                 }},
                {"group", [&, i](const YAML::Node& v, const std::string& vp) {
                   c.stages[i].group = scalar(v, vp);
                 }}});
    };
  };
  auto store = [](auto& target, auto reader) {
    return [&target, reader](const YAML::Node& n, const std::string& p) { target = reader(n, p); };
  };
  auto read_string = [](const YAML::Node& n, const std::string& p) { return scalar(n, p); };
  auto settings = [](auto& target) {
    return [&target](const YAML::Node& n, const std::string& p) { read_settings(n, p, target); };
  };

  if (c.stages.size() != stage_count) validate_stages(c);  // the readers below index by stage
  if (root && !root.IsNull() && !root.IsMap())
    throw config_error("config: " + path + ": expected a mapping of keys (listen, root, ...)");
  read_map(root, "",
           {{"listen", store(c.listen, read_string)},
            {"root", store(c.root, read_string)},
            {"follow_symlinks_outside_root", store(c.follow_symlinks_outside_root, read_bool)},
            {"stages",
             [&](const YAML::Node& n, const std::string& p) {
               read_map(n, p,
                        {{stage_names[0], stage_fields(0)},
                         {stage_names[1], stage_fields(1)},
                         {stage_names[2], stage_fields(2)},
                         {stage_names[3], stage_fields(3)},
                         {stage_names[4], stage_fields(4)}});
             }},
            {"cache",
             [&](const YAML::Node& n, const std::string& p) {
               read_map(n, p,
                        {{"max_bytes", store(c.cache_max_bytes, read_size)},
                         {"max_file_bytes", store(c.cache_max_file_bytes, read_size)},
                         {"policy",
                          [&](const YAML::Node& v, const std::string& vp) {
                            const std::string& s = scalar(v, vp);
                            if (s == "lru") {
                              c.cache_replacement = cache_policy::lru;
                            } else if (s == "lfu") {
                              c.cache_replacement = cache_policy::lfu;
                            } else {
                              fail(vp, quoted(s) + " is not one of lru, lfu");
                            }
                          }},
                         {"revalidate", store(c.cache_revalidate, read_duration)}});
             }},
            {"timeouts",
             [&](const YAML::Node& n, const std::string& p) {
               read_map(n, p,
                        {{"header", store(c.header_timeout, read_duration)},
                         {"keepalive", store(c.keepalive_timeout, read_duration)},
                         {"send", store(c.send_timeout, read_duration)},
                         {"drain", store(c.drain_timeout, read_duration)}});
             }},
            {"limits",
             [&](const YAML::Node& n, const std::string& p) {
               auto count = [](auto& target, range r) {
                 return [&target, r](const YAML::Node& v, const std::string& vp) {
                   target = read_count(v, vp, r);
                 };
               };
               read_map(n, p,
                        {{"max_connections", count(c.max_connections, max_connections_range)},
                         {"max_request_line", store(c.max_request_line, read_size)},
                         {"max_header_bytes", store(c.max_header_bytes, read_size)},
                         {"max_headers", count(c.max_headers, max_headers_range)},
                         {"send_lowat", store(c.send_lowat, read_size)}});
             }},
            {"retry_after",
             [&](const YAML::Node& n, const std::string& p) {
               c.retry_after_seconds =
                   static_cast<std::uint32_t>(read_count(n, p, retry_after_range));
             }},
            {"metrics",
             [&](const YAML::Node& n, const std::string& p) {
               read_map(n, p,
                        {{"enabled", store(c.metrics_enabled, read_bool)},
                         {"listen", store(c.metrics_listen, read_string)}});
             }},
            {"admin",
             [&](const YAML::Node& n, const std::string& p) {
               read_map(n, p,
                        {{"enabled", store(c.admin_enabled, read_bool)},
                         {"listen", store(c.admin_listen, read_string)},
                         {"token_file", store(c.admin_token_file, read_string)}});
             }},
            {"controllers",
             [&](const YAML::Node& n, const std::string& p) {
               read_map(n, p,
                        {{controller_names[0], settings(c.pool)},
                         {controller_names[1], settings(c.grouping)},
                         {controller_names[2], settings(c.admission)}});
             }},
            {"access_log", store(c.access_log, read_string)},
            {"log_level", store(c.log_level, read_string)}});

  for (std::size_t i = 0; i < stage_count; ++i) {
    const std::size_t lead = first_of_group(c, i);
    if (lead == i) continue;
    if (!threads_set[i]) c.stages[i].threads = c.stages[lead].threads;
    if (!queue_set[i]) c.stages[i].queue_capacity = c.stages[lead].queue_capacity;
  }
  validate(c);
  return c;
}

void validate(const config& c) {
  if (!parse_listen(c.listen))
    fail("listen", quoted(c.listen) + " is not ADDR:PORT (e.g. 127.0.0.1:8080, [::1]:8080)");
  validate_stages(c);
  // The endpoint's HTTP server (Debian's civetweb) is built without IPv6.
  const auto metrics_addr = parse_listen(c.metrics_listen);
  if (!metrics_addr || metrics_addr->host.find(':') != std::string::npos)
    fail("metrics.listen",
         quoted(c.metrics_listen) +
             " is not IPv4ADDR:PORT (e.g. 127.0.0.1:9464; IPv6 is not supported)");
  if (c.metrics_enabled && c.metrics_listen == c.listen && parse_listen(c.listen)->port != 0)
    fail("metrics.listen",
         quoted(c.metrics_listen) + " is the public listen address; metrics need their own port");

  validate_admin(c);

  check_duration("cache.revalidate", c.cache_revalidate, milliseconds(0), revalidate_max);
  if (c.cache_max_file_bytes > c.cache_max_bytes / cache_shards)
    fail("cache.max_file_bytes",
         format_size(c.cache_max_file_bytes) + " is larger than cache.max_bytes / " +
             std::to_string(cache_shards) + " = " + format_size(c.cache_max_bytes / cache_shards) +
             " (the cache has " + std::to_string(cache_shards) + " shards)");

  check_duration("timeouts.header", c.header_timeout, timeout_min, timeout_max);
  check_duration("timeouts.keepalive", c.keepalive_timeout, timeout_min, timeout_max);
  check_duration("timeouts.send", c.send_timeout, timeout_min, timeout_max);
  check_duration("timeouts.drain", c.drain_timeout, timeout_min, timeout_max);

  check_count("limits.max_connections", c.max_connections, max_connections_range);
  check_size("limits.max_request_line", c.max_request_line, max_request_line_range.lo,
             max_request_line_range.hi);
  check_size("limits.max_header_bytes", c.max_header_bytes, c.max_request_line,
             max_header_bytes_max, " (at least limits.max_request_line)");
  check_count("limits.max_headers", c.max_headers, max_headers_range);
  check_size("limits.send_lowat", c.send_lowat, 0, send_lowat_max, " (0: the kernel's default)");
  check_count("retry_after", c.retry_after_seconds, retry_after_range);

  if (std::find(std::begin(log_levels), std::end(log_levels), std::string_view(c.log_level)) ==
      std::end(log_levels))
    fail("log_level", quoted(c.log_level) + " is not one of " + join(log_levels));

  validate_controllers(c);
}

config apply_controller_settings(const config& base, std::string_view controller,
                                 std::string_view text, bool replace) {
  const std::size_t which = controller_index(controller);
  const std::string path = controller_path(which);
  YAML::Node node;
  try {
    node = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    std::string where;
    if (!e.mark.is_null())
      where = " at line " + std::to_string(e.mark.line + 1) + ", column " +
              std::to_string(e.mark.column + 1);
    fail(path,
         "syntax error" + where + ": " + one_line(e.msg) + " (expected a JSON or YAML mapping)");
  }
  config c = base;
  with_settings(c, which, [&](auto& settings) {
    if (replace) settings = std::remove_reference_t<decltype(settings)>{};
    if (!node.IsMap()) fail(path, "expected a mapping with keys " + knob_keys(settings));
    read_settings(node, path, settings);
  });
  validate(c);
  return c;
}

std::string controller_settings_json(const config& c, std::string_view controller) {
  std::string out = "{";
  with_settings(c, controller_index(controller), [&](const auto& settings) {
    knobs(settings, [&](std::string_view key, const auto& v, const auto&) {
      if (out.size() > 1) out += ", ";
      out += "\"" + std::string(key) + "\": " + json_value(v);
    });
  });
  return out + "}";
}

}  // namespace weir
