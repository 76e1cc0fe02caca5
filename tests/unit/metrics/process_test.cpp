#include "metrics/process.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <prometheus/text_serializer.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

namespace weir::metrics {
namespace {

double process_cpu_clock() {
  timespec ts{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// Counted apart from read_process(): the iterator's own descriptor shows in the listing too.
std::uint64_t count_fd_entries() {
  std::uint64_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n - 1;
}

TEST(Process, OpenFdsCountsEveryDescriptor) {
  const auto before = read_process().open_fds;
  ASSERT_TRUE(before.has_value());
  EXPECT_EQ(*before, count_fd_entries());

  int fds[3];
  for (int& fd : fds) {
    fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
  }
  const auto after = read_process().open_fds;
  const auto independent = count_fd_entries();
  for (int fd : fds) ::close(fd);

  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(*after, *before + 3);
  EXPECT_EQ(*after, independent);
}

TEST(Process, MaxFdsIsTheSoftLimit) {
  rlimit lim{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &lim), 0);
  const auto p = read_process();
  ASSERT_TRUE(p.max_fds.has_value());
  EXPECT_EQ(*p.max_fds, lim.rlim_cur);
}

TEST(Process, MemoryMatchesStatm) {
  const auto p = read_process();
  std::ifstream statm("/proc/self/statm");
  std::uint64_t size_pages = 0, resident_pages = 0;
  ASSERT_TRUE(statm >> size_pages >> resident_pages);
  const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));

  ASSERT_TRUE(p.resident_bytes.has_value());
  ASSERT_TRUE(p.virtual_bytes.has_value());
  EXPECT_GT(*p.resident_bytes, 0u);
  EXPECT_GE(*p.virtual_bytes, *p.resident_bytes);
  // Both files read the same kernel counters; allow for what the reads themselves allocated.
  constexpr double slack = 4 << 20;
  EXPECT_NEAR(static_cast<double>(*p.resident_bytes), static_cast<double>(resident_pages * page),
              slack);
  EXPECT_NEAR(static_cast<double>(*p.virtual_bytes), static_cast<double>(size_pages * page), slack);
}

TEST(Process, StartTimeIsRecentAndNotInTheFuture) {
  const auto p = read_process();
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  ASSERT_TRUE(p.start_time_seconds.has_value());
  EXPECT_LE(*p.start_time_seconds, now);
  EXPECT_GT(*p.start_time_seconds, now - 24 * 3600);
}

TEST(Process, CpuSecondsFollowTheProcessCpuClock) {
  const double until = process_cpu_clock() + 0.1;
  while (process_cpu_clock() < until) {
    // burn CPU so the reading is well away from 0
  }
  const double lo = process_cpu_clock();
  const auto p = read_process();
  const double hi = process_cpu_clock();
  ASSERT_TRUE(p.cpu_seconds.has_value());
  // /proc counts whole clock ticks (user and system each rounded down).
  EXPECT_GE(*p.cpu_seconds, lo - 0.05);
  EXPECT_LE(*p.cpu_seconds, hi + 0.001);
}

TEST(Process, FamiliesUseTheStandardNamesAndSkipWhatCouldNotBeRead) {
  process_sample s;
  s.cpu_seconds = 1.25;
  s.resident_bytes = 4096;
  s.virtual_bytes = 8192;
  s.open_fds = 7;
  s.max_fds = 1024;
  s.start_time_seconds = 1700000000.5;
  std::ostringstream text;
  prometheus::TextSerializer().Serialize(text, process_families(s));
  EXPECT_EQ(text.str(),
            "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
            "# TYPE process_cpu_seconds_total counter\n"
            "process_cpu_seconds_total 1.25\n"
            "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
            "# TYPE process_resident_memory_bytes gauge\n"
            "process_resident_memory_bytes 4096\n"
            "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
            "# TYPE process_virtual_memory_bytes gauge\n"
            "process_virtual_memory_bytes 8192\n"
            "# HELP process_open_fds Number of open file descriptors.\n"
            "# TYPE process_open_fds gauge\n"
            "process_open_fds 7\n"
            "# HELP process_max_fds Maximum number of open file descriptors.\n"
            "# TYPE process_max_fds gauge\n"
            "process_max_fds 1024\n"
            "# HELP process_start_time_seconds Start time of the process since unix epoch in "
            "seconds.\n"
            "# TYPE process_start_time_seconds gauge\n"
            "process_start_time_seconds 1700000000.5\n");

  process_sample partial;
  partial.max_fds = 1024;
  const auto families = process_families(partial);
  ASSERT_EQ(families.size(), 1u);
  EXPECT_EQ(families[0].name, "process_max_fds");
}

TEST(Process, LiveFamiliesAreAllThere) {
  const auto families = process_families();
  ASSERT_EQ(families.size(), 6u);
  for (const auto& f : families) {
    EXPECT_EQ(f.name.rfind("process_", 0), 0u) << f.name;
    EXPECT_EQ(f.name.ends_with("_total"), f.type == prometheus::MetricType::Counter) << f.name;
  }
}

}  // namespace
}  // namespace weir::metrics
