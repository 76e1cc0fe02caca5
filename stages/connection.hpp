#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/task.hpp"
#include "stages/http/parser.hpp"

namespace weir {

struct file_entry;

/// Who holds a connection. Exactly one owner at a time: a stage while `active`, the event loop
/// while parked (it alone turns `parked_*` back into `active`, when epoll reports readiness).
enum class conn_state : std::uint8_t { free, active, parked_read, parked_write };

/// Readiness bits. `ready_read`/`ready_write` are used up by owners; the end-of-stream ones are
/// sticky, because a FIN or an error that arrived before an owner's last read raises no new edge.
inline constexpr std::uint8_t ready_read = 1;
inline constexpr std::uint8_t ready_write = 2;
inline constexpr std::uint8_t ready_peer_eof = 4;  // EPOLLRDHUP: no more bytes will come
inline constexpr std::uint8_t ready_hangup = 8;    // EPOLLHUP/EPOLLERR: both directions are done
inline constexpr std::uint8_t wakes_reader = ready_read | ready_peer_eof | ready_hangup;
inline constexpr std::uint8_t wakes_writer = ready_write | ready_hangup;

enum class close_reason : std::uint8_t {
  client,    // peer closed or reset
  done,      // Connection: close, HTTP/1.0, or an error that ends the connection
  timeout,   // header, keep-alive idle or send stall
  error,     // socket error
  overload,  // answered 503 because a queue was full
  shutdown,  // server stopping
  count
};

/// One client connection: the task that travels between stages. Fields below `state` belong to
/// whoever owns the connection; the event loop reads them only after acquiring `state`.
struct connection : runtime::task {
  std::atomic<conn_state> state{conn_state::free};
  std::atomic<std::uint32_t> generation{0};
  std::atomic<std::int64_t> deadline_ms{0};  // when parked: close after this (steady ms)
  std::atomic<bool> timed_out{false};        // set by the event loop before it shuts the socket
  /// Edge-triggered readiness the event loop has seen and no owner has used up yet
  /// (`ready_read` / `ready_write`). An owner clears a bit before the syscall that may block.
  std::atomic<std::uint8_t> ready{0};
  std::uint32_t slot = 0;
  int fd = -1;
  sockaddr_storage peer{};

  // Input: bytes [in_start, in_end) of `in` are received and not yet consumed.
  std::unique_ptr<char[]> in;
  std::uint32_t in_cap = 0, in_start = 0, in_end = 0;
  std::uint64_t discard = 0;          // body bytes of the last request still to drop
  std::int64_t request_start_ms = 0;  // first byte of the request being read (0: none yet)
  std::int64_t request_start_ns = 0;
  bool in_request = false;      // a request was read and its response is not finished
  std::uint8_t req_method = 3;  // its `method_label` (stages/stats.hpp)

  // The request being served (views into `in`, valid until the response is sent).
  http::request_head req;
  std::uint32_t head_len = 0;  // bytes of `in` the request head occupies
  std::string path;            // normalised
  bool keep_alive = false;
  bool close_after = false;  // set when the connection must close after this response
  bool lingering = false;    // response sent and write side shut: drain input until EOF
  std::shared_ptr<const file_entry> entry;

  // Output.
  std::string out_head;
  std::uint32_t out_head_sent = 0;
  const char* body = nullptr;  // in-memory body (owned by `entry` or static)
  std::size_t body_left = 0;
  int file_fd = -1;  // sendfile source (owned by `entry`)
  off_t file_off = 0;
  std::size_t file_left = 0;
  int status = 0;
  std::uint64_t bytes_sent = 0;
  std::uint64_t requests = 0;

  /// Drops per-connection state before the slot is reused.
  void reset();
};

/// Connection slots with a LIFO free list. A slot's memory is allocated the first time it is
/// used and kept (so memory follows the peak of open connections, not the configured limit);
/// slots [0, allocated()) exist. Event-loop handles are (generation << 32 | slot), so a stale
/// epoll event for a reused slot is recognised and dropped.
class connection_table {
 public:
  explicit connection_table(std::size_t capacity);

  /// A free slot (state `active`, owned by the caller), or nullptr when all are in use.
  connection* acquire();
  void release(connection& c);

  connection* find(std::uint64_t handle);
  static std::uint64_t handle(const connection& c) {
    return (static_cast<std::uint64_t>(c.generation.load(std::memory_order_relaxed)) << 32) |
           c.slot;
  }

  std::size_t capacity() const { return capacity_; }
  std::size_t in_use() const { return in_use_.load(std::memory_order_relaxed); }
  /// Slots that exist (every index below this may be passed to `at`).
  std::size_t allocated() const { return allocated_.load(std::memory_order_acquire); }
  connection& at(std::size_t i) { return *slots_[i]; }

 private:
  const std::size_t capacity_;
  std::unique_ptr<std::unique_ptr<connection>[]> slots_;
  std::atomic<std::size_t> allocated_{0};
  std::mutex mutex_;
  std::vector<std::uint32_t> free_;
  std::atomic<std::size_t> in_use_{0};
};

}  // namespace weir
