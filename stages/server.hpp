#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "runtime/admission.hpp"
#include "runtime/config.hpp"
#include "runtime/pipeline.hpp"
#include "stages/stats.hpp"

namespace weir {

/// The assembled server: listener, event loop, the five stages and their groups.
///   accept -> read_parse -> cache_lookup -> (miss) disk_io -> send -> (keep-alive) read_parse
class server {
 public:
  /// Stage indices in the pipeline (the order of `stage_names`).
  enum stage : runtime::stage_index { accept = 0, read_parse, cache_lookup, disk_io, send };

  /// Validates `cfg` and opens the document root; throws `config_error` on bad input.
  explicit server(config cfg);
  ~server();

  /// Binds the listener (port 0 picks an ephemeral port) and starts every thread.
  /// Throws std::system_error when the address cannot be bound.
  void start();

  /// The bound port (valid after start()).
  std::uint16_t port() const;

  /// Graceful stop: stop accepting, close idle connections, let in-flight responses finish
  /// within `drain`, then close the rest and join every thread. Returns true if nothing had to be
  /// cut off. Idempotent.
  bool stop(std::chrono::milliseconds drain);

  runtime::pipeline& pipeline();
  /// Admission control's gate (the admission controller sets its limits; unlimited until then).
  runtime::admission_gate& admission();
  /// What the server reports about itself (for /metrics and the controllers); safe to call from
  /// any thread while it runs. Not for the hot path: it folds every thread's counters.
  server_snapshot snapshot() const;
  std::size_t open_connections() const;

  /// Injected fault, for tests and experiments only (0: off): each disk read (a cache miss or a
  /// revalidation) first waits this long, as on a slow or overloaded disk.
  void set_fault_disk_latency(std::chrono::microseconds latency);

  /// Injected fault, for experiments only: every parsed GET or HEAD is answered 503 before the
  /// cache, on its kept connection (`keep`: the refusal admission control uses) or closing it
  /// (`close`: what a full queue does), so that each refusal's cost can be measured.
  void set_fault_shed(fault_shed_mode mode);

  /// Applies what can change while traffic flows (SIGHUP) from `next`, which must be valid:
  /// timeouts, limits, retry_after and the cache (max_bytes: shrinking evicts down to it;
  /// policy: switched keeping the entries; max_file_bytes; revalidate). The rest of `next` is
  /// ignored. limits.max_connections is capped at connection_capacity(). New deadlines use the
  /// new timeouts; connections already waiting keep the deadline they have.
  void apply_live(const config& next);
  /// The connection table's size, fixed at start-up (limits.max_connections then):
  /// max_connections may be lowered live, and raised again up to this.
  std::size_t connection_capacity() const;

  /// Reopens the access log file (SIGHUP, after logrotate); "" or why not.
  std::string reopen_access_log();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace weir
