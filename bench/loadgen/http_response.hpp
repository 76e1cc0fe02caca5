#pragma once
// An incremental HTTP/1.1 response parser for a client that only needs the status and where the
// response ends: the head is gathered (across reads) into a buffer the parser keeps, the body is
// counted and discarded. Bodies are delimited by Content-Length, chunked encoding, or the close
// of the connection; 1xx/204/304 and responses to HEAD have none. No allocation once the head
// buffer has grown to the largest head seen.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace weir::loadgen {

class response_parser {
 public:
  enum class result { need_more, done, error };

  static constexpr std::size_t max_head_bytes = 64 * 1024;

  response_parser() { head_.reserve(1024); }

  /// Starts a new response (head_request: the request was HEAD, so no body).
  void reset(bool head_request = false);

  /// Parses bytes that follow what was fed so far. `consumed` is how many of them belong to
  /// this response (the rest, on done, are the start of whatever comes next).
  result feed(const char* data, std::size_t len, std::size_t& consumed);
  /// The peer closed the connection: done if the body runs to the close, else error.
  result finish_at_close();

  int status() const { return status_; }
  /// The connection may carry another request after this response.
  bool keep_alive() const { return keep_alive_ && !body_to_close_; }
  /// Why the last error happened (for messages and tests).
  std::string_view error() const { return error_; }
  std::uint64_t body_bytes() const { return body_bytes_; }
  /// Nothing of this response has been seen yet (a close now is not a truncated response).
  bool idle() const { return state_ == state::head && head_.empty(); }

 private:
  enum class state {
    head,
    body_length,
    body_to_close,
    chunk_size,
    chunk_ext,
    chunk_size_lf,
    chunk_data,
    chunk_data_cr,
    chunk_data_lf,
    trailer_start,
    trailer_line,
    trailer_lf,
    trailer_end_lf,
    done,
    error
  };

  result parse_head();
  result fail(const char* why);

  state state_ = state::head;
  std::string head_;
  bool head_request_ = false;
  int status_ = 0;
  bool keep_alive_ = true;
  bool body_to_close_ = false;
  std::uint64_t remaining_ = 0;
  std::uint64_t body_bytes_ = 0;
  int chunk_digits_ = 0;
  const char* error_ = "";
};

}  // namespace weir::loadgen
