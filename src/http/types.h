#pragma once
// The vocabulary of departures: where a connection was (Phase), how it ended (Outcome), and which
// per-phase timer cut it (TimerKind). Names are the wire names used in logs and metrics.

#include <array>
#include <cstdint>
#include <string_view>

namespace unbroken::http {

enum class Phase : std::uint8_t {
  kIdle,            // no byte of a request yet, fresh or keep-alive
  kRequestHeaders,  // reading the request head
  kRequestBody,     // head read, reading the body, handler not started
  kHandler,         // handler running, no response byte written
  kResponse,        // response bytes written, not all of them yet
};
inline constexpr std::size_t kPhaseCount = 5;

enum class Outcome : std::uint8_t {
  kOk,
  kClientClosed,  // FIN / EOF
  kClientReset,   // ECONNRESET
  kBrokenPipe,    // EPIPE
  kTimeout,
  kProtocolError,  // malformed request
  kLimitExceeded,  // 413, 431, connection limits
  kShutdown,       // drain timeout during graceful shutdown
  kHandlerError,   // handler threw or failed
};
inline constexpr std::size_t kOutcomeCount = 9;

// kSendRate is the minimum delivery rate, judged once per send timeout while output waits for the
// client. kLinger and kRecord are housekeeping: lingering close after an error, and the short wait
// before an answered request's delivery is read. They are not timeouts a client meets.
enum class TimerKind : std::uint8_t {
  kHeader,
  kBody,
  kHandler,
  kSend,
  kKeepalive,
  kDrain,
  kSendRate,
  kLinger,
  kRecord
};
inline constexpr std::size_t kTimerCount = 9;
inline constexpr std::size_t kClientTimerCount = 7;  // header .. send_rate

constexpr std::string_view name(Phase p) {
  constexpr std::array<std::string_view, kPhaseCount> n{"idle", "request_headers", "request_body", "handler",
                                                        "response"};
  return n[static_cast<std::size_t>(p)];
}
constexpr std::string_view name(Outcome o) {
  constexpr std::array<std::string_view, kOutcomeCount> n{
      "ok",       "client_closed", "client_reset", "broken_pipe", "timeout", "protocol_error", "limit_exceeded",
      "shutdown", "handler_error"};
  return n[static_cast<std::size_t>(o)];
}
constexpr std::string_view name(TimerKind t) {
  constexpr std::array<std::string_view, kTimerCount> n{"header", "body",      "handler", "send",  "keepalive",
                                                        "drain",  "send_rate", "linger",  "record"};
  return n[static_cast<std::size_t>(t)];
}

// A client that left on its own accord, as opposed to a server-side end.
constexpr bool is_departure(Outcome o) {
  return o == Outcome::kClientClosed || o == Outcome::kClientReset || o == Outcome::kBrokenPipe;
}

}  // namespace unbroken::http
