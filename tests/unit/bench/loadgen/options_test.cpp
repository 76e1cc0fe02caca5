#include "bench/loadgen/options.hpp"

#include <arpa/inet.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace weir::loadgen {
namespace {

std::vector<std::string> with_base(std::vector<std::string> extra) {
  std::vector<std::string> a = {"--target", "127.0.0.1:8080", "--rate", "100"};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

std::string error_of(const std::vector<std::string>& args) {
  try {
    parse_options(args, 20000);
  } catch (const usage_error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Options, Defaults) {
  const options o = parse_options(with_base({}), 20000);
  EXPECT_EQ(o.config.model, client_model::pool);
  EXPECT_EQ(o.config.connections, 64);
  EXPECT_EQ(o.config.arrival, arrival_process::poisson);
  EXPECT_EQ(o.config.host, "127.0.0.1:8080");
  EXPECT_EQ(ntohs(o.config.target.sin_port), 8080);
  EXPECT_DOUBLE_EQ(o.config.rate, 100);
  EXPECT_EQ(o.config.series_ms, 1000);
  ASSERT_EQ(o.config.requests.entries().size(), 1u);
  EXPECT_EQ(o.config.requests.entries()[0].path, "/");
}

TEST(Options, EverySettingBothSpellings) {
  const options o = parse_options(
      with_base({"--model=users", "--connections", "10", "--session=3", "--arrival", "constant",
                 "--seed=9", "--warmup", "1", "--duration=2.5", "--timeout", "0.5", "--path",
                 "/c0/f0.bin", "--json=x.json", "--max-lag-ms", "2", "--series-ms=100"}),
      20000);
  EXPECT_EQ(o.config.model, client_model::users);
  EXPECT_EQ(o.config.connections, 10);
  EXPECT_EQ(o.config.session, 3);
  EXPECT_EQ(o.config.arrival, arrival_process::constant);
  EXPECT_EQ(o.config.seed, 9u);
  EXPECT_DOUBLE_EQ(o.config.duration_s, 2.5);
  EXPECT_DOUBLE_EQ(o.config.timeout_s, 0.5);
  EXPECT_EQ(o.config.requests.entries()[0].path, "/c0/f0.bin");
  EXPECT_EQ(o.json_file, "x.json");
  EXPECT_DOUBLE_EQ(o.config.max_lag_ms, 2);
  EXPECT_EQ(o.config.series_ms, 100);
}

TEST(Options, SeriesSlotLengthIsWholeMillisecondsInRange) {
  EXPECT_EQ(parse_options(with_base({"--series-ms", "10"}), 20000).config.series_ms, 10);
  EXPECT_EQ(parse_options(with_base({"--series-ms", "60000"}), 20000).config.series_ms, 60000);
  for (const char* v : {"9", "60001", "0", "-100", "100.5", "1e3", "", "fast"})
    EXPECT_EQ(error_of(with_base({std::string("--series-ms=") + v})),
              std::string("--series-ms: \"") + v + "\" is not an integer in [10, 60000]")
        << v;
}

TEST(Options, BadFlagsNameTheFlagAndTheAcceptedValues) {
  EXPECT_EQ(error_of({"--rate", "5"}),
            "--target: missing; give the server as ADDR:PORT, e.g. 127.0.0.1:8080");
  EXPECT_EQ(error_of({"--target", "127.0.0.1:80"}),
            "--rate: missing; give requests per second in (0, 1000000]");
  EXPECT_EQ(error_of(with_base({"--rate", "0"})), "--rate: given twice");
  EXPECT_EQ(error_of({"--target", "127.0.0.1:80", "--rate", "0"}),
            "--rate: \"0\" is not a number in (0, 1000000]");
  EXPECT_EQ(error_of({"--target", "127.0.0.1:80", "--rate", "1e7"}),
            "--rate: \"1e7\" is not a number in (0, 1000000]");
  EXPECT_EQ(error_of(with_base({"--model", "closed"})),
            "--model: \"closed\" is not one of pool, users");
  EXPECT_EQ(error_of(with_base({"--connections", "0"})),
            "--connections: \"0\" is not an integer in [1, 100000]");
  EXPECT_EQ(error_of(with_base({"--connections", "19990"})),
            "--connections: 19990 needs more file descriptors than the limit (20000); at most "
            "19968");
  EXPECT_EQ(error_of(with_base({"--session", "2"})),
            "--session: only with --model users (a pool connection carries any number)");
  EXPECT_EQ(error_of(with_base({"--arrival", "bursty"})),
            "--arrival: \"bursty\" is not one of constant, poisson");
  EXPECT_EQ(error_of(with_base({"--duration", "0"})),
            "--duration: \"0\" is not a number in (0, 3600]");
  EXPECT_EQ(error_of(with_base({"--warmup", "-1"})),
            "--warmup: \"-1\" is not a number in [0, 600]");
  EXPECT_EQ(error_of(with_base({"--timeout", "0.001"})),
            "--timeout: \"0.001\" is not a number in [0.01, 600]");
  EXPECT_EQ(error_of(with_base({"--seed", "x"})),
            "--seed: \"x\" is not an integer in [0, 18446744073709551615]");
  EXPECT_EQ(error_of(with_base({"--path", "nope"})),
            "--path: \"nope\" is not a path (starts with '/', no spaces or control characters)");
  EXPECT_EQ(error_of(with_base({"--mix", "/nonexistent.mix"})),
            "--mix: \"/nonexistent.mix\" cannot be read");
  EXPECT_EQ(error_of(with_base({"--mix", "a", "--path", "/"})),
            "--mix: choose one of --mix and --path");
  EXPECT_EQ(error_of(with_base({"--bogus"})), "--bogus: unknown option (see --help)");
  EXPECT_EQ(error_of(with_base({"--duration"})), "--duration: missing value");
  EXPECT_EQ(error_of(with_base({"--allow-remote=yes"})), "--allow-remote: takes no value");
  EXPECT_EQ(error_of(with_base({"serve"})),
            "\"serve\": unexpected argument (every setting is a --flag; see --help)");
  EXPECT_EQ(error_of({"--target", "127.0.0.1:80", "--rate", "1000000", "--duration", "3600"}),
            "--rate: --rate x (--warmup + --duration) is 3600000000.000000 requests; at most "
            "1000000000 per run");
  EXPECT_EQ(error_of({"--target", "nohost", "--rate", "1"}),
            "--target: \"nohost\" is not ADDR:PORT (IPv4)");
  EXPECT_EQ(error_of({"--target", "127.0.0.1:0", "--rate", "1"}),
            "--target: \"127.0.0.1:0\": the port must be in [1, 65535]");
  EXPECT_EQ(error_of({"--target", "example.com:80", "--rate", "1"}),
            "--target: \"example.com:80\" is not ADDR:PORT (ADDR an IPv4 address or localhost)");
}

TEST(Options, RateProfileSetsTheRateAndTheDuration) {
  const options o = parse_options(
      {"--target", "127.0.0.1:8080", "--rate-profile", "5000:10,15000:30,5000:30.5"}, 20000);
  ASSERT_EQ(o.config.profile.size(), 3u);
  EXPECT_DOUBLE_EQ(o.config.profile[1].first, 15000);
  EXPECT_DOUBLE_EQ(o.config.profile[2].second, 30.5);
  EXPECT_DOUBLE_EQ(o.config.rate, 5000);  // the warm-up's
  EXPECT_DOUBLE_EQ(o.config.duration_s, 70.5);
  EXPECT_EQ(error_of({"--target", "127.0.0.1:8080", "--rate-profile", "5000:10", "--rate", "1"}),
            "--rate-profile: choose one of --rate and --rate-profile");
  EXPECT_EQ(
      error_of({"--target", "127.0.0.1:8080", "--rate-profile", "5000:10", "--duration", "3"}),
      "--rate-profile: sets the duration itself: drop --duration");
  EXPECT_EQ(error_of({"--target", "127.0.0.1:8080", "--rate-profile", "5000:10,"}),
            "--rate-profile: \"\" is not RATE:SECONDS (e.g. 5000:10)");
  EXPECT_EQ(error_of({"--target", "127.0.0.1:8080", "--rate-profile", "5000:0"}),
            "--rate-profile: \"0\" is not a number in (0, 3600] as the seconds of \"5000:0\"");
  EXPECT_EQ(error_of({"--target", "127.0.0.1:8080", "--rate-profile", "fast:10"}),
            "--rate-profile: \"fast\" is not a number in (0, 1000000] as the rate of "
            "\"fast:10\"");
}

TEST(Options, RemoteTargetsNeedAllowRemote) {
  EXPECT_EQ(error_of({"--target", "10.1.2.3:80", "--rate", "1"}),
            "--target: 10.1.2.3 is not a loopback address (127.0.0.0/8); pass --allow-remote to "
            "load another host");
  EXPECT_EQ(error_of({"--target", "10.1.2.3:80", "--rate", "1", "--allow-remote"}), "(no error)");
  EXPECT_EQ(error_of({"--target", "127.8.9.10:80", "--rate", "1"}), "(no error)");
  EXPECT_EQ(error_of({"--target", "localhost:80", "--rate", "1"}), "(no error)");
}

}  // namespace
}  // namespace weir::loadgen
