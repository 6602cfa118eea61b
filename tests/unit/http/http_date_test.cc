// IMF-fixdate both ways; the fixed-buffer form (for a Date cache) gives the same text as the string.

#include "http/http_date.h"

#include <gtest/gtest.h>

namespace unbroken::http {
namespace {

TEST(HttpDate, FormatsAndParsesBack) {
  const std::pair<std::time_t, std::string_view> rows[] = {
      {784'111'777, "Sun, 06 Nov 1994 08:49:37 GMT"},  // RFC 9110's example
      {0, "Thu, 01 Jan 1970 00:00:00 GMT"},
      {951'782'400, "Tue, 29 Feb 2000 00:00:00 GMT"},
  };
  for (auto [t, want] : rows) {
    EXPECT_EQ(format_http_date(t), want);
    char out[kHttpDateLength];
    ASSERT_TRUE(format_http_date(t, out));
    EXPECT_EQ(std::string_view(out, sizeof out), want);
    EXPECT_EQ(parse_http_date(want), t);
  }
}

TEST(HttpDate, OnlyImfFixdateParses) {
  for (std::string_view bad : {"Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994",
                               "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 32 Nov 1994 08:49:37 GMT", ""}) {
    EXPECT_FALSE(parse_http_date(bad)) << bad;
  }
}

}  // namespace
}  // namespace unbroken::http
