#include "runtime/config.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace weir {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

class config_file_test : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "weir-config-test-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& yaml, const std::string& name = "weir.yaml") {
    const fs::path p = dir_ / name;
    std::ofstream(p) << yaml;
    return p.string();
  }
  config load(const std::string& yaml, const config& base = {}) {
    return load_config_file(write(yaml), base);
  }
  // The message load() fails with, or "" when it does not fail.
  std::string error_of(const std::string& yaml) {
    try {
      load(yaml);
    } catch (const config_error& e) {
      return e.what();
    }
    return "";
  }

  fs::path dir_;
};

// One line, prefixed, naming the field: what an operator reading a terminal needs.
#define EXPECT_CONFIG_ERROR(yaml, expected)                      \
  do {                                                           \
    const std::string message = error_of(yaml);                  \
    EXPECT_NE(message.find(expected), std::string::npos)         \
        << "yaml: " << (yaml) << "\nmessage: " << message;       \
    EXPECT_EQ(message.rfind("config: ", 0), 0u) << message;      \
    EXPECT_EQ(message.find('\n'), std::string::npos) << message; \
  } while (false)

std::string validate_error(const config& c) {
  try {
    validate(c);
  } catch (const config_error& e) {
    return e.what();
  }
  return "";
}

TEST(config_defaults, are_valid_and_as_documented) {
  const config c;
  EXPECT_NO_THROW(validate(c));
  EXPECT_EQ(c.listen, "127.0.0.1:8080");
  EXPECT_EQ(c.root, "");
  ASSERT_EQ(c.stages.size(), stage_count);
  EXPECT_EQ(c.stages[3].threads, 2u);
  EXPECT_EQ(c.stages[0].queue_capacity, 1024u);
  EXPECT_EQ(c.cache_max_bytes, 64u << 20);
  EXPECT_EQ(c.cache_max_file_bytes, 256u << 10);
  EXPECT_EQ(c.keepalive_timeout, 65s);
  EXPECT_EQ(c.log_level, "info");
}

TEST_F(config_file_test, empty_file_gives_the_base) {
  EXPECT_EQ(load(""), config{});
  EXPECT_EQ(load("# nothing but a comment\n"), config{});
  config base;
  base.root = "/srv/www";
  base.stages[1].threads = 3;
  EXPECT_EQ(load("", base), base);
}

TEST_F(config_file_test, omitted_and_null_keys_keep_the_base) {
  config base;
  base.root = "/srv/www";
  base.cache_replacement = cache_policy::lfu;
  const config c = load("listen: \"0.0.0.0:80\"\nroot:\ncache: {max_bytes: 128MiB}\n", base);
  EXPECT_EQ(c.listen, "0.0.0.0:80");
  EXPECT_EQ(c.root, "/srv/www");
  EXPECT_EQ(c.cache_max_bytes, 128u << 20);
  EXPECT_EQ(c.cache_replacement, cache_policy::lfu);
}

TEST_F(config_file_test, every_key_is_read) {
  const config c = load(R"(
listen: "[::1]:9090"
root: /srv/www
follow_symlinks_outside_root: true
stages:
  accept:       { threads: 2, queue: 512 }
  read_parse:   { threads: 3, queue: 2048, group: front }
  cache_lookup: { group: front }
  disk_io:      { threads: 8, queue: 256 }
  send:         { threads: 4, queue: 8192 }
cache: { max_bytes: 1GiB, max_file_bytes: 1MiB, policy: lfu, revalidate: 250ms }
timeouts: { header: 5s, keepalive: 2m, send: 30s, drain: 1500 }
limits: { max_connections: 20000, max_request_line: 4KiB, max_header_bytes: 32k, max_headers: 50,
          send_lowat: 64KiB }
retry_after: 7
metrics: { enabled: false, listen: "127.0.0.2:19464" }
access_log: "-"
log_level: debug
)");
  EXPECT_EQ(c.listen, "[::1]:9090");
  EXPECT_EQ(c.root, "/srv/www");
  EXPECT_TRUE(c.follow_symlinks_outside_root);
  EXPECT_EQ(c.stages[0], (stage_config{"", 2, 512}));
  EXPECT_EQ(c.stages[1], (stage_config{"front", 3, 2048}));
  EXPECT_EQ(c.stages[2], (stage_config{"front", 3, 2048}));  // inherited from read_parse
  EXPECT_EQ(c.stages[3], (stage_config{"", 8, 256}));
  EXPECT_EQ(c.stages[4], (stage_config{"", 4, 8192}));
  EXPECT_EQ(c.cache_max_bytes, std::size_t{1} << 30);
  EXPECT_EQ(c.cache_max_file_bytes, 1u << 20);
  EXPECT_EQ(c.cache_replacement, cache_policy::lfu);
  EXPECT_EQ(c.cache_revalidate, 250ms);
  EXPECT_EQ(c.header_timeout, 5s);
  EXPECT_EQ(c.keepalive_timeout, 2min);
  EXPECT_EQ(c.send_timeout, 30s);
  EXPECT_EQ(c.drain_timeout, 1500ms);
  EXPECT_EQ(c.max_connections, 20000u);
  EXPECT_EQ(c.max_request_line, 4096u);
  EXPECT_EQ(c.max_header_bytes, 32768u);
  EXPECT_EQ(c.max_headers, 50u);
  EXPECT_EQ(c.send_lowat, 65536u);
  EXPECT_EQ(c.retry_after_seconds, 7u);
  EXPECT_FALSE(c.metrics_enabled);
  EXPECT_EQ(c.metrics_listen, "127.0.0.2:19464");
  EXPECT_EQ(c.access_log, "-");
  EXPECT_EQ(c.log_level, "debug");
}

// The source tree's deploy/weir.yaml. __FILE__ is relative to the build directory when ccache
// rewrites paths under its base_dir (CCACHE_BASEDIR), so then look upwards from the binary.
fs::path deploy_example() {
  const fs::path source = __FILE__;
  const fs::path beside_source = source.parent_path() / "../../../deploy/weir.yaml";
  if (source.is_absolute()) return beside_source;
  std::error_code ec;
  for (fs::path dir = fs::read_symlink("/proc/self/exe", ec).parent_path();
       !ec && dir.has_relative_path(); dir = dir.parent_path()) {
    if (fs::exists(dir / "deploy/weir.yaml") && fs::exists(dir / "runtime/config.hpp"))
      return dir / "deploy/weir.yaml";
  }
  return beside_source;
}

