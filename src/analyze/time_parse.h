#pragma once
// Timestamps of the three log formats to Unix milliseconds (UTC). Hand-rolled rather than strptime:
// these run once per line, and strptime plus timegm cost more than parsing the whole JSON record.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace unbroken::analyze {

// "2026-11-26T23:50:01.123Z", "2026-11-26T23:50:01+01:00", "2026-11-26 23:50", "2026-11-26".
[[nodiscard]] std::optional<std::int64_t> parse_iso8601(std::string_view s);

// nginx $time_local "10/Oct/2000:13:55:36 -0700"; HAProxy's accept date "06/Feb/2009:12:14:14.655"
// (no zone: read as UTC).
[[nodiscard]] std::optional<std::int64_t> parse_clf_time(std::string_view s);

// "2026-11-26T23:50:01.123Z", always UTC with milliseconds: the access log's own format_timestamp().
[[nodiscard]] std::string format_iso8601(std::int64_t ms);

}  // namespace unbroken::analyze
