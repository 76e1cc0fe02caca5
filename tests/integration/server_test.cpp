// The behaviour battery: a real weir::server on an ephemeral port, a temporary document root,
// and requests over real sockets. Expected answers are what nginx gives for a static site.

#include "stages/server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "stages/file_pages.hpp"
#include "tests/integration/http_client.hpp"
#include "tests/integration/same_bytes.hpp"
#include "tests/integration/test_docroot.hpp"
#include "tests/integration/thread_hold.hpp"

using namespace std::chrono_literals;

namespace weir::test {
namespace {

const std::string a_html = "<!doctype html>\n<html><body><h1>A</h1></body></html>\n";
const std::string style_css = "body { color: #123456; }\n";
const std::string blob_xyz = std::string("\x01\x02\x03\x00", 4) + "unknown type";
const std::string readme_txt = "plain text\n";
const std::string range_txt = "0123456789abcdefghijklmnopqrstuvwxyz";  // 36 bytes
const std::string space_txt = "a file name with a space\n";
const std::string index_html = "<html><body>dir index</body></html>\n";
const std::string c_txt = "deep file\n";
const std::string secret_txt = "TOP-SECRET-7f3a9c\n";
constexpr std::size_t big_size = 1u << 20;       // above cache_max_file_bytes: sent with sendfile
constexpr std::time_t fixed_mtime = 1577934245;  // Thu, 02 Jan 2020 03:04:05 GMT

bool is_quoted_etag(const std::string& v) {
  const std::string_view tag = v.starts_with("W/") ? std::string_view(v).substr(2) : v;
  return tag.size() >= 2 && tag.front() == '"' && tag.back() == '"' &&
         tag.substr(1, tag.size() - 2).find('"') == std::string_view::npos;
}

std::set<std::string> comma_list(const std::string& v) {
  std::set<std::string> out;
  std::size_t start = 0;
  while (start <= v.size()) {
    std::size_t end = v.find(',', start);
    if (end == std::string::npos) end = v.size();
    std::string item = v.substr(start, end - start);
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (!item.empty()) out.insert(item);
    start = end + 1;
  }
  return out;
}

std::uint64_t closed_for(const server_snapshot& s, std::string_view reason) {
  for (std::size_t i = 0; i < close_reason_count; ++i) {
    if (close_reason_names[i] == reason) return s.connections_closed[i];
  }
  ADD_FAILURE() << "no close reason " << reason;
  return 0;
}

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    docroot_.write("a.html", a_html);
    docroot_.set_mtime("a.html", fixed_mtime);
    docroot_.write("style.css", style_css);
    docroot_.write("blob.xyz", blob_xyz);
    docroot_.write("readme.txt", readme_txt);
    docroot_.write("UPPER.HTML", a_html);
    docroot_.write("range.txt", range_txt);
    docroot_.write("with space.txt", space_txt);
    docroot_.write("dir/index.html", index_html);
    docroot_.write("a/b/c.txt", c_txt);
    docroot_.make_dir("emptydir");
    big_ = test_docroot::pattern(big_size, 7);
    docroot_.write("big.bin", big_);
    docroot_.write_outside("secret.txt", secret_txt);
    docroot_.symlink("../outside/secret.txt", "link.txt");
    docroot_.symlink("../outside", "linkdir");
    docroot_.symlink("a.html", "inlink.html");
    docroot_.symlink("../dir/index.html", "a/up-link.html");
  }

  void TearDown() override {
    if (server_) server_->stop(1s);
  }

  config base_config() const {
    config cfg;
    cfg.root = docroot_.root().string();
    cfg.listen = "127.0.0.1:0";
    return cfg;
  }
  void start() { start(base_config()); }
  void start(config cfg) {
    server_ = std::make_unique<server>(std::move(cfg));
    server_->start();
    port_ = server_->port();
    ASSERT_NE(port_, 0);
  }

  /// One request on a fresh connection.
  response fetch(std::string_view raw, bool head = false) {
    http_client c(port_);
    return c.request(raw, head);
  }

  /// The check after every misbehaving client: the server still answers a new connection.
  ::testing::AssertionResult serves_new_connection() {
    try {
      http_client c(port_);
      const response r = c.request(get("/a.html"));
      if (r.status != 200 || r.body != a_html)
        return ::testing::AssertionFailure() << "GET /a.html on a new connection: " << r.status;
      return ::testing::AssertionSuccess();
    } catch (const std::exception& e) {
      return ::testing::AssertionFailure() << "GET /a.html on a new connection: " << e.what();
    }
  }

  /// A client that asked for huge.bin (see write_huge) through a small receive buffer, so most
  /// of the response waits on the server until it reads.
  http_client huge_download(int receive_buffer) {
    http_client::options opts;
    opts.receive_buffer = receive_buffer;
    http_client c(port_, opts);
    c.send(get("/huge.bin"));
    return c;
  }

  std::string write_huge() {
    std::string huge = test_docroot::pattern(8u << 20, 11);
    docroot_.write("huge.bin", huge);
    return huge;
  }

  // First member: it outlives TearDown, so a stop() that never returns is caught too.
  hang_guard guard_{
      std::string("test ") + ::testing::UnitTest::GetInstance()->current_test_info()->name(),
      std::chrono::seconds(120)};
  test_docroot docroot_;
  std::string big_;
  std::unique_ptr<server> server_;
  std::uint16_t port_ = 0;
};

// --- threads -----------------------------------------------------------------------------------

// The event loop runs SCHED_BATCH (stages/reactor.cpp: its wake-ups do not preempt a worker), the
// workers the default policy. Each thread names itself and sets its policy once it runs, so the
// test waits for both.
TEST_F(ServerTest, TheEventLoopThreadIsScheduledBatch) {
  start();
  struct census {
    int loops = 0, batch_loops = 0, workers = 0, other_workers = 0;
  };
  const auto look = [] {
    census c;
    for (const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) {
      std::ifstream comm(entry.path() / "comm");
      std::string name;
      std::getline(comm, name);
      const int policy = ::sched_getscheduler(std::stoi(entry.path().filename().string()));
      if (name == "weir-reactor") {
        ++c.loops;
        if (policy == SCHED_BATCH) ++c.batch_loops;
      } else if (name.find('/') != std::string::npos) {  // a worker: "<group>/<n>"
        ++c.workers;
        if (policy == SCHED_OTHER) ++c.other_workers;
      }
    }
    return c;
  };
  census c;
  EXPECT_TRUE(eventually(10s,
                         [&] {
                           c = look();
                           return c.batch_loops == 1 && c.workers > 0;
                         }))
      << c.loops << " threads named weir-reactor, " << c.batch_loops << " of them SCHED_BATCH";
  EXPECT_EQ(c.loops, 1);
  EXPECT_EQ(c.other_workers, c.workers) << "a worker is not SCHED_OTHER";
}

// --- GET and HEAD ---------------------------------------------------------------------------

TEST_F(ServerTest, GetServesExactBytesWithEntityHeaders) {
  start();
  http_client c(port_);
  const std::time_t before = std::time(nullptr);
  const response r = c.request(get("/a.html"));
  const std::time_t after = std::time(nullptr);

  EXPECT_EQ(r.version, "HTTP/1.1");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, a_html);
  EXPECT_EQ(r.count("Content-Length"), 1u);
  EXPECT_EQ(r.header("Content-Length"), std::to_string(a_html.size()));
  EXPECT_FALSE(r.has("Transfer-Encoding"));
  EXPECT_TRUE(r.header("Content-Type").starts_with("text/html")) << r.header("Content-Type");
  std::time_t date = 0;
  EXPECT_TRUE(parse_imf_fixdate(r.header("Date"), &date)) << "Date: " << r.header("Date");
  EXPECT_GE(date, before - 2);
  EXPECT_LE(date, after + 2);
  EXPECT_EQ(r.header("Last-Modified"), format_imf_fixdate(fixed_mtime));
  EXPECT_TRUE(is_quoted_etag(r.header("ETag"))) << "ETag: " << r.header("ETag");
  EXPECT_FALSE(r.header("Server").empty());

  const response again = c.request(get("/a.html"));  // same connection, now from the cache
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(again.body, a_html);
  EXPECT_EQ(again.header("ETag"), r.header("ETag"));
  EXPECT_EQ(again.header("Last-Modified"), r.header("Last-Modified"));
}

TEST_F(ServerTest, ContentTypeFollowsTheExtension) {
  start();
  http_client c(port_);
  struct {
    const char* target;
    const char* type_prefix;
    bool exact;
    const std::string& body;
  } const cases[] = {
      {"/a.html", "text/html", false, a_html},
      {"/UPPER.HTML", "text/html", false, a_html},
      {"/style.css", "text/css", false, style_css},
      {"/readme.txt", "text/plain", false, readme_txt},
      {"/blob.xyz", "application/octet-stream", true, blob_xyz},
  };
  for (const auto& k : cases) {
    SCOPED_TRACE(k.target);
    const response r = c.request(get(k.target));
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, k.body);
    const std::string type = r.header("Content-Type");
    if (k.exact) {
      EXPECT_EQ(type, k.type_prefix);
    } else {
      EXPECT_TRUE(type.starts_with(k.type_prefix)) << "Content-Type: " << type;
    }
  }
}