TEST_F(config_file_test, deploy_example_equals_the_defaults) {
  // deploy/weir.yaml documents every key at its default; this keeps the two from drifting.
  const fs::path example = deploy_example();
  ASSERT_TRUE(fs::exists(example)) << example;
  EXPECT_EQ(load_config_file(example.string(), config{}), config{});

  // And it really sets every key: loaded over a base that differs everywhere, it gives the
  // defaults back.
  config other;
  other.listen = "0.0.0.0:1";
  other.root = "/elsewhere";
  other.follow_symlinks_outside_root = true;
  for (auto& s : other.stages) s = {"x", 7, 77};
  other.cache_max_bytes = 1u << 30;
  other.cache_max_file_bytes = 1;
  other.cache_replacement = cache_policy::lfu;
  other.cache_revalidate = 5s;
  other.header_timeout = other.keepalive_timeout = other.send_timeout = other.drain_timeout = 1ms;
  other.max_connections = 1;
  other.max_request_line = 100;
  other.max_header_bytes = 100;
  other.max_headers = 1;
  other.retry_after_seconds = 9;
  other.access_log = "/x";
  other.log_level = "off";
  other.admin_enabled = false;
  other.admin_listen = "0.0.0.0:1";
  other.admin_token_file = "/token";
  other.pool = {.enabled = false,
                .dry_run = true,
                .period = 7ms,
                .grow_wait = 7us,
                .busy = 0.7,
                .idle = 0.07,
                .grow_after = 7,
                .shrink_after = 7ms,
                .shrink_after_blocking = 7ms,
                .min_threads = 7,
                .max_cpu_threads = 7,
                .max_blocking_threads = 7};
  other.grouping = {.enabled = false,
                    .dry_run = true,
                    .period = 7ms,
                    .fuse_below = 0.7,
                    .fuse_wakeups_per_task = 0.7,
                    .split_above = 0.7,
                    .split_wait = 7us,
                    .split_service_ratio = 7,
                    .fuse_after = 7,
                    .split_after = 7,
                    .cooldown = 7ms,
                    .fuse_blocking = true};
  other.admission = {.enabled = false,
                     .dry_run = true,
                     .period = 7ms,
                     .target = 7ms,
                     .percentile = 0.7,
                     .min_limit = 7,
                     .max_limit = 7,
                     .decrease_min = 0.07,
                     .decrease_max = 0.07,
                     .increase = 7,
                     .min_samples = 7};
  EXPECT_EQ(load_config_file(example.string(), other), config{});
}

TEST(config_parse, sizes) {
  EXPECT_EQ(parse_size("0"), 0u);
  EXPECT_EQ(parse_size("4096"), 4096u);
  EXPECT_EQ(parse_size("10B"), 10u);
  EXPECT_EQ(parse_size("1k"), 1024u);
  EXPECT_EQ(parse_size("1K"), 1024u);
  EXPECT_EQ(parse_size("256KiB"), 256u << 10);
  EXPECT_EQ(parse_size("64M"), 64u << 20);
  EXPECT_EQ(parse_size("64MiB"), 64u << 20);
  EXPECT_EQ(parse_size("64 MiB"), 64u << 20);
  EXPECT_EQ(parse_size("2G"), std::size_t{2} << 30);
  EXPECT_EQ(parse_size("2GiB"), std::size_t{2} << 30);
  for (const char* bad : {"", "MiB", "-1", "1.5MiB", "1KB", "1kb", "1 k b", "0x10", " 1", "1mib",
                          "99999999999999999999", "17179869184GiB"})
    EXPECT_FALSE(parse_size(bad)) << bad;
}

TEST(config_parse, durations) {
  EXPECT_EQ(parse_duration("0"), 0ms);
  EXPECT_EQ(parse_duration("1500"), 1500ms);
  EXPECT_EQ(parse_duration("250ms"), 250ms);
  EXPECT_EQ(parse_duration("10s"), 10s);
  EXPECT_EQ(parse_duration("10 s"), 10s);
  EXPECT_EQ(parse_duration("2m"), 2min);
  EXPECT_EQ(parse_duration("1h"), 1h);
  for (const char* bad :
       {"", "s", "ten", "1.5s", "-1s", "10 sec", "10S", "1d", "10us", "99999999999999999999"})
    EXPECT_FALSE(parse_duration(bad)) << bad;
}

TEST(config_parse, formats_round_trip) {
  EXPECT_EQ(format_size(64u << 20), "64MiB");
  EXPECT_EQ(format_size(1000), "1000");
  EXPECT_EQ(format_size(0), "0");
  EXPECT_EQ(format_duration(10s), "10s");
  EXPECT_EQ(format_duration(1500ms), "1500ms");
  EXPECT_EQ(format_duration(0ms), "0ms");
  EXPECT_EQ(format_duration(2min), "2m");
  EXPECT_EQ(format_duration(1h), "1h");
  for (std::size_t v : {std::size_t{0}, std::size_t{1}, std::size_t{3} << 10, std::size_t{5} << 30})
    EXPECT_EQ(parse_size(format_size(v)), v);
  for (std::chrono::milliseconds v : {0ms, 1ms, 999ms, 1000ms, 61000ms, 3600000ms})
    EXPECT_EQ(parse_duration(format_duration(v)), v);
}

TEST(config_parse, listen) {
  auto l = parse_listen("127.0.0.1:8080");
  ASSERT_TRUE(l);
  EXPECT_EQ(l->host, "127.0.0.1");
  EXPECT_EQ(l->port, 8080);
  l = parse_listen("[::1]:443");
  ASSERT_TRUE(l);
  EXPECT_EQ(l->host, "::1");
  EXPECT_EQ(l->port, 443);
  EXPECT_EQ(parse_listen("0.0.0.0:0")->port, 0);
  EXPECT_EQ(parse_listen("[::]:65535")->port, 65535);
  for (const char* bad :
       {"", "127.0.0.1", ":8080", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:80a", "127.0.0.1:-1",
        "127.0.0.1:000080", "1.2.3:80", "::1:8080", "[::1]8080", "[::1]:", "[127.0.0.1]:80",
        "localhost:8080", "x"})
    EXPECT_FALSE(parse_listen(bad)) << bad;
}

