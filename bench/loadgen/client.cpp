#include "bench/loadgen/client.hpp"

#include <fcntl.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <system_error>

#include "bench/loadgen/http_response.hpp"

namespace weir::loadgen {

namespace {

constexpr std::uint64_t ns_per_s = 1'000'000'000;
constexpr std::uint32_t timer_id = ~std::uint32_t{0};
constexpr int max_events = 256;
constexpr std::size_t read_buffer_bytes = 256 * 1024;
constexpr int max_batch = 4096;  // due requests sent before looking at the sockets again

std::uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * ns_per_s + static_cast<std::uint64_t>(ts.tv_nsec);
}

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto sec = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec * 1e-6; };
  return sec(u.ru_utime) + sec(u.ru_stime);
}

[[noreturn]] void throw_errno(const char* what) {
  throw std::system_error(errno, std::generic_category(), what);
}

struct request_slot {
  std::uint64_t intended = 0;
  std::uint64_t deadline = 0;
  std::uint32_t entry = 0;
  bool measured = false;
};

// A FIFO of due requests that grows by doubling and never shrinks: no allocation per request.
class backlog_queue {
 public:
  bool empty() const { return size_ == 0; }
  std::size_t size() const { return size_; }
  const request_slot& front() const { return ring_[head_]; }
  void pop() {
    head_ = (head_ + 1) & (ring_.size() - 1);
    --size_;
  }
  void push(const request_slot& r) {
    if (size_ == ring_.size()) grow();
    ring_[(head_ + size_) & (ring_.size() - 1)] = r;
    ++size_;
  }

 private:
  void grow() {
    std::vector<request_slot> bigger(std::max<std::size_t>(1024, ring_.size() * 2));
    for (std::size_t i = 0; i < size_; ++i) bigger[i] = ring_[(head_ + i) & (ring_.size() - 1)];
    ring_.swap(bigger);
    head_ = 0;
  }
  std::vector<request_slot> ring_;
  std::size_t head_ = 0, size_ = 0;
};

enum class phase { free, connecting, idle, writing, reading };

struct connection {
  int fd = -1;
  phase state = phase::free;
  request_slot req;
  std::uint64_t sent_at = 0;
  std::size_t written = 0;
  const std::string* bytes = nullptr;
  int session_left = 0;  // users: requests still to send on this session, this one included
  std::size_t idle_pos = 0;
  response_parser parser;
};

enum class outcome { ok, unavailable, other, connect_error, read_error, timeout, unsent };

std::uint64_t seconds_ns(double s) {
  return static_cast<std::uint64_t>(s * 1e9);
}

// The arrival rate over the run: the warm-up at the first rate, then the profile's pieces (or
// `rate` throughout); users sessions arrive at rate / session.
std::vector<rate_step> arrival_steps(const run_config& c) {
  const double per = c.model == client_model::users ? c.session : 1;
  if (c.profile.empty()) return {{c.rate / per}};
  std::vector<rate_step> steps;
  double end_s = c.warmup_s;
  if (c.warmup_s > 0) steps.push_back({c.profile.front().first / per, seconds_ns(end_s)});
  for (const auto& [rate, secs] : c.profile) {
    end_s += secs;
    steps.push_back({rate / per, seconds_ns(end_s)});
  }
  return steps;
}

class engine {
 public:
  engine(const run_config& c, run_result& r)
      : cfg_(c),
        res_(r),
        sched_(c.arrival, arrival_steps(c), c.seed),
        pick_rng_(c.seed ^ 0x5bd1e995u),
        conns_(static_cast<std::size_t>(c.connections)),
        buf_(read_buffer_bytes) {
    for (const mix_entry& e : c.requests.entries()) {
      keep_alive_req_.push_back(format_request(e.path, c.host, false));
      close_req_.push_back(format_request(e.path, c.host, true));
    }
    free_.reserve(conns_.size());
    for (std::size_t i = conns_.size(); i-- > 0;) free_.push_back(static_cast<std::uint32_t>(i));
    idle_.reserve(conns_.size());
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    if (ep_ < 0) throw_errno("epoll_create1");
    timer_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (timer_ < 0) throw_errno("timerfd_create");
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = timer_id;
    if (epoll_ctl(ep_, EPOLL_CTL_ADD, timer_, &ev) < 0) throw_errno("epoll_ctl(timerfd)");
  }
  ~engine() {
    for (connection& c : conns_)
      if (c.fd >= 0) ::close(c.fd);
    ::close(timer_);
    ::close(ep_);
  }
  engine(const engine&) = delete;
  engine& operator=(const engine&) = delete;

