// weir-floor: the kernel's cost of a request, as the floor for weir's CPU per request (issue 15).
// One thread, one epoll set, level-triggered: accept, read what is there, answer every request
// head found in it with the same canned response (a 500 B body by default), in one write. It
// parses nothing (a request is whatever ends in an empty line), checks nothing, caches nothing:
// what it spends is what any HTTP/1.1 server must spend on the syscalls of a keep-alive request.
//
// usage: weir-floor [--listen HOST:PORT] [--body BYTES]
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace {

struct conn {
  std::uint8_t matched = 0;  // bytes of "\r\n\r\n" seen at the end of the input so far
  std::string pending;       // output the socket did not take yet
};

volatile sig_atomic_t stopping = 0;

void on_signal(int) {
  stopping = 1;
}

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr, "weir-floor: %s\nusage: weir-floor [--listen HOST:PORT] [--body BYTES]\n",
               why);
  std::exit(2);
}

// Counts the request heads that end in `data`, carrying a partial "\r\n\r\n" across reads.
std::size_t count_heads(std::string_view data, std::uint8_t& matched) {
  static constexpr char end[] = "\r\n\r\n";
  std::size_t heads = 0;
  for (const char ch : data) {
    if (ch == end[matched]) {
      if (++matched == 4) {
        ++heads;
        matched = 0;
      }
    } else {
      matched = ch == '\r' ? 1 : 0;
    }
  }
  return heads;
}

// Sends `out` (and whatever was pending before it); false when the connection is done for.
bool send_all(int fd, conn& c, int ep, std::string_view out) {
  if (!c.pending.empty()) {
    c.pending.append(out);
    return true;  // EPOLLOUT is armed: it goes out in order
  }
  while (!out.empty()) {
    const ssize_t n = ::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
    if (n > 0) {
      out.remove_prefix(static_cast<std::size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      c.pending.assign(out);
      epoll_event ev{.events = EPOLLIN | EPOLLOUT, .data = {.fd = fd}};
      return ::epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev) == 0;
    } else {
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::string listen_at = "127.0.0.1:8090";
  long body = 500;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (i + 1 >= argc) usage("missing value");
    if (a == "--listen") {
      listen_at = argv[++i];
    } else if (a == "--body") {
      char* end = nullptr;
      body = std::strtol(argv[++i], &end, 10);
      if (*end != '\0' || body < 0 || body > (1 << 20)) usage("--body: 0 to 1048576 bytes");
    } else {
      usage("unknown option");
    }
  }
  const std::size_t colon = listen_at.rfind(':');
  if (colon == std::string::npos) usage("--listen: HOST:PORT");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(std::atoi(listen_at.c_str() + colon + 1)));
  if (::inet_pton(AF_INET, listen_at.substr(0, colon).c_str(), &addr.sin_addr) != 1)
    usage("--listen: an IPv4 address");

  std::string response =
      "HTTP/1.1 200 OK\r\nServer: weir-floor\r\nContent-Type: "
      "application/octet-stream\r\nContent-Length: " +
      std::to_string(body) + "\r\n\r\n" + std::string(static_cast<std::size_t>(body), 'x');

  const int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const int one = 1;
  ::setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(lfd, 4096) != 0) {
    std::perror("weir-floor: listen");
    return 1;
  }
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event lev{.events = EPOLLIN, .data = {.fd = lfd}};
  ::epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev);
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);
  std::fprintf(stderr, "weir-floor: listening on %s, %ld B bodies\n", listen_at.c_str(), body);

  std::vector<conn> conns(1024);
  std::string out;
  char buf[16384];
  epoll_event events[256];
  while (stopping == 0) {
    const int n = ::epoll_wait(ep, events, 256, -1);
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == lfd) {
        for (;;) {
          const int cfd = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (cfd < 0) break;
          ::setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          if (static_cast<std::size_t>(cfd) >= conns.size()) conns.resize(cfd * 2);
          conns[cfd] = conn{};
          epoll_event ev{.events = EPOLLIN, .data = {.fd = cfd}};
          ::epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &ev);
        }
        continue;
      }
      conn& c = conns[fd];
      bool done = false;
      if ((events[i].events & EPOLLOUT) != 0 && !c.pending.empty()) {
        const ssize_t w = ::send(fd, c.pending.data(), c.pending.size(), MSG_NOSIGNAL);
        if (w > 0) c.pending.erase(0, static_cast<std::size_t>(w));
        if (w < 0 && errno != EAGAIN) done = true;
        if (!done && c.pending.empty()) {
          epoll_event ev{.events = EPOLLIN, .data = {.fd = fd}};
          ::epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
        }
      }
      if (!done && (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0) {
        const ssize_t r = ::recv(fd, buf, sizeof buf, 0);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
          done = true;
        } else if (r > 0) {
          const std::size_t heads = count_heads({buf, static_cast<std::size_t>(r)}, c.matched);
          out.clear();
          for (std::size_t h = 0; h < heads; ++h) out += response;
          if (!out.empty() && !send_all(fd, c, ep, out)) done = true;
        }
      }
      if (done) {
        ::close(fd);  // also leaves the epoll set
        c = conn{};
      }
    }
  }
  return 0;
}