TEST_F(config_file_test, value_errors_name_the_field_and_what_is_accepted) {
  EXPECT_CONFIG_ERROR("listen: nope", "listen: \"nope\" is not ADDR:PORT");
  EXPECT_CONFIG_ERROR("listen: \"127.0.0.1:70000\"", "listen: \"127.0.0.1:70000\"");
  EXPECT_CONFIG_ERROR("follow_symlinks_outside_root: maybe",
                      "follow_symlinks_outside_root: \"maybe\" is not a boolean");
  EXPECT_CONFIG_ERROR("stages: {disk_io: {threads: 0}}",
                      "config: stages.disk_io.threads: 0 is out of range 1..256");
  EXPECT_CONFIG_ERROR("stages: {send: {threads: 257}}", "stages.send.threads: 257 is out of range");
  EXPECT_CONFIG_ERROR("stages: {send: {threads: -1}}", "stages.send.threads: -1 is out of range");
  EXPECT_CONFIG_ERROR("stages: {send: {threads: two}}",
                      "stages.send.threads: \"two\" is not a whole number");
  EXPECT_CONFIG_ERROR("stages: {accept: {queue: 1}}",
                      "stages.accept.queue: 1 is out of range 2..1048576");
  EXPECT_CONFIG_ERROR("stages: {accept: {queue: 1048577}}", "stages.accept.queue: 1048577");
  EXPECT_CONFIG_ERROR("stages: {accept: {queue: 99999999999999999999999}}",
                      "stages.accept.queue: 99999999999999999999999 is out of range");
  EXPECT_CONFIG_ERROR("stages: {disk_io: {group: Disk-IO}}",
                      "stages.disk_io.group: \"Disk-IO\" is not a group name ([a-z0-9_]+)");
  EXPECT_CONFIG_ERROR("cache: {policy: mru}",
                      "config: cache.policy: \"mru\" is not one of lru, lfu");
  EXPECT_CONFIG_ERROR("cache: {max_bytes: lots}", "cache.max_bytes: \"lots\" is not a size");
  EXPECT_CONFIG_ERROR("cache: {max_bytes: 1MiB, max_file_bytes: 128KiB}",
                      "cache.max_file_bytes: 128KiB is larger than cache.max_bytes / 16 = 64KiB");
  EXPECT_CONFIG_ERROR("cache: {revalidate: 2h}", "cache.revalidate: 2h is out of range 0ms..1h");
  EXPECT_CONFIG_ERROR("timeouts: {header: ten}",
                      "config: timeouts.header: \"ten\" is not a duration (e.g. 250ms, 10s, 2m)");
  EXPECT_CONFIG_ERROR("timeouts: {header: 0}", "timeouts.header: 0ms is out of range 1ms..1h");
  EXPECT_CONFIG_ERROR("timeouts: {keepalive: 61m}", "timeouts.keepalive: 61m is out of range");
  EXPECT_CONFIG_ERROR("timeouts: {send: 3601s}", "timeouts.send: 3601s is out of range");
  EXPECT_CONFIG_ERROR("timeouts: {drain: 0s}", "timeouts.drain: 0ms is out of range");
  EXPECT_CONFIG_ERROR("limits: {max_connections: 0}",
                      "limits.max_connections: 0 is out of range 1..1000000");
  EXPECT_CONFIG_ERROR("limits: {max_connections: 1000001}", "limits.max_connections: 1000001");
  EXPECT_CONFIG_ERROR("limits: {max_request_line: 63}",
                      "limits.max_request_line: 63 is out of range 64..1MiB");
  EXPECT_CONFIG_ERROR("limits: {max_request_line: 2MiB}", "limits.max_request_line: 2MiB");
  EXPECT_CONFIG_ERROR("limits: {max_header_bytes: 4KiB}",
                      "limits.max_header_bytes: 4KiB is out of range 8KiB..1MiB (at least "
                      "limits.max_request_line)");
  EXPECT_CONFIG_ERROR("limits: {max_header_bytes: 2MiB}", "limits.max_header_bytes: 2MiB");
  EXPECT_CONFIG_ERROR("limits: {max_headers: 0}", "limits.max_headers: 0 is out of range 1..10000");
  EXPECT_CONFIG_ERROR("limits: {max_headers: 10001}", "limits.max_headers: 10001");
  EXPECT_CONFIG_ERROR(
      "limits: {send_lowat: 65MiB}",
      "limits.send_lowat: 65MiB is out of range 0..64MiB (0: the kernel's default)");
  EXPECT_CONFIG_ERROR("limits: {send_lowat: -1}", "limits.send_lowat: ");
  EXPECT_CONFIG_ERROR("retry_after: 3601", "retry_after: 3601 is out of range 0..3600");
  EXPECT_CONFIG_ERROR("metrics: {listen: 9464}",
                      "metrics.listen: \"9464\" is not IPv4ADDR:PORT (e.g. 127.0.0.1:9464; IPv6 is "
                      "not supported)");
  EXPECT_CONFIG_ERROR("metrics: {listen: \"[::1]:9464\"}",
                      "metrics.listen: \"[::1]:9464\" is not IPv4ADDR:PORT");
  EXPECT_CONFIG_ERROR("metrics: {enabled: maybe}", "metrics.enabled: ");
  EXPECT_CONFIG_ERROR("metrics: {port: 1}",
                      "metrics.port: unknown key (expected one of enabled, listen)");
  EXPECT_CONFIG_ERROR("listen: \"127.0.0.1:9000\"\nmetrics: {listen: \"127.0.0.1:9000\"}",
                      "metrics.listen: \"127.0.0.1:9000\" is the public listen address; metrics "
                      "need their own port");
  EXPECT_CONFIG_ERROR("retry_after: -1", "retry_after: -1 is out of range 0..3600");
  EXPECT_CONFIG_ERROR("log_level: loud",
                      "log_level: \"loud\" is not one of trace, debug, info, warn, error, off");
}

TEST_F(config_file_test, boundary_values_are_accepted) {
  const config c = load(R"(
stages:
  accept: { threads: 256, queue: 2 }
  send: { threads: 1, queue: 1048576 }
cache: { max_bytes: 0, max_file_bytes: 0, revalidate: 0 }
timeouts: { header: 1ms, keepalive: 1h, send: 60m, drain: 3600s }
limits: { max_connections: 1000000, max_request_line: 1MiB, max_header_bytes: 1MiB,
          max_headers: 10000, send_lowat: 0 }
retry_after: 0
listen: "0.0.0.0:0"
)");
  EXPECT_EQ(c.stages[0].threads, 256u);
  EXPECT_EQ(c.cache_max_bytes, 0u);
  EXPECT_EQ(c.retry_after_seconds, 0u);
  EXPECT_EQ(c.send_lowat, 0u);
}

TEST_F(config_file_test, values_of_the_wrong_shape) {
  EXPECT_CONFIG_ERROR("stages: 5",
                      "config: stages: expected a mapping with keys accept, read_parse");
  EXPECT_CONFIG_ERROR("cache: [1, 2]", "cache: expected a mapping with keys max_bytes");
  EXPECT_CONFIG_ERROR("root: {a: 1}", "root: expected a single value, got a mapping");
  EXPECT_CONFIG_ERROR("log_level: [info]", "log_level: expected a single value, got a list");
  EXPECT_CONFIG_ERROR("- listen", "expected a mapping of keys");
  EXPECT_CONFIG_ERROR("just text", "expected a mapping of keys");
}

TEST_F(config_file_test, unknown_keys_are_named_with_the_accepted_ones) {
  EXPECT_CONFIG_ERROR("lisen: \"127.0.0.1:80\"",
                      "config: lisen: unknown key (expected one of listen, root, "
                      "follow_symlinks_outside_root, stages, cache, timeouts, limits, "
                      "retry_after, metrics, admin, controllers, access_log, log_level)");
  EXPECT_CONFIG_ERROR("stages: {parse: {threads: 1}}",
                      "stages.parse: unknown key (expected one of accept, read_parse, "
                      "cache_lookup, disk_io, send)");
  EXPECT_CONFIG_ERROR("stages: {send: {thread: 1}}",
                      "stages.send.thread: unknown key (expected one of threads, queue, group)");
  EXPECT_CONFIG_ERROR("cache: {polcy: lru}",
                      "cache.polcy: unknown key (expected one of max_bytes, max_file_bytes, "
                      "policy, revalidate)");
  EXPECT_CONFIG_ERROR(
      "timeouts: {idle: 1s}",
      "timeouts.idle: unknown key (expected one of header, keepalive, send, drain)");
  EXPECT_CONFIG_ERROR("limits: {max_body: 1}",
                      "limits.max_body: unknown key (expected one of max_connections, "
                      "max_request_line, max_header_bytes, max_headers, send_lowat)");
  // A key with a control character is echoed escaped, so the message stays on one line
  // (found by tests/fuzz/config_fuzz).
  EXPECT_CONFIG_ERROR("\"a\\rb\": 1", "config: \"a\\x0db\": unknown key (expected one of listen");
  EXPECT_CONFIG_ERROR("log_level: info\nlog_level: debug", "config: log_level: appears twice");
}

TEST_F(config_file_test, fused_groups_of_adjacent_stages) {
  config c = load("stages: {read_parse: {group: front}, cache_lookup: {group: front}}");
  EXPECT_EQ(c.stages[2], c.stages[1]);

  // Three in a row; the later ones inherit the first one's pool and queue.
  c = load(R"(
stages:
  read_parse: { group: mid, threads: 4, queue: 100 }
  cache_lookup: { group: mid }
  disk_io: { group: mid }
)");
  for (std::size_t i : {2u, 3u}) EXPECT_EQ(c.stages[i], (stage_config{"mid", 4, 100}));

  // The whole pipeline in one group, and a later stage restating the same values.
  c = load(R"(
stages:
  accept: { group: all }
  read_parse: { group: all }
  cache_lookup: { group: all, threads: 1, queue: 1024 }
  disk_io: { group: all }
  send: { group: all }
)");
  for (const auto& s : c.stages) EXPECT_EQ(s, (stage_config{"all", 1, 1024}));

  // Naming a neighbour's own name joins that neighbour.
  c = load("stages: {accept: {group: read_parse}}");
  EXPECT_EQ(c.stages[0].threads, 1u);
  EXPECT_EQ(c.stages[0].queue_capacity, 1024u);  // accept comes first, so it leads
  EXPECT_EQ(c.stages[1].queue_capacity, 1024u);
}