  void run();

 private:
  // Scheduling.
  void dispatch(std::uint64_t intended);
  // measured: a session's later requests count if its first did.
  request_slot make_request(std::uint64_t intended, bool measured);
  void record_lag(const request_slot& r);

  // Connections.
  void open(std::uint32_t id, const request_slot& r);
  void start_request(connection& c, const request_slot& r);
  void write_request(connection& c);
  void on_event(std::uint32_t id, std::uint32_t events);
  void on_readable(connection& c, bool hangup);
  void record_response(connection& c);
  void response_done(connection& c);
  void close_conn(connection& c);
  void after_close();
  void make_idle(connection& c);
  void unidle(connection& c);
  void sweep();

  // Accounting.
  void finish(const request_slot& r, outcome o);
  /// A request on `c` past its deadline: a timeout, counted by the phase it was in.
  void time_out(const connection& c);
  slot_stats* slot_of_now();
  void roll_slot(std::size_t s);
  void close_slot();
  void arm_timer(std::uint64_t at);

  std::uint32_t id_of(const connection& c) const {
    return static_cast<std::uint32_t>(&c - conns_.data());
  }

  const run_config& cfg_;
  run_result& res_;
  schedule sched_;
  rng pick_rng_;
  std::vector<connection> conns_;
  std::vector<std::uint32_t> free_;  // connection slots without a socket
  std::vector<std::uint32_t> idle_;  // pool: open connections waiting for a request
  std::vector<std::string> keep_alive_req_, close_req_;
  std::vector<char> buf_;
  backlog_queue backlog_;
  int ep_ = -1, timer_ = -1;
  int open_ = 0;            // sockets open
  std::uint64_t busy_ = 0;  // connections carrying a request
  std::uint64_t now_ = 0, start_ = 0, measure_start_ = 0, measure_end_ = 0;
  std::uint64_t timeout_ns_ = 0, sweep_ns_ = 0, next_sweep_ = 0, armed_ = 0;
  std::uint64_t slot_ns_ = 0;
  int next_source_ = 0;  // the next connection's source address: 127.0.0.1 + this
  std::size_t cur_slot_ = 0;
  // The current slot's latencies (all intended, 2xx intended, 2xx sent), reset per slot: 32 KiB
  // and a 4096-bucket scan each per slot, nothing per response beyond a record.
  histogram slot_hist_, slot_ok_hist_, slot_ok_sent_hist_;
};

request_slot engine::make_request(std::uint64_t intended, bool measured) {
  request_slot r;
  r.intended = intended;
  r.deadline = intended + timeout_ns_;
  r.entry = static_cast<std::uint32_t>(cfg_.requests.pick(pick_rng_.uniform()));
  r.measured = measured;
  if (r.measured) ++res_.scheduled;
  return r;
}

void engine::record_lag(const request_slot& r) {
  if (r.measured) res_.dispatch_lag.record(now_ - r.intended);
}

void engine::dispatch(std::uint64_t intended) {
  const request_slot r =
      make_request(intended, intended >= measure_start_ && intended < measure_end_);
  if (cfg_.model == client_model::pool) {
    if (!idle_.empty()) {
      connection& c = conns_[idle_.back()];
      unidle(c);
      record_lag(r);
      start_request(c, r);
    } else if (!free_.empty()) {
      const std::uint32_t id = free_.back();
      free_.pop_back();
      record_lag(r);
      open(id, r);
    } else {
      backlog_.push(r);
      res_.max_backlog = std::max<std::uint64_t>(res_.max_backlog, backlog_.size());
    }
    return;
  }
  if (free_.empty()) {
    finish(r, outcome::unsent);
    return;
  }
  const std::uint32_t id = free_.back();
  free_.pop_back();
  conns_[id].session_left = cfg_.session;
  record_lag(r);
  open(id, r);
}

