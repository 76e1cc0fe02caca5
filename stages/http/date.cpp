#include "stages/http/date.hpp"

#include <array>

namespace weir::http {
namespace {

constexpr std::array<std::string_view, 7> day_names{"Sun", "Mon", "Tue", "Wed",
                                                    "Thu", "Fri", "Sat"};
constexpr std::array<std::string_view, 7> long_day_names{
    "Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"};
constexpr std::array<std::string_view, 12> month_names{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// IMF-fixdate holds 4-digit years only.
constexpr std::time_t min_time = -62167219200;  // 0000-01-01T00:00:00Z
constexpr std::time_t max_time = 253402300799;  // 9999-12-31T23:59:59Z

template <std::size_t N>
int index_of(const std::array<std::string_view, N>& names, std::string_view s) {
  for (std::size_t i = 0; i < N; ++i) {
    if (names[i] == s) return static_cast<int>(i);
  }
  return -1;
}

// Exactly s.size() digits; -1 otherwise.
int digits(std::string_view s) {
  if (s.empty()) return -1;
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return -1;
    v = v * 10 + (c - '0');
  }
  return v;
}

void put2(char* p, int v) {
  p[0] = static_cast<char>('0' + v / 10);
  p[1] = static_cast<char>('0' + v % 10);
}

bool is_leap(int y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int days_in_month(int year, int month0) {
  constexpr std::array<int, 12> days{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return month0 == 1 && is_leap(year) ? 29 : days[static_cast<std::size_t>(month0)];
}

// Validated fields -> time_t. `hms` is "HH:MM:SS"; second 60 is a leap second (RFC 9110 5.6.7).
std::optional<std::time_t> make_time(int year, int month0, int day, std::string_view hms) {
  if (hms.size() != 8 || hms[2] != ':' || hms[5] != ':') return std::nullopt;
  int hour = digits(hms.substr(0, 2));
  int minute = digits(hms.substr(3, 2));
  int second = digits(hms.substr(6, 2));
  if (year < 0 || month0 < 0 || day < 1 || day > days_in_month(year, month0)) return std::nullopt;
  if (hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 60) {
    return std::nullopt;
  }
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month0;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  return timegm(&tm);
}

// "Sun, 06 Nov 1994 08:49:37 GMT"
std::optional<std::time_t> parse_imf_fixdate(std::string_view s) {
  if (s.size() != http_date_length || index_of(day_names, s.substr(0, 3)) < 0 ||
      s.substr(3, 2) != ", " || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
      s.substr(25) != " GMT") {
    return std::nullopt;
  }
  return make_time(digits(s.substr(12, 4)), index_of(month_names, s.substr(8, 3)),
                   digits(s.substr(5, 2)), s.substr(17, 8));
}

// "Sunday, 06-Nov-94 08:49:37 GMT"
std::optional<std::time_t> parse_rfc850(std::string_view s) {
  std::size_t comma = s.find(", ");
  if (comma == std::string_view::npos || index_of(long_day_names, s.substr(0, comma)) < 0) {
    return std::nullopt;
  }
  s.remove_prefix(comma + 2);  // "06-Nov-94 08:49:37 GMT"
  if (s.size() != 22 || s[2] != '-' || s[6] != '-' || s[9] != ' ' || s.substr(18) != " GMT") {
    return std::nullopt;
  }
  int yy = digits(s.substr(7, 2));
  if (yy < 0) return std::nullopt;
  return make_time(yy >= 70 ? 1900 + yy : 2000 + yy, index_of(month_names, s.substr(3, 3)),
                   digits(s.substr(0, 2)), s.substr(10, 8));
}

// "Sun Nov  6 08:49:37 1994"
std::optional<std::time_t> parse_asctime(std::string_view s) {
  if (s.size() != 24 || index_of(day_names, s.substr(0, 3)) < 0 || s[3] != ' ' || s[7] != ' ' ||
      s[10] != ' ' || s[19] != ' ') {
    return std::nullopt;
  }
  int day = s[8] == ' ' ? digits(s.substr(9, 1)) : digits(s.substr(8, 2));
  return make_time(digits(s.substr(20, 4)), index_of(month_names, s.substr(4, 3)), day,
                   s.substr(11, 8));
}

}  // namespace

void format_http_date(std::time_t t, char* out) {
  t = t < min_time ? min_time : (t > max_time ? max_time : t);
  std::tm tm{};
  gmtime_r(&t, &tm);
  const std::string_view day = day_names[static_cast<std::size_t>(tm.tm_wday)];
  const std::string_view month = month_names[static_cast<std::size_t>(tm.tm_mon)];
  const int year = tm.tm_year + 1900;
  out[0] = day[0];
  out[1] = day[1];
  out[2] = day[2];
  out[3] = ',';
  out[4] = ' ';
  put2(out + 5, tm.tm_mday);
  out[7] = ' ';
  out[8] = month[0];
  out[9] = month[1];
  out[10] = month[2];
  out[11] = ' ';
  put2(out + 12, year / 100);
  put2(out + 14, year % 100);
  out[16] = ' ';
  put2(out + 17, tm.tm_hour);
  out[19] = ':';
  put2(out + 20, tm.tm_min);
  out[22] = ':';
  put2(out + 23, tm.tm_sec);
  out[25] = ' ';
  out[26] = 'G';
  out[27] = 'M';
  out[28] = 'T';
}

std::optional<std::time_t> parse_http_date(std::string_view s) {
  if (s.size() == http_date_length && s[3] == ',') return parse_imf_fixdate(s);
  if (s.size() == 24 && s[3] == ' ') return parse_asctime(s);
  return parse_rfc850(s);
}

std::string_view current_http_date() {
  thread_local char buf[http_date_length];
  thread_local std::time_t cached = -1;
  std::time_t now = std::time(nullptr);
  if (now != cached) {
    format_http_date(now, buf);
    cached = now;
  }
  return {buf, http_date_length};
}

}  // namespace weir::http