TEST_F(config_file_test, fused_group_errors) {
  EXPECT_CONFIG_ERROR(
      "stages: {read_parse: {group: io}, disk_io: {group: io}}",
      "stages.disk_io.group: \"io\" also holds read_parse, which is not adjacent; a group may only "
      "fuse neighbouring stages of accept, read_parse, cache_lookup, disk_io, send");
  EXPECT_CONFIG_ERROR("stages: {send: {group: accept}}",
                      "stages.send.group: \"accept\" also holds accept, which is not adjacent");
  EXPECT_CONFIG_ERROR(
      "stages: {cache_lookup: {group: io, threads: 2}, disk_io: {group: io, threads: 4}}",
      "stages.disk_io.threads: 4 differs from 2 in stages.cache_lookup.threads (the first stage "
      "of group \"io\" sets its threads and queue)");
  EXPECT_CONFIG_ERROR("stages: {cache_lookup: {group: io}, disk_io: {group: io, queue: 64}}",
                      "stages.disk_io.queue: 64 differs from 4096 in stages.cache_lookup.queue");
}

TEST_F(config_file_test, syntax_errors_give_file_and_line) {
  const std::string path = write("listen: \"127.0.0.1:80\"\ncache: {policy: lru\n");
  try {
    load_config_file(path, config{});
    FAIL() << "no error";
  } catch (const config_error& e) {
    const std::string m = e.what();
    EXPECT_EQ(m.rfind("config: " + path + ":", 0), 0u) << m;
    EXPECT_NE(m.find("YAML syntax error"), std::string::npos) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  }
  EXPECT_CONFIG_ERROR("a: b: c", "weir.yaml:1:");
}

TEST_F(config_file_test, unreadable_files_give_path_and_reason) {
  const std::string missing = (dir_ / "missing.yaml").string();
  try {
    load_config_file(missing, config{});
    FAIL() << "no error";
  } catch (const config_error& e) {
    EXPECT_EQ(std::string(e.what()), "config: " + missing + ": No such file or directory");
  }
  try {
    load_config_file(dir_.string(), config{});
    FAIL() << "no error";
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find(dir_.string()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("Is a directory"), std::string::npos) << e.what();
  }
}

TEST_F(config_file_test, nothing_is_half_applied) {
  // The caller's config, updated the way main.cpp does it: cfg = load_config_file(path, cfg).
  config cfg;
  cfg.root = "/srv/www";
  cfg.stages[3].threads = 5;
  // What it must still hold afterwards, built separately: a copy of cfg would equal it whatever
  // happened to it.
  config expected;
  expected.root = "/srv/www";
  expected.stages[3].threads = 5;
  // The good keys alone do change it, so an unchanged cfg below means they were not applied.
  const config good_keys = load("listen: \"0.0.0.0:1\"\nroot: /x\n", cfg);
  EXPECT_EQ(good_keys.listen, "0.0.0.0:1");
  EXPECT_EQ(good_keys.root, "/x");

  // Good keys before and after the bad one; none of them may reach the caller.
  EXPECT_THROW(cfg = load("listen: \"0.0.0.0:1\"\ncache: {policy: mru}\nroot: /x\n", cfg),
               config_error);
  EXPECT_EQ(cfg, expected);
  EXPECT_EQ(cfg.listen, "127.0.0.1:8080");
  // A file that is fine key by key but fails a cross-field rule is refused whole, too.
  EXPECT_THROW(cfg = load("cache: {max_bytes: 1MiB}\nlimits: {max_headers: 5}\n", cfg),
               config_error);
  EXPECT_EQ(cfg, expected);
  EXPECT_EQ(cfg.cache_max_bytes, 64u << 20);
}

TEST(config_validate, checks_configs_built_in_code) {
  config c;
  c.stages.resize(4);
  EXPECT_NE(validate_error(c).find("config: stages: expected 5 stages"), std::string::npos);

  c = config{};
  c.log_level = "verbose";
  EXPECT_NE(validate_error(c).find("log_level: \"verbose\""), std::string::npos);

  c = config{};
  c.listen = "localhost:80";
  EXPECT_NE(validate_error(c).find("listen: \"localhost:80\" is not ADDR:PORT"), std::string::npos);

  // validate() compares values: a later group member that differs is refused even when set in
  // code (only the file loader knows what was left unset and fills it in).
  c = config{};
  c.stages[2].group = c.stages[3].group = "io";
  EXPECT_NE(validate_error(c).find("stages.disk_io.threads: 2 differs from 1"), std::string::npos);

  c = config{};
  c.max_request_line = 20000;  // now above max_header_bytes
  EXPECT_NE(validate_error(c).find("limits.max_header_bytes: 16KiB is out of range"),
            std::string::npos);

  c = config{};
  c.root = "weird\nname";  // root is checked by whoever opens it, not here
  EXPECT_EQ(validate_error(c), "");
}

TEST_F(config_file_test, echoed_values_stay_on_one_line) {
  const std::string m = error_of("log_level: \"a\\nb\"");
  EXPECT_NE(m.find("log_level: \"a\\x0ab\""), std::string::npos) << m;
}

// --- controllers and admin ---

// The whole message, for rules whose wording operators (and the admin API's clients) see.
#define EXPECT_CONFIG_ERROR_IS(yaml, expected) EXPECT_EQ(error_of(yaml), "config: " expected)

TEST(config_parse, durations_in_microseconds) {
  EXPECT_EQ(parse_duration_us("500us"), 500us);
  EXPECT_EQ(parse_duration_us("0us"), 0us);
  EXPECT_EQ(parse_duration_us("10 us"), 10us);
  EXPECT_EQ(parse_duration_us("2ms"), 2ms);
  EXPECT_EQ(parse_duration_us("1500"), 1500ms);  // a plain number is milliseconds everywhere
  EXPECT_EQ(parse_duration_us("1s"), 1s);
  EXPECT_EQ(parse_duration_us("2m"), 2min);
  for (const char* bad : {"", "us", "1.5us", "-1us", "10US", "10 usec", "99999999999999999999us",
                          "9223372036854775807ms", "9223372036854775807s"})
    EXPECT_FALSE(parse_duration_us(bad)) << bad;
  EXPECT_EQ(format_duration_us(500us), "500us");
  EXPECT_EQ(format_duration_us(1500us), "1500us");
  EXPECT_EQ(format_duration_us(1000us), "1ms");
  EXPECT_EQ(format_duration_us(2s), "2s");
  EXPECT_EQ(format_duration_us(0us), "0ms");
  for (std::chrono::microseconds v : {0us, 1us, 999us, 1000us, 1001us, 60000000us})
    EXPECT_EQ(parse_duration_us(format_duration_us(v)), v);
}

TEST(config_defaults, controllers_and_admin) {
  const config c;
  EXPECT_EQ(c.pool, controllers::pool_settings{});
  EXPECT_EQ(c.grouping, controllers::grouping_settings{});
  EXPECT_TRUE(c.admin_enabled);
  EXPECT_EQ(c.admin_listen, "127.0.0.1:9465");
  EXPECT_EQ(c.admin_token_file, "");
}

