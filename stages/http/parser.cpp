#include "stages/http/parser.hpp"

#include <array>
#include <limits>

namespace weir::http {
namespace {

constexpr std::array<bool, 256> make_tchar_table() {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}
constexpr std::array<bool, 256> tchar_table = make_tchar_table();

bool is_tchar(char c) {
  return tchar_table[static_cast<unsigned char>(c)];
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
bool is_ows(char c) {
  return c == ' ' || c == '\t';
}
char to_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c;
}

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!is_tchar(c)) return false;
  }
  return true;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (to_lower(a[i]) != b[i]) return false;  // b is always lower-case
  }
  return true;
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

// Calls fn(element) for every non-empty, OWS-trimmed element of a comma list (RFC 9110 5.6.1).
template <typename Fn>
bool for_each_element(std::string_view list, Fn&& fn) {
  while (true) {
    std::size_t comma = list.find(',');
    std::string_view element = trim_ows(list.substr(0, comma));
    if (!element.empty() && !fn(element)) return false;
    if (comma == std::string_view::npos) return true;
    list.remove_prefix(comma + 1);
  }
}

// sub-delims and unreserved (RFC 3986), the characters a reg-name shares with IP-literals.
bool is_host_char(char c) {
  if (is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return std::string_view("-._~!$&'()*+,;=").find(c) != std::string_view::npos;
}

// uri-host [ ":" port ] (RFC 9110 7.2); the host part must not be empty.
bool valid_authority(std::string_view a, bool require_port) {
  std::size_t i = 0;
  if (!a.empty() && a[0] == '[') {
    std::size_t close = a.find(']');
    if (close == std::string_view::npos || close == 1) return false;
    for (i = 1; i < close; ++i) {
      if (!is_host_char(a[i]) && a[i] != ':') return false;
    }
    i = close + 1;
  } else {
    while (i < a.size() && a[i] != ':') {
      if (a[i] == '%') {
        if (i + 2 >= a.size() || !is_hex(a[i + 1]) || !is_hex(a[i + 2])) return false;
        i += 3;
      } else if (is_host_char(a[i])) {
        ++i;
      } else {
        return false;
      }
    }
    if (i == 0) return false;
  }
  if (i == a.size()) return !require_port;
  if (a[i] != ':') return false;
  std::string_view port = a.substr(i + 1);
  if (require_port && port.empty()) return false;
  for (char c : port) {
    if (!is_digit(c)) return false;
  }
  return true;
}

method method_from_token(std::string_view t) {
  switch (t.size()) {
    case 3:
      if (t == "GET") return method::get;
      if (t == "PUT") return method::put;
      break;
    case 4:
      if (t == "HEAD") return method::head;
      if (t == "POST") return method::post;
      break;
    case 5:
      if (t == "TRACE") return method::trace;
      if (t == "PATCH") return method::patch;
      break;
    case 6:
      if (t == "DELETE") return method::delete_;
      break;
    case 7:
      if (t == "CONNECT") return method::connect;
      if (t == "OPTIONS") return method::options;
      break;
    default:
      break;
  }
  return method::unknown;
}

void split_query(std::string_view path_and_query, request_head& out) {
  std::size_t q = path_and_query.find('?');
  out.path = path_and_query.substr(0, q);
  if (q != std::string_view::npos) out.query = path_and_query.substr(q + 1);
}

bool starts_with_icase(std::string_view s, std::string_view lower_prefix) {
  return s.size() >= lower_prefix.size() && iequals(s.substr(0, lower_prefix.size()), lower_prefix);
}

// Returns 0, or the status for a bad request-target (RFC 9112 3.2).
int parse_target(std::string_view target, request_head& out) {
  for (char c : target) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x21 || u > 0x7e || c == '#') return 400;
  }
  if (target[0] == '/') {
    split_query(target, out);
    return 0;
  }
  if (target == "*") {
    out.path = target;
    return 0;
  }
  std::size_t scheme_len = starts_with_icase(target, "http://")    ? 7
                           : starts_with_icase(target, "https://") ? 8
                                                                   : 0;
  if (scheme_len != 0) {
    std::string_view rest = target.substr(scheme_len);
    std::size_t authority_end = rest.find_first_of("/?");
    std::string_view authority = rest.substr(0, authority_end);
    if (!valid_authority(authority, false)) return 400;  // also rejects userinfo ('@')
    out.host = authority;
    rest.remove_prefix(authority.size());
    if (rest.empty() || rest[0] == '?') {
      // An empty path means "/"; the second slash of "://" keeps the view inside the buffer.
      out.path = target.substr(scheme_len - 1, 1);
      if (!rest.empty()) out.query = rest.substr(1);
    } else {
      split_query(rest, out);
    }
    return 0;
  }
  if (out.verb == method::connect && valid_authority(target, true)) {
    out.host = target;
    return 0;
  }
  return 400;
}

