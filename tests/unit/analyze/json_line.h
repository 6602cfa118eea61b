#pragma once
// simdjson may read past the end of a line: the analyze tests parse a copy with padding, as the
// reader's buffer has. The Entry's views point into a buffer that the next call reuses.

#include <simdjson.h>

#include <string>
#include <string_view>

#include "analyze/parsers.h"

namespace unbroken::analyze {

inline bool parse_json(JsonLineParser& p, std::string_view line, Entry& e) {
  static std::string buf;
  buf.assign(line);
  buf.append(simdjson::SIMDJSON_PADDING, ' ');
  return p.parse(std::string_view(buf.data(), line.size()), buf.size(), e);
}

}  // namespace unbroken::analyze
