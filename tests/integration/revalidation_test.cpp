// Cache revalidation through a real weir::server: a cached file is re-checked (stat only) once
// cache.revalidate has passed since its last check, and rebuilt when it no longer names the same
// file (device, inode, size, mtime). These cases change one of those at a time; the last one
// shows that inside the window the cache answers as it was, whatever happened on disk.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <ctime>
#include <memory>
#include <string>

#include "stages/server.hpp"
#include "tests/integration/http_client.hpp"
#include "tests/integration/same_bytes.hpp"
#include "tests/integration/test_docroot.hpp"

using namespace std::chrono_literals;

namespace weir::test {
namespace {

constexpr std::time_t fixed_mtime = 1577934245;  // Thu, 02 Jan 2020 03:04:05 GMT
// Above cache_max_file_bytes (256 KiB by default): the entry keeps the file open for sendfile
// instead of holding its bytes, so a stale entry would send the replaced inode's content.
constexpr std::size_t large_size = 300u << 10;

struct stat stat_of(const std::filesystem::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
  return st;
}

bool set_mtime(const std::filesystem::path& p, const struct timespec& t) {
  const struct timespec times[2] = {{0, UTIME_OMIT}, t};
  return ::utimensat(AT_FDCWD, p.c_str(), times, 0) == 0;
}

// Small files are cached with their bytes; large ones as an open descriptor.
class RevalidationTest : public ::testing::TestWithParam<std::size_t> {
 protected:
  void TearDown() override {
    if (server_) server_->stop(1s);
  }

  void start(std::chrono::milliseconds revalidate) {
    config cfg;
    cfg.root = docroot_.root().string();
    cfg.listen = "127.0.0.1:0";
    cfg.cache_revalidate = revalidate;
    server_ = std::make_unique<server>(std::move(cfg));
    server_->start();
    port_ = server_->port();
    ASSERT_NE(port_, 0);
  }

  response fetch(const std::string& target) {
    http_client c(port_);
    return c.request(get(target));
  }

  // Two versions of the test file of the same size, differing from the first byte on.
  std::string version(std::uint32_t seed) const { return test_docroot::pattern(GetParam(), seed); }

  std::filesystem::path path_of(const std::string& rel) const { return docroot_.root() / rel; }

  cache_snapshot cache() const { return server_->snapshot().cache; }

  // Serves `rel` twice, so that it is cached and the second answer came from the cache.
  void cache_it(const std::string& rel, const std::string& body) {
    for (int i = 0; i < 2; ++i) {
      const response r = fetch("/" + rel);
      ASSERT_EQ(r.status, 200);
      ASSERT_TRUE(same_bytes(r.body, body));
    }
    ASSERT_EQ(cache().insertions, 1u);
    ASSERT_GE(cache().hits, 1u);
  }

  // First member: it outlives TearDown, so a stop() that never returns is caught too.
  hang_guard guard_{
      std::string("test ") + ::testing::UnitTest::GetInstance()->current_test_info()->name(),
      std::chrono::seconds(120)};
  test_docroot docroot_;
  std::unique_ptr<server> server_;
  std::uint16_t port_ = 0;
};

// A deploy that writes the new version beside the old, gives it the old mtime and renames it
// over: size and mtime are the same, only the inode tells the two apart.
TEST_P(RevalidationTest, ReplacementThatChangesOnlyTheInodeIsServed) {
  const std::string v1 = version(1), v2 = version(2);
  docroot_.write("f.bin", v1);
  docroot_.set_mtime("f.bin", fixed_mtime);
  ASSERT_NO_FATAL_FAILURE(start(0ms));  // every request revalidates: no window to wait out
  ASSERT_NO_FATAL_FAILURE(cache_it("f.bin", v1));
  const struct stat before = stat_of(path_of("f.bin"));

  docroot_.write("f.bin.next", v2);  // created while f.bin exists: another inode
  ASSERT_TRUE(set_mtime(path_of("f.bin.next"), before.st_mtim));
  std::filesystem::rename(path_of("f.bin.next"), path_of("f.bin"));
  const struct stat after = stat_of(path_of("f.bin"));
  ASSERT_NE(after.st_ino, before.st_ino);
  ASSERT_EQ(after.st_dev, before.st_dev);
  ASSERT_EQ(after.st_size, before.st_size);
  ASSERT_EQ(after.st_mtim.tv_sec, before.st_mtim.tv_sec);
  ASSERT_EQ(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);

  const response r = fetch("/f.bin");
  ASSERT_EQ(r.status, 200);
  EXPECT_TRUE(same_bytes(r.body, v2)) << "the replaced file is still served";
  EXPECT_EQ(cache().insertions, 2u) << "the entry was rebuilt";
  EXPECT_TRUE(same_bytes(fetch("/f.bin").body, v2));
}

// Rewritten in place (same inode, same size) and given another mtime: only the mtime moved.
TEST_P(RevalidationTest, RewriteThatChangesOnlyTheMtimeIsServed) {
  const std::string v1 = version(1), v2 = version(2);
  docroot_.write("f.bin", v1);
  docroot_.set_mtime("f.bin", fixed_mtime);
  ASSERT_NO_FATAL_FAILURE(start(0ms));
  ASSERT_NO_FATAL_FAILURE(cache_it("f.bin", v1));
  const response first = fetch("/f.bin");
  const struct stat before = stat_of(path_of("f.bin"));

  {
    const int fd = ::open(path_of("f.bin").c_str(), O_WRONLY | O_CLOEXEC);  // no O_TRUNC
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::pwrite(fd, v2.data(), v2.size(), 0), static_cast<ssize_t>(v2.size()));
    ::close(fd);
  }
  docroot_.set_mtime("f.bin", fixed_mtime + 3600);
  const struct stat after = stat_of(path_of("f.bin"));
  ASSERT_EQ(after.st_ino, before.st_ino);
  ASSERT_EQ(after.st_size, before.st_size);
  ASSERT_EQ(after.st_mtim.tv_sec, fixed_mtime + 3600);

