#include "admin/routes.hpp"

#include <charconv>
#include <cstdint>
#include <exception>
#include <initializer_list>
#include <limits>
#include <system_error>

#include <nlohmann/json.hpp>

namespace weir::admin {
namespace {

using nlohmann::json;

// Limits of what POST /groups/<group>/resize accepts (as runtime/config.cpp's threads).
constexpr std::uint64_t min_threads = 1, max_threads = 256;

std::string dump(const json& j) {
  // Names and messages come from operators and the backend: invalid UTF-8 is replaced, not thrown.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

reply ok(std::string body) {
  return {.status = 200, .body = std::move(body)};
}

/// What the operator sent, short enough for a one-line error.
std::string shown(const json& v) {
  std::string s = dump(v);
  if (s.size() > 40) s = s.substr(0, 37) + "...";
  return s;
}

/// One path segment after `prefix`, or "" when `path` is not prefix + one non-empty segment.
std::string_view segment_after(std::string_view path, std::string_view prefix) {
  if (!path.starts_with(prefix)) return {};
  const std::string_view rest = path.substr(prefix.size());
  return rest.find('/') == std::string_view::npos ? rest : std::string_view{};
}

/// The body as a JSON object, or the 400 that says why it is not one.
std::optional<json> parse_object(std::string_view body, reply& refused) {
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    refused = error_reply(400, "body: expected a JSON object, got an empty body");
    return std::nullopt;
  }
  try {
    json j = json::parse(body);
    if (j.is_object()) return j;
    refused = error_reply(400, std::string("body: expected a JSON object, got ") + j.type_name());
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e400
    // "[json.exception.parse_error.101] parse error at line 1, column 2: ..." without the id.
    std::string_view what = e.what();
    if (const auto id_end = what.find("] "); what.starts_with("[json.") && id_end != what.npos)
      what.remove_prefix(id_end + 2);
    refused = error_reply(400, "body: not JSON: " + std::string(what));
  }
  return std::nullopt;
}

/// A 400 naming the first field of `body` that `accepted` does not list.
std::optional<reply> unknown_field(const json& body,
                                   std::initializer_list<std::string_view> accepted,
                                   std::string_view accepted_text) {
  for (const auto& [key, value] : body.items()) {
    bool known = false;
    for (std::string_view a : accepted) known = known || key == a;
    if (!known) {
      std::string name = key.size() > 40 ? key.substr(0, 37) + "..." : key;
      return error_reply(400,
                         name + ": unknown field (accepted: " + std::string(accepted_text) + ")");
    }
  }
  return std::nullopt;
}

/// The backend's answer to a change: `done` when it succeeded, else its status and message.
reply from_result(const result& r, std::string done) {
  if (r.status == 200) return ok(std::move(done));
  if (r.status >= 400 && r.status <= 599)
    return error_reply(r.status, r.error.empty() ? "refused" : r.error);
  return error_reply(500, "backend: unexpected status " + std::to_string(r.status));
}

reply change_policy(backend& b, const std::string& controller, std::string_view method,
                    std::string_view body) {
  reply refused;
  if (!parse_object(body, refused)) return refused;
  const result r = b.set_policy(controller, body, method == "PUT");
  if (r.status != 200) return from_result(r, {});
  auto now = b.policy_json(controller);
  if (!now) return error_reply(500, "policies: \"" + controller + "\" vanished after it was set");
  return ok(std::move(*now));
}

reply resize(backend& b, const std::string& group, std::string_view body) {
  reply refused;
  const auto j = parse_object(body, refused);
  if (!j) return refused;
  if (auto r = unknown_field(*j, {"threads"}, "threads")) return *r;
  const std::string expected =
      "expected a whole number " + std::to_string(min_threads) + ".." + std::to_string(max_threads);
  const auto it = j->find("threads");
  if (it == j->end()) return error_reply(400, "threads: missing; " + expected);
  if (!it->is_number_unsigned() || it->get<std::uint64_t>() < min_threads ||
      it->get<std::uint64_t>() > max_threads) {
    return error_reply(400, "threads: " + expected + ", got " + shown(*it));
  }
  return from_result(b.resize(group, it->get<std::size_t>()), R"({"ok":true})");
}

reply fuse(backend& b, std::string_view body) {
  reply refused;
  const auto j = parse_object(body, refused);
  if (!j) return refused;
  if (auto r = unknown_field(*j, {"stages"}, "stages")) return *r;
  const auto it = j->find("stages");
  const auto is_name = [](const json& v) { return v.is_string() && !v.get<std::string>().empty(); };
  if (it == j->end() || !it->is_array() || it->size() != 2 || !is_name((*it)[0]) ||
      !is_name((*it)[1])) {
    return error_reply(400,
                       "stages: expected two stage names, e.g. [\"read_parse\",\"cache_lookup\"]" +
                           (it == j->end() ? std::string(", got nothing") : ", got " + shown(*it)));
  }
  const auto first = (*it)[0].get<std::string>(), second = (*it)[1].get<std::string>();
  return from_result(b.fuse(first, second), R"({"ok":true})");
}

reply split(backend& b, std::string_view body) {
  reply refused;
  const auto j = parse_object(body, refused);
  if (!j) return refused;
  if (auto r = unknown_field(*j, {"stage"}, "stage")) return *r;
  const auto it = j->find("stage");
  if (it == j->end() || !it->is_string() || it->get<std::string>().empty()) {
    return error_reply(400,
                       "stage: expected a stage name, e.g. \"send\"" +
                           (it == j->end() ? std::string(", got nothing") : ", got " + shown(*it)));
  }
  return from_result(b.split(it->get<std::string>()), R"({"ok":true})");
}

/// The value of `key` in a query string ("a=1&b=2"), undecoded; nullopt when absent.
std::optional<std::string_view> query_value(std::string_view query, std::string_view key) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    if (pair.starts_with(key) && pair.size() > key.size() && pair[key.size()] == '=')
      return pair.substr(key.size() + 1);
    if (pair == key) return std::string_view{};
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

}  // namespace

reply error_reply(int status, std::string_view message) {
  std::string line(message);
  for (char& c : line) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  reply r{.status = status, .body = dump({{"error", line}}), .error = std::move(line)};
  return r;
}

std::optional<route> match(std::string_view path) {
  if (path == "/healthz") return route{endpoint::healthz, {}};
  if (path == "/readyz") return route{endpoint::readyz, {}};
  if (path == "/topology") return route{endpoint::topology, {}};
  if (path == "/policies") return route{endpoint::policies, {}};
  if (path == "/decisions") return route{endpoint::decisions, {}};
  if (path == "/fuse") return route{endpoint::fuse, {}};
  if (path == "/split") return route{endpoint::split, {}};
  if (const auto name = segment_after(path, "/policies/"); !name.empty())
    return route{endpoint::policy, std::string(name)};
  if (path.starts_with("/groups/") && path.ends_with("/resize")) {
    const std::string_view group = segment_after(path.substr(0, path.size() - 7), "/groups/");
    if (!group.empty()) return route{endpoint::resize, std::string(group)};
  }
  return std::nullopt;
}

std::string_view allowed_methods(endpoint what) {
  switch (what) {
    case endpoint::policy:
      return "GET, HEAD, PUT, PATCH";
    case endpoint::resize:
    case endpoint::fuse:
    case endpoint::split:
      return "POST";
    default:
      return "GET, HEAD";
  }
}

bool allows(endpoint what, std::string_view method) {
  std::string_view list = allowed_methods(what);
  while (!list.empty()) {
    const auto comma = list.find(", ");
    if (list.substr(0, comma) == method) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 2);
  }
  return false;
}

