#pragma once
// One log line to an Entry, for each input format. A parser returns false for a line it cannot read;
// the caller counts it and moves on, so nothing a log contains can stop the analysis.

#include <simdjson.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "analyze/entry.h"

namespace unbroken::analyze {

enum class Format { kJson, kNginx, kHaproxy };
[[nodiscard]] std::string_view name(Format f);

// Guesses the format of a log from one of its lines: a JSON object, HAProxy's accept date with
// milliseconds and no zone in brackets, else nginx.
[[nodiscard]] Format detect_format(std::string_view line);

// unbroken's JSON-lines access log. `capacity` is how many bytes from line.data() may be read:
// simdjson reads up to SIMDJSON_PADDING past the end of the line.
class JsonLineParser {
 public:
  [[nodiscard]] bool parse(std::string_view line, std::size_t capacity, Entry& e);

 private:
  simdjson::ondemand::parser parser_;
};

// An nginx log_format string, compiled: literals and variables in order. A variable's value runs to
// the next literal, as nginx writes it (quoted values have '"' escaped as \x22).
class NginxParser {
 public:
  static constexpr std::string_view kCombined =
      R"($remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent")";

  // nullopt, with the reason in *error, when the format has no variable nginx logs a request with.
  [[nodiscard]] static std::optional<NginxParser> compile(std::string_view format, std::string* error);
  [[nodiscard]] bool parse(std::string_view line, Entry& e) const;

 private:
  enum class Var : std::uint8_t {
    kOther, kRemoteAddr, kTimeLocal, kTimeIso, kMsec, kRequest, kMethod, kUri, kStatus, kBytesSent,
    kUserAgent, kRequestTime, kUpstreamTime,
  };
  struct Token {
    std::string literal;  // empty for a variable
    Var var = Var::kOther;
  };
  std::vector<Token> tokens_;
  bool has_request_time_ = false;
};

// HAProxy's default HTTP log format (`option httplog`), with or without the syslog prefix.
[[nodiscard]] bool parse_haproxy(std::string_view line, Entry& e);

}  // namespace unbroken::analyze