  const response r = fetch("/f.bin");
  ASSERT_EQ(r.status, 200);
  EXPECT_TRUE(same_bytes(r.body, v2)) << "the old bytes are still served";
  EXPECT_EQ(r.header("Last-Modified"), format_imf_fixdate(fixed_mtime + 3600));
  EXPECT_NE(r.header("ETag"), first.header("ETag"));
  EXPECT_EQ(cache().insertions, 2u) << "the entry was rebuilt";
}

// With a window of an hour, a file replaced (another inode, size and mtime) and then rewritten
// is still served from the cache exactly as it was, and nothing is re-read from disk.
TEST_P(RevalidationTest, InsideTheWindowTheCachedVersionIsServed) {
  const std::string v1 = version(1);
  const std::string v2 = test_docroot::pattern(GetParam() + 100, 2);
  docroot_.write("f.bin", v1);
  docroot_.set_mtime("f.bin", fixed_mtime);
  ASSERT_NO_FATAL_FAILURE(start(1h));
  ASSERT_NO_FATAL_FAILURE(cache_it("f.bin", v1));
  const response first = fetch("/f.bin");
  const cache_snapshot cached = cache();

  docroot_.replace("f.bin", v2);
  ASSERT_NE(stat_of(path_of("f.bin")).st_mtim.tv_sec, fixed_mtime);
  for (int i = 0; i < 5; ++i) {
    SCOPED_TRACE("request " + std::to_string(i));
    const response r = fetch("/f.bin");
    ASSERT_EQ(r.status, 200);
    EXPECT_TRUE(same_bytes(r.body, v1));
    EXPECT_EQ(r.header("Content-Length"), std::to_string(v1.size()));
    EXPECT_EQ(r.header("ETag"), first.header("ETag"));
    EXPECT_EQ(r.header("Last-Modified"), first.header("Last-Modified"));
  }
  const cache_snapshot now = cache();
  EXPECT_EQ(now.insertions, cached.insertions) << "rebuilt inside the window";
  EXPECT_EQ(now.misses, cached.misses);
  EXPECT_EQ(now.hits, cached.hits + 5);

  // The change is real: a server with an empty cache over the same root serves the new file.
  server fresh([&] {
    config cfg;
    cfg.root = docroot_.root().string();
    cfg.listen = "127.0.0.1:0";
    cfg.cache_revalidate = 1h;
    return cfg;
  }());
  fresh.start();
  http_client c(fresh.port());
  EXPECT_TRUE(same_bytes(c.request(get("/f.bin")).body, v2));
  c.close();
  fresh.stop(1s);
}

INSTANTIATE_TEST_SUITE_P(Sizes, RevalidationTest, ::testing::Values(std::size_t{4096}, large_size),
                         [](const ::testing::TestParamInfo<std::size_t>& param) {
                           return param.param == large_size ? "KeptOpen" : "HeldInMemory";
                         });

}  // namespace
}  // namespace weir::test