// method SP request-target SP HTTP-version (RFC 9112 3); returns 0 or the status.
int parse_request_line(std::string_view line, request_head& out) {
  std::size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return 400;
  std::size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return 400;
  std::string_view token = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (!is_token(token) || target.empty()) return 400;
  out.method_token = token;
  out.verb = method_from_token(token);
  out.target = target;

  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || !is_digit(version[5]) ||
      version[6] != '.' || !is_digit(version[7])) {
    return 400;
  }
  if (version[5] != '1') return 505;
  out.version_minor = version[7] == '0' ? 0 : 1;  // 1.x for x >= 2 gets 1.1 semantics
  return parse_target(target, out);
}

// What the field lines said, before the checks that need the whole head.
struct field_state {
  bool host_seen = false;
  bool target_has_host = false;
  bool te_seen = false;
  bool te_chunked_last = false;
  bool close = false;
  bool keep_alive = false;
  bool if_none_match_seen = false;
  bool if_modified_since_seen = false;
  bool range_seen = false;
  bool if_range_seen = false;
  bool drop_range = false;
  bool drop_if_modified_since = false;
};

// 1*DIGIT; "5, 5" and repeated fields with one value are one length (RFC 9110 8.6).
int parse_content_length(std::string_view value, request_head& out) {
  while (true) {
    std::size_t comma = value.find(',');
    std::string_view element = trim_ows(value.substr(0, comma));
    if (element.empty()) return 400;
    std::uint64_t n = 0;
    for (char c : element) {
      if (!is_digit(c)) return 400;
      auto d = static_cast<std::uint64_t>(c - '0');
      if (n > (std::numeric_limits<std::uint64_t>::max() - d) / 10) return 400;
      n = n * 10 + d;
    }
    if (out.has_content_length && n != out.content_length) return 400;
    out.has_content_length = true;
    out.content_length = n;
    if (comma == std::string_view::npos) return 0;
    value.remove_prefix(comma + 1);
  }
}

int parse_field(std::string_view line, field_state& st, request_head& out) {
  std::size_t colon = line.find(':');
  if (colon == std::string_view::npos) return 400;
  std::string_view name = line.substr(0, colon);
  // Also rejects obs-fold (a leading SP/HTAB) and whitespace before the colon (RFC 9112 5).
  if (!is_token(name)) return 400;
  std::string_view value = trim_ows(line.substr(colon + 1));
  for (char c : value) {
    auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) return 400;
  }

  switch (name.size()) {
    case 4:
      if (iequals(name, "host")) {
        if (st.host_seen) return 400;
        st.host_seen = true;
        if (value.empty() && out.version_minor == 1) return 400;
        if (!value.empty() && !valid_authority(value, false)) return 400;
        if (!st.target_has_host) out.host = value;
      }
      break;
    case 5:
      if (iequals(name, "range")) {
        if (st.range_seen) st.drop_range = true;  // a singleton sent twice: serve the whole file
        st.range_seen = true;
        out.range = value;
      }
      break;
    case 8:
      if (iequals(name, "if-range")) {
        if (st.if_range_seen) st.drop_range = true;
        st.if_range_seen = true;
        out.if_range = value;
      }
      break;
    case 10:
      if (iequals(name, "connection")) {
        for_each_element(value, [&](std::string_view e) {
          if (iequals(e, "close")) st.close = true;
          if (iequals(e, "keep-alive")) st.keep_alive = true;
          return true;
        });
      }
      break;
    case 13:
      // A list field; keeping the first line is safe: a match there is a real match, and a miss
      // only costs a 200 instead of a 304.
      if (iequals(name, "if-none-match") && !st.if_none_match_seen) {
        st.if_none_match_seen = true;
        out.if_none_match = value;
      }
      break;
    case 14:
      if (iequals(name, "content-length")) return parse_content_length(value, out);
      break;
    case 17:
      if (iequals(name, "if-modified-since")) {
        if (st.if_modified_since_seen) st.drop_if_modified_since = true;
        st.if_modified_since_seen = true;
        out.if_modified_since = value;
      } else if (iequals(name, "transfer-encoding")) {
        bool ok = true;
        st.te_seen = true;
        for_each_element(value, [&](std::string_view e) {
          if (st.te_chunked_last) ok = false;  // chunked must be the final coding, and only once
          st.te_chunked_last = iequals(e, "chunked");
          return ok;
        });
        if (!ok) return 400;
      }
      break;
    default:
      break;
  }
  return 0;
}

