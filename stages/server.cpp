#include "stages/server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <map>
#include <system_error>
#include <thread>

#include <spdlog/spdlog.h>

#include "runtime/version.hpp"
#include "stages/context.hpp"
#include "stages/reactor.hpp"
#include "stages/stages.hpp"

namespace weir {
namespace {

/// Raises the descriptor limit to the hard limit: every connection and open large file needs one.
void raise_fd_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
}

int open_listener(const std::string& listen, int backlog) {
  const auto addr = parse_listen(listen);
  if (!addr) throw config_error("config: listen: \"" + listen + "\" is not ADDR:PORT");
  sockaddr_storage ss{};
  socklen_t len = 0;
  const bool v6 = addr->host.find(':') != std::string::npos;
  if (v6) {
    auto& sa = reinterpret_cast<sockaddr_in6&>(ss);
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons(addr->port);
    if (::inet_pton(AF_INET6, addr->host.c_str(), &sa.sin6_addr) != 1)
      throw config_error("config: listen: \"" + listen + "\" has no valid IPv6 address");
    len = sizeof sa;
  } else {
    auto& sa = reinterpret_cast<sockaddr_in&>(ss);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(addr->port);
    if (::inet_pton(AF_INET, addr->host.c_str(), &sa.sin_addr) != 1)
      throw config_error("config: listen: \"" + listen + "\" has no valid IPv4 address");
    len = sizeof sa;
  }
  const int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "socket");
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  // Receive timestamps, inherited by accepted sockets: admission control times a new
  // connection's first request from its bytes' arrival (read_parse). Best effort.
  ::setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
  // Inherited by every accepted socket too (Linux clones the listener's TCP options): no
  // setsockopt per connection. The send low-water mark is set the same way, by the accept stage.
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd, backlog) != 0) {
    const int err = errno;
    ::close(fd);
    throw std::system_error(err, std::generic_category(), "listen on " + listen);
  }
  return fd;
}

}  // namespace

constexpr std::int64_t linger_ms = 2000;

namespace {

cache::policy cache_replacement(const config& c) {
  return c.cache_replacement == cache_policy::lfu ? cache::policy::lfu : cache::policy::lru;
}

}  // namespace

// --- live_settings ----------------------------------------------------------------------------

live_settings::live_settings(const config& c) {
  store(c);
}

void live_settings::store(const config& c) {
  constexpr auto relaxed = std::memory_order_relaxed;
  header_timeout_ms.store(c.header_timeout.count(), relaxed);
  keepalive_timeout_ms.store(c.keepalive_timeout.count(), relaxed);
  send_timeout_ms.store(c.send_timeout.count(), relaxed);
  cache_revalidate_ms.store(c.cache_revalidate.count(), relaxed);
  cache_max_file_bytes.store(c.cache_max_file_bytes, relaxed);
  max_request_line.store(c.max_request_line, relaxed);
  max_header_bytes.store(c.max_header_bytes, relaxed);
  max_headers.store(c.max_headers, relaxed);
  send_lowat.store(c.send_lowat, relaxed);
  max_connections.store(c.max_connections, relaxed);
  retry_after_seconds.store(c.retry_after_seconds, relaxed);
}

// --- server_context ---------------------------------------------------------------------------

server_context::server_context(config c)
    : cfg(std::move(c)),
      live(cfg),
      resolver(cfg.root, cfg.follow_symlinks_outside_root),
      cache(cfg.cache_max_bytes, cache_replacement(cfg)),
      connections(cfg.max_connections),
      log(cfg.access_log) {}

std::int64_t server_context::now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

std::int64_t server_context::now_ns() {
  using namespace std::chrono;
  return duration_cast<nanoseconds>(steady_clock::now().time_since_epoch()).count();
}

