#pragma once
// Small text helpers that the server and analyze share: ASCII case folding, HTTP's optional
// whitespace and lists, and JSON string escaping. They allocate nothing of their own (the JSON
// escaper grows the caller's buffer); safe from any thread.

#include <cstddef>
#include <string_view>

namespace unbroken {

constexpr char ascii_lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

// ASCII case-insensitive equality, as HTTP compares field names, tokens and codings (RFC 9110 5.1).
// Inline: a header lookup calls it for every field, and most differ in length at once.
[[nodiscard]] inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  return true;
}

// s without the spaces and tabs at either end: HTTP's OWS (RFC 9110 5.6.3) around a field value or
// a list member.
[[nodiscard]] std::string_view trim_ows(std::string_view s);

// The next member of a comma-separated list (RFC 9110 5.6.1), without its OWS, removed from the
// front of `list` with its comma. Empty members come back empty: the caller skips them.
[[nodiscard]] std::string_view next_list_element(std::string_view& list);

// Length of the well-formed UTF-8 sequence at s[i] (RFC 3629: no overlongs, no surrogates, at most
// U+10FFFF), or 0.
[[nodiscard]] std::size_t utf8_length(std::string_view s, std::size_t i);

// Appends s as one quoted JSON string. Quotes, backslashes and control characters are escaped;
// well-formed UTF-8 passes through and any other byte becomes \u00XX, so the output is valid JSON
// (and one line) whatever bytes s holds: nothing a client sends can forge a field or a line.
// Out is std::string or fmt::memory_buffer (push_back and append(first, last)).
template <typename Out>
void append_json_string(Out& out, std::string_view s) {
  constexpr std::string_view kHex = "0123456789abcdef";
  auto put = [&out](std::string_view t) { out.append(t.data(), t.data() + t.size()); };
  out.push_back('"');
  for (std::size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"': put("\\\""); break;
      case '\\': put("\\\\"); break;
      case '\n': put("\\n"); break;
      case '\r': put("\\r"); break;
      case '\t': put("\\t"); break;
      default:
        if (c >= 0x80) {
          if (std::size_t n = utf8_length(s, i); n > 0) {
            put(s.substr(i, n));
            i += n - 1;
            break;
          }
        }
        if (c < 0x20 || c >= 0x7f) {
          const char esc[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
          out.append(esc, esc + sizeof esc);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

}  // namespace unbroken
