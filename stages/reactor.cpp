#include "stages/reactor.hpp"

#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include <spdlog/spdlog.h>

#include "runtime/group.hpp"
#include "stages/context.hpp"

namespace weir {
namespace {

constexpr std::uint64_t listener_handle = ~std::uint64_t{0};
constexpr std::uint64_t wake_handle = ~std::uint64_t{0} - 1;
constexpr int tick_ms = 100;

}  // namespace

reactor::reactor(server_context& ctx, int listen_fd) : ctx_(ctx), listen_fd_(listen_fd) {
  listener_.next_stage = stage_accept;
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = wake_handle;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
  ev.events = EPOLLIN | EPOLLONESHOT;
  ev.data.u64 = listener_handle;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev) != 0)
    throw std::system_error(errno, std::generic_category(), "epoll_ctl(listener)");
}

reactor::~reactor() {
  stop();
  if (wake_fd_ >= 0) ::close(wake_fd_);
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
}

void reactor::start() {
  running_.store(true);
  thread_ = std::thread([this] {
    ::pthread_setname_np(::pthread_self(), "weir-reactor");
    run();
  });
}

void reactor::stop() {
  if (!running_.exchange(false)) {
    if (thread_.joinable()) thread_.join();
    return;
  }
  wake();
  thread_.join();
}

void reactor::wake() {
  const std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
}

bool reactor::watch(int fd, std::uint64_t handle) {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.u64 = handle;
  return ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) == 0;
}

void reactor::arm_listener() {
  if (draining_.load(std::memory_order_relaxed)) return;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLONESHOT;
  ev.data.u64 = listener_handle;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, listen_fd_, &ev);
}

void reactor::pause_listener(std::int64_t until_ms) {
  listener_resume_ms_.store(until_ms, std::memory_order_relaxed);
  listener_paused_.store(true, std::memory_order_release);
}

void reactor::begin_drain() {
  draining_.store(true);
  epoll_event ev{};
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, listen_fd_, &ev);
  // Stop listening now (new connections are refused) but keep the descriptor until the accept
  // stage is gone, so its number cannot be reused under it.
  ::shutdown(listen_fd_, SHUT_RDWR);
  wake();
}

void reactor::run() {
  epoll_event events[256];
  while (running_.load(std::memory_order_relaxed)) {
    const int n = ::epoll_wait(epoll_fd_, events, 256, tick_ms);
    if (n < 0 && errno != EINTR) {
      spdlog::error("epoll_wait: {}", std::strerror(errno));
      continue;
    }
    const runtime::group::deferred_wakeups round;  // wake each stage once per round of events
    for (int i = 0; i < n; ++i) {
      const std::uint64_t h = events[i].data.u64;
      if (h == listener_handle) {
        if (!ctx_.pipe.dispatch(listener_, stage_accept)) arm_listener();
      } else if (h == wake_handle) {
        std::uint64_t v;
        [[maybe_unused]] auto r = ::read(wake_fd_, &v, sizeof v);
      } else {
        on_connection_event(h, events[i].events);
      }
    }
    const std::int64_t now = server_context::now_ms();
    if (n <= 0 || now - last_tick_ms_ >= tick_ms || draining_.load(std::memory_order_relaxed)) {
      tick(now);
    }
  }
}

void reactor::on_connection_event(std::uint64_t handle, std::uint32_t events) {
  connection* c = ctx_.connections.find(handle);
  if (c == nullptr) return;  // the slot was closed and reused since this event was queued
  std::uint8_t bits = 0;
  if (events & EPOLLIN) bits |= ready_read;
  if (events & EPOLLOUT) bits |= ready_write;
  if (events & EPOLLRDHUP) bits |= ready_peer_eof;
  if (events & (EPOLLHUP | EPOLLERR)) bits |= ready_hangup;
  // Record first, then look (see server_context::park for the other half).
  c->ready.fetch_or(bits, std::memory_order_seq_cst);
  conn_state st = c->state.load(std::memory_order_seq_cst);
  const bool wanted = (st == conn_state::parked_read && (bits & wakes_reader)) ||
                      (st == conn_state::parked_write && (bits & wakes_writer));
  if (!wanted) return;  // its owner will see the bit, or it is not waiting for this direction
  if (!c->state.compare_exchange_strong(st, conn_state::active, std::memory_order_seq_cst)) return;
  // From here the event loop owns `c` until it hands it on.
  if (c->timed_out.load(std::memory_order_relaxed)) {
    const bool draining = draining_.load(std::memory_order_relaxed);
    // A stalled send, or a request head begun and not finished in time, was refused for taking
    // too long; an idle keep-alive connection (or a lingering close) simply ended.
    if (!draining && st == conn_state::parked_write) {
      ctx_.pipe.count_rejected(stage_send, runtime::reject_reason::timeout);
    } else if (!draining && !c->lingering && c->in_end > c->in_start) {
      ctx_.pipe.count_rejected(stage_read_parse, runtime::reject_reason::timeout);
    }
    ctx_.close(*c, draining ? close_reason::shutdown : close_reason::timeout);
    return;
  }
  if (st == conn_state::parked_read) {
    if (!ctx_.pipe.dispatch(*c, stage_read_parse)) ctx_.shed(*c);
  } else if (!ctx_.pipe.dispatch(*c, stage_send)) {
    ctx_.close(*c, close_reason::overload);  // mid-response: nothing better to send
  }
}

void reactor::tick(std::int64_t now) {
  last_tick_ms_ = now;
  const bool draining = draining_.load(std::memory_order_relaxed);
  auto& table = ctx_.connections;
  for (std::size_t i = 0, n = table.allocated(); i < n; ++i) {
    connection& c = table.at(i);
    const conn_state st = c.state.load(std::memory_order_acquire);
    if (st != conn_state::parked_read && st != conn_state::parked_write) continue;
    if (c.timed_out.load(std::memory_order_relaxed)) continue;
    // Only this thread turns a parked connection active, so `c` stays parked (and its fd open)
    // while we look at it. Idle readers go first when draining.
    const bool idle_on_drain = draining && st == conn_state::parked_read;
    if (idle_on_drain || c.deadline_ms.load(std::memory_order_relaxed) <= now) {
      c.timed_out.store(true, std::memory_order_relaxed);
      ::shutdown(c.fd, SHUT_RDWR);  // the edge this raises is what closes it
    }
  }
  if (!draining && listener_paused_.load(std::memory_order_acquire) &&
      now >= listener_resume_ms_.load(std::memory_order_relaxed) &&
      table.in_use() < table.capacity()) {
    bool expected = true;
    if (listener_paused_.compare_exchange_strong(expected, false)) arm_listener();
  }
}

}  // namespace weir
