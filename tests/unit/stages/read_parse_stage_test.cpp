// read_parse called directly on a connection over a socket pair (no event loop, no pool): its
// deadlines and its bounds on one turn, which a real client cannot drive deterministically.

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <string>

#include "stages/context.hpp"
#include "stages/stages.hpp"
#include "tests/integration/test_docroot.hpp"

namespace weir {
namespace {

class read_parse_stage_test : public ::testing::Test {
 protected:
  void SetUp() override {
    cfg_.root = docroot_.root().string();
    ctx_ = std::make_unique<server_context>(cfg_);
    stage_ = std::make_unique<read_parse_stage>(*ctx_);
    int fds[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
    peer_ = fds[1];
    const int big = 1 << 20;
    ::setsockopt(peer_, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    ::setsockopt(fds[0], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    c_ = ctx_->connections.acquire();
    ASSERT_NE(c_, nullptr);
    c_->fd = fds[0];
  }
  void TearDown() override {
    // Whatever the stage left open (parked or yielded) is closed here.
    if (c_ != nullptr && ctx_->connections.in_use() > 0) ctx_->close(*c_, close_reason::shutdown);
    if (peer_ >= 0) ::close(peer_);
  }

  /// Bytes written to the server side and not yet read by it.
  std::size_t unread() const {
    int n = 0;
    return ::ioctl(c_->fd, FIONREAD, &n) == 0 ? static_cast<std::size_t>(n) : 0;
  }
  std::size_t fill(std::size_t bytes) const {
    const std::string chunk(64 * 1024, 'x');
    std::size_t sent = 0;
    while (sent < bytes) {
      const ssize_t n = ::send(peer_, chunk.data(), std::min(chunk.size(), bytes - sent), 0);
      if (n <= 0) break;
      sent += static_cast<std::size_t>(n);
    }
    return sent;
  }
  bool closed() const { return ctx_->connections.in_use() == 0; }

  test::test_docroot docroot_;
  config cfg_;
  std::unique_ptr<server_context> ctx_;
  std::unique_ptr<read_parse_stage> stage_;
  connection* c_ = nullptr;
  int peer_ = -1;
};

// A client that keeps the buffer full never makes a read would-block: lingering must still end
// its turn (so one client cannot hold a worker) and keep its deadline.
TEST_F(read_parse_stage_test, lingering_yields_after_a_turn_of_input) {
  const std::size_t sent = fill(512 * 1024);
  ASSERT_GE(sent, 256u * 1024) << "the socket pair took too little to test with";
  c_->lingering = true;
  c_->linger_until_ms = server_context::now_ms() + 60'000;
  EXPECT_EQ(stage_->handle(*c_), stage_read_parse) << "drained everything in one turn";
  EXPECT_FALSE(closed());
  EXPECT_GT(unread(), 0u);
  EXPECT_LT(unread(), sent);
}

TEST_F(read_parse_stage_test, lingering_ends_at_its_deadline_even_with_input_pending) {
  fill(256 * 1024);
  c_->lingering = true;
  c_->linger_until_ms = server_context::now_ms() - 1;
  EXPECT_EQ(stage_->handle(*c_), runtime::stage_done);
  EXPECT_TRUE(closed()) << "a lingering close outlived its deadline";
}

// The keep-alive timeout counts from when the connection went idle, not from each pass: woken
// again and again with nothing to read, it still times out.
TEST_F(read_parse_stage_test, an_idle_connection_woken_without_input_times_out) {
  c_->requests = 1;
  c_->idle_since_ms = server_context::now_ms() - cfg_.keepalive_timeout.count() - 1;
  c_->keep_ready(ready_read);  // a wake-up with nothing behind it
  EXPECT_EQ(stage_->handle(*c_), runtime::stage_done);
  EXPECT_TRUE(closed()) << "parked again past its keep-alive timeout";
}

TEST_F(read_parse_stage_test, an_idle_connection_within_its_timeout_is_parked) {
  c_->requests = 1;
  c_->idle_since_ms = server_context::now_ms();
  EXPECT_EQ(stage_->handle(*c_), runtime::stage_done);
  EXPECT_FALSE(closed());
  EXPECT_EQ(c_->state(), conn_state::parked_read);
  EXPECT_EQ(c_->deadline_ms.load(), c_->idle_since_ms + cfg_.keepalive_timeout.count());
  EXPECT_FALSE(c_->has_exchange()) << "an idle connection kept its buffers";
}

// Part of a head received: the connection waits for the rest holding it (nothing received is
// lost in the hand-back), and the rest completes the same request.
TEST_F(read_parse_stage_test, a_partial_head_is_kept_while_parked) {
  const std::string part = "GET /index.html HTTP/1.1\r\nHost: x\r\n";
  ASSERT_EQ(::send(peer_, part.data(), part.size(), 0), static_cast<ssize_t>(part.size()));
  c_->requests = 1;
  c_->idle_since_ms = server_context::now_ms();
  EXPECT_EQ(stage_->handle(*c_), runtime::stage_done);
  ASSERT_EQ(c_->state(), conn_state::parked_read);
  EXPECT_TRUE(c_->has_exchange());
  EXPECT_EQ(c_->in_end - c_->in_start, part.size());
  // Take it back as the event loop would, with the rest of the head.
  ASSERT_EQ(::send(peer_, "\r\n", 2, 0), 2);
  ASSERT_EQ(ctx_->connections.deliver(connection_table::handle(*c_), ready_read).owned, c_);
  EXPECT_EQ(stage_->handle(*c_), stage_cache_lookup);
  EXPECT_EQ(c_->ex().path, "/index.html");
}

TEST_F(read_parse_stage_test, the_header_timeout_counts_from_accept) {
  c_->idle_since_ms = server_context::now_ms() - cfg_.header_timeout.count() - 1;
  EXPECT_EQ(stage_->handle(*c_), runtime::stage_done);
  EXPECT_TRUE(closed()) << "a connection that never sent a byte outlived the header timeout";
}

}  // namespace
}  // namespace weir
