// Timestamps of the three formats, to Unix milliseconds, and back.

#include "analyze/time_parse.h"

#include <gtest/gtest.h>

namespace unbroken::analyze {
namespace {

constexpr std::int64_t kT = 1'795'989'001'123;  // 2026-11-29T21:50:01.123Z

TEST(TimeParse, Iso8601) {
  EXPECT_EQ(parse_iso8601("2026-11-29T21:50:01.123Z"), kT);
  EXPECT_EQ(parse_iso8601("2026-11-29T22:50:01.123+01:00"), kT);
  EXPECT_EQ(parse_iso8601("2026-11-29T14:50:01.123-0700"), kT);
  EXPECT_EQ(parse_iso8601("2026-11-29 21:50"), kT - 1123);
  EXPECT_EQ(parse_iso8601("2026-11-29"), kT - (21 * 3600 + 50 * 60 + 1) * 1000 - 123);
  EXPECT_EQ(parse_iso8601("1970-01-01T00:00:00Z"), 0);
  for (const char* bad : {"", "2026-13-01", "2026-11-29T25:00", "2026-11-29T21:50:01.123X", "yesterday",
                          "2026-11-29T21:50:01.123Z trailing", "2026/11/29"}) {
    EXPECT_FALSE(parse_iso8601(bad)) << bad;
  }
}

TEST(TimeParse, CommonLogFormat) {
  EXPECT_EQ(parse_clf_time("29/Nov/2026:21:50:01 +0000"), kT - 123);
  EXPECT_EQ(parse_clf_time("29/Nov/2026:14:50:01 -0700"), kT - 123);
  EXPECT_EQ(parse_clf_time("29/Nov/2026:21:50:01.123"), kT);  // HAProxy: milliseconds, no zone
  for (const char* bad : {"", "29/Foo/2026:21:50:01 +0000", "29/Nov/2026 21:50:01", "29/Nov/2026:21:50:01 +00"}) {
    EXPECT_FALSE(parse_clf_time(bad)) << bad;
  }
}

TEST(TimeParse, FormatRoundTrips) {
  EXPECT_EQ(format_iso8601(kT), "2026-11-29T21:50:01.123Z");
  for (std::int64_t t : {std::int64_t{0}, kT, std::int64_t{951'782'400'000} /* 2000-02-29 */}) {
    EXPECT_EQ(parse_iso8601(format_iso8601(t)), t);
  }
}

}  // namespace
}  // namespace unbroken::analyze