TEST_F(config_file_test, controller_and_admin_keys_are_read) {
  const config c = load(R"(
admin: { enabled: true, listen: "0.0.0.0:19465", token_file: /etc/weir/admin.token }
controllers:
  pool:
    enabled: false
    dry_run: true
    period: 50ms
    grow_wait: 500us
    busy: 0.9
    idle: 0.25
    grow_after: 5
    shrink_after: 3s
    shrink_after_blocking: 1m
    min_threads: 2
    max_cpu_threads: 12
    max_blocking_threads: 128
  grouping:
    enabled: false
    dry_run: true
    period: 1s
    fuse_below: 0.4
    fuse_wakeups_per_task: 0.125
    split_above: 0.95
    split_wait: 3ms
    split_service_ratio: 20.5
    fuse_after: 6
    split_after: 3
    cooldown: 5s
    fuse_blocking: true
)");
  EXPECT_TRUE(c.admin_enabled);
  EXPECT_EQ(c.admin_listen, "0.0.0.0:19465");
  EXPECT_EQ(c.admin_token_file, "/etc/weir/admin.token");
  const controllers::pool_settings p = c.pool;
  EXPECT_FALSE(p.enabled);
  EXPECT_TRUE(p.dry_run);
  EXPECT_EQ(p.period, 50ms);
  EXPECT_EQ(p.grow_wait, 500us);
  EXPECT_EQ(p.busy, 0.9);
  EXPECT_EQ(p.idle, 0.25);
  EXPECT_EQ(p.grow_after, 5);
  EXPECT_EQ(p.shrink_after, 3s);
  EXPECT_EQ(p.shrink_after_blocking, 1min);
  EXPECT_EQ(p.min_threads, 2u);
  EXPECT_EQ(p.max_cpu_threads, 12u);
  EXPECT_EQ(p.max_blocking_threads, 128u);
  const controllers::grouping_settings g = c.grouping;
  EXPECT_FALSE(g.enabled);
  EXPECT_TRUE(g.dry_run);
  EXPECT_EQ(g.period, 1s);
  EXPECT_EQ(g.fuse_below, 0.4);
  EXPECT_EQ(g.fuse_wakeups_per_task, 0.125);
  EXPECT_EQ(g.split_above, 0.95);
  EXPECT_EQ(g.split_wait, 3ms);
  EXPECT_EQ(g.split_service_ratio, 20.5);
  EXPECT_EQ(g.fuse_after, 6);
  EXPECT_EQ(g.split_after, 3);
  EXPECT_EQ(g.cooldown, 5s);
  EXPECT_TRUE(g.fuse_blocking);

  // Numbers in the spellings JSON and YAML allow; a plain duration is milliseconds.
  const config d = load(
      "controllers: {pool: {busy: 1, idle: .5, grow_wait: 2}, grouping: {fuse_wakeups_per_task: "
      "1e-3, split_wait: 1500us}}");
  EXPECT_EQ(d.pool.busy, 1.0);
  EXPECT_EQ(d.pool.idle, 0.5);
  EXPECT_EQ(d.pool.grow_wait, 2ms);
  EXPECT_EQ(d.grouping.fuse_wakeups_per_task, 0.001);
  EXPECT_EQ(d.grouping.split_wait, 1500us);
}

TEST_F(config_file_test, controller_values_out_of_range) {
  EXPECT_CONFIG_ERROR_IS("controllers: {pool: {enabled: maybe}}",
                         "controllers.pool.enabled: \"maybe\" is not a boolean (true, false)");
  EXPECT_CONFIG_ERROR_IS("controllers: {pool: {dry_run: 2}}",
                         "controllers.pool.dry_run: \"2\" is not a boolean (true, false)");
  EXPECT_CONFIG_ERROR_IS("controllers: {pool: {period: 0}}",
                         "controllers.pool.period: 0ms is out of range 1ms..10s");
  EXPECT_CONFIG_ERROR_IS("controllers: {pool: {period: 11s}}",
                         "controllers.pool.period: 11s is out of range 1ms..10s");
  EXPECT_CONFIG_ERROR_IS("controllers: {pool: {period: 500us}}",
                         "controllers.pool.period: \"500us\" is not a duration (e.g. 250ms, 10s, "
                         "2m)");
  EXPECT_CONFIG_ERROR_IS("controllers: {pool: {grow_wait: 5us}}",
                         "controllers.pool.grow_wait: 5us is out of range 10us..1s");
  EXPECT_CONFIG_ERROR_IS("controllers: {pool: {grow_wait: 1001ms}}",
                         "controllers.pool.grow_wait: 1001ms is out of range 10us..1s");
  EXPECT_CONFIG_ERROR_IS(
      "controllers: {pool: {grow_wait: fast}}",
      "controllers.pool.grow_wait: \"fast\" is not a duration (e.g. 500us, 2ms, 1s)");
  EXPECT_CONFIG_ERROR_IS("controllers: {pool: {busy: x}}",
                         "controllers.pool.busy: \"x\" is not a number (0.05..1)");
  EXPECT_CONFIG_ERROR_IS("controllers: {pool: {busy: 85%}}",
                         "controllers.pool.busy: \"85%\" is not a number (0.05..1)");
  EXPECT_CONFIG_ERROR_IS("controllers: {pool: {busy: .nan}}",
                         "controllers.pool.busy: \".nan\" is not a number (0.05..1)");
  EXPECT_CONFIG_ERROR_IS("controllers: {pool: {busy: inf}}",
                         "controllers.pool.busy: \"inf\" is not a number (0.05..1)");
  EXPECT_CONFIG_ERROR_IS("controllers: {pool: {busy: 1.5}}",
                         "controllers.pool.busy: 1.5 is out of range 0.05..1");
  EXPECT_CONFIG_ERROR_IS("controllers: {pool: {busy: 0.01}}",
                         "controllers.pool.busy: 0.01 is out of range 0.05..1");
  EXPECT_CONFIG_ERROR_IS("controllers: {pool: {busy: 1e999}}",
                         "controllers.pool.busy: 1e999 is out of range 0.05..1");
  EXPECT_CONFIG_ERROR_IS("controllers: {pool: {idle: -0.1}}",
                         "controllers.pool.idle: -0.1 is out of range 0..1");
  EXPECT_CONFIG_ERROR_IS("controllers: {pool: {grow_after: 0}}",
                         "controllers.pool.grow_after: 0 is out of range 1..1000");
  EXPECT_CONFIG_ERROR_IS("controllers: {pool: {grow_after: 1001}}",
                         "controllers.pool.grow_after: 1001 is out of range 1..1000");
  EXPECT_CONFIG_ERROR_IS("controllers: {pool: {grow_after: 2.5}}",
                         "controllers.pool.grow_after: \"2.5\" is not a whole number (range "
                         "1..1000)");
  EXPECT_CONFIG_ERROR_IS("controllers: {pool: {shrink_after: 2h}}",
                         "controllers.pool.shrink_after: 2h is out of range 0ms..1h");
  EXPECT_CONFIG_ERROR_IS("controllers: {pool: {shrink_after_blocking: 61m}}",
                         "controllers.pool.shrink_after_blocking: 61m is out of range 0ms..1h");
  EXPECT_CONFIG_ERROR_IS("controllers: {pool: {min_threads: 0}}",
                         "controllers.pool.min_threads: 0 is out of range 1..256");
  EXPECT_CONFIG_ERROR_IS("controllers: {pool: {max_cpu_threads: 1025}}",
                         "controllers.pool.max_cpu_threads: 1025 is out of range 0..1024");
  EXPECT_CONFIG_ERROR_IS("controllers: {pool: {max_blocking_threads: 0}}",
                         "controllers.pool.max_blocking_threads: 0 is out of range 1..256");
  EXPECT_CONFIG_ERROR_IS("controllers: {pool: {max_blocking_threads: 257}}",
                         "controllers.pool.max_blocking_threads: 257 is out of range 1..256");
  EXPECT_CONFIG_ERROR_IS("controllers: {grouping: {enabled: sometimes}}",
                         "controllers.grouping.enabled: \"sometimes\" is not a boolean (true, "
                         "false)");
  EXPECT_CONFIG_ERROR_IS("controllers: {grouping: {period: 5ms}}",
                         "controllers.grouping.period: 5ms is out of range 10ms..1m");
  EXPECT_CONFIG_ERROR_IS("controllers: {grouping: {period: 61s}}",
                         "controllers.grouping.period: 61s is out of range 10ms..1m");
  EXPECT_CONFIG_ERROR_IS("controllers: {grouping: {fuse_below: 1.1}}",
                         "controllers.grouping.fuse_below: 1.1 is out of range 0..1");
  EXPECT_CONFIG_ERROR_IS("controllers: {grouping: {fuse_wakeups_per_task: 2}}",
                         "controllers.grouping.fuse_wakeups_per_task: 2 is out of range 0..1");
  EXPECT_CONFIG_ERROR_IS("controllers: {grouping: {fuse_wakeups_per_task: many}}",
                         "controllers.grouping.fuse_wakeups_per_task: \"many\" is not a number "
                         "(0..1)");
  EXPECT_CONFIG_ERROR_IS("controllers: {grouping: {split_above: 0}}",
                         "controllers.grouping.split_above: 0 is out of range 0.05..1");
  EXPECT_CONFIG_ERROR_IS("controllers: {grouping: {split_wait: 1us}}",
                         "controllers.grouping.split_wait: 1us is out of range 10us..1s");
  EXPECT_CONFIG_ERROR_IS("controllers: {grouping: {split_service_ratio: 1}}",
                         "controllers.grouping.split_service_ratio: 1 is out of range 2..1000");
  EXPECT_CONFIG_ERROR_IS("controllers: {grouping: {split_service_ratio: 1001}}",
                         "controllers.grouping.split_service_ratio: 1001 is out of range 2..1000");
  EXPECT_CONFIG_ERROR_IS("controllers: {grouping: {fuse_after: 0}}",
                         "controllers.grouping.fuse_after: 0 is out of range 1..1000");
  EXPECT_CONFIG_ERROR_IS("controllers: {grouping: {split_after: -1}}",
                         "controllers.grouping.split_after: -1 is out of range 1..1000");
  EXPECT_CONFIG_ERROR_IS("controllers: {grouping: {cooldown: 2h}}",
                         "controllers.grouping.cooldown: 2h is out of range 0ms..1h");
  EXPECT_CONFIG_ERROR_IS("controllers: {grouping: {fuse_blocking: maybe}}",
                         "controllers.grouping.fuse_blocking: \"maybe\" is not a boolean (true, "
                         "false)");
}

