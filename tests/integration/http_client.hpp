#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace weir::test {

/// Header names compare case-insensitively (RFC 9110 5.1).
struct case_insensitive_less {
  bool operator()(const std::string& a, const std::string& b) const;
};
using header_map = std::multimap<std::string, std::string, case_insensitive_less>;

/// One parsed HTTP/1.x response.
struct response {
  std::string version;  // "HTTP/1.1"
  int status = 0;
  std::string reason;
  header_map headers;
  std::string body;

  bool has(const std::string& name) const { return headers.count(name) > 0; }
  std::size_t count(const std::string& name) const { return headers.count(name); }
  /// The first value of `name`, or "" when absent.
  std::string header(const std::string& name) const;
  /// True when the Connection field lists `token` (case-insensitive).
  bool connection_has(std::string_view token) const;
};

/// Why a read did not produce a response.
enum class read_status {
  ok,
  closed,     // the peer closed (EOF or reset) before sending any byte of a response
  timeout,    // nothing (more) arrived within the receive timeout
  malformed,  // a response that does not parse, or one cut off by the peer closing
};
const char* to_string(read_status s);

/// A small blocking HTTP/1.1 client over one real TCP connection to 127.0.0.1:port. Every
/// receive and send is bounded by a timeout (SO_RCVTIMEO / SO_SNDTIMEO), so a broken server
/// fails a test instead of hanging it. Bytes read past one response stay buffered for the next,
/// which is what pipelining needs. Not thread-safe; one client per thread.
class http_client {
 public:
  static constexpr std::chrono::milliseconds default_timeout{5000};

  struct options {
    std::chrono::milliseconds timeout = default_timeout;  // connect, each send, each receive
    int receive_buffer = 0;  // SO_RCVBUF set before connect; 0 keeps the system default
  };

  /// Connects; throws std::runtime_error when that fails within the timeout.
  explicit http_client(std::uint16_t port) : http_client(port, options{}) {}
  http_client(std::uint16_t port, options opts);
  ~http_client();
  http_client(http_client&& other) noexcept;
  http_client& operator=(http_client&&) = delete;
  http_client(const http_client&) = delete;
  http_client& operator=(const http_client&) = delete;

  /// Sends every byte; throws std::runtime_error on failure or timeout.
  void send(std::string_view bytes);
  /// Sends every byte; false on failure (e.g. the peer already closed).
  bool try_send(std::string_view bytes);

  /// Reads one response. `head`: the request was HEAD, so there is no body whatever the framing
  /// fields say (1xx, 204 and 304 never have one either). Throws std::runtime_error unless ok.
  response read_response(bool head = false);
  read_status try_read_response(response& out, bool head = false);
  /// Reads `n` responses to requests that were not HEAD.
  std::vector<response> read_responses(std::size_t n);
  /// Reads one response per entry of `head`, in order.
  std::vector<response> read_responses(const std::vector<bool>& head);

  /// Sends `raw` and reads its response.
  response request(std::string_view raw, bool head = false);

  /// Receives until at least `n` bytes are buffered (a response may be read part-way this way).
  /// False on timeout or when the peer closes first.
  bool receive_at_least(std::size_t n);
  /// Everything the peer sends until it closes; throws on timeout.
  std::string read_until_eof();
  /// Waits until the peer closes (EOF or reset), discarding what arrives meanwhile (counted in
  /// `discarded` if given). False when the connection is still open after `within`.
  bool wait_for_close(std::chrono::milliseconds within, std::size_t* discarded = nullptr);
  /// Without blocking: has the peer closed (EOF or reset pending, no unread data before it)?
  bool peer_closed_now();

  void set_timeout(std::chrono::milliseconds t);
  /// Sends FIN; the connection stays readable.
  void shutdown_write();
  /// Closes with a reset (SO_LINGER 0) instead of a FIN.
  void reset();
  void close();
  bool is_open() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  /// Bytes received but not yet consumed by a read_* call.
  const std::string& buffered() const { return buffer_; }
  /// What went wrong in the last failed call.
  const std::string& last_error() const { return error_; }

 private:
  enum class fill { data, eof, reset, timeout };
  fill fill_buffer();  // one recv() appended to buffer_
  read_status fail(read_status s, std::string why);
  read_status read_head(response& out, std::size_t& head_end);
  read_status read_body(response& out, std::size_t head_end, bool head);
  read_status read_exact(std::size_t from, std::size_t n);
  read_status read_chunked(response& out, std::size_t from);

  int fd_ = -1;
  std::chrono::milliseconds timeout_;
  std::string buffer_;
  std::string error_;
};

/// "METHOD target HTTP/1.1\r\nHost: localhost\r\n<extra>\r\n". `extra` is zero or more complete
/// header lines, each ending in "\r\n".
std::string make_request(std::string_view method, std::string_view target,
                         std::string_view extra = "");
inline std::string get(std::string_view target, std::string_view extra = "") {
  return make_request("GET", target, extra);
}

/// True when `s` is an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"); the time in `out`.
bool parse_imf_fixdate(std::string_view s, std::time_t* out = nullptr);
std::string format_imf_fixdate(std::time_t t);

/// Tries to connect to 127.0.0.1:port; true when the connection was refused (nothing listens).
bool connection_refused(std::uint16_t port);

/// Ends the process with a message when a test outlives `limit`. A wedged server (a worker stuck
/// in a loop makes stop() wait forever) then fails the run at once instead of holding it until
/// the CTest timeout. Disarmed on destruction.
class hang_guard {
 public:
  hang_guard(std::string what, std::chrono::seconds limit);
  ~hang_guard();
  hang_guard(const hang_guard&) = delete;
  hang_guard& operator=(const hang_guard&) = delete;

 private:
  std::mutex mutex_;
  std::condition_variable done_cv_;
  bool done_ = false;
  std::thread watcher_;
};

/// Polls `condition` until it holds or `within` passes; returns its last value. Polling with a
/// deadline, never a fixed sleep, is how tests wait for the server.
template <class Condition>
bool eventually(std::chrono::milliseconds within, Condition condition,
                std::chrono::milliseconds every = std::chrono::milliseconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + within;
  for (;;) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return condition();
    std::this_thread::sleep_for(every);
  }
}

}  // namespace weir::test
