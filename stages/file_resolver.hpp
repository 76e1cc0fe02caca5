#pragma once

#include <sys/stat.h>

#include <string>
#include <string_view>

namespace weir {

/// Maps normalised request paths to open files under a document root, refusing anything that
/// resolves outside it. Blocking (open, stat): only the disk-I/O stage calls it.
class file_resolver {
 public:
  struct result {
    int status = 404;  // 200 (fd open), 301 (directory without trailing '/'), 403, 404, 500, 503
    int fd = -1;       // owned by the caller when status == 200
    struct stat st {};
    std::string file_name;  // the last path segment actually opened (for Content-Type)
  };

  /// Opens `root` (must be a directory); throws std::system_error otherwise.
  file_resolver(const std::string& root, bool follow_symlinks_outside_root);
  ~file_resolver();
  file_resolver(const file_resolver&) = delete;
  file_resolver& operator=(const file_resolver&) = delete;

  /// `path` is normalised (http::normalize_path): starts with '/', no dot segments, no NUL.
  /// A directory is served through its index.html when `path` ends in '/'; otherwise 301.
  /// Symlinks are followed while they stay beneath the root (unless the option allows leaving it);
  /// one that leaves it is 403, as is anything that is not a regular file.
  result resolve(std::string_view path) const;

  /// Re-reads the identity of `path` (stat only) for cache revalidation: true when it still names
  /// the same file (device, inode, size and mtime unchanged) as `st`.
  bool unchanged(std::string_view path, const struct stat& st) const;

 private:
  int open_beneath(const std::string& relative, int& err) const;

  int root_fd_ = -1;
  bool follow_outside_;
};

}  // namespace weir
