#include "stages/http/date.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

namespace weir::http {
namespace {

constexpr std::time_t rfc_example = 784111777;  // Sun, 06 Nov 1994 08:49:37 GMT

std::string format(std::time_t t) {
  std::string s(http_date_length, '?');
  format_http_date(t, s.data());
  return s;
}

TEST(format_http_date, formats_imf_fixdate) {
  EXPECT_EQ(format(rfc_example), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(format(0), "Thu, 01 Jan 1970 00:00:00 GMT");
  EXPECT_EQ(format(951782400), "Tue, 29 Feb 2000 00:00:00 GMT");
  EXPECT_EQ(format(1709164799), "Wed, 28 Feb 2024 23:59:59 GMT");
  EXPECT_EQ(format(4102444800), "Fri, 01 Jan 2100 00:00:00 GMT");
  EXPECT_EQ(format(-1), "Wed, 31 Dec 1969 23:59:59 GMT");
}

TEST(format_http_date, writes_exactly_its_length) {
  char buf[http_date_length + 1];
  buf[http_date_length] = '#';
  format_http_date(rfc_example, buf);
  EXPECT_EQ(buf[http_date_length], '#');
}

TEST(format_http_date, clamps_to_four_digit_years) {
  EXPECT_EQ(format(253402300799), "Fri, 31 Dec 9999 23:59:59 GMT");
  EXPECT_EQ(format(253402300800 * 4), "Fri, 31 Dec 9999 23:59:59 GMT");
}

TEST(parse_http_date, three_formats_of_the_rfc_example) {
  EXPECT_EQ(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), rfc_example);
  EXPECT_EQ(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), rfc_example);
  EXPECT_EQ(parse_http_date("Sun Nov  6 08:49:37 1994"), rfc_example);
}

TEST(parse_http_date, round_trips_format) {
  for (std::time_t t :
       {std::time_t{0}, std::time_t{1}, rfc_example, std::time_t{951782400},
        std::time_t{1709164799}, std::time_t{2147483647}, std::time_t{4102444800}}) {
    EXPECT_EQ(parse_http_date(format(t)), t) << format(t);
  }
}

TEST(parse_http_date, rfc850_two_digit_years) {
  EXPECT_EQ(parse_http_date("Thursday, 01-Jan-70 00:00:00 GMT"), 0);
  EXPECT_EQ(parse_http_date("Friday, 31-Dec-99 23:59:59 GMT"), 946684799);
  EXPECT_EQ(parse_http_date("Saturday, 01-Jan-00 00:00:00 GMT"), 946684800);
  EXPECT_EQ(parse_http_date("Wednesday, 28-Feb-24 23:59:59 GMT"), 1709164799);
  EXPECT_EQ(parse_http_date("Tuesday, 01-Jan-69 00:00:00 GMT"), 3124224000);  // 2069
}

TEST(parse_http_date, asctime_day_forms) {
  EXPECT_EQ(parse_http_date("Thu Jan  1 00:00:00 1970"), 0);
  EXPECT_EQ(parse_http_date("Thu Jan 01 00:00:00 1970"), 0);
  EXPECT_EQ(parse_http_date("Wed Feb 28 23:59:59 2024"), 1709164799);
}

TEST(parse_http_date, accepts_leap_second_and_leap_day) {
  EXPECT_EQ(parse_http_date("Sat, 31 Dec 2016 23:59:60 GMT"), 1483228800);
  EXPECT_EQ(parse_http_date("Thu, 29 Feb 2024 00:00:00 GMT"), 1709164800);
  EXPECT_EQ(parse_http_date("Tue, 29 Feb 2000 00:00:00 GMT"), 951782400);
}

TEST(parse_http_date, rejects_malformed) {
  const char* const cases[] = {
      "",
      "garbage",
      "Sun, 06 Nov 1994 08:49:37 UTC",
      "Sun, 06 Nov 1994 08:49:37 gmt",
      "sun, 06 Nov 1994 08:49:37 GMT",
      "Xyz, 06 Nov 1994 08:49:37 GMT",
      "Sun, 06 Foo 1994 08:49:37 GMT",
      "Sun, 06 nov 1994 08:49:37 GMT",
      "Sun, 00 Nov 1994 08:49:37 GMT",
      "Sun, 31 Nov 1994 08:49:37 GMT",
      "Sun, 32 Jan 1994 08:49:37 GMT",
      "Sun, 29 Feb 1900 00:00:00 GMT",
      "Sun, 29 Feb 2023 00:00:00 GMT",
      "Sun, 06 Nov 1994 24:00:00 GMT",
      "Sun, 06 Nov 1994 08:60:37 GMT",
      "Sun, 06 Nov 1994 08:49:61 GMT",
      "Sun, 06 Nov 1994 8:49:37 GMT",
      "Sun, 6 Nov 1994 08:49:37 GMT",
      "Sun, 06 Nov 94 08:49:37 GMT",
      "Sun, 06 Nov 1994 08.49.37 GMT",
      "Sun, 06 Nov 1994 08:49:37 GMT ",
      " Sun, 06 Nov 1994 08:49:37 GMT",
      "Sun,  06 Nov 1994 08:49:37 GMT",
      "Sun, 06-Nov-1994 08:49:37 GMT",
      "Sun, 0a Nov 1994 08:49:37 GMT",
      "Sun, 06 Nov 19x4 08:49:37 GMT",
      "Sun, 06 Nov 1994 08:49:3x GMT",
      "Sunday, 06-Nov-94 08:49:37 UTC",
      "Sundae, 06-Nov-94 08:49:37 GMT",
      "Sun, 06-Nov-94 08:49:37 GMT",
      "Sunday, 06 Nov 94 08:49:37 GMT",
      "Sunday, 06-Nov-1994 08:49:37 GMT",
      "Sunday, 31-Apr-94 08:49:37 GMT",
      "Sunday, 06-Nov-9x 08:49:37 GMT",
      "Sunday,06-Nov-94 08:49:37 GMT",
      "Sun Nov 6 08:49:37 1994",
      "Sun Nov  6 08:49:37 94",
      "Sun Nov 31 08:49:37 1994",
      "Sun Nov   6 08:49:37 1994",
      "Sun Xov  6 08:49:37 1994",
      "Sunday Nov  6 08:49:37 1994",
      "Sun Nov  6 25:49:37 1994",
      "Sun Nov  6 08:49:37 1994 ",
      "Sun Nov  0 08:49:37 1994",
  };
  for (const char* s : cases) {
    EXPECT_EQ(parse_http_date(s), std::nullopt) << '"' << s << '"';
  }
}

TEST(current_http_date, is_now_and_stable_within_a_second) {
  std::time_t before = std::time(nullptr);
  std::string_view a = current_http_date();
  std::string_view b = current_http_date();
  std::time_t after = std::time(nullptr);
  ASSERT_EQ(a.size(), http_date_length);
  std::optional<std::time_t> t = parse_http_date(a);
  ASSERT_TRUE(t.has_value()) << a;
  EXPECT_GE(*t, before);
  EXPECT_LE(*t, after);
  EXPECT_EQ(a.data(), b.data());  // cached per thread, not rebuilt
  if (after == before) {
    EXPECT_EQ(a, b);
  }
}

TEST(current_http_date, follows_the_clock) {
  const std::time_t start = std::time(nullptr);
  ASSERT_GE(parse_http_date(current_http_date()).value_or(-1), start);
  // Wait (at most ~1 s) for the next second; the cached string must move with it.
  while (std::time(nullptr) == start) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_GT(parse_http_date(current_http_date()).value_or(-1), start);
}

}  // namespace
}  // namespace weir::http
