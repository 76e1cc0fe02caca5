#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

namespace weir {

struct connection;

/// The optional access log, in the combined-log style nginx and lighttpd write. Workers append a
/// formatted line to a memory buffer (a short critical section, no I/O); a background thread
/// writes the buffer out every 200 ms, so a slow disk never stalls a response.
class access_log {
 public:
  /// `path` empty: disabled; "-": stdout.
  explicit access_log(const std::string& path);
  ~access_log();
  access_log(const access_log&) = delete;
  access_log& operator=(const access_log&) = delete;

  bool enabled() const { return enabled_; }
  void record(const connection& c);
  void flush();
  /// Opens the file again (after logrotate moved it) and writes there from now on; what was
  /// buffered goes to the old file first. "" when done, else why not (the old file stays).
  /// A no-op for stdout or when disabled.
  std::string reopen();

 private:
  void run();

  std::string path_;
  std::mutex write_mutex_;  // the writes and the descriptor they go to
  bool enabled_ = false;
  int fd_ = -1;
  bool owns_fd_ = false;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::string pending_;
  bool stopping_ = false;
  std::thread writer_;
};

}  // namespace weir