TEST_F(ServerTest, LargeFileIsServedByteExact) {
  start();
  http_client c(port_);
  const response r = c.request(get("/big.bin"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("Content-Length"), std::to_string(big_size));
  EXPECT_TRUE(same_bytes(r.body, big_));
  EXPECT_TRUE(is_quoted_etag(r.header("ETag")));
  EXPECT_TRUE(parse_imf_fixdate(r.header("Last-Modified")));
  // The connection stays usable after a sendfile response.
  EXPECT_EQ(c.request(get("/a.html")).body, a_html);
}

// Drops the pages of a file no one has read from the page cache (written back first, so that
// they are clean and go at once). False if they stay, as mincore sees them (which, unlike a read,
// brings nothing back in): a filesystem in memory, as tmpfs, has nothing to evict.
bool evict_from_page_cache(const std::filesystem::path& file) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const auto size = static_cast<std::size_t>(std::filesystem::file_size(file));
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  bool gone = false;
  if (map != MAP_FAILED) {
    std::vector<unsigned char> pages((size + 4095) / 4096);
    ::fdatasync(fd);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    gone = ::mincore(map, size, pages.data()) == 0 &&
           std::none_of(pages.begin(), pages.end(), [](unsigned char p) { return p & 1; });
    ::munmap(map, size);
  }
  ::close(fd);
  return gone;
}

TEST_F(ServerTest, ALargeFileNotInMemoryIsReadInByDiskIoBeforeItIsSent) {
  // Files no one has read, their pages dropped: a miss takes each to disk_io (which opens it,
  // reads nothing), and the send stage, finding its first turn not in memory, sends it back
  // there to be read in: two passes through disk_io where sendfile alone (reading the disk in
  // the send stage) would make one.
  docroot_.write("cold.bin", big_);
  docroot_.write("cold2.bin", big_);
  if (!evict_from_page_cache(docroot_.root() / "cold.bin") ||
      !evict_from_page_cache(docroot_.root() / "cold2.bin"))
    GTEST_SKIP() << "the docroot's filesystem keeps its pages (tmpfs?): nothing to evict";
  start();
  auto& pipe = server_->pipeline();
  const auto disk_io_passes = [&] { return pipe.processed(server::disk_io); };
  http_client c(port_);
  std::uint64_t before = disk_io_passes();
  ASSERT_TRUE(same_bytes(c.request(get("/cold.bin")).body, big_));
  EXPECT_EQ(disk_io_passes(), before + 2);  // the miss, then the read-in of its 1 MiB
  // In memory now: a second request goes from the cache's descriptor, without disk_io.
  before = disk_io_passes();
  ASSERT_TRUE(same_bytes(c.request(get("/cold.bin")).body, big_));
  EXPECT_EQ(disk_io_passes(), before);
  // A range from the middle of a cold file, on the same connection.
  before = disk_io_passes();
  const response r = c.request(get("/cold2.bin", "Range: bytes=700000-\r\n"));
  EXPECT_EQ(r.status, 206);
  EXPECT_TRUE(same_bytes(r.body, big_.substr(700000)));
  EXPECT_EQ(disk_io_passes(), before + 2);
  EXPECT_EQ(c.request(get("/a.html")).body, a_html);
}

TEST_F(ServerTest, HeadSendsTheGetHeadersAndNoBody) {
  start();
  http_client c(port_);
  const response small = c.request(get("/a.html"));
  const response big = c.request(get("/big.bin"));
  c.send(make_request("HEAD", "/a.html") + make_request("HEAD", "/big.bin") + get("/style.css"));
  const auto rs = c.read_responses({true, true, false});

  for (int i = 0; i < 2; ++i) {
    const response& head = rs[i];
    const response& full = i == 0 ? small : big;
    SCOPED_TRACE(i == 0 ? "HEAD /a.html" : "HEAD /big.bin");
    EXPECT_EQ(head.status, 200);
    EXPECT_EQ(head.header("Content-Length"), full.header("Content-Length"));
    EXPECT_EQ(head.header("Content-Type"), full.header("Content-Type"));
    EXPECT_EQ(head.header("ETag"), full.header("ETag"));
    EXPECT_EQ(head.header("Last-Modified"), full.header("Last-Modified"));
  }
  // Had either HEAD carried body bytes, this response would not parse.
  EXPECT_EQ(rs[2].status, 200);
  EXPECT_EQ(rs[2].body, style_css);
  EXPECT_TRUE(c.buffered().empty());
}

// --- HTTP/1.0, Host, keep-alive --------------------------------------------------------------

TEST_F(ServerTest, Http10WithoutHostIsServedThenClosed) {
  start();
  http_client c(port_);
  const response r = c.request("GET /a.html HTTP/1.0\r\n\r\n");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, a_html);
  EXPECT_FALSE(r.connection_has("keep-alive"));
  std::size_t extra = 0;
  EXPECT_TRUE(c.wait_for_close(3s, &extra)) << "HTTP/1.0 without keep-alive must be closed";
  EXPECT_EQ(extra, 0u);
}

TEST_F(ServerTest, Http10KeepAliveKeepsTheConnection) {
  start();
  http_client c(port_);
  const response r = c.request("GET /a.html HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, a_html);
  EXPECT_TRUE(r.connection_has("keep-alive")) << "Connection: " << r.header("Connection");
  const response second = c.request("GET /style.css HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  EXPECT_EQ(second.status, 200);
  EXPECT_EQ(second.body, style_css);
  const response last = c.request("GET /readme.txt HTTP/1.0\r\n\r\n");
  EXPECT_EQ(last.status, 200);
  EXPECT_EQ(last.body, readme_txt);
  EXPECT_TRUE(c.wait_for_close(3s));
}

TEST_F(ServerTest, Http11NeedsExactlyOneHost) {
  start();
  EXPECT_EQ(fetch("GET /a.html HTTP/1.1\r\n\r\n").status, 400);
  EXPECT_EQ(fetch("GET /a.html HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").status, 400);
  EXPECT_EQ(fetch("GET /a.html HTTP/1.1\r\nHost: localhost\r\nHost: localhost\r\n\r\n").status,
            400);
  EXPECT_TRUE(serves_new_connection());
}

TEST_F(ServerTest, KeepAliveServesSeveralRequestsUntilConnectionClose) {
  start();
  http_client c(port_);
  for (int i = 0; i < 6; ++i) {
    SCOPED_TRACE(i);
    const bool odd = i % 2 == 1;
    const response r = c.request(get(odd ? "/a.html" : "/style.css"));
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, odd ? a_html : style_css);
    EXPECT_FALSE(r.connection_has("close"));
  }
  const response r = c.request(get("/readme.txt", "Connection: close\r\n"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, readme_txt);
  EXPECT_TRUE(r.connection_has("close")) << "Connection: " << r.header("Connection");
  std::size_t extra = 0;
  EXPECT_TRUE(c.wait_for_close(3s, &extra));
  EXPECT_EQ(extra, 0u);
}

TEST_F(ServerTest, HalfClosedClientStillGetsItsResponse) {
  start();
  http_client c(port_);
  c.send(get("/a.html"));
  c.shutdown_write();
  const response r = c.read_response();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, a_html);
  EXPECT_TRUE(c.wait_for_close(3s));
}

// --- Pipelining --------------------------------------------------------------------------------

TEST_F(ServerTest, PipelinedRequestsAreAnsweredInOrder) {
  start();
  struct step {
    const char* method;
    const char* target;
    const char* extra;
    int status;
    const std::string* body;  // nullptr: not checked (error pages)
  };
  const std::string empty;
  const std::string first_ten = range_txt.substr(0, 10);
  const step steps[] = {
      {"GET", "/a.html", "", 200, &a_html},
      {"GET", "/style.css", "", 200, &style_css},
      {"GET", "/missing.html", "", 404, nullptr},
      {"HEAD", "/a.html", "", 200, &empty},
      {"GET", "/dir/", "", 200, &index_html},
      {"GET", "/blob.xyz", "", 200, &blob_xyz},
      {"GET", "/big.bin", "", 200, &big_},
      {"GET", "/with%20space.txt", "", 200, &space_txt},
      {"GET", "/a.html?x=1", "", 200, &a_html},
      {"GET", "/range.txt", "Range: bytes=0-9\r\n", 206, &first_ten},
      {"GET", "/nope/deeper", "", 404, nullptr},
      {"HEAD", "/big.bin", "", 200, &empty},
      {"GET", "/readme.txt", "", 200, &readme_txt},
      {"GET", "/a.html", "", 200, &a_html},
  };
  std::string all;
  std::vector<bool> head;
  for (const step& s : steps) {
    all += make_request(s.method, s.target, s.extra);
    head.push_back(std::string_view(s.method) == "HEAD");
  }
  http_client c(port_);
  c.send(all);  // one write
  const auto rs = c.read_responses(head);
  for (std::size_t i = 0; i < rs.size(); ++i) {
    SCOPED_TRACE(std::string(steps[i].method) + " " + steps[i].target);
    EXPECT_EQ(rs[i].status, steps[i].status);
    if (steps[i].body != nullptr) {
      EXPECT_TRUE(same_bytes(rs[i].body, *steps[i].body));
    }
  }
  EXPECT_EQ(rs[11].header("Content-Length"), std::to_string(big_size));
  EXPECT_TRUE(c.buffered().empty());
  EXPECT_EQ(c.request(get("/style.css")).body, style_css);  // still in step afterwards
}

TEST_F(ServerTest, NothingIsAnsweredAfterConnectionClose) {
  start();
  http_client c(port_);
  c.send(get("/a.html", "Connection: close\r\n") + get("/style.css"));
  const response r = c.read_response();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, a_html);
  std::size_t extra = 0;
  EXPECT_TRUE(c.wait_for_close(3s, &extra));
  EXPECT_EQ(extra, 0u) << "answered a request sent after Connection: close";
}

