#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

#include "runtime/admission.hpp"
#include "runtime/config.hpp"
#include "runtime/pipeline.hpp"
#include "stages/access_log.hpp"
#include "stages/cache/byte_cache.hpp"
#include "stages/connection.hpp"
#include "stages/file_resolver.hpp"
#include "stages/response.hpp"
#include "stages/stats.hpp"

namespace weir {

class reactor;

/// Stage indices in the pipeline.
enum stage_id : runtime::stage_index {
  stage_accept = 0,
  stage_read_parse,
  stage_cache_lookup,
  stage_disk_io,
  stage_send
};

/// One thread's share of the server-wide counters (see runtime/stats.hpp: written by that thread
/// alone, folded by `server_context::snapshot`).
struct server_stats_block {
  std::array<std::array<runtime::local_counter, status_count>, method_count> responses{};
  runtime::local_histogram request_duration;
  runtime::local_counter sent_bytes;
  runtime::local_counter requests_begun, requests_ended;
  runtime::local_counter accepted, accept_backoffs;
  std::array<runtime::local_counter, close_reason_count> closed{};
  std::array<std::array<runtime::local_counter, shed_reason_count>, shed_class_count> shed{};
  runtime::local_counter shed_kept_alive;
};
static_assert(close_reason_count == static_cast<std::size_t>(close_reason::count));

/// The settings SIGHUP changes while weir runs (server::apply_live), one relaxed atomic each,
/// loaded where it is used: no lock, and a new value holds from the next use on. Each knob means
/// something on its own, so a request that sees one knob old and another new meanwhile is fine.
/// A deadline already set (a connection parked on the event loop) keeps the value it was set
/// with.
struct live_settings {
  explicit live_settings(const config& c);
  void store(const config& c);

  std::chrono::milliseconds header_timeout() const { return ms(header_timeout_ms); }
  std::chrono::milliseconds keepalive_timeout() const { return ms(keepalive_timeout_ms); }
  std::chrono::milliseconds send_timeout() const { return ms(send_timeout_ms); }
  std::chrono::milliseconds cache_revalidate() const { return ms(cache_revalidate_ms); }
  http::parser_limits parser_limits() const {
    return {max_request_line.load(std::memory_order_relaxed),
            max_header_bytes.load(std::memory_order_relaxed),
            max_headers.load(std::memory_order_relaxed)};
  }

  std::atomic<std::int64_t> header_timeout_ms, keepalive_timeout_ms, send_timeout_ms;
  std::atomic<std::int64_t> cache_revalidate_ms;
  std::atomic<std::size_t> cache_max_file_bytes;
  std::atomic<std::size_t> max_request_line, max_header_bytes, max_headers;
  std::atomic<std::size_t> send_lowat;
  /// At most the connection table's capacity (its size at start-up).
  std::atomic<std::size_t> max_connections;
  std::atomic<std::uint32_t> retry_after_seconds;

 private:
  static std::chrono::milliseconds ms(const std::atomic<std::int64_t>& v) {
    return std::chrono::milliseconds(v.load(std::memory_order_relaxed));
  }
};

/// What every stage shares: configuration, the document root, the cache, the connections, the
/// pipeline and the event loop.
struct server_context {
  explicit server_context(config c);

  /// The configuration at start-up. What can change live is read from `live` (and the cache's
  /// own bound and policy), never from here: here it is only what needs a restart.
  const config cfg;
  live_settings live;
  file_resolver resolver;
  cache::byte_cache<file_entry> cache;
  connection_table connections;
  runtime::pipeline pipe;
  runtime::admission_gate admission;
  reactor* loop = nullptr;
  access_log log;
  runtime::per_thread<server_stats_block> stats;
  std::atomic<bool> draining{false};
  /// Set by the accept stage when it stopped accepting for want of room (`accept_room`): the
  /// thread that next frees enough room re-arms the listener (`resume_accepts`). Read on every
  /// response, written only when accepting pauses or resumes.
  alignas(64) std::atomic<bool> accepts_paused_for_load{false};
  /// Injected fault (tests and experiments only; 0: off): every disk read waits this long first.
  std::atomic<std::int64_t> fault_disk_latency_us{0};
  /// Injected fault (experiments only): every parsed GET/HEAD is refused with 503, so that the
  /// cost of a refusal can be measured: on its kept connection (`refuse`) or closing it (`shed`).
  std::atomic<fault_shed_mode> fault_shed{fault_shed_mode::off};

