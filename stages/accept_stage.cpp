#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

#include "stages/context.hpp"
#include "stages/reactor.hpp"
#include "stages/stages.hpp"

namespace weir {
namespace {

constexpr int accept_batch = 64;
constexpr std::int64_t fd_exhausted_backoff_ms = 100;

// How long an accepted connection waited in the listen queue, in ms (at the kernel's tick, a
// few ms): the time since the last segment its peer sent, its handshake's last ACK or its
// request; -1 if TCP_INFO cannot be read. One getsockopt, taken once per batch of accepts, from
// the last connection of the batch, before any other thread can have it (and close its fd).
std::int64_t listen_wait_ms(int fd) {
  tcp_info info{};
  socklen_t len = sizeof info;
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return -1;
  return info.tcpi_last_ack_recv;
}

}  // namespace

accept_stage::accept_stage(server_context& ctx, int listen_fd, std::size_t backlog)
    : ctx_(ctx), listen_fd_(listen_fd), backlog_(backlog) {
  follow_send_lowat();
}

// The send low-water mark new sockets inherit from the listener, as it is now (SIGHUP may change
// it; connections open keep theirs). Unsent data stays in weir's hands, not the kernel's: a large
// file is fed as the peer takes it, from the send stage, rather than queued megabytes deep and
// pushed out later from whatever context processes the peer's ACKs. Also bounds kernel memory
// per socket.
void accept_stage::follow_send_lowat() {
  const std::size_t want = ctx_.live.send_lowat.load(std::memory_order_relaxed);
  if (want == send_lowat_) return;
  send_lowat_ = want;  // asked once, whatever the answer
  const int lowat = static_cast<int>(want);
  if (::setsockopt(listen_fd_, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat, sizeof lowat) != 0)
    spdlog::warn("accept: send low-water mark {}: {}", want, std::strerror(errno));
}

runtime::stage_index accept_stage::handle(runtime::task&) {
  if (ctx_.draining.load(std::memory_order_relaxed)) return runtime::stage_done;
  // The listen queue's length as the admission controller asks (Linux applies a new length when
  // listen is called again; connections already queued stay).
  if (const std::size_t want = ctx_.admission.backlog(); want != 0 && want != backlog_) {
    if (::listen(listen_fd_, static_cast<int>(want)) == 0) {
      backlog_ = want;
    } else {
      spdlog::warn("accept: listen backlog {}: {}", want, std::strerror(errno));
      ctx_.admission.set_backlog(backlog_);  // asked once, not at every round
    }
  }
  follow_send_lowat();
  std::size_t room = ctx_.accept_room();
  int taken = 0;
  std::int64_t last_wait_ms = -1;
  for (int i = 0; i < accept_batch; ++i) {
    if (room == 0) {
      // No room inside weir: those already in the kernel's listen queue wait there, where
      // waiting costs weir nothing, until a request ends and frees room
      // (server_context::resume_accepts). At the request limit new ones are turned away at the
      // SYN gate, closed before the flag so that whoever clears the flag finds it closed.
      if (ctx_.at_request_limit())
        ctx_.loop->close_syn_gate(ctx_.admission.limit(runtime::admission_class::request));
      ctx_.accepts_paused_for_load.store(true, std::memory_order_seq_cst);
      // Room freed between the reading and the flag was seen by no one: look once more, and
      // go on only by clearing the flag ourselves (whoever clears it owns the listener).
      room = ctx_.accept_room();
      if (room == 0 || !ctx_.accepts_paused_for_load.exchange(false, std::memory_order_acq_rel)) {
        ctx_.admission.note_accept_pause();
        return runtime::stage_done;
      }
    }
    --room;
    // The live limit (SIGHUP may lower it below the connections open: they stay, none is added).
    if (ctx_.connections.in_use() >= ctx_.live.max_connections.load(std::memory_order_relaxed)) {
      // At the connection limit: leave the rest in the kernel's backlog until a slot frees up.
      ctx_.loop->pause_listener(0);
      return runtime::stage_done;
    }
    peer_address peer{};
    socklen_t len = sizeof peer;
    const int fd = ::accept4(listen_fd_, &peer.any, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      const int err = errno;
      if (err == EAGAIN || err == EWOULDBLOCK) {
        ctx_.loop->open_syn_gate();  // the listen queue is empty and weir has room
        break;
      }
      if (err == EINTR || err == ECONNABORTED || err == EPROTO) continue;
      if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        ctx_.stats.local().accept_backoffs.add();
        if (fd_pauses_++ == 0) {
          spdlog::warn("accept: {}; pausing accepts for {} ms", std::strerror(err),
                       fd_exhausted_backoff_ms);
        } else {
          spdlog::debug("accept: {}; pausing accepts for {} ms (pause {})", std::strerror(err),
                        fd_exhausted_backoff_ms, fd_pauses_);
        }
        ctx_.loop->pause_listener(server_context::now_ms() + fd_exhausted_backoff_ms);
        return runtime::stage_done;
      }
      spdlog::error("accept: {}", std::strerror(err));
      break;
    }
    if (fd_pauses_ != 0) {
      spdlog::info("accept: accepting again after {} pause{} for file descriptors", fd_pauses_,
                   fd_pauses_ == 1 ? "" : "s");
      fd_pauses_ = 0;
    }
    connection* c = ctx_.connections.acquire();
    if (c == nullptr) {  // cannot happen while only this stage acquires, but never leak the fd
      ::close(fd);
      continue;
    }
    // TCP_NODELAY and TCP_NOTSENT_LOWAT came with it from the listener.
    c->fd = fd;
    c->peer = peer;
    ctx_.stats.local().accepted.add();
    if (++taken == accept_batch) last_wait_ms = listen_wait_ms(fd);
    ctx_.start(*c);
  }
  // A whole batch taken: more wait in the listen queue. Too many, or too long, close the gate
  // (weir has room but not the CPU to take them within the target).
  if (taken == accept_batch)
    ctx_.loop->check_listen_queue(ctx_.admission.limit(runtime::admission_class::request),
                                  last_wait_ms);
  ctx_.loop->arm_listener();
  return runtime::stage_done;
}

}  // namespace weir