void engine::open(std::uint32_t id, const request_slot& r) {
  connection& c = conns_[id];
  c.req = r;
  c.state = phase::connecting;
  ++busy_;
  ++res_.connects;
  c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c.fd < 0) {
    finish(r, outcome::connect_error);
    close_conn(c);
    return;
  }
  ++open_;
  res_.max_open = std::max(res_.max_open, open_);
  const int one = 1;
  setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (cfg_.sources > 1) {
    // The port is still chosen at connect, for this address's own ephemeral range.
    setsockopt(c.fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    sockaddr_in from{};
    from.sin_family = AF_INET;
    from.sin_addr.s_addr = htonl(0x7f000001u + static_cast<std::uint32_t>(next_source_));
    next_source_ = (next_source_ + 1) % cfg_.sources;
    if (::bind(c.fd, reinterpret_cast<const sockaddr*>(&from), sizeof from) < 0) {
      finish(r, outcome::connect_error);
      close_conn(c);
      return;
    }
  }
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.u32 = id;
  if (epoll_ctl(ep_, EPOLL_CTL_ADD, c.fd, &ev) < 0) throw_errno("epoll_ctl(ADD)");
  const int rc =
      ::connect(c.fd, reinterpret_cast<const sockaddr*>(&cfg_.target), sizeof cfg_.target);
  if (rc == 0) {
    start_request(c, r);
  } else if (errno != EINPROGRESS) {
    finish(r, outcome::connect_error);
    close_conn(c);
  }
}

void engine::start_request(connection& c, const request_slot& r) {
  if (c.state == phase::idle || c.state == phase::free) ++busy_;
  c.req = r;
  c.state = phase::writing;
  c.written = 0;
  const bool last = cfg_.model == client_model::users && c.session_left <= 1;
  c.bytes = last ? &close_req_[r.entry] : &keep_alive_req_[r.entry];
  c.parser.reset();
  write_request(c);
}

void engine::write_request(connection& c) {
  while (c.written < c.bytes->size()) {
    const ssize_t n =
        ::send(c.fd, c.bytes->data() + c.written, c.bytes->size() - c.written, MSG_NOSIGNAL);
    if (n > 0) {
      c.written += static_cast<std::size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return;  // EPOLLOUT resumes
    } else {
      finish(c.req, outcome::read_error);
      close_conn(c);
      return;
    }
  }
  c.state = phase::reading;
  c.sent_at = now_ns();
  if (c.req.measured) {
    ++res_.sent;
    if (slot_stats* s = slot_of_now()) ++s->sent;
  }
}

void engine::on_event(std::uint32_t id, std::uint32_t events) {
  connection& c = conns_[id];
  if (c.state == phase::connecting) {
    if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
    if (err != 0) {
      finish(c.req, outcome::connect_error);
      close_conn(c);
      after_close();
      return;
    }
    start_request(c, c.req);
    if (c.state == phase::free) {
      after_close();
      return;
    }
  } else if (c.state == phase::writing && (events & EPOLLOUT)) {
    write_request(c);
    if (c.state == phase::free) {
      after_close();
      return;
    }
  }
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
    on_readable(c, (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0);
    if (c.state == phase::free) after_close();
  }
}