// More pipelined requests than the first read buffer holds, with a large response among them.
TEST_F(ServerTest, LongPipelineInOneWrite) {
  start();
  std::string all;
  std::vector<const std::string*> want;
  for (int i = 0; i < 200; ++i) {
    const bool big = i == 100;
    all += get(big ? "/big.bin" : (i % 2 == 0 ? "/a.html" : "/style.css"),
               "X-Request-Number: " + std::to_string(i) + "\r\n");
    want.push_back(big ? &big_ : (i % 2 == 0 ? &a_html : &style_css));
  }
  http_client c(port_);
  c.send(all);
  const auto rs = c.read_responses(want.size());
  for (std::size_t i = 0; i < rs.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(rs[i].status, 200);
    EXPECT_TRUE(same_bytes(rs[i].body, *want[i]));
  }
  EXPECT_TRUE(c.buffered().empty());
}

// --- Request targets ---------------------------------------------------------------------------

TEST_F(ServerTest, AbsoluteFormTargetIsServed) {
  start();
  const response r = fetch("GET http://localhost/a.html HTTP/1.1\r\nHost: localhost\r\n\r\n");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, a_html);
}

TEST_F(ServerTest, QueryStringIsIgnored) {
  start();
  http_client c(port_);
  for (const char* target : {"/a.html?x=1", "/a.html?", "/a.html?a=b&c=%2e%2e"}) {
    SCOPED_TRACE(target);
    const response r = c.request(get(target));
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, a_html);
  }
  const response dir = c.request(get("/dir/?q=1"));
  EXPECT_EQ(dir.status, 200);
  EXPECT_EQ(dir.body, index_html);
}

TEST_F(ServerTest, TargetIsPercentDecodedAndNormalised) {
  start();
  http_client c(port_);
  struct {
    const char* target;
    const std::string& body;
  } const cases[] = {
      {"/with%20space.txt", space_txt}, {"/%61.html", a_html}, {"/dir/%69ndex.html", index_html},
      {"/a/b/../../a.html", a_html},    {"/./a.html", a_html}, {"//a.html", a_html},
      {"/a/b/%2e%2e/b/c.txt", c_txt},
  };
  for (const auto& k : cases) {
    SCOPED_TRACE(k.target);
    const response r = c.request(get(k.target));
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, k.body);
  }
}

// --- Directories and missing files ------------------------------------------------------------

