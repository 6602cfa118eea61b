#pragma once
// HTTP dates (RFC 9110 5.6.7) for Last-Modified and If-Modified-Since.

#include <ctime>
#include <optional>
#include <string>
#include <string_view>

namespace unbroken::http {

// IMF-fixdate; empty on the rare time_t that gmtime_r cannot represent (callers omit the header).
std::string format_http_date(std::time_t t);

// IMF-fixdate only. The obsolete RFC 850 and asctime forms come back as nullopt, which callers
// treat as "header absent", as the RFC asks for invalid dates.
std::optional<std::time_t> parse_http_date(std::string_view s);

}  // namespace unbroken::http
