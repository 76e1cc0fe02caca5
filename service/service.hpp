#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "admin/backend.hpp"
#include "runtime/config.hpp"
#include "stages/stats.hpp"

namespace weir {

class server;
namespace controllers {
class control_loop;
}
namespace metrics {
class endpoint;
}
namespace admin {
class server;
}

/// The running weir: the server, its controllers, the metrics endpoint and the admin API, and
/// the configuration they run with. The admin API and SIGHUP change that configuration through
/// the same validation as start-up; what can change live does, the rest is reported as needing a
/// restart and keeps running as it was.
class service : public admin::backend {
 public:
  /// Reads the configuration again (the file, then the flags over it); throws config_error.
  using config_source = std::function<config()>;

  /// `cfg` must be valid (and have a root). `reload_from` empty: reload() re-applies `cfg`.
  explicit service(config cfg, config_source reload_from = {});
  ~service() override;
  service(const service&) = delete;
  service& operator=(const service&) = delete;

  /// Binds every listener and starts every thread. Throws config_error (a bad token file) or
  /// std::runtime_error / std::system_error naming the listener that could not be bound.
  void start();
  /// Graceful stop (see server::stop): not ready from the first moment. True if nothing had to
  /// be cut off. Idempotent.
  bool stop(std::chrono::milliseconds drain);

  /// SIGHUP. Re-reads the configuration and, once all of it is valid, applies what can change
  /// live: controller policies, the stages' grouping, queues and pool sizes, timeouts, limits,
  /// retry_after, the cache (bound, policy, max_file_bytes, revalidate), the log level; the
  /// access log is reopened. One info line per change. Each setting that needs a restart
  /// (listen, root, follow_symlinks_outside_root, metrics, admin, the access log's path, and
  /// limits.max_connections above its start-up value) is reported in one log line and keeps its
  /// running value. An invalid configuration changes nothing. Returns "" or the reason nothing
  /// was applied.
  std::string reload();

  /// Injected fault for experiments (see server::set_fault_disk_latency).
  void set_fault_disk_latency(std::chrono::microseconds latency);
  void set_fault_shed(fault_shed_mode mode);  // see server::set_fault_shed

  std::uint16_t port() const;
  std::uint16_t metrics_port() const;  // 0: metrics off
  std::uint16_t admin_port() const;    // 0: admin off
  config running_config() const;
  server& http();
  controllers::control_loop& controllers();

  // admin::backend
  server_snapshot snapshot() const override;
  std::string policies_json() const override;
  std::optional<std::string> policy_json(std::string_view controller) const override;
  admin::result set_policy(std::string_view controller, std::string_view body,
                           bool replace) override;
  std::vector<controllers::decision_record> decisions() const override;
  admin::result resize(std::string_view group, std::size_t threads) override;
  admin::result fuse(std::string_view stage_a, std::string_view stage_b) override;
  admin::result split(std::string_view stage) override;
  bool ready() const override;

 private:
  void apply_controllers(const config& c);

  const config_source reload_from_;
  mutable std::mutex mutex_;  // cfg_; one reload or policy change at a time
  config cfg_;
  std::unique_ptr<server> server_;
  std::unique_ptr<controllers::control_loop> loop_;
  std::unique_ptr<metrics::endpoint> metrics_;
  std::unique_ptr<admin::server> admin_;
  std::atomic<bool> ready_{false};
  bool stopped_ = false;
};

/// The bearer token in `path` (surrounding whitespace dropped); config_error naming
/// admin.token_file when it cannot be read, is empty or holds more than one word.
std::string read_admin_token(const std::string& path);

/// spdlog's level for a config `log_level` name.
void set_log_level(std::string_view level);

}  // namespace weir