TEST_F(config_file_test, controller_boundary_values_are_accepted) {
  const config lo = load(R"(
stages: { disk_io: { threads: 1 } }
controllers:
  pool: { period: 1ms, grow_wait: 10us, busy: 0.05, idle: 0, grow_after: 1, shrink_after: 0,
          shrink_after_blocking: 0, min_threads: 1, max_cpu_threads: 0, max_blocking_threads: 1 }
  grouping: { period: 10ms, fuse_below: 0, fuse_wakeups_per_task: 0, split_above: 0.05,
              split_wait: 10us, split_service_ratio: 2, fuse_after: 1, split_after: 1,
              cooldown: 0 }
)");
  EXPECT_EQ(lo.pool.grow_wait, 10us);
  EXPECT_EQ(lo.pool.max_blocking_threads, 1u);
  const config hi = load(R"(
controllers:
  pool: { period: 10s, grow_wait: 1s, busy: 1, idle: 0.999, grow_after: 1000, shrink_after: 1h,
          shrink_after_blocking: 60m, min_threads: 256, max_cpu_threads: 1024,
          max_blocking_threads: 256 }
  grouping: { period: 1m, fuse_below: 0.999, fuse_wakeups_per_task: 1, split_above: 1,
              split_wait: 1000ms, split_service_ratio: 1000, fuse_after: 1000, split_after: 1000,
              cooldown: 1h }
)");
  EXPECT_EQ(hi.pool.period, 10s);
  EXPECT_EQ(hi.grouping.period, 1min);
  EXPECT_EQ(hi.pool.min_threads, 256u);
}

TEST_F(config_file_test, controller_cross_field_rules) {
  EXPECT_CONFIG_ERROR_IS("controllers: {pool: {idle: 0.9}}",
                         "controllers.pool.idle: 0.9 must be below controllers.pool.busy (0.85)");
  EXPECT_CONFIG_ERROR_IS("controllers: {pool: {idle: 0.85}}",
                         "controllers.pool.idle: 0.85 must be below controllers.pool.busy (0.85)");
  EXPECT_CONFIG_ERROR_IS("controllers: {pool: {busy: 0.3}}",
                         "controllers.pool.idle: 0.35 must be below controllers.pool.busy (0.3)");
  EXPECT_CONFIG_ERROR_IS("controllers: {pool: {min_threads: 8, max_blocking_threads: 4}}",
                         "controllers.pool.min_threads: 8 must be at most "
                         "controllers.pool.max_blocking_threads (4)");
  EXPECT_CONFIG_ERROR_IS("controllers: {pool: {max_blocking_threads: 1}}",
                         "controllers.pool.max_blocking_threads: 1 must be at least "
                         "stages.disk_io.threads (2)");
  EXPECT_CONFIG_ERROR_IS(
      "stages: {disk_io: {threads: 100}}",
      "controllers.pool.max_blocking_threads: 64 must be at least stages.disk_io.threads (100)");
  // A pool controller that is off resizes nothing, so the configured size stands.
  EXPECT_EQ(load("stages: {disk_io: {threads: 100}}\ncontrollers: {pool: {enabled: false}}")
                .stages[3]
                .threads,
            100u);
  EXPECT_CONFIG_ERROR_IS("controllers: {grouping: {fuse_below: 0.95}}",
                         "controllers.grouping.fuse_below: 0.95 must be below "
                         "controllers.grouping.split_above (0.9)");
  EXPECT_CONFIG_ERROR_IS("controllers: {grouping: {split_above: 0.5}}",
                         "controllers.grouping.fuse_below: 0.5 must be below "
                         "controllers.grouping.split_above (0.5)");
}

TEST_F(config_file_test, controller_and_admin_keys_are_checked) {
  EXPECT_CONFIG_ERROR_IS(
      "controllers: {pol: {}}",
      "controllers.pol: unknown key (expected one of pool, grouping, admission)");
  EXPECT_CONFIG_ERROR_IS(
      "controllers: {pool: {grow: 1}}",
      "controllers.pool.grow: unknown key (expected one of enabled, dry_run, period, grow_wait, "
      "busy, idle, grow_after, shrink_after, shrink_after_blocking, min_threads, max_cpu_threads, "
      "max_blocking_threads)");
  EXPECT_CONFIG_ERROR_IS(
      "controllers: {grouping: {split: 1}}",
      "controllers.grouping.split: unknown key (expected one of enabled, dry_run, period, "
      "fuse_below, fuse_wakeups_per_task, split_above, split_wait, split_service_ratio, "
      "split_service_min, fuse_after, split_after, cooldown, fuse_blocking)");
  EXPECT_CONFIG_ERROR_IS("controllers: {pool: 5}",
                         "controllers.pool: expected a mapping with keys enabled, dry_run, period, "
                         "grow_wait, busy, idle, grow_after, shrink_after, shrink_after_blocking, "
                         "min_threads, max_cpu_threads, max_blocking_threads");
  EXPECT_CONFIG_ERROR_IS("admin: {port: 1}",
                         "admin.port: unknown key (expected one of enabled, listen, token_file)");
  // Left empty, a section keeps every default.
  EXPECT_EQ(load("controllers:\n  pool:\n  grouping:\nadmin:\n"), config{});
}

