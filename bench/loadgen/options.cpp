#include "bench/loadgen/options.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cmath>
#include <fstream>
#include <optional>
#include <sstream>

namespace weir::loadgen {

const char* const usage_text = R"(usage: weir-loadgen --target ADDR:PORT --rate R [options]
An open-loop HTTP/1.1 load generator: requests are sent on schedule whatever the server does.
  --target ADDR:PORT   the server (IPv4; loopback only unless --allow-remote)
  --rate R             requests per second, (0, 1000000]
  --rate-profile R:S[,R:S...]
                       instead of --rate and --duration: the measured window runs at R req/s
                       for S seconds, then the next piece (e.g. 5000:10,15000:30,5000:30); the
                       warm-up runs at the first R; R in (0, 1000000], S in (0, 3600]
  --model pool|users   pool: at most --connections keep-alive connections, a FIFO backlog for
                       requests with none idle; users: a new connection per session, at most
                       --connections at once, arrivals over the cap are unsent (default pool)
  --connections N      [1, 100000] (default 64)
  --session K          users: requests per connection, [1, 10000] (default 1)
  --arrival constant|poisson   interarrival times (default poisson)
  --seed N             the random seed for arrivals and the mix (default 1)
  --warmup SECS        load not recorded before the measurement, [0, 600] (default 0)
  --duration SECS      the measured window, (0, 3600] (default 10)
  --timeout SECS       a request gives up this long after its intended time, [0.01, 600]
                       (default 5)
  --path PATH          request one path (default /)
  --mix FILE           request paths by weight: `WEIGHT PATH` lines, # comments
  --host NAME          the Host header (default: the target)
  --json FILE          write the summary and the series as JSON
  --series-ms MS       the series' slot length, [10, 60000] (default 1000)
  --max-lag-ms MS      warn when the mean dispatch lag exceeds this, (0, 10000] (default 1)
  --sources N          connect from N loopback addresses, 127.0.0.1 up, [1, 254] (default 1):
                       each has its own ephemeral ports, which a users model run past capacity
                       (timeouts leave TIME_WAITs) can otherwise exhaust; loopback targets only
  --allow-remote       allow a target outside 127.0.0.0/8
  --help               this text
Example: weir-loadgen --target 127.0.0.1:8080 --rate 2000 --duration 10 --mix specweb96.mix
)";

namespace {

struct raw_flags {
  std::optional<std::string> target, rate, rate_profile, model, connections, session, arrival, seed,
      warmup, duration, timeout, path, mix, host, json, max_lag, series_ms, sources;
  bool allow_remote = false, help = false;
};

struct flag_spec {
  const char* name;
  std::optional<std::string> raw_flags::*value;
  bool raw_flags::*on;
};

constexpr flag_spec flags[] = {
    {"--target", &raw_flags::target, nullptr},
    {"--rate", &raw_flags::rate, nullptr},
    {"--rate-profile", &raw_flags::rate_profile, nullptr},
    {"--model", &raw_flags::model, nullptr},
    {"--connections", &raw_flags::connections, nullptr},
    {"--session", &raw_flags::session, nullptr},
    {"--arrival", &raw_flags::arrival, nullptr},
    {"--seed", &raw_flags::seed, nullptr},
    {"--warmup", &raw_flags::warmup, nullptr},
    {"--duration", &raw_flags::duration, nullptr},
    {"--timeout", &raw_flags::timeout, nullptr},
    {"--path", &raw_flags::path, nullptr},
    {"--mix", &raw_flags::mix, nullptr},
    {"--host", &raw_flags::host, nullptr},
    {"--json", &raw_flags::json, nullptr},
    {"--max-lag-ms", &raw_flags::max_lag, nullptr},
    {"--series-ms", &raw_flags::series_ms, nullptr},
    {"--sources", &raw_flags::sources, nullptr},
    {"--allow-remote", nullptr, &raw_flags::allow_remote},
    {"--help", nullptr, &raw_flags::help},
};

[[noreturn]] void bad(const std::string& flag, const std::string& what) {
  throw usage_error(flag + ": " + what);
}

std::string in_quotes(const std::string& s) {
  return "\"" + s + "\"";
}

// A number in [lo, hi] (open at lo when lo_open).
double number(const std::string& flag, const std::string& text, double lo, double hi, bool lo_open,
              const char* range) {
  double v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || !std::isfinite(v) ||
      v < lo || (lo_open && v == lo) || v > hi)
    bad(flag, in_quotes(text) + " is not a number in " + range);
  return v;
}

