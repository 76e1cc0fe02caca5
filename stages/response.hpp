#pragma once

#include <sys/stat.h>

#include <atomic>
#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>

namespace weir {

struct connection;

/// What the cache holds for one normalised path: the outcome of resolving it (Flash's path
/// translation), the header fields that do not change per request, and for small files the bytes
/// themselves. Large files keep an open descriptor for sendfile. Immutable once built, except the
/// time it was last checked against the disk.
struct file_entry {
  int status = 404;  // 200, or what resolving it answered (301, 403, 404)
  struct stat st {};
  std::string etag;
  std::time_t mtime = 0;
  std::string fixed_fields;  // Content-Type, Last-Modified, ETag, Accept-Ranges lines
  std::string body;          // small files: the whole content
  int fd = -1;               // large files: open for sendfile; closed with the entry
  mutable std::atomic<std::int64_t> checked_ms{0};

  file_entry() = default;
  file_entry(const file_entry&) = delete;
  file_entry& operator=(const file_entry&) = delete;
  ~file_entry();

  bool in_memory() const { return fd < 0; }
  /// What the entry costs the cache, in bytes.
  std::size_t charge() const;
};

/// The reason phrase for a status code weir sends.
std::string_view reason_phrase(int status);

/// Fills the connection's output for the request it holds and the resolved `entry`: conditional
/// requests (304), ranges (206/416), HEAD, redirects and errors included.
void prepare_file_response(connection& c, const file_entry& entry);

/// Fills the connection's output with a short error page. `close` forces Connection: close;
/// `extra_fields` are complete header lines ("Name: value\r\n") to add.
void prepare_error_response(connection& c, int status, bool close,
                            std::string_view extra_fields = {});

}  // namespace weir
