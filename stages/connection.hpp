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

#include "runtime/admission.hpp"
#include "runtime/task.hpp"
#include "stages/http/parser.hpp"

namespace weir {

struct file_entry;

/// Who holds a connection. Exactly one owner at a time: a stage while `active`, the event loop
/// while parked (only a successful compare-exchange of the connection's word turns `parked_*`
/// back into `active`, so whoever wins it is the one owner).
enum class conn_state : std::uint8_t { free, active, parked_read, parked_write };

/// Readiness bits. `ready_read`/`ready_write` are used up by owners; the end-of-stream ones are
/// sticky, because a FIN or an error that arrived before an owner's last read raises no new edge.
inline constexpr std::uint8_t ready_read = 1;
inline constexpr std::uint8_t ready_write = 2;
inline constexpr std::uint8_t ready_peer_eof = 4;  // EPOLLRDHUP: no more bytes will come
inline constexpr std::uint8_t ready_hangup = 8;    // EPOLLHUP/EPOLLERR: both directions are done
inline constexpr std::uint8_t wakes_reader = ready_read | ready_peer_eof | ready_hangup;
inline constexpr std::uint8_t wakes_writer = ready_write | ready_hangup;

/// A connection's ownership word: generation, park sequence, readiness and state in one atomic, so
/// "is this event for this connection, record it, and take the connection if it waits for it"
/// is one compare-exchange, and a stale event for a closed connection whose slot was reused can
/// never touch the new one. The park sequence changes on every park, so a timeout scan that read
/// a parked word cannot take the connection after it was woken and parked again (ABA).
///   bits  0-7  conn_state     bits 8-15  readiness     bits 16-31  park sequence
///   bits 32-63 generation (also the high half of the connection's event-loop handle)
struct conn_word {
  std::uint64_t bits = 0;

  conn_state state() const { return static_cast<conn_state>(bits & 0xff); }
  std::uint8_t ready() const { return static_cast<std::uint8_t>(bits >> 8); }
  std::uint32_t generation() const { return static_cast<std::uint32_t>(bits >> 32); }
  conn_word with_state(conn_state s) const {
    return {(bits & ~std::uint64_t{0xff}) | std::uint8_t(s)};
  }
  conn_word with_ready(std::uint8_t r) const { return {bits | (std::uint64_t{r} << 8)}; }
  conn_word next_park() const {
    const std::uint64_t seq = ((bits >> 16) + 1) & 0xffff;
    return {(bits & ~(std::uint64_t{0xffff} << 16)) | (seq << 16)};
  }
  static conn_word make(std::uint32_t generation, conn_state s) {
    return {(std::uint64_t{generation} << 32) | std::uint8_t(s)};
  }
  friend bool operator==(conn_word, conn_word) = default;
};

enum class close_reason : std::uint8_t {
  client,    // peer closed or reset
  done,      // Connection: close, HTTP/1.0, or an error that ends the connection
  timeout,   // header, keep-alive idle or send stall
  error,     // socket error
  overload,  // answered 503 because a queue was full
  shutdown,  // server stopping
  count
};

/// One client connection: the task that travels between stages. Fields below `word` belong to
/// whoever owns the connection; the event loop reads them only after taking it through `word`.
/// The admission place a connection's request holds (runtime/admission.hpp), if any.
enum class admission_held : std::uint8_t { none, request, miss };
constexpr runtime::admission_class held_class(admission_held h) {
  return h == admission_held::miss ? runtime::admission_class::miss
                                   : runtime::admission_class::request;
}

/// A connection's peer, as accept returned it: IPv4 or IPv6 (a quarter of a sockaddr_storage).
union peer_address {
  sockaddr any;
  sockaddr_in v4;
  sockaddr_in6 v6;
};

/// What a connection holds only while a request is read or answered: the input buffer, the
/// parsed head (views into that buffer), the response head being built and the file it serves.
/// Idle connections hold none (an idle keep-alive connection then costs what `connection`
/// does, not the buffer too); they come from a per-thread cache of spares, so taking one is no
/// allocation in the steady state.
struct exchange {
  std::unique_ptr<char[]> in;  // input; [connection::in_start, in_end) is unconsumed
  std::uint32_t in_cap = 0;
  http::request_head req;  // the request being served (views into `in`)
  std::string path;        // normalised
  std::string out_head;    // the response head
  std::shared_ptr<const file_entry> entry;
  /// The file bytes the send stage sends next: `read_in` asks disk_io to read them into memory
  /// first; `resident` says it just did (the next turn sends without asking again). Set for
  /// each file response by prepare_file_response.
  enum class file_pages : std::uint8_t { unknown, read_in, resident };
  file_pages pages = file_pages::unknown;

  /// A spare from this thread's cache, or a new one.
  static exchange* take();
  /// Back to this thread's cache (cleared; an input buffer grown for a large head is dropped
  /// first), or freed when the cache is full.
  static void give(exchange* x);
  /// An empty one, for reading fields of a connection that holds none.
  static const exchange& none();
};

struct connection : runtime::task {
  /// See conn_word. Readiness is what the event loop has seen and no owner has used up yet; an
  /// owner clears a bit (`use_ready`) before the syscall that may block.
  std::atomic<std::uint64_t> word{0};
  std::atomic<std::int64_t> deadline_ms{0};  // when parked: close after this (steady ms)
  std::uint32_t slot = 0;
  int fd = -1;
  peer_address peer{};

