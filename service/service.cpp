#include "service/service.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "admin/server.hpp"
#include "controllers/control_loop.hpp"
#include "metrics/endpoint.hpp"
#include "runtime/version.hpp"
#include "stages/server.hpp"

namespace weir {
namespace {

spdlog::level::level_enum spdlog_level(std::string_view level) {
  if (level == "trace") return spdlog::level::trace;
  if (level == "debug") return spdlog::level::debug;
  if (level == "warn") return spdlog::level::warn;
  if (level == "error") return spdlog::level::err;
  if (level == "off") return spdlog::level::off;
  return spdlog::level::info;
}

}  // namespace

std::string read_admin_token(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw config_error("config: admin.token_file: " + path + " is a directory, not a file");
  std::ifstream in(path);
  if (!in) throw config_error("config: admin.token_file: " + path + ": " + std::strerror(errno));
  std::stringstream text;
  text << in.rdbuf();
  std::string token = text.str();
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' '))
    token.pop_back();
  token.erase(0, token.find_first_not_of(" \t\r\n") == std::string::npos
                     ? token.size()
                     : token.find_first_not_of(" \t\r\n"));
  if (token.empty()) throw config_error("config: admin.token_file: " + path + " is empty");
  if (token.find_first_of(" \t\r\n") != std::string::npos)
    throw config_error("config: admin.token_file: " + path +
                       " must hold one token (no spaces or line breaks inside it)");
  return token;
}

namespace {

// "config: controllers.pool.busy: ..." -> "controllers.pool.busy: ..." (the API names no file).
std::string without_prefix(std::string message) {
  constexpr std::string_view prefix = "config: ";
  if (std::string_view(message).starts_with(prefix)) message.erase(0, prefix.size());
  return message;
}

bool known_controller(std::string_view name) {
  for (std::string_view n : controller_names)
    if (n == name) return true;
  return false;
}

// The settings that only a restart changes, and whether they differ.
std::vector<std::string> needs_restart(const config& running, const config& next) {
  std::vector<std::string> out;
  const auto check = [&](bool differs, const char* name) {
    if (differs) out.emplace_back(name);
  };
  check(running.listen != next.listen, "listen");
  check(running.root != next.root, "root");
  check(running.follow_symlinks_outside_root != next.follow_symlinks_outside_root,
        "follow_symlinks_outside_root");
  check(running.metrics_enabled != next.metrics_enabled ||
            running.metrics_listen != next.metrics_listen,
        "metrics");
  check(running.admin_enabled != next.admin_enabled || running.admin_listen != next.admin_listen ||
            running.admin_token_file != next.admin_token_file,
        "admin");
  check(running.access_log != next.access_log, "access_log");
  return out;
}

std::string policy_name(cache_policy p) {
  return p == cache_policy::lfu ? "lfu" : "lru";
}

std::string group_name(const config& c, std::size_t stage) {
  return c.stages[stage].group.empty() ? stage_names[stage] : c.stages[stage].group;
}

// One line per setting that changes live, "<field> <old> -> <new>", in the file's order
// (stage threads are logged where their group is resized).
std::vector<std::string> live_changes(const config& running, const config& next) {
  std::vector<std::string> out;
  const auto line = [&](std::string_view field, const auto& from, const auto& to,
                        const auto& format) {
    if (from != to) out.push_back(fmt::format("{} {} -> {}", field, format(from), format(to)));
  };
  const auto number = [](auto v) { return std::to_string(v); };
  const auto quoted = [](const std::string& v) { return "\"" + v + "\""; };
  for (std::size_t i = 0; i < stage_count; ++i) {
    const std::string path = std::string("stages.") + stage_names[i] + ".";
    line(path + "group", group_name(running, i), group_name(next, i), quoted);
    line(path + "queue", running.stages[i].queue_capacity, next.stages[i].queue_capacity, number);
  }
  line("cache.max_bytes", running.cache_max_bytes, next.cache_max_bytes, format_size);
  line("cache.max_file_bytes", running.cache_max_file_bytes, next.cache_max_file_bytes,
       format_size);
  line("cache.policy", running.cache_replacement, next.cache_replacement, policy_name);
  line("cache.revalidate", running.cache_revalidate, next.cache_revalidate, format_duration);
  line("timeouts.header", running.header_timeout, next.header_timeout, format_duration);
  line("timeouts.keepalive", running.keepalive_timeout, next.keepalive_timeout, format_duration);
  line("timeouts.send", running.send_timeout, next.send_timeout, format_duration);
  line("timeouts.drain", running.drain_timeout, next.drain_timeout, format_duration);
  line("limits.max_connections", running.max_connections, next.max_connections, number);
  line("limits.max_request_line", running.max_request_line, next.max_request_line, format_size);
  line("limits.max_header_bytes", running.max_header_bytes, next.max_header_bytes, format_size);
  line("limits.max_headers", running.max_headers, next.max_headers, number);
  line("limits.send_lowat", running.send_lowat, next.send_lowat, format_size);
  line("retry_after", running.retry_after_seconds, next.retry_after_seconds, number);
  line("log_level", running.log_level, next.log_level, [](const std::string& v) { return v; });
  for (std::string_view name : controller_names) {
    const std::string from = controller_settings_json(running, name);
    const std::string to = controller_settings_json(next, name);
    if (from != to) out.push_back(fmt::format("controllers.{} {}", name, to));
  }
  return out;
}

bool layout_differs(const config& running, const config& next) {
  for (std::size_t i = 0; i < stage_count; ++i) {
    if (group_name(running, i) != group_name(next, i) ||
        running.stages[i].queue_capacity != next.stages[i].queue_capacity)
      return true;
  }
  return false;
}

// The groups `c` names, as control_loop::apply_layout takes them (validate() made each group a
// contiguous run of stages whose first sets threads and queue).
std::vector<std::pair<std::vector<runtime::stage_index>, runtime::group::options>> layout_of(
    const config& c) {
  std::vector<std::pair<std::vector<runtime::stage_index>, runtime::group::options>> out;
  for (std::size_t i = 0; i < stage_count; ++i) {
    const std::string name = group_name(c, i);
    if (out.empty() || out.back().second.name != name) {
      out.push_back(
          {{},
           {.name = name, .capacity = c.stages[i].queue_capacity, .threads = c.stages[i].threads}});
    }
    out.back().first.push_back(static_cast<runtime::stage_index>(i));
    // As at start-up: disk_io's tasks block, so each queued miss wakes a worker of its own.
    if (i == server::disk_io) out.back().second.tasks_per_wake = 1;
  }
  return out;
}

}  // namespace