void server_context::start(connection& c) {
  c.idle_since_ms = now_ms();
  // Registered while the accept stage owns it: an edge that comes meanwhile is recorded in the
  // connection, for whoever owns it next.
  if (!loop->watch(c.fd, connection_table::handle(c))) {
    close(c, close_reason::error);
    return;
  }
  // Straight to read_parse: served by the event loop after this accept round when it runs the
  // round on an idle server (reactor::accept_here), else through read_parse's queue, which now
  // counts it (accept_room). A new connection's request is usually there already; if not,
  // read_parse parks it until it comes (or the header timeout).
  if (reactor::keep_for_here(c)) return;
  if (!pipe.dispatch(c, stage_read_parse)) shed(c, shed_class::connection, shed_reason::queue_full);
}

bool server_context::park(connection& c, bool for_write, std::int64_t deadline) {
  return c.park(for_write ? conn_state::parked_write : conn_state::parked_read,
                for_write ? wakes_writer : wakes_reader, deadline);
}

void server_context::close(connection& c, close_reason why) {
  const std::uint64_t cut_off_bytes = c.bytes_sent;  // of a response cut off midway
  const bool in_request = c.in_request;
  release_admission(c);  // not answered: no latency sample
  if (c.fd >= 0) ::close(c.fd);
  connections.release(c);
  // Counted once it no longer counts as open: a scrape that sees it closed sees it gone.
  server_stats_block& st = stats.local();
  st.closed[static_cast<std::size_t>(why)].add();
  st.sent_bytes.add(cut_off_bytes);
  if (in_request) st.requests_ended.add();
  resume_accepts();
}

namespace {

constexpr std::string_view refusal_head = "HTTP/1.1 503 Service Unavailable\r\nServer: weir/";
constexpr std::string_view refusal_retry = "\r\nRetry-After: ";
constexpr std::string_view refusal_length = "\r\nContent-Length: 0\r\n";
constexpr std::string_view refusal_close = "Connection: close\r\n";
constexpr std::string_view refusal_keep = "Connection: keep-alive\r\n";  // to HTTP/1.0
constexpr std::size_t refusal_max = refusal_head.size() + weir_version.size() +
                                    refusal_retry.size() + 10 + refusal_length.size() +
                                    std::max(refusal_close.size(), refusal_keep.size()) + 2;

/// The head of a 503 that refuses work: Retry-After (it changes live), no body; formatted on the
/// stack, so a refusal takes no lock and allocates nothing. Returns its length.
std::size_t format_refusal(char (&buf)[refusal_max], std::uint32_t retry_after,
                           std::string_view connection) {
  char* p = std::copy(refusal_head.begin(), refusal_head.end(), buf);
  p = std::copy(weir_version.begin(), weir_version.end(), p);
  p = std::copy(refusal_retry.begin(), refusal_retry.end(), p);
  p = std::to_chars(p, p + 10, retry_after).ptr;
  p = std::copy(refusal_length.begin(), refusal_length.end(), p);
  p = std::copy(connection.begin(), connection.end(), p);
  *p++ = '\r';
  *p++ = '\n';
  return static_cast<std::size_t>(p - buf);
}

}  // namespace

void server_context::count_shed(shed_class cls, shed_reason why, bool kept) {
  server_stats_block& st = stats.local();
  st.shed[static_cast<std::size_t>(cls)][static_cast<std::size_t>(why)].add();
  if (kept) st.shed_kept_alive.add();
}

