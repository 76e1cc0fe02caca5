#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace weir::http {

enum class method : std::uint8_t {
  get,
  head,
  post,
  put,
  delete_,
  connect,
  options,
  trace,
  patch,
  unknown  // a syntactically valid token weir does not know: 501
};

struct parser_limits {
  std::size_t max_request_line = 8192;   // request-line longer than this: 414
  std::size_t max_header_bytes = 16384;  // request-line + header section larger than this: 431
  std::size_t max_headers = 100;         // more header fields than this: 431
};

/// A parsed request head. Every view points into the buffer given to `parse_request`.
struct request_head {
  method verb = method::unknown;
  std::string_view method_token;
  std::string_view target;  // the raw request-target
  std::string_view path;   // still percent-encoded; for absolute-form, the part after the authority
  std::string_view query;  // after '?', without it; empty when none
  std::string_view host;   // from the absolute-form target if present, else the Host field
  int version_minor = 1;   // HTTP/1.0 -> 0, HTTP/1.1 (and 1.x, x >= 1) -> 1
  bool keep_alive = true;  // from version and Connection (close / keep-alive)
  bool chunked = false;    // Transfer-Encoding ends with chunked
  bool has_content_length = false;
  std::uint64_t content_length = 0;
  std::string_view if_none_match;
  std::string_view if_modified_since;
  std::string_view range;
  std::string_view if_range;
  std::size_t header_count = 0;
};

struct parse_result {
  enum class kind : std::uint8_t { complete, incomplete, error };
  kind outcome = kind::incomplete;
  std::size_t consumed = 0;  // complete: bytes of the head, through the empty line
  int status = 0;            // error: 400, 414, 431 or 505
};

/// Parses one request head (request-line + header fields + empty line) at the start of `buf`.
/// Stateless: call again with the grown buffer when the result is `incomplete`. An `incomplete`
/// result on a buffer already past a limit is reported as the error for that limit, so callers
/// may pass whatever they have read. Leading empty lines (CRLF) before the request-line are
/// skipped (RFC 9112 2.2). Bare LF line endings are accepted.
parse_result parse_request(std::string_view buf, const parser_limits& limits, request_head& out);

/// Cheap helper for the "whole head not yet here" case: the offset just past the empty line that
/// ends the head, or 0 when it is not in `buf` yet.
std::size_t find_head_end(std::string_view buf);

}  // namespace weir::http