void set_log_level(std::string_view level) {
  spdlog::set_level(spdlog_level(level));
}

service::service(config cfg, config_source reload_from)
    : reload_from_(std::move(reload_from)), cfg_(std::move(cfg)) {
  server_ = std::make_unique<server>(cfg_);
}

service::~service() {
  stop(std::chrono::milliseconds(0));
}

void service::start() {
  std::string token;
  if (cfg_.admin_enabled && !cfg_.admin_token_file.empty())
    token = read_admin_token(cfg_.admin_token_file);
  server_->start();
  // Controllers read queue waits: stages are timed whenever a controller or /metrics may look.
  server_->pipeline().set_timing(true);
  loop_ = std::make_unique<controllers::control_loop>(
      server_->pipeline(), controllers::control_loop::options{.pool = cfg_.pool,
                                                              .grouping = cfg_.grouping,
                                                              .admission = cfg_.admission,
                                                              .gate = &server_->admission(),
                                                              .flow = controllers::weir_flow()});
  loop_->start();
  if (cfg_.metrics_enabled) {
    metrics_ = std::make_unique<metrics::endpoint>(
        cfg_.metrics_listen, [this] { return snapshot(); }, std::string(weir_version));
  }
  if (cfg_.admin_enabled) admin_ = std::make_unique<admin::server>(cfg_.admin_listen, *this, token);
  ready_ = true;
}

bool service::stop(std::chrono::milliseconds drain) {
  if (stopped_) return true;
  stopped_ = true;
  ready_ = false;            // /readyz says so while the drain runs
  if (loop_) loop_->stop();  // no regroup under the drain
  const bool clean = server_->stop(drain);
  admin_.reset();
  metrics_.reset();
  return clean;
}

void service::apply_controllers(const config& c) {
  loop_->set_pool(c.pool);
  loop_->set_grouping(c.grouping);
  loop_->set_admission(c.admission);
}

