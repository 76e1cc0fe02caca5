#include "stages/file_resolver.hpp"

#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include <gtest/gtest.h>

namespace weir {
namespace {

namespace fs = std::filesystem;

// "nobody" and "nogroup" on Debian.
constexpr uid_t unprivileged_uid = 65534;
constexpr gid_t unprivileged_gid = 65534;

// Runs `check` in a forked child that, when the test runs as root (as CI does), first drops to
// nobody: root reads every file, so a permission check run as root passes without checking
// anything. `check` returns what went wrong, "" when nothing did; the child sends that back
// through a pipe and its exit status, and the parent turns it into the test's verdict.
::testing::AssertionResult as_unprivileged(const std::function<std::string()>& check) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    return ::testing::AssertionFailure() << "pipe2: " << std::strerror(errno);
  const pid_t pid = ::fork();
  if (pid < 0) return ::testing::AssertionFailure() << "fork: " << std::strerror(errno);
  if (pid == 0) {
    ::close(fds[0]);
    std::string message;
    if (::geteuid() == 0 && (::setgroups(0, nullptr) != 0 || ::setgid(unprivileged_gid) != 0 ||
                             ::setuid(unprivileged_uid) != 0)) {
      message = std::string("cannot drop to nobody: ") + std::strerror(errno);
    } else if (::geteuid() == 0 || ::getegid() == 0) {
      message = "still root after dropping privileges";
    } else {
      try {
        message = check();
      } catch (const std::exception& e) {
        message = std::string("exception: ") + e.what();
      }
    }
    for (std::size_t done = 0; done < message.size();) {
      const ssize_t n = ::write(fds[1], message.data() + done, message.size() - done);
      if (n <= 0 && errno != EINTR) break;
      if (n > 0) done += static_cast<std::size_t>(n);
    }
    ::_exit(message.empty() ? 0 : 1);  // no atexit handlers, no gtest teardown in the child
  }
  ::close(fds[1]);
  std::string message;
  char buf[512];
  for (;;) {
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    message.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return ::testing::AssertionFailure() << "waitpid: " << std::strerror(errno);
  }
  if (WIFSIGNALED(status))
    return ::testing::AssertionFailure() << "the unprivileged child died of signal "
                                         << WTERMSIG(status) << "; it said: " << message;
  if (WEXITSTATUS(status) != 0)
    return ::testing::AssertionFailure() << "as uid " << unprivileged_uid << ": " << message;
  return ::testing::AssertionSuccess();
}

// "" when `path` resolves to `status`, else what it resolved to.
std::string expect_status(const file_resolver& r, std::string_view path, int status) {
  file_resolver::result res = r.resolve(path);
  if (res.fd >= 0) ::close(res.fd);
  if (res.status == status) return "";
  return std::string(path) + " gave " + std::to_string(res.status) + ", want " +
         std::to_string(status) + "; ";
}

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
    // Readable by anyone where it should be (mkdtemp makes 0700; the umask may be strict), so the
    // checks run as nobody fail only where a test takes a permission away.
    for (const fs::path& dir : {base_, root_, root_ / "dir", root_ / "empty", base_ / "outside"})
      fs::permissions(dir, fs::perms(0755));
    for (const fs::path& file : {root_ / "a.txt", root_ / "dir" / "index.html",
                                 root_ / "dir" / "b.css", base_ / "outside" / "secret.txt"})
      fs::permissions(file, fs::perms(0644));
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

// Permission checks run as nobody (see as_unprivileged); each also serves a readable file, so
// a 403 cannot come from the docroot being closed to nobody altogether. The resolver is made
// before the fork: it holds the root open, and every lookup is relative to it, so the checks do
// not depend on whether nobody may search the directories above the root (in a chroot made with
// mktemp -d, it may not even search "/").
TEST_F(file_resolver_test, unreadable_file_is_forbidden) {
  write(root_ / "locked.txt", "x");
  fs::permissions(root_ / "locked.txt", fs::perms::none);
  const file_resolver r(root_.string(), false);  // opened as root, as the server opens it
  EXPECT_TRUE(as_unprivileged(
      [&] { return expect_status(r, "/a.txt", 200) + expect_status(r, "/locked.txt", 403); }));
}

TEST_F(file_resolver_test, unsearchable_directory_is_forbidden) {
  fs::create_directory(root_ / "private");
  write(root_ / "private" / "inner.txt", "inner");
  fs::permissions(root_ / "private" / "inner.txt", fs::perms(0644));
  fs::permissions(root_ / "private", fs::perms(0644));  // listable bits, but no search (x)
  const file_resolver r(root_.string(), false);         // opened as root, as the server opens it
  EXPECT_TRUE(as_unprivileged([&] {
    return expect_status(r, "/dir/b.css", 200) + expect_status(r, "/private/inner.txt", 403) +
           expect_status(r, "/private/", 403);
  }));
  fs::permissions(root_ / "private", fs::perms(0755));  // so that TearDown can remove it
}

TEST_F(file_resolver_test, unreadable_index_is_forbidden) {
  fs::permissions(root_ / "dir" / "index.html", fs::perms::none);
  const file_resolver r(root_.string(), false);  // opened as root, as the server opens it
  EXPECT_TRUE(as_unprivileged(
      [&] { return expect_status(r, "/dir/b.css", 200) + expect_status(r, "/dir/", 403); }));
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

// Sets the modification time of `p` to `t` exactly (nanoseconds included); false on failure.
bool set_mtime(const fs::path& p, const struct timespec& t) {
  const struct timespec times[2] = {{0, UTIME_OMIT}, t};
  return ::utimensat(AT_FDCWD, p.c_str(), times, 0) == 0;
}

struct stat stat_of(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
  return st;
}

bool same_mtime(const struct stat& a, const struct stat& b) {
  return a.st_mtim.tv_sec == b.st_mtim.tv_sec && a.st_mtim.tv_nsec == b.st_mtim.tv_nsec;
}

// Rewrites the start of `p` in place: same inode, same size (when `text` is no longer).
void overwrite_in_place(const fs::path& p, const std::string& text) {
  const int fd = ::open(p.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0) << p;
  EXPECT_EQ(::pwrite(fd, text.data(), text.size(), 0), static_cast<ssize_t>(text.size()));
  ::close(fd);
}

// A deploy that writes a new file of the same size, gives it the old mtime and renames it over:
// only the inode tells the two apart.
TEST_F(file_resolver_test, unchanged_sees_a_replacement_that_differs_only_in_inode) {
  const file_resolver r(root_.string(), false);
  auto first = r.resolve("/a.txt");
  ASSERT_EQ(first.status, 200);
  ::close(first.fd);
  const fs::path next = root_ / "a.txt.next";
  write(next, "ALPHA");  // created while a.txt still exists: another inode
  ASSERT_TRUE(set_mtime(next, first.st.st_mtim));
  const struct stat next_st = stat_of(next);
  ASSERT_EQ(next_st.st_size, first.st.st_size);
  ASSERT_TRUE(same_mtime(next_st, first.st));
  ASSERT_EQ(next_st.st_dev, first.st.st_dev);
  ASSERT_NE(next_st.st_ino, first.st.st_ino);
  EXPECT_TRUE(r.unchanged("/a.txt", first.st)) << "nothing renamed yet";

  fs::rename(next, root_ / "a.txt");
  EXPECT_FALSE(r.unchanged("/a.txt", first.st));
  EXPECT_EQ(stat_of(root_ / "a.txt").st_ino, next_st.st_ino);
}

// Rewritten in place with the same size, so only the mtime moves; by whole seconds, and by
// nanoseconds only (the ETag shows seconds only, so revalidation is what catches that one).
TEST_F(file_resolver_test, unchanged_sees_a_rewrite_that_differs_only_in_mtime) {
  const file_resolver r(root_.string(), false);
  auto first = r.resolve("/a.txt");
  ASSERT_EQ(first.status, 200);
  ::close(first.fd);
  // A known starting time with room for a nanosecond step within the same second.
  const struct timespec start = {1'600'000'000, 500'000'000};
  ASSERT_TRUE(set_mtime(root_ / "a.txt", start));
  first.st = stat_of(root_ / "a.txt");
  ASSERT_TRUE(r.unchanged("/a.txt", first.st));

  ASSERT_NO_FATAL_FAILURE(overwrite_in_place(root_ / "a.txt", "ALPHA"));
  for (const struct timespec t :
       {timespec{start.tv_sec - 3600, start.tv_nsec}, timespec{start.tv_sec, start.tv_nsec + 1}}) {
    SCOPED_TRACE("mtime " + std::to_string(t.tv_sec) + "." + std::to_string(t.tv_nsec));
    ASSERT_TRUE(set_mtime(root_ / "a.txt", t));
    const struct stat now = stat_of(root_ / "a.txt");
    ASSERT_EQ(now.st_ino, first.st.st_ino);
    ASSERT_EQ(now.st_size, first.st.st_size);
    ASSERT_EQ(now.st_mtim.tv_sec, t.tv_sec);
    ASSERT_EQ(now.st_mtim.tv_nsec, t.tv_nsec) << "the file system keeps no nanoseconds";
    EXPECT_FALSE(r.unchanged("/a.txt", first.st));
  }
}

TEST_F(file_resolver_test, root_must_be_a_directory) {
  EXPECT_THROW(file_resolver((root_ / "a.txt").string(), false), std::system_error);
  EXPECT_THROW(file_resolver((base_ / "missing").string(), false), std::system_error);
}

}  // namespace
}  // namespace weir
