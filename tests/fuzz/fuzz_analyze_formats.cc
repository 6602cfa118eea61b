// libFuzzer target: one log line through each of `unbroken analyze`'s input parsers (unbroken's JSON
// lines, nginx combined and a custom log_format, HAProxy httplog) and the format detector. A line
// that cannot be read is counted by the caller, so any outcome but a crash, a sanitizer report or a
// hang is fine.

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "analyze/parsers.h"

using namespace unbroken::analyze;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static JsonLineParser json;
  static const std::optional<NginxParser> combined = NginxParser::compile(NginxParser::kCombined, nullptr);
  static const std::optional<NginxParser> timed = NginxParser::compile(
      std::string(NginxParser::kCombined) + R"( $request_time $upstream_response_time)", nullptr);
  // The line in a buffer with simdjson's padding after it, as the input reader provides.
  std::string buf(reinterpret_cast<const char*>(data), size);
  buf.append(simdjson::SIMDJSON_PADDING, '\0');
  std::string_view line(buf.data(), size);
  (void)detect_format(line);
  Entry e;
  (void)json.parse(line, buf.size(), e);
  if (combined) (void)combined->parse(line, e);
  if (timed) (void)timed->parse(line, e);
  (void)parse_haproxy(line, e);
  // A custom log_format built from the input itself: the compiler must refuse or accept any text.
  std::string error;
  if (auto custom = NginxParser::compile(line.substr(0, std::min<std::size_t>(line.size(), 200)), &error))
    (void)custom->parse(line, e);
  return 0;
}
