#include "bench/loadgen/http_response.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>

namespace weir::loadgen {

namespace {

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

// Whether a comma-separated header value has `token` as one of its elements.
bool has_token(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    std::size_t comma = value.find(',');
    std::string_view item = value.substr(0, comma);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (iequals(item, token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = lower(c);
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

}  // namespace

void response_parser::reset(bool head_request) {
  state_ = state::head;
  head_.clear();
  head_request_ = head_request;
  status_ = 0;
  keep_alive_ = true;
  body_to_close_ = false;
  remaining_ = 0;
  body_bytes_ = 0;
  chunk_digits_ = 0;
  error_ = "";
}

response_parser::result response_parser::fail(const char* why) {
  state_ = state::error;
  error_ = why;
  return result::error;
}

response_parser::result response_parser::parse_head() {
  std::string_view h(head_);
  // Status line: HTTP/1.x SP 3DIGIT [SP reason]
  std::size_t eol = h.find("\r\n");
  std::string_view line = h.substr(0, eol);
  if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || line[8] != ' ')
    return fail("malformed status line");
  const bool http10 = line[7] == '0';
  if (!http10 && line[7] != '1') return fail("unsupported HTTP version");
  int code = 0;
  const auto [end, ec] = std::from_chars(line.data() + 9, line.data() + 12, code);
  if (ec != std::errc() || end != line.data() + 12 || code < 100 || code > 999 ||
      (line.size() > 12 && line[12] != ' '))
    return fail("malformed status code");
  status_ = code;
  keep_alive_ = !http10;

  bool have_length = false, chunked = false;
  std::uint64_t length = 0;
  h.remove_prefix(eol + 2);
  while (true) {
    eol = h.find("\r\n");
    line = h.substr(0, eol);
    h.remove_prefix(eol + 2);
    if (line.empty()) break;  // the blank line that ends the head
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return fail("malformed header line");
    const std::string_view name = line.substr(0, colon);
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    if (iequals(name, "content-length")) {
      std::uint64_t n = 0;
      const auto [e, err] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (err != std::errc() || e != value.data() + value.size() || value.empty())
        return fail("malformed Content-Length");
      if (have_length && n != length) return fail("conflicting Content-Length headers");
      have_length = true;
      length = n;
    } else if (iequals(name, "transfer-encoding")) {
      if (has_token(value, "chunked")) chunked = true;
    } else if (iequals(name, "connection")) {
      if (has_token(value, "close")) keep_alive_ = false;
      if (has_token(value, "keep-alive")) keep_alive_ = keep_alive_ || http10;
    }
  }
  head_.clear();
  if (head_request_ || (status_ >= 100 && status_ < 200) || status_ == 204 || status_ == 304) {
    state_ = state::done;
  } else if (chunked) {  // chunked wins over Content-Length (RFC 9112 6.3)
    state_ = state::chunk_size;
    remaining_ = 0;
    chunk_digits_ = 0;
  } else if (have_length) {
    remaining_ = length;
    state_ = length == 0 ? state::done : state::body_length;
  } else {
    body_to_close_ = true;
    state_ = state::body_to_close;
  }
  return state_ == state::done ? result::done : result::need_more;
}

response_parser::result response_parser::feed(const char* data, std::size_t len,
                                              std::size_t& consumed) {
  std::size_t i = 0;
  auto finish = [&](result r) {
    consumed = i;
    return r;
  };
  while (i < len) {
    switch (state_) {
      case state::head: {
        // Append up to the end of the head; search from a little before the old end so that a
        // "\r\n\r\n" split across reads is found.
        const std::size_t old = head_.size();
        const std::size_t take = std::min(len - i, max_head_bytes + 4 - old);
        head_.append(data + i, take);
        const std::size_t from = old >= 3 ? old - 3 : 0;
        const std::size_t end = head_.find("\r\n\r\n", from);
        if (end == std::string::npos) {
          i += take;
          if (head_.size() > max_head_bytes) return finish(fail("response head too large"));
          break;
        }
        const std::size_t head_len = end + 4;
        i += head_len - old;
        head_.resize(head_len);
        const result r = parse_head();
        if (r != result::need_more) return finish(r);
        break;
      }
      case state::body_length: {
        const std::uint64_t n = std::min<std::uint64_t>(remaining_, len - i);
        i += n;
        remaining_ -= n;
        body_bytes_ += n;
        if (remaining_ == 0) {
          state_ = state::done;
          return finish(result::done);
        }
        break;
      }
      case state::body_to_close:
        body_bytes_ += len - i;
        i = len;
        break;
      case state::chunk_size: {
        const int v = hex_value(data[i]);
        if (v >= 0) {
          if (++chunk_digits_ > 15) return finish(fail("chunk size too large"));
          remaining_ = remaining_ * 16 + static_cast<std::uint64_t>(v);
          ++i;
        } else if (chunk_digits_ == 0) {
          return finish(fail("malformed chunk size"));
        } else if (data[i] == ';' || data[i] == ' ' || data[i] == '\t') {
          state_ = state::chunk_ext;
          ++i;
        } else if (data[i] == '\r') {
          state_ = state::chunk_size_lf;
          ++i;
        } else {
          return finish(fail("malformed chunk size"));
        }
        break;
      }
      case state::chunk_ext:
        if (data[i] == '\r')
          state_ = state::chunk_size_lf;
        else if (data[i] == '\n')
          return finish(fail("bare LF in chunk header"));
        ++i;
        break;
      case state::chunk_size_lf:
        if (data[i++] != '\n') return finish(fail("chunk size line not ended by CRLF"));
        chunk_digits_ = 0;
        if (remaining_ == 0) {
          state_ = state::trailer_start;
        } else {
          state_ = state::chunk_data;
        }
        break;
      case state::chunk_data: {
        const std::uint64_t n = std::min<std::uint64_t>(remaining_, len - i);
        i += n;
        remaining_ -= n;
        body_bytes_ += n;
        if (remaining_ == 0) state_ = state::chunk_data_cr;
        break;
      }
      case state::chunk_data_cr:
        if (data[i++] != '\r') return finish(fail("chunk data not followed by CRLF"));
        state_ = state::chunk_data_lf;
        break;
      case state::chunk_data_lf:
        if (data[i++] != '\n') return finish(fail("chunk data not followed by CRLF"));
        state_ = state::chunk_size;
        break;
      case state::trailer_start:
        if (data[i] == '\r') {
          state_ = state::trailer_end_lf;
        } else {
          state_ = state::trailer_line;
        }
        ++i;
        break;
      case state::trailer_line:
        if (data[i] == '\r') state_ = state::trailer_lf;
        ++i;
        break;
      case state::trailer_lf:
        if (data[i++] != '\n') return finish(fail("trailer line not ended by CRLF"));
        state_ = state::trailer_start;
        break;
      case state::trailer_end_lf:
        if (data[i++] != '\n') return finish(fail("chunked body not ended by CRLF"));
        state_ = state::done;
        return finish(result::done);
      case state::done:
        return finish(result::done);
      case state::error:
        return finish(result::error);
    }
  }
  consumed = i;
  if (state_ == state::done) return result::done;
  if (state_ == state::error) return result::error;
  return result::need_more;
}

response_parser::result response_parser::finish_at_close() {
  if (state_ == state::body_to_close) {
    state_ = state::done;
    return result::done;
  }
  if (state_ == state::done) return result::done;
  return fail(state_ == state::head ? "connection closed before the response head ended"
                                    : "connection closed inside the body");
}

}  // namespace weir::loadgen
