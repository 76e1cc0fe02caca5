#pragma once
// The standard process_* series of Prometheus clients (the names the Go and Python clients use),
// so dashboards written for them work unchanged. Linux only: read from /proc at scrape time.

#include <cstdint>
#include <optional>
#include <vector>

#include <prometheus/metric_family.h>

namespace weir::metrics {

/// One reading of this process. A field is empty when its source could not be read; its series
/// is then left out of the scrape rather than reported as 0.
struct process_sample {
  std::optional<double> cpu_seconds;            // user + system, /proc/self/stat
  std::optional<std::uint64_t> resident_bytes;  // /proc/self/stat rss * page size
  std::optional<std::uint64_t> virtual_bytes;   // /proc/self/stat vsize
  std::optional<std::uint64_t> open_fds;        // entries of /proc/self/fd
  std::optional<std::uint64_t> max_fds;         // soft RLIMIT_NOFILE
  std::optional<double> start_time_seconds;  // since the Unix epoch: /proc/stat btime + starttime
};

process_sample read_process();

/// process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes,
/// process_open_fds, process_max_fds, process_start_time_seconds.
std::vector<prometheus::MetricFamily> process_families(const process_sample& p);
inline std::vector<prometheus::MetricFamily> process_families() {
  return process_families(read_process());
}

}  // namespace weir::metrics