TEST_F(ServerTest, DirectoryWithSlashServesItsIndex) {
  start();
  const response r = fetch(get("/dir/"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, index_html);
  EXPECT_TRUE(r.header("Content-Type").starts_with("text/html")) << r.header("Content-Type");
}

TEST_F(ServerTest, DirectoryWithoutSlashRedirects) {
  start();
  http_client c(port_);
  const response r = c.request(get("/dir"));
  EXPECT_EQ(r.status, 301);
  EXPECT_EQ(r.header("Location"), "/dir/");
  // The redirect is framed: the connection goes on.
  EXPECT_EQ(c.request(get("/a.html")).body, a_html);
}

TEST_F(ServerTest, DirectoryWithoutIndexIsForbidden) {
  start();
  EXPECT_EQ(fetch(get("/emptydir/")).status, 403);
}

TEST_F(ServerTest, MissingFileIsNotFound) {
  start();
  http_client c(port_);
  for (const char* target : {"/missing.html", "/dir/missing", "/nodir/x.html", "/a.html/"}) {
    SCOPED_TRACE(target);
    EXPECT_EQ(c.request(get(target)).status, 404);
  }
  EXPECT_EQ(c.request(get("/a.html")).body, a_html);  // 404s keep the connection
}

// --- Conditional requests ----------------------------------------------------------------------

TEST_F(ServerTest, IfNoneMatchWithTheCurrentEtagIsNotModified) {
  start();
  http_client c(port_);
  const std::string etag = c.request(get("/a.html")).header("ETag");
  ASSERT_FALSE(etag.empty());
  c.send(get("/a.html", "If-None-Match: " + etag + "\r\n") + get("/style.css"));
  const auto rs = c.read_responses(2);  // a 304 body would break the second response
  EXPECT_EQ(rs[0].status, 304);
  EXPECT_EQ(rs[0].header("ETag"), etag);
  EXPECT_EQ(rs[1].status, 200);
  EXPECT_EQ(rs[1].body, style_css);

  for (const std::string& field :
       {"\"nope\", " + etag, std::string("*"), etag.starts_with("W/") ? etag : "W/" + etag}) {
    SCOPED_TRACE("If-None-Match: " + field);
    EXPECT_EQ(c.request(get("/a.html", "If-None-Match: " + field + "\r\n")).status, 304);
  }
}

TEST_F(ServerTest, IfNoneMatchWithAnotherEtagIsServed) {
  start();
  const response r = fetch(get("/a.html", "If-None-Match: \"some-other-tag\"\r\n"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, a_html);
}

TEST_F(ServerTest, IfModifiedSinceLastModifiedIsNotModified) {
  start();
  http_client c(port_);
  const std::string lm = c.request(get("/a.html")).header("Last-Modified");
  ASSERT_EQ(lm, format_imf_fixdate(fixed_mtime));
  c.send(get("/a.html", "If-Modified-Since: " + lm + "\r\n") + get("/readme.txt"));
  const auto rs = c.read_responses(2);
  EXPECT_EQ(rs[0].status, 304);
  EXPECT_EQ(rs[1].status, 200);
  EXPECT_EQ(rs[1].body, readme_txt);

  const response older = c.request(
      get("/a.html", "If-Modified-Since: " + format_imf_fixdate(fixed_mtime - 3600) + "\r\n"));
  EXPECT_EQ(older.status, 200);
  EXPECT_EQ(older.body, a_html);

  // If-None-Match decides when both are present (RFC 9110 13.2.2).
  const response both =
      c.request(get("/a.html", "If-None-Match: \"other\"\r\nIf-Modified-Since: " + lm + "\r\n"));
  EXPECT_EQ(both.status, 200);
  EXPECT_EQ(both.body, a_html);
}

TEST_F(ServerTest, ConditionalGetOfALargeFile) {
  start();
  http_client c(port_);
  const std::string etag = c.request(get("/big.bin")).header("ETag");
  ASSERT_FALSE(etag.empty());
  c.send(get("/big.bin", "If-None-Match: " + etag + "\r\n") + get("/a.html"));
  const auto rs = c.read_responses(2);
  EXPECT_EQ(rs[0].status, 304);
  EXPECT_EQ(rs[1].body, a_html);
}

// --- Ranges ------------------------------------------------------------------------------------

struct range_case {
  const char* range;
  int status;
  const char* content_range;  // "" : must be absent
  std::string body;           // checked for 200 and 206
};

TEST_F(ServerTest, RangesOfASmallFile) {
  start();
  const range_case cases[] = {
      {"bytes=0-9", 206, "bytes 0-9/36", range_txt.substr(0, 10)},
      {"bytes=-5", 206, "bytes 31-35/36", range_txt.substr(31)},
      {"bytes=5-", 206, "bytes 5-35/36", range_txt.substr(5)},
      {"bytes=30-100", 206, "bytes 30-35/36", range_txt.substr(30)},
      {"bytes=35-35", 206, "bytes 35-35/36", "z"},
      {"bytes=36-", 416, "bytes */36", ""},
      {"bytes=0-1,3-4", 200, "", range_txt},
  };
  for (const range_case& k : cases) {
    SCOPED_TRACE(k.range);
    const response r = fetch(get("/range.txt", std::string("Range: ") + k.range + "\r\n"));
    EXPECT_EQ(r.status, k.status);
    if (*k.content_range == '\0') {
      EXPECT_FALSE(r.has("Content-Range")) << r.header("Content-Range");
    } else {
      EXPECT_EQ(r.header("Content-Range"), k.content_range);
    }
    if (k.status != 416) {
      EXPECT_EQ(r.body, k.body);
      EXPECT_EQ(r.header("Content-Length"), std::to_string(k.body.size()));
    }
  }
}

TEST_F(ServerTest, RangesOfALargeFile) {
  start();
  http_client c(port_);
  const response full = c.request(get("/big.bin"));
  EXPECT_EQ(full.status, 200);
  EXPECT_TRUE(same_bytes(full.body, big_));

  const std::string size = std::to_string(big_size);
  const range_case cases[] = {
      {"bytes=500000-500099", 206, "bytes 500000-500099/", big_.substr(500000, 100)},
      {"bytes=-10", 206, "bytes 1048566-1048575/", big_.substr(big_size - 10)},
      {"bytes=1048500-2000000", 206, "bytes 1048500-1048575/", big_.substr(1048500)},
      {"bytes=262144-", 206, "bytes 262144-1048575/", big_.substr(262144)},
  };
  for (const range_case& k : cases) {
    SCOPED_TRACE(k.range);
    const response r = c.request(get("/big.bin", std::string("Range: ") + k.range + "\r\n"));
    EXPECT_EQ(r.status, k.status);
    EXPECT_EQ(r.header("Content-Range"), k.content_range + size);
    EXPECT_TRUE(same_bytes(r.body, k.body));
  }
  const response past = c.request(get("/big.bin", "Range: bytes=" + size + "-\r\n"));
  EXPECT_EQ(past.status, 416);
  EXPECT_EQ(past.header("Content-Range"), "bytes */" + size);
}

TEST_F(ServerTest, IfRangeHonoursTheRangeOnlyForTheCurrentEtag) {
  start();
  http_client c(port_);
  const std::string etag = c.request(get("/range.txt")).header("ETag");
  ASSERT_FALSE(etag.empty());
  if (!etag.starts_with("W/")) {  // a weak tag never allows a range
    const response same =
        c.request(get("/range.txt", "Range: bytes=0-3\r\nIf-Range: " + etag + "\r\n"));
    EXPECT_EQ(same.status, 206);
    EXPECT_EQ(same.body, "0123");
  }
  const response stale =
      c.request(get("/range.txt", "Range: bytes=0-3\r\nIf-Range: \"stale\"\r\n"));
  EXPECT_EQ(stale.status, 200);
  EXPECT_EQ(stale.body, range_txt);
}

// --- Methods -----------------------------------------------------------------------------------

TEST_F(ServerTest, OtherKnownMethodsAre405WithAllow) {
  start();
  for (const char* method : {"POST", "PUT", "DELETE", "OPTIONS", "PATCH"}) {
    SCOPED_TRACE(method);
    const response r = fetch(make_request(method, "/a.html", "Content-Length: 0\r\n"));
    EXPECT_EQ(r.status, 405);
    EXPECT_EQ(comma_list(r.header("Allow")), (std::set<std::string>{"GET", "HEAD"}))
        << "Allow: " << r.header("Allow");
  }
  EXPECT_TRUE(serves_new_connection());
}

TEST_F(ServerTest, UnknownMethodIs501) {
  start();
  EXPECT_EQ(fetch(make_request("BREW", "/a.html")).status, 501);
  EXPECT_TRUE(serves_new_connection());
}

// After a 405 the body must be skipped (next request answered) or the connection closed; what
// must not happen is the body being parsed as a request.
TEST_F(ServerTest, RejectedRequestBodyIsNotParsedAsARequest) {
  start();
  const std::string bodies[] = {
      make_request("POST", "/a.html", "Content-Length: 5\r\n") + "hello",
      make_request("PUT", "/a.html", "Transfer-Encoding: chunked\r\n") + "5\r\nhello\r\n0\r\n\r\n",
  };
  for (const std::string& rejected : bodies) {
    SCOPED_TRACE(rejected);
    http_client c(port_);
    c.send(rejected + get("/style.css"));
    const response r = c.read_response();
    EXPECT_EQ(r.status, 405);
    response next;
    const read_status s = c.try_read_response(next);
    if (s == read_status::ok) {
      EXPECT_EQ(next.status, 200);
      EXPECT_EQ(next.body, style_css);
      EXPECT_FALSE(r.connection_has("close")) << "said close, then answered another request";
    } else {
      EXPECT_EQ(s, read_status::closed) << to_string(s) << ": " << c.last_error();
    }
  }
  EXPECT_TRUE(serves_new_connection());
}

TEST_F(ServerTest, GetBodyIsDiscarded) {
  start();
  http_client c(port_);
  c.send(get("/a.html", "Content-Length: 5\r\n") + "hello" + get("/style.css"));
  const auto rs = c.read_responses(2);
  EXPECT_EQ(rs[0].status, 200);
  EXPECT_EQ(rs[0].body, a_html);
  EXPECT_EQ(rs[1].status, 200);
  EXPECT_EQ(rs[1].body, style_css);
}

// --- Malformed requests ------------------------------------------------------------------------

TEST_F(ServerTest, MalformedRequestsGetPreciseErrorsAndAreClosed) {
  start();
  const config defaults;
  std::string many_fields = "GET /a.html HTTP/1.1\r\nHost: localhost\r\n";
  for (std::size_t i = 0; i < defaults.max_headers + 20; ++i)
    many_fields += "X-F" + std::to_string(i) + ": v\r\n";
  many_fields += "\r\n";
  std::string big_section = "GET /a.html HTTP/1.1\r\nHost: localhost\r\n";
  for (std::size_t i = 0; big_section.size() <= defaults.max_header_bytes + 1000; ++i)
    big_section += "X-Big" + std::to_string(i) + ": " + std::string(400, 'b') + "\r\n";
  const std::string long_line =
      "GET /" + std::string(defaults.max_request_line + 100, 'a') + " HTTP/1.1\r\n";

  struct {
    const char* what;
    std::string request;
    int status;
  } const cases[] = {
      {"Content-Length with Transfer-Encoding",
       get("/a.html", "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n") + "0\r\n\r\n", 400},
      {"two different Content-Length",
       get("/a.html", "Content-Length: 5\r\nContent-Length: 6\r\n") + "hello!", 400},
      {"non-numeric Content-Length", get("/a.html", "Content-Length: abc\r\n"), 400},
      {"whitespace before colon", get("/a.html", "X-Test : 1\r\n"), 400},
      {"obs-fold", get("/a.html", "X-Test: a\r\n b\r\n"), 400},
      {"request line too long", long_line + "Host: localhost\r\n\r\n", 414},
      {"request line too long, unterminated", long_line.substr(0, long_line.size() - 2), 414},
      {"header section too large", big_section + "\r\n", 431},
      {"header section too large, unterminated", big_section, 431},
      {"too many header fields", many_fields, 431},
      {"HTTP/2.0", "GET /a.html HTTP/2.0\r\nHost: localhost\r\n\r\n", 505},
      {"garbage line", "this is not http\r\n\r\n", 400},
      {"lower-case version", "GET /a.html http/1.1\r\nHost: localhost\r\n\r\n", 400},
      {"target without slash", "GET a.html HTTP/1.1\r\nHost: localhost\r\n\r\n", 400},
  };
  for (const auto& k : cases) {
    SCOPED_TRACE(k.what);
    http_client c(port_);
    c.send(k.request);
    response r;
    const read_status s = c.try_read_response(r);
    ASSERT_EQ(s, read_status::ok) << to_string(s) << ": " << c.last_error();
    EXPECT_EQ(r.status, k.status);
    // The framing of what follows is unknown: the server closes (RFC 9112 6.3, 11.2).
    EXPECT_TRUE(c.wait_for_close(3s)) << "connection left open after " << r.status;
    EXPECT_TRUE(serves_new_connection());
  }
}

// --- Traversal and symbolic links -------------------------------------------------------------

TEST_F(ServerTest, TraversalNeverLeavesTheRoot) {
  start();
  const char* targets[] = {
      "/../outside/secret.txt",
      "/%2e%2e/outside/secret.txt",
      "/%2E%2E/outside/secret.txt",
      "/a/%2e%2E/%2e%2e/outside/secret.txt",
      "/a/b/../../../outside/secret.txt",
      "/..%2foutside%2fsecret.txt",
      "/%2e%2e%2foutside%2fsecret.txt",
      "//../outside/secret.txt",
      "/./../outside/secret.txt",
      "/..\\outside\\secret.txt",
      "/%5c..%5coutside%5csecret.txt",
      "/..",
      "/a.html%00",
      "/a.html%00.txt",
      "/linkdir/secret.txt",
      "/link.txt",
      "http://localhost/../outside/secret.txt",
  };
  for (const char* target : targets) {
    SCOPED_TRACE(target);
    http_client c(port_);
    c.send(get(target));
    response r;
    const read_status s = c.try_read_response(r);
    EXPECT_EQ(s, read_status::ok) << to_string(s) << ": " << c.last_error();
    if (s != read_status::ok) continue;
    EXPECT_NE(r.status, 200);
    EXPECT_GE(r.status, 400);
    EXPECT_LT(r.status, 500);
    EXPECT_EQ(r.body.find("TOP-SECRET"), std::string::npos) << "the secret leaked";
  }
  EXPECT_EQ(fetch(get("/a.html%00")).status, 400);
  EXPECT_TRUE(serves_new_connection());
}

TEST_F(ServerTest, SymlinkOutsideRootIsForbiddenByDefault) {
  start();
  for (const char* target : {"/link.txt", "/linkdir/secret.txt"}) {
    SCOPED_TRACE(target);
    const response r = fetch(get(target));
    EXPECT_EQ(r.status, 403);
    EXPECT_EQ(r.body.find("TOP-SECRET"), std::string::npos);
  }
}

TEST_F(ServerTest, SymlinkOutsideRootIsServedWhenAllowed) {
  config cfg = base_config();
  cfg.follow_symlinks_outside_root = true;
  start(cfg);
  const response r = fetch(get("/link.txt"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, secret_txt);
  const response through_dir = fetch(get("/linkdir/secret.txt"));
  EXPECT_EQ(through_dir.status, 200);
  EXPECT_EQ(through_dir.body, secret_txt);
  // ".." in the request still may not climb out, whatever the symlink setting.
  EXPECT_NE(fetch(get("/../outside/secret.txt")).status, 200);
}

TEST_F(ServerTest, SymlinkInsideRootIsServedInBothModes) {
  for (const bool follow : {false, true}) {
    SCOPED_TRACE(follow ? "follow_symlinks_outside_root" : "default");
    config cfg = base_config();
    cfg.follow_symlinks_outside_root = follow;
    start(cfg);
    const response r = fetch(get("/inlink.html"));
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, a_html);
    const response up = fetch(get("/a/up-link.html"));
    EXPECT_EQ(up.status, 200);
    EXPECT_EQ(up.body, index_html);
    server_->stop(1s);
    server_.reset();
  }
}

// --- Timeouts ----------------------------------------------------------------------------------

TEST_F(ServerTest, HeaderTimeoutClosesASilentClient) {
  config cfg = base_config();
  cfg.header_timeout = 300ms;
  start(cfg);
  http_client c(port_);
  c.send("GET /a.ht");
  const auto started = std::chrono::steady_clock::now();
  EXPECT_TRUE(c.wait_for_close(5s)) << "a partial request line was kept open";
  EXPECT_GE(std::chrono::steady_clock::now() - started, 200ms) << "closed before the timeout";
  EXPECT_TRUE(eventually(3s, [&] { return server_->open_connections() == 0; }));
  EXPECT_TRUE(serves_new_connection());

  // The same for a second request that stops half-way on a keep-alive connection.
  http_client second(port_);
  EXPECT_EQ(second.request(get("/a.html")).status, 200);
  second.send("GET /style.css HTTP/1.1\r\nHos");
  EXPECT_TRUE(second.wait_for_close(5s)) << "a partial second request was kept open";
}

// A client that trickles header lines must not keep the connection forever (slowloris): the
// timeout bounds the whole head, as nginx's client_header_timeout does, not each read.
TEST_F(ServerTest, HeaderTimeoutBoundsTheWholeHead) {
  config cfg = base_config();
  cfg.header_timeout = 300ms;
  start(cfg);
  http_client c(port_);
  c.send("GET /a.html HTTP/1.1\r\nHost: localhost\r\n");
  bool closed = false;
  for (int i = 0; i < 60 && !closed; ++i) {  // 60 lines, 50 ms apart: 3 s, 10x the timeout
    if (!c.try_send("X-Slow: 1\r\n") || c.peer_closed_now()) closed = true;
    if (!closed) std::this_thread::sleep_for(50ms);  // pacing the client, not synchronisation
  }
  EXPECT_TRUE(closed || c.peer_closed_now()) << "a trickling client outlived header_timeout 10x";
}

TEST_F(ServerTest, KeepAliveTimeoutClosesAnIdleConnection) {
  config cfg = base_config();
  cfg.keepalive_timeout = 300ms;
  start(cfg);
  http_client c(port_);
  const response r = c.request(get("/a.html"));
  EXPECT_EQ(r.status, 200);
  EXPECT_FALSE(r.connection_has("close"));
  std::size_t extra = 0;
  EXPECT_TRUE(c.wait_for_close(5s, &extra)) << "idle keep-alive connection kept open";
  EXPECT_EQ(extra, 0u);
}

TEST_F(ServerTest, SendTimeoutDropsAReaderThatStalls) {
  write_huge();
  config cfg = base_config();
  cfg.send_timeout = 300ms;
  start(cfg);
  http_client::options opts;
  opts.receive_buffer = 4096;
  http_client c(port_, opts);
  std::string requests;
  for (int i = 0; i < 4; ++i) requests += get("/huge.bin");
  c.send(requests);  // and never read
  ASSERT_TRUE(eventually(5s, [&] { return server_->open_connections() >= 1; }));
  EXPECT_TRUE(eventually(10s, [&] { return server_->open_connections() == 0; }))
      << "a stalled reader still holds a connection: " << server_->open_connections();
  EXPECT_TRUE(c.wait_for_close(10s));
  EXPECT_TRUE(serves_new_connection());
}

// --- Cache -------------------------------------------------------------------------------------

TEST_F(ServerTest, ChangedFileIsServedAfterRevalidation) {
  const std::string v1 = "old content\n";
  const std::string v2 = "new content, longer than the old one\n";
  const std::string v3 = "third, rewritten in place\n";
  docroot_.write("changing.txt", v1);
  config cfg = base_config();
  cfg.cache_revalidate = 100ms;
  start(cfg);
  http_client c(port_);
  const response first = c.request(get("/changing.txt"));
  ASSERT_EQ(first.body, v1);

  // Replaced by rename: every answer is the old file or the new one, never a mix.
  docroot_.replace("changing.txt", v2);
  response last;
  bool only_whole_versions = true;
  EXPECT_TRUE(eventually(
      3s,
      [&] {
        last = c.request(get("/changing.txt"));
        if (last.status != 200 || (last.body != v1 && last.body != v2)) only_whole_versions = false;
        return last.body == v2;
      },
      20ms))
      << "still serving: " << last.body;
  EXPECT_TRUE(only_whole_versions);
  EXPECT_EQ(last.header("Content-Length"), std::to_string(v2.size()));
  EXPECT_NE(last.header("ETag"), first.header("ETag"));

  // Rewritten in place (same inode, new size).
  docroot_.write("changing.txt", v3);
  EXPECT_TRUE(eventually(
      3s,
      [&] {
        last = c.request(get("/changing.txt"));
        return last.body == v3;
      },
      20ms))
      << "still serving: " << last.body;
  EXPECT_EQ(last.header("Content-Length"), std::to_string(v3.size()));
}

// --- Overload, limits, stop --------------------------------------------------------------------

// A full queue is a signal: with cache_lookup's only worker held and room for two in its queue,
// the third request and every one after it are answered 503 + Retry-After at once, counted as
// queue_full; the two queued are served when the worker goes on.
TEST_F(ServerTest, AFullQueueIsAnswered503WithRetryAfter) {
  config cfg = base_config();
  cfg.stages[server::cache_lookup].queue_capacity = 2;
  cfg.stages[server::cache_lookup].threads = 1;
  start(cfg);
  ASSERT_TRUE(serves_new_connection());
  auto& pipe = server_->pipeline();
  const auto refused = [&] {
    return pipe.rejected(server::cache_lookup, runtime::reject_reason::queue_full);
  };
  ASSERT_EQ(refused(), 0u);

  constexpr int requests = 6;
  std::vector<http_client> clients;
  {
    const thread_hold hold("cache_lookup/0");
    for (int i = 0; i < requests; ++i) {
      clients.emplace_back(port_);
      clients.back().send(get("/a.html"));
    }
    EXPECT_TRUE(eventually(20s, [&] { return refused() == requests - 2; }))
        << "refused " << refused() << " of " << requests << " with a queue of 2";
    EXPECT_EQ(pipe.group_of(server::cache_lookup).depth(), 2u);
  }  // the worker goes on

  int served = 0, unavailable = 0;
  for (auto& c : clients) {
    const response r = c.read_response();
    if (r.status == 200) {
      EXPECT_EQ(r.body, a_html);
      ++served;
      continue;
    }
    EXPECT_EQ(r.status, 503);
    EXPECT_EQ(r.header("Retry-After"), std::to_string(cfg.retry_after_seconds));
    EXPECT_TRUE(r.connection_has("close"));
    EXPECT_TRUE(c.wait_for_close(5s)) << "a shed connection was kept open";
    ++unavailable;
  }
  EXPECT_EQ(served, 2);
  EXPECT_EQ(unavailable, requests - 2);
  EXPECT_EQ(refused(), static_cast<std::uint64_t>(requests - 2));
  const server_snapshot snap = server_->snapshot();
  EXPECT_EQ(snap.responses[static_cast<std::size_t>(method_label::get)][status_index(503)],
            static_cast<std::uint64_t>(requests - 2));
  EXPECT_EQ(closed_for(snap, "overload"), static_cast<std::uint64_t>(requests - 2));
  // Refused at the hop into cache_lookup: a request read completely, its queue full.
  EXPECT_EQ(snap.shed[static_cast<std::size_t>(shed_class::request)]
                     [static_cast<std::size_t>(shed_reason::queue_full)],
            static_cast<std::uint64_t>(requests - 2));
  EXPECT_EQ(snap.shed_kept_alive, 0u);
  EXPECT_TRUE(serves_new_connection());
}

// Tiny queues under many pipelining clients: every answer is the whole file or a 503.
TEST_F(ServerTest, OverloadAnswersEveryRequestWithTheFileOr503) {
  config cfg = base_config();
  for (stage_config& s : cfg.stages) s.queue_capacity = 2;
  cfg.stages[server::cache_lookup].threads = 1;
  start(cfg);

  constexpr int connections = 64;
  const std::pair<const char*, const std::string*> batch[] = {
      {"/a.html", &a_html},         {"/style.css", &style_css},        {"/range.txt", &range_txt},
      {"/readme.txt", &readme_txt}, {"/blob.xyz", &blob_xyz},          {"/dir/", &index_html},
      {"/a.html", &a_html},         {"/with%20space.txt", &space_txt},
  };
  std::string requests;
  for (const auto& [target, body] : batch) requests += get(target);

  std::vector<http_client> clients;
  clients.reserve(connections);
  for (int i = 0; i < connections; ++i) clients.emplace_back(port_);
  for (auto& c : clients) c.send(requests);

  int served = 0;
  for (auto& c : clients) {
    bool said_close = false;
    for (const auto& [target, body] : batch) {
      SCOPED_TRACE(target);
      response r;
      const read_status s = c.try_read_response(r);
      if (s == read_status::closed && said_close) break;
      ASSERT_EQ(s, read_status::ok) << to_string(s) << ": " << c.last_error();
      if (r.status == 200) {
        EXPECT_EQ(r.body, *body);
        ++served;
      } else {
        EXPECT_EQ(r.status, 503);
        EXPECT_EQ(r.header("Retry-After"), std::to_string(cfg.retry_after_seconds));
      }
      said_close = r.connection_has("close");
    }
  }
  EXPECT_GT(served, 0);
  clients.clear();
  // The tiny queues may still be busy with the closes: a 503 right now is fair, not for long.
  EXPECT_TRUE(eventually(
      5s, [&] { return static_cast<bool>(serves_new_connection()); }, 50ms));
}

TEST_F(ServerTest, MaxConnectionsHoldsBackTheFifth) {
  config cfg = base_config();
  cfg.max_connections = 4;
  start(cfg);
  std::vector<http_client> open;
  for (int i = 0; i < 4; ++i) {
    open.emplace_back(port_);
    const response r = open.back().request(get("/a.html"));
    ASSERT_EQ(r.status, 200);
  }
  EXPECT_TRUE(eventually(2s, [&] { return server_->open_connections() == 4; }));

  // The kernel may complete the handshake for the fifth; the server must not serve it.
  std::optional<http_client> fifth;
  read_status fifth_status = read_status::closed;
  try {
    http_client::options opts;
    opts.timeout = 500ms;
    fifth.emplace(port_, opts);
    response r;
    if (fifth->try_send(get("/a.html"))) fifth_status = fifth->try_read_response(r);
    if (fifth_status == read_status::ok) {
      EXPECT_NE(r.status, 200) << "a fifth connection was served with max_connections = 4";
      fifth_status = read_status::closed;  // answered (503) and done with
    }
  } catch (const std::exception&) {
    // refused: also fine
  }
  EXPECT_LE(server_->open_connections(), 4u);

  open.front().close();
  bool served = false;
  if (fifth_status == read_status::timeout) {  // waiting to be accepted: now it must be
    fifth->set_timeout(5s);
    response r;
    served = fifth->try_read_response(r) == read_status::ok && r.status == 200 && r.body == a_html;
  }
  if (!served) {
    served = eventually(
        5s,
        [&] {
          try {
            http_client::options opts;
            opts.timeout = 1s;
            http_client c(port_, opts);
            return c.request(get("/a.html")).status == 200;
          } catch (const std::exception&) {
            return false;
          }
        },
        50ms);
  }
  EXPECT_TRUE(served) << "no connection served after one of the four closed";
  EXPECT_LE(server_->open_connections(), 4u);
}

TEST_F(ServerTest, ClientResetMidResponseIsCleanedUp) {
  write_huge();
  start();
  http_client c = huge_download(16384);
  ASSERT_TRUE(c.receive_at_least(64 * 1024));
  c.reset();
  EXPECT_TRUE(eventually(5s, [&] { return server_->open_connections() == 0; }));
  EXPECT_TRUE(serves_new_connection());
}

TEST_F(ServerTest, GracefulStopFinishesInFlightResponses) {
  const std::string huge = write_huge();
  start();
  http_client idle(port_);
  ASSERT_EQ(idle.request(get("/a.html")).status, 200);

  http_client c = huge_download(16384);
  ASSERT_TRUE(c.receive_at_least(64 * 1024));  // the response is under way, most of it unsent

  // The drain bound is generous (a sanitizer build sends 8 MiB slowly); stop returns as soon as
  // the response is done, and the checks below wait for conditions, not for time.
  std::atomic<bool> stop_called{false};
  bool stopped_cleanly = false;
  std::thread stopper([&] {
    stop_called = true;
    stopped_cleanly = server_->stop(60s);
  });
  ASSERT_TRUE(eventually(10s, [&] { return stop_called.load(); }));
  EXPECT_TRUE(eventually(10s, [&] { return connection_refused(port_); }))
      << "new connections still accepted after stop began";
  EXPECT_TRUE(idle.wait_for_close(10s)) << "idle connection kept open during stop";

  const response r = c.read_response();
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(same_bytes(r.body, huge));
  stopper.join();
  EXPECT_TRUE(stopped_cleanly);
}

// A drain that runs out: a client that stops reading holds its response, so stop() gives up at
// the bound, cuts the connection off (counted as a shutdown close) and says so.
TEST_F(ServerTest, ADrainThatRunsOutCutsTheRestOff) {
  write_huge();
  start();
  http_client c = huge_download(4096);  // and never read
  ASSERT_TRUE(eventually(10s, [&] {
    return server_->snapshot().requests_in_flight == 1 && server_->open_connections() == 1;
  }));
  const auto started = std::chrono::steady_clock::now();
  EXPECT_FALSE(server_->stop(300ms)) << "stop() said clean with a response still unsent";
  const auto took = std::chrono::steady_clock::now() - started;
  EXPECT_GE(took, 300ms) << "gave up before the drain bound";
  EXPECT_LT(took, 30s);
  EXPECT_EQ(server_->open_connections(), 0u) << "a connection outlived the cut-off";
  EXPECT_EQ(closed_for(server_->snapshot(), "shutdown"), 1u);
  EXPECT_TRUE(c.wait_for_close(10s)) << "the client was not cut off";
}

// Churn: clients open, ask, and close or go idle, while short timeouts make the event loop's
// scan close idle connections all the time; events for closed connections are still queued as
// their slots are reused. Every request on a new connection must be answered whole, no
// connection may be cut off as a timeout before its own deadline, and at the end nothing spins
// or stays open.
TEST_F(ServerTest, ChurnOfClosesAndReuseLosesNoRequest) {
  config cfg = base_config();
  cfg.keepalive_timeout = 50ms;
  cfg.max_connections = 32;  // few slots: each is reused often
  start(cfg);
  constexpr int threads = 4;
  constexpr auto duration = 3s;
  std::atomic<int> failures{0}, served{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < threads; ++t) {
    clients.emplace_back([&, t] {
      const auto until = std::chrono::steady_clock::now() + duration;
      for (int i = 0; std::chrono::steady_clock::now() < until && failures == 0; ++i) {
        try {
          http_client c(port_);
          const response r = c.request(get((i + t) % 2 ? "/a.html" : "/style.css"));
          if (r.status != 200 || r.body != ((i + t) % 2 ? a_html : style_css)) ++failures;
          ++served;
          switch ((i + t) % 3) {
            case 0:  // closes at once, its events racing the slot's reuse
              break;
            case 1:  // half-closes: the server sees end-of-stream
              c.shutdown_write();
              break;
            case 2: {  // stays idle past the keep-alive timeout: the scan closes it
              std::size_t extra = 0;
              if (!c.wait_for_close(5s, &extra) || extra != 0) ++failures;
              break;
            }
          }
        } catch (const std::exception& e) {
          ++failures;  // refused, reset or cut off: with 32 slots for 4 clients, never fair
          ADD_FAILURE() << e.what();
        }
      }
    });
  }
  for (auto& c : clients) c.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(served.load(), 0);
  EXPECT_TRUE(eventually(10s, [&] { return server_->open_connections() == 0; }))
      << server_->open_connections() << " connections still open";
  EXPECT_TRUE(eventually(10s, [&] {
    for (const auto& g : server_->snapshot().groups) {
      if (g.busy_threads != 0) return false;
    }
    return true;
  })) << "a worker is still busy with no traffic (a connection spinning?)";
  EXPECT_TRUE(serves_new_connection());
}

// --- Idle connections hold no buffers (issue 15) -------------------------------------------------

// The process's resident memory, from the kernel.
std::size_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

// Sanitizers shadow every byte the program touches (ThreadSanitizer several times over), so
// resident memory says nothing about weir's own there: the budget is checked in release builds.
constexpr bool sanitized_build =
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    true;
#elif defined(__has_feature)
    __has_feature(address_sanitizer) || __has_feature(thread_sanitizer);
#else
    false;
#endif

// A client connection that holds nothing in this process but its descriptor (an http_client
// keeps a receive buffer, which would count in the resident memory measured).
class bare_client {
 public:
  explicit bare_client(std::uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    if (fd_ < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    const timeval five_s{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &five_s, sizeof five_s);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&to), sizeof to) != 0)
      throw std::runtime_error(std::string("connect: ") + std::strerror(errno));
  }
  ~bare_client() { ::close(fd_); }
  bare_client(const bare_client&) = delete;
  bare_client& operator=(const bare_client&) = delete;

  // Sends `request` and reads until the response ends with `tail`; false on anything else.
  bool exchange(std::string_view request, std::string_view tail) {
    if (::send(fd_, request.data(), request.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(request.size()))
      return false;
    char buf[1024];
    std::size_t have = 0;
    while (have < sizeof buf) {
      const ssize_t n = ::recv(fd_, buf + have, sizeof buf - have, 0);
      if (n <= 0) return false;
      have += static_cast<std::size_t>(n);
      const std::string_view got(buf, have);
      if (got.starts_with("HTTP/1.1 200 ") && got.ends_with(tail)) return true;
    }
    return false;
  }

 private:
  int fd_;
};

// An idle keep-alive connection keeps its descriptor, state and peer address; its input buffer
// and request state go back when its response is done (stages/connection.hpp, `exchange`). The
// budget is the target, 0.4 KB a connection (nginx: 0.41 KB), measured as the process's
// resident memory grows while thousands of connections are opened and served one request each.
// Each is served before the next is opened, so at the measurement at most the last response's
// buffers can still be held: a few KB over thousands of connections. A connection that kept its
// 4 KB buffer would cost ten times the budget.
TEST_F(ServerTest, IdleKeepAliveConnectionsStayUnderTheMemoryBudget) {
  constexpr double budget_bytes = 400;
  constexpr std::size_t wanted = 3000;
  rlimit fds{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &fds), 0);
  fds.rlim_cur = fds.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &fds);
  // Both ends of every connection are in this process.
  const std::size_t n = std::min<std::size_t>(wanted, (fds.rlim_cur - 256) / 2);
  if (n < 1000)
    GTEST_SKIP() << "RLIMIT_NOFILE allows " << fds.rlim_cur << " descriptors: too few for 1000 "
                 << "connections with both ends in one process";
  start();
  const std::string request = get("/readme.txt");
  const std::string tail = "\r\n\r\n" + readme_txt;
  // Warm up: the same pattern on a few hundred connections, closed again, so that what is
  // allocated once (threads' caches, the first slots, the cache entry) is in the baseline.
  {
    std::vector<std::unique_ptr<bare_client>> warm;
    for (int i = 0; i < 200; ++i) {
      warm.push_back(std::make_unique<bare_client>(port_));
      ASSERT_TRUE(warm.back()->exchange(request, tail)) << "warm-up request " << i;
    }
  }
  ASSERT_TRUE(eventually(10s, [&] { return server_->open_connections() == 0; }));
  std::vector<std::unique_ptr<bare_client>> idle;
  idle.reserve(n);  // the client's own memory, allocated before the baseline
  const std::size_t before = resident_bytes();
  for (std::size_t i = 0; i < n; ++i) {
    idle.push_back(std::make_unique<bare_client>(port_));
    ASSERT_TRUE(idle.back()->exchange(request, tail)) << "request on connection " << i;
  }
  ASSERT_TRUE(eventually(10s, [&] { return server_->open_connections() == n; }))
      << server_->open_connections() << " of " << n << " open";
  const std::size_t after = resident_bytes();
  // bare_client objects: 4 bytes each, allocated after the baseline (counted against weir).
  const double per_connection =
      (static_cast<double>(after) - static_cast<double>(before)) / static_cast<double>(n);
  RecordProperty("idle_connection_bytes", static_cast<int>(per_connection));
  std::printf("%zu idle connections: %.0f bytes of resident memory each\n", n, per_connection);
  if (sanitized_build) {
    std::printf(
        "(sanitizer build: shadow memory is in that figure; the budget is checked in "
        "release)\n");
  } else {
    EXPECT_LE(per_connection, budget_bytes)
        << "resident memory grew " << (after - before) << " bytes for " << n << " idle connections";
  }
  // Every one still serves: the buffers come back when bytes arrive.
  for (std::size_t i = 0; i < n; ++i)
    ASSERT_TRUE(idle[i]->exchange(request, tail)) << "second request on connection " << i;
}

