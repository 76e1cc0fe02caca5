#pragma once
// What the server reports about itself: one plain snapshot, folded from per-thread counters when
// someone asks (the /metrics endpoint, later the controllers). Nothing here is a Prometheus type.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/admission.hpp"
#include "runtime/stats.hpp"

namespace weir {

/// The `method` label: GET and HEAD are served; "other" is any other method (answered 405 or
/// 501); "unknown" is a response sent before a request line could be parsed (a malformed request
/// line, a 503 shed before the request was read).
inline constexpr const char* method_names[] = {"GET", "HEAD", "other", "unknown"};
inline constexpr std::size_t method_count = 4;
enum class method_label : std::uint8_t { get, head, other, unknown };

/// Every status code weir sends; the index into `server_snapshot::responses`.
inline constexpr int status_codes[] = {200, 206, 301, 304, 400, 403, 404, 405,
                                       408, 414, 416, 431, 500, 501, 503, 505};
inline constexpr std::size_t status_count = std::size(status_codes);
/// The index of `status` in `status_codes`, or status_count if weir never sends it.
constexpr std::size_t status_index(int status) {
  for (std::size_t i = 0; i < status_count; ++i) {
    if (status_codes[i] == status) return i;
  }
  return status_count;
}

/// Why connections were closed (the order of `close_reason`).
inline constexpr const char* close_reason_names[] = {"client", "done",     "timeout",
                                                     "error",  "overload", "shutdown"};
inline constexpr std::size_t close_reason_count = std::size(close_reason_names);

/// Where a request was refused (the `class` label of weir_shed_total). `request`: a request read
/// completely, refused before the cache (the whole server's budget); `miss`: a cache miss refused
/// at the hop into disk_io (a slow disk never sheds hits); `connection`: no request read yet (a
/// full queue behind the event loop), so the refusal closes.
inline constexpr const char* shed_class_names[] = {"request", "miss", "connection"};
inline constexpr std::size_t shed_class_count = std::size(shed_class_names);
enum class shed_class : std::uint8_t { request, miss, connection };

/// Why (the `reason` label): `queue_full`, a hop's queue was full; `limit`, the class was at its
/// admission limit; `fault`, --fault-shed.
inline constexpr const char* shed_reason_names[] = {"queue_full", "limit", "queue_delay", "fault"};
inline constexpr std::size_t shed_reason_count = std::size(shed_reason_names);
enum class shed_reason : std::uint8_t { queue_full, limit, queue_delay, fault };

/// --fault-shed (experiments): refuse every GET and HEAD, keeping the connection or closing it.
enum class fault_shed_mode : std::uint8_t { off, keep, close };

struct cache_snapshot {
  std::uint64_t hits = 0, misses = 0, insertions = 0, evictions = 0;
  std::uint64_t bytes = 0, entries = 0, capacity_bytes = 0;
};

struct server_snapshot {
  std::vector<runtime::stage_snapshot> stages;  // accept, read_parse, cache_lookup, disk_io, send
  std::vector<runtime::group_snapshot> groups;

  /// Responses sent, by method and status (indices: method_label, status_index).
  std::array<std::array<std::uint64_t, status_count>, method_count> responses{};
  /// First byte of the request read (or, for a pipelined request, its parsing begun) to the last
  /// byte of its response handed to the kernel.
  runtime::histogram_snapshot request_duration;
  std::uint64_t sent_bytes = 0;          // response bytes (head + body) handed to the kernel
  std::uint64_t requests_in_flight = 0;  // parsed, response not yet finished

  std::uint64_t connections_open = 0;
  std::uint64_t connections_max = 0;  // limits.max_connections
  std::uint64_t connections_accepted = 0;
  std::array<std::uint64_t, close_reason_count> connections_closed{};
  std::uint64_t accept_backoffs = 0;        // accept paused on EMFILE/ENFILE
  double syn_gate_share = 1;                // of new connections' SYNs let through now (0: closed)
  std::uint64_t syn_gate_closes_limit = 0;  // times the gate closed at the request limit
  std::uint64_t syn_gate_closes_queue = 0;  // times it closed on a long listen queue
  /// 503s sent to refuse work, by class and reason (indices: shed_class, shed_reason).
  std::array<std::array<std::uint64_t, shed_reason_count>, shed_class_count> shed{};
  /// Of those, the ones whose connection was kept (the request was read completely).
  std::uint64_t shed_kept_alive = 0;
  /// Admission control: each class's limit, in flight, counts and admitted latency, the target.
  runtime::admission_snapshot admission;

  cache_snapshot cache;

  /// Decisions the controllers took, by controller and action (filled by whoever runs them).
  struct controller_action {
    std::string controller, action;
    std::uint64_t count = 0;
  };
  std::vector<controller_action> controller_actions;
};

}  // namespace weir
