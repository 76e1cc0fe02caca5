#include "stages/http/mime.hpp"

#include <algorithm>
#include <array>

namespace weir::http {
namespace {

struct mime_entry {
  std::string_view ext;  // lower-case
  std::string_view type;
};

// Sorted by extension for binary search.
constexpr std::array<mime_entry, 36> mime_table{{
    {"avif", "image/avif"},
    {"bmp", "image/bmp"},
    {"css", "text/css; charset=utf-8"},
    {"csv", "text/csv; charset=utf-8"},
    {"gif", "image/gif"},
    {"gz", "application/gzip"},
    {"htm", "text/html; charset=utf-8"},
    {"html", "text/html; charset=utf-8"},
    {"ico", "image/x-icon"},
    {"jpeg", "image/jpeg"},
    {"jpg", "image/jpeg"},
    {"js", "text/javascript; charset=utf-8"},  // RFC 9239 obsoletes application/javascript
    {"json", "application/json; charset=utf-8"},
    {"map", "application/json; charset=utf-8"},  // source maps are JSON
    {"md", "text/markdown; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"mp3", "audio/mpeg"},
    {"mp4", "video/mp4"},
    {"ogg", "audio/ogg"},
    {"otf", "font/otf"},
    {"pdf", "application/pdf"},
    {"png", "image/png"},
    {"svg", "image/svg+xml; charset=utf-8"},
    {"tar", "application/x-tar"},
    {"ttf", "font/ttf"},
    {"txt", "text/plain; charset=utf-8"},
    {"wasm", "application/wasm"},
    {"wav", "audio/wav"},
    {"webm", "video/webm"},
    {"webmanifest", "application/manifest+json; charset=utf-8"},
    {"webp", "image/webp"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"xml", "application/xml; charset=utf-8"},
    {"zip", "application/zip"},
    {"zst", "application/zstd"},
}};

static_assert(std::is_sorted(mime_table.begin(), mime_table.end(),
                             [](const mime_entry& a, const mime_entry& b) {
                               return a.ext < b.ext;
                             }));

constexpr std::size_t max_ext_length = 16;

constexpr std::string_view default_type = "application/octet-stream";

}  // namespace

std::string_view content_type_for(std::string_view file_name) {
  std::size_t slash = file_name.rfind('/');
  if (slash != std::string_view::npos) file_name.remove_prefix(slash + 1);
  std::size_t dot = file_name.rfind('.');
  if (dot == std::string_view::npos) return default_type;
  std::string_view ext = file_name.substr(dot + 1);
  if (ext.empty() || ext.size() > max_ext_length) return default_type;

  char lower[max_ext_length];
  for (std::size_t i = 0; i < ext.size(); ++i) {
    char c = ext[i];
    lower[i] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  std::string_view key(lower, ext.size());
  auto it = std::lower_bound(mime_table.begin(), mime_table.end(), key,
                             [](const mime_entry& e, std::string_view k) { return e.ext < k; });
  return it != mime_table.end() && it->ext == key ? it->type : default_type;
}

}  // namespace weir::http