// A request whose head arrives in pieces keeps its bytes across the parks in between, on a
// connection whose buffers were given back after its first request, and behind a pipelined one.
// Each piece is seen by read_parse (it parks once it has read it) before the next is sent.
TEST_F(ServerTest, PartialAndPipelinedHeadsSurviveTheBufferHandBack) {
  start();
  auto& pipe = server_->pipeline();
  const auto read_parse_turns = [&] { return pipe.processed(server::read_parse); };
  http_client c(port_);
  const response first = c.request(get("/readme.txt"));  // then idle: its buffers go back
  ASSERT_EQ(first.status, 200);
  EXPECT_EQ(first.body, readme_txt);
  ASSERT_TRUE(eventually(5s, [&] { return server_->snapshot().requests_in_flight == 0; }));

  // In three pieces, each read and parked on.
  const std::string head = get("/a.html");
  const std::size_t cuts[] = {0, 3, head.size() / 2, head.size()};
  for (std::size_t i = 0; i + 1 < std::size(cuts); ++i) {
    const std::uint64_t turns = read_parse_turns();
    c.send(std::string_view(head).substr(cuts[i], cuts[i + 1] - cuts[i]));
    if (i + 2 < std::size(cuts)) {
      ASSERT_TRUE(eventually(5s, [&] { return read_parse_turns() > turns; }))
          << "read_parse never took piece " << i;
    }
  }
  response r = c.read_response();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, a_html);

  // A whole request and the first half of the next in one write: the first is answered, and the
  // second's half stays with the connection (it is not idle) until the rest comes.
  const std::string next = get("/style.css");
  const std::uint64_t turns = read_parse_turns();
  c.send(get("/readme.txt") + next.substr(0, next.size() / 2));
  r = c.read_response();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, readme_txt);
  // Its turn that answered the first, then the one that parked on the half.
  ASSERT_TRUE(eventually(5s, [&] { return read_parse_turns() >= turns + 2; }));
  c.send(std::string_view(next).substr(next.size() / 2));
  r = c.read_response();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, style_css);

  // And idle again, the next request takes fresh buffers.
  r = c.request(get("/a.html"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, a_html);
  EXPECT_TRUE(c.buffered().empty());
}

