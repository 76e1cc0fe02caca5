// weir-slowfs SOURCE MOUNTPOINT [options]: a slow disk for slow-disk experiments (README.md).
#include <charconv>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bench/slowfs/control.hpp"
#include "bench/slowfs/fs.hpp"

namespace {

constexpr const char* usage =
    "usage: weir-slowfs SOURCE MOUNTPOINT [--latency-ms MS] [--read-latency-ms MS]\n"
    "         [--open-latency-ms MS] [--stat-latency-ms MS] [--queue Q] [--threads N]\n"
    "         [--attr-timeout SECONDS] [--page-cache | --keep-cache] [--foreground]\n"
    "Mirrors SOURCE read-only at MOUNTPOINT; every open, stat and read waits for a disk that\n"
    "serves Q operations at a time (default 1), each taking its latency (default 0: "
    "pass-through).\n"
    "While mounted: cat MOUNTPOINT/.slowfs (settings, counters);\n"
    "               echo 'latency_ms=20 queue=4' > MOUNTPOINT/.slowfs\n"
    "Unmount: SIGINT/SIGTERM, or fusermount3 -u MOUNTPOINT\n";

std::string parse_uint(std::string_view name, std::string_view text, unsigned low, unsigned high,
                       const char* what, unsigned& out) {
  unsigned value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc{} || ptr != end || value < low || value > high) {
    return std::string(name) + ": want " + what + ", an integer " + std::to_string(low) + ".." +
           std::to_string(high) + ", got '" + std::string(text) + "'";
  }
  out = value;
  return "";
}

int fail(const std::string& message) {
  std::fprintf(stderr, "weir-slowfs: %s\n", message.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace weir::slowfs;
  mount_options options;
  std::optional<std::chrono::nanoseconds> all, read, open, stat;
  std::vector<std::string> positional;
  const std::string options_list =
      "options: --latency-ms, --read-latency-ms, --open-latency-ms, --stat-latency-ms, --queue, "
      "--threads, --attr-timeout, --page-cache, --keep-cache, --foreground, --help";
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::fputs(usage, stdout);
      return 0;
    }
    if (arg == "-f" || arg == "--foreground") {
      options.foreground = true;
      continue;
    }
    if (arg == "--page-cache") {
      options.page_cache = true;
      continue;
    }
    if (arg == "--keep-cache") {  // a disk behind Linux's page cache: a first read is slow
      options.page_cache = options.keep_cache = true;
      continue;
    }
    if (arg.size() < 2 || arg.compare(0, 2, "--") != 0) {
      positional.push_back(arg);
      continue;
    }
    // --name VALUE or --name=VALUE
    std::string name = arg, value;
    if (const auto eq = arg.find('='); eq != std::string::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    } else if (name == "--latency-ms" || name == "--read-latency-ms" ||
               name == "--open-latency-ms" || name == "--stat-latency-ms" || name == "--queue" ||
               name == "--threads" || name == "--attr-timeout") {
      if (i + 1 < argc) value = argv[++i];
    }
    std::string error;
    std::chrono::nanoseconds ns{};
    if (name == "--latency-ms") {
      if ((error = parse_latency_ms(name, value, ns)).empty()) all = ns;
    } else if (name == "--read-latency-ms") {
      if ((error = parse_latency_ms(name, value, ns)).empty()) read = ns;
    } else if (name == "--open-latency-ms") {
      if ((error = parse_latency_ms(name, value, ns)).empty()) open = ns;
    } else if (name == "--stat-latency-ms") {
      if ((error = parse_latency_ms(name, value, ns)).empty()) stat = ns;
    } else if (name == "--queue") {
      error = parse_queue(name, value, options.disk.queue);
    } else if (name == "--threads") {
      error = parse_uint(name, value, 1, 1024, "FUSE worker threads", options.threads);
    } else if (name == "--attr-timeout") {
      unsigned seconds = 0;
      error = parse_uint(name, value, 0, 3600, "seconds the kernel may cache names and attributes",
                         seconds);
      options.attr_timeout_s = seconds;
    } else {
      error = "unknown option '" + arg + "' (" + options_list + ")";
    }
    if (!error.empty()) return fail(error);
  }
  if (positional.size() != 2) {
    return fail("want SOURCE MOUNTPOINT, got " + std::to_string(positional.size()) +
                " arguments (weir-slowfs --help)");
  }
  options.source = positional[0];
  options.mountpoint = positional[1];
  // --latency-ms sets all three; the specific options win whatever their order.
  if (all) options.disk.open_latency = options.disk.stat_latency = options.disk.read_latency = *all;
  if (read) options.disk.read_latency = *read;
  if (open) options.disk.open_latency = *open;
  if (stat) options.disk.stat_latency = *stat;
  return run_slowfs(options);
}
