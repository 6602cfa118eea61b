#pragma once
// toml++ 3.3.0 (Debian 12's) reaches __builtin_unreachable() on some non-ASCII characters where it
// looks for whitespace: outside strings and comments (U+00A1..U+03F9 and more), and right after a
// backslash in a multi-line basic string. That is undefined behaviour on a user's config file (the
// fuzzer found it). Outside strings and comments TOML allows only ASCII anyway, so this scan turns
// those inputs into a clear error before toml++ sees them; the one legal case it refuses, a
// non-ASCII character right after a line-ending backslash, is rare enough to name in the error.

#include <optional>
#include <string_view>

namespace unbroken::app {

struct TomlGuardError {
  unsigned line;  // 1-based
  std::string_view why;
};

// The first place in `text` where toml++ 3.3 would meet a non-ASCII character it cannot classify.
[[nodiscard]] std::optional<TomlGuardError> toml_unreadable(std::string_view text);

}  // namespace unbroken::app
