#include "session/values_json.h"

#include <fmt/format.h>
#include <simdjson.h>

namespace unbroken::session {
namespace {

// Not base's append_json_string, on purpose: that one turns a byte that is not UTF-8 into \u00XX,
// valid JSON but another value. A session value must come back exactly or not be stored, so bytes
// pass through here and the store refuses what is not UTF-8 (EINVAL, see redis_store.cc).
void append_string(std::string& out, std::string_view s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          fmt::format_to(std::back_inserter(out), "\\u{:04x}", static_cast<unsigned>(c));
        } else {
          out += static_cast<char>(c);  // values are the application's own: UTF-8 passes through
        }
    }
  }
  out += '"';
}

}  // namespace

std::string encode_values(const SessionValues& values) {
  std::string out = "{";
  for (const auto& [k, v] : values) {
    if (out.size() > 1) out += ',';
    append_string(out, k);
    out += ':';
    append_string(out, v);
  }
  out += '}';
  return out;
}

std::optional<SessionValues> decode_values(std::string_view json) {
  thread_local simdjson::dom::parser parser;
  simdjson::padded_string padded(json);
  simdjson::dom::object obj;
  if (parser.parse(padded).get_object().get(obj) != simdjson::SUCCESS) return std::nullopt;
  SessionValues out;
  for (auto [key, value] : obj) {
    std::string_view v;
    if (value.get_string().get(v) != simdjson::SUCCESS) return std::nullopt;
    out.emplace(std::string(key), std::string(v));
  }
  return out;
}

}  // namespace unbroken::session
