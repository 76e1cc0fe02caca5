#include "stages/access_log.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <system_error>

#include "stages/connection.hpp"
#include "stages/http/parser.hpp"

namespace weir {
namespace {

constexpr std::size_t max_pending = 4 << 20;  // beyond this, lines are dropped, not buffered

void append_peer(std::string& out, const peer_address& peer) {
  char text[INET6_ADDRSTRLEN] = "-";
  if (peer.any.sa_family == AF_INET) {
    ::inet_ntop(AF_INET, &peer.v4.sin_addr, text, sizeof text);
  } else if (peer.any.sa_family == AF_INET6) {
    ::inet_ntop(AF_INET6, &peer.v6.sin6_addr, text, sizeof text);
  }
  out.append(text);
}

void append_escaped(std::string& out, std::string_view s) {
  for (const char ch : s) {
    const auto u = static_cast<unsigned char>(ch);
    if (u < 0x20 || u >= 0x7f || ch == '"' || ch == '\\') {
      static constexpr char hex[] = "0123456789ABCDEF";
      out.append("\\x");
      out.push_back(hex[u >> 4]);
      out.push_back(hex[u & 15]);
    } else {
      out.push_back(ch);
    }
  }
}

}  // namespace

access_log::access_log(const std::string& path) : path_(path) {
  if (path.empty()) return;
  if (path == "-") {
    fd_ = STDOUT_FILENO;
  } else {
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "access log " + path);
    owns_fd_ = true;
  }
  enabled_ = true;
  writer_ = std::thread([this] {
    ::pthread_setname_np(::pthread_self(), "weir-accesslog");
    run();
  });
}

access_log::~access_log() {
  if (writer_.joinable()) {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_one();
    writer_.join();
  }
  if (owns_fd_) ::close(fd_);
}

void access_log::record(const connection& c) {
  // Format outside the lock; the lock only covers the append.
  thread_local std::string line;
  line.clear();
  append_peer(line, c.peer);
  line.append(" - - [");
  char when[32];
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  line.append(when, std::strftime(when, sizeof when, "%d/%b/%Y:%H:%M:%S +0000", &tm));
  line.append("] \"");
  const http::request_head& req = c.ex().req;
  append_escaped(line, req.method_token);
  line.push_back(' ');
  append_escaped(line, req.target);
  line.append(req.version_minor == 0 ? " HTTP/1.0\" " : " HTTP/1.1\" ");
  line.append(std::to_string(c.status)).push_back(' ');
  line.append(std::to_string(c.bytes_sent)).push_back('\n');
  std::lock_guard lock(mutex_);
  if (pending_.size() + line.size() <= max_pending) pending_.append(line);
}

void access_log::flush() {
  std::string out;
  {
    std::lock_guard lock(mutex_);
    out.swap(pending_);
  }
  std::lock_guard write(write_mutex_);
  std::size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::write(fd_, out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
}

std::string access_log::reopen() {
  if (!owns_fd_) return "";
  flush();
  const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return path_ + ": " + std::strerror(errno);
  std::lock_guard write(write_mutex_);
  ::close(fd_);
  fd_ = fd;
  return "";
}

void access_log::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    wake_.wait_for(lock, std::chrono::milliseconds(200));
    lock.unlock();
    flush();
    lock.lock();
  }
  lock.unlock();
  flush();
}

}  // namespace weir
