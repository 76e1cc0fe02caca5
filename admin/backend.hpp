#pragma once
// What the admin API needs from the server, and nothing more: admin::server talks to this
// interface, so the admin library links neither the stages nor the server, and its tests drive
// it with a fake. The admin server calls it from its own worker threads, two of them, possibly at
// the same time: an implementation must be thread-safe.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "controllers/control_loop.hpp"
#include "stages/stats.hpp"

namespace weir::admin {

/// What a request to the admin API can change or read. The server implements it; errors are one
/// line.
struct result {
  int status = 200;  // 200 ok; 400 bad value; 404 unknown name; 409 not possible now
  std::string error;
};

class backend {
 public:
  virtual ~backend() = default;
  virtual server_snapshot snapshot() const = 0;  // stages/stats.hpp
  /// Current settings, one JSON object per controller: {"pool": {...}, "grouping": {...}} (JSON
  /// text).
  virtual std::string policies_json() const = 0;
  /// One controller's settings (JSON object text); nullopt: no such controller.
  virtual std::optional<std::string> policy_json(std::string_view controller) const = 0;
  /// Validates `body` (a JSON object) as a whole and applies it: replace (PUT) or merge (PATCH).
  virtual result set_policy(std::string_view controller, std::string_view body, bool replace) = 0;
  virtual std::vector<controllers::decision_record> decisions() const = 0;
  virtual result resize(std::string_view group, std::size_t threads) = 0;
  virtual result fuse(std::string_view stage_a, std::string_view stage_b) = 0;
  virtual result split(std::string_view stage) = 0;
  /// Started and not draining.
  virtual bool ready() const = 0;
};

}  // namespace weir::admin
