#include "analyze/time_parse.h"

#include <array>

#include "base/timestamp.h"

namespace unbroken::analyze {
namespace {

// Reads exactly n digits at s[i], advancing i.
bool digits(std::string_view s, std::size_t& i, int n, int& out) {
  if (i + static_cast<std::size_t>(n) > s.size()) return false;
  int v = 0;
  for (int k = 0; k < n; ++k) {
    char c = s[i + static_cast<std::size_t>(k)];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  i += static_cast<std::size_t>(n);
  out = v;
  return true;
}

bool expect(std::string_view s, std::size_t& i, char c) {
  if (i >= s.size() || s[i] != c) return false;
  ++i;
  return true;
}

// ".123" or ",5": the fraction in milliseconds (extra digits dropped).
int fraction_ms(std::string_view s, std::size_t& i) {
  if (i >= s.size() || (s[i] != '.' && s[i] != ',')) return 0;
  ++i;
  int ms = 0, scale = 100;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
    ms += (s[i] - '0') * scale;
    scale /= 10;
    ++i;
  }
  return ms;
}

// "Z", "+01:00", "+0100", "-0700" or nothing; the offset east of UTC in minutes.
bool zone_minutes(std::string_view s, std::size_t& i, int& minutes) {
  minutes = 0;
  if (i >= s.size()) return true;
  if (s[i] == 'Z' || s[i] == 'z') {
    ++i;
    return true;
  }
  if (s[i] != '+' && s[i] != '-') return false;
  int sign = s[i] == '-' ? -1 : 1;
  ++i;
  int h = 0, m = 0;
  if (!digits(s, i, 2, h)) return false;
  if (i < s.size() && s[i] == ':') ++i;
  if (!digits(s, i, 2, m)) return false;
  minutes = sign * (h * 60 + m);
  return true;
}

bool valid(int y, int mo, int d, int h, int mi, int sec) {
  return y >= 1970 && mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h <= 23 && mi <= 59 && sec <= 60;
}

std::int64_t to_ms(int y, int mo, int d, int h, int mi, int sec, int ms, int zone) {
  std::int64_t days = days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  std::int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - zone * 60;
  return secs * 1000 + ms;
}

}  // namespace

std::optional<std::int64_t> parse_iso8601(std::string_view s) {
  std::size_t i = 0;
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0, zone = 0;
  if (!digits(s, i, 4, y) || !expect(s, i, '-') || !digits(s, i, 2, mo) || !expect(s, i, '-') || !digits(s, i, 2, d)) {
    return std::nullopt;
  }
  int ms = 0;
  if (i < s.size()) {
    if (s[i] != 'T' && s[i] != ' ') return std::nullopt;
    ++i;
    if (!digits(s, i, 2, h) || !expect(s, i, ':') || !digits(s, i, 2, mi)) return std::nullopt;
    if (i < s.size() && s[i] == ':') {
      ++i;
      if (!digits(s, i, 2, sec)) return std::nullopt;
      ms = fraction_ms(s, i);
    }
    if (!zone_minutes(s, i, zone) || i != s.size()) return std::nullopt;
  }
  if (!valid(y, mo, d, h, mi, sec)) return std::nullopt;
  return to_ms(y, mo, d, h, mi, sec, ms, zone);
}

std::optional<std::int64_t> parse_clf_time(std::string_view s) {
  static constexpr std::array<std::string_view, 12> kMonths{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::size_t i = 0;
  int d = 0, y = 0, h = 0, mi = 0, sec = 0, zone = 0;
  if (!digits(s, i, 2, d) || !expect(s, i, '/') || i + 4 > s.size()) return std::nullopt;
  int mo = 0;
  for (std::size_t k = 0; k < kMonths.size(); ++k) {
    if (s.substr(i, 3) == kMonths[k]) mo = static_cast<int>(k) + 1;
  }
  if (mo == 0) return std::nullopt;
  i += 3;
  if (!expect(s, i, '/') || !digits(s, i, 4, y) || !expect(s, i, ':') || !digits(s, i, 2, h) || !expect(s, i, ':') ||
      !digits(s, i, 2, mi) || !expect(s, i, ':') || !digits(s, i, 2, sec)) {
    return std::nullopt;
  }
  int ms = fraction_ms(s, i);
  if (i < s.size() && s[i] == ' ') {
    ++i;
    if (!zone_minutes(s, i, zone)) return std::nullopt;
  }
  if (i != s.size() || !valid(y, mo, d, h, mi, sec)) return std::nullopt;
  return to_ms(y, mo, d, h, mi, sec, ms, zone);
}

std::string format_iso8601(std::int64_t ms) {
  std::string out(kTimestampLength, '\0');
  format_timestamp(ms, out.data());
  return out;
}

}  // namespace unbroken::analyze
