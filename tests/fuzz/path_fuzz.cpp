// Path normalisation (stages/http/path.cpp) against a plain reference written here the obvious
// way (decode, split on '/', a stack of segments), on arbitrary bytes: both must agree on the
// status and on the path. The production code works in place without allocating; the reference
// allocates freely, so the two share no code. Also, an accepted path starts with '/', has no
// empty, "." or ".." segment and no NUL, and normalising it again (when it has no '%' left to
// decode) changes nothing.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "stages/http/path.hpp"
#include "tests/fuzz/check.hpp"

namespace {

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 3986 5.2.4 on the decoded path, refusing what weir refuses: a bad escape, a NUL, no
// leading '/', a ".." above the root. A trailing "/", "/." or "/.." keeps a trailing slash.
int reference(std::string_view raw, std::string& out) {
  if (raw.empty() || raw[0] != '/') return 400;
  std::string decoded;
  for (std::size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] != '%') {
      decoded += raw[i];
      continue;
    }
    if (i + 2 >= raw.size() || hex(raw[i + 1]) < 0 || hex(raw[i + 2]) < 0) return 400;
    decoded += static_cast<char>(hex(raw[i + 1]) * 16 + hex(raw[i + 2]));
    i += 2;
  }
  if (decoded.find('\0') != std::string::npos) return 400;
  // Every segment after the leading '/', the empty ones too: "/a/" is {"a", ""}, "/" is {""}.
  std::vector<std::string> segments;
  for (std::size_t i = 1;;) {
    const std::size_t slash = decoded.find('/', i);
    segments.push_back(decoded.substr(i, slash == std::string::npos ? slash : slash - i));
    if (slash == std::string::npos) break;
    i = slash + 1;
  }
  std::vector<std::string> stack;
  bool dir = false;  // the path names a directory: it ends in '/' or a dot segment
  for (const std::string& seg : segments) {
    if (seg.empty() || seg == ".") {
      dir = true;  // "//" merges; a trailing '/' or "." marks a directory
    } else if (seg == "..") {
      if (stack.empty()) return 400;
      stack.pop_back();
      dir = true;
    } else {
      stack.push_back(seg);
      dir = false;
    }
  }
  out.clear();
  for (const std::string& s : stack) out += "/" + s;
  if (stack.empty() || dir) out += "/";
  return 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view raw(reinterpret_cast<const char*>(data), size);
  std::string got, want;
  const int status = weir::http::normalize_path(raw, got);
  const int expected = reference(raw, want);
  FUZZ_CHECK(status == expected);
  if (status != 0) return 0;
  FUZZ_CHECK(got == want);
  FUZZ_CHECK(!got.empty() && got[0] == '/');
  FUZZ_CHECK(got.find('\0') == std::string::npos);
  FUZZ_CHECK(got.find("//") == std::string::npos);
  FUZZ_CHECK(got.find("/./") == std::string::npos && got.find("/../") == std::string::npos);
  FUZZ_CHECK(!got.ends_with("/.") && !got.ends_with("/.."));
  if (got.find('%') == std::string::npos) {
    std::string twice;
    FUZZ_CHECK(weir::http::normalize_path(got, twice) == 0 && twice == got);
  }
  return 0;
}
