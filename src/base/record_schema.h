#pragma once
// The access-log record's schema, declared once: where a connection was (Phase), how it ended
// (Outcome), which per-phase timer cut it (TimerKind), their wire names, and the JSON field names.
// The server writes it (http/, observe/), analyze reads it, and the tests check both against it.
// It lives in base/ because analyze depends on base only.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace unbroken::schema {

enum class Phase : std::uint8_t {
  kIdle,            // no byte of a request yet, fresh or keep-alive
  kRequestHeaders,  // reading the request head
  kRequestBody,     // head read, reading the body, handler not started
  kHandler,         // handler running, no response byte written
  kResponse,        // response bytes written, not all of them yet
  kTunnel,          // after a 101 from an upstream: bytes relayed both ways (the reverse proxy's Upgrade)
  // A TLS connection before its handshake is done: it comes first on such a connection (before idle
  // and request_headers), but is last here so that the plain phases keep their numbers.
  kTlsHandshake,
};
inline constexpr std::array<std::string_view, 7> kPhaseNames{"idle",     "request_headers", "request_body", "handler",
                                                             "response", "tunnel",          "tls_handshake"};
inline constexpr std::size_t kPhaseCount = kPhaseNames.size();
static_assert(static_cast<std::size_t>(Phase::kTlsHandshake) + 1 == kPhaseCount);

enum class Outcome : std::uint8_t {
  kOk,
  kClientClosed,   // FIN / EOF
  kClientReset,    // ECONNRESET
  kBrokenPipe,     // EPIPE
  kTimeout,        // a TimerKind fired
  kProtocolError,  // malformed request
  kLimitExceeded,  // 413, 431, connection limits
  kShutdown,       // drain timeout during graceful shutdown
  kHandlerError,   // handler threw or failed
  // The reverse proxy's upstream failed (502, or 504 for a timeout); never a client's departure.
  kUpstreamRefused,        // the connect was refused (or the address unreachable)
  kUpstreamReset,          // the upstream closed or reset before its response was complete
  kUpstreamTimeout,        // an upstream timer fired (connect, header, read)
  kUpstreamProtocolError,  // the upstream's response was malformed
  kUpstreamUnavailable,    // no upstream could be tried
};
inline constexpr std::array<std::string_view, 14> kOutcomeNames{"ok",
                                                                "client_closed",
                                                                "client_reset",
                                                                "broken_pipe",
                                                                "timeout",
                                                                "protocol_error",
                                                                "limit_exceeded",
                                                                "shutdown",
                                                                "handler_error",
                                                                "upstream_refused",
                                                                "upstream_reset",
                                                                "upstream_timeout",
                                                                "upstream_protocol_error",
                                                                "upstream_unavailable"};
inline constexpr std::size_t kOutcomeCount = kOutcomeNames.size();
static_assert(static_cast<std::size_t>(Outcome::kUpstreamUnavailable) + 1 == kOutcomeCount);

// kSendRate is the minimum delivery rate, judged once per send timeout while output waits for the
// client. The upstream timers are the reverse proxy's (its own, on the loop's scheduler: the
// connection never arms them): connect, request sent -> response head, a pause in the
// response body, a pause in writing the request to the upstream, and an idle tunnel (after a 101). kTlsHandshake
// bounds a TLS connection's handshake, from accept to the handshake's end. kLinger and kRecord
// are housekeeping: lingering close after an error, and the short wait before an answered request's delivery is read.
// They are not timeouts a client meets, so they come after the others (metrics count only those), but a record may
// still name them.
enum class TimerKind : std::uint8_t {
  kHeader,
  kBody,
  kHandler,
  kSend,
  kKeepalive,
  kDrain,
  kSendRate,
  kUpstreamConnect,
  kUpstreamHeader,
  kUpstreamRead,
  kUpstreamSend,
  kTunnelIdle,
  kTlsHandshake,
  kLinger,
  kRecord
};
inline constexpr std::array<std::string_view, 15> kTimerNames{
    "header",          "body",          "handler",       "send",
    "keepalive",       "drain",         "send_rate",     "upstream_connect",
    "upstream_header", "upstream_read", "upstream_send", "tunnel_idle",
    "tls_handshake",   "linger",        "record"};
inline constexpr std::size_t kTimerCount = kTimerNames.size();
inline constexpr std::size_t kClientTimerCount = static_cast<std::size_t>(TimerKind::kTlsHandshake) + 1;
static_assert(static_cast<std::size_t>(TimerKind::kRecord) + 1 == kTimerCount);

constexpr std::string_view name(Phase p) {
  return kPhaseNames[static_cast<std::size_t>(p)];
}
constexpr std::string_view name(Outcome o) {
  return kOutcomeNames[static_cast<std::size_t>(o)];
}
constexpr std::string_view name(TimerKind t) {
  return kTimerNames[static_cast<std::size_t>(t)];
}

