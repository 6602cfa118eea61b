#include "base/timestamp.h"

namespace unbroken {
namespace {

// Floor division: a time before 1970 belongs to the second (and day) that began before it.
std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  return a >= 0 ? a / b : (a - b + 1) / b;
}

void put(char* out, unsigned v, int width) {
  for (int i = width - 1; i >= 0; --i, v /= 10) out[i] = static_cast<char>('0' + v % 10);
}

}  // namespace

std::int64_t days_from_civil(int y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

CivilDate civil_from_days(std::int64_t days) {
  std::int64_t z = days + 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return {static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2), m, d};
}

void format_timestamp(std::int64_t unix_ms, char* out) {
  std::int64_t secs = floor_div(unix_ms, 1000);
  auto milli = static_cast<unsigned>(unix_ms - secs * 1000);
  std::int64_t days = floor_div(secs, 86400);
  auto rem = static_cast<unsigned>(secs - days * 86400);
  CivilDate date = civil_from_days(days);
  put(out, static_cast<unsigned>(date.year), 4);
  out[4] = '-';
  put(out + 5, date.month, 2);
  out[7] = '-';
  put(out + 8, date.day, 2);
  out[10] = 'T';
  put(out + 11, rem / 3600, 2);
  out[13] = ':';
  put(out + 14, rem / 60 % 60, 2);
  out[16] = ':';
  put(out + 17, rem % 60, 2);
  out[19] = '.';
  put(out + 20, milli, 3);
  out[23] = 'Z';
}

}  // namespace unbroken
