#include "bench/slowfs/disk_model.hpp"

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <functional>

namespace weir::slowfs {

std::chrono::nanoseconds disk_settings::latency(op_kind kind) const {
  switch (kind) {
    case op_kind::open:
      return open_latency;
    case op_kind::stat:
      return stat_latency;
    case op_kind::read:
      return read_latency;
  }
  return std::chrono::nanoseconds{0};
}

disk_model::disk_model(const disk_settings& settings, time_point now)
    : settings_(settings), free_at_(settings.queue, now), now_(now) {}

disk_model::time_point disk_model::advance(time_point now) {
  now_ = std::max(now_, now);
  while (!starts_.empty() && starts_.front() <= now_) starts_.pop_front();
  return now_;
}

disk_model::time_point disk_model::admit(op_kind kind, time_point now) {
  std::lock_guard lock(mutex_);
  now = advance(now);
  ++admitted_;
  const auto latency = settings_.latency(kind);
  if (latency.count() == 0) return now;
  // First come, first served: the op takes the server that is idle first.
  auto server = std::min_element(free_at_.begin(), free_at_.end());
  const time_point start = std::max(now, *server);
  *server = start + latency;
  if (start > now) {
    starts_.push_back(start);  // starts ascend: each admit takes the earliest idle server
    counters_.max_waiting = std::max<std::uint64_t>(counters_.max_waiting, starts_.size());
  }
  return start + latency;
}

void disk_model::finished(op_kind kind, std::uint64_t read_bytes) {
  std::lock_guard lock(mutex_);
  ++counters_.served;
  ++counters_.by_kind[static_cast<std::size_t>(kind)];
  counters_.read_bytes += read_bytes;
}

void disk_model::apply(const disk_settings& settings, time_point now) {
  std::lock_guard lock(mutex_);
  now = advance(now);
  if (settings.queue < free_at_.size()) {
    // Keep the servers that stay busy longest: a shrunk disk starts nothing new until fewer
    // than `queue` ops are in service.
    std::sort(free_at_.begin(), free_at_.end(), std::greater<>());
    free_at_.resize(settings.queue);
  } else {
    free_at_.resize(settings.queue, now);
  }
  settings_ = settings;
}

disk_settings disk_model::settings() const {
  std::lock_guard lock(mutex_);
  return settings_;
}

disk_counters disk_model::counters(time_point now) {
  std::lock_guard lock(mutex_);
  advance(now);
  disk_counters result = counters_;
  result.waiting = starts_.size();
  const std::uint64_t outstanding = admitted_ - counters_.served;
  result.in_service = outstanding > result.waiting ? outstanding - result.waiting : 0;
  return result;
}

void disk_model::reset_counters(time_point now) {
  std::lock_guard lock(mutex_);
  advance(now);
  admitted_ -= counters_.served;
  counters_ = disk_counters{};
  counters_.max_waiting = starts_.size();
}

slow_disk::slow_disk(const disk_settings& settings) : model_(settings, monotonic_now()) {}

void slow_disk::serve(op_kind kind) {
  sleep_until(model_.admit(kind, monotonic_now()));
}

disk_model::time_point monotonic_now() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::chrono::seconds{ts.tv_sec} + std::chrono::nanoseconds{ts.tv_nsec};
}

void sleep_until(disk_model::time_point deadline) {
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(deadline);
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(seconds.count());
  ts.tv_nsec = static_cast<long>((deadline - seconds).count());
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

}  // namespace weir::slowfs
