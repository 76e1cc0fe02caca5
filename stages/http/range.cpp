#include "stages/http/range.hpp"

#include <limits>

#include "stages/http/date.hpp"

namespace weir::http {
namespace {

bool is_ows(char c) {
  return c == ' ' || c == '\t';
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

bool iequals_bytes(std::string_view s) {
  if (s.size() != 5) return false;
  for (std::size_t i = 0; i < 5; ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != "bytes"[i]) return false;
  }
  return true;
}

// 1*DIGIT, saturating: a position past any real size still compares correctly.
bool parse_pos(std::string_view s, std::uint64_t& v) {
  if (s.empty()) return false;
  constexpr std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
  v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    auto d = static_cast<std::uint64_t>(c - '0');
    v = v > (max - d) / 10 ? max : v * 10 + d;
  }
  return true;
}

// Whether the 1*DIGIT `a` is a larger number than `b`, at any length.
bool digits_greater(std::string_view a, std::string_view b) {
  while (a.size() > 1 && a.front() == '0') a.remove_prefix(1);
  while (b.size() > 1 && b.front() == '0') b.remove_prefix(1);
  return a.size() != b.size() ? a.size() > b.size() : a > b;
}

// Strips an entity-tag's weakness indicator, leaving the quoted opaque-tag.
std::string_view opaque_tag(std::string_view etag) {
  return etag.substr(0, 2) == "W/" ? etag.substr(2) : etag;
}

}  // namespace

byte_range parse_range(std::string_view value, std::uint64_t size) {
  value = trim_ows(value);
  std::size_t eq = value.find('=');
  if (eq == std::string_view::npos || !iequals_bytes(value.substr(0, eq))) return {};

  // The range-set is a list; empty elements are tolerated (RFC 9110 5.6.1.2).
  std::string_view spec;
  std::string_view set = value.substr(eq + 1);
  while (true) {
    std::size_t comma = set.find(',');
    std::string_view element = trim_ows(set.substr(0, comma));
    if (!element.empty()) {
      if (!spec.empty()) return {};  // several ranges: answer with the whole file
      spec = element;
    }
    if (comma == std::string_view::npos) break;
    set.remove_prefix(comma + 1);
  }

  std::size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return {};
  std::string_view first_s = spec.substr(0, dash);
  std::string_view last_s = spec.substr(dash + 1);
  if (first_s.empty()) {  // suffix-range: the last N bytes
    std::uint64_t suffix = 0;
    if (!parse_pos(last_s, suffix)) return {};
    if (suffix == 0 || size == 0) return {byte_range::kind::unsatisfiable, 0, 0};
    return {byte_range::kind::satisfiable, suffix >= size ? 0 : size - suffix, size - 1};
  }
  std::uint64_t first = 0;
  std::uint64_t last = std::numeric_limits<std::uint64_t>::max();
  if (!parse_pos(first_s, first)) return {};
  if (!last_s.empty() && !parse_pos(last_s, last)) return {};
  // Invalid, so the field is ignored. Positions past 2^64 - 1 saturate, so those compare as
  // written (a fuzzer found "bytes=99999999999999999999-18446744073709551615" taken for valid).
  constexpr std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
  if (first == max && last == max && !last_s.empty()) {
    if (digits_greater(first_s, last_s)) return {};
  } else if (first > last) {
    return {};
  }
  if (first >= size) return {byte_range::kind::unsatisfiable, 0, 0};
  return {byte_range::kind::satisfiable, first, last < size - 1 ? last : size - 1};
}

bool etag_matches_weak(std::string_view field, std::string_view etag) {
  field = trim_ows(field);
  if (field == "*") return true;
  const std::string_view want = opaque_tag(etag);
  bool matched = false;
  // Parsed tag by tag rather than split on ',': an opaque-tag may itself contain a comma. A
  // malformed list matches nothing, so the full response is sent.
  std::size_t i = 0;
  while (true) {
    while (i < field.size() && (is_ows(field[i]) || field[i] == ',')) ++i;
    if (i == field.size()) return matched;
    if (field.substr(i, 2) == "W/") i += 2;
    if (i == field.size() || field[i] != '"') return false;
    std::size_t close = field.find('"', i + 1);
    if (close == std::string_view::npos) return false;
    if (field.substr(i, close + 1 - i) == want) matched = true;
    i = close + 1;
    while (i < field.size() && is_ows(field[i])) ++i;
    if (i < field.size() && field[i] != ',') return false;
  }
}

bool if_range_allows(std::string_view field, std::string_view etag, std::time_t last_modified) {
  field = trim_ows(field);
  if (!field.empty() && field[0] == '"') {
    // Strong comparison; equal to a tag starting with '"' means `etag` is strong as well.
    return field == etag;
  }
  if (field.substr(0, 2) == "W/") return false;
  std::optional<std::time_t> date = parse_http_date(field);
  return date && *date == last_modified;
}

}  // namespace weir::http
