#include "runtime/config.hpp"

#include <gtest/gtest.h>

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
                      "retry_after, metrics, access_log, log_level)");
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

}  // namespace
}  // namespace weir
