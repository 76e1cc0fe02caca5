#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <thread>

#include "runtime/syn_gate.hpp"
#include "runtime/task.hpp"

namespace weir {

struct server_context;
struct connection;

/// The SYN gate's threshold when every SYN passes (no filter on the listener).
inline constexpr std::uint64_t syn_gate_off = std::uint64_t{1} << 32;

/// Why the SYN gate closed: accepting paused at the request limit, or a long listen queue.
enum class syn_gate_close : std::size_t { limit, queue };

/// The event source: one thread on epoll. Each socket is registered once, edge-triggered; an edge
/// is recorded in the connection (`ready`) and, if the connection is parked waiting for it, hands
/// it to exactly one stage (read_parse or send): no re-arming syscall per request. The listener
/// is a one-shot task handed to the accept stage. Every 100 ms it also closes parked connections
/// whose deadline passed (taking each one with the same compare-exchange an event would, so it
/// never touches a connection a stage holds) and re-arms a paused listener.
class reactor {
 public:
  reactor(server_context& ctx, int listen_fd);
  ~reactor();
  reactor(const reactor&) = delete;
  reactor& operator=(const reactor&) = delete;

  void start();
  /// Stops the loop thread (idempotent). Parked connections stay parked.
  void stop();

  /// Registers a new connection's socket, once, edge-triggered for both directions. False when
  /// epoll refused it.
  bool watch(int fd, std::uint64_t handle);
  /// Re-arms the listener for one more accept round.
  void arm_listener();
  /// The SYN gate. Closed, the kernel drops new connections' SYNs (a socket filter on the
  /// listener): a client tries again later (Linux: 1 s later, then every second up to four
  /// times) instead of waiting, queued or half-connected, where weir cannot see it; handshakes
  /// begun and connections queued are untouched. Closed when accepting pauses at the request
  /// limit `limit` (`close_syn_gate`), or when an accept round leaves a longer listen queue than
  /// wanted: more than a quarter of the limit, or connections waiting there for more than a
  /// quarter of the latency target (`check_listen_queue`, told how long the round's last
  /// connection waited, `head_wait_ms`: the CPU, not the limit, holds weir back); opened when
  /// weir has room and the listen queue is empty, to the share of SYNs that runtime/syn_gate.hpp
  /// keeps (all of them below capacity: the filter comes off).
  void close_syn_gate(std::size_t limit);
  void check_listen_queue(std::size_t limit, std::int64_t head_wait_ms);
  void open_syn_gate();
  /// The share of new connections' SYNs let through now (0: closed, 1: no filter).
  double syn_gate_share() const;
  /// Times the gate closed for `reason`.
  std::uint64_t syn_gate_closes(syn_gate_close reason) const {
    return syn_gate_closes_[static_cast<std::size_t>(reason)].load(std::memory_order_relaxed);
  }

  /// Resumes accepting after a pause for load: opens the gate if nothing waits in the listen
  /// queue (else the accept round that empties it does), and re-arms the listener.
  void resume_listener();
  /// Leaves the listener unarmed until `until_ms` has passed and a connection slot is free.
  void pause_listener(std::int64_t until_ms);
  /// Stops accepting for good and closes idle connections (graceful stop, first step).
  void begin_drain();
  /// Closes every parked connection from now on, whatever its deadline (the end of a drain).
  void cut_off();
  /// Wakes the loop (it re-checks deadlines and the listener at once).
  void wake();
  /// On the loop's own thread, inside an accept round it runs itself (see `accept_here`): keeps
  /// the new connection `c` to be served there once the round is over, and returns true, while
  /// the round may keep more. False on every other thread.
  static bool keep_for_here(connection& c);

 private:
  void run();
  // `may_run_here`: its round is small enough to be served on this thread (see run_if_idle).
  void on_connection_event(std::uint64_t handle, std::uint32_t events, bool may_run_here);
  // Runs an accept round on this thread if the accept stage's group is idle; `events`: the
  // round of events it is one of. False if it was not run.
  bool accept_here(int events);
  void tick(std::int64_t now);

  struct listener_task : runtime::task {};

  server_context& ctx_;
  int listen_fd_;
  int epoll_fd_ = -1;
  const int run_here_max_;           // see run_here_max_events (reactor.cpp)
  std::int64_t round_start_ns_ = 0;  // the current round's, for requests served here (0: none)
  int wake_fd_ = -1;
  listener_task listener_;
  std::atomic<bool> running_{false};
  std::atomic<bool> listener_paused_{false};
  void apply_syn_gate(std::uint64_t threshold);
  void close_syn_gate_locked(std::size_t queued, double wanted, syn_gate_close reason);
  std::int64_t target_ms() const;
  void open_syn_gate_locked();
  // The filter's threshold on a random 32-bit number: SYNs drawing less pass (0: closed).
  std::atomic<std::uint64_t> syn_gate_threshold_{syn_gate_off};
  std::atomic<bool> syn_gate_warned_{false};
  runtime::syn_gate_settings syn_gate_settings_;
  std::mutex syn_gate_mutex_;  // changes to the gate: pauses, rounds with a filter on, the tick
  runtime::syn_gate_state syn_gate_;
  std::uint64_t accepted_at_open_ = 0;  // connections accepted when the gate last opened
  std::atomic<std::uint64_t> syn_gate_closes_[2] = {};
  std::atomic<std::uint64_t> listener_arms_{0};  // see arm_listener
  std::atomic<std::int64_t> listener_resume_ms_{0};
  std::atomic<bool> draining_{false};
  std::atomic<bool> cut_off_{false};
  std::int64_t last_tick_ms_ = 0;
  std::thread thread_;
};

}  // namespace weir