// --- Live changes (SIGHUP: server::apply_live) ---------------------------------------------------

// Limits hold per parse: lowered, they apply to the next request on a connection already open as
// much as on a new one; raised again, the same request passes.
TEST_F(ServerTest, LoweredHeaderLimitsApplyToTheNextRequest) {
  start();
  const std::string big_header = "X-Big: " + std::string(2000, 'x') + "\r\n";
  const std::string three_headers = "X-1: a\r\nX-2: b\r\nX-3: c\r\n";
  http_client open(port_);
  ASSERT_EQ(open.request(get("/a.html", big_header)).status, 200);
  ASSERT_EQ(fetch(get("/a.html", three_headers)).status, 200);

  config next = base_config();
  next.max_request_line = 512;
  next.max_header_bytes = 1024;
  next.max_headers = 3;  // Host plus three: one too many
  server_->apply_live(next);
  EXPECT_EQ(open.request(get("/a.html", big_header)).status, 431);
  EXPECT_EQ(fetch(get("/a.html", big_header)).status, 431);
  EXPECT_EQ(fetch(get("/a.html", three_headers)).status, 431);
  EXPECT_EQ(fetch(get("/" + std::string(600, 'a'))).status, 414);
  EXPECT_TRUE(serves_new_connection());

  server_->apply_live(base_config());
  EXPECT_EQ(fetch(get("/a.html", big_header)).status, 200);
  EXPECT_EQ(fetch(get("/a.html", three_headers)).status, 200);
}

