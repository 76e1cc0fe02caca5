#pragma once
// The admin API's endpoints apart from HTTP: server.cpp reads a request off civetweb, checks the
// method and the token, and writes the reply; these decide what the reply is. Internal to
// weir_admin.

#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "admin/backend.hpp"
#include "admin/topology.hpp"

namespace weir::admin {

struct reply {
  int status = 200;
  std::string body;   // JSON text
  std::string error;  // the one-line message of an error reply, for the log
  std::vector<std::pair<std::string, std::string>> headers;  // Allow, WWW-Authenticate
};
/// `status` with {"error": message} (newlines in `message` become spaces).
reply error_reply(int status, std::string_view message);

enum class endpoint { healthz, readyz, topology, policies, policy, decisions, resize, fuse, split };

struct route {
  endpoint what = endpoint::healthz;
  std::string name;  // policy: the controller; resize: the group
};
/// The endpoint `path` names, or nullopt.
std::optional<route> match(std::string_view path);
/// The methods `what` answers, as an Allow header lists them.
std::string_view allowed_methods(endpoint what);
bool allows(endpoint what, std::string_view method);

/// A larger request body is refused with 413.
inline constexpr std::size_t max_body_bytes = 64 * 1024;

class routes {
 public:
  explicit routes(backend& b) : backend_(b) {}

  /// GET (or HEAD) of `r`; `query` is what follows '?' in the target.
  reply read(const route& r, std::string_view query);
  /// PUT, PATCH or POST of `r` with `body` (authorised, at most max_body_bytes).
  reply change(const route& r, std::string_view method, std::string_view body);

 private:
  reply topology();
  reply decisions(std::string_view query);

  backend& backend_;
  std::mutex topology_mutex_;  // the window's kept snapshots
  topology_window topology_;
};

}  // namespace weir::admin
