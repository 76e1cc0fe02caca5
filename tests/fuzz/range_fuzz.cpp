// Range, If-Range, If-None-Match and HTTP-date handling (stages/http/range.cpp, date.cpp) on
// arbitrary field values. The first 8 input bytes are the representation's size. Properties:
//  - parse_range agrees with a plain reference written here (split, then 128-bit arithmetic, so
//    an overflow in either shows as a disagreement), and a satisfiable range lies inside the
//    representation;
//  - a satisfiable range written back as "bytes=first-last" parses to itself;
//  - an HTTP-date that parses formats to an IMF-fixdate that parses to the same time;
//  - an entity-tag always matches itself, weakly, and "*" matches anything.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "stages/http/date.hpp"
#include "stages/http/range.hpp"
#include "tests/fuzz/check.hpp"

namespace {

using weir::http::byte_range;
__extension__ typedef unsigned __int128 u128;  // GCC and clang; -Wpedantic knows it as an extension

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// 1*DIGIT as a 128-bit value saturated at 2^64 (anything that large is past every size).
std::optional<u128> digits(std::string_view s) {
  if (s.empty()) return std::nullopt;
  u128 v = 0;
  const u128 cap = static_cast<u128>(1) << 64;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<unsigned>(c - '0');
    if (v > cap) v = cap;
  }
  return v;
}

byte_range reference(std::string_view value, std::uint64_t size) {
  value = trim(value);
  const std::size_t eq = value.find('=');
  if (eq == std::string_view::npos) return {};
  std::string unit(value.substr(0, eq));
  for (char& c : unit) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
  if (unit != "bytes") return {};
  std::vector<std::string_view> specs;
  std::string_view rest = value.substr(eq + 1);
  for (;;) {
    const std::size_t comma = rest.find(',');
    const std::string_view e = trim(rest.substr(0, comma));
    if (!e.empty()) specs.push_back(e);
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  if (specs.size() != 1) return {};
  const std::string_view spec = specs[0];
  const std::size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return {};
  const u128 n = size;
  if (dash == 0) {
    const auto suffix = digits(spec.substr(1));
    if (!suffix) return {};
    if (*suffix == 0 || n == 0) return {byte_range::kind::unsatisfiable, 0, 0};
    const u128 first = *suffix >= n ? 0 : n - *suffix;
    return {byte_range::kind::satisfiable, static_cast<std::uint64_t>(first), size - 1};
  }
  const auto first = digits(spec.substr(0, dash));
  if (!first) return {};
  u128 last = static_cast<u128>(1) << 64;  // open-ended
  if (dash + 1 < spec.size()) {
    const auto l = digits(spec.substr(dash + 1));
    if (!l) return {};
    last = *l;
  }
  // Both at the cap: compare as written (strip zeros; longer is larger; else digit by digit).
  if (dash + 1 < spec.size() && *first == last && *first == (static_cast<u128>(1) << 64)) {
    std::string_view a = spec.substr(0, dash), z = spec.substr(dash + 1);
    a.remove_prefix(std::min(a.find_first_not_of('0'), a.size() - 1));
    z.remove_prefix(std::min(z.find_first_not_of('0'), z.size() - 1));
    if (a.size() > z.size() || (a.size() == z.size() && a > z)) return {};
  }
  if (*first > last) return {};
  if (*first >= n) return {byte_range::kind::unsatisfiable, 0, 0};
  const u128 end = last < n - 1 ? last : n - 1;
  return {byte_range::kind::satisfiable, static_cast<std::uint64_t>(*first),
          static_cast<std::uint64_t>(end)};
}

bool same(const byte_range& a, const byte_range& b) {
  return a.outcome == b.outcome && a.first == b.first && a.last == b.last;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 8) return 0;
  std::uint64_t length = 0;
  std::memcpy(&length, data, 8);
  if (data[0] & 1) length &= 0xffff;  // small sizes half the time, where ranges bite
  const std::string_view value(reinterpret_cast<const char*>(data) + 8, size - 8);

  const byte_range got = weir::http::parse_range(value, length);
  FUZZ_CHECK(same(got, reference(value, length)));
  if (got.outcome == byte_range::kind::satisfiable) {
    FUZZ_CHECK(got.first <= got.last && got.last < length);
    const std::string back = "bytes=" + std::to_string(got.first) + "-" + std::to_string(got.last);
    FUZZ_CHECK(same(weir::http::parse_range(back, length), got));
  }

  if (const auto t = weir::http::parse_http_date(value)) {
    char fixdate[weir::http::http_date_length];
    weir::http::format_http_date(*t, fixdate);
    const auto again = weir::http::parse_http_date(std::string_view(fixdate, sizeof fixdate));
    FUZZ_CHECK(again && *again == *t);
    FUZZ_CHECK(weir::http::if_range_allows(std::string_view(fixdate, sizeof fixdate), "\"x\"", *t));
  }

  FUZZ_CHECK(weir::http::etag_matches_weak("*", value));
  const std::string_view tag = trim(value);
  if (tag.size() >= 2 && tag.front() == '"' && tag.back() == '"' &&
      tag.substr(1, tag.size() - 2).find('"') == std::string_view::npos) {
    FUZZ_CHECK(weir::http::etag_matches_weak(tag, tag));
    FUZZ_CHECK(weir::http::etag_matches_weak(std::string("W/") + std::string(tag), tag));
    FUZZ_CHECK(weir::http::if_range_allows(tag, tag, 0));
  }
  weir::http::if_range_allows(value, "\"abc\"", 784111777);  // no crash, whatever it says
  return 0;
}
