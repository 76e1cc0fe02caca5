#pragma once
// Holds one of the server's worker threads where it stands (parked, or between two tasks) until
// released, without any hook in the server: a signal whose handler waits. The thread is found by
// the name the runtime gives it ("<group>/<n>", as /proc/self/task/*/comm shows). One hold at a
// time per process.

#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>

namespace weir::test {

class thread_hold {
 public:
  /// Holds the thread named `name`; returns once it is inside the hold. Throws if no thread has
  /// that name or it does not stop within 20 s.
  explicit thread_hold(const std::string& name) {
    const pid_t tid = find(name);
    if (tid == 0) throw std::runtime_error("thread_hold: no thread named " + name);
    struct sigaction sa {};
    sa.sa_handler = &thread_hold::wait_here;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;  // the held thread's syscalls go on as if nothing happened
    ::sigaction(SIGUSR2, &sa, &previous_);
    state().store(requested);
    ::syscall(SYS_tgkill, ::getpid(), tid, SIGUSR2);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (state().load() != held) {
      if (std::chrono::steady_clock::now() > deadline) {
        release();
        throw std::runtime_error("thread_hold: " + name + " did not stop");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  ~thread_hold() { release(); }
  thread_hold(const thread_hold&) = delete;
  thread_hold& operator=(const thread_hold&) = delete;

  void release() {
    if (released_) return;
    released_ = true;
    if (state().exchange(released) == held) {
      // Wait for the handler to return before the next hold may reuse the state.
      while (state().load() != idle) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    state().store(idle);
    ::sigaction(SIGUSR2, &previous_, nullptr);
  }

 private:
  enum : int { idle, requested, held, released };
  static std::atomic<int>& state() {
    static std::atomic<int> s{idle};
    return s;
  }
  static void wait_here(int) {
    int expected = requested;
    if (!state().compare_exchange_strong(expected, held)) return;
    const timespec tick{0, 1'000'000};
    while (state().load() != released) ::nanosleep(&tick, nullptr);
    state().store(idle);
  }
  static pid_t find(const std::string& name) {
    for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
      std::ifstream comm(task.path() / "comm");
      std::string line;
      if (std::getline(comm, line) && line == name) return std::stoi(task.path().filename());
    }
    return 0;
  }

  struct sigaction previous_ {};
  bool released_ = false;
};

}  // namespace weir::test
