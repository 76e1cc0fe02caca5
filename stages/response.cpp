#include "stages/response.hpp"

#include <unistd.h>

#include <charconv>

#include "runtime/version.hpp"
#include "stages/connection.hpp"
#include "stages/http/date.hpp"
#include "stages/http/range.hpp"

namespace weir {
namespace {

// Large files are charged a fixed amount: what they cost is an open descriptor, not memory.
constexpr std::size_t open_file_charge = 16 * 1024;
constexpr std::size_t entry_overhead = 256;

void append_number(std::string& out, std::uint64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

/// Status line and the fields every response carries.
void begin_head(connection& c, int status) {
  c.status = status;
  std::string& h = c.ex().out_head;
  h.clear();
  h.append("HTTP/1.1 ");
  append_number(h, static_cast<std::uint64_t>(status));
  h.push_back(' ');
  h.append(reason_phrase(status));
  h.append("\r\nServer: weir/").append(weir_version);
  h.append("\r\nDate: ").append(http::current_http_date()).append("\r\n");
}

/// Connection handling and the empty line that ends the head.
void end_head(connection& c) {
  std::string& h = c.ex().out_head;
  if (!c.keep_alive) c.close_after = true;
  if (c.close_after) {
    h.append("Connection: close\r\n");
  } else if (c.ex().req.version_minor == 0) {
    h.append("Connection: keep-alive\r\n");
  }
  h.append("\r\n");
  c.out_head_sent = 0;
}

void no_body(connection& c) {
  c.body = nullptr;
  c.body_left = 0;
  c.file_fd = -1;
  c.file_left = 0;
}

bool not_modified(const connection& c, const file_entry& e) {
  const http::request_head& req = c.ex().req;
  if (!req.if_none_match.empty()) return http::etag_matches_weak(req.if_none_match, e.etag);
  if (!req.if_modified_since.empty()) {
    const auto since = http::parse_http_date(req.if_modified_since);
    return since && e.mtime <= *since;
  }
  return false;
}

}  // namespace

file_entry::~file_entry() {
  if (fd >= 0) ::close(fd);
}

std::size_t file_entry::charge() const {
  return entry_overhead + fixed_fields.size() + (in_memory() ? body.size() : open_file_charge);
}

std::string_view reason_phrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 414:
      return "URI Too Long";
    case 416:
      return "Range Not Satisfiable";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

void prepare_error_response(connection& c, int status, bool close, std::string_view extra_fields) {
  if (close) c.close_after = true;
  begin_head(c, status);
  std::string& h = c.ex().out_head;
  const std::string_view reason = reason_phrase(status);
  // A short page, built in place: "<html>...<h1>404 Not Found</h1>...</html>".
  static constexpr std::string_view pre = "<html><head><title>";
  static constexpr std::string_view mid = "</title></head><body><h1>";
  static constexpr std::string_view post = "</h1><hr>weir</body></html>\n";
  const std::size_t title = 4 + reason.size();  // "404 " + reason
  const std::size_t length = pre.size() + title + mid.size() + title + post.size();
  if (status == 405) h.append("Allow: GET, HEAD\r\n");
  h.append(extra_fields);
  h.append("Content-Type: text/html; charset=utf-8\r\nContent-Length: ");
  append_number(h, length);
  h.append("\r\n");
  end_head(c);
  no_body(c);
  if (c.ex().req.verb == http::method::head) return;
  // The page travels in the head buffer: one write for the whole response.
  for (int i = 0; i < 2; ++i) {
    h.append(i == 0 ? pre : mid);
    append_number(h, static_cast<std::uint64_t>(status));
    h.push_back(' ');
    h.append(reason);
  }
  h.append(post);
}

void prepare_file_response(connection& c, const file_entry& e) {
  exchange& x = c.ex();
  const http::request_head& req = x.req;
  const bool head = req.verb == http::method::head;
  if (e.status == 301) {
    begin_head(c, 301);
    std::string& h = x.out_head;
    h.append("Location: ").append(x.path).append("/");
    if (!req.query.empty()) h.append("?").append(req.query);
    h.append("\r\nContent-Length: 0\r\n");
    end_head(c);
    no_body(c);
    return;
  }
  if (e.status != 200) {
    prepare_error_response(c, e.status, false);
    return;
  }
  no_body(c);
  if (not_modified(c, e)) {
    begin_head(c, 304);
    x.out_head.append(e.fixed_fields);
    end_head(c);
    return;
  }
  const auto size = static_cast<std::uint64_t>(e.st.st_size);
  std::uint64_t first = 0, length = size;
  http::byte_range range;
  if (!head && !req.range.empty() &&
      (req.if_range.empty() || http::if_range_allows(req.if_range, e.etag, e.mtime))) {
    range = http::parse_range(req.range, size);
  }
  std::string& h = x.out_head;
  if (range.outcome == http::byte_range::kind::unsatisfiable) {
    std::string content_range = "Content-Range: bytes */";
    append_number(content_range, size);
    content_range.append("\r\n");
    prepare_error_response(c, 416, false, content_range);
    return;
  }
  if (range.outcome == http::byte_range::kind::satisfiable) {
    first = range.first;
    length = range.last - range.first + 1;
    begin_head(c, 206);
    h.append("Content-Range: bytes ");
    append_number(h, first);
    h.push_back('-');
    append_number(h, range.last);
    h.push_back('/');
    append_number(h, size);
    h.append("\r\n");
  } else {
    begin_head(c, 200);
  }
  h.append(e.fixed_fields);
  h.append("Content-Length: ");
  append_number(h, length);
  h.append("\r\n");
  end_head(c);
  if (head) return;
  if (e.in_memory()) {
    c.body = e.body.data() + first;
    c.body_left = length;
  } else {
    c.file_fd = e.fd;
    c.file_off = static_cast<off_t>(first);
    c.file_left = length;
    c.ex().pages = exchange::file_pages::unknown;
  }
}

}  // namespace weir
