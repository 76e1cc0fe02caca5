#include "stages/http/parser.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace weir::http {
namespace {

using namespace std::string_literals;
using kind = parse_result::kind;

// Parses a private, exactly sized copy of `buf`: the views stay valid as long as the result,
// and ASan sees any read past the end.
struct parsed {
  std::unique_ptr<char[]> bytes;
  std::size_t size = 0;
  parse_result result;
  request_head head;

  std::string_view buf() const { return {bytes.get(), size}; }
};

parsed parse(std::string_view buf, const parser_limits& limits = {}) {
  parsed p;
  p.bytes = std::make_unique<char[]>(buf.size());
  p.size = buf.size();
  std::copy(buf.begin(), buf.end(), p.bytes.get());
  p.result = parse_request(p.buf(), limits, p.head);
  return p;
}

// True when `v` is a (possibly empty) view that lies inside `buf`.
bool inside(std::string_view buf, std::string_view v) {
  return v.data() >= buf.data() && v.data() + v.size() <= buf.data() + buf.size();
}

// ---------------------------------------------------------------------------------------------
// Malformed requests: input bytes -> expected status.

struct bad_case {
  const char* name;
  std::string input;
  int status;
};

void PrintTo(const bad_case& c, std::ostream* os) {
  *os << c.name;
}

class malformed_request : public testing::TestWithParam<bad_case> {};

TEST_P(malformed_request, is_rejected_with_status) {
  const bad_case& c = GetParam();
  parsed p = parse(c.input);
  EXPECT_EQ(p.result.outcome, kind::error);
  EXPECT_EQ(p.result.status, c.status);
}

const std::string host = "Host: example.com\r\n";

INSTANTIATE_TEST_SUITE_P(
    corpus, malformed_request,
    testing::Values(
        // Request-line shape.
        bad_case{"empty_method", " / HTTP/1.1\r\n" + host + "\r\n", 400},
        bad_case{"method_bad_char", "GE(T / HTTP/1.1\r\n" + host + "\r\n", 400},
        bad_case{"method_with_slash", "GET/ / HTTP/1.1\r\n" + host + "\r\n", 400},
        bad_case{"double_space_before_target", "GET  / HTTP/1.1\r\n" + host + "\r\n", 400},
        bad_case{"double_space_before_version", "GET /  HTTP/1.1\r\n" + host + "\r\n", 400},
        bad_case{"trailing_space", "GET / HTTP/1.1 \r\n" + host + "\r\n", 400},
        bad_case{"tab_separators", "GET\t/\tHTTP/1.1\r\n" + host + "\r\n", 400},
        bad_case{"missing_version", "GET /\r\n" + host + "\r\n", 400},
        bad_case{"method_only", "GET\r\n" + host + "\r\n", 400},
        bad_case{"no_request_line", "\r\n\r\n" + host + "\r\n", 400},
        bad_case{"three_parts_plus", "GET / x HTTP/1.1\r\n" + host + "\r\n", 400},
        // Version.
        bad_case{"version_lowercase", "GET / http/1.1\r\n" + host + "\r\n", 400},
        bad_case{"version_no_minor", "GET / HTTP/1\r\n" + host + "\r\n", 400},
        bad_case{"version_three_parts", "GET / HTTP/1.1.1\r\n" + host + "\r\n", 400},
        bad_case{"version_two_digit_major", "GET / HTTP/11.1\r\n" + host + "\r\n", 400},
        bad_case{"version_two_digit_minor", "GET / HTTP/1.10\r\n" + host + "\r\n", 400},
        bad_case{"version_letter", "GET / HTTP/1.x\r\n" + host + "\r\n", 400},
        bad_case{"version_not_http", "GET / FTP/1.1\r\n" + host + "\r\n", 400},
        bad_case{"version_2_0", "GET / HTTP/2.0\r\n" + host + "\r\n", 505},
        bad_case{"version_0_9", "GET / HTTP/0.9\r\n" + host + "\r\n", 505},
        bad_case{"version_3_0", "GET / HTTP/3.0\r\n" + host + "\r\n", 505},
        bad_case{"h2_preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505},
        // Request-target.
        bad_case{"target_relative", "GET foo HTTP/1.1\r\n" + host + "\r\n", 400},
        bad_case{"target_fragment", "GET /a#b HTTP/1.1\r\n" + host + "\r\n", 400},
        bad_case{"target_del", "GET /a\x7f HTTP/1.1\r\n" + host + "\r\n", 400},
        bad_case{"target_high_byte", "GET /\x80 HTTP/1.1\r\n" + host + "\r\n", 400},
        bad_case{"target_control", "GET /a\x01z HTTP/1.1\r\n" + host + "\r\n", 400},
        bad_case{"target_nul", "GET /a\0z HTTP/1.1\r\n"s + host + "\r\n", 400},
        bad_case{"target_other_scheme", "GET ftp://x/ HTTP/1.1\r\n" + host + "\r\n", 400},
        bad_case{"target_empty_authority", "GET http:///a HTTP/1.1\r\n" + host + "\r\n", 400},
        bad_case{"target_scheme_only", "GET http:// HTTP/1.1\r\n" + host + "\r\n", 400},
        bad_case{"target_userinfo", "GET http://u@h/ HTTP/1.1\r\n" + host + "\r\n", 400},
        bad_case{"target_bad_port", "GET http://h:8x/ HTTP/1.1\r\n" + host + "\r\n", 400},
        bad_case{"authority_without_connect", "GET h.com:80 HTTP/1.1\r\n" + host + "\r\n", 400},
        bad_case{"connect_without_port", "CONNECT h.com HTTP/1.1\r\n" + host + "\r\n", 400},
        bad_case{"connect_empty_port", "CONNECT h.com: HTTP/1.1\r\n" + host + "\r\n", 400},
        bad_case{"connect_origin_slash", "CONNECT h.com:80/x HTTP/1.1\r\n" + host + "\r\n", 400},
        // Host.
        bad_case{"host_missing_1_1", "GET / HTTP/1.1\r\n\r\n", 400},
        bad_case{"host_twice", "GET / HTTP/1.1\r\n" + host + host + "\r\n", 400},
        bad_case{"host_twice_different_case", "GET / HTTP/1.1\r\nHost: a\r\nHOST: a\r\n\r\n", 400},
        bad_case{"host_twice_1_0", "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400},
        bad_case{"host_empty_1_1", "GET / HTTP/1.1\r\nHost:\r\n\r\n", 400},
        bad_case{"host_inner_space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
        bad_case{"host_slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400},
        bad_case{"host_userinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400},
        bad_case{"host_bad_port", "GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n", 400},
        bad_case{"host_port_only", "GET / HTTP/1.1\r\nHost: :80\r\n\r\n", 400},
        bad_case{"host_unclosed_bracket", "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400},
        bad_case{"host_junk_after_bracket", "GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n", 400},
        bad_case{"host_bad_pct", "GET / HTTP/1.1\r\nHost: a%zz\r\n\r\n", 400},
        bad_case{"host_invalid_even_with_absolute_form",
                 "GET http://h/ HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
        bad_case{"host_missing_with_absolute_form", "GET http://h/ HTTP/1.1\r\n\r\n", 400},
        // Field-line syntax.
        bad_case{"obs_fold", "GET / HTTP/1.1\r\n" + host + "X-A: a\r\n b\r\n\r\n", 400},
        bad_case{"obs_fold_tab", "GET / HTTP/1.1\r\n" + host + "X-A: a\r\n\tb\r\n\r\n", 400},
        bad_case{"space_before_first_field", "GET / HTTP/1.1\r\n " + host + "\r\n", 400},
        bad_case{"field_without_colon", "GET / HTTP/1.1\r\n" + host + "X-A a\r\n\r\n", 400},
        bad_case{"field_empty_name", "GET / HTTP/1.1\r\n" + host + ": a\r\n\r\n", 400},
        bad_case{"space_before_colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400},
        bad_case{"tab_before_colon", "GET / HTTP/1.1\r\n" + host + "X-A\t: a\r\n\r\n", 400},
        bad_case{"name_bad_char", "GET / HTTP/1.1\r\n" + host + "X(A): a\r\n\r\n", 400},
        bad_case{"name_high_byte", "GET / HTTP/1.1\r\n" + host + "X-\xe9: a\r\n\r\n", 400},
        bad_case{"value_nul", "GET / HTTP/1.1\r\n" + host + "X-A: a\0b\r\n\r\n"s, 400},
        bad_case{"value_bare_cr", "GET / HTTP/1.1\r\n" + host + "X-A: a\rb\r\n\r\n", 400},
        bad_case{"value_del", "GET / HTTP/1.1\r\n" + host + "X-A: a\x7f\r\n\r\n", 400},
        bad_case{"value_control", "GET / HTTP/1.1\r\n" + host + "X-A: a\x1b[0m\r\n\r\n", 400},
        bad_case{"value_vertical_tab", "GET / HTTP/1.1\r\n" + host + "X-A: a\vb\r\n\r\n", 400},
        bad_case{"bare_cr_in_request_line", "GET / HTTP/1.1\rHost: a\r\n\r\n", 400},
        bad_case{"bare_cr_leading", "\rGET / HTTP/1.1\r\n" + host + "\r\n", 400},
        bad_case{"bare_cr_ending_head", "GET / HTTP/1.1\r\n" + host + "\rX", 400},
        // Content-Length.
        bad_case{"cl_letters", "POST / HTTP/1.1\r\n" + host + "Content-Length: abc\r\n\r\n", 400},
        bad_case{"cl_negative", "POST / HTTP/1.1\r\n" + host + "Content-Length: -1\r\n\r\n", 400},
        bad_case{"cl_plus", "POST / HTTP/1.1\r\n" + host + "Content-Length: +5\r\n\r\n", 400},
        bad_case{"cl_hex", "POST / HTTP/1.1\r\n" + host + "Content-Length: 0x5\r\n\r\n", 400},
        bad_case{"cl_inner_space", "POST / HTTP/1.1\r\n" + host + "Content-Length: 1 2\r\n\r\n",
                 400},
        bad_case{"cl_empty", "POST / HTTP/1.1\r\n" + host + "Content-Length:\r\n\r\n", 400},
        bad_case{"cl_list_differs", "POST / HTTP/1.1\r\n" + host + "Content-Length: 5, 6\r\n\r\n",
                 400},
        bad_case{"cl_list_empty_element",
                 "POST / HTTP/1.1\r\n" + host + "Content-Length: 5,,5\r\n\r\n", 400},
        bad_case{"cl_trailing_comma", "POST / HTTP/1.1\r\n" + host + "Content-Length: 5,\r\n\r\n",
                 400},
        bad_case{"cl_fields_differ",
                 "POST / HTTP/1.1\r\n" + host + "Content-Length: 5\r\nContent-Length: 6\r\n\r\n",
                 400},
        bad_case{"cl_overflow",
                 "POST / HTTP/1.1\r\n" + host + "Content-Length: 18446744073709551616\r\n\r\n",
                 400},
        bad_case{"cl_way_overflow",
                 "POST / HTTP/1.1\r\n" + host + "Content-Length: 99999999999999999999999\r\n\r\n",
                 400},
        // Transfer-Encoding.
        bad_case{"te_with_cl",
                 "POST / HTTP/1.1\r\n" + host +
                     "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
                 400},
        bad_case{"cl_with_te",
                 "POST / HTTP/1.1\r\n" + host +
                     "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
                 400},
        bad_case{"te_in_1_0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
        bad_case{"te_not_chunked", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: gzip\r\n\r\n",
                 400},
        bad_case{"te_chunked_not_last",
                 "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked, gzip\r\n\r\n", 400},
        bad_case{"te_chunked_twice",
                 "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked, chunked\r\n\r\n", 400},
        bad_case{"te_chunked_then_field",
                 "POST / HTTP/1.1\r\n" + host +
                     "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n",
                 400},
        bad_case{"te_empty", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding:\r\n\r\n", 400},
        bad_case{"te_chunked_with_param",
                 "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked;x=1\r\n\r\n", 400}),
    [](const testing::TestParamInfo<bad_case>& p) { return std::string(p.param.name); });

// ---------------------------------------------------------------------------------------------
// Valid requests.

TEST(parse_request, simple_get_sets_every_field) {
  const std::string buf = "GET /index.html HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n";
  parsed p = parse(buf);
  ASSERT_EQ(p.result.outcome, kind::complete);
  EXPECT_EQ(p.result.consumed, buf.size());
  EXPECT_EQ(p.result.status, 0);
  const request_head& h = p.head;
  EXPECT_EQ(h.verb, method::get);
  EXPECT_EQ(h.method_token, "GET");
  EXPECT_EQ(h.target, "/index.html");
  EXPECT_EQ(h.path, "/index.html");
  EXPECT_EQ(h.query, "");
  EXPECT_EQ(h.host, "example.com");
  EXPECT_EQ(h.version_minor, 1);
  EXPECT_TRUE(h.keep_alive);
  EXPECT_FALSE(h.chunked);
  EXPECT_FALSE(h.has_content_length);
  EXPECT_EQ(h.content_length, 0u);
  EXPECT_EQ(h.if_none_match, "");
  EXPECT_EQ(h.if_modified_since, "");
  EXPECT_EQ(h.range, "");
  EXPECT_EQ(h.if_range, "");
  EXPECT_EQ(h.header_count, 2u);
}

TEST(parse_request, views_point_into_the_buffer) {
  const std::string buf =
      "GET /a/b?x=1 HTTP/1.1\r\nHost: h\r\nIf-None-Match: \"e\"\r\n"
      "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\nRange: bytes=0-1\r\n"
      "If-Range: \"e\"\r\n\r\n";
  parsed p = parse(buf);
  ASSERT_EQ(p.result.outcome, kind::complete);
  const request_head& h = p.head;
  for (std::string_view v : {h.method_token, h.target, h.path, h.query, h.host, h.if_none_match,
                             h.if_modified_since, h.range, h.if_range}) {
    EXPECT_FALSE(v.empty());
    EXPECT_TRUE(inside(p.buf(), v)) << v;
  }
}

TEST(parse_request, splits_query_at_first_question_mark) {
  parsed p = parse("GET /a/b?x=1&y=2?z HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_EQ(p.result.outcome, kind::complete);
  EXPECT_EQ(p.head.target, "/a/b?x=1&y=2?z");
  EXPECT_EQ(p.head.path, "/a/b");
  EXPECT_EQ(p.head.query, "x=1&y=2?z");

  p = parse("GET /a? HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_EQ(p.result.outcome, kind::complete);
  EXPECT_EQ(p.head.path, "/a");
  EXPECT_EQ(p.head.query, "");
}

TEST(parse_request, keeps_percent_encoding_and_odd_visible_chars_in_path) {
  parsed p = parse("GET /%2e%2E/a%20b/~!$&'()*+,;=:@[] HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_EQ(p.result.outcome, kind::complete);
  EXPECT_EQ(p.head.path, "/%2e%2E/a%20b/~!$&'()*+,;=:@[]");
}

TEST(parse_request, maps_known_methods_case_sensitively) {
  const std::pair<const char*, method> cases[] = {
      {"GET", method::get},      {"HEAD", method::head},       {"POST", method::post},
      {"PUT", method::put},      {"DELETE", method::delete_},  {"OPTIONS", method::options},
      {"TRACE", method::trace},  {"PATCH", method::patch},     {"get", method::unknown},
      {"Head", method::unknown}, {"FOO", method::unknown},     {"M-SEARCH", method::unknown},
      {"GETS", method::unknown}, {"PROPFIND", method::unknown}};
  for (const auto& [token, verb] : cases) {
    const std::string buf = std::string(token) + " / HTTP/1.1\r\nHost: h\r\n\r\n";
    parsed p = parse(buf);
    ASSERT_EQ(p.result.outcome, kind::complete) << token;
    EXPECT_EQ(p.head.verb, verb) << token;
    EXPECT_EQ(p.head.method_token, token);
  }
}

TEST(parse_request, connect_takes_authority_form) {
  parsed p = parse("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
  ASSERT_EQ(p.result.outcome, kind::complete);
  EXPECT_EQ(p.head.verb, method::connect);
  EXPECT_EQ(p.head.host, "example.com:443");
  EXPECT_EQ(p.head.target, "example.com:443");
}

TEST(parse_request, asterisk_form) {
  parsed p = parse("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_EQ(p.result.outcome, kind::complete);
  EXPECT_EQ(p.head.verb, method::options);
  EXPECT_EQ(p.head.path, "*");
  EXPECT_EQ(p.head.query, "");
  EXPECT_EQ(p.head.host, "h");
}

TEST(parse_request, absolute_form_takes_host_from_target) {
  parsed p = parse("GET http://example.com:8080/a/b?q=1 HTTP/1.1\r\nHost: other.example\r\n\r\n");
  ASSERT_EQ(p.result.outcome, kind::complete);
  EXPECT_EQ(p.head.host, "example.com:8080");
  EXPECT_EQ(p.head.path, "/a/b");
  EXPECT_EQ(p.head.query, "q=1");
  EXPECT_EQ(p.head.target, "http://example.com:8080/a/b?q=1");

  // Host field after the target still loses.
  p = parse("GET https://[::1]:443/x HTTP/1.1\r\nHost: other\r\n\r\n");
  ASSERT_EQ(p.result.outcome, kind::complete);
  EXPECT_EQ(p.head.host, "[::1]:443");
  EXPECT_EQ(p.head.path, "/x");
}

TEST(parse_request, absolute_form_scheme_is_case_insensitive_and_empty_path_is_root) {
  const std::string buf = "GET HTTP://Example.COM HTTP/1.1\r\nHost: h\r\n\r\n";
  parsed p = parse(buf);
  ASSERT_EQ(p.result.outcome, kind::complete);
  EXPECT_EQ(p.head.host, "Example.COM");
  EXPECT_EQ(p.head.path, "/");
  EXPECT_TRUE(inside(p.buf(), p.head.path));
  EXPECT_EQ(p.head.query, "");

  p = parse("GET hTTpS://h?x=1 HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_EQ(p.result.outcome, kind::complete);
  EXPECT_EQ(p.head.path, "/");
  EXPECT_EQ(p.head.query, "x=1");
}

TEST(parse_request, absolute_form_in_http_1_0_needs_no_host_field) {
  parsed p = parse("GET http://h/a HTTP/1.0\r\n\r\n");
  ASSERT_EQ(p.result.outcome, kind::complete);
  EXPECT_EQ(p.head.host, "h");
  EXPECT_EQ(p.head.path, "/a");
}

TEST(parse_request, http_1_0_defaults) {
  parsed p = parse("GET / HTTP/1.0\r\n\r\n");
  ASSERT_EQ(p.result.outcome, kind::complete);
  EXPECT_EQ(p.head.version_minor, 0);
  EXPECT_FALSE(p.head.keep_alive);
  EXPECT_EQ(p.head.host, "");
  EXPECT_EQ(p.head.header_count, 0u);
}

TEST(parse_request, http_1_0_allows_empty_host) {
  parsed p = parse("GET / HTTP/1.0\r\nHost:\r\n\r\n");
  ASSERT_EQ(p.result.outcome, kind::complete);
  EXPECT_EQ(p.head.host, "");
}

TEST(parse_request, higher_1_x_minor_versions_get_1_1_semantics) {
  for (const char* v : {"HTTP/1.2", "HTTP/1.9"}) {
    parsed p = parse(std::string("GET / ") + v + "\r\nHost: h\r\n\r\n");
    ASSERT_EQ(p.result.outcome, kind::complete) << v;
    EXPECT_EQ(p.head.version_minor, 1) << v;
    EXPECT_TRUE(p.head.keep_alive) << v;
  }
  EXPECT_EQ(parse("GET / HTTP/1.2\r\n\r\n").result.status, 400);  // Host is required as in 1.1
}

TEST(parse_request, connection_tokens) {
  struct conn_case {
    const char* version;
    const char* field;  // nullptr: no Connection field
    bool keep_alive;
  };
  const conn_case cases[] = {
      {"1.1", nullptr, true},
      {"1.1", "close", false},
      {"1.1", "Close", false},
      {"1.1", "keep-alive", true},
      {"1.1", "keep-alive, close", false},
      {"1.1", "close, keep-alive", false},
      {"1.1", "foo ,\tCLOSE ", false},
      {"1.1", "closed", true},
      {"1.1", "upgrade", true},
      {"1.0", nullptr, false},
      {"1.0", "keep-alive", true},
      {"1.0", "Keep-Alive", true},
      {"1.0", "foo, keep-alive", true},
      {"1.0", "keep-alive, close", false},
      {"1.0", "upgrade", false},
  };
  for (const conn_case& c : cases) {
    std::string buf = std::string("GET / HTTP/") + c.version + "\r\nHost: h\r\n";
    if (c.field) buf += std::string("Connection: ") + c.field + "\r\n";
    buf += "\r\n";
    parsed p = parse(buf);
    ASSERT_EQ(p.result.outcome, kind::complete) << buf;
    EXPECT_EQ(p.head.keep_alive, c.keep_alive) << buf;
  }
}

TEST(parse_request, connection_tokens_across_two_fields) {
  parsed p = parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: foo\r\nConnection: close\r\n\r\n");
  ASSERT_EQ(p.result.outcome, kind::complete);
  EXPECT_FALSE(p.head.keep_alive);
}

TEST(parse_request, host_variants_accepted) {
  for (const char* host_value :
       {"example.com", "example.com:8080", "EXAMPLE.com", "127.0.0.1", "[::1]", "[::1]:80",
        "a-b_c~d", "xn--bcher-kva.example", "h%41", "h:"}) {
    parsed p = parse(std::string("GET / HTTP/1.1\r\nHost: ") + host_value + "\r\n\r\n");
    ASSERT_EQ(p.result.outcome, kind::complete) << host_value;
    EXPECT_EQ(p.head.host, host_value);
  }
}

TEST(parse_request, field_names_are_case_insensitive) {
  parsed p = parse(
      "GET / HTTP/1.1\r\nhOsT: h\r\nCONTENT-LENGTH: 7\r\nif-none-match: \"a\"\r\n"
      "IF-MODIFIED-SINCE: d\r\nrAnGe: bytes=1-2\r\nIF-range: \"a\"\r\n\r\n");
  ASSERT_EQ(p.result.outcome, kind::complete);
  EXPECT_EQ(p.head.host, "h");
  EXPECT_TRUE(p.head.has_content_length);
  EXPECT_EQ(p.head.content_length, 7u);
  EXPECT_EQ(p.head.if_none_match, "\"a\"");
  EXPECT_EQ(p.head.if_modified_since, "d");
  EXPECT_EQ(p.head.range, "bytes=1-2");
  EXPECT_EQ(p.head.if_range, "\"a\"");
  EXPECT_EQ(p.head.header_count, 6u);
}

TEST(parse_request, values_are_trimmed_of_ows) {
  parsed p = parse(
      "GET / HTTP/1.1\r\nHost:\t h \t\r\nIf-None-Match:   W/\"x\", \"y\"  \r\n"
      "If-Modified-Since:Sun, 06 Nov 1994 08:49:37 GMT\t\r\nRange: \tbytes=0-9 \r\n"
      "If-Range:  Sun, 06 Nov 1994 08:49:37 GMT \r\n\r\n");
  ASSERT_EQ(p.result.outcome, kind::complete);
  EXPECT_EQ(p.head.host, "h");
  EXPECT_EQ(p.head.if_none_match, "W/\"x\", \"y\"");
  EXPECT_EQ(p.head.if_modified_since, "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(p.head.range, "bytes=0-9");
  EXPECT_EQ(p.head.if_range, "Sun, 06 Nov 1994 08:49:37 GMT");
}

TEST(parse_request, values_may_hold_obs_text_tab_and_be_empty) {
  parsed p = parse("GET / HTTP/1.1\r\nHost: h\r\nX-A: caf\xc3\xa9\tbar\xff\r\nX-Empty:\r\n\r\n");
  ASSERT_EQ(p.result.outcome, kind::complete);
  EXPECT_EQ(p.head.header_count, 3u);
}

TEST(parse_request, content_length_forms) {
  struct cl_case {
    const char* fields;
    std::uint64_t length;
  };
  const cl_case cases[] = {
      {"Content-Length: 0\r\n", 0},
      {"Content-Length: 42\r\n", 42},
      {"Content-Length: 007\r\n", 7},
      {"Content-Length: 5, 5\r\n", 5},
      {"Content-Length: 5,5 , 5\r\n", 5},
      {"Content-Length: 5\r\nContent-Length: 5\r\n", 5},
      {"Content-Length: 18446744073709551615\r\n", 18446744073709551615u},
  };
  for (const cl_case& c : cases) {
    parsed p = parse(std::string("POST / HTTP/1.1\r\nHost: h\r\n") + c.fields + "\r\n");
    ASSERT_EQ(p.result.outcome, kind::complete) << c.fields;
    EXPECT_TRUE(p.head.has_content_length) << c.fields;
    EXPECT_EQ(p.head.content_length, c.length) << c.fields;
    EXPECT_FALSE(p.head.chunked);
  }
}

TEST(parse_request, transfer_encoding_ending_in_chunked) {
  for (const char* fields :
       {"Transfer-Encoding: chunked\r\n", "Transfer-Encoding: Chunked\r\n",
        "Transfer-Encoding: gzip, chunked\r\n", "Transfer-Encoding: gzip,,chunked,\r\n",
        "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"}) {
    parsed p = parse(std::string("POST / HTTP/1.1\r\nHost: h\r\n") + fields + "\r\n");
    ASSERT_EQ(p.result.outcome, kind::complete) << fields;
    EXPECT_TRUE(p.head.chunked) << fields;
    EXPECT_FALSE(p.head.has_content_length);
  }
}

TEST(parse_request, repeated_if_none_match_keeps_the_first) {
  parsed p =
      parse("GET / HTTP/1.1\r\nHost: h\r\nIf-None-Match: \"a\"\r\nIf-None-Match: \"b\"\r\n\r\n");
  ASSERT_EQ(p.result.outcome, kind::complete);
  EXPECT_EQ(p.head.if_none_match, "\"a\"");
}

TEST(parse_request, repeated_singleton_conditionals_are_ignored) {
  parsed p = parse("GET / HTTP/1.1\r\nHost: h\r\nRange: bytes=0-1\r\nRange: bytes=5-9\r\n\r\n");
  ASSERT_EQ(p.result.outcome, kind::complete);
  EXPECT_EQ(p.head.range, "");

  p = parse(
      "GET / HTTP/1.1\r\nHost: h\r\nRange: bytes=0-1\r\nIf-Range: \"a\"\r\nIf-Range: "
      "\"b\"\r\n\r\n");
  ASSERT_EQ(p.result.outcome, kind::complete);
  EXPECT_EQ(p.head.range, "");
  EXPECT_EQ(p.head.if_range, "");

  p = parse("GET / HTTP/1.1\r\nHost: h\r\nIf-Modified-Since: a\r\nIf-Modified-Since: b\r\n\r\n");
  ASSERT_EQ(p.result.outcome, kind::complete);
  EXPECT_EQ(p.head.if_modified_since, "");
}

TEST(parse_request, head_is_reset_between_calls) {
  request_head h;
  parser_limits limits;
  ASSERT_EQ(parse_request("GET /a?q HTTP/1.1\r\nHost: h\r\nRange: bytes=0-1\r\nConnection: "
                          "close\r\nContent-Length: 3\r\n\r\n",
                          limits, h)
                .outcome,
            kind::complete);
  ASSERT_EQ(parse_request("HEAD /b HTTP/1.1\r\nHost: g\r\n\r\n", limits, h).outcome,
            kind::complete);
  EXPECT_EQ(h.verb, method::head);
  EXPECT_EQ(h.path, "/b");
  EXPECT_EQ(h.query, "");
  EXPECT_EQ(h.host, "g");
  EXPECT_EQ(h.range, "");
  EXPECT_TRUE(h.keep_alive);
  EXPECT_FALSE(h.has_content_length);
  EXPECT_EQ(h.header_count, 1u);
}

// ---------------------------------------------------------------------------------------------
// Line endings and leading empty lines.

TEST(parse_request, bare_lf_line_endings) {
  const std::string buf = "GET /x HTTP/1.1\nHost: h\nRange: bytes=1-\n\n";
  parsed p = parse(buf);
  ASSERT_EQ(p.result.outcome, kind::complete);
  EXPECT_EQ(p.result.consumed, buf.size());
  EXPECT_EQ(p.head.host, "h");
  EXPECT_EQ(p.head.range, "bytes=1-");
}

TEST(parse_request, mixed_line_endings) {
  for (std::string buf : {"GET / HTTP/1.1\nHost: h\r\n\r\n", "GET / HTTP/1.1\r\nHost: h\n\r\n",
                          "GET / HTTP/1.1\r\nHost: h\r\n\n"}) {
    parsed p = parse(buf);
    ASSERT_EQ(p.result.outcome, kind::complete) << buf;
    EXPECT_EQ(p.result.consumed, buf.size());
    EXPECT_EQ(p.head.host, "h");
  }
}

TEST(parse_request, leading_empty_lines_are_skipped_and_consumed) {
  const std::string req = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
  for (std::string lead : {"\r\n", "\r\n\r\n", "\n", "\r\n\n\r\n"}) {
    parsed p = parse(lead + req);
    ASSERT_EQ(p.result.outcome, kind::complete);
    EXPECT_EQ(p.result.consumed, lead.size() + req.size());
    EXPECT_EQ(p.head.method_token, "GET");
  }
  EXPECT_EQ(parse("\r\n\r\n").result.outcome, kind::incomplete);
  EXPECT_EQ(parse("\r").result.outcome, kind::incomplete);
  EXPECT_EQ(parse("\r\n\r").result.outcome, kind::incomplete);
}

// ---------------------------------------------------------------------------------------------
// Incremental feeding and pipelining.

const char* const valid_requests[] = {
    "GET / HTTP/1.1\r\nHost: h\r\n\r\n",
    "GET /a/b?c=d HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: test/1.0\r\n"
    "If-None-Match: W/\"1\", \"2\"\r\nRange: bytes=0-99\r\nConnection: keep-alive\r\n\r\n",
    "\r\nPOST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n",
    "GET /lf HTTP/1.0\nConnection: keep-alive\n\n",
    "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
    "GET http://h/x HTTP/1.1\r\nHost: h\r\n\r\n",
};

TEST(parse_request, every_prefix_is_incomplete_then_complete) {
  for (std::string full : valid_requests) {
    for (std::size_t n = 0; n < full.size(); ++n) {
      parsed p = parse(std::string_view(full).substr(0, n));
      EXPECT_EQ(p.result.outcome, kind::incomplete) << "prefix " << n << " of " << full;
    }
    parsed p = parse(full);
    ASSERT_EQ(p.result.outcome, kind::complete) << full;
    EXPECT_EQ(p.result.consumed, full.size());
  }
}

TEST(parse_request, incomplete_reports_early_errors) {
  // A complete but bad request-line is an error before the head is complete.
  EXPECT_EQ(parse("GET / HTTP/2.0\r\nHost: h\r\n").result.status, 505);
  EXPECT_EQ(parse("GET  / HTTP/1.1\r\n").result.status, 400);
  EXPECT_EQ(parse("GET / HTTP/1.1\r\nBad Name: x\r\n").result.status, 400);
  EXPECT_EQ(parse("GET / HTTP/1.1\r\nHost: h\r\n").result.outcome, kind::incomplete);
}

TEST(parse_request, pipelined_requests_consume_one_at_a_time) {
  const std::string first = "GET /one HTTP/1.1\r\nHost: h\r\n\r\n";
  const std::string second = "HEAD /two?x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
  const std::string buf = first + second;

  parsed p = parse(buf);
  ASSERT_EQ(p.result.outcome, kind::complete);
  EXPECT_EQ(p.result.consumed, first.size());
  EXPECT_EQ(p.head.path, "/one");
  EXPECT_TRUE(p.head.keep_alive);

  const std::string_view rest = std::string_view(buf).substr(p.result.consumed);
  parsed q = parse(rest);
  ASSERT_EQ(q.result.outcome, kind::complete);
  EXPECT_EQ(q.result.consumed, second.size());
  EXPECT_EQ(q.head.verb, method::head);
  EXPECT_EQ(q.head.path, "/two");
  EXPECT_EQ(q.head.query, "x");
  EXPECT_FALSE(q.head.keep_alive);
}

TEST(parse_request, body_after_head_is_not_consumed) {
  const std::string head = "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n";
  parsed p = parse(head + "0123456789GET");
  ASSERT_EQ(p.result.outcome, kind::complete);
  EXPECT_EQ(p.result.consumed, head.size());
  EXPECT_EQ(p.head.content_length, 10u);
}

TEST(parse_request, pipelined_second_request_partial) {
  const std::string first = "GET /one HTTP/1.1\r\nHost: h\r\n\r\n";
  parsed p = parse(first + "GET /two HTTP/1.1\r\nHo");
  ASSERT_EQ(p.result.outcome, kind::complete);
  EXPECT_EQ(p.result.consumed, first.size());
}

// ---------------------------------------------------------------------------------------------
// Limits.

TEST(parse_request, request_line_at_limit_and_one_over) {
  parser_limits limits;
  const std::string line = "GET /" + std::string(20, 'a') + " HTTP/1.1";  // 34 bytes
  limits.max_request_line = line.size();
  parsed p = parse(line + "\r\nHost: h\r\n\r\n", limits);
  EXPECT_EQ(p.result.outcome, kind::complete);

  limits.max_request_line = line.size() - 1;
  p = parse(line + "\r\nHost: h\r\n\r\n", limits);
  EXPECT_EQ(p.result.outcome, kind::error);
  EXPECT_EQ(p.result.status, 414);
}

TEST(parse_request, unfinished_request_line_over_limit_is_414) {
  parser_limits limits;
  limits.max_request_line = 16;
  EXPECT_EQ(parse("GET /" + std::string(11, 'a'), limits).result.outcome, kind::incomplete);
  // 16 bytes and a CR whose LF is still on the way: not over yet.
  EXPECT_EQ(parse("GET /" + std::string(11, 'a') + "\r", limits).result.outcome, kind::incomplete);
  parsed p = parse("GET /" + std::string(12, 'a'), limits);
  EXPECT_EQ(p.result.outcome, kind::error);
  EXPECT_EQ(p.result.status, 414);
}

TEST(parse_request, head_bytes_at_limit_and_one_over) {
  const std::string buf =
      "GET / HTTP/1.1\r\nHost: h\r\nX-Pad: " + std::string(30, 'p') + "\r\n\r\n";
  parser_limits limits;
  limits.max_header_bytes = buf.size();
  parsed p = parse(buf, limits);
  EXPECT_EQ(p.result.outcome, kind::complete);
  EXPECT_EQ(p.result.consumed, buf.size());

  limits.max_header_bytes = buf.size() - 1;
  p = parse(buf, limits);
  EXPECT_EQ(p.result.outcome, kind::error);
  EXPECT_EQ(p.result.status, 431);

  // Pipelined bytes after the head do not count.
  limits.max_header_bytes = buf.size();
  p = parse(buf + buf, limits);
  EXPECT_EQ(p.result.outcome, kind::complete);
}

TEST(parse_request, unfinished_head_over_limit_is_431) {
  const std::string partial = "GET / HTTP/1.1\r\nHost: h\r\nX-Pad: " + std::string(30, 'p');
  parser_limits limits;
  limits.max_header_bytes = partial.size();
  EXPECT_EQ(parse(partial, limits).result.outcome, kind::incomplete);
  limits.max_header_bytes = partial.size() - 1;
  parsed p = parse(partial, limits);
  EXPECT_EQ(p.result.outcome, kind::error);
  EXPECT_EQ(p.result.status, 431);
}

TEST(parse_request, leading_empty_lines_count_towards_head_limit) {
  parser_limits limits;
  limits.max_header_bytes = 64;
  parsed p = parse(std::string(100, '\n'), limits);
  EXPECT_EQ(p.result.outcome, kind::error);
  EXPECT_EQ(p.result.status, 431);
}

TEST(parse_request, field_count_at_limit_and_one_over) {
  parser_limits limits;
  limits.max_headers = 5;
  std::string buf = "GET / HTTP/1.1\r\nHost: h\r\n";
  for (int i = 0; i < 4; ++i) buf += "X-" + std::to_string(i) + ": v\r\n";
  parsed p = parse(buf + "\r\n", limits);
  ASSERT_EQ(p.result.outcome, kind::complete);
  EXPECT_EQ(p.head.header_count, 5u);

  p = parse(buf + "X-9: v\r\n\r\n", limits);
  EXPECT_EQ(p.result.outcome, kind::error);
  EXPECT_EQ(p.result.status, 431);
}

TEST(parse_request, default_limits) {
  const parser_limits limits;
  const std::string target = "/" + std::string(8192 - 14, 'a');  // "GET " + target + " HTTP/1.1"
  EXPECT_EQ(parse("GET " + target + " HTTP/1.1\r\nHost: h\r\n\r\n", limits).result.outcome,
            kind::complete);
  EXPECT_EQ(parse("GET " + target + "a HTTP/1.1\r\nHost: h\r\n\r\n", limits).result.status, 414);

  std::string many = "GET / HTTP/1.1\r\nHost: h\r\n";
  for (int i = 0; i < 100; ++i) many += "X: y\r\n";  // 101 fields
  EXPECT_EQ(parse(many + "\r\n", limits).result.status, 431);
}

// ---------------------------------------------------------------------------------------------
// find_head_end.

TEST(find_head_end, finds_end_of_head) {
  EXPECT_EQ(find_head_end(""), 0u);
  EXPECT_EQ(find_head_end("GET / HTTP/1.1\r\nHost: h\r\n"), 0u);
  EXPECT_EQ(find_head_end("GET / HTTP/1.1\r\nHost: h\r\n\r"), 0u);
  EXPECT_EQ(find_head_end("GET / HTTP/1.1\r\nHost: h\r\n\r\n"), 27u);
  EXPECT_EQ(find_head_end("GET / HTTP/1.1\r\nHost: h\r\n\r\nBODY"), 27u);
  EXPECT_EQ(find_head_end("GET / HTTP/1.0\n\n"), 16u);
  EXPECT_EQ(find_head_end("GET / HTTP/1.0\n\r\n"), 17u);
  EXPECT_EQ(find_head_end("GET / HTTP/1.0\r\n\n"), 17u);
}

TEST(find_head_end, agrees_with_parse_request) {
  for (std::string full : valid_requests) {
    for (std::size_t n = 0; n < full.size(); ++n) {
      const std::vector<char> prefix(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
      EXPECT_EQ(find_head_end({prefix.data(), n}), 0u) << n << " of " << full;
    }
    EXPECT_EQ(find_head_end(full), parse(full).result.consumed) << full;
  }
}

TEST(find_head_end, skips_leading_empty_lines) {
  EXPECT_EQ(find_head_end("\r\n\r\n"), 0u);
  EXPECT_EQ(find_head_end("\r\n\r\nGET / HTTP/1.0\r\n\r\n"), 22u);
}

}  // namespace
}  // namespace weir::http