// A client that left on its own accord, as opposed to a server-side end.
constexpr bool is_departure(Outcome o) {
  return o == Outcome::kClientClosed || o == Outcome::kClientReset || o == Outcome::kBrokenPipe;
}

// The JSON-lines record's field names, in the order the writer writes them. `timer` and
// `timeout_ms` appear only when a timer fired; `route` only once the router named the request;
// `bytes_acked`, `bytes_unsent` and `encoding` only when known; the `upstream*` fields only on
// proxied requests; the `tls*` fields and `sni` only on TLS connections (`tls_error` only when the
// handshake failed, `tls_version`, `tls_cipher` and `tls_resumed` once it succeeded, `sni` when the
// client sent one).
namespace field {
inline constexpr std::string_view kTs = "ts";
inline constexpr std::string_view kConn = "conn";
inline constexpr std::string_view kReq = "req";
inline constexpr std::string_view kClient = "client";
inline constexpr std::string_view kMethod = "method";
inline constexpr std::string_view kPath = "path";
inline constexpr std::string_view kRoute = "route";
inline constexpr std::string_view kStatus = "status";
inline constexpr std::string_view kUa = "ua";
inline constexpr std::string_view kReferer = "referer";
inline constexpr std::string_view kOutcome = "outcome";
inline constexpr std::string_view kPhase = "phase";
inline constexpr std::string_view kTimer = "timer";
inline constexpr std::string_view kTimeoutMs = "timeout_ms";
inline constexpr std::string_view kBytesIn = "bytes_in";
inline constexpr std::string_view kBytesOut = "bytes_out";
inline constexpr std::string_view kBytesAcked = "bytes_acked";
inline constexpr std::string_view kBytesUnsent = "bytes_unsent";
inline constexpr std::string_view kEncoding = "encoding";
inline constexpr std::string_view kDurationMs = "duration_ms";
inline constexpr std::string_view kHandlerMs = "handler_ms";
inline constexpr std::string_view kCancelled = "cancelled";
inline constexpr std::string_view kWastedMs = "wasted_ms";
// Proxied requests only.
inline constexpr std::string_view kUpstream = "upstream";
inline constexpr std::string_view kUpstreamStatus = "upstream_status";
inline constexpr std::string_view kUpstreamConnectMs = "upstream_connect_ms";
inline constexpr std::string_view kUpstreamHeaderMs = "upstream_header_ms";
inline constexpr std::string_view kUpstreamMs = "upstream_ms";
inline constexpr std::string_view kUpstreamBytesIn = "upstream_bytes_in";
inline constexpr std::string_view kUpstreamBytesOut = "upstream_bytes_out";
inline constexpr std::string_view kUpstreamReused = "upstream_reused";
inline constexpr std::string_view kUpstreamRetries = "upstream_retries";
// Why the upstream failed, when the reason is more than the outcome says ("certificate verify failed:
// unable to get local issuer certificate" for an https:// upstream); absent otherwise.
inline constexpr std::string_view kUpstreamError = "upstream_error";
inline constexpr std::string_view kRequestId = "request_id";
// TLS connections only.
inline constexpr std::string_view kTlsVersion = "tls_version";
inline constexpr std::string_view kTlsCipher = "tls_cipher";
inline constexpr std::string_view kSni = "sni";
inline constexpr std::string_view kTlsResumed = "tls_resumed";
inline constexpr std::string_view kTlsError = "tls_error";
}  // namespace field

inline constexpr std::array<std::string_view, 39> kFieldNames{field::kTs,
                                                              field::kConn,
                                                              field::kReq,
                                                              field::kClient,
                                                              field::kMethod,
                                                              field::kPath,
                                                              field::kRoute,
                                                              field::kStatus,
                                                              field::kUa,
                                                              field::kReferer,
                                                              field::kOutcome,
                                                              field::kPhase,
                                                              field::kTimer,
                                                              field::kTimeoutMs,
                                                              field::kBytesIn,
                                                              field::kBytesOut,
                                                              field::kBytesAcked,
                                                              field::kBytesUnsent,
                                                              field::kEncoding,
                                                              field::kDurationMs,
                                                              field::kHandlerMs,
                                                              field::kCancelled,
                                                              field::kWastedMs,
                                                              field::kUpstream,
                                                              field::kUpstreamStatus,
                                                              field::kUpstreamConnectMs,
                                                              field::kUpstreamHeaderMs,
                                                              field::kUpstreamMs,
                                                              field::kUpstreamBytesIn,
                                                              field::kUpstreamBytesOut,
                                                              field::kUpstreamReused,
                                                              field::kUpstreamRetries,
                                                              field::kUpstreamError,
                                                              field::kRequestId,
                                                              field::kTlsVersion,
                                                              field::kTlsCipher,
                                                              field::kSni,
                                                              field::kTlsResumed,
                                                              field::kTlsError};

}  // namespace unbroken::schema