// A shorter keep-alive timeout closes a connection that goes idle after the change sooner: the
// default (65 s) would outlast the wait below many times. (A connection already parked keeps the
// deadline it was given; when exactly a connection parks, relative to the change, the client
// cannot see, so that half is not tested here.)
TEST_F(ServerTest, ShortenedKeepAliveClosesConnectionsIdleFromNowSooner) {
  start();
  ASSERT_TRUE(serves_new_connection());
  config next = base_config();
  next.keepalive_timeout = 300ms;
  server_->apply_live(next);
  http_client c(port_);
  ASSERT_EQ(c.request(get("/a.html")).status, 200);
  const auto idle_from = std::chrono::steady_clock::now();
  std::size_t extra = 0;
  EXPECT_TRUE(c.wait_for_close(10s, &extra)) << "idle past the new keep-alive timeout, still open";
  EXPECT_GE(std::chrono::steady_clock::now() - idle_from, 200ms) << "closed before the timeout";
  EXPECT_EQ(extra, 0u);
  // Counted just after the socket is closed: the client may see the FIN first.
  EXPECT_TRUE(eventually(5s, [&] { return closed_for(server_->snapshot(), "timeout") == 1; }));
}

// The 503 a full queue sheds carries the Retry-After in force now.
TEST_F(ServerTest, ChangedRetryAfterIsInTheNextShed) {
  config cfg = base_config();
  cfg.stages[server::cache_lookup].queue_capacity = 2;
  start(cfg);
  ASSERT_TRUE(serves_new_connection());
  config next = cfg;
  next.retry_after_seconds = 7;
  server_->apply_live(next);
  auto& pipe = server_->pipeline();
  const auto refused = [&] {
    return pipe.rejected(server::cache_lookup, runtime::reject_reason::queue_full);
  };
  std::vector<http_client> clients;
  {
    const thread_hold hold("cache_lookup/0");
    for (int i = 0; i < 3; ++i) {
      clients.emplace_back(port_);
      clients.back().send(get("/a.html"));
    }
    ASSERT_TRUE(eventually(20s, [&] { return refused() == 1; })) << "refused " << refused();
  }
  int shed = 0;
  for (auto& c : clients) {
    const response r = c.read_response();
    if (r.status == 200) continue;
    EXPECT_EQ(r.status, 503);
    EXPECT_EQ(r.header("Retry-After"), "7");
    ++shed;
  }
  EXPECT_EQ(shed, 1);
}

