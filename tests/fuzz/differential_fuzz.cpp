// weir's request parser against an independent one, Node's http_parser (Debian
// libhttp-parser-dev, linked by this test only). Two modes, by the first input byte:
//  - generated (even): the rest of the bytes drive a generator of requests that RFC 9112 says a
//    server should accept (known methods, pchar paths, a Host, token field names, visible field
//    values, one body framing). Both parsers must accept each one, and agree on the fields.
//  - raw (odd): the bytes as they are. Where both accept, they must agree on the fields, above all
//    on the body framing (Content-Length, chunked) and the head's length, since a disagreement
//    there is what request smuggling is made of. Where only one accepts, nothing is required
//    (http_parser is laxer in places weir refuses on purpose: obs-fold, a missing Host, CL with
//    TE).
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <http_parser.h>

#include "stages/http/parser.hpp"
#include "tests/fuzz/check.hpp"

namespace {

// ---- http_parser's view of a request head ----

struct other_head {
  bool complete = false;
  std::size_t consumed = 0;
  std::string url;
  std::vector<std::pair<std::string, std::string>> fields;
  bool last_was_value = false;
  unsigned method = 0;
  unsigned major = 0, minor = 0;
  bool chunked = false, has_content_length = false, keep_alive = false;
  std::uint64_t content_length = 0;
};

int on_url(http_parser* p, const char* at, std::size_t n) {
  static_cast<other_head*>(p->data)->url.append(at, n);
  return 0;
}
int on_field(http_parser* p, const char* at, std::size_t n) {
  auto* h = static_cast<other_head*>(p->data);
  if (h->fields.empty() || h->last_was_value) h->fields.emplace_back();
  h->fields.back().first.append(at, n);
  h->last_was_value = false;
  return 0;
}
int on_value(http_parser* p, const char* at, std::size_t n) {
  auto* h = static_cast<other_head*>(p->data);
  h->fields.back().second.append(at, n);
  h->last_was_value = true;
  return 0;
}
int on_headers_complete(http_parser* p) {
  auto* h = static_cast<other_head*>(p->data);
  h->complete = true;
  h->method = p->method;
  h->major = p->http_major;
  h->minor = p->http_minor;
  h->chunked = (p->flags & F_CHUNKED) != 0;
  h->has_content_length = (p->flags & F_CONTENTLENGTH) != 0;
  h->content_length = h->has_content_length ? p->content_length : 0;
  h->keep_alive = http_should_keep_alive(p) != 0;
  http_parser_pause(p, 1);  // the head is all both parsers are asked about
  return 0;
}

other_head parse_other(std::string_view buf) {
  http_parser_settings s;
  http_parser_settings_init(&s);
  s.on_url = on_url;
  s.on_header_field = on_field;
  s.on_header_value = on_value;
  s.on_headers_complete = on_headers_complete;
  http_parser p;
  http_parser_init(&p, HTTP_REQUEST);
  other_head h;
  p.data = &h;
  const std::size_t n = http_parser_execute(&p, &s, buf.data(), buf.size());
  if (!h.complete) return h;
  // Paused in on_headers_complete, which runs on the head's last '\n': n counts up to it.
  h.consumed = n + 1;
  // http_parser judges the body framing just after that callback (e.g. a Transfer-Encoding
  // without chunked last): parse the head alone again, unpaused, and take its verdict.
  http_parser q;
  http_parser_init(&q, HTTP_REQUEST);
  http_parser_settings none;
  http_parser_settings_init(&none);
  http_parser_execute(&q, &none, buf.data(), h.consumed);
  if (HTTP_PARSER_ERRNO(&q) != HPE_OK) h.complete = false;
  return h;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

void report(const char* what, std::string_view req) {
  std::fprintf(stderr, "%s on: ", what);
  for (char c : req) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f && c != '\\') {
      std::fputc(c, stderr);
    } else {
      std::fprintf(stderr, "\\x%02x", u);
    }
  }
  std::fputc('\n', stderr);
}

// A disagreement names the field and shows the request.
#define DIFF_CHECK(cond)                      \
  do {                                        \
    if (!(cond)) report("disagreement", buf); \
    FUZZ_CHECK(cond);                         \
  } while (0)

