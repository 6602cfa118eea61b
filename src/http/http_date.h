#pragma once
// HTTP dates (RFC 9110 5.6.7) for Last-Modified and If-Modified-Since.

#include <cstddef>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>

namespace unbroken::http {

inline constexpr std::size_t kHttpDateLength = 29;  // "Sun, 06 Nov 1994 08:49:37 GMT"

// IMF-fixdate into out (kHttpDateLength characters, no NUL), allocation-free for a per-second
// Date cache; false, out untouched, on the rare time_t that gmtime_r cannot represent or a year
// past 9999.
bool format_http_date(std::time_t t, char* out);
// The same as a string; empty where the above is false (callers omit the header).
std::string format_http_date(std::time_t t);

// IMF-fixdate only. The obsolete RFC 850 and asctime forms come back as nullopt, which callers
// treat as "header absent", as the RFC asks for invalid dates.
std::optional<std::time_t> parse_http_date(std::string_view s);

}  // namespace unbroken::http
