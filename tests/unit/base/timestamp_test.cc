// The record's timestamp: RFC 3339, UTC, milliseconds, for any instant in years 0..9999.

#include "base/timestamp.h"

#include <gtest/gtest.h>

#include <string>

namespace unbroken {
namespace {

std::string text(std::int64_t ms) {
  char out[kTimestampLength];
  format_timestamp(ms, out);
  return {out, sizeof out};
}

TEST(Timestamp, Table) {
  const std::pair<std::int64_t, std::string_view> rows[] = {
      {0, "1970-01-01T00:00:00.000Z"},
      {1'795'000'000'123, "2026-11-18T11:06:40.123Z"},
      {-1, "1969-12-31T23:59:59.999Z"},  // before 1970: the previous second, not a negative fraction
      {951'782'400'000, "2000-02-29T00:00:00.000Z"},
      {1'709'251'199'999, "2024-02-29T23:59:59.999Z"},
      {253'402'300'799'999, "9999-12-31T23:59:59.999Z"},
  };
  for (auto [ms, want] : rows) EXPECT_EQ(text(ms), want) << ms;
}

TEST(Timestamp, CivilDaysRoundTrip) {
  for (std::int64_t d = -800'000; d <= 3'000'000; d += 997) {
    CivilDate c = civil_from_days(d);
    EXPECT_EQ(days_from_civil(static_cast<int>(c.year), c.month, c.day), d);
  }
}

}  // namespace
}  // namespace unbroken
