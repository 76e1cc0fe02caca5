// The request parser (stages/http/parser.cpp) on arbitrary bytes. Beyond "no crash, no UB":
//  - an error is one of the statuses the parser documents;
//  - a complete head lies at the start of the buffer, every view points into it, and the
//    parse of exactly the head's bytes gives the same answer (trailing bytes change nothing);
//  - find_head_end agrees with `consumed`;
//  - a proper prefix of a complete head is incomplete (never complete, never an error): the
//    parser is called again as bytes arrive, so an early error would refuse a good request;
//  - a body length is either Content-Length or chunked, never both.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "stages/http/parser.hpp"
#include "tests/fuzz/check.hpp"

namespace {

using weir::http::parse_request;
using weir::http::parse_result;
using weir::http::request_head;

bool inside(std::string_view buf, std::string_view v) {
  if (v.empty()) return true;  // a default (null) view is fine
  return v.data() >= buf.data() && v.data() + v.size() <= buf.data() + buf.size();
}

bool same_head(const request_head& a, const request_head& b) {
  return a.verb == b.verb && a.method_token == b.method_token && a.target == b.target &&
         a.path == b.path && a.query == b.query && a.host == b.host &&
         a.version_minor == b.version_minor && a.keep_alive == b.keep_alive &&
         a.chunked == b.chunked && a.has_content_length == b.has_content_length &&
         a.content_length == b.content_length && a.if_none_match == b.if_none_match &&
         a.if_modified_since == b.if_modified_since && a.range == b.range &&
         a.if_range == b.if_range && a.header_count == b.header_count;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // The first byte picks small limits sometimes, so the 414/431 paths are reached by short inputs.
  weir::http::parser_limits limits;
  std::string_view buf(reinterpret_cast<const char*>(data), size);
  if (!buf.empty() && buf[0] == '\x01' && buf.size() > 1) {
    limits = {32, 96, 4};
    buf.remove_prefix(1);
  }
  request_head head;
  const parse_result r = parse_request(buf, limits, head);
  switch (r.outcome) {
    case parse_result::kind::error:
      FUZZ_CHECK(r.status == 400 || r.status == 414 || r.status == 431 || r.status == 505);
      return 0;
    case parse_result::kind::incomplete:
      FUZZ_CHECK(buf.size() <= limits.max_header_bytes);
      return 0;
    case parse_result::kind::complete:
      break;
  }
  FUZZ_CHECK(r.consumed > 0 && r.consumed <= buf.size());
  FUZZ_CHECK(r.consumed <= limits.max_header_bytes);
  FUZZ_CHECK(weir::http::find_head_end(buf) == r.consumed);
  const std::string_view own = buf.substr(0, r.consumed);
  for (std::string_view v : {head.method_token, head.target, head.path, head.query, head.host,
                             head.if_none_match, head.if_modified_since, head.range, head.if_range})
    FUZZ_CHECK(inside(own, v));
  FUZZ_CHECK(!head.method_token.empty() && !head.target.empty());
  FUZZ_CHECK(!(head.chunked && head.has_content_length));
  FUZZ_CHECK(head.header_count <= limits.max_headers);

  request_head again;
  const parse_result exact = parse_request(own, limits, again);
  FUZZ_CHECK(exact.outcome == parse_result::kind::complete && exact.consumed == r.consumed);
  FUZZ_CHECK(same_head(head, again));

  // Prefixes: all of them for short heads, else 64 spread over the head.
  const std::size_t step = r.consumed <= 512 ? 1 : r.consumed / 64;
  for (std::size_t k = 0; k < r.consumed; k += step) {
    request_head part;
    const parse_result p = parse_request(own.substr(0, k), limits, part);
    FUZZ_CHECK(p.outcome == parse_result::kind::incomplete);
  }
  return 0;
}
