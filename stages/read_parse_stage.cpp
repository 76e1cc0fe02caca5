#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

#include "stages/context.hpp"
#include "stages/http/path.hpp"
#include "stages/stages.hpp"

namespace weir {
namespace {

// A GET/HEAD body up to this size is read and dropped; a larger one ends the connection instead.
constexpr std::uint64_t max_discarded_body = 64 * 1024;
// Input a lingering close drops in one turn of read_parse before it yields.
constexpr std::size_t linger_turn_bytes = 64 * 1024;

enum class read_outcome { data, would_block, closed, error };

/// A CLOCK_REALTIME instant on the steady clock, through the clocks' offset now (`steady_now`
/// is now on the steady clock). An instant in the future or more than a minute old (the wall
/// clock stepped) is not believed: `steady_now` instead.
std::int64_t steady_of_realtime(std::int64_t realtime_ns, std::int64_t steady_now) {
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  const std::int64_t age = std::int64_t{now.tv_sec} * 1'000'000'000 + now.tv_nsec - realtime_ns;
  if (age < 0 || age > 60'000'000'000) return steady_now;
  return steady_now - age;
}

/// A new connection's first read: also takes the kernel's receive time of the bytes (the
/// listener has SO_TIMESTAMPNS, which accepted sockets inherit), so that the first request's
/// latency counts from when it reached this host, its wait in the listen queue included.
ssize_t receive_first(connection& c, char* in, std::size_t room) {
  iovec iov{in + c.in_end, room};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(timespec))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  const ssize_t n = ::recvmsg(c.fd, &msg, 0);
  if (n <= 0) return n;
  for (cmsghdr* h = CMSG_FIRSTHDR(&msg); h != nullptr; h = CMSG_NXTHDR(&msg, h)) {
    if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_TIMESTAMPNS) {
      timespec ts;
      std::memcpy(&ts, CMSG_DATA(h), sizeof ts);
      c.first_bytes_realtime_ns = std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
    }
  }
  return n;
}

/// Makes room and receives once into the connection's input buffer, at most `max_buffer` bytes
/// of it (the request head's limit, plus one).
read_outcome receive(connection& c, std::uint32_t max_buffer) {
  exchange& x = c.ex();
  if (c.in_start == c.in_end) c.in_start = c.in_end = 0;
  std::uint32_t cap = std::min(x.in_cap, max_buffer);
  if (c.in_end >= cap) {
    if (c.in_start > 0) {  // slide the unconsumed bytes to the front
      std::memmove(x.in.get(), x.in.get() + c.in_start, c.in_end - c.in_start);
      c.in_end -= c.in_start;
      c.in_start = 0;
    } else if (x.in_cap < max_buffer) {  // a large head: grow up to the limit
      cap = std::min(x.in_cap * 2, max_buffer);
      auto bigger = std::make_unique<char[]>(cap);
      std::memcpy(bigger.get(), x.in.get(), c.in_end);
      x.in = std::move(bigger);
      x.in_cap = cap;
    } else {
      return read_outcome::data;  // full at the limit: the parser reports 414/431
    }
  }
  // Edge-triggered: forget the readiness we are about to use up. A short read drained the
  // socket (each later segment raises a new edge; a FIN is remembered as `ready_peer_eof`);
  // a full read may have left some behind.
  c.use_ready(ready_read);
  const std::size_t room = cap - c.in_end;
  ssize_t n;
  if (c.requests == 0 && c.in_end == 0 && c.first_bytes_realtime_ns == 0) [[unlikely]] {
    n = receive_first(c, x.in.get(), room);
  } else {
    n = ::recv(c.fd, x.in.get() + c.in_end, room, 0);
  }
  if (n > 0) {
    if (static_cast<std::size_t>(n) == room) c.keep_ready(ready_read);
    c.in_end += static_cast<std::uint32_t>(n);
    return read_outcome::data;
  }
  if (n == 0) return read_outcome::closed;
  if (errno == EAGAIN || errno == EWOULDBLOCK) return read_outcome::would_block;
  if (errno == EINTR) return read_outcome::data;
  return read_outcome::error;
}

}  // namespace

runtime::stage_index read_parse_stage::linger(connection& c) {
  // Bounded twice: by the deadline, checked on every pass (a client that keeps the buffer full
  // never makes a read would-block), and per turn, so it cannot hold a worker while others wait.
  std::size_t drained = 0;
  for (;;) {
    if (c.linger_until_ms <= server_context::now_ms()) {
      ctx_.close(c, close_reason::done);
      return runtime::stage_done;
    }
    if (drained >= linger_turn_bytes) return stage_read_parse;  // to the back of the queue
    c.in_start = c.in_end = 0;
    switch (receive(c, c.ex().in_cap)) {
      case read_outcome::data:
        drained += c.in_end;
        continue;
      case read_outcome::would_block:
        if (ctx_.park(c, false, c.linger_until_ms)) continue;
        return runtime::stage_done;
      case read_outcome::closed:
      case read_outcome::error:
        ctx_.close(c, close_reason::done);
        return runtime::stage_done;
    }
  }
}

