#include "stages/file_resolver.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace weir {
namespace {

constexpr int open_flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY;

int status_for_errno(int err) {
  switch (err) {
    case ENOENT:
    case ENOTDIR:
    case ENAMETOOLONG:
      return 404;
    case EACCES:
    case EPERM:
    case EXDEV:  // RESOLVE_BENEATH: the path (through a symlink) leaves the root
    case ELOOP:
      return 403;
    case EMFILE:
    case ENFILE:
    case ENOMEM:
      return 503;
    default:
      return 500;
  }
}

bool same_identity(const struct stat& a, const struct stat& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino && a.st_size == b.st_size &&
         a.st_mtim.tv_sec == b.st_mtim.tv_sec && a.st_mtim.tv_nsec == b.st_mtim.tv_nsec;
}

}  // namespace

file_resolver::file_resolver(const std::string& root, bool follow_symlinks_outside_root)
    : follow_outside_(follow_symlinks_outside_root) {
  root_fd_ = ::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root_fd_ < 0) throw std::system_error(errno, std::generic_category(), "root " + root);
}

file_resolver::~file_resolver() {
  if (root_fd_ >= 0) ::close(root_fd_);
}

int file_resolver::open_beneath(const std::string& relative, int& err) const {
  const char* rel = relative.empty() ? "." : relative.c_str();
  int fd;
  if (follow_outside_) {
    fd = ::openat(root_fd_, rel, open_flags);
  } else {
    open_how how{};
    how.flags = open_flags;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    fd = static_cast<int>(::syscall(SYS_openat2, root_fd_, rel, &how, sizeof how));
  }
  err = fd < 0 ? errno : 0;
  return fd;
}

file_resolver::result file_resolver::resolve(std::string_view path) const {
  result r;
  std::string relative(path.substr(1));  // beneath the root: drop the leading '/'
  int err = 0;
  int fd = open_beneath(relative, err);
  if (fd < 0) {
    r.status = status_for_errno(err);
    return r;
  }
  if (::fstat(fd, &r.st) != 0) {
    r.status = status_for_errno(errno);
    ::close(fd);
    return r;
  }
  if (S_ISDIR(r.st.st_mode)) {
    ::close(fd);
    if (path.back() != '/') {
      r.status = 301;
      return r;
    }
    relative += "index.html";
    fd = open_beneath(relative, err);
    if (fd < 0) {
      // A directory without an index is not listed.
      r.status = err == ENOENT ? 403 : status_for_errno(err);
      return r;
    }
    if (::fstat(fd, &r.st) != 0) {
      r.status = status_for_errno(errno);
      ::close(fd);
      return r;
    }
  }
  if (!S_ISREG(r.st.st_mode)) {
    ::close(fd);
    r.status = 403;
    return r;
  }
  r.status = 200;
  r.fd = fd;
  const auto slash = relative.rfind('/');
  r.file_name = slash == std::string::npos ? relative : relative.substr(slash + 1);
  return r;
}

bool file_resolver::unchanged(std::string_view path, const struct stat& st) const {
  result now = resolve(path);
  if (now.fd >= 0) ::close(now.fd);
  return now.status == 200 && same_identity(now.st, st);
}

}  // namespace weir