void server_context::shed(connection& c, shed_class cls, shed_reason why) {
  char buf[refusal_max];
  const std::size_t len =
      format_refusal(buf, live.retry_after_seconds.load(std::memory_order_relaxed), refusal_close);
  // Best effort: the socket buffer of a connection between requests has room for this.
  const ssize_t n = ::send(c.fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
  count_shed(cls, why, false);
  server_stats_block& st = stats.local();
  st.responses[c.in_request ? c.req_method : static_cast<std::size_t>(method_label::unknown)]
              [status_index(503)]
                  .add();
  if (n > 0) st.sent_bytes.add(static_cast<std::uint64_t>(n));
  close(c, close_reason::overload);
}

void server_context::release_admission(connection& c) {
  if (c.admitted == admission_held::none) return;
  admission.release(held_class(c.admitted));
  c.admitted = admission_held::none;
}

namespace {

constexpr std::size_t accept_resume_batch = 16;

}  // namespace

std::size_t server_context::accept_room() const {
  const runtime::pipeline::queue_load q = pipe.load_of(stage_read_parse);
  const std::size_t half = q.capacity / 2;
  std::size_t room = q.depth < half ? half - q.depth : 0;
  const std::size_t limit = admission.limit(runtime::admission_class::request);
  if (limit != runtime::admission_gate::unlimited) {
    const std::size_t busy = admission.in_flight(runtime::admission_class::request) + q.depth;
    room = std::min(room, busy < limit ? limit - busy : 0);
  }
  return room;
}

std::uint64_t server_context::accepted_total() const {
  std::uint64_t n = 0;
  stats.for_each([&](const server_stats_block& b) { n += b.accepted.get(); });
  return n;
}

bool server_context::at_request_limit() const {
  const std::size_t limit = admission.limit(runtime::admission_class::request);
  if (limit == runtime::admission_gate::unlimited) return false;
  const std::size_t depth = pipe.load_of(stage_read_parse).depth;
  return admission.in_flight(runtime::admission_class::request) + depth >= limit;
}

std::size_t server_context::accept_resume_room() const {
  const std::size_t limit = admission.limit(runtime::admission_class::request);
  const std::size_t bound = limit != runtime::admission_gate::unlimited
                                ? limit
                                : pipe.load_of(stage_read_parse).capacity / 2;
  return std::clamp<std::size_t>(bound / 4, 1, accept_resume_batch);
}

void server_context::resume_accepts_slow() {
  if (accept_room() < accept_resume_room()) return;
  if (accepts_paused_for_load.exchange(false, std::memory_order_acq_rel)) loop->resume_listener();
}

runtime::stage_index server_context::admit(connection& c) {
  if (admission.try_admit(runtime::admission_class::request)) {
    c.admitted = admission_held::request;
    c.admitted_epoch = admission.epoch(runtime::admission_class::request);
    return stage_cache_lookup;
  }
  return refuse(c, shed_class::request, shed_reason::limit);
}

bool server_context::admit_to_disk(connection& c) {
  if (c.admitted == admission_held::request) {
    if (!admission.transfer(runtime::admission_class::request, runtime::admission_class::miss))
      return false;
  } else if (c.admitted == admission_held::none) {
    if (!admission.try_admit(runtime::admission_class::miss)) return false;
  }
  c.admitted = admission_held::miss;
  c.admitted_epoch = admission.epoch(runtime::admission_class::miss);
  return true;
}

runtime::stage_index server_context::refuse(connection& c, shed_class cls, shed_reason why) {
  release_admission(c);  // a refusal is not a latency sample
  if (!c.keep_alive || c.close_after || draining.load(std::memory_order_relaxed)) {
    shed(c, cls, why);  // the connection ends after this response anyway
    return runtime::stage_done;
  }
  char buf[refusal_max];
  const std::size_t len =
      format_refusal(buf, live.retry_after_seconds.load(std::memory_order_relaxed),
                     c.ex().req.version_minor == 0 ? refusal_keep : std::string_view{});
  count_shed(cls, why, true);
  c.status = 503;
  c.body = nullptr;
  c.body_left = 0;
  c.file_fd = -1;
  c.file_left = 0;
  ssize_t n;
  do {
    n = ::send(c.fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(len)) {  // the usual case: straight out, no hop to send
    c.bytes_sent += len;
    return finish_response(c);
  }
  if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
    close(c, close_reason::client);
    return runtime::stage_done;
  }
  // The socket buffer is full (a client that does not read): the send stage finishes it.
  const std::size_t sent = n > 0 ? static_cast<std::size_t>(n) : 0;
  c.bytes_sent += sent;
  c.ex().out_head.assign(buf + sent, len - sent);
  c.out_head_sent = 0;
  return stage_send;
}

void server_context::begin_request(connection& c, method_label m) {
  c.in_request = true;
  c.req_method = static_cast<std::uint8_t>(m);
  stats.local().requests_begun.add();
}

server_snapshot server_context::snapshot() const {
  server_snapshot s;
  s.stages = pipe.stage_snapshots();
  s.groups = pipe.group_snapshots();
  std::uint64_t begun = 0, ended = 0;
  stats.for_each([&](const server_stats_block& b) {
    for (std::size_t m = 0; m < method_count; ++m) {
      for (std::size_t i = 0; i < status_count; ++i) s.responses[m][i] += b.responses[m][i].get();
    }
    b.request_duration.fold_into(s.request_duration);
    s.sent_bytes += b.sent_bytes.get();
    begun += b.requests_begun.get();
    ended += b.requests_ended.get();
    s.connections_accepted += b.accepted.get();
    s.accept_backoffs += b.accept_backoffs.get();
    for (std::size_t k = 0; k < shed_class_count; ++k) {
      for (std::size_t r = 0; r < shed_reason_count; ++r) s.shed[k][r] += b.shed[k][r].get();
    }
    s.shed_kept_alive += b.shed_kept_alive.get();
    for (std::size_t r = 0; r < close_reason_count; ++r)
      s.connections_closed[r] += b.closed[r].get();
  });
  // Blocks are read one after another while requests move on: never report a negative.
  s.requests_in_flight = begun > ended ? begun - ended : 0;
  s.connections_open = connections.in_use();
  s.connections_max = live.max_connections.load(std::memory_order_relaxed);
  if (loop != nullptr) {
    s.syn_gate_share = loop->syn_gate_share();
    s.syn_gate_closes_limit = loop->syn_gate_closes(syn_gate_close::limit);
    s.syn_gate_closes_queue = loop->syn_gate_closes(syn_gate_close::queue);
  }
  const auto cs = cache.snapshot();
  s.cache = {.hits = cs.hits,
             .misses = cs.misses,
             .insertions = cs.insertions,
             .evictions = cs.evictions,
             .bytes = cs.bytes,
             .entries = cs.entries,
             .capacity_bytes = cache.max_bytes()};
  s.admission = admission.snapshot();
  return s;
}

runtime::stage_index server_context::finish_response(connection& c) {
  if (log.enabled()) log.record(c);
  std::int64_t ended_ns = 0;  // when it was answered, if it was read (one clock read for both)
  {
    // The response count last: whoever sees it counted sees the rest of its figures too.
    server_stats_block& st = stats.local();
    if (c.request_start_ns != 0) {
      const std::int64_t end = now_ns();
      ended_ns = end;
      const std::int64_t took = end - c.request_start_ns;
      const std::uint64_t ns = took > 0 ? static_cast<std::uint64_t>(took) : 0;
      st.request_duration.observe(ns);
      // An admitted request's latency is admission control's signal (refusals hold no place).
      if (c.admitted != admission_held::none) {
        const runtime::admission_class cls = held_class(c.admitted);
        const std::int64_t waited = end - c.arrived_ns;  // from the readiness event
        admission.record(cls, waited > took ? static_cast<std::uint64_t>(waited) : ns,
                         c.admitted_epoch);
        admission.release(cls);
        c.admitted = admission_held::none;
      }
    } else {
      release_admission(c);
    }
    st.sent_bytes.add(c.bytes_sent);
    if (c.in_request) st.requests_ended.add();
    c.in_request = false;
    const std::size_t status = status_index(c.status);
    if (status < status_count) st.responses[c.req_method][status].add();
  }
  resume_accepts();
  ++c.requests;
  // The request head (and its views) are no longer needed.
  c.in_start += c.head_len;
  c.head_len = 0;
  c.request_start_ms = 0;
  c.request_start_ns = 0;
  c.arrived_ns = 0;
  if (c.has_exchange()) c.ex().entry.reset();  // (an idle one is given back below)
  c.bytes_sent = 0;
  if (c.close_after || draining.load(std::memory_order_relaxed)) {
    // Closing with unread input makes the kernel send a reset, which can destroy the response
    // before the client reads it (a pipelined request after an error, an unread body). Like
    // nginx's lingering close, send the FIN and read and drop input for a short while first.
    // With nothing unread, close sends the FIN itself.
    const bool unread_input = c.in_end > c.in_start || c.discard > 0 || c.status >= 400;
    if (!unread_input) {
      close(c, close_reason::done);
      return runtime::stage_done;
    }
    ::shutdown(c.fd, SHUT_WR);
    c.lingering = true;
    c.in_start = c.in_end = 0;
    c.linger_until_ms = now_ms() + linger_ms;
    return stage_read_parse;
  }
  if (c.in_end > c.in_start) return stage_read_parse;  // pipelined: the next head is here
  c.drop_exchange();                                   // idle: the buffers go back until bytes come
  c.idle_since_ms = ended_ns != 0 ? ended_ns / 1'000'000 : now_ms();
  if (park(c, false, c.idle_since_ms + live.keepalive_timeout().count())) return stage_read_parse;
  return runtime::stage_done;
}

// --- server -----------------------------------------------------------------------------------

struct server::impl {
  explicit impl(config cfg)
      : ctx(std::move(cfg)), read_parse(ctx), cache_lookup(ctx), disk_io(ctx), send(ctx) {}

  server_context ctx;
  std::unique_ptr<accept_stage> accept;  // needs the listener, made in start()
  read_parse_stage read_parse;
  cache_lookup_stage cache_lookup;
  disk_io_stage disk_io;
  send_stage send;
  std::unique_ptr<reactor> loop;
  int listen_fd = -1;
  std::uint16_t port = 0;
  bool started = false;
  bool stopped = false;
};

server::server(config cfg) {
  validate(cfg);
  impl_ = std::make_unique<impl>(std::move(cfg));
}

server::~server() {
  stop(std::chrono::milliseconds(0));
}

void server::start() {
  impl_->ctx.pipe.set_timing(impl_->ctx.cfg.metrics_enabled);
  auto& s = *impl_;
  if (s.started) return;
  ::signal(SIGPIPE, SIG_IGN);
  raise_fd_limit();
  const std::size_t backlog = s.ctx.cfg.admission.backlog_max;
  s.listen_fd = open_listener(s.ctx.cfg.listen, static_cast<int>(backlog));
  s.ctx.admission.set_backlog(backlog);
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  ::getsockname(s.listen_fd, reinterpret_cast<sockaddr*>(&ss), &len);
  s.port = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6&>(ss).sin6_port
                                          : reinterpret_cast<sockaddr_in&>(ss).sin_port);
  s.accept = std::make_unique<accept_stage>(s.ctx, s.listen_fd, backlog);

  auto& pipe = s.ctx.pipe;
  runtime::stage_handler* handlers[] = {s.accept.get(), &s.read_parse, &s.cache_lookup, &s.disk_io,
                                        &s.send};
  for (std::size_t i = 0; i < stage_count; ++i) pipe.add_stage(stage_names[i], *handlers[i]);
  const auto group_name = [&](std::size_t i) {
    const stage_config& sc = s.ctx.cfg.stages[i];
    return sc.group.empty() ? std::string(stage_names[i]) : sc.group;
  };
  std::map<std::string, runtime::group*> groups;
  for (std::size_t i = 0; i < stage_count; ++i) {
    const stage_config& sc = s.ctx.cfg.stages[i];
    const std::string name = group_name(i);
    auto it = groups.find(name);
    if (it == groups.end()) {
      // disk_io's tasks block: each queued miss wakes a worker of its own.
      const bool blocking = group_name(stage_disk_io) == name;
      it = groups
               .emplace(name, &pipe.add_group({.name = name,
                                               .capacity = sc.queue_capacity,
                                               .threads = sc.threads,
                                               .tasks_per_wake = blocking ? 1u : 0u}))
               .first;
    }
    pipe.assign(static_cast<runtime::stage_index>(i), *it->second);
  }
  pipe.set_overload_handler([&ctx = s.ctx](runtime::task& t, runtime::stage_index refused) {
    auto& c = static_cast<connection&>(t);
    if (c.bytes_sent > 0) {  // mid-response (a large file on its way to be read in)
      ctx.close(c, close_reason::overload);
      return;
    }
    // No request read yet (the hop into read_parse) or a miss on its way to the disk; anything
    // else has its request and is refused as a whole.
    const shed_class cls = refused <= stage_read_parse ? shed_class::connection
                           : refused == stage_disk_io  ? shed_class::miss
                                                       : shed_class::request;
    ctx.shed(c, cls, shed_reason::queue_full);
  });
  s.loop = std::make_unique<reactor>(s.ctx, s.listen_fd);
  s.ctx.loop = s.loop.get();
  s.loop->start();
  s.started = true;
}