long integer(const std::string& flag, const std::string& text, long lo, long hi) {
  long v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || v < lo || v > hi)
    bad(flag, in_quotes(text) + " is not an integer in [" + std::to_string(lo) + ", " +
                  std::to_string(hi) + "]");
  return v;
}

}  // namespace

options parse_options(const std::vector<std::string>& args, long fd_limit) {
  raw_flags raw;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string arg = args[i];
    std::optional<std::string> inline_value;
    if (const auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      inline_value = arg.substr(eq + 1);
      arg.resize(eq);
    }
    const flag_spec* spec = nullptr;
    for (const flag_spec& f : flags)
      if (arg == f.name) spec = &f;
    if (!spec) {
      if (arg.rfind("-", 0) == 0) bad(arg, "unknown option (see --help)");
      throw usage_error(in_quotes(arg) +
                        ": unexpected argument (every setting is a --flag; see --help)");
    }
    if (spec->on) {
      if (inline_value) bad(arg, "takes no value");
      raw.*(spec->on) = true;
      continue;
    }
    if (!inline_value) {
      if (i + 1 >= args.size() || args[i + 1].rfind("--", 0) == 0) bad(arg, "missing value");
      inline_value = args[++i];
    }
    if (raw.*(spec->value)) bad(arg, "given twice");
    raw.*(spec->value) = *inline_value;
  }

  options o;
  if (raw.help) {
    o.help = true;
    return o;
  }
  run_config& c = o.config;
  run_description& d = o.description;

  if (!raw.target) bad("--target", "missing; give the server as ADDR:PORT, e.g. 127.0.0.1:8080");
  {
    const std::string& t = *raw.target;
    const auto colon = t.rfind(':');
    if (colon == std::string::npos) bad("--target", in_quotes(t) + " is not ADDR:PORT (IPv4)");
    std::string host = t.substr(0, colon);
    if (host == "localhost") host = "127.0.0.1";
    in_addr addr{};
    if (inet_pton(AF_INET, host.c_str(), &addr) != 1)
      bad("--target", in_quotes(t) + " is not ADDR:PORT (ADDR an IPv4 address or localhost)");
    const std::string port_text = t.substr(colon + 1);
    long port = 0;
    const auto [end, ec] =
        std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
        port < 1 || port > 65535)
      bad("--target", in_quotes(t) + ": the port must be in [1, 65535]");
    if ((ntohl(addr.s_addr) >> 24) != 127 && !raw.allow_remote)
      bad("--target", host +
                          " is not a loopback address (127.0.0.0/8); pass --allow-remote to "
                          "load another host");
    c.target.sin_family = AF_INET;
    c.target.sin_addr = addr;
    c.target.sin_port = htons(static_cast<std::uint16_t>(port));
    d.target = host + ":" + std::to_string(port);
    c.host = raw.host ? *raw.host : d.target;
    if (c.host.empty() || c.host.find_first_of(" \t\r\n") != std::string::npos)
      bad("--host", in_quotes(c.host) + " is not a host name (no spaces or control characters)");
  }

  if (raw.rate_profile) {
    if (raw.rate) bad("--rate-profile", "choose one of --rate and --rate-profile");
    if (raw.duration) bad("--rate-profile", "sets the duration itself: drop --duration");
    const std::string& text = *raw.rate_profile;
    std::size_t at = 0;
    while (at <= text.size()) {
      const std::size_t comma = std::min(text.find(',', at), text.size());
      const std::string piece = text.substr(at, comma - at);
      const std::size_t colon = piece.find(':');
      if (colon == std::string::npos)
        bad("--rate-profile", in_quotes(piece) + " is not RATE:SECONDS (e.g. 5000:10)");
      const double rate = number("--rate-profile", piece.substr(0, colon), 0, 1e6, true,
                                 ("(0, 1000000] as the rate of " + in_quotes(piece)).c_str());
      const double secs = number("--rate-profile", piece.substr(colon + 1), 0, 3600, true,
                                 ("(0, 3600] as the seconds of " + in_quotes(piece)).c_str());
      c.profile.emplace_back(rate, secs);
      at = comma + 1;
    }
    if (c.profile.size() > 1000) bad("--rate-profile", "at most 1000 pieces");
    c.rate = c.profile.front().first;
    c.duration_s = 0;
    for (const auto& p : c.profile) c.duration_s += p.second;
    if (c.duration_s > 3600) bad("--rate-profile", "the pieces last more than 3600 s in all");
  } else {
    if (!raw.rate) bad("--rate", "missing; give requests per second in (0, 1000000]");
    c.rate = number("--rate", *raw.rate, 0, 1e6, true, "(0, 1000000]");
  }

  d.model = raw.model.value_or("pool");
  if (d.model == "pool")
    c.model = client_model::pool;
  else if (d.model == "users")
    c.model = client_model::users;
  else
    bad("--model", in_quotes(d.model) + " is not one of pool, users");

  const long max_conns = std::min(100000L, fd_limit - 32);
  if (raw.connections) {
    if (max_conns < 1) bad("--connections", "the file descriptor limit is too low for any");
    const long n = integer("--connections", *raw.connections, 1, 100000);
    if (n > max_conns)
      bad("--connections", std::to_string(n) + " needs more file descriptors than the limit (" +
                               std::to_string(fd_limit) + "); at most " +
                               std::to_string(max_conns));
    c.connections = static_cast<int>(n);
  } else {
    c.connections = static_cast<int>(std::min(64L, max_conns));
  }
  if (raw.session) {
    c.session = static_cast<int>(integer("--session", *raw.session, 1, 10000));
    if (c.model != client_model::users && c.session != 1)
      bad("--session", "only with --model users (a pool connection carries any number)");
  }

  d.arrival = raw.arrival.value_or("poisson");
  if (d.arrival == "poisson")
    c.arrival = arrival_process::poisson;
  else if (d.arrival == "constant")
    c.arrival = arrival_process::constant;
  else
    bad("--arrival", in_quotes(d.arrival) + " is not one of constant, poisson");

  if (raw.seed) {
    std::uint64_t s = 0;
    const std::string& t = *raw.seed;
    const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), s);
    if (t.empty() || ec != std::errc() || end != t.data() + t.size())
      bad("--seed", in_quotes(t) + " is not an integer in [0, 18446744073709551615]");
    c.seed = s;
  }
  if (raw.warmup) c.warmup_s = number("--warmup", *raw.warmup, 0, 600, false, "[0, 600]");
  if (raw.duration) c.duration_s = number("--duration", *raw.duration, 0, 3600, true, "(0, 3600]");
  if (raw.timeout) c.timeout_s = number("--timeout", *raw.timeout, 0.01, 600, false, "[0.01, 600]");
  if (raw.max_lag)
    c.max_lag_ms = number("--max-lag-ms", *raw.max_lag, 0, 10000, true, "(0, 10000]");
  if (raw.series_ms)
    c.series_ms = static_cast<int>(integer("--series-ms", *raw.series_ms, 10, 60000));
  if (raw.sources) {
    c.sources = static_cast<int>(integer("--sources", *raw.sources, 1, 254));
    if (c.sources > 1 && (ntohl(c.target.sin_addr.s_addr) >> 24) != 127)
      bad("--sources", "more than one source address needs a loopback target (127.0.0.0/8)");
  }
  double total = c.rate * c.warmup_s;
  if (c.profile.empty()) total += c.rate * c.duration_s;
  for (const auto& [rate, secs] : c.profile) total += rate * secs;
  if (total > 1e9)
    bad("--rate", "--rate x (--warmup + --duration) is " + std::to_string(total) +
                      " requests; at most 1000000000 per run");

  if (raw.mix && raw.path) bad("--mix", "choose one of --mix and --path");
  if (raw.mix) {
    std::ifstream in(*raw.mix, std::ios::binary);
    if (!in) bad("--mix", in_quotes(*raw.mix) + " cannot be read");
    std::stringstream text;
    text << in.rdbuf();
    try {
      c.requests = mix::parse(text.str(), *raw.mix);
    } catch (const mix_error& e) {
      bad("--mix", e.what());
    }
    d.mix = *raw.mix;
  } else {
    const std::string p = raw.path.value_or("/");
    try {
      c.requests = mix::parse("1 " + p, "--path");
    } catch (const mix_error&) {
      bad("--path",
          in_quotes(p) + " is not a path (starts with '/', no spaces or control characters)");
    }
    d.mix = p;
  }
  if (raw.json) {
    if (raw.json->empty()) bad("--json", "empty file name");
    o.json_file = *raw.json;
  }
  return o;
}

}  // namespace weir::loadgen
