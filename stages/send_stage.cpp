#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>

#include "stages/context.hpp"
#include "stages/file_pages.hpp"
#include "stages/stages.hpp"

namespace weir {
namespace {

enum class send_outcome { done, would_block, failed, yield };
// File bytes one turn of the send stage pushes before it yields to the other connections in its
// queue: one client fetching a large file over a fast link cannot hold a send worker for long.
constexpr std::size_t turn_bytes = 256u << 10;

send_outcome write_head_and_body(connection& c) {
  const std::string& head = c.ex().out_head;
  while (c.out_head_sent < head.size() || c.body_left > 0) {
    iovec iov[2];
    int n_iov = 0;
    if (c.out_head_sent < head.size()) {
      iov[n_iov++] = {const_cast<char*>(head.data()) + c.out_head_sent,
                      head.size() - c.out_head_sent};
    }
    if (c.body_left > 0) iov[n_iov++] = {const_cast<char*>(c.body), c.body_left};
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<std::size_t>(n_iov);
    // More to come from sendfile: let the head share a segment with the first file bytes.
    const int flags = MSG_NOSIGNAL | (c.file_left > 0 ? MSG_MORE : 0);
    ssize_t n = ::sendmsg(c.fd, &msg, flags);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK ? send_outcome::would_block
                                                     : send_outcome::failed;
    }
    c.bytes_sent += static_cast<std::uint64_t>(n);
    const std::size_t head_left = head.size() - c.out_head_sent;
    const std::size_t from_head = std::min<std::size_t>(head_left, static_cast<std::size_t>(n));
    c.out_head_sent += static_cast<std::uint32_t>(from_head);
    const std::size_t from_body = static_cast<std::size_t>(n) - from_head;
    c.body += from_body;
    c.body_left -= from_body;
  }
  return send_outcome::done;
}

send_outcome send_file(connection& c) {
  std::size_t budget = turn_bytes;
  while (c.file_left > 0) {
    if (budget == 0) return send_outcome::yield;
    const ssize_t n = ::sendfile(c.fd, c.file_fd, &c.file_off, std::min(c.file_left, budget));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK ? send_outcome::would_block
                                                     : send_outcome::failed;
    }
    if (n == 0) return send_outcome::failed;  // the file shrank under us
    c.bytes_sent += static_cast<std::uint64_t>(n);
    c.file_left -= static_cast<std::size_t>(n);
    budget -= static_cast<std::size_t>(n);
  }
  return send_outcome::done;
}

// Whether the file bytes of the next turn must be read into memory before they are sent: not in
// the page cache, and not just read in by disk_io.
bool next_turn_cold(connection& c) {
  exchange& x = c.ex();
  if (x.pages == exchange::file_pages::resident) {
    x.pages = exchange::file_pages::unknown;  // asked again at the turn after this one
    return false;
  }
  return !pages_resident(c.file_fd, c.file_off, std::min(c.file_left, turn_bytes));
}

}  // namespace

runtime::stage_index send_stage::handle(runtime::task& t) {
  auto& c = static_cast<connection&>(t);
  // A large file's next turn not in memory goes to disk_io first, which reads it in where
  // blocking is its job; with disk_io's queue full it is sent as it is.
  if (c.file_left > 0 && next_turn_cold(c)) {
    const runtime::pipeline::queue_load disk = ctx_.pipe.load_of(stage_disk_io);
    if (disk.depth < disk.capacity) {
      c.ex().pages = exchange::file_pages::read_in;
      return stage_disk_io;
    }
  }
  for (;;) {
    // Edge-triggered: forget the writability we are about to use up; a full socket buffer
    // (EAGAIN) raises a new edge once it drains.
    c.use_ready(ready_write);
    send_outcome r = write_head_and_body(c);
    if (r == send_outcome::done) r = send_file(c);
    switch (r) {
      case send_outcome::done:
        return ctx_.finish_response(c);
      case send_outcome::would_block:
        if (ctx_.park(c, true, server_context::now_ms() + ctx_.live.send_timeout().count()))
          continue;
        return runtime::stage_done;
      case send_outcome::yield:  // to the back of the send queue; the socket is still writable
        return stage_send;
      case send_outcome::failed:
        ctx_.close(c, close_reason::client);
        return runtime::stage_done;
    }
  }
}

}  // namespace weir
