#include "tests/integration/http_client.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <strings.h>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace weir::test {
namespace {

constexpr std::size_t max_head_bytes = 1u << 20;

std::string errno_text(const char* what) {
  return std::string(what) + ": " + std::strerror(errno);
}

bool is_space(char c) {
  return c == ' ' || c == '\t';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

bool is_token_char(char c) {
  if (c >= 'a' && c <= 'z') return true;
  if (c >= 'A' && c <= 'Z') return true;
  if (c >= '0' && c <= '9') return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != '\0';
}

bool parse_decimal(std::string_view s, std::uint64_t& out) {
  if (s.empty() || s.size() > 18) return false;
  out = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    out = out * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return true;
}

timeval to_timeval(std::chrono::milliseconds t) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(t.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((t.count() % 1000) * 1000);
  return tv;
}

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

// Non-blocking connect bounded by `timeout`; returns the fd (blocking again) or -1 with errno set.
int connect_with_timeout(std::uint16_t port, std::chrono::milliseconds timeout, int rcvbuf) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  if (rcvbuf > 0) ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  const sockaddr_in addr = loopback(port);
  int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  if (rc != 0 && errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    rc = ::poll(&p, 1, static_cast<int>(timeout.count()));
    if (rc == 0) {
      ::close(fd);
      errno = ETIMEDOUT;
      return -1;
    }
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      ::close(fd);
      errno = err;
      return -1;
    }
    rc = 0;
  }
  if (rc != 0) {
    const int saved = errno;
    ::close(fd);
    errno = saved;
    return -1;
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

constexpr const char* day_names[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr const char* month_names[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

}  // namespace

bool case_insensitive_less::operator()(const std::string& a, const std::string& b) const {
  return strcasecmp(a.c_str(), b.c_str()) < 0;
}

std::string response::header(const std::string& name) const {
  const auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

bool response::connection_has(std::string_view token) const {
  const auto [first, last] = headers.equal_range("Connection");
  for (auto it = first; it != last; ++it) {
    std::string_view rest = it->second;
    while (!rest.empty()) {
      const std::size_t comma = rest.find(',');
      if (iequals(trim(rest.substr(0, comma)), token)) return true;
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  return false;
}

const char* to_string(read_status s) {
  switch (s) {
    case read_status::ok:
      return "ok";
    case read_status::closed:
      return "closed";
    case read_status::timeout:
      return "timeout";
    case read_status::malformed:
      return "malformed";
  }
  return "?";
}

http_client::http_client(std::uint16_t port, options opts) : timeout_(opts.timeout) {
  fd_ = connect_with_timeout(port, opts.timeout, opts.receive_buffer);
  if (fd_ < 0) throw std::runtime_error(errno_text("connect to 127.0.0.1"));
  const int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  set_timeout(opts.timeout);
}

http_client::~http_client() {
  close();
}

http_client::http_client(http_client&& other) noexcept
    : fd_(other.fd_),
      timeout_(other.timeout_),
      buffer_(std::move(other.buffer_)),
      error_(std::move(other.error_)) {
  other.fd_ = -1;
}

void http_client::set_timeout(std::chrono::milliseconds t) {
  timeout_ = t;
  if (fd_ < 0) return;
  const timeval tv = to_timeval(t);
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

bool http_client::try_send(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      error_ = (errno == EAGAIN || errno == EWOULDBLOCK) ? "send: timed out" : errno_text("send");
      return false;
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

void http_client::send(std::string_view bytes) {
  if (!try_send(bytes)) throw std::runtime_error(error_);
}

http_client::fill http_client::fill_buffer() {
  char chunk[64 * 1024];
  for (;;) {
    const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n > 0) {
      buffer_.append(chunk, static_cast<std::size_t>(n));
      return fill::data;
    }
    if (n == 0) return fill::eof;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return fill::timeout;
    error_ = errno_text("recv");
    return fill::reset;
  }
}

read_status http_client::fail(read_status s, std::string why) {
  error_ = std::move(why);
  return s;
}

read_status http_client::read_head(response& out, std::size_t& head_end) {
  std::size_t end;
  while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
    if (buffer_.size() > max_head_bytes)
      return fail(read_status::malformed, "response head > 1 MiB");
    switch (fill_buffer()) {
      case fill::data:
        break;
      case fill::eof:
      case fill::reset:
        if (buffer_.empty()) return fail(read_status::closed, "connection closed by the server");
        return fail(read_status::malformed,
                    "connection closed inside a response head: " + buffer_.substr(0, 200));
      case fill::timeout:
        return fail(read_status::timeout,
                    buffer_.empty() ? "no response within the timeout"
                                    : "response head incomplete: " + buffer_.substr(0, 200));
    }
  }
  head_end = end + 4;
  const std::string_view head(buffer_.data(), end);

  std::size_t line_end = head.find("\r\n");
  const std::string_view status_line = head.substr(0, line_end);
  // HTTP/1.x SP 3DIGIT SP reason
  if (status_line.size() < 12 || status_line.substr(0, 7) != "HTTP/1." || status_line[8] != ' ' ||
      !std::isdigit(static_cast<unsigned char>(status_line[7])) ||
      (status_line.size() > 12 && status_line[12] != ' ')) {
    return fail(read_status::malformed, "bad status line: " + std::string(status_line));
  }
  std::uint64_t code = 0;
  if (!parse_decimal(status_line.substr(9, 3), code) || code < 100 || code > 599)
    return fail(read_status::malformed, "bad status code: " + std::string(status_line));
  out = response{};
  out.version = std::string(status_line.substr(0, 8));
  out.status = static_cast<int>(code);
  if (status_line.size() > 13) out.reason = std::string(status_line.substr(13));

  while (line_end != std::string_view::npos) {
    const std::size_t start = line_end + 2;
    line_end = head.find("\r\n", start);
    const std::string_view line = head.substr(start, line_end - start);
    if (line.find_first_of("\r\n") != std::string_view::npos)
      return fail(read_status::malformed, "stray CR/LF in header line: " + std::string(line));
    const std::size_t colon = line.find(':');
    if (colon == 0 || colon == std::string_view::npos)
      return fail(read_status::malformed, "bad header line: " + std::string(line));
    const std::string_view name = line.substr(0, colon);
    if (!std::all_of(name.begin(), name.end(), is_token_char))
      return fail(read_status::malformed, "bad header name: " + std::string(line));
    out.headers.emplace(std::string(name), std::string(trim(line.substr(colon + 1))));
  }
  return read_status::ok;
}

read_status http_client::read_exact(std::size_t from, std::size_t n) {
  while (buffer_.size() < from + n) {
    switch (fill_buffer()) {
      case fill::data:
        break;
      case fill::eof:
      case fill::reset:
        return fail(read_status::malformed, "connection closed after " +
                                                std::to_string(buffer_.size() - from) + " of " +
                                                std::to_string(n) + " body bytes");
      case fill::timeout:
        return fail(read_status::timeout,
                    "body incomplete: " + std::to_string(buffer_.size() - from) + " of " +
                        std::to_string(n) + " bytes");
    }
  }
  return read_status::ok;
}

read_status http_client::read_chunked(response& out, std::size_t from) {
  std::size_t pos = from;
  auto line_at = [&](std::size_t at, std::size_t& eol) {
    while ((eol = buffer_.find("\r\n", at)) == std::string::npos) {
      const fill f = fill_buffer();
      if (f == fill::timeout) return fail(read_status::timeout, "chunked body incomplete");
      if (f != fill::data) return fail(read_status::malformed, "closed inside a chunked body");
    }
    return read_status::ok;
  };
  for (;;) {
    std::size_t eol = 0;
    if (const read_status s = line_at(pos, eol); s != read_status::ok) return s;
    std::string_view size_text(buffer_.data() + pos, eol - pos);
    size_text = trim(size_text.substr(0, size_text.find(';')));
    std::size_t size = 0;
    if (size_text.empty() || size_text.size() > 15)
      return fail(read_status::malformed, "bad chunk size");
    for (char c : size_text) {
      const int digit =
          std::isxdigit(static_cast<unsigned char>(c))
              ? (std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : (c | 0x20) - 'a' + 10)
              : -1;
      if (digit < 0) return fail(read_status::malformed, "bad chunk size");
      size = size * 16 + static_cast<std::size_t>(digit);
    }
    pos = eol + 2;
    if (size == 0) {
      for (;;) {  // trailer section
        if (const read_status s = line_at(pos, eol); s != read_status::ok) return s;
        const bool empty = eol == pos;
        pos = eol + 2;
        if (empty) break;
      }
      buffer_.erase(0, pos);
      return read_status::ok;
    }
    if (const read_status s = read_exact(pos, size + 2); s != read_status::ok) return s;
    if (buffer_.compare(pos + size, 2, "\r\n") != 0)
      return fail(read_status::malformed, "chunk not followed by CRLF");
    out.body.append(buffer_, pos, size);
    pos += size + 2;
  }
}

read_status http_client::read_body(response& out, std::size_t head_end, bool head) {
  buffer_.erase(0, head_end);
  if (head || out.status < 200 || out.status == 204 || out.status == 304) return read_status::ok;

  if (out.has("Transfer-Encoding")) {
    const std::string te = out.header("Transfer-Encoding");
    if (te.size() >= 7 && iequals(std::string_view(te).substr(te.size() - 7), "chunked"))
      return read_chunked(out, 0);
  } else if (out.has("Content-Length")) {
    const auto [first, last] = out.headers.equal_range("Content-Length");
    std::uint64_t length = 0;
    for (auto it = first; it != last; ++it) {
      std::uint64_t v = 0;
      if (!parse_decimal(it->second, v) || (it != first && v != length))
        return fail(read_status::malformed, "bad Content-Length: " + it->second);
      length = v;
    }
    const auto n = static_cast<std::size_t>(length);
    if (const read_status s = read_exact(0, n); s != read_status::ok) return s;
    out.body = buffer_.substr(0, n);
    buffer_.erase(0, n);
    return read_status::ok;
  }
  // Close-delimited.
  for (;;) {
    const fill f = fill_buffer();
    if (f == fill::timeout) return fail(read_status::timeout, "close-delimited body: no EOF");
    if (f != fill::data) break;
  }
  out.body = std::move(buffer_);
  buffer_.clear();
  return read_status::ok;
}

read_status http_client::try_read_response(response& out, bool head) {
  if (fd_ < 0) return fail(read_status::closed, "client socket closed");
  std::size_t head_end = 0;
  if (const read_status s = read_head(out, head_end); s != read_status::ok) return s;
  return read_body(out, head_end, head);
}

response http_client::read_response(bool head) {
  response r;
  const read_status s = try_read_response(r, head);
  if (s != read_status::ok)
    throw std::runtime_error(std::string("read_response: ") + to_string(s) + ": " + error_);
  return r;
}

std::vector<response> http_client::read_responses(std::size_t n) {
  return read_responses(std::vector<bool>(n, false));
}

std::vector<response> http_client::read_responses(const std::vector<bool>& head) {
  std::vector<response> out;
  out.reserve(head.size());
  for (std::size_t i = 0; i < head.size(); ++i) {
    response r;
    const read_status s = try_read_response(r, head[i]);
    if (s != read_status::ok) {
      throw std::runtime_error("response " + std::to_string(i + 1) + " of " +
                               std::to_string(head.size()) + ": " + to_string(s) + ": " + error_);
    }
    out.push_back(std::move(r));
  }
  return out;
}

response http_client::request(std::string_view raw, bool head) {
  send(raw);
  return read_response(head);
}

bool http_client::receive_at_least(std::size_t n) {
  while (buffer_.size() < n) {
    if (fill_buffer() != fill::data) return false;
  }
  return true;
}

std::string http_client::read_until_eof() {
  for (;;) {
    const fill f = fill_buffer();
    if (f == fill::timeout) throw std::runtime_error("read_until_eof: timed out");
    if (f != fill::data) break;
  }
  std::string all = std::move(buffer_);
  buffer_.clear();
  return all;
}

bool http_client::wait_for_close(std::chrono::milliseconds within, std::size_t* discarded) {
  if (discarded != nullptr) *discarded = buffer_.size();
  buffer_.clear();
  if (fd_ < 0) return true;
  const auto deadline = std::chrono::steady_clock::now() + within;
  char chunk[64 * 1024];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{fd_, POLLIN, 0};
    const int rc = ::poll(&p, 1, static_cast<int>(std::max<std::int64_t>(0, left.count())));
    if (rc < 0 && errno == EINTR) continue;
    if (rc == 0) return false;
    const ssize_t n = ::recv(fd_, chunk, sizeof chunk, MSG_DONTWAIT);
    if (n == 0) return true;
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
      return true;  // ECONNRESET and the like: closed
    }
    if (discarded != nullptr) *discarded += static_cast<std::size_t>(n);
  }
}

bool http_client::peer_closed_now() {
  if (fd_ < 0) return true;
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, 0) <= 0) return false;
  char c;
  const ssize_t n = ::recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n == 0) return true;
  return n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
}

void http_client::shutdown_write() {
  if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
}

void http_client::reset() {
  if (fd_ < 0) return;
  const linger l{1, 0};
  ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  close();
}

void http_client::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

std::string make_request(std::string_view method, std::string_view target, std::string_view extra) {
  std::string r;
  r.reserve(method.size() + target.size() + extra.size() + 40);
  r.append(method).append(" ").append(target).append(" HTTP/1.1\r\nHost: localhost\r\n");
  r.append(extra).append("\r\n");
  return r;
}

std::string format_imf_fixdate(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char out[40];
  std::snprintf(out, sizeof out, "%s, %02d %s %04d %02d:%02d:%02d GMT", day_names[tm.tm_wday],
                tm.tm_mday, month_names[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                tm.tm_sec);
  return out;
}

bool parse_imf_fixdate(std::string_view s, std::time_t* out) {
  // "Sun, 06 Nov 1994 08:49:37 GMT"
  if (s.size() != 29 || s.substr(3, 2) != ", " || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
      s[19] != ':' || s[22] != ':' || s.substr(25) != " GMT") {
    return false;
  }
  auto number = [&](std::size_t at, std::size_t len, int& v) {
    std::uint64_t u = 0;
    if (!parse_decimal(s.substr(at, len), u)) return false;
    v = static_cast<int>(u);
    return true;
  };
  std::tm tm{};
  int year = 0;
  if (!number(5, 2, tm.tm_mday) || !number(12, 4, year) || !number(17, 2, tm.tm_hour) ||
      !number(20, 2, tm.tm_min) || !number(23, 2, tm.tm_sec)) {
    return false;
  }
  tm.tm_year = year - 1900;
  tm.tm_mon = -1;
  for (int m = 0; m < 12; ++m) {
    if (s.substr(8, 3) == month_names[m]) tm.tm_mon = m;
  }
  if (tm.tm_mon < 0 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
      tm.tm_sec > 60) {
    return false;
  }
  const std::time_t t = timegm(&tm);
  // timegm normalises; a date that moved (31 Feb) or a wrong day name is not a valid date.
  std::tm check{};
  gmtime_r(&t, &check);
  if (check.tm_mday != std::stoi(std::string(s.substr(5, 2))) ||
      s.substr(0, 3) != day_names[check.tm_wday]) {
    return false;
  }
  if (out != nullptr) *out = t;
  return true;
}

hang_guard::hang_guard(std::string what, std::chrono::seconds limit) {
  watcher_ = std::thread([this, what = std::move(what), limit] {
    std::unique_lock lock(mutex_);
    if (done_cv_.wait_for(lock, limit, [this] { return done_; })) return;
    std::fprintf(stderr, "\n*** %s still running after %lld s: the server looks wedged; exiting\n",
                 what.c_str(), static_cast<long long>(limit.count()));
    std::fflush(stdout);
    std::fflush(stderr);
    std::_Exit(1);
  });
}

hang_guard::~hang_guard() {
  {
    std::lock_guard lock(mutex_);
    done_ = true;
  }
  done_cv_.notify_all();
  watcher_.join();
}

bool connection_refused(std::uint16_t port) {
  const int fd = connect_with_timeout(port, std::chrono::milliseconds(2000), 0);
  if (fd >= 0) {
    const linger l{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    ::close(fd);
    return false;
  }
  return errno == ECONNREFUSED;
}

}  // namespace weir::test
