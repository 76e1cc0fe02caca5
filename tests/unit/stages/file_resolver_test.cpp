#include "stages/file_resolver.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

namespace weir {
namespace {

namespace fs = std::filesystem;

class file_resolver_test : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/weir-resolver-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    root_ = base_ / "root";
    fs::create_directories(root_ / "dir");
    fs::create_directories(root_ / "empty");
    fs::create_directories(base_ / "outside");
    write(root_ / "a.txt", "alpha");
    write(root_ / "dir" / "index.html", "<p>index</p>");
    write(root_ / "dir" / "b.css", "b{}");
    write(base_ / "outside" / "secret.txt", "secret");
    fs::create_symlink("../outside/secret.txt", root_ / "escape.txt");
    fs::create_symlink("/etc/hostname", root_ / "absolute.txt");
    fs::create_symlink("dir/b.css", root_ / "inside.css");
    fs::create_symlink("../outside", root_ / "outdir");
    ASSERT_EQ(::mkfifo((root_ / "fifo").c_str(), 0644), 0);
  }
  void TearDown() override { fs::remove_all(base_); }

  static void write(const fs::path& p, const std::string& text) { std::ofstream(p) << text; }

  static std::string read_fd(int fd) {
    std::string out(4096, '\0');
    const ssize_t n = ::pread(fd, out.data(), out.size(), 0);
    out.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    return out;
  }

  file_resolver::result resolve(std::string_view path, bool follow = false) {
    file_resolver r(root_.string(), follow);
    auto res = r.resolve(path);
    if (res.fd >= 0) {
      body_ = read_fd(res.fd);
      ::close(res.fd);
      res.fd = 0;  // keep "was open" visible to the test without leaking
    }
    return res;
  }

  fs::path base_, root_;
  std::string body_;
};

TEST_F(file_resolver_test, serves_a_regular_file) {
  const auto r = resolve("/a.txt");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(body_, "alpha");
  EXPECT_EQ(r.file_name, "a.txt");
  EXPECT_EQ(r.st.st_size, 5);
}

TEST_F(file_resolver_test, missing_file_is_404) {
  EXPECT_EQ(resolve("/nope.txt").status, 404);
  EXPECT_EQ(resolve("/a.txt/below").status, 404);  // a file used as a directory
}

TEST_F(file_resolver_test, directory_with_slash_serves_its_index) {
  const auto r = resolve("/dir/");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(body_, "<p>index</p>");
  EXPECT_EQ(r.file_name, "index.html");
}

TEST_F(file_resolver_test, root_serves_index_only_if_present) {
  EXPECT_EQ(resolve("/").status, 403);  // no index.html at the root
  write(root_ / "index.html", "home");
  EXPECT_EQ(resolve("/").status, 200);
  EXPECT_EQ(body_, "home");
}

TEST_F(file_resolver_test, directory_without_slash_redirects) {
  EXPECT_EQ(resolve("/dir").status, 301);
}

TEST_F(file_resolver_test, directory_without_index_is_forbidden) {
  EXPECT_EQ(resolve("/empty/").status, 403);
}

TEST_F(file_resolver_test, symlink_inside_the_root_is_followed) {
  const auto r = resolve("/inside.css");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(body_, "b{}");
}

TEST_F(file_resolver_test, symlink_leaving_the_root_is_refused_by_default) {
  EXPECT_EQ(resolve("/escape.txt").status, 403);
  EXPECT_EQ(resolve("/absolute.txt").status, 403);
  EXPECT_EQ(resolve("/outdir/secret.txt").status, 403);
  EXPECT_NE(body_, "secret");
}

TEST_F(file_resolver_test, symlink_leaving_the_root_is_followed_when_allowed) {
  const auto r = resolve("/escape.txt", true);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(body_, "secret");
  EXPECT_EQ(resolve("/outdir/secret.txt", true).status, 200);
}

TEST_F(file_resolver_test, non_regular_files_are_forbidden_without_blocking) {
  // Opening a FIFO for reading would block without O_NONBLOCK; the test would hang.
  EXPECT_EQ(resolve("/fifo").status, 403);
}

TEST_F(file_resolver_test, unreadable_file_is_forbidden) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads every file";
  write(root_ / "locked.txt", "x");
  fs::permissions(root_ / "locked.txt", fs::perms::none);
  EXPECT_EQ(resolve("/locked.txt").status, 403);
}

TEST_F(file_resolver_test, unchanged_tracks_identity) {
  file_resolver r(root_.string(), false);
  auto first = r.resolve("/a.txt");
  ASSERT_EQ(first.status, 200);
  ::close(first.fd);
  EXPECT_TRUE(r.unchanged("/a.txt", first.st));
  write(root_ / "a.txt", "alpha, longer");  // size (and mtime) change
  EXPECT_FALSE(r.unchanged("/a.txt", first.st));
  fs::remove(root_ / "a.txt");
  EXPECT_FALSE(r.unchanged("/a.txt", first.st));
}

TEST_F(file_resolver_test, root_must_be_a_directory) {
  EXPECT_THROW(file_resolver((root_ / "a.txt").string(), false), std::system_error);
  EXPECT_THROW(file_resolver((base_ / "missing").string(), false), std::system_error);
}

}  // namespace
}  // namespace weir
