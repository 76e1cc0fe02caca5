// The `weir` binary: flags and config file in, a running server out. Everything else lives in
// the libraries.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <spdlog/fmt/fmt.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>

#include "runtime/config.hpp"
#include "runtime/version.hpp"
#include "service/service.hpp"
#include "stages/sample_site.hpp"

namespace {

constexpr int exit_runtime_error = 1;
constexpr int exit_usage = 2;
constexpr int exit_forced = 3;  // a second stop signal cut the drain short

// Bad operator input (flag or config): one line on stderr, exit 2.
class usage_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct cli {
  std::optional<std::string> root, listen, config_file, access_log, log_level, metrics_listen,
      admin_listen, fault_disk_latency, fault_shed;
  bool no_metrics = false, no_admin = false, test_config = false, help = false, version = false;
};

struct option {
  std::string_view name;
  std::string_view metavar;  // empty: a switch
  std::optional<std::string> cli::*value;
  bool cli::*on;
};

constexpr option options[] = {
    {"--root", "DIR", &cli::root, nullptr},
    {"--listen", "ADDR:PORT", &cli::listen, nullptr},
    {"--config", "FILE", &cli::config_file, nullptr},
    {"--access-log", "FILE", &cli::access_log, nullptr},
    {"--log-level", "LEVEL", &cli::log_level, nullptr},
    {"--metrics-listen", "ADDR:PORT", &cli::metrics_listen, nullptr},
    {"--no-metrics", "", nullptr, &cli::no_metrics},
    {"--admin-listen", "ADDR:PORT", &cli::admin_listen, nullptr},
    {"--no-admin", "", nullptr, &cli::no_admin},
    {"--fault-disk-latency", "DURATION", &cli::fault_disk_latency, nullptr},
    {"--fault-shed", "MODE", &cli::fault_shed, nullptr},
    {"--test-config", "", nullptr, &cli::test_config},
    {"--help", "", nullptr, &cli::help},
    {"--version", "", nullptr, &cli::version},
};

std::string in_quotes(std::string_view s) {
  return "\"" + std::string(s) + "\"";
}

std::string log_level_list() {
  std::string out;
  for (std::string_view l : weir::log_levels) out += (out.empty() ? "" : ", ") + std::string(l);
  return out;
}

void print_usage() {
  const weir::config d;
  std::cout << fmt::format(
      R"(Usage: weir [OPTION]...
Serve static files over HTTP/1.1 through a staged (SEDA) pipeline.

  --root DIR          document root (default: none, a built-in sample site)
  --listen ADDR:PORT  address to listen on, IPv4:port or [IPv6]:port
                      (default: {})
  --config FILE       YAML config file; the options here override it
  --access-log FILE   access log file, "-" for stdout (default: off)
  --log-level LEVEL   {} (default: {})
  --metrics-listen ADDR:PORT
                      serve Prometheus metrics at http://ADDR:PORT/metrics
                      (default: {}; keep it off the public network)
  --no-metrics        no metrics endpoint
  --admin-listen ADDR:PORT
                      serve the admin API (controller policies, topology,
                      decisions, /healthz, /readyz) at http://ADDR:PORT/
                      (default: {}; off loopback it needs admin.token_file)
  --no-admin          no admin API
  --fault-disk-latency DURATION
                      for experiments and tests only: every disk read first
                      waits DURATION (e.g. 20ms, 500us), as on a slow disk
  --fault-shed MODE   for experiments only: answer every GET and HEAD with 503
                      (Retry-After) before the cache, to measure the cost of a
                      refusal: keep (the connection stays open, as admission
                      control refuses) or close (as when a queue is full)
  --test-config       check the configuration and the root, then exit
  --help              print this help and exit
  --version           print the version and exit

Options take their value as --opt VALUE or --opt=VALUE.
SIGTERM or SIGINT stops weir gracefully: responses in flight get up to
timeouts.drain (default: {}) to finish; a second one during the drain exits at
once. SIGHUP re-reads the config file:
controller policies, stage grouping, queues and pool sizes, timeouts, limits,
retry_after, the cache and the log level change live, the access log is
reopened; listen, root, metrics, admin and the access log's path need a
restart, and each of those that changed is logged. An invalid file changes
nothing.
The pool, grouping and admission controllers run by default (docs/controllers.md):
admission control refuses the excess with 503 so that admitted requests meet
controllers.admission.target (100ms at p99).
Exit status: 0 ok, 1 runtime error (e.g. address in use), 2 bad option/config,
3 stopped by a second signal before the drain finished.

Example:
  weir --root /srv/www --listen 0.0.0.0:8080 --access-log /var/log/weir.log
)",
      d.listen, log_level_list(), d.log_level, d.metrics_listen, d.admin_listen,
      weir::format_duration(d.drain_timeout));
}