void compare(std::string_view buf, const weir::http::request_head& w, std::size_t w_consumed,
             const other_head& o, bool generated) {
  DIFF_CHECK(w_consumed == o.consumed);
  DIFF_CHECK(w.method_token == http_method_str(static_cast<http_method>(o.method)));
  DIFF_CHECK(w.target == o.url);
  DIFF_CHECK(o.major == 1);
  DIFF_CHECK(w.version_minor == (o.minor == 0 ? 0 : 1));
  DIFF_CHECK(w.header_count == o.fields.size());
  DIFF_CHECK(w.has_content_length == o.has_content_length);
  DIFF_CHECK(w.content_length == o.content_length);
  DIFF_CHECK(w.chunked == o.chunked);
  // Persistence is checked against RFC 9112 9.3 computed from the fields as http_parser split
  // them: "close" in any Connection field ends it, else HTTP/1.1 or a "keep-alive" token keeps
  // it. http_parser itself lets keep-alive win over close in HTTP/1.0 and misses a token after
  // an empty list element (",keep-alive", which RFC 9110 5.6.1 says to accept), so its own
  // verdict is compared only on the generated requests, which have neither.
  bool says_close = false, says_keep_alive = false;
  for (const auto& [name, value] : o.fields) {
    if (lower(name) != "connection") continue;
    std::string_view list = value;
    for (;;) {
      const std::size_t comma = list.find(',');
      const std::string token = lower(trim(list.substr(0, comma)));
      says_close |= token == "close";
      says_keep_alive |= token == "keep-alive";
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
    }
  }
  DIFF_CHECK(w.keep_alive == (!says_close && (o.minor != 0 || says_keep_alive)));
  if (generated && !(says_close && says_keep_alive)) DIFF_CHECK(w.keep_alive == o.keep_alive);
  // The fields weir keeps, as the other parser saw them (its values keep trailing whitespace).
  for (const auto& [name, value] : o.fields) {
    const std::string n = lower(name);
    if (n == "host" && w.target.front() == '/') DIFF_CHECK(w.host == trim(value));
    if (n == "range") DIFF_CHECK(w.range.empty() || w.range == trim(value));
  }
}

// ---- the generator of requests both should accept ----

class bytes {
 public:
  explicit bytes(std::string_view s) : s_(s) {}
  unsigned next(unsigned bound) {  // 0..bound-1; 0 once the input is used up
    if (s_.empty() || bound <= 1) return 0;
    const auto v = static_cast<unsigned char>(s_.front());
    s_.remove_prefix(1);
    return v % bound;
  }
  bool flip() { return next(2) == 1; }

 private:
  std::string_view s_;
};

constexpr std::string_view methods[] = {"GET",    "HEAD",  "POST",  "PUT",
                                        "DELETE", "TRACE", "PATCH", "OPTIONS"};
constexpr std::string_view alpha = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
constexpr std::string_view pchar_extra = "-._~!$&'()*+,;=:@";  // RFC 3986 pchar, beside alnum
constexpr std::string_view tchar_extra = "!#$%&'*+-.^_`|~";

std::string some(bytes& b, std::string_view a, std::string_view extra, unsigned max_len) {
  std::string out;
  const unsigned n = 1 + b.next(max_len);
  for (unsigned i = 0; i < n; ++i) {
    const unsigned k = b.next(static_cast<unsigned>(a.size() + extra.size()));
    out += k < a.size() ? a[k] : extra[k - a.size()];
  }
  return out;
}

std::string target(bytes& b) {
  std::string t;
  const unsigned segments = b.next(4);
  for (unsigned i = 0; i < segments; ++i) {
    t += '/';
    if (b.next(4) == 0) {
      static constexpr char hex[] = "0123456789ABCDEF";
      t += '%';
      t += hex[b.next(16)];
      t += hex[b.next(16)];
    }
    t += some(b, alpha, pchar_extra, 12);
  }
  if (t.empty() || b.flip()) t += '/';
  if (b.next(3) == 0) t += "?" + some(b, alpha, std::string(pchar_extra) + "/?", 16);
  return t;
}