std::uint16_t server::port() const {
  return impl_->port;
}

runtime::pipeline& server::pipeline() {
  return impl_->ctx.pipe;
}

runtime::admission_gate& server::admission() {
  return impl_->ctx.admission;
}

server_snapshot server::snapshot() const {
  return impl_->ctx.snapshot();
}

void server::apply_live(const config& next) {
  server_context& ctx = impl_->ctx;
  // The one step that can throw (bad_alloc, switching to lfu) goes first.
  if (cache_replacement(next) != ctx.cache.replacement())
    ctx.cache.set_policy(cache_replacement(next));
  if (next.cache_max_bytes != ctx.cache.max_bytes()) ctx.cache.set_max_bytes(next.cache_max_bytes);
  config capped = next;
  capped.max_connections = std::min(next.max_connections, ctx.connections.capacity());
  ctx.live.store(capped);
  // A listener paused at the old limit resumes at the event loop's next tick, if it now may.
}

std::size_t server::connection_capacity() const {
  return impl_->ctx.connections.capacity();
}

std::string server::reopen_access_log() {
  return impl_->ctx.log.reopen();
}

void server::set_fault_disk_latency(std::chrono::microseconds latency) {
  impl_->ctx.fault_disk_latency_us.store(latency.count(), std::memory_order_relaxed);
}

void server::set_fault_shed(fault_shed_mode mode) {
  impl_->ctx.fault_shed.store(mode, std::memory_order_relaxed);
}

std::size_t server::open_connections() const {
  return impl_->ctx.connections.in_use();
}

bool server::stop(std::chrono::milliseconds drain) {
  auto& s = *impl_;
  if (!s.started || s.stopped) return true;
  s.stopped = true;
  s.ctx.draining.store(true);
  s.loop->begin_drain();
  // In-flight responses finish; idle connections are closed by the loop; poll until none remain.
  const auto deadline = std::chrono::steady_clock::now() + drain;
  while (s.ctx.connections.in_use() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const bool clean = s.ctx.connections.in_use() == 0;
  if (!clean) {
    // Cut off the rest: the loop closes every parked connection at its next scan, and each one
    // a stage still owns the first time it parks (its send stalls, or it waits for input).
    s.loop->cut_off();
    const auto hard = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (s.ctx.connections.in_use() > 0 && std::chrono::steady_clock::now() < hard) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  s.loop->stop();
  s.ctx.pipe.stop();
  ::close(s.listen_fd);
  return clean;
}

}  // namespace weir