void check_flag_value(std::string_view name, const std::string& value) {
  const std::string prefix = std::string(name) + ": " + in_quotes(value);
  if (name == "--listen" && !weir::parse_listen(value))
    throw usage_error(prefix + " is not ADDR:PORT (e.g. 127.0.0.1:8080)");
  if (name == "--metrics-listen" && !weir::parse_listen(value))
    throw usage_error(prefix + " is not ADDR:PORT (e.g. 127.0.0.1:9464)");
  if (name == "--metrics-listen" && value.starts_with("["))
    throw usage_error(prefix + ": IPv6 is not supported for metrics (use an IPv4 address)");
  if (name == "--admin-listen" && (!weir::parse_listen(value) || value.starts_with("[")))
    throw usage_error(prefix + " is not IPv4ADDR:PORT (e.g. 127.0.0.1:9465)");
  if (name == "--fault-shed" && value != "keep" && value != "close")
    throw usage_error(prefix + " is not one of keep, close");
  if (name == "--fault-disk-latency" && !weir::parse_duration_us(value))
    throw usage_error(prefix + " is not a duration (e.g. 20ms, 500us)");
  if (name == "--log-level" && std::find(std::begin(weir::log_levels), std::end(weir::log_levels),
                                         std::string_view(value)) == std::end(weir::log_levels))
    throw usage_error(prefix + " is not one of " + log_level_list());
  if ((name == "--config" || name == "--root") && value.empty())
    throw usage_error(std::string(name) + ": empty value");
}

cli parse_args(int argc, char** argv) {
  cli c;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "-h") arg = "--help";
    if (!arg.starts_with("--") || arg == "--")
      throw usage_error(in_quotes(arg) +
                        ": unexpected argument (weir takes only options; see --help)");
    const auto eq = arg.find('=');
    const std::string_view name = arg.substr(0, eq);
    const auto* opt = std::find_if(std::begin(options), std::end(options),
                                   [&](const option& o) { return o.name == name; });
    if (opt == std::end(options))
      throw usage_error(std::string(name) + ": unknown option (see weir --help)");
    if (opt->metavar.empty()) {
      if (eq != std::string_view::npos) throw usage_error(std::string(name) + ": takes no value");
      c.*(opt->on) = true;
      continue;
    }
    std::string value;
    if (eq != std::string_view::npos) {
      value = arg.substr(eq + 1);
    } else if (i + 1 < argc && !std::string_view(argv[i + 1]).starts_with("--")) {
      value = argv[++i];
    } else {
      throw usage_error(std::string(name) + ": missing value (" + std::string(opt->metavar) + ")");
    }
    check_flag_value(name, value);
    c.*(opt->value) = std::move(value);
  }
  return c;
}

// The root must be a directory we can open; checked here so a typo fails before anything starts.
void check_root(const std::string& root, const std::string& source) {
  const int fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::close(fd);
    return;
  }
  const int err = errno;
  std::string msg = source + ": " + in_quotes(root);
  if (err == ENOTDIR) {
    msg += " is not a directory";
  } else if (err == ENOENT) {
    msg += " is not a directory (" + std::string(std::strerror(err)) + ")";
  } else {
    msg += " cannot be opened (" + std::string(std::strerror(err)) + ")";
  }
  throw usage_error(msg);
}