std::string field_value(bytes& b) {
  // field-content: visible characters (and obs-text) with single spaces or tabs inside.
  std::string v;
  const unsigned n = b.next(20);
  for (unsigned i = 0; i < n; ++i) {
    const unsigned k = b.next(100);
    if (k < 94) {
      v += static_cast<char>(0x21 + k);
    } else if (k < 97 && !v.empty() && v.back() != ' ' && v.back() != '\t') {
      v += k == 96 ? '\t' : ' ';
    } else if (k >= 97) {
      v += static_cast<char>(0x80 + b.next(128));  // obs-text
    }
  }
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.pop_back();
  return v;
}

std::string mixed_case(bytes& b, std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (b.flip()) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string generate(bytes& b) {
  const std::string_view eol = b.next(8) == 0 ? "\n" : "\r\n";
  std::string r;
  for (unsigned i = b.next(6) == 0 ? 1 + b.next(2) : 0; i > 0; --i) r += eol;
  const bool http10 = b.next(4) == 0;
  r += std::string(methods[b.next(std::size(methods))]) + " " + target(b) + " HTTP/1." +
       (http10 ? "0" : "1") + std::string(eol);
  const bool host = !http10 || b.flip();
  const unsigned host_at = b.next(4);
  const unsigned others = b.next(6);
  bool framed = false;
  auto ows = [&] { return std::string(b.next(3) == 0 ? " \t" : b.flip() ? " " : ""); };
  // http_parser 2.9.4 takes no HTAB after the values it interprets (Content-Length's digits,
  // Transfer-Encoding's "chunked", Connection's tokens), though RFC 9110 5.6.3 allows OWS there.
  auto spaces = [&] { return std::string(b.next(3) == 0 ? "  " : b.flip() ? " " : ""); };
  for (unsigned i = 0; i <= others; ++i) {
    if (host && i == host_at % (others + 1)) {
      std::string h = some(b, alpha, "-.", 20);
      if (b.flip()) h += ":" + std::to_string(b.next(256) * 256 + b.next(256));
      r += mixed_case(b, "host") + ":" + ows() + h + ows() + std::string(eol);
    }
    if (i == others) break;
    switch (b.next(5)) {
      case 0:
        if (!framed) {
          framed = true;
          r += mixed_case(b, "content-length") + ":" + ows() +
               std::to_string(b.next(256) * 65536 + b.next(65536)) + spaces() + std::string(eol);
        }
        break;
      case 1:
        if (!framed && !http10) {
          framed = true;
          r += mixed_case(b, "transfer-encoding") + ":" + ows() + mixed_case(b, "chunked") +
               spaces() + std::string(eol);
        }
        break;
      case 2:
        r += mixed_case(b, "connection") + ":" + ows() +
             mixed_case(b, b.flip() ? "close" : "keep-alive") + spaces() + std::string(eol);
        break;
      default: {
        std::string name = some(b, alpha, tchar_extra, 16);
        // Names the parsers give meaning to are generated above, with valid values only.
        const std::string n = lower(name);
        if (n == "host" || n == "content-length" || n == "transfer-encoding" || n == "connection" ||
            n == "upgrade" || n == "proxy-connection")
          name = "x-" + name;
        r += name + ":" + ows() + field_value(b) + ows() + std::string(eol);
      }
    }
  }
  r += eol;
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  const bool generated = data[0] % 2 == 0;
  std::string owned;
  std::string_view req = rest;
  if (generated) {
    bytes b(rest);
    owned = generate(b);
    req = owned;
  }
  weir::http::request_head w;
  const weir::http::parse_result wr = weir::http::parse_request(req, {}, w);
  const other_head o = parse_other(req);
  const bool w_ok = wr.outcome == weir::http::parse_result::kind::complete;
  if (generated) {
    if (!w_ok) report("weir refused a valid request", req);
    FUZZ_CHECK(w_ok);
    if (!o.complete) report("http_parser refused a valid request", req);
    FUZZ_CHECK(o.complete);
  }
  if (w_ok && o.complete) {
    compare(req, w, wr.consumed, o, generated);
  }
  return 0;
}
