#include "app/toml_guard.h"

namespace unbroken::app {
namespace {

bool non_ascii(char c) {
  return static_cast<unsigned char>(c) >= 0x80;
}

class Scanner {
 public:
  explicit Scanner(std::string_view t) : t_(t) {}

  std::optional<TomlGuardError> run() {
    while (i_ < t_.size()) {
      char c = t_[i_];
      if (c == '#') {
        skip_to_eol();
      } else if (starts("\"\"\"")) {
        if (auto e = multiline_basic()) return e;
      } else if (starts("'''")) {
        skip_past("'''", 3);
      } else if (c == '"') {
        basic();
      } else if (c == '\'') {
        skip_past("'", 1);
      } else if (non_ascii(c)) {
        return TomlGuardError{line_, "a non-ASCII character outside a string or comment"};
      } else {
        advance();
      }
    }
    return std::nullopt;
  }

 private:
  bool starts(std::string_view s) const { return t_.substr(i_, s.size()) == s; }
  void advance() {
    if (t_[i_] == '\n') ++line_;
    ++i_;
  }
  void skip_to_eol() {
    while (i_ < t_.size() && t_[i_] != '\n') ++i_;
  }
  // Past the closing `close` of a string opened by `open` bytes (no escapes: literal strings).
  void skip_past(std::string_view close, std::size_t open) {
    i_ += open;
    while (i_ < t_.size() && !starts(close)) advance();
    i_ = std::min(t_.size(), i_ + close.size());
  }
  void basic() {
    ++i_;
    while (i_ < t_.size() && t_[i_] != '"' && t_[i_] != '\n') i_ += t_[i_] == '\\' ? 2 : 1;
    if (i_ < t_.size() && t_[i_] == '"') ++i_;
  }
  std::optional<TomlGuardError> multiline_basic() {
    i_ += 3;
    while (i_ < t_.size() && !starts("\"\"\"")) {
      if (t_[i_] != '\\') {
        advance();
        continue;
      }
      ++i_;
      // toml++ looks for a line-ending backslash: whitespace, then a newline, then whitespace.
      while (i_ < t_.size() && (t_[i_] == ' ' || t_[i_] == '\t' || t_[i_] == '\r' || t_[i_] == '\n')) advance();
      if (i_ < t_.size() && non_ascii(t_[i_]))
        return TomlGuardError{line_,
                              "a non-ASCII character right after a backslash in a multi-line string (toml++ 3.3 "
                              "cannot read it: put an ASCII character or an escape such as \\u00e9 first)"};
      if (i_ < t_.size()) advance();  // the escaped character
    }
    i_ = std::min(t_.size(), i_ + 3);
    return std::nullopt;
  }

  std::string_view t_;
  std::size_t i_ = 0;
  unsigned line_ = 1;
};

}  // namespace

std::optional<TomlGuardError> toml_unreadable(std::string_view text) {
  return Scanner(text).run();
}

}  // namespace unbroken::app
