#include "base/units.h"

#include <array>
#include <charconv>

namespace unbroken {
namespace {

// Durations are added to steady_clock time points (nanoseconds in an int64), so anything larger than
// nanoseconds::max() would overflow there even though it fits in milliseconds.
constexpr std::uint64_t kMaxDurationMs =
    std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::nanoseconds::max()).count();

// Beyond this many fraction digits (after trailing zeros are dropped) a value in ms, s, m or h can no
// longer be a whole number of milliseconds: 10^10 does not divide f * 3'600'000 unless f ends in 0.
constexpr std::size_t kMaxFractionDigits = 9;

struct Unit {
  std::string_view name;
  std::uint64_t factor;
};

constexpr std::array<Unit, 4> kDurationUnits{{{"ms", 1}, {"s", 1'000}, {"m", 60'000}, {"h", 3'600'000}}};

constexpr std::uint64_t kKiB = 1024;
// Largest first: format_size() picks the first one that divides exactly.
constexpr std::array<Unit, 4> kSizeUnits{
    {{"TiB", kKiB* kKiB* kKiB* kKiB}, {"GiB", kKiB* kKiB* kKiB}, {"MiB", kKiB* kKiB}, {"KiB", kKiB}}};

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

char to_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (to_lower(a[i]) != to_lower(b[i])) return false;
  }
  return true;
}

// The leading run of ASCII digits; what follows is a fraction or a unit.
std::string_view leading_digits(std::string_view s) {
  std::size_t n = 0;
  while (n < s.size() && is_digit(s[n])) ++n;
  return s.substr(0, n);
}

// Digits only (the caller split them off), so the only failure left is overflow.
std::optional<std::uint64_t> to_u64(std::string_view digits) {
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (ec != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  return v;
}

// "k", "kb" and "kib" all name KiB, in any case; likewise for m, g and t.
bool names_unit(std::string_view suffix, const Unit& unit) {
  if (suffix.empty() || to_lower(suffix.front()) != to_lower(unit.name.front())) return false;
  std::string_view tail = suffix.substr(1);
  return tail.empty() || iequals(tail, "b") || iequals(tail, "ib");
}

}  // namespace

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  if (text == "0") return std::chrono::milliseconds{0};

  std::string_view whole = leading_digits(text);
  if (whole.empty()) return std::nullopt;  // empty, sign, leading '.', or garbage
  std::string_view rest = text.substr(whole.size());
  std::string_view fraction;
  if (!rest.empty() && rest.front() == '.') {
    fraction = leading_digits(rest.substr(1));
    if (fraction.empty()) return std::nullopt;  // "1.s"
    rest = rest.substr(1 + fraction.size());
  }

  std::uint64_t factor = 0;
  for (const Unit& u : kDurationUnits) {
    if (rest == u.name) factor = u.factor;
  }
  if (factor == 0) return std::nullopt;  // no unit, unknown unit, or trailing garbage

  auto w = to_u64(whole);
  std::uint64_t total = 0;
  if (!w || __builtin_mul_overflow(*w, factor, &total)) return std::nullopt;

  while (!fraction.empty() && fraction.back() == '0') fraction.remove_suffix(1);
  if (!fraction.empty()) {
    if (fraction.size() > kMaxFractionDigits) return std::nullopt;
    std::uint64_t scale = 1;
    for (std::size_t i = 0; i < fraction.size(); ++i) scale *= 10;
    // f < 10^9 and factor <= 3.6e6, so the product stays below 2^63.
    std::uint64_t scaled = *to_u64(fraction) * factor;
    if (scaled % scale != 0) return std::nullopt;  // finer than a millisecond
    if (__builtin_add_overflow(total, scaled / scale, &total)) return std::nullopt;
  }
  if (total > kMaxDurationMs) return std::nullopt;
  return std::chrono::milliseconds{static_cast<std::chrono::milliseconds::rep>(total)};
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
  std::string_view digits = leading_digits(text);
  if (digits.empty()) return std::nullopt;
  std::string_view suffix = text.substr(digits.size());

  std::uint64_t factor = 0;
  if (suffix.empty() || iequals(suffix, "b")) factor = 1;
  for (const Unit& u : kSizeUnits) {
    if (names_unit(suffix, u)) factor = u.factor;
  }
  if (factor == 0) return std::nullopt;

  auto n = to_u64(digits);
  std::uint64_t bytes = 0;
  if (!n || __builtin_mul_overflow(*n, factor, &bytes)) return std::nullopt;
  return bytes;
}

std::string format_duration(std::chrono::milliseconds d) {
  auto ms = d.count();
  if (ms == 0) return "0s";
  // Units from largest to smallest; kDurationUnits is smallest first.
  for (auto it = kDurationUnits.rbegin(); it != kDurationUnits.rend(); ++it) {
    auto factor = static_cast<std::chrono::milliseconds::rep>(it->factor);
    if (ms % factor == 0) return std::to_string(ms / factor) + std::string(it->name);
  }
  return std::to_string(ms) + "ms";  // not reached: "ms" divides everything
}

std::string format_size(std::uint64_t bytes) {
  if (bytes == 0) return "0";
  for (const Unit& u : kSizeUnits) {
    if (bytes % u.factor == 0) return std::to_string(bytes / u.factor) + std::string(u.name);
  }
  return std::to_string(bytes);
}

}  // namespace unbroken
