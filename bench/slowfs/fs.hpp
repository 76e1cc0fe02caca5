#pragma once

#include <string>

#include "bench/slowfs/disk_model.hpp"

namespace weir::slowfs {

/// The name of the control file in the mount's root (hidden from listings; it shadows a file of
/// that name in the source).
inline constexpr const char* control_path = "/.slowfs";

struct mount_options {
  std::string source;
  std::string mountpoint;
  disk_settings disk;
  bool foreground = false;
  bool page_cache = false;    // let the kernel cache file contents (off: direct_io)
  bool keep_cache = false;    // page_cache, and keep the cached pages across opens
  double attr_timeout_s = 0;  // kernel caching of attributes and names (0: every stat asks)
  unsigned threads = 128;     // FUSE worker threads: ops beyond this wait in the kernel
};

/// Mounts `source` read-only at `mountpoint` with the slow disk in front of it and serves until
/// SIGINT, SIGTERM or SIGHUP (then unmounts) or an external unmount. Returns the exit status.
int run_slowfs(const mount_options& options);

}  // namespace weir::slowfs
