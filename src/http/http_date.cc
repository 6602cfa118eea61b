#include "http/http_date.h"

#include <algorithm>
#include <array>
#include <cstring>

namespace unbroken::http {
namespace {

constexpr std::array<std::string_view, 7> kDayNames = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr std::array<std::string_view, 12> kMonthNames = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// -1 unless s[pos, pos+n) is all ASCII digits.
int read_digits(std::string_view s, std::size_t pos, std::size_t n) {
  int v = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

}  // namespace

bool format_http_date(std::time_t t, char* out) {
  std::tm tm{};
  if (gmtime_r(&t, &tm) == nullptr || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 0) return false;
  auto put = [out](std::size_t at, int v, int width) {
    for (int i = width - 1; i >= 0; --i, v /= 10)
      out[at + static_cast<std::size_t>(i)] = static_cast<char>('0' + v % 10);
  };
  auto text = [out](std::size_t at, std::string_view s) { std::memcpy(out + at, s.data(), s.size()); };
  // "Sun, 06 Nov 1994 08:49:37 GMT"
  text(0, kDayNames[static_cast<std::size_t>(tm.tm_wday)]);
  text(3, ", ");
  put(5, tm.tm_mday, 2);
  text(7, " ");
  text(8, kMonthNames[static_cast<std::size_t>(tm.tm_mon)]);
  text(11, " ");
  put(12, tm.tm_year + 1900, 4);
  text(16, " ");
  put(17, tm.tm_hour, 2);
  text(19, ":");
  put(20, tm.tm_min, 2);
  text(22, ":");
  put(23, tm.tm_sec, 2);
  text(25, " GMT");
  return true;
}

std::string format_http_date(std::time_t t) {
  char out[kHttpDateLength];
  if (!format_http_date(t, out)) return {};
  return {out, sizeof out};
}

std::optional<std::time_t> parse_http_date(std::string_view s) {
  if (s.size() != kHttpDateLength || s.substr(3, 2) != ", " || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
      s[19] != ':' || s[22] != ':' || s.substr(25) != " GMT") {
    return std::nullopt;
  }
  if (std::find(kDayNames.begin(), kDayNames.end(), s.substr(0, 3)) == kDayNames.end()) return std::nullopt;
  auto month = std::find(kMonthNames.begin(), kMonthNames.end(), s.substr(8, 3));
  std::tm tm{};
  tm.tm_mday = read_digits(s, 5, 2);
  tm.tm_year = read_digits(s, 12, 4) - 1900;
  tm.tm_hour = read_digits(s, 17, 2);
  tm.tm_min = read_digits(s, 20, 2);
  tm.tm_sec = read_digits(s, 23, 2);
  if (month == kMonthNames.end() || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_year < 0 || tm.tm_hour < 0 ||
      tm.tm_hour > 23 || tm.tm_min < 0 || tm.tm_min > 59 || tm.tm_sec < 0 || tm.tm_sec > 60) {
    return std::nullopt;
  }
  tm.tm_mon = static_cast<int>(month - kMonthNames.begin());
  return timegm(&tm);
}

}  // namespace unbroken::http
