#include "bench/loadgen/mix.hpp"

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "bench/loadgen/schedule.hpp"

#ifndef WEIR_LOADGEN_SOURCE_DIR
#error "WEIR_LOADGEN_SOURCE_DIR must name bench/loadgen (set by tests/loadgen.cmake)"
#endif

namespace weir::loadgen {
namespace {

std::string parse_error(const std::string& text) {
  try {
    mix::parse(text, "m.mix");
  } catch (const mix_error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Mix, ParsesWeightsPathsCommentsAndBlankLines) {
  const mix m = mix::parse(
      "# a comment\n"
      "\n"
      "3 /a.html\n"
      "  1.5\t/b/c.bin   # trailing comment\r\n"
      "0.5 /d\n",
      "m.mix");
  ASSERT_EQ(m.entries().size(), 3u);
  EXPECT_EQ(m.entries()[0].path, "/a.html");
  EXPECT_EQ(m.entries()[1].path, "/b/c.bin");
  EXPECT_DOUBLE_EQ(m.entries()[1].weight, 1.5);
  EXPECT_DOUBLE_EQ(m.share(0), 0.6);
  EXPECT_DOUBLE_EQ(m.share(2), 0.1);
}

TEST(Mix, BadLinesNameTheLine) {
  EXPECT_EQ(parse_error("1 /a\nx /b\n"), "m.mix:2: weight \"x\" is not a positive number");
  EXPECT_EQ(parse_error("0 /a\n"), "m.mix:1: weight \"0\" is not a positive number");
  EXPECT_EQ(parse_error("-1 /a\n"), "m.mix:1: weight \"-1\" is not a positive number");
  EXPECT_EQ(parse_error("2\n"), "m.mix:1: missing path after the weight (want `WEIGHT PATH`)");
  EXPECT_EQ(parse_error("1 a.html\n"),
            "m.mix:1: path \"a.html\" must start with '/' and have no spaces or control "
            "characters");
  EXPECT_EQ(parse_error("1 /a b\n"),
            "m.mix:1: path \"/a b\" must start with '/' and have no spaces or control characters");
  EXPECT_EQ(parse_error("1 /a\n\n2 /a\n"), "m.mix:3: path /a appears twice");
  EXPECT_EQ(parse_error("# only comments\n\n"), "m.mix: no `WEIGHT PATH` lines");
  EXPECT_EQ(parse_error("1e400 /a\n"), "m.mix:1: weight \"1e400\" is not a positive number");
}

TEST(Mix, PickFollowsTheWeights) {
  const mix m = mix::parse("1 /a\n2 /b\n7 /c\n", "m.mix");
  rng r(3);
  std::vector<int> n(3);
  const int draws = 100000;
  for (int i = 0; i < draws; ++i) ++n[m.pick(r.uniform())];
  EXPECT_NEAR(n[0] / double(draws), 0.1, 0.01);
  EXPECT_NEAR(n[1] / double(draws), 0.2, 0.01);
  EXPECT_NEAR(n[2] / double(draws), 0.7, 0.01);
  EXPECT_EQ(m.pick(0.0), 0u);
  EXPECT_EQ(m.pick(0.9999999), 2u);
}

// The shipped mix is mix.lua's: 35/50/14/1 % over the classes, uniform over each class's files.
TEST(Mix, Specweb96MixMatchesTheWrkScript) {
  std::ifstream in(std::string(WEIR_LOADGEN_SOURCE_DIR) + "/specweb96.mix");
  ASSERT_TRUE(in);
  std::stringstream text;
  text << in.rdbuf();
  const mix m = mix::parse(text.str(), "specweb96.mix");
  double c0 = 0, c1 = 0, c2 = 0, c3 = 0;
  for (std::size_t i = 0; i < m.entries().size(); ++i) {
    const std::string& p = m.entries()[i].path;
    double& cls = p.starts_with("/c0/")   ? c0
                  : p.starts_with("/c1/") ? c1
                  : p.starts_with("/c2/") ? c2
                                          : c3;
    cls += m.share(i);
  }
  EXPECT_EQ(m.entries().size(), 32u);
  EXPECT_NEAR(c0, 0.35, 1e-9);
  EXPECT_NEAR(c1, 0.50, 1e-9);
  EXPECT_NEAR(c2, 0.14, 1e-9);
  EXPECT_NEAR(c3, 0.01, 1e-9);
  EXPECT_EQ(m.entries().back().path, "/c3/f1.bin");
}

TEST(Mix, FormatRequest) {
  EXPECT_EQ(format_request("/x", "127.0.0.1:8080", false),
            "GET /x HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: weir-loadgen\r\n\r\n");
  EXPECT_EQ(format_request("/x", "h", true),
            "GET /x HTTP/1.1\r\nHost: h\r\nUser-Agent: weir-loadgen\r\nConnection: close\r\n\r\n");
}

}  // namespace
}  // namespace weir::loadgen
