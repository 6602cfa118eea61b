// parse_duration / parse_size as tables of accepted and rejected spellings, and the formatters
// reading back through the parsers.
#include "base/units.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <string_view>

namespace unbroken {
namespace {

using std::chrono::milliseconds;

struct DurationCase {
  std::string_view text;
  std::int64_t ms;
};

TEST(ParseDuration, AcceptsUnitsAndExactFractions) {
  constexpr DurationCase kCases[] = {
      {"0", 0},          {"0s", 0},      {"0ms", 0},        {"0h", 0},
      {"0.0s", 0},       {"1ms", 1},     {"500ms", 500},    {"2s", 2'000},
      {"90s", 90'000},   {"1m", 60'000}, {"1h", 3'600'000}, {"1.5s", 1'500},
      {"2.000s", 2'000}, {"0.001s", 1},  {"0.5m", 30'000},  {"1.25h", 4'500'000},
      {"0.0001h", 360},
  };
  for (const auto& c : kCases) {
    auto d = parse_duration(c.text);
    ASSERT_TRUE(d.has_value()) << c.text;
    EXPECT_EQ(d->count(), c.ms) << c.text;
  }
}

TEST(ParseDuration, AcceptsTheLargestValueANanosecondClockCanHold) {
  auto max_ms = std::chrono::duration_cast<milliseconds>(std::chrono::nanoseconds::max()).count();
  auto d = parse_duration(std::to_string(max_ms) + "ms");
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->count(), max_ms);
  EXPECT_FALSE(parse_duration(std::to_string(max_ms + 1) + "ms").has_value());
}

TEST(ParseDuration, RejectsAmbiguousNegativeInexactAndGarbage) {
  constexpr std::string_view kBad[] = {
      "",
      "5",  // bare number: seconds or milliseconds?
      "30",
      "00",  // only "0" itself may go without a unit
      "0.5",
      "-1s",  // negative
      "+1s",
      "-0s",
      "1.5ms",  // finer than a millisecond
      "0.0001s",
      "0.0000001h",     // 0.36 ms
      "1.0000000001s",  // ten fraction digits
      "s",
      "ms",
      ".5s",  // the integer part is required
      "1.s",  // and so are fraction digits after the point
      "1..5s",
      "1 s",  // no whitespace anywhere
      " 1s",
      "1s ",
      "1S",  // units are lower case
      "1MS",
      "1sec",
      "1d",  // no days
      "1us",
      "1m30s",  // no compound durations
      "1e3ms",
      "abc",
      "0x10s",
      "18446744073709551616ms",  // overflows 64 bits while reading the digits
      "6000000000000000h",       // overflows 64 bits when scaled to ms
      "9223372036855s",          // fits in ms, not in a nanosecond clock
  };
  for (std::string_view text : kBad) EXPECT_FALSE(parse_duration(text).has_value()) << "'" << text << "'";
}

TEST(FormatDuration, PicksTheLargestExactUnit) {
  EXPECT_EQ(format_duration(milliseconds{0}), "0s");
  EXPECT_EQ(format_duration(milliseconds{1}), "1ms");
  EXPECT_EQ(format_duration(milliseconds{1'500}), "1500ms");
  EXPECT_EQ(format_duration(milliseconds{2'000}), "2s");
  EXPECT_EQ(format_duration(milliseconds{90'000}), "90s");
  EXPECT_EQ(format_duration(milliseconds{60'000}), "1m");
  EXPECT_EQ(format_duration(milliseconds{5'400'000}), "90m");
  EXPECT_EQ(format_duration(milliseconds{3'600'000}), "1h");
}

TEST(FormatDuration, ReadsBackThroughParseDuration) {
  for (std::int64_t ms : {0LL, 1LL, 999LL, 1'000LL, 1'001LL, 59'000LL, 60'000LL, 61'000LL, 3'600'000LL, 86'400'000LL}) {
    auto back = parse_duration(format_duration(milliseconds{ms}));
    ASSERT_TRUE(back.has_value()) << ms;
    EXPECT_EQ(back->count(), ms);
  }
}

struct SizeCase {
  std::string_view text;
  std::uint64_t bytes;
};

TEST(ParseSize, AcceptsBinarySuffixesInAnyCase) {
  constexpr std::uint64_t kKiB = 1024;
  constexpr SizeCase kCases[] = {
      {"0", 0},
      {"1", 1},
      {"1024", 1024},
      {"16384", 16384},
      {"512b", 512},
      {"512B", 512},
      {"64k", 64 * kKiB},
      {"64K", 64 * kKiB},
      {"64kb", 64 * kKiB},
      {"64KB", 64 * kKiB},
      {"64kib", 64 * kKiB},
      {"64KiB", 64 * kKiB},
      {"64KIB", 64 * kKiB},
      {"10m", 10 * kKiB * kKiB},
      {"10M", 10 * kKiB * kKiB},
      {"10mb", 10 * kKiB * kKiB},
      {"10MiB", 10 * kKiB * kKiB},
      {"1g", kKiB * kKiB * kKiB},
      {"1GiB", kKiB * kKiB * kKiB},
      {"1gb", kKiB * kKiB * kKiB},
      {"1t", kKiB * kKiB * kKiB * kKiB},
      {"1TiB", kKiB * kKiB * kKiB * kKiB},
      {"18446744073709551615", UINT64_MAX},
      {"16777215t", 16777215 * kKiB * kKiB * kKiB * kKiB},
  };
  for (const auto& c : kCases) {
    auto n = parse_size(c.text);
    ASSERT_TRUE(n.has_value()) << c.text;
    EXPECT_EQ(*n, c.bytes) << c.text;
  }
}

TEST(ParseSize, RejectsGarbageFractionsSignsAndOverflow) {
  constexpr std::string_view kBad[] = {
      "",
      "k",
      "KiB",
      "-1",
      "+1",
      "1.5m",  // whole numbers only
      "64 KiB",
      " 64k",
      "64k ",
      "64kk",
      "64ki",
      "64kbb",
      "64KiBs",
      "64x",
      "64ib",
      "1e3",
      "0x10",
      "abc",
      "18446744073709551616",  // 2^64
      "16777216t",             // 2^24 TiB = 2^64
      "17179869184g",          // 2^34 GiB = 2^64
  };
  for (std::string_view text : kBad) EXPECT_FALSE(parse_size(text).has_value()) << "'" << text << "'";
}

TEST(FormatSize, PicksTheLargestExactBinaryUnit) {
  EXPECT_EQ(format_size(0), "0");
  EXPECT_EQ(format_size(1), "1");
  EXPECT_EQ(format_size(1'536), "1536");
  EXPECT_EQ(format_size(10'000), "10000");
  EXPECT_EQ(format_size(1'024), "1KiB");
  EXPECT_EQ(format_size(16 * 1'024), "16KiB");
  EXPECT_EQ(format_size(8 * 1'024 * 1'024), "8MiB");
  EXPECT_EQ(format_size(std::uint64_t{1} << 30), "1GiB");
  EXPECT_EQ(format_size(std::uint64_t{3} << 40), "3TiB");
  for (std::uint64_t n : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{1'536}, std::uint64_t{1} << 20,
                          std::uint64_t{5} << 40, UINT64_MAX}) {
    EXPECT_EQ(parse_size(format_size(n)), n) << n;
  }
}

}  // namespace
}  // namespace unbroken