  // Input: bytes [in_start, in_end) of the exchange's buffer are received and not yet consumed
  // (both 0 while the connection holds no exchange).
  std::uint32_t in_start = 0, in_end = 0;
  std::uint32_t head_len = 0;  // bytes of the input the request head occupies
  int status = 0;
  std::uint64_t discard = 0;          // body bytes of the last request still to drop
  std::int64_t request_start_ms = 0;  // first byte of the request being read (0: none yet)
  std::int64_t request_start_ns = 0;
  // When the request's first bytes were handed to read_parse (the readiness event's dispatch,
  // so the wait in weir's queue counts), or for a connection's first request when the kernel
  // received them (`first_bytes_realtime_ns`): admission control's latency starts here.
  std::int64_t arrived_ns = 0;
  // When the kernel received the connection's first bytes (CLOCK_REALTIME, ns; 0: unknown): the
  // first request's latency then counts its wait in the listen queue too.
  std::int64_t first_bytes_realtime_ns = 0;
  std::int64_t queue_wait_ns = 0;  // the request's wait in weir's queue before read_parse
  // When the connection was accepted or its last response finished: the idle timeout's start.
  std::int64_t idle_since_ms = 0;
  std::int64_t linger_until_ms = 0;  // lingering close: stop draining input then
  std::uint32_t admitted_epoch = 0;  // the gate's epoch of that class when it was admitted
  bool in_request = false;           // a request was read and its response is not finished
  admission_held admitted = admission_held::none;  // given back when its response ends
  std::uint8_t req_method = 3;                     // its `method_label` (stages/stats.hpp)
  bool keep_alive = false;
  bool close_after = false;  // set when the connection must close after this response
  bool lingering = false;    // response sent and write side shut: drain input until EOF

  // Output.
  std::uint32_t out_head_sent = 0;
  int file_fd = -1;            // sendfile source (owned by the exchange's entry)
  const char* body = nullptr;  // in-memory body (owned by the entry or static)
  std::size_t body_left = 0;
  off_t file_off = 0;
  std::size_t file_left = 0;
  std::uint64_t bytes_sent = 0;
  std::uint64_t requests = 0;

  /// The request state, taken from the cache the first time it is needed.
  exchange& ex() {
    if (x_ == nullptr) [[unlikely]]
      x_ = exchange::take();
    return *x_;
  }
  const exchange& ex() const { return x_ != nullptr ? *x_ : exchange::none(); }
  bool has_exchange() const { return x_ != nullptr; }
  /// Owner only, with nothing unconsumed in the input: gives the request state back (an idle
  /// connection keeps none).
  void drop_exchange() {
    if (x_ == nullptr) return;
    exchange::give(x_);
    x_ = nullptr;
    in_start = in_end = 0;
  }

  conn_word load_word(std::memory_order o = std::memory_order_acquire) const {
    return {word.load(o)};
  }
  conn_state state() const { return load_word().state(); }
  std::uint8_t ready() const { return load_word().ready(); }

  /// Owner only: forgets readiness bits about to be used up (edge-triggered: clear, then the
  /// syscall; an edge that comes after is recorded again).
  void use_ready(std::uint8_t bits) {
    word.fetch_and(~(std::uint64_t{bits} << 8), std::memory_order_acq_rel);
  }
  /// Owner only: remembers readiness it has not used up (a read that filled the buffer).
  void keep_ready(std::uint8_t bits) {
    word.fetch_or(std::uint64_t{bits} << 8, std::memory_order_relaxed);
  }

  /// Owner only: hands the connection to the event loop until readiness in `wanted` arrives, in
  /// one step. True when such readiness had already been recorded: the caller keeps the
  /// connection and retries at once. Otherwise the caller must not touch it afterwards.
  [[nodiscard]] bool park(conn_state parked, std::uint8_t wanted, std::int64_t deadline);

  /// Drops per-connection state before the slot is reused.
  void reset();

  connection() = default;
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;
  ~connection() { delete x_; }  // not to a thread's cache: that may be gone by now

 private:
  exchange* x_ = nullptr;
};

/// What an event-loop event did to the connection it named.
struct event_outcome {
  connection* owned = nullptr;  // the connection, now owned by the caller (it waited for this)
  conn_state was = conn_state::free;  // how it was parked, when `owned`
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

  /// Records readiness `bits` for the connection `handle` names and, if it is parked waiting
  /// for them, takes it for the caller: one compare-exchange, checked against the generation, so
  /// an event for a connection that was closed meanwhile (its slot perhaps reused) is dropped.
  event_outcome deliver(std::uint64_t handle, std::uint8_t bits);

  /// Takes a parked connection for the caller if `expired(word)` says so, deciding on the same
  /// word the compare-exchange checks: a connection woken (or closed, or reused) since the look
  /// is left alone. Returns how it was parked, or `free` when it was not taken.
  template <class Pred>
  conn_state take_parked(connection& c, Pred expired) {
    conn_word w = c.load_word();
    for (;;) {
      const conn_state st = w.state();
      if (st != conn_state::parked_read && st != conn_state::parked_write) return conn_state::free;
      if (!expired(w)) return conn_state::free;
      if (c.word.compare_exchange_weak(w.bits, w.with_state(conn_state::active).bits,
                                       std::memory_order_acq_rel, std::memory_order_acquire))
        return st;
    }
  }

  static std::uint64_t handle(const connection& c) {
    return (std::uint64_t{c.load_word(std::memory_order_relaxed).generation()} << 32) | c.slot;
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
