#include "metrics/process.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace weir::metrics {
namespace {

std::optional<std::string> read_text(const char* path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return std::move(text).str();
}

std::optional<std::uint64_t> to_u64(std::string_view s) {
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
  return v;
}

struct self_stat {
  std::uint64_t utime = 0, stime = 0, starttime = 0;  // clock ticks
  std::uint64_t vsize = 0, rss_pages = 0;
};

/// Fields 14, 15, 22, 23 and 24 of proc(5) /proc/[pid]/stat. The command name (field 2) may
/// hold spaces and parentheses, so counting starts after the last ')'.
std::optional<self_stat> read_self_stat() {
  const auto text = read_text("/proc/self/stat");
  if (!text) return std::nullopt;
  const auto close = text->rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream in(text->substr(close + 1));
  std::vector<std::string> fields;  // fields[0] is field 3 (state)
  for (std::string f; in >> f;) fields.push_back(std::move(f));
  if (fields.size() < 22) return std::nullopt;
  const auto field = [&](std::size_t n) { return to_u64(fields[n - 3]); };
  const auto utime = field(14), stime = field(15), start = field(22), vsize = field(23),
             rss = field(24);  // rss is signed in the kernel's format but never negative
  if (!utime || !stime || !start || !vsize || !rss) return std::nullopt;
  return self_stat{*utime, *stime, *start, *vsize, *rss};
}

std::optional<std::uint64_t> read_boot_time() {
  const auto text = read_text("/proc/stat");
  if (!text) return std::nullopt;
  std::istringstream in(*text);
  for (std::string line; std::getline(in, line);) {
    constexpr std::string_view key = "btime ";
    if (line.starts_with(key)) return to_u64(std::string_view(line).substr(key.size()));
  }
  return std::nullopt;
}

std::optional<std::uint64_t> count_open_fds() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return std::nullopt;
  const auto own = static_cast<std::uint64_t>(::dirfd(dir));
  std::uint64_t n = 0;
  while (const dirent* e = ::readdir(dir)) {
    const auto fd = to_u64(e->d_name);
    if (fd && *fd != own) ++n;  // skips "." and ".." and the descriptor reading this directory
  }
  ::closedir(dir);
  return n;
}

void add(std::vector<prometheus::MetricFamily>& out, const char* name, const char* help,
         prometheus::MetricType type, double value) {
  prometheus::MetricFamily f;
  f.name = name;
  f.help = help;
  f.type = type;
  f.metric.resize(1);
  if (type == prometheus::MetricType::Counter) {
    f.metric[0].counter.value = value;
  } else {
    f.metric[0].gauge.value = value;
  }
  out.push_back(std::move(f));
}

}  // namespace

process_sample read_process() {
  process_sample p;
  const long ticks = ::sysconf(_SC_CLK_TCK);
  const long page = ::sysconf(_SC_PAGESIZE);
  if (const auto st = read_self_stat(); st && ticks > 0 && page > 0) {
    p.cpu_seconds = static_cast<double>(st->utime + st->stime) / static_cast<double>(ticks);
    p.resident_bytes = st->rss_pages * static_cast<std::uint64_t>(page);
    p.virtual_bytes = st->vsize;
    if (const auto boot = read_boot_time()) {
      p.start_time_seconds = static_cast<double>(*boot) +
                             static_cast<double>(st->starttime) / static_cast<double>(ticks);
    }
  }
  p.open_fds = count_open_fds();
  if (rlimit lim{}; ::getrlimit(RLIMIT_NOFILE, &lim) == 0) p.max_fds = lim.rlim_cur;
  return p;
}

std::vector<prometheus::MetricFamily> process_families(const process_sample& p) {
  using prometheus::MetricType;
  std::vector<prometheus::MetricFamily> out;
  out.reserve(6);
  // The help texts are the Go client's, word for word.
  if (p.cpu_seconds) {
    add(out, "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
        MetricType::Counter, *p.cpu_seconds);
  }
  if (p.resident_bytes) {
    add(out, "process_resident_memory_bytes", "Resident memory size in bytes.", MetricType::Gauge,
        static_cast<double>(*p.resident_bytes));
  }
  if (p.virtual_bytes) {
    add(out, "process_virtual_memory_bytes", "Virtual memory size in bytes.", MetricType::Gauge,
        static_cast<double>(*p.virtual_bytes));
  }
  if (p.open_fds) {
    add(out, "process_open_fds", "Number of open file descriptors.", MetricType::Gauge,
        static_cast<double>(*p.open_fds));
  }
  if (p.max_fds) {
    add(out, "process_max_fds", "Maximum number of open file descriptors.", MetricType::Gauge,
        static_cast<double>(*p.max_fds));
  }
  if (p.start_time_seconds) {
    add(out, "process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
        MetricType::Gauge, *p.start_time_seconds);
  }
  return out;
}

}  // namespace weir::metrics
