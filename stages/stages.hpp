#pragma once

#include "runtime/pipeline.hpp"

namespace weir {

struct server_context;

/// The five stages. Each is a plain handler: it does one step for a connection (or, for accept,
/// the listener) and names the stage to run next; which threads run it is the pipeline's business.

/// accept: drains the listen queue (a batch per readiness event), registers each new connection
/// with the event loop, and backs off on EMFILE/ENFILE or at the connection limit.
class accept_stage final : public runtime::stage_handler {
 public:
  /// `backlog`: the length `listen_fd` listens with.
  accept_stage(server_context& ctx, int listen_fd, std::size_t backlog);
  runtime::stage_index handle(runtime::task& t) override;

 private:
  void follow_send_lowat();

  server_context& ctx_;
  int listen_fd_;
  std::size_t backlog_;  // in force (one accept round runs at a time)
  // TCP_NOTSENT_LOWAT last asked of the listener, whose accepted sockets inherit it (0: the
  // kernel's default).
  std::size_t send_lowat_ = 0;
  // Pauses for want of descriptors since accepts last succeeded (0: none): the first is logged
  // as a warning, the rest at debug, and the recovery once, so exhaustion is not a log flood.
  std::uint64_t fd_pauses_ = 0;
};

/// read_parse: receives bytes, parses one request head, rejects what is malformed or not allowed
/// (answered by send), and passes a valid GET/HEAD on to cache_lookup.
class read_parse_stage final : public runtime::stage_handler {
 public:
  explicit read_parse_stage(server_context& ctx) : ctx_(ctx) {}
  runtime::stage_index handle(runtime::task& t) override;

 private:
  /// After a closing response: drop whatever the client still sends until it closes.
  runtime::stage_index linger(connection& c);

  server_context& ctx_;
};

/// cache_lookup: answers from the cache (path translation, headers, small bodies); a miss or an
/// entry due for revalidation goes to disk_io.
class cache_lookup_stage final : public runtime::stage_handler {
 public:
  explicit cache_lookup_stage(server_context& ctx) : ctx_(ctx) {}
  runtime::stage_index handle(runtime::task& t) override;

 private:
  server_context& ctx_;
};

/// disk_io: the only stage that blocks on the file system (open, stat, read): resolves the path
/// beneath the root, loads small files, keeps large ones open for sendfile, fills the cache.
class disk_io_stage final : public runtime::stage_handler {
 public:
  explicit disk_io_stage(server_context& ctx) : ctx_(ctx) {}
  runtime::stage_index handle(runtime::task& t) override;

 private:
  server_context& ctx_;
};

/// send: writes the response (one writev of head + in-memory body, or head then sendfile),
/// parks on EPOLLOUT when the socket is full, then keeps the connection alive or closes it.
class send_stage final : public runtime::stage_handler {
 public:
  explicit send_stage(server_context& ctx) : ctx_(ctx) {}
  runtime::stage_index handle(runtime::task& t) override;

 private:
  server_context& ctx_;
};

}  // namespace weir
