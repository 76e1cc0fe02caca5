#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "controllers/settings.hpp"

namespace weir {

enum class cache_policy { lru, lfu };

/// One stage's group settings. Stages that name the same `group` share one queue and one pool
/// (they are fused); the first stage of a group sets its queue capacity and thread count.
struct stage_config {
  std::string group;  // empty: the stage's own name
  std::size_t threads = 1;
  std::size_t queue_capacity = 4096;

  friend bool operator==(const stage_config&, const stage_config&) = default;
};

/// Everything an operator can set. Defaults are what `weir` runs with when given nothing.
struct config {
  std::string listen = "127.0.0.1:8080";
  std::string root;  // empty: the embedded sample site
  bool follow_symlinks_outside_root = false;

  // accept, read_parse, cache_lookup, disk_io, send (the order of `stage_names`).
  std::vector<stage_config> stages = {
      {"", 1, 1024}, {"", 1, 4096}, {"", 1, 4096}, {"", 2, 1024}, {"", 1, 4096}};

  std::size_t cache_max_bytes = 64u << 20;
  std::size_t cache_max_file_bytes = 256u << 10;  // larger files go out with sendfile
  cache_policy cache_replacement = cache_policy::lru;
  std::chrono::milliseconds cache_revalidate{1000};

  std::chrono::milliseconds header_timeout{10'000};
  std::chrono::milliseconds keepalive_timeout{65'000};
  std::chrono::milliseconds send_timeout{60'000};
  std::chrono::milliseconds drain_timeout{10'000};

  std::size_t max_connections = 10'000;
  std::size_t max_request_line = 8192;   // longer: 414
  std::size_t max_header_bytes = 16384;  // larger header section: 431
  std::size_t max_headers = 100;         // more header fields: 431
  // TCP_NOTSENT_LOWAT: unsent bytes a socket may queue before a write stops (0: kernel default).
  // Keeps large responses flowing from the send stage instead of piling up in the kernel.
  std::size_t send_lowat = 16u << 10;
  std::uint32_t retry_after_seconds = 1;

  // The Prometheus endpoint (/metrics) on its own listener. Off, latencies are not timed either.
  bool metrics_enabled = true;
  std::string metrics_listen = "127.0.0.1:9464";

  // The admin API (controller settings and decisions) on its own listener. Off loopback it needs
  // a bearer token, read from `admin_token_file`.
  bool admin_enabled = true;
  std::string admin_listen = "127.0.0.1:9465";
  std::string admin_token_file;  // empty: no token

  std::string access_log;  // empty: off; "-": stdout
  std::string log_level = "info";

  // `controllers.pool`, `.grouping`, `.admission`: what the control loop starts with; the admin API
  // and SIGHUP change them through apply_controller_settings() and load_config_file().
  controllers::pool_settings pool;
  controllers::grouping_settings grouping;
  controllers::admission_settings admission;

  friend bool operator==(const config&, const config&) = default;
};

inline constexpr const char* stage_names[] = {"accept", "read_parse", "cache_lookup", "disk_io",
                                              "send"};
inline constexpr std::size_t stage_count = 5;

inline constexpr const char* log_levels[] = {"trace", "debug", "info", "warn", "error", "off"};

/// Operator input that cannot be accepted; `what()` is one line naming the field and the accepted
/// values.
class config_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A parsed `listen` value: `host` is a numeric IPv4 or IPv6 address (IPv6 without brackets).
struct listen_address {
  std::string host;
  std::uint16_t port = 0;
};

/// "127.0.0.1:8080" or "[::1]:8080"; port 0..65535 (0: ephemeral). Host names are not accepted,
/// so what binds is exactly what was written. nullopt when malformed.
std::optional<listen_address> parse_listen(std::string_view text);

/// Bytes: "4096", or a number with B, k/K/KiB, M/MiB, G/GiB (powers of 1024). nullopt when
/// malformed or too large.
std::optional<std::size_t> parse_size(std::string_view text);

/// "250ms", "10s", "2m", "1h", or a plain integer meaning milliseconds. nullopt when malformed.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

/// As parse_duration, and also "500us" (for settings finer than a millisecond). A plain integer
/// still means milliseconds, as everywhere else. nullopt when malformed.
std::optional<std::chrono::microseconds> parse_duration_us(std::string_view text);

/// The shortest exact spelling the parsers above accept ("64MiB", "1500ms", "500us").
std::string format_size(std::size_t bytes);
std::string format_duration(std::chrono::milliseconds d);
std::string format_duration_us(std::chrono::microseconds d);

/// Reads a YAML config file over `base` (keys the file omits keep their `base` value; `weir`
/// passes the defaults and applies flags afterwards, so flags win). A stage that joins a group
/// without setting threads/queue takes them from the group's first stage. The result is
/// validated: either the whole file applies or `config_error` is thrown and nothing does.
config load_config_file(const std::string& path, const config& base);

/// As load_config_file, on the file's text; `path` only names it in messages.
config load_config_text(const std::string& text, const std::string& path, const config& base);

/// Checks cross-field rules (fused groups, limits); throws `config_error`.
void validate(const config& c);

/// The controllers a config has, by name, as in `controllers.<name>` and the admin API paths.
inline constexpr const char* controller_names[] = {"pool", "grouping", "admission"};

/// Applies settings for one controller, given as a JSON or YAML mapping (JSON is YAML's flow
/// style, so one reader serves both): `replace` starts from that controller's defaults (PUT),
/// otherwise from `base` (PATCH). Validated as a whole; throws config_error naming the field
/// (paths "controllers.<name>.<key>"), and nothing of `base` changes. Unknown controller:
/// config_error too. A key set to null keeps its starting value.
config apply_controller_settings(const config& base, std::string_view controller,
                                 std::string_view text, bool replace);

/// That controller's settings as a JSON object, in the spellings the readers accept ("20ms",
/// 0.85, true), keys in declaration order. Unknown controller: config_error.
std::string controller_settings_json(const config& c, std::string_view controller);

}  // namespace weir
