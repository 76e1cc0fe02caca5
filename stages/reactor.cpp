#include "stages/reactor.hpp"

#include <linux/filter.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
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

// The most events a round served on the loop's thread may have (run_here_max_events).
constexpr int run_here_limit = 16;

// On the loop's thread, during an accept round it runs itself: the new connections kept to be
// served there when the round is over, and how many it may keep (reactor::keep_for_here; 0 on
// every other thread).
thread_local connection* kept_here[run_here_limit];
thread_local int kept_count = 0;
thread_local int kept_max = 0;

constexpr std::uint64_t listener_handle = ~std::uint64_t{0};
constexpr std::uint64_t wake_handle = ~std::uint64_t{0} - 1;
constexpr int tick_ms = 100;

// The most events a round may have for its requests to be served on the loop's own thread (when
// read_parse's group is idle, see pipeline::run_if_idle). With one CPU to run on, a hop buys no
// parallelism, only two context switches, so a small round is served here; a large one (a load
// the pool should see, in its queue) still goes to the pool. With more CPUs, only a lone event:
// a round of several runs in parallel on the pool for the cost of one wake-up.
int run_here_max_events() {
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  if (::sched_getaffinity(0, sizeof cpus, &cpus) == 0 && CPU_COUNT(&cpus) == 1)
    return run_here_limit;
  return 1;
}

}  // namespace

reactor::reactor(server_context& ctx, int listen_fd)
    : ctx_(ctx), listen_fd_(listen_fd), run_here_max_(run_here_max_events()) {
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
    // SCHED_BATCH: a readiness event that wakes the loop does not preempt a worker mid-batch. On
    // a busy core the loop otherwise woke for nearly every request and took the core from the
    // worker each time (measured on one core, one fused group: about a third of a loop wake-up
    // and a third of a worker preemption per request); deferred to the worker's park or the end
    // of its slice, it finds the events of many requests at once. An idle core runs it at once,
    // as before. Lowering a thread's policy needs no privilege; if it fails anyway, nothing else
    // changes.
    const sched_param normal{};
    if (::pthread_setschedparam(::pthread_self(), SCHED_BATCH, &normal) != 0)
      spdlog::debug("reactor: SCHED_BATCH refused; the loop keeps the default policy");
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

// The gate is a classic socket filter on the listener that drops a segment with SYN set and ACK
// clear (a new connection's first segment, never a handshake's last ACK or a request's bytes)
// unless a random 32-bit number drawn for it is under the threshold. A listener's filter sees
// the TCP header at offset 0 (byte 13 holds the flags), for IPv4 and IPv6. Attaching replaces the
// filter in one step. Accepted sockets inherit the filter they were cloned under; it never
// matches their segments. Called with syn_gate_mutex_ held.
void reactor::apply_syn_gate(std::uint64_t threshold) {
  if (threshold == syn_gate_threshold_.load(std::memory_order_relaxed)) return;
  if (threshold >= syn_gate_off) {
    int unused = 0;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_DETACH_FILTER, &unused, sizeof unused);
    syn_gate_threshold_.store(syn_gate_off, std::memory_order_relaxed);
    return;
  }
  sock_filter gate[] = {
      BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 13),
      BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0x12),        // SYN | ACK
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x02, 0, 3),  // SYN alone? else keep
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, static_cast<std::uint32_t>(SKF_AD_OFF + SKF_AD_RANDOM)),
      BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, static_cast<std::uint32_t>(threshold), 0, 1),
      BPF_STMT(BPF_RET | BPF_K, 0),            // drop
      BPF_STMT(BPF_RET | BPF_K, 0xffffffffu),  // keep all of it
  };
  sock_fprog prog{static_cast<unsigned short>(std::size(gate)), gate};
  if (::setsockopt(listen_fd_, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) != 0) {
    // Without it, connections wait in the listen queue as they would without a gate.
    if (!syn_gate_warned_.exchange(true))
      spdlog::warn("accept: cannot set the SYN gate (a socket filter): {}", std::strerror(errno));
    return;
  }
  syn_gate_threshold_.store(threshold, std::memory_order_relaxed);
}