void engine::on_readable(connection& c, bool hangup) {
  while (c.state != phase::free) {
    const ssize_t n = ::read(c.fd, buf_.data(), buf_.size());
    if (n > 0) {
      if (c.state != phase::reading) {  // bytes nobody asked for: not a server to keep using
        if (c.state == phase::writing) finish(c.req, outcome::read_error);
        close_conn(c);
        return;
      }
      std::size_t off = 0;
      const auto len = static_cast<std::size_t>(n);
      std::size_t consumed = 0;
      const auto r = c.parser.feed(buf_.data(), len, consumed);
      off += consumed;
      if (r == response_parser::result::error) {
        finish(c.req, outcome::read_error);
        close_conn(c);
        return;
      }
      if (r == response_parser::result::done) {
        response_done(c);
        if (off < len && c.state != phase::free) {  // more than one response: no pipelining
          close_conn(c);
          return;
        }
      }
      // A short read drained the socket; new data or a close will raise a new edge.
      if (len < buf_.size() && !hangup) return;
    } else if (n == 0) {
      if (c.state == phase::reading) {
        if (c.parser.finish_at_close() == response_parser::result::done) {
          record_response(c);
        } else {
          finish(c.req, outcome::read_error);
        }
      } else if (c.state == phase::writing) {
        finish(c.req, outcome::read_error);
      }
      close_conn(c);
      return;
    } else if (errno == EINTR) {
      continue;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      return;
    } else {
      if (c.state == phase::reading || c.state == phase::writing)
        finish(c.req, outcome::read_error);
      close_conn(c);
      return;
    }
  }
}

void engine::record_response(connection& c) {
  const int status = c.parser.status();
  const outcome o = status >= 200 && status < 300 ? outcome::ok
                    : status == 503               ? outcome::unavailable
                                                  : outcome::other;
  if (c.req.measured) {
    const std::uint64_t now = now_ns();
    now_ = std::max(now_, now);
    const std::uint64_t intended = now - c.req.intended, sent = now - c.sent_at;
    res_.latency.record(intended);
    res_.service_latency.record(sent);
    if (o == outcome::ok) {
      res_.ok_latency.record(intended);
      res_.ok_service_latency.record(sent);
    } else if (o == outcome::unavailable) {
      res_.unavailable_latency.record(intended);
      res_.unavailable_service_latency.record(sent);
    }
    res_.body_bytes += c.parser.body_bytes();
    if (slot_of_now()) {
      slot_hist_.record(intended);
      if (o == outcome::ok) {
        slot_ok_hist_.record(intended);
        slot_ok_sent_hist_.record(sent);
      }
    }
  }
  finish(c.req, o);
  c.state = phase::idle;  // between requests; the caller decides what comes next
  --busy_;
}

void engine::response_done(connection& c) {
  record_response(c);
  const bool keep = c.parser.keep_alive();
  if (cfg_.model == client_model::pool) {
    if (!keep) {
      close_conn(c);
      return;
    }
    if (!backlog_.empty()) {
      const request_slot r = backlog_.front();
      backlog_.pop();
      start_request(c, r);
    } else {
      make_idle(c);
    }
    return;
  }
  // users: the session goes on until its last request, on a new connection if the server
  // closed this one.
  if (--c.session_left <= 0) {
    close_conn(c);
    return;
  }
  now_ = std::max(now_, now_ns());
  const request_slot r = make_request(now_, c.req.measured);
  if (keep) {
    start_request(c, r);
    return;
  }
  const int left = c.session_left;
  const std::uint32_t id = id_of(c);
  close_conn(c);
  free_.pop_back();  // close_conn returned this slot; the session keeps it
  conns_[id].session_left = left;
  open(id, r);
}

void engine::close_conn(connection& c) {
  if (c.state == phase::idle && c.idle_pos < idle_.size() && idle_[c.idle_pos] == id_of(c))
    unidle(c);
  if (c.state == phase::connecting || c.state == phase::writing || c.state == phase::reading)
    --busy_;
  if (c.fd >= 0) {
    ::close(c.fd);  // also leaves the epoll set
    c.fd = -1;
    --open_;
  }
  c.state = phase::free;
  c.session_left = 0;
  free_.push_back(id_of(c));
}

// A pool connection went away: the backlog's head gets a new one.
void engine::after_close() {
  if (cfg_.model != client_model::pool) return;
  while (!backlog_.empty() && !free_.empty()) {
    const request_slot r = backlog_.front();
    backlog_.pop();
    const std::uint32_t id = free_.back();
    free_.pop_back();
    open(id, r);
  }
}

void engine::make_idle(connection& c) {
  c.state = phase::idle;
  c.idle_pos = idle_.size();
  idle_.push_back(id_of(c));
}

