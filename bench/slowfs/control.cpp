#include "bench/slowfs/control.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>

namespace weir::slowfs {
namespace {

std::string quoted(std::string_view text) {
  constexpr std::size_t shown = 40;
  std::string out = "'";
  for (char c : text.substr(0, shown)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (text.size() > shown) out += "...";
  return out + "'";
}

std::string format_ms(std::chrono::nanoseconds ns) {
  char text[32];
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(ns).count();
  if (us % 1000 == 0) {
    std::snprintf(text, sizeof text, "%lld", static_cast<long long>(us / 1000));
  } else {
    std::snprintf(text, sizeof text, "%lld.%03lld", static_cast<long long>(us / 1000),
                  static_cast<long long>(us % 1000));
    std::string trimmed = text;
    while (trimmed.back() == '0') trimmed.pop_back();
    return trimmed;
  }
  return text;
}

}  // namespace

std::string parse_latency_ms(std::string_view name, std::string_view text,
                             std::chrono::nanoseconds& out) {
  double ms = -1;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, ms, std::chars_format::fixed);
  if (text.empty() || ec != std::errc{} || ptr != end || !std::isfinite(ms) || ms < 0 ||
      ms > max_latency_ms) {
    return std::string(name) +
           ": want milliseconds 0..60000 (e.g. 20 or 0.5; 0 = pass-through), got " + quoted(text);
  }
  // Microsecond resolution: what clock_nanosleep honours in practice.
  out = std::chrono::microseconds{std::llround(ms * 1000)};
  return "";
}

std::string parse_queue(std::string_view name, std::string_view text, unsigned& out) {
  unsigned value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc{} || ptr != end || value < 1 || value > max_queue) {
    return std::string(name) +
           ": want the number of operations served at a time, an integer 1..4096, got " +
           quoted(text);
  }
  out = value;
  return "";
}

std::string parse_control(std::string_view line, const disk_settings& current,
                          control_request& out) {
  control_request request{current, false};
  constexpr std::string_view space = " \t\r\n";
  const std::string_view settable =
      "settable: latency_ms, read_latency_ms, open_latency_ms, stat_latency_ms, queue, reset";
  bool any = false;
  std::size_t pos = 0;
  while ((pos = line.find_first_not_of(space, pos)) != std::string_view::npos) {
    const std::size_t stop = std::min(line.find_first_of(space, pos), line.size());
    const std::string_view word = line.substr(pos, stop - pos);
    pos = stop;
    any = true;
    if (word == "reset") {
      request.reset_counters = true;
      continue;
    }
    const std::size_t eq = word.find('=');
    if (eq == std::string_view::npos) {
      return "control: want key=value words or 'reset' (" + std::string(settable) + "), got " +
             quoted(word);
    }
    const std::string_view key = word.substr(0, eq);
    const std::string_view value = word.substr(eq + 1);
    std::string error;
    if (key == "latency_ms") {
      std::chrono::nanoseconds ns{};
      error = parse_latency_ms(key, value, ns);
      request.settings.open_latency = request.settings.stat_latency =
          request.settings.read_latency = ns;
    } else if (key == "read_latency_ms") {
      error = parse_latency_ms(key, value, request.settings.read_latency);
    } else if (key == "open_latency_ms") {
      error = parse_latency_ms(key, value, request.settings.open_latency);
    } else if (key == "stat_latency_ms") {
      error = parse_latency_ms(key, value, request.settings.stat_latency);
    } else if (key == "queue") {
      error = parse_queue(key, value, request.settings.queue);
    } else {
      error = "control: unknown key " + quoted(key) + " (" + std::string(settable) + ")";
    }
    if (!error.empty()) return error;
  }
  if (!any) return "control: empty line (" + std::string(settable) + ")";
  out = request;
  return "";
}

std::string format_status(const disk_settings& settings, const disk_counters& counters) {
  std::string out = "read_latency_ms=" + format_ms(settings.read_latency) +
                    " open_latency_ms=" + format_ms(settings.open_latency) +
                    " stat_latency_ms=" + format_ms(settings.stat_latency) +
                    " queue=" + std::to_string(settings.queue) + "\n";
  const auto line = [&out](const char* key, std::uint64_t value) {
    out += key;
    out += '=';
    out += std::to_string(value);
    out += '\n';
  };
  line("served", counters.served);
  line("served_open", counters.by_kind[static_cast<std::size_t>(op_kind::open)]);
  line("served_stat", counters.by_kind[static_cast<std::size_t>(op_kind::stat)]);
  line("served_read", counters.by_kind[static_cast<std::size_t>(op_kind::read)]);
  line("read_bytes", counters.read_bytes);
  line("waiting", counters.waiting);
  line("in_service", counters.in_service);
  line("max_waiting", counters.max_waiting);
  return out;
}

}  // namespace weir::slowfs
