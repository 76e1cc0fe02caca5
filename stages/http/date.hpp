#pragma once

#include <ctime>
#include <optional>
#include <string_view>

namespace weir::http {

/// Length of an IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT".
inline constexpr std::size_t http_date_length = 29;

/// Writes the IMF-fixdate for `t` into `out` (exactly http_date_length bytes, no NUL).
void format_http_date(std::time_t t, char* out);

/// Parses an HTTP-date in any of the three RFC 9110 5.6.7 formats (IMF-fixdate, obsolete RFC 850,
/// asctime). nullopt when malformed.
std::optional<std::time_t> parse_http_date(std::string_view s);

/// The current time as an IMF-fixdate; cached per thread and refreshed once a second.
std::string_view current_http_date();

}  // namespace weir::http
