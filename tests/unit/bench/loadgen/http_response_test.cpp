#include "bench/loadgen/http_response.hpp"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace weir::loadgen {
namespace {

using result = response_parser::result;

// Feeds `text` in pieces of `step` bytes; returns the result and how many bytes were consumed.
struct fed {
  result r;
  std::size_t consumed;
};
fed feed_in_steps(response_parser& p, const std::string& text, std::size_t step) {
  std::size_t at = 0;
  result r = result::need_more;
  while (at < text.size()) {
    const std::size_t n = std::min(step, text.size() - at);
    std::size_t used = 0;
    r = p.feed(text.data() + at, n, used);
    at += used;
    if (r != result::need_more) return {r, at};
    EXPECT_EQ(used, n);
  }
  return {r, at};
}

const std::string ok_response =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\nhello world\n";

TEST(ResponseParser, ContentLengthAtEverySplit) {
  for (std::size_t step = 1; step <= ok_response.size(); ++step) {
    response_parser p;
    const fed f = feed_in_steps(p, ok_response + "NEXT", step);
    ASSERT_EQ(f.r, result::done) << "step " << step;
    EXPECT_EQ(f.consumed, ok_response.size()) << "step " << step;
    EXPECT_EQ(p.status(), 200);
    EXPECT_TRUE(p.keep_alive());
    EXPECT_EQ(p.body_bytes(), 12u);
  }
}

TEST(ResponseParser, EveryTwoWaySplitOfTheHead) {
  const std::string head = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 3\r\n\r\n";
  const std::string all = head + "abc";
  for (std::size_t cut = 0; cut <= all.size(); ++cut) {
    response_parser p;
    std::size_t used = 0;
    result r = p.feed(all.data(), cut, used);
    if (cut < all.size()) {
      ASSERT_EQ(r, result::need_more) << cut;
      ASSERT_EQ(used, cut);
      r = p.feed(all.data() + cut, all.size() - cut, used);
    }
    ASSERT_EQ(r, result::done) << cut;
    EXPECT_EQ(p.status(), 503);
  }
}

TEST(ResponseParser, ReusedAfterReset) {
  response_parser p;
  std::size_t used = 0;
  ASSERT_EQ(p.feed(ok_response.data(), ok_response.size(), used), result::done);
  p.reset();
  EXPECT_TRUE(p.idle());
  const std::string r404 = "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n";
  ASSERT_EQ(p.feed(r404.data(), r404.size(), used), result::done);
  EXPECT_EQ(p.status(), 404);
  EXPECT_EQ(used, r404.size());
}

TEST(ResponseParser, LargeBodyIsCountedNotKept) {
  response_parser p;
  const std::size_t size = 5'000'000;
  const std::string head =
      "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(size) + "\r\n\r\n";
  std::size_t used = 0;
  ASSERT_EQ(p.feed(head.data(), head.size(), used), result::need_more);
  const std::string chunk(65536, 'x');
  std::size_t left = size;
  result r = result::need_more;
  while (left > 0) {
    const std::size_t n = std::min(left, chunk.size());
    r = p.feed(chunk.data(), n, used);
    ASSERT_EQ(used, n);
    left -= n;
  }
  EXPECT_EQ(r, result::done);
  EXPECT_EQ(p.body_bytes(), size);
}

TEST(ResponseParser, ConnectionCloseAndHttp10) {
  response_parser p;
  std::size_t used = 0;
  const std::string c = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
  ASSERT_EQ(p.feed(c.data(), c.size(), used), result::done);
  EXPECT_FALSE(p.keep_alive());
  p.reset();
  const std::string h10 = "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n";
  ASSERT_EQ(p.feed(h10.data(), h10.size(), used), result::done);
  EXPECT_FALSE(p.keep_alive());
  p.reset();
  const std::string h10ka =
      "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n";
  ASSERT_EQ(p.feed(h10ka.data(), h10ka.size(), used), result::done);
  EXPECT_TRUE(p.keep_alive());
}

TEST(ResponseParser, NoLengthReadsToTheClose) {
  response_parser p;
  const std::string r = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\nsome body";
  std::size_t used = 0;
  ASSERT_EQ(p.feed(r.data(), r.size(), used), result::need_more);
  EXPECT_FALSE(p.keep_alive());
  EXPECT_EQ(p.finish_at_close(), result::done);
  EXPECT_EQ(p.body_bytes(), 9u);
  EXPECT_EQ(p.status(), 200);
}

TEST(ResponseParser, CloseBeforeTheEndIsAnError) {
  response_parser p;
  std::size_t used = 0;
  const std::string part = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
  ASSERT_EQ(p.feed(part.data(), part.size(), used), result::need_more);
  EXPECT_EQ(p.finish_at_close(), result::error);
  response_parser q;
  ASSERT_EQ(q.feed(part.data(), 10, used), result::need_more);
  EXPECT_EQ(q.finish_at_close(), result::error);
}

TEST(ResponseParser, NoBodyFor204And304AndHead) {
  for (const char* r : {"HTTP/1.1 204 No Content\r\n\r\n", "HTTP/1.1 304 Not Modified\r\n\r\n"}) {
    response_parser p;
    std::size_t used = 0;
    EXPECT_EQ(p.feed(r, std::char_traits<char>::length(r), used), result::done) << r;
    EXPECT_TRUE(p.keep_alive());
  }
  response_parser p;
  p.reset(/*head_request=*/true);
  std::size_t used = 0;
  const std::string r = "HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n";
  EXPECT_EQ(p.feed(r.data(), r.size(), used), result::done);
}

TEST(ResponseParser, ChunkedAtEverySplit) {
  const std::string r =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n"
      "1A;name=value\r\nabcdefghijklmnopqrstuvwxyz\r\n"
      "0\r\nX-Trailer: 1\r\n\r\n";
  for (std::size_t step = 1; step <= r.size(); ++step) {
    response_parser p;
    const fed f = feed_in_steps(p, r + "HTTP/1.1", step);
    ASSERT_EQ(f.r, result::done) << "step " << step;
    EXPECT_EQ(f.consumed, r.size()) << "step " << step;
    EXPECT_EQ(p.body_bytes(), 31u);
    EXPECT_TRUE(p.keep_alive());
  }
}

TEST(ResponseParser, ChunkedWithoutTrailers) {
  response_parser p;
  const std::string r =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
  std::size_t used = 0;
  EXPECT_EQ(p.feed(r.data(), r.size(), used), result::done);
  EXPECT_EQ(used, r.size());
}

TEST(ResponseParser, BadInput) {
  const std::vector<std::string> bad = {
      "HTTP/2 200 OK\r\n\r\n",
      "HTTX/1.1 200 OK\r\n\r\n",
      "HTTP/1.1 2x0 OK\r\n\r\n",
      "HTTP/1.1 200OK\r\n\r\n",
      "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n",
  };
  for (const std::string& r : bad) {
    response_parser p;
    std::size_t used = 0;
    EXPECT_EQ(p.feed(r.data(), r.size(), used), result::error) << r;
    EXPECT_FALSE(p.error().empty()) << r;
  }
}

TEST(ResponseParser, HeadTooLarge) {
  response_parser p;
  std::string r = "HTTP/1.1 200 OK\r\n";
  while (r.size() <= response_parser::max_head_bytes) r += "X-Filler: aaaaaaaaaaaaaaaaaaaa\r\n";
  std::size_t used = 0;
  EXPECT_EQ(p.feed(r.data(), r.size(), used), result::error);
  EXPECT_EQ(p.error(), "response head too large");
}

}  // namespace
}  // namespace weir::loadgen
