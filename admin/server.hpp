#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "admin/backend.hpp"

namespace weir::admin {

/// The admin API: a civetweb HTTP server on its own listener and threads (one master, two
/// workers; none of weir's groups), apart from the public port and from /metrics. It reads and
/// changes the server only through `backend`. Every reply is JSON (application/json); an error
/// is {"error": "<one line>"}.
///
///   GET  /healthz                  200 {"status":"ok"} while the process serves
///   GET  /readyz                   200 {"ready":true}, or 503 {"ready":false} (backend.ready())
///   GET  /topology                 groups, stages, connections, cache; rates and percentiles over
///                                  a recent window ("window_s"; see admin/topology.hpp)
///   GET  /policies                 every controller's settings
///   GET  /policies/<name>          one controller's (404: none of that name)
///   PUT  /policies/<name>          replace its settings with the JSON object in the body;
///   PATCH /policies/<name>         merge them; 200 returns the settings now in force
///   GET  /decisions[?since_ms=N]   {"decisions":[...]}, those with at_ms >= N
///   POST /groups/<group>/resize    {"threads": N}, N in 1..256
///   POST /fuse                     {"stages": ["a", "b"]}
///   POST /split                    {"stage": "x"}
///                                  (these three: 200 {"ok":true} once the backend has done it)
///
/// HEAD works wherever GET does. An unknown path is 404; a method a path does not take is 405
/// with Allow. A body over 64 KiB is 413; one that is not a JSON object, or (resize, fuse, split)
/// not of the shape above, is 400 naming the field and what it accepts; the backend validates
/// the settings' fields itself (400, 404 or 409 with its message). Connections are not kept
/// alive: each request gets its own.
///
/// With a `token`, PUT, PATCH and POST need "Authorization: Bearer <token>" (compared in
/// constant time), else 401 with WWW-Authenticate: Bearer. GETs never need it: the operator
/// console has a read-only mode without a token, and /healthz and /readyz are for probes. Bind
/// the listener to loopback (the default, 127.0.0.1:9465) or a trusted network: the token
/// travels in clear, as there is no TLS. Every change (authorised or not) is logged at info:
/// remote address, method, path, body, status and error.
class server {
 public:
  /// `listen`: "HOST:PORT" or "[IPV6]:PORT"; port 0 takes a free port (see port()). `token`:
  /// empty for none. Throws std::runtime_error ("admin.listen: ...", naming the address and the
  /// reason) when `listen` is malformed or cannot be bound.
  server(const std::string& listen, backend& b, std::string token);
  /// Stops serving. Takes up to 2 s: civetweb's master thread checks for a stop every 2 s.
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  /// The port it listens on (the one chosen when `listen` said 0).
  std::uint16_t port() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace weir::admin