TEST_F(config_file_test, admin_listen) {
  EXPECT_CONFIG_ERROR_IS("admin: {listen: \"[::1]:9465\"}",
                         "admin.listen: \"[::1]:9465\" is not IPv4ADDR:PORT (e.g. 127.0.0.1:9465; "
                         "IPv6 is not supported)");
  EXPECT_CONFIG_ERROR_IS("admin: {listen: 9465}",
                         "admin.listen: \"9465\" is not IPv4ADDR:PORT (e.g. 127.0.0.1:9465; IPv6 "
                         "is not supported)");
  EXPECT_CONFIG_ERROR_IS("admin: {enabled: false, listen: nope}",
                         "admin.listen: \"nope\" is not IPv4ADDR:PORT (e.g. 127.0.0.1:9465; IPv6 "
                         "is not supported)");
  EXPECT_CONFIG_ERROR_IS("admin: {enabled: maybe}",
                         "admin.enabled: \"maybe\" is not a boolean (true, false)");
  EXPECT_CONFIG_ERROR_IS("listen: \"127.0.0.1:9000\"\nadmin: {listen: \"127.0.0.1:9000\"}",
                         "admin.listen: \"127.0.0.1:9000\" is the public listen address; the admin "
                         "API needs its own port");
  EXPECT_CONFIG_ERROR_IS("admin: {listen: \"127.0.0.1:9464\"}",
                         "admin.listen: \"127.0.0.1:9464\" is metrics.listen; the admin API needs "
                         "its own port");
  EXPECT_CONFIG_ERROR_IS("listen: \"0.0.0.0:9465\"",
                         "admin.listen: \"127.0.0.1:9465\" shares port 9465 with listen "
                         "(\"0.0.0.0:9465\"); the admin API needs its own port");
  EXPECT_CONFIG_ERROR_IS("listen: \"[::]:9465\"",
                         "admin.listen: \"127.0.0.1:9465\" shares port 9465 with listen "
                         "(\"[::]:9465\"); the admin API needs its own port");
  EXPECT_CONFIG_ERROR_IS(
      "metrics: {listen: \"0.0.0.0:9465\"}\n"
      "admin: {listen: \"127.0.0.1:9465\", token_file: /t}",
      "admin.listen: \"127.0.0.1:9465\" shares port 9465 with metrics.listen "
      "(\"0.0.0.0:9465\"); the admin API needs its own port");
  // No clash with a listener that is off, on port 0 (each gets a free port), or on another
  // address.
  EXPECT_NO_THROW(load("metrics: {enabled: false}\nadmin: {listen: \"127.0.0.1:9464\"}"));
  EXPECT_NO_THROW(load("admin: {enabled: false, listen: \"127.0.0.1:9464\"}"));
  EXPECT_NO_THROW(load("listen: \"127.0.0.1:0\"\nadmin: {listen: \"127.0.0.1:0\"}"));
  EXPECT_NO_THROW(load("listen: \"127.0.0.2:9465\""));
  EXPECT_NO_THROW(load("listen: \"[::1]:9465\""));
}

TEST_F(config_file_test, admin_off_loopback_needs_a_token) {
  EXPECT_CONFIG_ERROR_IS("admin: {listen: \"0.0.0.0:9465\"}",
                         "admin.listen: \"0.0.0.0:9465\" is not a loopback address; set "
                         "admin.token_file (a bearer token) to expose the admin API");
  EXPECT_CONFIG_ERROR_IS("admin: {listen: \"10.0.0.5:9465\", token_file: \"\"}",
                         "admin.listen: \"10.0.0.5:9465\" is not a loopback address; set "
                         "admin.token_file (a bearer token) to expose the admin API");
  EXPECT_EQ(load("admin: {listen: \"0.0.0.0:9465\", token_file: /etc/weir/token}").admin_listen,
            "0.0.0.0:9465");
  EXPECT_EQ(load("admin: {listen: \"127.1.2.3:9465\"}").admin_listen, "127.1.2.3:9465");
  EXPECT_FALSE(load("admin: {enabled: false, listen: \"0.0.0.0:9465\"}").admin_enabled);
}

TEST(config_validate, checks_controller_settings_built_in_code) {
  config c;
  c.pool.grow_after = -1;
  EXPECT_EQ(validate_error(c), "config: controllers.pool.grow_after: -1 is out of range 1..1000");
  c = config{};
  c.pool.busy = std::nan("");
  EXPECT_EQ(validate_error(c), "config: controllers.pool.busy: nan is out of range 0.05..1");
  c = config{};
  c.grouping.split_wait = 0us;
  EXPECT_EQ(validate_error(c),
            "config: controllers.grouping.split_wait: 0ms is out of range 10us..1s");
  c = config{};
  c.admin_listen = "0.0.0.0:1";
  EXPECT_NE(validate_error(c).find("is not a loopback address"), std::string::npos);
}

// Settings that differ from the defaults in every field, with doubles that print long.
config unusual_controllers() {
  config c;
  c.pool = {.enabled = false,
            .dry_run = true,
            .period = 1500ms,
            .grow_wait = 1500us,
            .busy = 2.0 / 3,
            .idle = 0.1 + 0.2,  // 0.30000000000000004
            .grow_after = 9,
            .shrink_after = 61s,
            .shrink_after_blocking = 0ms,
            .min_threads = 3,
            .max_cpu_threads = 5,
            .max_blocking_threads = 7};
  c.grouping = {.enabled = false,
                .dry_run = true,
                .period = 10ms,
                .fuse_below = 0.2,
                .fuse_wakeups_per_task = 1e-5,
                .split_above = 2.0 / 3,
                .split_wait = 11us,
                .split_service_ratio = 123.456,
                .fuse_after = 1,
                .split_after = 1000,
                .cooldown = 1h,
                .fuse_blocking = true};
  c.admission = {.enabled = false,
                 .dry_run = true,
                 .period = 250ms,
                 .target = 35ms,
                 .percentile = 0.1 + 0.8,  // 0.9000000000000001
                 .min_limit = 2,
                 .max_limit = 123,
                 .decrease_min = 0.25,
                 .decrease_max = 2.0 / 3,
                 .increase = 1.125,
                 .min_samples = 77};
  return c;
}

std::string apply_error(const config& base, std::string_view controller, std::string_view text,
                        bool replace) {
  try {
    apply_controller_settings(base, controller, text, replace);
  } catch (const config_error& e) {
    return e.what();
  }
  return "";
}

TEST(controller_settings, json_has_every_key_in_order) {
  const config c;
  EXPECT_EQ(controller_settings_json(c, "pool"),
            R"({"enabled": true, "dry_run": false, "period": "20ms", "grow_wait": "1ms", )"
            R"("busy": 0.85, "idle": 0.35, "grow_after": 3, "shrink_after": "2s", )"
            R"("shrink_after_blocking": "10s", "min_threads": 1, "max_cpu_threads": 0, )"
            R"("max_blocking_threads": 64})");
  EXPECT_EQ(controller_settings_json(c, "grouping"),
            R"({"enabled": true, "dry_run": false, "period": "250ms", "fuse_below": 0.5, )"
            R"("fuse_wakeups_per_task": 0.05, "split_above": 0.9, "split_wait": "2ms", )"
            R"("split_service_ratio": 10, "split_service_min": "50us", "fuse_after": 8, )"
            R"("split_after": 2, "cooldown": "2s", )"
            R"("fuse_blocking": false})");
  const std::string odd = controller_settings_json(unusual_controllers(), "pool");
  EXPECT_NE(odd.find(R"("grow_wait": "1500us")"), std::string::npos) << odd;
  EXPECT_NE(odd.find(R"("idle": 0.30000000000000004)"), std::string::npos) << odd;
}

