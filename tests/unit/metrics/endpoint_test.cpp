#include "metrics/endpoint.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

namespace weir::metrics {
namespace {

struct http_response {
  int status = 0;
  std::string head;  // status line and headers
  std::string body;
};

/// One blocking GET with "Connection: close", read to EOF. `host` is an IPv4 or IPv6 literal.
http_response http_get(const std::string& host, std::uint16_t port, std::string_view path) {
  sockaddr_storage addr{};
  socklen_t len = 0;
  if (auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
      ::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    len = sizeof(sockaddr_in);
  } else {
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
    if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) != 1) throw std::runtime_error(host);
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    len = sizeof(sockaddr_in6);
  }
  const int fd = ::socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  std::unique_ptr<int, void (*)(int*)> closer(new int(fd), [](int* p) {
    ::close(*p);
    delete p;
  });
  timeval timeout{.tv_sec = 10, .tv_usec = 0};  // a broken server fails the test, not hangs it
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    throw std::runtime_error(std::string("connect: ") + std::strerror(errno));
  }
  const std::string request =
      "GET " + std::string(path) + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n";
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    throw std::runtime_error(std::string("send: ") + std::strerror(errno));
  }
  std::string raw;
  char buf[16384];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0) throw std::runtime_error(std::string("recv: ") + std::strerror(errno));
    if (n == 0) break;
    raw.append(buf, static_cast<std::size_t>(n));
  }
  http_response r;
  const auto end = raw.find("\r\n\r\n");
  if (raw.rfind("HTTP/1.", 0) != 0 || end == std::string::npos) {
    throw std::runtime_error("not an HTTP response: " + raw.substr(0, 200));
  }
  r.status = std::stoi(raw.substr(9, 3));
  r.head = raw.substr(0, end + 2);
  r.body = raw.substr(end + 4);
  return r;
}

bool has_line(const std::string& text, const std::string& line) {
  return ("\n" + text).find("\n" + line + "\n") != std::string::npos;
}

/// The header's value, or "" (names compared as written by civetweb and prometheus-cpp).
std::string header(const http_response& r, const std::string& name) {
  const auto at = r.head.find("\r\n" + name + ": ");
  if (at == std::string::npos) return "";
  const auto begin = at + name.size() + 4;
  return r.head.substr(begin, r.head.find("\r\n", begin) - begin);
}

// One endpoint for the suite: stopping one takes civetweb up to 2 s.
class EndpointTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server = std::make_unique<endpoint>(
        "127.0.0.1:0",
        [] {
          server_snapshot s;
          s.sent_bytes = sent_bytes.load();
          s.stages.push_back({.name = "send", .group = "net", .processed = 5});
          return s;
        },
        "x.y");
  }
  static void TearDownTestSuite() { server.reset(); }

  static inline std::atomic<std::uint64_t> sent_bytes{1111};
  static inline std::unique_ptr<endpoint> server;
};

TEST_F(EndpointTest, ListensOnTheChosenEphemeralPort) {
  EXPECT_NE(server->port(), 0);
}

TEST_F(EndpointTest, ServesWhatTheSnapshotFunctionReturnsAtEachScrape) {
  sent_bytes = 1111;
  const auto first = http_get("127.0.0.1", server->port(), "/metrics");
  EXPECT_EQ(first.status, 200) << first.head;
  EXPECT_EQ(header(first, "Content-Type").rfind("text/plain", 0), 0u) << first.head;
  EXPECT_TRUE(has_line(first.body, "weir_build_info{version=\"x.y\"} 1"));
  EXPECT_TRUE(has_line(first.body, "weir_sent_bytes_total 1111"));
  EXPECT_TRUE(has_line(first.body, "weir_stage_processed_total{stage=\"send\"} 5"));
  EXPECT_NE(first.body.find("\nprocess_open_fds "), std::string::npos);
  EXPECT_NE(first.body.find("\nprocess_cpu_seconds_total "), std::string::npos);

  sent_bytes = 2222;
  const auto second = http_get("127.0.0.1", server->port(), "/metrics");
  EXPECT_EQ(second.status, 200);
  EXPECT_TRUE(has_line(second.body, "weir_sent_bytes_total 2222"));
  EXPECT_FALSE(has_line(second.body, "weir_sent_bytes_total 1111"));
}

TEST_F(EndpointTest, UnknownPathIsNotFound) {
  EXPECT_EQ(http_get("127.0.0.1", server->port(), "/foo").status, 404);
  EXPECT_EQ(http_get("127.0.0.1", server->port(), "/").status, 404);
}

TEST_F(EndpointTest, ASecondEndpointOnTheSamePortNamesTheAddress) {
  const std::string address = "127.0.0.1:" + std::to_string(server->port());
  try {
    endpoint second(
        address, [] { return server_snapshot{}; }, "x.y");
    FAIL() << "a second endpoint listened on " << address;
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind("metrics.listen: cannot listen on " + address + ": ", 0), 0u) << what;
    EXPECT_NE(what.find("in use"), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }
  // The first one still serves.
  EXPECT_EQ(http_get("127.0.0.1", server->port(), "/metrics").status, 200);
}

TEST(Endpoint, RejectsAListenValueThatIsNotOneAddress) {
  for (const char* bad : {"9464", "+9464", "127.0.0.1:", "127.0.0.1:70000", "127.0.0.1:9464s",
                          "127.0.0.1:1,127.0.0.1:2", "::1:9464", "[::1:9464", ":9464", ""}) {
    try {
      endpoint e(
          bad, [] { return server_snapshot{}; }, "x.y");
      ADD_FAILURE() << "accepted \"" << bad << "\" (port " << e.port() << ")";
    } catch (const std::runtime_error& e) {
      const std::string what = e.what();
      EXPECT_EQ(what.rfind("metrics.listen: ", 0), 0u) << what;
      EXPECT_NE(what.find(std::string("\"") + bad + "\""), std::string::npos) << what;
    }
  }
}

TEST(Endpoint, ServesOnIpv6Loopback) {
  const int probe = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in6 loopback{.sin6_family = AF_INET6, .sin6_addr = in6addr_loopback};
  const bool have_ipv6 =
      probe >= 0 && ::bind(probe, reinterpret_cast<sockaddr*>(&loopback), sizeof loopback) == 0;
  if (probe >= 0) ::close(probe);
  if (!have_ipv6) GTEST_SKIP() << "no IPv6 loopback on this machine";

  std::unique_ptr<endpoint> e;
  try {
    e = std::make_unique<endpoint>(
        "[::1]:0", [] { return server_snapshot{}; }, "6.6");
  } catch (const std::runtime_error& error) {
    // Debian's civetweb 1.15 is built without IPv6: then the message must say so.
    EXPECT_STREQ(error.what(),
                 "metrics.listen: cannot listen on [::1]:0: civetweb was built without IPv6");
    return;
  }
  ASSERT_NE(e->port(), 0);
  const auto r = http_get("::1", e->port(), "/metrics");
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(has_line(r.body, "weir_build_info{version=\"6.6\"} 1"));
}

}  // namespace
}  // namespace weir::metrics
