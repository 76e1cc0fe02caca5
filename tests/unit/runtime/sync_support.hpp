#pragma once
// Synchronisation helpers shared by the runtime tests: no fixed sleeps anywhere.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace weir::runtime::testing_support {

// Polls instead of sleeping a fixed time: fast when the condition holds, bounded when it never
// does.
inline bool eventually(const std::function<bool()>& condition,
                       std::chrono::seconds limit = std::chrono::seconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

// Holds workers until the test opens it. Unlike std::latch it may be opened twice, so a guard can
// always release blocked workers (even after a failed assertion) before their group joins them.
class gate {
 public:
  void open() {
    std::lock_guard lock(mutex_);
    open_ = true;
    cv_.notify_all();
  }
  void wait() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [this] { return open_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool open_ = false;
};

struct gate_opener {
  gate& g;
  ~gate_opener() { g.open(); }
};

}  // namespace weir::runtime::testing_support
