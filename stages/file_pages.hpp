#pragma once
// Whether a large file's bytes are in memory before the send stage sends them (Flash's test):
// `sendfile` of a page that is not in the page cache reads the disk in the sending thread, and a
// cold multi-megabyte file would hold a send worker (with the stages fused into its group, the
// whole pipeline) for as long as the disk takes. The send stage asks `pages_resident` before each
// turn; what is not in memory goes to disk_io first, which reads it in (`read_into_page_cache`)
// where blocking is its job.

#include <sys/types.h>

#include <cstddef>

namespace weir {

/// File bytes disk_io reads in at a time for the send stage (four of its turns).
inline constexpr std::size_t warm_window = 1u << 20;

/// True when the bytes [off, off + len) (at most `warm_window`) are in the page cache: the first
/// and the last byte, each read with `preadv2(RWF_NOWAIT)`, which fails with EAGAIN rather than
/// wait for the disk (pages come in by readahead, in order, so the two ends stand for the
/// range). A file system that cannot read without waiting (FUSE: EOPNOTSUPP) is asked with
/// `mincore` on a mapping of the range, which Linux since 5.0 answers only for files the caller
/// owns or may write (Flash asked `mincore` alone); when that cannot tell either, false: the
/// bytes are read in by disk_io rather than risk the disk in the send stage or the event loop.
bool pages_resident(int fd, off_t off, std::size_t len);

/// Reads bytes [off, off + len) of `fd` (at most `warm_window`) so that they are in the page
/// cache, blocking until they are. A read error stops it; the send that follows reports it.
void read_into_page_cache(int fd, off_t off, std::size_t len);

}  // namespace weir