// File first, then flags, then validation: flags win, and nothing runs on a half-read config.
weir::config resolve_config(const cli& c) {
  weir::config cfg;
  if (c.config_file) cfg = weir::load_config_file(*c.config_file, cfg);
  if (c.root) cfg.root = *c.root;
  if (c.listen) cfg.listen = *c.listen;
  if (c.access_log) cfg.access_log = *c.access_log;
  if (c.log_level) cfg.log_level = *c.log_level;
  if (c.metrics_listen) {
    if (c.no_metrics) throw usage_error("--metrics-listen and --no-metrics: choose one");
    cfg.metrics_listen = *c.metrics_listen;
    cfg.metrics_enabled = true;
  }
  if (c.no_metrics) cfg.metrics_enabled = false;
  if (c.admin_listen) {
    if (c.no_admin) throw usage_error("--admin-listen and --no-admin: choose one");
    cfg.admin_listen = *c.admin_listen;
    cfg.admin_enabled = true;
  }
  if (c.no_admin) cfg.admin_enabled = false;
  weir::validate(cfg);
  if (!cfg.root.empty()) {
    check_root(cfg.root, c.root ? "--root" : "config: root");
    std::error_code ec;
    auto absolute = std::filesystem::absolute(cfg.root, ec);
    if (!ec) cfg.root = absolute.string();
  }
  return cfg;
}

void setup_logging(const std::string& level) {
  // Replaces spdlog's default logger (named ""), so the libraries' spdlog::info() calls share
  // this format and level without taking a logger name they might want.
  auto logger =
      std::make_shared<spdlog::logger>("", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ [%l] %v", spdlog::pattern_time_type::utc);
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(std::move(logger));
  weir::set_log_level(level);
}

// Blocked before any thread exists so every worker inherits the mask and only sigwait sees them.
sigset_t block_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) sigaddset(&set, s);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  return set;
}

std::string describe_groups(const weir::config& cfg) {
  auto group_of = [&](std::size_t i) {
    return cfg.stages[i].group.empty() ? std::string(weir::stage_names[i]) : cfg.stages[i].group;
  };
  std::string out;
  for (std::size_t i = 0; i < weir::stage_count;) {
    std::string members = weir::stage_names[i];
    std::size_t j = i;
    while (j + 1 < weir::stage_count && group_of(j + 1) == group_of(i))
      members += std::string("+") + weir::stage_names[++j];
    const weir::stage_config& lead = cfg.stages[i];
    if (!out.empty()) out += ", ";
    out += members;
    if (!lead.group.empty()) out += " as " + in_quotes(lead.group);
    out += fmt::format(" ({} thread{}, queue {})", lead.threads, lead.threads == 1 ? "" : "s",
                       lead.queue_capacity);
    i = j + 1;
  }
  return out;
}

