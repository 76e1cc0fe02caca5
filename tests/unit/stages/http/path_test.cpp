#include "stages/http/path.hpp"

#include <gtest/gtest.h>

#include <string>

namespace weir::http {
namespace {

using namespace std::string_literals;

struct path_case {
  std::string raw;
  std::string normalized;
};

TEST(normalize_path, normalizes) {
  const path_case cases[] = {
      {"/", "/"},
      {"/index.html", "/index.html"},
      {"/a/b/c", "/a/b/c"},
      {"/dir/", "/dir/"},
      {"//", "/"},
      {"///a//b///c", "/a/b/c"},
      {"/a//", "/a/"},
      {"/./a", "/a"},
      {"/a/./b", "/a/b"},
      {"/a/.", "/a/"},
      {"/.", "/"},
      {"/a/..", "/"},
      {"/a/b/..", "/a/"},
      {"/a/b/../", "/a/"},
      {"/a/b/../c", "/a/c"},
      {"/a/b/../../c", "/c"},
      {"/a/./b/./../c/.", "/a/c/"},
      {"/a/..//b", "/b"},
      {"/...", "/..."},
      {"/..a/b..", "/..a/b.."},
      {"/.hidden", "/.hidden"},
      {"/a\\..\\b", "/a\\..\\b"},  // backslash is an ordinary character
      {"/%41%62c", "/Abc"},
      {"/a%20b", "/a b"},
      {"/%2fa%2Fb", "/a/b"},  // a decoded '/' is a separator like any other
      {"/a%2f..%2fb", "/b"},
      {"/%2e/a", "/a"},
      {"/a/%2e%2E", "/"},
      {"/a/.%2e/b", "/b"},
      {"/%25", "/%"},
      {"/%2541", "/%41"},  // decoded once only
      {"/caf%C3%A9", "/caf\xc3\xa9"},
      {"/%7e", "/~"},
  };
  std::string out;
  for (const path_case& c : cases) {
    EXPECT_EQ(normalize_path(c.raw, out), 0) << c.raw;
    EXPECT_EQ(out, c.normalized) << c.raw;
  }
}

TEST(normalize_path, rejects) {
  const std::string cases[] = {
      "",
      "a",
      "a/b",
      "*",
      "%2fa",  // must start with a literal '/'
      "/..",
      "/../",
      "/../a",
      "/a/../..",
      "/a/../../b",
      "/./../a",
      "/%2e%2e/etc/passwd",
      "/%2E%2E",
      "/a/%2e%2e/%2e%2e/b",
      "/.%2e/x",
      "/%zz",
      "/%4",
      "/%",
      "/a%",
      "/%g0",
      "/%0g",
      "/a%00b",
      "/%00",
      "/a\0b"s,
  };
  std::string out;
  for (const std::string& raw : cases) {
    EXPECT_EQ(normalize_path(raw, out), 400) << raw;
  }
}

TEST(normalize_path, result_never_leaves_root_and_never_has_nul_or_dot_segments) {
  // A small exhaustive sweep over short paths built from tricky pieces.
  const std::string pieces[] = {"/", "a", ".", "..", "%2e", "%2F", "%00", "%"};
  std::string out;
  std::string raw;
  for (const auto& p1 : pieces) {
    for (const auto& p2 : pieces) {
      for (const auto& p3 : pieces) {
        for (const auto& p4 : pieces) {
          raw = "/" + p1 + p2 + p3 + p4;
          if (normalize_path(raw, out) != 0) continue;
          ASSERT_FALSE(out.empty()) << raw;
          EXPECT_EQ(out[0], '/') << raw;
          EXPECT_EQ(out.find('\0'), std::string::npos) << raw;
          EXPECT_EQ(out.find("//"), std::string::npos) << raw;
          const std::string slashed = out + "/";
          EXPECT_EQ(slashed.find("/./"), std::string::npos) << raw << " -> " << out;
          EXPECT_EQ(slashed.find("/../"), std::string::npos) << raw << " -> " << out;
          // Normalising again changes nothing, except that a literal '%' left by decoding may
          // now form an escape.
          if (out.find('%') == std::string::npos) {
            std::string again;
            EXPECT_EQ(normalize_path(out, again), 0) << out;
            EXPECT_EQ(again, out);
          }
        }
      }
    }
  }
}

TEST(normalize_path, reuses_capacity) {
  std::string out;
  out.reserve(256);
  const char* const before = out.data();
  ASSERT_EQ(normalize_path("/a/b/../c/%41", out), 0);
  EXPECT_EQ(out, "/a/c/A");
  ASSERT_EQ(normalize_path("/x", out), 0);
  EXPECT_EQ(out, "/x");
  EXPECT_EQ(out.data(), before);
  EXPECT_GE(out.capacity(), 256u);
}

TEST(normalize_path, overwrites_previous_content) {
  std::string out = "/previous/long/content";
  ASSERT_EQ(normalize_path("/", out), 0);
  EXPECT_EQ(out, "/");
}

}  // namespace
}  // namespace weir::http