reply routes::read(const route& r, std::string_view query) {
  switch (r.what) {
    case endpoint::healthz:
      return ok(R"({"status":"ok"})");
    case endpoint::readyz:
      return backend_.ready() ? ok(R"({"ready":true})")
                              : reply{.status = 503, .body = R"({"ready":false})"};
    case endpoint::topology:
      return topology();
    case endpoint::policies:
      return ok(backend_.policies_json());
    case endpoint::policy:
      if (auto p = backend_.policy_json(r.name)) return ok(std::move(*p));
      return error_reply(404, "policies: no controller named \"" + r.name + "\"");
    case endpoint::decisions:
      return decisions(query);
    default:
      return error_reply(405, "not readable");  // server.cpp checked the method: not reached
  }
}

reply routes::change(const route& r, std::string_view method, std::string_view body) {
  switch (r.what) {
    case endpoint::policy:
      return change_policy(backend_, r.name, method, body);
    case endpoint::resize:
      return resize(backend_, r.name, body);
    case endpoint::fuse:
      return fuse(backend_, body);
    case endpoint::split:
      return split(backend_, body);
    default:
      return error_reply(405, "not changeable");  // server.cpp checked the method: not reached
  }
}

reply routes::topology() {
  // The snapshot is taken under the lock too, so the kept snapshots are in the order taken.
  std::lock_guard lock(topology_mutex_);
  server_snapshot now = backend_.snapshot();
  return ok(topology_.render(std::move(now), topology_window::clock::now()));
}

reply routes::decisions(std::string_view query) {
  std::int64_t since_ms = std::numeric_limits<std::int64_t>::min();
  if (const auto v = query_value(query, "since_ms")) {
    const auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), since_ms);
    if (v->empty() || ec != std::errc() || end != v->data() + v->size()) {
      return error_reply(400,
                         "since_ms: expected a whole number of milliseconds (as in at_ms), got \"" +
                             std::string(v->substr(0, 40)) + "\"");
    }
  }
  json list = json::array();
  for (const auto& d : backend_.decisions()) {
    if (d.at_ms < since_ms) continue;
    list.push_back({
        {"at_ms", d.at_ms},
        {"controller", d.controller},
        {"action", d.action},
        {"group", d.group},
        {"from", d.from},
        {"to", d.to},
        {"why", d.why},
        {"applied", d.applied},
    });
  }
  return ok(dump({{"decisions", std::move(list)}}));
}

}  // namespace weir::admin
