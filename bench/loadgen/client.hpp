#pragma once
// The load engine: one thread, one epoll set, non-blocking sockets. Requests come due on an
// open-loop schedule (schedule.hpp) whatever the server does, and are sent on
//  - pool:  at most `connections` keep-alive connections; a due request with no idle connection
//           waits in a client-side FIFO backlog, its latency clock running from its intended time;
//  - users: a new connection per session of `session` requests (the last one says
//           Connection: close), at most `connections` at once; an arrival over the cap is
//           counted as unsent.
// Every due request ends in exactly one outcome: a status (2xx, 503, other), a connect error, a
// read/reset error, a timeout (no response `timeout` after its intended time, in the backlog or
// on the wire) or unsent.

#include <netinet/in.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bench/loadgen/histogram.hpp"
#include "bench/loadgen/mix.hpp"
#include "bench/loadgen/schedule.hpp"

namespace weir::loadgen {

enum class client_model { pool, users };

struct run_config {
  sockaddr_in target{};
  std::string host;  // the Host header
  client_model model = client_model::pool;
  int connections = 64;
  int session = 1;    // users: requests per connection
  double rate = 100;  // requests per second (sessions arrive at rate / session)
  /// --rate-profile: (requests per second, seconds) pieces of the measured window, which lasts
  /// their sum (= duration_s); the warm-up runs at the first piece's rate (= rate). Empty: `rate`.
  std::vector<std::pair<double, double>> profile;
  arrival_process arrival = arrival_process::poisson;
  std::uint64_t seed = 1;
  double warmup_s = 0;
  double duration_s = 10;
  double timeout_s = 5;
  double max_lag_ms = 1;       // mean dispatch lag above this: the generator is the limit
  double max_cpu_share = 0.9;  // CPU use (of one core) above this: the generator is the limit
  int series_ms = 1000;        // the length of a series slot
  int sources = 1;             // connect from 127.0.0.1 .. 127.0.0.<sources>, in turn
  mix requests = mix::single("/");
};

/// One slot (series_ms long) of the measured window and the drain after it: what happened in it
/// (by the time of the event). The p99s are of the responses completed in it, 0 when none.
struct slot_stats {
  std::uint64_t sent = 0, ok = 0, unavailable = 0, other = 0, errors = 0, unsent = 0;
  std::uint64_t p99_ns = 0;          // every status, from the intended send time
  std::uint64_t p99_ok_ns = 0;       // 2xx, from the intended send time
  std::uint64_t p99_ok_sent_ns = 0;  // 2xx, from the write to the socket
};

struct run_result {
  // Measured requests only (intended time inside the measured window).
  std::uint64_t scheduled = 0;                       // came due
  std::uint64_t sent = 0;                            // written to a socket
  std::uint64_t ok = 0, unavailable = 0, other = 0;  // 2xx, 503, any other status
  std::uint64_t ok_in_window = 0;  // 2xx completed inside the window, of any request
  std::uint64_t connect_errors = 0, read_errors = 0;
  std::uint64_t timeouts = 0, timeouts_in_backlog = 0;  // the second is part of the first
  // Also parts of `timeouts`: still connecting at the deadline (the server never took the SYN,
  // or its handshake never ended), and written but not answered in time.
  std::uint64_t timeouts_connecting = 0, timeouts_reading = 0;
  std::uint64_t unsent = 0;
  std::uint64_t body_bytes = 0;
  histogram latency;          // from the intended send time to the end of the response
  histogram service_latency;  // from the write to the socket to the end of the response
  // The same two of the 2xx and of the 503s alone: a fast 503 must not flatter the 2xx.
  histogram ok_latency, ok_service_latency;
  histogram unavailable_latency, unavailable_service_latency;
  histogram dispatch_lag;  // intended time to when the loop sent it, a connection being free
  std::vector<slot_stats> series;  // slot i starts i * series_ms after the window's start

  double measured_s = 0;  // the measured window's length (duration)
  double cpu_s = 0;       // user + system CPU used during the measured window
  double cpu_share = 0;   // cpu_s / wall time of the window (1 = one core busy)
  std::uint64_t max_backlog = 0;
  int max_open = 0;
  std::uint64_t connects = 0;         // connections opened (all, warm-up included)
  std::vector<std::string> warnings;  // the generator, not the server, was the limit

  std::uint64_t errors() const { return connect_errors + read_errors + timeouts; }
  // 2xx per second delivered inside the window (not ok / measured_s: past capacity the
  // window's requests are answered for seconds after it, at the server's pace).
  double goodput() const {
    return measured_s > 0 ? static_cast<double>(ok_in_window) / measured_s : 0;
  }
};

/// Runs the load and returns what it measured. Throws std::system_error when the machine
/// refuses a resource the run needs at start (epoll, timerfd).
std::unique_ptr<run_result> run_load(const run_config& config);

}  // namespace weir::loadgen