runtime::stage_index read_parse_stage::handle(runtime::task& t) {
  auto& c = static_cast<connection&>(t);
  // Loaded once per turn, so the buffer bound and the parser agree. The head buffer may exceed
  // the configured limit by one byte so the parser can see an oversized head and name the right
  // status.
  const http::parser_limits limits = ctx_.live.parser_limits();
  const auto max_buffer = static_cast<std::uint32_t>(limits.max_header_bytes + 1);
  if (c.lingering) return linger(c);
  for (;;) {
    // Drop the body of the previous request (GET/HEAD with a small Content-Length).
    if (c.discard > 0 && c.in_end > c.in_start) {
      const auto n =
          static_cast<std::uint32_t>(std::min<std::uint64_t>(c.discard, c.in_end - c.in_start));
      c.in_start += n;
      c.discard -= n;
    }
    if (c.discard == 0 && c.in_end > c.in_start) {
      if (c.request_start_ms == 0) {
        // One clock read: now_ms is the same steady clock in milliseconds.
        c.request_start_ns = server_context::now_ns();
        c.request_start_ms = c.request_start_ns / 1'000'000;
        // Set by the hop into read_parse (0 when stages are not timed).
        c.arrived_ns = c.enqueued_ns != 0 && c.enqueued_ns < c.request_start_ns
                           ? c.enqueued_ns
                           : c.request_start_ns;
        // Its wait in weir's queue before read_parse (the fast signal; the listen queue's wait
        // is not in it: a connection taken in has cost its accept and read already).
        c.queue_wait_ns =
            c.arrived_ns != c.request_start_ns ? c.request_start_ns - c.arrived_ns : 0;
        if (c.requests == 0 && c.first_bytes_realtime_ns != 0)
          c.arrived_ns = std::min(
              c.arrived_ns, steady_of_realtime(c.first_bytes_realtime_ns, c.request_start_ns));
      }
      exchange& x = c.ex();
      const std::string_view buf(x.in.get() + c.in_start, c.in_end - c.in_start);
      const http::parse_result r = http::parse_request(buf, limits, x.req);
      if (r.outcome == http::parse_result::kind::error) {
        // The framing is lost: answer with what was found wrong, then close.
        c.head_len = static_cast<std::uint32_t>(buf.size());
        x.req = http::request_head{};
        ctx_.begin_request(c, method_label::unknown);
        prepare_error_response(c, r.status, true);
        return stage_send;
      }
      if (r.outcome == http::parse_result::kind::complete) {
        c.head_len = static_cast<std::uint32_t>(r.consumed);
        const http::request_head& req = x.req;
        ctx_.begin_request(c, req.verb == http::method::get    ? method_label::get
                              : req.verb == http::method::head ? method_label::head
                                                               : method_label::other);
        c.keep_alive = req.keep_alive;
        const bool has_body = req.chunked || (req.has_content_length && req.content_length > 0);
        if (req.verb != http::method::get && req.verb != http::method::head) {
          // Not reading a body we will not use: answer and close instead (RFC 9112 9.6).
          prepare_error_response(c, req.verb == http::method::unknown ? 501 : 405, has_body);
          return stage_send;
        }
        if (req.chunked || req.content_length > max_discarded_body) {
          c.close_after = true;
        } else if (has_body) {
          c.discard = req.content_length;
        }
        if (req.path == "*") {
          prepare_error_response(c, 400, false);
          return stage_send;
        }
        if (const int status = http::normalize_path(req.path, x.path); status != 0) {
          prepare_error_response(c, status, false);
          return stage_send;
        }
        if (const fault_shed_mode fault = ctx_.fault_shed.load(std::memory_order_relaxed);
            fault != fault_shed_mode::off) [[unlikely]] {
          if (fault == fault_shed_mode::keep)
            return ctx_.refuse(c, shed_class::request, shed_reason::fault);
          ctx_.shed(c, shed_class::request, shed_reason::fault);
          return runtime::stage_done;
        }
        if (!ctx_.admission.queue_admit(c.queue_wait_ns, c.request_start_ns)) [[unlikely]]
          return ctx_.refuse(c, shed_class::request, shed_reason::queue_delay);
        return ctx_.admit(c);  // on to cache_lookup, or refused before any cache or disk work
      }
      if (c.in_end - c.in_start >= max_buffer) {  // the parser should have said 414/431
        ctx_.begin_request(c, method_label::unknown);
        prepare_error_response(c, 431, true);
        return stage_send;
      }
    }
    switch (receive(c, max_buffer)) {
      case read_outcome::data:
        continue;
      case read_outcome::would_block: {
        // Idle between requests: the keep-alive timeout (the header timeout before the first
        // request). Part of a head received: the header timeout, counted from its first byte,
        // so a client trickling bytes cannot hold the connection (slowloris).
        // Both count from a fixed start, never from this pass: a connection woken again and again
        // without bytes to read still times out.
        const std::int64_t now = server_context::now_ms();
        const bool idle = c.in_end == c.in_start;
        std::int64_t deadline;
        if (idle) {
          c.drop_exchange();  // an idle connection holds no buffers
          c.request_start_ms = 0;
          deadline = c.idle_since_ms +
                     (c.requests == 0 ? ctx_.live.header_timeout() : ctx_.live.keepalive_timeout())
                         .count();
        } else {
          deadline = c.request_start_ms + ctx_.live.header_timeout().count();
        }
        // The event loop only times out parked connections; one whose bytes keep arriving is
        // rarely parked when it looks, so the deadline is enforced here as well.
        if (deadline <= now) {
          if (!idle) ctx_.pipe.count_rejected(stage_read_parse, runtime::reject_reason::timeout);
          ctx_.close(c, close_reason::timeout);
          return runtime::stage_done;
        }
        if (ctx_.park(c, false, deadline)) continue;  // bytes arrived meanwhile
        return runtime::stage_done;
      }
      case read_outcome::closed:
        ctx_.close(c, close_reason::client);
        return runtime::stage_done;
      case read_outcome::error:
        ctx_.close(c, close_reason::error);
        return runtime::stage_done;
    }
  }
}

}  // namespace weir
