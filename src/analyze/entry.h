#pragma once
// One request as the analyzer sees it, whatever log it came from: unbroken's JSON lines, nginx or
// HAProxy. Strings are views into the current input line, valid only while that line is processed.

#include <array>
#include <cstdint>
#include <limits>
#include <string_view>

namespace unbroken::analyze {

// The wire names of unbroken's access log (src/http/types.h), redeclared here so that the analyzer
// depends on no server library; the order is the order of the tables.
enum class Outcome : std::uint8_t {
  kOk,
  kClientClosed,
  kClientReset,
  kBrokenPipe,
  kTimeout,
  kProtocolError,
  kLimitExceeded,
  kShutdown,
  kHandlerError,
};
inline constexpr std::size_t kOutcomeCount = 9;

enum class Phase : std::uint8_t { kIdle, kRequestHeaders, kRequestBody, kHandler, kResponse, kUnknown };
inline constexpr std::size_t kPhaseCount = 6;

enum class Timer : std::uint8_t { kNone, kHeader, kBody, kHandler, kSend, kKeepalive, kDrain, kSendRate };
inline constexpr std::size_t kTimerCount = 8;

inline constexpr std::array<std::string_view, kOutcomeCount> kOutcomeNames{
    "ok",       "client_closed", "client_reset", "broken_pipe", "timeout", "protocol_error", "limit_exceeded",
    "shutdown", "handler_error"};
inline constexpr std::array<std::string_view, kPhaseCount> kPhaseNames{"idle",    "request_headers", "request_body",
                                                                       "handler", "response",        "unknown"};
inline constexpr std::array<std::string_view, kTimerCount> kTimerNames{"none", "header",    "body",  "handler",
                                                                       "send", "keepalive", "drain", "send_rate"};

constexpr std::string_view name(Outcome o) {
  return kOutcomeNames[static_cast<std::size_t>(o)];
}
constexpr std::string_view name(Phase p) {
  return kPhaseNames[static_cast<std::size_t>(p)];
}
constexpr std::string_view name(Timer t) {
  return kTimerNames[static_cast<std::size_t>(t)];
}

// How a response the log shows as a success was found cut short: the log said so ($request_completion,
// a Content-Length the body fell short of), or its size was below the size its path is served at in full.
enum class Cut : std::uint8_t { kNone, kExact, kInferred };

inline constexpr std::int64_t kNoTime = std::numeric_limits<std::int64_t>::min();

struct Entry {
  std::int64_t ts_ms = kNoTime;  // Unix milliseconds (UTC)
  std::string_view client;       // "IP" or "IP:port" or "[v6]:port"
  std::string_view method;
  std::string_view path;   // as requested, query included
  std::string_view route;  // the server's own route pattern when the log has one
  std::string_view ua;
  int status = 0;
  Outcome outcome = Outcome::kOk;
  Phase phase = Phase::kUnknown;
  Timer timer = Timer::kNone;
  std::int64_t timeout_ms = -1;  // the fired timer's setting; -1 when unknown
  std::int64_t bytes_out = -1;   // -1 when the log does not say
  std::int64_t bytes_acked = -1;
  std::int64_t bytes_unsent = -1;
  double duration_ms = -1;
  double handler_ms = -1;
  double wasted_ms = -1;
  bool cancelled = false;
  Cut cut = Cut::kNone;
  bool repaired = false;  // the line's last quoted field had no closing quote and was read to the end

  // A request that did not end with a complete response: the client left, a timer cut it, or the
  // server gave up. Everything the report calls a departure.
  [[nodiscard]] bool departed() const { return outcome != Outcome::kOk; }
  // A successful GET with a body: what a cut-short finding judges (marked, inferred or counted).
  [[nodiscard]] bool download() const { return method == "GET" && status >= 200 && status < 300 && status != 204; }
};

}  // namespace unbroken::analyze
