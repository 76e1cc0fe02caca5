#pragma once

#include <cstdint>
#include <ctime>
#include <string_view>

namespace weir::http {

struct byte_range {
  enum class kind : std::uint8_t {
    none,           // no Range, not a bytes range, multiple ranges, or syntax error: send 200
    satisfiable,    // send 206 with [first, last]
    unsatisfiable,  // send 416 with Content-Range: bytes */size
  };
  kind outcome = kind::none;
  std::uint64_t first = 0;
  std::uint64_t last = 0;  // inclusive
};

/// Interprets a Range field value against a representation of `size` bytes (RFC 9110 14).
/// Only a single range is honoured; a request for several is answered with the whole file.
byte_range parse_range(std::string_view value, std::uint64_t size);

/// If-None-Match: true when `field` ("*" or a list of entity-tags) matches `etag` with the weak
/// comparison (RFC 9110 13.1.2).
bool etag_matches_weak(std::string_view field, std::string_view etag);

/// If-Range: true when the range may be honoured: `field` is a strong entity-tag equal to `etag`,
/// or an HTTP-date equal to `last_modified` (RFC 9110 13.1.5).
bool if_range_allows(std::string_view field, std::string_view etag, std::time_t last_modified);

}  // namespace weir::http