// Removes the materialized sample site when main returns, after the server is gone.
struct sample_site_dir {
  std::string path;
  ~sample_site_dir() {
    if (path.empty()) return;
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

std::string url_host(const std::string& listen) {
  const weir::listen_address a = *weir::parse_listen(listen);
  return a.host.find(':') == std::string::npos ? a.host : "[" + a.host + "]";
}

std::string on_off(const char* name, bool enabled, bool dry_run) {
  return std::string(name) + (enabled ? (dry_run ? " dry-run" : " on") : " off");
}

int run(const cli& flags, weir::config cfg, const sigset_t& signals) {
  sample_site_dir sample;
  std::unique_ptr<weir::service> svc;
  try {
    if (cfg.root.empty()) {
      sample.path = weir::materialize_sample_site();
      cfg.root = sample.path;
    }
    // SIGHUP reads the file and the flags again, as at start-up.
    auto reread = [&flags, &sample] {
      try {
        weir::config c = resolve_config(flags);
        if (c.root.empty()) c.root = sample.path;
        return c;
      } catch (const usage_error& e) {
        throw weir::config_error(e.what());
      }
    };
    svc = std::make_unique<weir::service>(cfg, reread);
    svc->start();
    if (flags.fault_disk_latency) {
      const auto latency = *weir::parse_duration_us(*flags.fault_disk_latency);
      svc->set_fault_disk_latency(latency);
      spdlog::warn("fault injection: every disk read waits {} first (--fault-disk-latency)",
                   weir::format_duration_us(latency));
    }
    if (flags.fault_shed) {
      const bool keep = *flags.fault_shed == "keep";
      svc->set_fault_shed(keep ? weir::fault_shed_mode::keep : weir::fault_shed_mode::close);
      spdlog::warn("fault injection: every GET and HEAD is refused with 503, {} (--fault-shed)",
                   keep ? "keeping the connection" : "closing it");
    }
  } catch (const weir::config_error& e) {
    std::cerr << "weir: " << e.what() << '\n';
    return exit_usage;
  } catch (const std::exception& e) {
    std::cerr << "weir: cannot start: " << e.what() << '\n';
    return exit_runtime_error;
  }

  if (sample.path.empty()) {
    spdlog::info("root: {}", cfg.root);
  } else {
    spdlog::info(
        "no root given: serving the built-in sample site from {} (removed at exit); "
        "use --root DIR to serve your own files",
        sample.path);
  }
  if (cfg.metrics_enabled) {
    spdlog::info("metrics: http://{}:{}/metrics", url_host(cfg.metrics_listen),
                 svc->metrics_port());
  } else {
    spdlog::info("metrics: off");
  }
  if (cfg.admin_enabled) {
    spdlog::info("admin API: http://{}:{}/ ({})", url_host(cfg.admin_listen), svc->admin_port(),
                 cfg.admin_token_file.empty() ? "no token" : "changes need the bearer token");
  } else {
    spdlog::info("admin API: off");
  }
  spdlog::info("stage groups: {}", describe_groups(cfg));
  spdlog::info("controllers: {}, {}, {} (target p{:g} {})",
               on_off("pool", cfg.pool.enabled, cfg.pool.dry_run),
               on_off("grouping", cfg.grouping.enabled, cfg.grouping.dry_run),
               on_off("admission", cfg.admission.enabled, cfg.admission.dry_run),
               cfg.admission.percentile * 100, weir::format_duration(cfg.admission.target));
  spdlog::info("access log: {}", cfg.access_log.empty()  ? std::string("off")
                                 : cfg.access_log == "-" ? std::string("stdout")
                                                         : cfg.access_log);
  // Logged last: it means "ready", with every start-up line above it (tests wait for it).
  spdlog::info("weir {} (pid {}) listening on http://{}:{}/", weir::weir_version, ::getpid(),
               url_host(cfg.listen), svc->port());

  for (;;) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) continue;
    if (sig == SIGHUP) {
      spdlog::info("SIGHUP: reloading {}",
                   flags.config_file ? *flags.config_file : std::string("the flags (no --config)"));
      svc->reload();
      continue;
    }
    const auto drain = svc->running_config().drain_timeout;
    spdlog::info("SIG{}: shutting down (drain up to {})", sigabbrev_np(sig),
                 weir::format_duration(drain));
    // An operator who signals again does not want to wait for the drain: exit at once. SIGHUP
    // (a reload) is ignored meanwhile. Log lines are flushed as written (flush_on above).
    std::thread([&signals] {
      for (;;) {
        int again = 0;
        if (sigwait(&signals, &again) != 0 || again == SIGHUP) continue;
        spdlog::warn("SIG{} again: exiting without finishing the drain", sigabbrev_np(again));
        std::_Exit(exit_forced);
      }
    }).detach();
    try {
      if (!svc->stop(drain))
        spdlog::warn("drain did not finish within {}; cut off the connections still open",
                     weir::format_duration(drain));
    } catch (const std::exception& e) {
      spdlog::error("stopping: {}", e.what());
      return exit_runtime_error;
    }
    spdlog::info("stopped");
    return 0;
  }
}

}  // namespace

int main(int argc, char** argv) {
  const sigset_t signals = block_signals();
  try {
    const cli flags = parse_args(argc, argv);
    if (flags.help) {
      print_usage();
      return 0;
    }
    if (flags.version) {
      std::cout << "weir " << weir::weir_version << '\n';
      return 0;
    }
    weir::config cfg = resolve_config(flags);
    if (flags.test_config) {
      if (cfg.admin_enabled && !cfg.admin_token_file.empty())
        (void)weir::read_admin_token(cfg.admin_token_file);
      std::cout << "weir: configuration ok\n";
      return 0;
    }
    setup_logging(cfg.log_level);
    return run(flags, std::move(cfg), signals);
  } catch (const usage_error& e) {
    std::cerr << "weir: " << e.what() << '\n';
    return exit_usage;
  } catch (const weir::config_error& e) {
    std::cerr << "weir: " << e.what() << '\n';
    return exit_usage;
  } catch (const std::exception& e) {
    std::cerr << "weir: " << e.what() << '\n';
    return exit_runtime_error;
  }
}