namespace {

std::uint64_t share_threshold(double share) {
  return share >= 1 ? syn_gate_off
                    : static_cast<std::uint64_t>(share * static_cast<double>(syn_gate_off));
}

// The connections waiting in a listener's accept queue (TCP_INFO reports it in tcpi_unacked);
// 0 if it cannot be read.
std::size_t listen_queue_length(int listen_fd) {
  tcp_info info{};
  socklen_t len = sizeof info;
  if (::getsockopt(listen_fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return 0;
  return info.tcpi_unacked;
}

}  // namespace

std::int64_t reactor::target_ms() const {
  return static_cast<std::int64_t>(ctx_.admission.target_ns() / 1'000'000);
}

void reactor::close_syn_gate(std::size_t limit) {
  const std::lock_guard lock(syn_gate_mutex_);
  const std::size_t queued = listen_queue_length(listen_fd_);
  close_syn_gate_locked(
      queued, runtime::syn_gate_wanted_queue(syn_gate_settings_, queued, -1, limit, target_ms()),
      syn_gate_close::limit);
}

void reactor::check_listen_queue(std::size_t limit, std::int64_t head_wait_ms) {
  if (limit == runtime::admission_gate::unlimited) return;
  const std::size_t queued = listen_queue_length(listen_fd_);
  const double wanted =
      runtime::syn_gate_wanted_queue(syn_gate_settings_, queued, head_wait_ms, limit, target_ms());
  if (runtime::syn_gate_queue_too_long(queued, wanted)) {
    const std::lock_guard lock(syn_gate_mutex_);
    if (syn_gate_threshold_.load(std::memory_order_relaxed) != 0)
      close_syn_gate_locked(queued, wanted, syn_gate_close::queue);
  } else if (runtime::syn_gate_queue_short(queued, wanted) && ctx_.accept_room() > 0) {
    // Closed on a long queue that this round took down: no round may come to find it empty (a
    // listener with nothing queued is never readable), so open it now.
    open_syn_gate();
  }
}

void reactor::close_syn_gate_locked(std::size_t queued, double wanted, syn_gate_close reason) {
  if (syn_gate_threshold_.load(std::memory_order_relaxed) != 0)
    syn_gate_closes_[static_cast<std::size_t>(reason)].fetch_add(1, std::memory_order_relaxed);
  const std::uint64_t accepted = ctx_.accepted_total() - accepted_at_open_;
  runtime::syn_gate_closing(syn_gate_settings_, syn_gate_, accepted, queued, wanted,
                            server_context::now_ms());
  apply_syn_gate(0);
}

void reactor::open_syn_gate() {
  if (syn_gate_threshold_.load(std::memory_order_relaxed) == syn_gate_off) return;  // no filter
  const std::lock_guard lock(syn_gate_mutex_);
  if (syn_gate_threshold_.load(std::memory_order_relaxed) != 0) return;  // open already
  open_syn_gate_locked();
}

void reactor::open_syn_gate_locked() {
  runtime::syn_gate_opened(syn_gate_);
  accepted_at_open_ = ctx_.accepted_total();
  apply_syn_gate(share_threshold(syn_gate_.share));
}

double reactor::syn_gate_share() const {
  return static_cast<double>(syn_gate_threshold_.load(std::memory_order_relaxed)) /
         static_cast<double>(syn_gate_off);
}

void reactor::resume_listener() {
  if (syn_gate_threshold_.load(std::memory_order_relaxed) == 0 &&  // closed: open it if empty
      listen_queue_length(listen_fd_) == 0)
    open_syn_gate();
  arm_listener();
}

void reactor::arm_listener() {
  if (draining_.load(std::memory_order_relaxed)) return;
  // What the arming thread did happens before the loop's next dispatch of the listener task (an
  // accept round that ended there, seen through the pause flag): epoll orders it in the kernel,
  // this makes it explicit (and visible to ThreadSanitizer, which sees no order in a MOD).
  listener_arms_.fetch_add(1, std::memory_order_release);
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
    const bool may_run_here = n <= run_here_max_;
    // Served here one after another, a round's later requests wait for the earlier ones: from
    // the round's start, as they would have waited in read_parse's queue.
    round_start_ns_ = may_run_here && n > 1 && ctx_.pipe.timing() ? server_context::now_ns() : 0;
    for (int i = 0; i < n; ++i) {
      const std::uint64_t h = events[i].data.u64;
      if (h == listener_handle) {
        [[maybe_unused]] const auto arms = listener_arms_.load(std::memory_order_acquire);
        if (may_run_here && accept_here(n)) continue;
        if (!ctx_.pipe.dispatch(listener_, stage_accept)) arm_listener();
      } else if (h == wake_handle) {
        std::uint64_t v;
        [[maybe_unused]] auto r = ::read(wake_fd_, &v, sizeof v);
      } else {
        on_connection_event(h, events[i].events, may_run_here);
      }
    }
    const std::int64_t now = server_context::now_ms();
    if (n <= 0 || now - last_tick_ms_ >= tick_ms || draining_.load(std::memory_order_relaxed)) {
      tick(now);
    }
  }
}

// A connection per request (HTTP/1.0 clients, many bots) costs a hop to the accept stage's
// group and a wake-up of one of its workers, and then perhaps another to read_parse's; on an idle
// server that is most of what weir spends beyond the kernel's work. So an accept round comes to
// this thread when the accept group is idle, and serves the first of its new connections here as
// well, once the round is over (server_context::start keeps them, so that the accept stage's
// service time is its own), as many as a round served here may have events; the rest go to
// read_parse's queue as usual.
bool reactor::accept_here(int events) {
  const std::int64_t since_ns = ctx_.pipe.timing() ? server_context::now_ns() : 0;
  kept_count = 0;
  kept_max = run_here_max_ - events + 1;
  const bool ran = ctx_.pipe.run_if_idle(listener_, stage_accept, stage_disk_io, since_ns);
  kept_max = 0;
  for (int i = 0; i < kept_count; ++i) {
    connection& c = *kept_here[i];
    // Each waited for the ones before it, as it would have in read_parse's queue.
    if (ctx_.pipe.run_if_idle(c, stage_read_parse, stage_disk_io, since_ns)) continue;
    if (!ctx_.pipe.dispatch(c, stage_read_parse))
      ctx_.shed(c, shed_class::connection, shed_reason::queue_full);
  }
  kept_count = 0;
  return ran;
}

bool reactor::keep_for_here(connection& c) {
  if (kept_count >= kept_max) return false;
  kept_here[kept_count++] = &c;
  return true;
}

void reactor::on_connection_event(std::uint64_t handle, std::uint32_t events, bool may_run_here) {
  std::uint8_t bits = 0;
  if (events & EPOLLIN) bits |= ready_read;
  if (events & EPOLLOUT) bits |= ready_write;
  if (events & EPOLLRDHUP) bits |= ready_peer_eof;
  if (events & (EPOLLHUP | EPOLLERR)) bits |= ready_hangup;
  const event_outcome e = ctx_.connections.deliver(handle, bits);
  if (e.owned == nullptr) return;  // recorded for its owner, or stale, or not waited for
  // From here the event loop owns the connection until it hands it on.
  connection& c = *e.owned;
  if (e.was == conn_state::parked_read) {
    // A request in a small round on an idle server is served here, as a single-threaded event
    // loop would (run_here_max_events); with more events in hand, or workers busy, it goes to
    // read_parse's group.
    if (may_run_here && ctx_.pipe.run_if_idle(c, stage_read_parse, stage_disk_io, round_start_ns_))
      return;
    if (!ctx_.pipe.dispatch(c, stage_read_parse))
      ctx_.shed(c, shed_class::connection, shed_reason::queue_full);
  } else if (!ctx_.pipe.dispatch(c, stage_send)) {
    ctx_.close(c, close_reason::overload);  // mid-response: nothing better to send
  }
}

void reactor::cut_off() {
  cut_off_.store(true);
  wake();
}

void reactor::tick(std::int64_t now) {
  last_tick_ms_ = now;
  const bool draining = draining_.load(std::memory_order_relaxed);
  const bool cut_off = cut_off_.load(std::memory_order_relaxed);
  auto& table = ctx_.connections;
  for (std::size_t i = 0, n = table.allocated(); i < n; ++i) {
    connection& c = table.at(i);
    // Taken only if it is still parked as seen, so a connection a stage took back (and perhaps
    // closed, its slot reused) meanwhile is left alone. Idle readers go first when draining.
    const conn_state was = table.take_parked(c, [&](conn_word w) {
      return cut_off || (draining && w.state() == conn_state::parked_read) ||
             c.deadline_ms.load(std::memory_order_relaxed) <= now;
    });
    if (was == conn_state::free) continue;
    // A stalled send, or a request head begun and not finished in time, was refused for taking
    // too long; an idle keep-alive connection (or a lingering close) simply ended.
    if (!draining && was == conn_state::parked_write) {
      ctx_.pipe.count_rejected(stage_send, runtime::reject_reason::timeout);
    } else if (!draining && !c.lingering && c.in_end > c.in_start) {
      ctx_.pipe.count_rejected(stage_read_parse, runtime::reject_reason::timeout);
    }
    ctx_.close(c, draining ? close_reason::shutdown : close_reason::timeout);
  }
  // A share lowered under overload comes back once weir stops reaching its limit; and a gate
  // closed with accepting not paused, nothing queued and room is opened (no accept round would
  // come to open it: a listener with nothing queued is never readable).
  if (!draining && syn_gate_threshold_.load(std::memory_order_relaxed) != syn_gate_off) {
    const bool stranded = syn_gate_threshold_.load(std::memory_order_relaxed) == 0 &&
                          !ctx_.accepts_paused_for_load.load(std::memory_order_acquire) &&
                          listen_queue_length(listen_fd_) == 0 && ctx_.accept_room() > 0;
    const std::lock_guard lock(syn_gate_mutex_);
    const double share = runtime::syn_gate_tick(syn_gate_settings_, syn_gate_, now);
    const std::uint64_t t = syn_gate_threshold_.load(std::memory_order_relaxed);
    if (t != 0 && t != syn_gate_off) {
      apply_syn_gate(share_threshold(share));
    } else if (t == 0 && stranded) {
      spdlog::debug("accept: the tick opened a SYN gate left closed with nothing queued");
      open_syn_gate_locked();
    }
  }
  // Accepts paused for load resume when a request ends; this catches room freed otherwise (the
  // connections waiting for read_parse turned out idle).
  if (!draining && ctx_.accepts_paused_for_load.load(std::memory_order_relaxed) &&
      ctx_.accept_room() > 0 && ctx_.accepts_paused_for_load.exchange(false)) {
    resume_listener();
  }
  if (!draining && listener_paused_.load(std::memory_order_acquire) &&
      now >= listener_resume_ms_.load(std::memory_order_relaxed) &&
      table.in_use() < ctx_.live.max_connections.load(std::memory_order_relaxed)) {
    bool expected = true;
    if (listener_paused_.compare_exchange_strong(expected, false)) arm_listener();
  }
}

}  // namespace weir