enum class line_scan : std::uint8_t { found, incomplete, bare_cr };

// Finds the line starting at `pos`. `end` is where its content stops (also when incomplete);
// `next` is where the following line starts.
line_scan scan_line(std::string_view buf, std::size_t pos, std::size_t& end, std::size_t& next) {
  for (std::size_t i = pos; i < buf.size(); ++i) {
    if (buf[i] == '\n') {
      end = i;
      next = i + 1;
      return line_scan::found;
    }
    if (buf[i] == '\r') {
      end = i;
      if (i + 1 == buf.size()) return line_scan::incomplete;
      if (buf[i + 1] != '\n') return line_scan::bare_cr;
      next = i + 2;
      return line_scan::found;
    }
  }
  end = buf.size();
  return line_scan::incomplete;
}

parse_result error(int status) {
  return {parse_result::kind::error, 0, status};
}

}  // namespace

parse_result parse_request(std::string_view buf, const parser_limits& limits, request_head& out) {
  out = request_head{};
  // Leading empty lines count towards max_header_bytes so a stream of them cannot grow the buffer.
  std::size_t pos = 0;
  while (pos < buf.size() && (buf[pos] == '\n' || buf[pos] == '\r')) {
    if (buf[pos] == '\n') {
      ++pos;
    } else if (pos + 1 < buf.size() && buf[pos + 1] == '\n') {
      pos += 2;
    } else {
      break;  // a lone CR: scan_line below reports incomplete or bare CR
    }
  }
  const parse_result incomplete =
      buf.size() > limits.max_header_bytes ? error(431) : parse_result{};

  std::size_t end = 0;
  std::size_t next = 0;
  line_scan scan = scan_line(buf, pos, end, next);
  if (scan == line_scan::bare_cr) return error(400);
  if (end - pos > limits.max_request_line) return error(414);
  if (scan == line_scan::incomplete) return incomplete;
  if (next > limits.max_header_bytes) return error(431);
  if (int status = parse_request_line(buf.substr(pos, end - pos), out)) return error(status);

  field_state st;
  st.target_has_host = !out.host.empty();
  while (true) {
    pos = next;
    scan = scan_line(buf, pos, end, next);
    if (scan == line_scan::bare_cr) return error(400);
    if (scan == line_scan::incomplete) return incomplete;
    if (next > limits.max_header_bytes) return error(431);
    if (end == pos) break;
    if (++out.header_count > limits.max_headers) return error(431);
    if (int status = parse_field(buf.substr(pos, end - pos), st, out)) return error(status);
  }

  if (out.version_minor == 1 && !st.host_seen) return error(400);
  if (st.te_seen) {
    // RFC 9112 6.1 and 6.3: no body length can be trusted in any of these cases.
    if (out.has_content_length || out.version_minor == 0 || !st.te_chunked_last) {
      return error(400);
    }
    out.chunked = true;
  }
  if (st.drop_range) {
    out.range = {};
    out.if_range = {};
  }
  if (st.drop_if_modified_since) out.if_modified_since = {};
  out.keep_alive = !st.close && (out.version_minor == 1 || st.keep_alive);
  return {parse_result::kind::complete, next, 0};
}

std::size_t find_head_end(std::string_view buf) {
  // Skip leading empty lines as parse_request does, so the answer equals its `consumed`.
  std::size_t pos = 0;
  while (pos < buf.size()) {
    if (buf[pos] == '\n') {
      ++pos;
    } else if (buf[pos] == '\r' && pos + 1 < buf.size() && buf[pos + 1] == '\n') {
      pos += 2;
    } else {
      break;
    }
  }
  for (std::size_t i = buf.find('\n', pos); i != std::string_view::npos;
       i = buf.find('\n', i + 1)) {
    if (i + 1 < buf.size() && buf[i + 1] == '\n') return i + 2;
    if (i + 2 < buf.size() && buf[i + 1] == '\r' && buf[i + 2] == '\n') return i + 3;
  }
  return 0;
}

}  // namespace weir::http
