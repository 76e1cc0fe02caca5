#include "stages/file_pages.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>

namespace weir {
namespace {

/// 1: the byte at `off` is in memory; 0: it is not; -1: cannot tell.
int byte_resident(int fd, off_t off) {
  char byte;
  iovec iov{&byte, 1};
  for (;;) {
    const ssize_t n = ::preadv2(fd, &iov, 1, off, RWF_NOWAIT);
    if (n >= 0) return 1;  // (0: past the end, nothing to wait for)
    if (errno == EINTR) continue;
    return errno == EAGAIN ? 0 : -1;
  }
}

// mincore of a mapping of the range, made for the question (never touched): what a file system
// that cannot read without waiting (FUSE) is asked instead. False when it cannot tell either.
bool mapped_resident(int fd, off_t off, std::size_t len) {
  static const auto page = static_cast<off_t>(::sysconf(_SC_PAGESIZE));
  const off_t first = off / page * page;
  const std::size_t span = static_cast<std::size_t>(off - first) + len;
  void* map = ::mmap(nullptr, span, PROT_READ, MAP_SHARED, fd, first);
  if (map == MAP_FAILED) return false;
  unsigned char vec[(warm_window >> 12) + 2];
  const std::size_t pages =
      (span + static_cast<std::size_t>(page) - 1) / static_cast<std::size_t>(page);
  const bool known = pages <= sizeof vec && ::mincore(map, span, vec) == 0;
  ::munmap(map, span);
  return known && std::all_of(vec, vec + pages, [](unsigned char v) { return (v & 1) != 0; });
}

}  // namespace

bool pages_resident(int fd, off_t off, std::size_t len) {
  if (len == 0) return true;
  len = std::min(len, warm_window);
  const int first = byte_resident(fd, off);
  if (first == 0) return false;
  if (first < 0) return mapped_resident(fd, off, len);
  const off_t last = off + static_cast<off_t>(len - 1);
  return last == off || byte_resident(fd, last) != 0;
}

void read_into_page_cache(int fd, off_t off, std::size_t len) {
  len = std::min(len, warm_window);
  // Ask for all of it at once (a disk that serves several reads at a time serves them
  // together), then wait for each piece by reading it.
  ::posix_fadvise(fd, off, static_cast<off_t>(len), POSIX_FADV_WILLNEED);
  constexpr std::size_t piece = 128u << 10;
  thread_local const std::unique_ptr<char[]> scratch(new char[piece]);
  std::size_t done = 0;
  while (done < len) {
    const ssize_t n =
        ::pread(fd, scratch.get(), std::min(piece, len - done), off + static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // an error, or the file shrank: the send reports it
    done += static_cast<std::size_t>(n);
  }
}

}  // namespace weir
