#include "stages/http/mime.hpp"

#include <gtest/gtest.h>

#include <string>

namespace weir::http {
namespace {

TEST(content_type_for, known_extensions) {
  const std::pair<const char*, const char*> cases[] = {
      {"index.html", "text/html; charset=utf-8"},
      {"index.htm", "text/html; charset=utf-8"},
      {"style.css", "text/css; charset=utf-8"},
      {"app.js", "text/javascript; charset=utf-8"},
      {"mod.mjs", "text/javascript; charset=utf-8"},
      {"data.json", "application/json; charset=utf-8"},
      {"app.js.map", "application/json; charset=utf-8"},
      {"readme.txt", "text/plain; charset=utf-8"},
      {"feed.xml", "application/xml; charset=utf-8"},
      {"logo.svg", "image/svg+xml; charset=utf-8"},
      {"table.csv", "text/csv; charset=utf-8"},
      {"README.md", "text/markdown; charset=utf-8"},
      {"a.png", "image/png"},
      {"a.jpg", "image/jpeg"},
      {"a.jpeg", "image/jpeg"},
      {"a.gif", "image/gif"},
      {"a.webp", "image/webp"},
      {"favicon.ico", "image/x-icon"},
      {"a.avif", "image/avif"},
      {"doc.pdf", "application/pdf"},
      {"m.wasm", "application/wasm"},
      {"f.woff", "font/woff"},
      {"f.woff2", "font/woff2"},
      {"f.ttf", "font/ttf"},
      {"f.otf", "font/otf"},
      {"v.mp4", "video/mp4"},
      {"v.webm", "video/webm"},
      {"s.mp3", "audio/mpeg"},
      {"s.ogg", "audio/ogg"},
      {"s.wav", "audio/wav"},
      {"a.zip", "application/zip"},
      {"a.tar.gz", "application/gzip"},
      {"a.tar", "application/x-tar"},
  };
  for (const auto& [name, type] : cases) {
    EXPECT_EQ(content_type_for(name), type) << name;
  }
}

TEST(content_type_for, extension_is_case_insensitive) {
  EXPECT_EQ(content_type_for("INDEX.HTML"), "text/html; charset=utf-8");
  EXPECT_EQ(content_type_for("photo.JpG"), "image/jpeg");
  EXPECT_EQ(content_type_for("f.WOFF2"), "font/woff2");
}

TEST(content_type_for, uses_last_segment_and_last_dot) {
  EXPECT_EQ(content_type_for("/var/www/site/index.html"), "text/html; charset=utf-8");
  EXPECT_EQ(content_type_for("/a.html/readme"), "application/octet-stream");
  EXPECT_EQ(content_type_for("/dir.css/"), "application/octet-stream");
  EXPECT_EQ(content_type_for("archive.html.gz"), "application/gzip");
  EXPECT_EQ(content_type_for("/v1.2/app.js"), "text/javascript; charset=utf-8");
}

TEST(content_type_for, unknown_defaults_to_octet_stream) {
  for (const char* name : {"", "README", "file.", "a.exe", "a.htmlx", "a.xhtml", "a.h", "a.j",
                           "a.verylongextensionthatnothingmatches", "a.ht ml"}) {
    EXPECT_EQ(content_type_for(name), "application/octet-stream") << name;
  }
  EXPECT_EQ(content_type_for(std::string_view("a.html\0", 7)), "application/octet-stream");
}

TEST(content_type_for, text_types_and_only_they_carry_charset) {
  for (const char* name :
       {"a.html", "a.css", "a.js", "a.json", "a.txt", "a.xml", "a.svg", "a.csv", "a.md", "a.png",
        "a.pdf", "a.wasm", "a.woff2", "a.mp4", "a.zip", "a.gz"}) {
    std::string_view type = content_type_for(name);
    const bool textual = type.substr(0, 5) == "text/" || type.find("json") != type.npos ||
                         type.find("xml") != type.npos || type.find("javascript") != type.npos;
    EXPECT_EQ(type.find("; charset=utf-8") != type.npos, textual) << name << " -> " << type;
  }
}

}  // namespace
}  // namespace weir::http
