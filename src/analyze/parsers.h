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

// What a status says about how the request ended, for logs with no outcome of their own (nginx's, another
// server's JSON): sets outcome, phase and timer.
void classify_by_status(Entry& e);

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
  // What the input is called: "combined" for the default format, "custom" for any other log_format.
  // Named by the format, not by a server: Apache and others write combined too.
  [[nodiscard]] std::string_view format_name() const { return combined_ ? "combined" : "custom"; }
  // True when the format logs whether a response was complete ($request_completion or
  // $sent_http_content_length beside $body_bytes_sent): a cut-short 200 is then known, not inferred.
  [[nodiscard]] bool logs_completion() const { return has_completion_ || (has_length_ && has_body_bytes_); }

  // Public for the table of variable names in parsers.cc.
  enum class Var : std::uint8_t {
    kOther,
    kRemoteAddr,
    kTimeLocal,
    kTimeIso,
    kMsec,
    kRequest,
    kMethod,
    kUri,
    kStatus,
    kBytesSent,
    kUserAgent,
    kRequestTime,
    kUpstreamTime,
    kCompletion,
    kContentLength,
    kUpstreamAddr,
    kUpstreamStatus,
    kUpstreamHeaderTime,
    kUpstreamConnectTime,
  };

 private:
  struct Token {
    std::string literal;  // empty for a variable
    Var var = Var::kOther;
  };
  // Token t is the last variable, quoted, with only its closing quote (and maybe more) after it.
  [[nodiscard]] bool last_quoted(std::size_t t) const;

  std::vector<Token> tokens_;
  bool has_request_time_ = false;
  bool combined_ = false;
  bool has_completion_ = false, has_length_ = false, has_body_bytes_ = false;
  bool has_upstream_ = false, has_header_time_ = false, has_connect_time_ = false;
};

// nginx's own 502 or 504 for a proxied request, told apart from one the application sent by the
// absence of $upstream_header_time (when the format has it): an upstream_* outcome. Sets outcome,
// phase and timer; leaves any other entry as it is.
void classify_upstream_failure(Entry& e, bool header_logged, bool connect_logged);

// HAProxy's default HTTP log format (`option httplog`), with or without the syslog prefix.
[[nodiscard]] bool parse_haproxy(std::string_view line, Entry& e);

}  // namespace unbroken::analyze