void engine::unidle(connection& c) {
  const std::uint32_t last = idle_.back();
  idle_[c.idle_pos] = last;
  conns_[last].idle_pos = c.idle_pos;
  idle_.pop_back();
  c.idle_pos = ~std::size_t{0};
}

void engine::time_out(const connection& c) {
  if (c.req.measured && c.state == phase::connecting) ++res_.timeouts_connecting;
  if (c.req.measured && c.state == phase::reading) ++res_.timeouts_reading;
  finish(c.req, outcome::timeout);
}

void engine::sweep() {
  while (!backlog_.empty() && backlog_.front().deadline <= now_) {
    const request_slot r = backlog_.front();
    backlog_.pop();
    if (r.measured) ++res_.timeouts_in_backlog;
    finish(r, outcome::timeout);
  }
  bool closed = false;
  for (connection& c : conns_) {
    if ((c.state == phase::connecting || c.state == phase::writing || c.state == phase::reading) &&
        c.req.deadline <= now_) {
      time_out(c);
      close_conn(c);
      closed = true;
    }
  }
  if (closed) after_close();
}

void engine::finish(const request_slot& r, outcome o) {
  // Goodput is what the server delivered while measured: any 2xx completed inside the window,
  // whichever request it answers (past capacity the window's own requests drain long after it).
  if (o == outcome::ok && now_ >= measure_start_ && now_ < measure_end_) ++res_.ok_in_window;
  if (!r.measured) return;
  slot_stats* s = slot_of_now();
  switch (o) {
    case outcome::ok:
      ++res_.ok;
      if (s) ++s->ok;
      return;
    case outcome::unavailable:
      ++res_.unavailable;
      if (s) ++s->unavailable;
      return;
    case outcome::other:
      ++res_.other;
      if (s) ++s->other;
      return;
    case outcome::connect_error:
      ++res_.connect_errors;
      break;
    case outcome::read_error:
      ++res_.read_errors;
      break;
    case outcome::timeout:
      ++res_.timeouts;
      break;
    case outcome::unsent:
      ++res_.unsent;
      if (s) ++s->unsent;
      return;
  }
  if (s) ++s->errors;
}

// The series entry for now_ (nullptr before the measured window), closing finished slots.
slot_stats* engine::slot_of_now() {
  if (now_ < measure_start_) return nullptr;
  const std::size_t s = static_cast<std::size_t>((now_ - measure_start_) / slot_ns_);
  if (s >= res_.series.size()) roll_slot(s);
  return &res_.series[s];
}

void engine::roll_slot(std::size_t s) {
  close_slot();
  slot_hist_.reset();
  slot_ok_hist_.reset();
  slot_ok_sent_hist_.reset();
  res_.series.resize(s + 1);
  cur_slot_ = s;
}

void engine::close_slot() {
  if (res_.series.empty()) return;
  slot_stats& s = res_.series[cur_slot_];
  s.p99_ns = slot_hist_.quantile(0.99);
  s.p99_ok_ns = slot_ok_hist_.quantile(0.99);
  s.p99_ok_sent_ns = slot_ok_sent_hist_.quantile(0.99);
}

void engine::arm_timer(std::uint64_t at) {
  if (at == armed_) return;
  armed_ = at;
  itimerspec its{};
  its.it_value.tv_sec = static_cast<time_t>(at / ns_per_s);
  its.it_value.tv_nsec = static_cast<long>(at % ns_per_s);
  if (timerfd_settime(timer_, TFD_TIMER_ABSTIME, &its, nullptr) < 0) throw_errno("timerfd_settime");
}

