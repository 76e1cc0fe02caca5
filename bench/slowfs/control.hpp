#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "bench/slowfs/disk_model.hpp"

namespace weir::slowfs {

inline constexpr double max_latency_ms = 60000;
inline constexpr unsigned max_queue = 4096;

/// One value of one setting. On error returns a one-line message naming `name` and the accepted
/// values, and leaves `out` unchanged; on success returns "".
std::string parse_latency_ms(std::string_view name, std::string_view text,
                             std::chrono::nanoseconds& out);
std::string parse_queue(std::string_view name, std::string_view text, unsigned& out);

struct control_request {
  disk_settings settings;       // the current settings with the line's changes applied
  bool reset_counters = false;  // the line held the word `reset`
};

/// Parses a control line: whitespace-separated `key=value` words (latency_ms sets all three
/// latencies, read_latency_ms, open_latency_ms, stat_latency_ms, queue) and the word `reset`,
/// applied left to right over `current`. All or nothing: on error returns a one-line message and
/// leaves `out` unchanged.
std::string parse_control(std::string_view line, const disk_settings& current,
                          control_request& out);

/// What reading the control file shows: the settings as a line parse_control accepts, then the
/// counters, one `key=value` per line.
std::string format_status(const disk_settings& settings, const disk_counters& counters);

}  // namespace weir::slowfs
