#pragma once
// One request as the analyzer sees it, whatever log it came from: unbroken's JSON lines, nginx or
// HAProxy. Strings are views into the current input line, valid only while that line is processed.

#include <array>
#include <cstdint>
#include <limits>
#include <string_view>

#include "base/record_schema.h"

namespace unbroken::analyze {

// unbroken's own vocabulary (base/record_schema.h), so that a name the server writes is a name the
// analyzer reads. Phase and Timer each add one value the server never writes: a log that does not
// say (kUnknown, last) and a request no timer cut (kNone, first).
using schema::kOutcomeCount;
using schema::kOutcomeNames;
using schema::Outcome;

enum class Phase : std::uint8_t {
  kIdle = static_cast<std::uint8_t>(schema::Phase::kIdle),
  kRequestHeaders = static_cast<std::uint8_t>(schema::Phase::kRequestHeaders),
  kRequestBody = static_cast<std::uint8_t>(schema::Phase::kRequestBody),
  kHandler = static_cast<std::uint8_t>(schema::Phase::kHandler),
  kResponse = static_cast<std::uint8_t>(schema::Phase::kResponse),
  kTunnel = static_cast<std::uint8_t>(schema::Phase::kTunnel),
  kTlsHandshake = static_cast<std::uint8_t>(schema::Phase::kTlsHandshake),
  kUnknown = static_cast<std::uint8_t>(schema::kPhaseCount),
};
inline constexpr std::size_t kPhaseCount = schema::kPhaseCount + 1;

enum class Timer : std::uint8_t {
  kNone,
  kHeader = 1 + static_cast<std::uint8_t>(schema::TimerKind::kHeader),
  kBody = 1 + static_cast<std::uint8_t>(schema::TimerKind::kBody),
  kHandler = 1 + static_cast<std::uint8_t>(schema::TimerKind::kHandler),
  kSend = 1 + static_cast<std::uint8_t>(schema::TimerKind::kSend),
  kKeepalive = 1 + static_cast<std::uint8_t>(schema::TimerKind::kKeepalive),
  kDrain = 1 + static_cast<std::uint8_t>(schema::TimerKind::kDrain),
  kSendRate = 1 + static_cast<std::uint8_t>(schema::TimerKind::kSendRate),
  kUpstreamConnect = 1 + static_cast<std::uint8_t>(schema::TimerKind::kUpstreamConnect),
  kUpstreamHeader = 1 + static_cast<std::uint8_t>(schema::TimerKind::kUpstreamHeader),
  kUpstreamRead = 1 + static_cast<std::uint8_t>(schema::TimerKind::kUpstreamRead),
  kUpstreamSend = 1 + static_cast<std::uint8_t>(schema::TimerKind::kUpstreamSend),
  kTunnelIdle = 1 + static_cast<std::uint8_t>(schema::TimerKind::kTunnelIdle),
  kTlsHandshake = 1 + static_cast<std::uint8_t>(schema::TimerKind::kTlsHandshake),
  kLinger = 1 + static_cast<std::uint8_t>(schema::TimerKind::kLinger),
  kRecord = 1 + static_cast<std::uint8_t>(schema::TimerKind::kRecord),
};
inline constexpr std::size_t kTimerCount = schema::kTimerCount + 1;

// The server's phase and timer as the analyzer's.
constexpr Phase to_phase(schema::Phase p) {
  return static_cast<Phase>(p);
}
constexpr Timer to_timer(schema::TimerKind t) {
  return static_cast<Timer>(1 + static_cast<std::size_t>(t));
}

namespace detail {
template <std::size_t N>
constexpr std::array<std::string_view, N + 1> with(std::string_view first, const std::array<std::string_view, N>& a,
                                                   std::string_view last) {
  std::array<std::string_view, N + 1> out{};
  std::size_t i = 0;
  if (!first.empty()) out[i++] = first;
  for (std::string_view s : a) out[i++] = s;
  if (!last.empty()) out[i++] = last;
  return out;
}
}  // namespace detail

inline constexpr std::array<std::string_view, kPhaseCount> kPhaseNames =
    detail::with({}, schema::kPhaseNames, "unknown");
inline constexpr std::array<std::string_view, kTimerCount> kTimerNames = detail::with("none", schema::kTimerNames, {});
static_assert(kPhaseNames.back() == "unknown" && kTimerNames.front() == "none" && kTimerNames.back() == "record");

using schema::name;
constexpr std::string_view name(Phase p) {
  return kPhaseNames[static_cast<std::size_t>(p)];
}
constexpr std::string_view name(Timer t) {
  return kTimerNames[static_cast<std::size_t>(t)];
}

// The reverse proxy's failures: an upstream that refused, reset, timed out, answered garbage or was
// down, as opposed to a client that left (nginx's 502 and 504).
constexpr bool upstream_failure(Outcome o) {
  return o >= Outcome::kUpstreamRefused && o <= Outcome::kUpstreamUnavailable;
}
// The proxy's timers on its upstream (not the tunnel's idle timer, which waits on both sides).
constexpr bool upstream_timer(Timer t) {
  return t >= Timer::kUpstreamConnect && t <= Timer::kUpstreamSend;
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
  std::string_view route;  // the server's route name when the log has one: "GET /x/{id}", "(static)"
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

  // Proxied requests (unbroken's upstream fields, nginx's $upstream_*); upstream empty otherwise.
  std::string_view upstream;        // the upstream that answered (the last one tried): "10.0.0.5:8000"
  int upstream_status = 0;          // its status; 0 when it sent no head or the log does not say
  double upstream_connect_ms = -1;  // -1 when not logged or never connected
  double upstream_header_ms = -1;   // -1 when not logged or no head arrived
  double upstream_ms = -1;          // until its response ended or failed
  int upstream_retries = 0;         // attempts before the last one
  bool upstream_reused = false;     // the last attempt went on a pooled keep-alive connection
  std::string_view upstream_error;  // why it failed, beyond the outcome ("certificate verify failed: ...")

  // TLS connections: why the handshake failed ("no shared cipher", "http request"); empty otherwise.
  std::string_view tls_error;

  // A request that did not end with a complete response: the client left, a timer cut it, or the
  // server gave up. Everything the report calls a departure.
  [[nodiscard]] bool departed() const { return outcome != Outcome::kOk; }
  // A departure after some of the response was written. The bytes of a proxy's 502 or 504, answered
  // before any of the upstream's response, are a complete answer, not a part of one.
  [[nodiscard]] bool partial() const {
    return bytes_out > 0 && !(upstream_failure(outcome) && phase != Phase::kResponse);
  }
  // A successful GET with a body: what a cut-short finding judges (marked, inferred or counted).
  [[nodiscard]] bool download() const { return method == "GET" && status >= 200 && status < 300 && status != 204; }
};

}  // namespace unbroken::analyze
