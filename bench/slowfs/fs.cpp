// The FUSE operations: a read-only mirror of a source directory, every open, stat and read
// passing through the slow disk, plus the control file.
#define FUSE_USE_VERSION 314
#include <fuse3/fuse.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "bench/slowfs/control.hpp"
#include "bench/slowfs/fs.hpp"

namespace weir::slowfs {
namespace {

// A control file's open handle has this bit set in fi->fh; a mirrored file's fh is its fd.
// Handles cross threads through the kernel, which ThreadSanitizer cannot see: a handle is
// therefore a number, and the control texts live in a map behind a mutex.
constexpr std::uint64_t control_handle_bit = std::uint64_t{1} << 63;

struct context {
  const mount_options* options = nullptr;
  int source_fd = -1;
  slow_disk* disk = nullptr;
  std::mutex control_mutex;
  std::uint64_t next_control = 0;
  std::map<std::uint64_t, std::string> control_texts;  // per open: the status read at open
  std::string last_error;                              // the last refused control line's message
};

context& ctx() {
  return *static_cast<context*>(fuse_get_context()->private_data);
}

bool is_control(const char* path) {
  return std::strcmp(path, control_path) == 0;
}

// Paths from FUSE are absolute within the mount; the source is reached relative to its fd.
const char* relative(const char* path) {
  return path[1] == '\0' ? "." : path + 1;
}

std::string status_text() {
  context& c = ctx();
  auto& model = c.disk->model();
  std::string text = format_status(model.settings(), model.counters(monotonic_now()));
  std::lock_guard lock(c.control_mutex);
  if (!c.last_error.empty()) text += "last_error=" + c.last_error + "\n";
  return text;
}

void* op_init(fuse_conn_info* conn, fuse_config* cfg) {
  context& c = ctx();
  cfg->use_ino = 1;
  cfg->attr_timeout = c.options->attr_timeout_s;
  cfg->entry_timeout = c.options->attr_timeout_s;
  cfg->negative_timeout = c.options->attr_timeout_s;
  cfg->kernel_cache = 0;
  cfg->auto_cache = 0;
  cfg->direct_io = c.options->page_cache ? 0 : 1;
  // Asynchronous requests (readahead, async direct I/O) are capped by max_background; let as
  // many reach the disk as there are threads to take them.
  conn->max_background = c.options->threads;
  conn->congestion_threshold = c.options->threads * 3 / 4;
  return &c;
}

int op_getattr(const char* path, struct stat* st, fuse_file_info* fi) {
  if (is_control(path)) {
    *st = {};
    st->st_mode = S_IFREG | 0644;
    st->st_nlink = 1;
    st->st_uid = getuid();
    st->st_gid = getgid();
    return 0;
  }
  context& c = ctx();
  c.disk->serve(op_kind::stat);
  int res = 0;
  if (fi != nullptr && (fi->fh & control_handle_bit) == 0) {
    res = fstat(static_cast<int>(fi->fh), st);
  } else {
    res = fstatat(c.source_fd, relative(path), st, AT_SYMLINK_NOFOLLOW);
  }
  const int err = res == 0 ? 0 : -errno;
  c.disk->finished(op_kind::stat);
  return err;
}

int op_readlink(const char* path, char* buf, size_t size) {
  context& c = ctx();
  c.disk->serve(op_kind::stat);
  const ssize_t n = readlinkat(c.source_fd, relative(path), buf, size - 1);
  const int err = n < 0 ? -errno : 0;
  c.disk->finished(op_kind::stat);
  if (n >= 0) buf[n] = '\0';
  return err;
}

int op_open(const char* path, fuse_file_info* fi) {
  context& c = ctx();
  if (is_control(path)) {
    std::string text = status_text();
    std::lock_guard lock(c.control_mutex);
    const std::uint64_t id = c.next_control++;
    c.control_texts.emplace(id, std::move(text));
    fi->fh = id | control_handle_bit;
    fi->direct_io = 1;  // its size is 0: reads must reach us, not stop at the cached size
    return 0;
  }
  if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC) != 0) return -EROFS;
  c.disk->serve(op_kind::open);
  const int fd = openat(c.source_fd, relative(path), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  const int err = fd < 0 ? -errno : 0;
  c.disk->finished(op_kind::open);
  if (fd < 0) return err;
  fi->fh = static_cast<std::uint64_t>(fd);
  fi->direct_io = c.options->page_cache ? 0 : 1;
  fi->keep_cache = c.options->keep_cache ? 1 : 0;  // the source is read-only: never stale
  return 0;
}

int read_control(std::uint64_t fh, fuse_bufvec** bufp, size_t size, off_t off) {
  context& c = ctx();
  std::string_view text;
  std::lock_guard lock(c.control_mutex);
  const auto it = c.control_texts.find(fh & ~control_handle_bit);
  if (it != c.control_texts.end()) text = it->second;
  const std::size_t start = std::min<std::size_t>(static_cast<std::size_t>(off), text.size());
  const std::size_t n = std::min(size, text.size() - start);
  auto* vec = static_cast<fuse_bufvec*>(std::malloc(sizeof(fuse_bufvec)));
  void* mem = std::malloc(n == 0 ? 1 : n);
  if (vec == nullptr || mem == nullptr) {
    std::free(vec);
    std::free(mem);
    return -ENOMEM;
  }
  std::memcpy(mem, text.data() + start, n);
  *vec = FUSE_BUFVEC_INIT(n);
  vec->buf[0].mem = mem;
  *bufp = vec;
  return 0;
}

int op_read_buf(const char*, fuse_bufvec** bufp, size_t size, off_t off, fuse_file_info* fi) {
  if ((fi->fh & control_handle_bit) != 0) return read_control(fi->fh, bufp, size, off);
  const int fd = static_cast<int>(fi->fh);
  // A read at or past the end needs no disk: the size is in the inode.
  struct stat st {};
  std::uint64_t bytes = 0;
  if (fstat(fd, &st) == 0 && off < st.st_size) {
    bytes = std::min<std::uint64_t>(size, static_cast<std::uint64_t>(st.st_size - off));
  }
  context& c = ctx();
  if (bytes > 0) c.disk->serve(op_kind::read);
  auto* vec = static_cast<fuse_bufvec*>(std::malloc(sizeof(fuse_bufvec)));
  if (vec == nullptr) return -ENOMEM;
  *vec = FUSE_BUFVEC_INIT(size);
  // libfuse preads (or splices) straight from our fd: no copy through this process.
  vec->buf[0].flags = static_cast<fuse_buf_flags>(FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK);
  vec->buf[0].fd = fd;
  vec->buf[0].pos = off;
  *bufp = vec;
  if (bytes > 0) c.disk->finished(op_kind::read, bytes);
  return 0;
}

int op_write(const char* path, const char* buf, size_t size, off_t, fuse_file_info*) {
  if (!is_control(path)) return -EROFS;
  context& c = ctx();
  auto& model = c.disk->model();
  control_request request;
  const std::string error = parse_control(std::string_view(buf, size), model.settings(), request);
  if (!error.empty()) {
    std::fprintf(stderr, "weir-slowfs: %s\n", error.c_str());
    std::lock_guard lock(c.control_mutex);
    c.last_error = error;
    return -EINVAL;
  }
  const auto now = monotonic_now();
  model.apply(request.settings, now);
  if (request.reset_counters) model.reset_counters(now);
  return static_cast<int>(size);
}

int op_truncate(const char* path, off_t, fuse_file_info*) {
  return is_control(path) ? 0 : -EROFS;  // `echo ... > .slowfs` truncates first
}

int op_release(const char*, fuse_file_info* fi) {
  if ((fi->fh & control_handle_bit) != 0) {
    context& c = ctx();
    std::lock_guard lock(c.control_mutex);
    c.control_texts.erase(fi->fh & ~control_handle_bit);
  } else {
    close(static_cast<int>(fi->fh));
  }
  return 0;
}

int op_opendir(const char* path, fuse_file_info* fi) {
  context& c = ctx();
  c.disk->serve(op_kind::open);
  const int fd = openat(c.source_fd, relative(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  const int err = fd < 0 ? -errno : 0;
  c.disk->finished(op_kind::open);
  if (fd < 0) return err;
  fi->fh = static_cast<std::uint64_t>(fd);
  return 0;
}

int op_readdir(const char* path, void* buf, fuse_fill_dir_t filler, off_t, fuse_file_info* fi,
               fuse_readdir_flags) {
  context& c = ctx();
  // A duplicate, so the directory handle's fd survives closedir().
  const int fd = dup(static_cast<int>(fi->fh));
  if (fd < 0) return -errno;
  DIR* dir = fdopendir(fd);
  if (dir == nullptr) {
    const int err = -errno;
    close(fd);
    return err;
  }
  rewinddir(dir);
  c.disk->serve(op_kind::read);
  const bool root = std::strcmp(path, "/") == 0;
  while (dirent* entry = readdir(dir)) {
    if (root && std::strcmp(entry->d_name, control_path + 1) == 0) continue;
    struct stat st {};
    st.st_ino = entry->d_ino;
    st.st_mode = static_cast<mode_t>(DTTOIF(entry->d_type));
    if (filler(buf, entry->d_name, &st, 0, static_cast<fuse_fill_dir_flags>(0)) != 0) break;
  }
  closedir(dir);
  c.disk->finished(op_kind::read);
  return 0;
}

int op_releasedir(const char*, fuse_file_info* fi) {
  close(static_cast<int>(fi->fh));
  return 0;
}

int op_statfs(const char*, struct statvfs* st) {
  return fstatvfs(ctx().source_fd, st) == 0 ? 0 : -errno;
}

int read_only_path(const char*) {
  return -EROFS;
}
int read_only_mode(const char*, mode_t) {
  return -EROFS;
}
int read_only_two(const char*, const char*) {
  return -EROFS;
}

fuse_operations operations() {
  fuse_operations ops{};
  ops.init = op_init;
  ops.getattr = op_getattr;
  ops.readlink = op_readlink;
  ops.open = op_open;
  ops.read_buf = op_read_buf;
  ops.write = op_write;
  ops.truncate = op_truncate;
  ops.release = op_release;
  ops.opendir = op_opendir;
  ops.readdir = op_readdir;
  ops.releasedir = op_releasedir;
  ops.statfs = op_statfs;
  ops.mkdir = read_only_mode;
  ops.unlink = read_only_path;
  ops.rmdir = read_only_path;
  ops.symlink = read_only_two;
  ops.link = read_only_two;
  ops.rename = [](const char*, const char*, unsigned) { return -EROFS; };
  ops.chmod = [](const char*, mode_t, fuse_file_info*) { return -EROFS; };
  ops.chown = [](const char*, uid_t, gid_t, fuse_file_info*) { return -EROFS; };
  ops.utimens = [](const char*, const timespec*, fuse_file_info*) { return -EROFS; };
  ops.mknod = [](const char*, mode_t, dev_t) { return -EROFS; };
  ops.create = [](const char*, mode_t, fuse_file_info*) { return -EROFS; };
  ops.setxattr = [](const char*, const char*, const char*, size_t, int) { return -EROFS; };
  ops.removexattr = [](const char*, const char*) { return -EROFS; };
  return ops;
}

}  // namespace

int run_slowfs(const mount_options& options) {
  context c;
  c.options = &options;
  c.source_fd = open(options.source.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (c.source_fd < 0) {
    std::fprintf(stderr, "weir-slowfs: SOURCE %s: %s\n", options.source.c_str(),
                 std::strerror(errno));
    return 1;
  }
  slow_disk disk(options.disk);
  c.disk = &disk;

  // default_permissions: the kernel checks the mirrored modes. allow_other (root only, or with
  // user_allow_other in /etc/fuse.conf): servers' workers run as other users (nginx: www-data).
  std::string mount_opts = "fsname=weir-slowfs,subtype=slowfs,default_permissions";
  if (geteuid() == 0) mount_opts += ",allow_other";
  const char* argv[] = {"weir-slowfs", "-o", mount_opts.c_str(), nullptr};
  fuse_args args = FUSE_ARGS_INIT(3, const_cast<char**>(argv));
  const fuse_operations ops = operations();
  fuse* f = fuse_new(&args, &ops, sizeof ops, &c);
  fuse_opt_free_args(&args);
  if (f == nullptr) {
    close(c.source_fd);
    return 1;
  }
  int status = 1;
  if (fuse_mount(f, options.mountpoint.c_str()) != 0) {
    std::fprintf(stderr, "weir-slowfs: MOUNTPOINT %s: mount failed\n", options.mountpoint.c_str());
  } else {
    fuse_session* se = fuse_get_session(f);
    // libfuse only takes over signals left at their default; a shell starts background jobs with
    // SIGINT ignored, and `kill -INT` must still unmount.
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) std::signal(sig, SIG_DFL);
    if (fuse_daemonize(options.foreground ? 1 : 0) == 0 && fuse_set_signal_handlers(se) == 0) {
      fuse_loop_config* loop = fuse_loop_cfg_create();
      fuse_loop_cfg_set_max_threads(loop, options.threads);
      fuse_loop_cfg_set_idle_threads(loop, options.threads);
      // The loop returns the signal that stopped it: a requested stop is a clean exit.
      const int res = fuse_loop_mt(f, loop);
      status = (res == 0 || res == SIGINT || res == SIGTERM || res == SIGHUP) ? 0 : 1;
      fuse_loop_cfg_destroy(loop);
      fuse_remove_signal_handlers(se);
    }
    fuse_unmount(f);
  }
  fuse_destroy(f);
  close(c.source_fd);
  return status;
}

}  // namespace weir::slowfs