std::string service::reload() {
  std::lock_guard lock(mutex_);
  config next;
  try {
    next = reload_from_ ? reload_from_() : cfg_;
  } catch (const config_error& e) {
    spdlog::error("reload: {}; still running with the previous configuration", e.what());
    return e.what();
  }
  // `next` is valid as a whole. What needs a restart keeps its running value, so the next reload
  // compares with what runs; everything else applies below, nothing of it before this point.
  config applied = next;
  for (const std::string& field : needs_restart(cfg_, next))
    spdlog::warn("reload: {} changed; it takes effect at the next restart", field);
  applied.listen = cfg_.listen;
  applied.root = cfg_.root;
  applied.follow_symlinks_outside_root = cfg_.follow_symlinks_outside_root;
  applied.metrics_enabled = cfg_.metrics_enabled;
  applied.metrics_listen = cfg_.metrics_listen;
  applied.admin_enabled = cfg_.admin_enabled;
  applied.admin_listen = cfg_.admin_listen;
  applied.admin_token_file = cfg_.admin_token_file;
  applied.access_log = cfg_.access_log;
  // The connection table is sized at start-up (the event loop reads it without a lock); the
  // limit moves freely below that size.
  if (const std::size_t table = server_->connection_capacity(); next.max_connections > table) {
    spdlog::warn(
        "reload: limits.max_connections {} is above {}, the connection table's size at start-up; "
        "running with {} until the next restart",
        next.max_connections, table, table);
    applied.max_connections = table;
  }

  // The grouping first: the one step that can be refused (once a stop has begun).
  if (layout_differs(cfg_, applied)) {
    if (const std::string why = loop_->apply_layout(layout_of(applied)); !why.empty()) {
      spdlog::error(
          "reload: cannot regroup the stages: {}; still running with the previous "
          "configuration",
          why);
      return why;
    }
    if (applied.grouping.enabled && !applied.grouping.dry_run)
      spdlog::info(
          "reload: the grouping controller is on and may regroup these stages again "
          "(controllers.grouping.enabled: false keeps the file's grouping)");
  }
  const std::vector<std::string> changes = live_changes(cfg_, applied);
  apply_controllers(applied);
  for (std::size_t i = 0; i < stage_count; ++i) {
    if (applied.stages[i].threads == cfg_.stages[i].threads) continue;
    runtime::group& g = server_->pipeline().group_of(static_cast<runtime::stage_index>(i));
    if (g.threads() == applied.stages[i].threads) continue;  // made so by the regroup above
    g.resize(applied.stages[i].threads);
    spdlog::info("reload: {} ({}) resized to {} threads", stage_names[i], g.name(),
                 applied.stages[i].threads);
  }
  server_->apply_live(applied);
  if (applied.log_level != cfg_.log_level) set_log_level(applied.log_level);
  for (const std::string& change : changes) spdlog::info("reload: {}", change);
  if (const std::string why = server_->reopen_access_log(); !why.empty())
    spdlog::error("reload: cannot reopen the access log: {}; still writing to the old file", why);
  cfg_ = std::move(applied);
  spdlog::info("reload: configuration applied");
  return "";
}

void service::set_fault_disk_latency(std::chrono::microseconds latency) {
  server_->set_fault_disk_latency(latency);
}

void service::set_fault_shed(fault_shed_mode mode) {
  server_->set_fault_shed(mode);
}

std::uint16_t service::port() const {
  return server_->port();
}
std::uint16_t service::metrics_port() const {
  return metrics_ ? metrics_->port() : 0;
}
std::uint16_t service::admin_port() const {
  return admin_ ? admin_->port() : 0;
}

config service::running_config() const {
  std::lock_guard lock(mutex_);
  return cfg_;
}

server& service::http() {
  return *server_;
}

controllers::control_loop& service::controllers() {
  return *loop_;
}

// --- admin::backend -----------------------------------------------------------------------------

server_snapshot service::snapshot() const {
  server_snapshot s = server_->snapshot();
  if (loop_) {
    for (const auto& a : loop_->actions())
      s.controller_actions.push_back({a.controller, a.action, a.count});
  }
  return s;
}

std::string service::policies_json() const {
  std::lock_guard lock(mutex_);
  std::string out = "{";
  for (std::string_view name : controller_names) {
    if (out.size() > 1) out += ",";
    out += "\"" + std::string(name) + "\":" + controller_settings_json(cfg_, name);
  }
  return out + "}";
}

std::optional<std::string> service::policy_json(std::string_view controller) const {
  if (!known_controller(controller)) return std::nullopt;
  std::lock_guard lock(mutex_);
  return controller_settings_json(cfg_, controller);
}

admin::result service::set_policy(std::string_view controller, std::string_view body,
                                  bool replace) {
  if (!known_controller(controller)) {
    std::string names;
    for (std::string_view n : controller_names)
      names += (names.empty() ? "" : ", ") + std::string(n);
    return {404,
            "no controller named \"" + std::string(controller) + "\" (controllers: " + names + ")"};
  }
  std::lock_guard lock(mutex_);
  config next;
  try {
    next = apply_controller_settings(cfg_, controller, body, replace);
  } catch (const config_error& e) {
    return {400, without_prefix(e.what())};
  }
  apply_controllers(next);
  cfg_ = std::move(next);
  spdlog::info("admin: controllers.{} set: {}", controller,
               controller_settings_json(cfg_, controller));
  return {};
}

std::vector<controllers::decision_record> service::decisions() const {
  return loop_->recent();
}

admin::result service::resize(std::string_view group, std::size_t threads) {
  const std::string why = loop_->resize(group, threads);
  if (why.empty()) return {};
  return {why.starts_with("threads:") ? 400 : 404, why};
}

admin::result service::fuse(std::string_view stage_a, std::string_view stage_b) {
  const std::string why = loop_->fuse(stage_a, stage_b);
  if (why.empty()) return {};
  return {why.starts_with("no stage named") ? 404 : 409, why};
}

admin::result service::split(std::string_view stage) {
  const std::string why = loop_->split(stage);
  if (why.empty()) return {};
  return {why.starts_with("no stage named") ? 404 : 409, why};
}

bool service::ready() const {
  return ready_.load();
}

}  // namespace weir