TEST(controller_settings, json_round_trips_through_put) {
  const config c = unusual_controllers();
  for (const char* name : controller_names) {
    const std::string json = controller_settings_json(c, name);
    // Over the defaults: the other controllers' settings come from c, this one's from the JSON.
    config base = c;
    if (std::string_view(name) == "pool") {
      base.pool = {};
    } else if (std::string_view(name) == "grouping") {
      base.grouping = {};
    } else {
      base.admission = {};
    }
    EXPECT_EQ(apply_controller_settings(base, name, json, true), c) << json;
    // And over c itself, as a PATCH and as a PUT: nothing changes.
    EXPECT_EQ(apply_controller_settings(c, name, json, false), c) << json;
    EXPECT_EQ(apply_controller_settings(c, name, json, true), c) << json;
  }
  const config d;
  for (const char* name : controller_names)
    EXPECT_EQ(apply_controller_settings(d, name, controller_settings_json(d, name), true), d);
}

TEST(controller_settings, patch_keeps_other_fields_and_put_starts_from_defaults) {
  config base = unusual_controllers();
  base.root = "/srv/www";

  config patched = apply_controller_settings(base, "pool", R"({"busy": 0.9})", false);
  config expected = base;
  expected.pool.busy = 0.9;
  EXPECT_EQ(patched, expected);

  config put = apply_controller_settings(base, "pool", R"({"busy": 0.9})", true);
  expected = base;
  expected.pool = {};
  expected.pool.busy = 0.9;
  EXPECT_EQ(put, expected);

  // An empty mapping: PATCH changes nothing, PUT restores the defaults. A null value keeps the
  // starting value.
  EXPECT_EQ(apply_controller_settings(base, "grouping", "{}", false), base);
  expected = base;
  expected.grouping = {};
  EXPECT_EQ(apply_controller_settings(base, "grouping", "{}", true), expected);
  EXPECT_EQ(apply_controller_settings(base, "grouping", R"({"cooldown": null})", false), base);
  EXPECT_EQ(apply_controller_settings(base, "grouping", R"({"cooldown": null})", true), expected);
}

TEST(controller_settings, json_and_yaml_bodies) {
  const config base;
  const config from_json = apply_controller_settings(
      base, "pool", R"({"dry_run": true, "grow_wait": "500us", "idle": 0.2})", false);
  const config from_compact_json = apply_controller_settings(
      base, "pool", R"({"dry_run":true,"grow_wait":"500us","idle":0.2})", false);
  const config from_flow_yaml =
      apply_controller_settings(base, "pool", "{dry_run: yes, grow_wait: 500us, idle: .2}", false);
  const config from_block_yaml = apply_controller_settings(
      base, "pool", "dry_run: true\ngrow_wait: 500 us  # half a millisecond\nidle: 0.2\n", false);
  EXPECT_TRUE(from_json.pool.dry_run);
  EXPECT_EQ(from_json.pool.grow_wait, 500us);
  EXPECT_EQ(from_json.pool.idle, 0.2);
  EXPECT_EQ(from_compact_json, from_json);
  EXPECT_EQ(from_flow_yaml, from_json);
  EXPECT_EQ(from_block_yaml, from_json);
  // JSON numbers for whole-number fields, strings for durations.
  const config g = apply_controller_settings(
      base, "grouping", R"({"fuse_after": 8, "cooldown": "1m", "split_service_ratio": 4})", false);
  EXPECT_EQ(g.grouping.fuse_after, 8);
  EXPECT_EQ(g.grouping.cooldown, 1min);
  EXPECT_EQ(g.grouping.split_service_ratio, 4.0);
}

TEST(controller_settings, a_bad_change_throws_and_leaves_the_base_alone) {
  config base = unusual_controllers();
  base.pool.busy = 0.85;
  base.pool.idle = 0.35;
  const config before = base;  // a const copy, compared with base afterwards
  auto expect_error = [&](std::string_view controller, std::string_view text, bool replace,
                          const std::string& expected) {
    EXPECT_EQ(apply_error(base, controller, text, replace), "config: " + expected) << text;
    EXPECT_EQ(base, before);
  };
  // Good keys around the bad one are not applied either.
  expect_error("pool", R"({"dry_run": false, "busy": "lots", "idle": 0.1})", false,
               "controllers.pool.busy: \"lots\" is not a number (0.05..1)");
  // Cross-field rules hold against the base's other fields...
  expect_error("pool", R"({"idle": 0.9})", false,
               "controllers.pool.idle: 0.9 must be below controllers.pool.busy (0.85)");
  // ...and against the defaults for a PUT.
  expect_error("grouping", R"({"fuse_below": 0.95})", true,
               "controllers.grouping.fuse_below: 0.95 must be below "
               "controllers.grouping.split_above (0.9)");
  expect_error("pool", R"({"busy": 0.9, "nope": 1})", false,
               "controllers.pool.nope: unknown key (expected one of enabled, dry_run, period, "
               "grow_wait, busy, idle, grow_after, shrink_after, shrink_after_blocking, "
               "min_threads, max_cpu_threads, max_blocking_threads)");
  expect_error("pool", R"({"busy": 0.9, "busy": 0.8})", false,
               "controllers.pool.busy: appears twice");
  expect_error("pool", R"({"period": {"ms": 5}})", false,
               "controllers.pool.period: expected a single value, got a mapping");
  expect_error("grouping", R"({"split_wait": 5000})", false,  // a plain number: milliseconds
               "controllers.grouping.split_wait: 5s is out of range 10us..1s");
}

TEST(controller_settings, bodies_that_are_not_a_mapping) {
  const config base;
  const std::string pool_keys =
      "expected a mapping with keys enabled, dry_run, period, grow_wait, busy, idle, grow_after, "
      "shrink_after, shrink_after_blocking, min_threads, max_cpu_threads, max_blocking_threads";
  for (const char* body : {"", "   \n", "null", "5", "\"busy\"", "[1, 2]", "# only a comment"}) {
    EXPECT_EQ(apply_error(base, "pool", body, false), "config: controllers.pool: " + pool_keys)
        << body;
    EXPECT_EQ(apply_error(base, "pool", body, true), "config: controllers.pool: " + pool_keys)
        << body;
  }
  EXPECT_EQ(apply_error(base, "grouping", "[]", false),
            "config: controllers.grouping: expected a mapping with keys enabled, dry_run, period, "
            "fuse_below, fuse_wakeups_per_task, split_above, split_wait, split_service_ratio, "
            "split_service_min, fuse_after, split_after, cooldown, fuse_blocking");
  const std::string syntax = apply_error(base, "pool", R"({"busy": 0.9)", false);
  EXPECT_EQ(syntax.rfind("config: controllers.pool: syntax error at line 1, column ", 0), 0u)
      << syntax;
  EXPECT_NE(syntax.find("(expected a JSON or YAML mapping)"), std::string::npos) << syntax;
  EXPECT_EQ(syntax.find('\n'), std::string::npos) << syntax;
}

TEST(controller_settings, unknown_controllers) {
  const config base;
  EXPECT_EQ(apply_error(base, "fuse", "{}", false),
            "config: controllers: \"fuse\" is not one of pool, grouping, admission");
  EXPECT_EQ(apply_error(base, "", "{}", true),
            "config: controllers: \"\" is not one of pool, grouping, admission");
  // A name from a URL path is echoed on one line.
  EXPECT_EQ(apply_error(base, "po\nol", "{}", true),
            "config: controllers: \"po\\x0aol\" is not one of pool, grouping, admission");
  EXPECT_THROW(controller_settings_json(base, "Pool"), config_error);
}

}  // namespace
}  // namespace weir
