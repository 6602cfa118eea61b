#pragma once
// Human-readable durations ("500ms", "1.5s") and byte sizes ("64KiB") for flags and config files.
// Parsing is strict so that a typo fails at start-up instead of becoming a surprising limit later.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace unbroken {

// "500ms", "2s", "1.5s", "1m", "1h", "0", "0s". Units are ms, s, m, h, in lower case. A fraction must
// come to a whole number of milliseconds ("1.5ms" is rejected). A bare number other than "0" is rejected:
// "30" could mean seconds or milliseconds. Also rejects signs, whitespace, and values too large for a
// nanosecond steady_clock::duration, so callers may convert the result without overflow.
[[nodiscard]] std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

// "1024", "64k", "64kb", "64KiB", "10m", "10MiB", "1g", "1GiB", "1t"; case-insensitive, whole numbers,
// and every suffix is 1024-based (nobody sizing a buffer means 64000 by "64k"). Rejects signs,
// whitespace, fractions, and values that do not fit in 64 bits.
[[nodiscard]] std::optional<std::uint64_t> parse_size(std::string_view text);

// The largest exact unit: 1500ms, 2s, 90s, 1m, 1h; zero is "0s". parse_duration() reads it back.
[[nodiscard]] std::string format_duration(std::chrono::milliseconds d);

// The largest exact 1024-based unit: 16KiB, 8MiB, 10000; zero is "0". parse_size() reads it back.
[[nodiscard]] std::string format_size(std::uint64_t bytes);

}  // namespace unbroken