  /// Steady clock in milliseconds and nanoseconds.
  static std::int64_t now_ms();
  static std::int64_t now_ns();

  /// Starts a new connection: registers it with the event loop (once, edge-triggered) and hands
  /// it to read_parse. The caller must not touch `c` afterwards.
  void start(connection& c);
  /// Gives the connection to the event loop until its socket is readable (or writable). Returns
  /// true when readiness arrived while parking: the caller still owns `c` and retries at once.
  /// Otherwise the caller must not touch `c` afterwards.
  [[nodiscard]] bool park(connection& c, bool for_write, std::int64_t deadline_ms);
  /// Closes the socket and frees the slot. The caller must own `c`.
  void close(connection& c, close_reason why);
  /// Answers 503 + Retry-After at once (best effort, non-blocking, formatted on the stack) and
  /// closes. Counted as a shed of `cls` for `why`.
  void shed(connection& c, shed_class cls, shed_reason why);
  /// Refuses the request `c` holds with 503 + Retry-After and keeps the connection, as any
  /// response would (the cheapest refusal that still answers: the client need not connect again).
  /// Closes instead, as `shed` does, when the connection could not be kept anyway. The caller
  /// owns `c` and has read its request head completely; returns the next stage, as
  /// finish_response does.
  [[nodiscard]] runtime::stage_index refuse(connection& c, shed_class cls, shed_reason why);
  /// Admission control, before the cache: the request holds a `request` place and goes on to
  /// cache_lookup, or is refused (503, the connection kept). The caller owns `c`, its request
  /// head read completely.
  [[nodiscard]] runtime::stage_index admit(connection& c);
  /// At the hop into disk_io: moves the connection's place to the `miss` class (its own budget,
  /// so a slow disk never sheds hits). False when misses are at their limit: nothing changed.
  [[nodiscard]] bool admit_to_disk(connection& c);
  /// Gives back the connection's place, if it holds one, without a latency sample.
  void release_admission(connection& c);
  /// How many new connections the accept stage may take now. Work already inside weir comes
  /// first: the connections waiting for read_parse plus the requests admitted count against the
  /// request class's limit, and the read_parse queue keeps half its room for connections already
  /// open. What is not taken waits in the kernel's listen queue (or, at the request limit, is
  /// turned away at the SYN gate) instead of in weir's queues, where it would cost an accept, a
  /// read and a refusal, each about what serving it costs (docs/controllers.md, "What a refusal
  /// costs").
  std::size_t accept_room() const;
  /// Connections accepted so far (the per-thread counters summed: not for the per-request path).
  std::uint64_t accepted_total() const;
  /// Whether the request class's limit, not the read_parse queue's room, leaves no room: the
  /// admission controller holds the load back, so new connections are turned away at the SYN
  /// gate. A queue short of room is a moment's backpressure: those wait in the listen queue.
  bool at_request_limit() const;
  /// The room at which paused accepts resume (hysteresis: a batch, not one connection at a time).
  std::size_t accept_resume_room() const;
  /// Called when a request ends: if accepts are paused for load and there is room again now,
  /// re-arms the listener (once: whoever clears the flag).
  void resume_accepts() {
    if (accepts_paused_for_load.load(std::memory_order_relaxed)) [[unlikely]]
      resume_accepts_slow();
  }
  void resume_accepts_slow();
  /// Counts one refusal (weir_shed_total), `kept` when its connection stays open.
  void count_shed(shed_class cls, shed_reason why, bool kept);
  /// A request head was read (or found malformed): its response is now owed.
  void begin_request(connection& c, method_label m);
  /// Everything the server reports (folded per-thread counters; takes mutexes).
  server_snapshot snapshot() const;

  /// Called once a response has been fully sent: log it, then keep the connection or close it.
  /// Returns the next stage (read_parse for a pipelined request) or stage_done.
  runtime::stage_index finish_response(connection& c);
};

}  // namespace weir
