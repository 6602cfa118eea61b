#pragma once
// The record's timestamp, RFC 3339 in UTC with milliseconds ("2026-11-27T07:42:05.631Z"): written
// by the access log, printed by analyze. Computed from the Unix time with Howard Hinnant's civil
// calendar algorithms, so no time zone (TZ, the zone lock, localtime) can enter it.

#include <cstddef>
#include <cstdint>

namespace unbroken {

// Days since 1970-01-01 of a proleptic Gregorian date, and the date of such a day.
[[nodiscard]] std::int64_t days_from_civil(int y, unsigned m, unsigned d);
struct CivilDate {
  std::int64_t year;
  unsigned month;  // 1..12
  unsigned day;    // 1..31
};
[[nodiscard]] CivilDate civil_from_days(std::int64_t days);

inline constexpr std::size_t kTimestampLength = 24;  // "2026-11-27T07:42:05.631Z"
// Writes kTimestampLength characters (no NUL) for unix_ms, which must fall in years 0..9999.
void format_timestamp(std::int64_t unix_ms, char* out);

}  // namespace unbroken