// Lowered, the connection limit holds new connections back in the kernel's backlog (the open ones
// stay); raised again, the one waiting is served. Above the table's start-up size it is capped.
TEST_F(ServerTest, LoweredMaxConnectionsHoldsNewOnesBackUntilRaised) {
  config cfg = base_config();
  cfg.max_connections = 8;
  start(cfg);
  std::vector<http_client> open;
  for (int i = 0; i < 2; ++i) {
    open.emplace_back(port_);
    ASSERT_EQ(open.back().request(get("/a.html")).status, 200);
  }
  config next = cfg;
  next.max_connections = 2;
  server_->apply_live(next);
  EXPECT_EQ(server_->snapshot().connections_max, 2u);

  http_client::options opts;
  opts.timeout = 500ms;
  http_client third(port_, opts);  // the kernel completes the handshake; weir must not accept
  third.send(get("/a.html"));
  response r;
  EXPECT_EQ(third.try_read_response(r), read_status::timeout) << "served past the lowered limit";
  EXPECT_LE(server_->open_connections(), 2u);
  for (auto& c : open) EXPECT_EQ(c.request(get("/a.html")).status, 200) << "an open one was cut";

  next.max_connections = 100;
  server_->apply_live(next);
  EXPECT_EQ(server_->snapshot().connections_max, 8u) << "not capped at the table's size";
  third.set_timeout(10s);
  ASSERT_EQ(third.try_read_response(r), read_status::ok) << third.last_error();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, a_html);
}

// The cache shrinks to its new bound at once and goes on serving the right bytes under another
// policy; a shorter revalidate interval makes a changed file show sooner.
TEST_F(ServerTest, CacheBoundPolicyAndRevalidateChangeLive) {
  config cfg = base_config();
  cfg.cache_revalidate = 1h;
  start(cfg);
  const std::pair<const char*, const std::string*> files[] = {
      {"/a.html", &a_html},         {"/style.css", &style_css}, {"/blob.xyz", &blob_xyz},
      {"/readme.txt", &readme_txt}, {"/range.txt", &range_txt}, {"/dir/", &index_html}};
  // 40 more, about 400 bytes each as cached: more than 2 per shard of 1 KiB can hold.
  for (int i = 0; i < 40; ++i)
    docroot_.write("small/" + std::to_string(i) + ".txt", "small file " + std::to_string(i) + "\n");
  http_client c(port_);
  for (const auto& [target, body] : files) ASSERT_EQ(c.request(get(target)).body, *body);
  for (int i = 0; i < 40; ++i)
    ASSERT_EQ(c.request(get("/small/" + std::to_string(i) + ".txt")).status, 200);
  const auto filled = server_->snapshot().cache;
  ASSERT_GE(filled.entries, 46u);

  config next = cfg;
  next.cache_max_bytes = 16u << 10;  // 1 KiB per shard
  next.cache_max_file_bytes = 1u << 10;
  next.cache_replacement = cache_policy::lfu;
  server_->apply_live(next);
  const auto shrunk = server_->snapshot().cache;
  EXPECT_EQ(shrunk.capacity_bytes, 16u << 10);
  EXPECT_LE(shrunk.bytes, 16u << 10);
  EXPECT_GT(shrunk.evictions, filled.evictions);
  for (int round = 0; round < 3; ++round) {
    for (const auto& [target, body] : files) {
      const response r = c.request(get(target));
      EXPECT_EQ(r.status, 200) << target;
      EXPECT_EQ(r.body, *body) << target;
    }
    for (int i = 0; i < 40; ++i)
      EXPECT_EQ(c.request(get("/small/" + std::to_string(i) + ".txt")).body,
                "small file " + std::to_string(i) + "\n");
  }
  EXPECT_LE(server_->snapshot().cache.bytes, 16u << 10);

  // Revalidation: with 1 h the cached bytes stay; at 100 ms the new file shows.
  const std::string v2 = "readme, rewritten\n";
  config cached = cfg;  // a bound that holds readme.txt again
  server_->apply_live(cached);
  ASSERT_EQ(c.request(get("/readme.txt")).body, readme_txt);
  docroot_.replace("readme.txt", v2);
  EXPECT_EQ(c.request(get("/readme.txt")).body, readme_txt) << "revalidated within the hour";
  cached.cache_revalidate = 100ms;
  server_->apply_live(cached);
  std::string last;
  EXPECT_TRUE(eventually(5s,
                         [&] {
                           last = c.request(get("/readme.txt")).body;
                           return last == v2;
                         }))
      << "still serving: " << last;
}

std::uint64_t shed_count(const server_snapshot& s, shed_class k, shed_reason r) {
  return s.shed[static_cast<std::size_t>(k)][static_cast<std::size_t>(r)];
}

// --fault-shed close: every parsed GET takes the path a full queue takes (503, Retry-After,
// close) and is counted as a 503 and a shed; switched off, the next connection is served again.
TEST_F(ServerTest, FaultShedCloseAnswersEveryRequest503AndCloses) {
  start();
  server_->set_fault_shed(fault_shed_mode::close);
  for (int i = 0; i < 3; ++i) {
    http_client c(port_);
    const response r = c.request(get("/a.html"));
    EXPECT_EQ(r.status, 503);
    EXPECT_EQ(r.header("Retry-After"), std::to_string(base_config().retry_after_seconds));
    EXPECT_EQ(r.header("Connection"), "close");
    EXPECT_EQ(r.header("Content-Length"), "0");
    EXPECT_TRUE(c.wait_for_close(std::chrono::seconds(10)));
  }
  const server_snapshot snap = server_->snapshot();
  EXPECT_EQ(shed_count(snap, shed_class::request, shed_reason::fault), 3u);
  EXPECT_EQ(snap.shed_kept_alive, 0u);
  // A close is counted just after the socket is closed, so after the client may see it.
  EXPECT_TRUE(eventually(std::chrono::seconds(10),
                         [&] { return closed_for(server_->snapshot(), "overload") == 3u; }));
  server_->set_fault_shed(fault_shed_mode::off);
  http_client c(port_);
  EXPECT_EQ(c.request(get("/a.html")).status, 200);
}

// --fault-shed keep: the refusal admission control sends. 503 + Retry-After on the connection the
// request came on, which stays open: more requests on it, pipelined ones answered in order, an
// HTTP/1.0 keep-alive client told so, a HEAD without a body; then served again on the same one.
TEST_F(ServerTest, FaultShedKeepRefusesWith503AndKeepsTheConnection) {
  start();
  server_->set_fault_shed(fault_shed_mode::keep);
  http_client c(port_);
  for (int i = 0; i < 3; ++i) {
    const response r = c.request(get("/a.html"));
    EXPECT_EQ(r.status, 503);
    EXPECT_EQ(r.header("Retry-After"), std::to_string(base_config().retry_after_seconds));
    EXPECT_EQ(r.header("Content-Length"), "0");
    EXPECT_FALSE(r.connection_has("close"));
    EXPECT_TRUE(r.body.empty());
  }
  // Pipelined, a body to drop in between: three answers, in order, on the same connection.
  c.send(get("/a.html") + "GET /b.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc" +
         "HEAD /a.html HTTP/1.1\r\nHost: t\r\n\r\n");
  const std::vector<response> rs = c.read_responses({false, false, true});
  ASSERT_EQ(rs.size(), 3u);
  for (const response& r : rs) EXPECT_EQ(r.status, 503);
  // HTTP/1.0 asking to keep alive is told it is kept.
  const response old = c.request("GET /a.html HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  EXPECT_EQ(old.status, 503);
  EXPECT_TRUE(old.connection_has("keep-alive"));
  EXPECT_TRUE(c.is_open());

  server_->set_fault_shed(fault_shed_mode::off);
  const response served = c.request(get("/a.html"));  // the same connection
  EXPECT_EQ(served.status, 200);
  EXPECT_EQ(served.body, a_html);

  const server_snapshot snap = server_->snapshot();
  EXPECT_EQ(shed_count(snap, shed_class::request, shed_reason::fault), 7u);
  EXPECT_EQ(snap.shed_kept_alive, 7u);
  EXPECT_EQ(snap.responses[static_cast<std::size_t>(method_label::get)][status_index(503)], 6u);
  EXPECT_EQ(snap.responses[static_cast<std::size_t>(method_label::head)][status_index(503)], 1u);
  EXPECT_EQ(closed_for(snap, "overload"), 0u);
  EXPECT_EQ(server_->open_connections(), 1u);
}

// A refused request on a connection that ends anyway (HTTP/1.0 without keep-alive, or
// Connection: close) is answered 503 and closed, even in keep mode.
TEST_F(ServerTest, FaultShedKeepClosesWhenTheClientDoesNotKeepAlive) {
  start();
  server_->set_fault_shed(fault_shed_mode::keep);
  for (const std::string& raw :
       {std::string("GET /a.html HTTP/1.0\r\n\r\n"), get("/a.html", "Connection: close\r\n")}) {
    http_client c(port_);
    const response r = c.request(raw);
    EXPECT_EQ(r.status, 503);
    EXPECT_TRUE(r.connection_has("close"));
    EXPECT_TRUE(c.wait_for_close(std::chrono::seconds(10)));
  }
  const server_snapshot snap = server_->snapshot();
  EXPECT_EQ(shed_count(snap, shed_class::request, shed_reason::fault), 2u);
  EXPECT_EQ(snap.shed_kept_alive, 0u);
}

}  // namespace
}  // namespace weir::test
