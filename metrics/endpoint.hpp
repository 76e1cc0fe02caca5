#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "stages/stats.hpp"

namespace prometheus {
class Collectable;
class Exposer;
}  // namespace prometheus

namespace weir::metrics {

/// The Prometheus endpoint: prometheus-cpp's Exposer, a civetweb HTTP server on its own threads
/// (one master, two workers; none of weir's groups). GET /metrics calls `snapshot` on a worker
/// (one scrape at a time) and serves, after the exposer_* series prometheus-cpp adds about the
/// scrapes themselves, collect(snapshot(), version) and the process_* series. civetweb routes
/// every path that begins with /metrics there; other paths, and other methods (HEAD too), get 404.
class endpoint {
 public:
  /// `listen`: "HOST:PORT" or "[IPV6]:PORT"; port 0 takes a free port (see port()). Throws
  /// std::runtime_error ("metrics.listen: ...", naming the address and the reason) when `listen`
  /// is malformed or cannot be bound.
  endpoint(const std::string& listen, std::function<server_snapshot()> snapshot,
           std::string version);
  /// Stops serving. Takes up to 2 s: civetweb's master thread checks for a stop every 2 s.
  ~endpoint();
  endpoint(const endpoint&) = delete;
  endpoint& operator=(const endpoint&) = delete;

  /// The port it listens on (the one chosen when `listen` said 0).
  std::uint16_t port() const;

 private:
  std::shared_ptr<prometheus::Collectable> collectable_;
  std::unique_ptr<prometheus::Exposer> exposer_;  // declared last: stops serving first
};

}  // namespace weir::metrics