void engine::run() {
  timeout_ns_ = static_cast<std::uint64_t>(cfg_.timeout_s * 1e9);
  sweep_ns_ = std::clamp<std::uint64_t>(timeout_ns_ / 10, 1'000'000, 100'000'000);
  slot_ns_ = static_cast<std::uint64_t>(cfg_.series_ms) * 1'000'000;
  start_ = now_ns() + 1'000'000;  // a moment to set up before the first arrival
  measure_start_ = start_ + static_cast<std::uint64_t>(cfg_.warmup_s * 1e9);
  measure_end_ = measure_start_ + static_cast<std::uint64_t>(cfg_.duration_s * 1e9);
  // Sessions run on after their arrival; every request gives up at its deadline.
  const std::uint64_t hard_stop =
      measure_end_ + static_cast<std::uint64_t>(cfg_.session) * timeout_ns_ + ns_per_s;
  res_.measured_s = cfg_.duration_s;
  next_sweep_ = start_ + sweep_ns_;

  std::uint64_t next_arrival = start_ + sched_.next();
  bool measuring = false, measured = false;
  double cpu_at_start = 0;
  epoll_event events[max_events];
  while (true) {
    now_ = now_ns();
    if (!measuring && now_ >= measure_start_) {
      measuring = true;
      cpu_at_start = cpu_seconds();
    }
    if (measuring && !measured && now_ >= measure_end_) {
      measured = true;
      res_.cpu_s = cpu_seconds() - cpu_at_start;
      res_.cpu_share = res_.cpu_s / (static_cast<double>(now_ - measure_start_) / 1e9);
    }
    int batch = 0;
    while (next_arrival <= now_ && next_arrival < measure_end_ && batch++ < max_batch) {
      dispatch(next_arrival);
      next_arrival = start_ + sched_.next();
    }
    if (now_ >= next_sweep_) {
      sweep();
      next_sweep_ = now_ + sweep_ns_;
    }
    const bool scheduling = next_arrival < measure_end_;
    if (!scheduling && measured && busy_ == 0 && backlog_.empty()) break;
    if (now_ >= hard_stop) break;
    std::uint64_t wake = std::min(next_sweep_, hard_stop);
    if (scheduling) wake = std::min(wake, next_arrival);
    if (!measured) wake = std::min(wake, measuring ? measure_end_ : measure_start_);
    int timeout_ms = -1;
    if (wake <= now_) {
      timeout_ms = 0;  // more is due already: look at the sockets without blocking
    } else {
      arm_timer(wake);
    }
    const int n = epoll_wait(ep_, events, max_events, timeout_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("epoll_wait");
    }
    now_ = now_ns();
    for (int i = 0; i < n; ++i) {
      if (events[i].data.u32 == timer_id) {
        std::uint64_t ticks;
        [[maybe_unused]] const ssize_t r = ::read(timer_, &ticks, sizeof ticks);
        armed_ = 0;
        continue;
      }
      on_event(events[i].data.u32, events[i].events);
    }
  }
  // Whatever is still out at the hard stop has waited past its deadline.
  now_ = std::max(now_, now_ns());
  while (!backlog_.empty()) {
    finish(backlog_.front(), outcome::timeout);
    if (backlog_.front().measured) ++res_.timeouts_in_backlog;
    backlog_.pop();
  }
  for (connection& c : conns_)
    if (c.state == phase::connecting || c.state == phase::writing || c.state == phase::reading)
      time_out(c);
  close_slot();

  const double mean_lag_ms = res_.dispatch_lag.mean() / 1e6;
  char line[256];
  if (mean_lag_ms > cfg_.max_lag_ms) {
    std::snprintf(line, sizeof line,
                  "the generator fell behind its schedule: mean dispatch lag %.3f ms > %.3f ms "
                  "(--max-lag-ms)",
                  mean_lag_ms, cfg_.max_lag_ms);
    res_.warnings.emplace_back(line);
  }
  if (res_.cpu_share > cfg_.max_cpu_share) {
    std::snprintf(line, sizeof line,
                  "the generator's CPU was saturated: %.0f %% of one core during the measured "
                  "window (> %.0f %%)",
                  res_.cpu_share * 100, cfg_.max_cpu_share * 100);
    res_.warnings.emplace_back(line);
  }
}

}  // namespace

std::unique_ptr<run_result> run_load(const run_config& config) {
  auto result = std::make_unique<run_result>();
  engine e(config, *result);
  e.run();
  return result;
}

}  // namespace weir::loadgen
