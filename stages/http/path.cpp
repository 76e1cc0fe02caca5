#include "stages/http/path.hpp"

namespace weir::http {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

int normalize_path(std::string_view raw, std::string& out) {
  if (raw.empty() || raw[0] != '/') return 400;

  // Decode first, so "%2e%2e" is a dot segment like ".." is: the file system sees decoded bytes.
  out.resize(raw.size());  // never longer than raw; no allocation once out is warm
  std::size_t n = 0;
  for (std::size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    if (c == '%') {
      if (i + 2 >= raw.size()) return 400;
      int hi = hex_value(raw[i + 1]);
      int lo = hex_value(raw[i + 2]);
      if (hi < 0 || lo < 0) return 400;
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    }
    if (c == '\0') return 400;  // would truncate the path at the file system
    out[n++] = c;
  }

  // Remove dot segments in place: the output (w) never overtakes the input (r), because every
  // segment written is preceded by at least one '/' read. Output is "/seg" pieces, no trailing '/'.
  std::size_t w = 0;
  std::size_t r = 0;
  bool trailing_slash = false;
  while (r < n) {
    while (r < n && out[r] == '/') ++r;
    if (r == n) {
      trailing_slash = true;
      break;
    }
    std::size_t e = r;
    while (e < n && out[e] != '/') ++e;
    std::string_view seg(out.data() + r, e - r);
    trailing_slash = e < n;
    if (seg == ".") {
      trailing_slash = true;
    } else if (seg == "..") {
      if (w == 0) return 400;
      while (out[--w] != '/') {
      }
      trailing_slash = true;
    } else {
      out[w++] = '/';
      for (std::size_t i = r; i < e; ++i) out[w++] = out[i];
    }
    r = e;
  }
  if (w == 0 || trailing_slash) out[w++] = '/';
  out.resize(w);
  return 0;
}

}  // namespace weir::http
