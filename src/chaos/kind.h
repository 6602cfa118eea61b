#pragma once
// The client kinds of `unbroken chaos`, each a behaviour production servers meet every day, and the
// reactions a misbehaving client can observe from the server.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace unbroken::chaos {

enum class Kind : std::uint8_t {
  kGood,           // keep-alive requests; checks the status and the whole body
  kHangupWait,     // sends a request and closes before any response (the stop button)
  kAbortHead,      // part of a request head, then FIN
  kRstHead,        // part of a request head, then RST
  kAbortBody,      // a POST head and part of its body, then FIN
  kAbortResponse,  // reads part of the response, then FIN
  kRstResponse,    // reads part of the response, then RST
  kSlowloris,      // trickles the head, one byte per --trickle
  kSlowBody,       // trickles a POST body, one byte per --trickle
  kSlowRead,       // tiny receive window, reads 1 KiB per --trickle
  kStall,          // reads the response head, then stops reading
  kPipelineClose,  // three pipelined requests, then FIN at once
  kIdle,           // connects and never sends
  kRefreshStorm,   // one request again and again, each abandoned at a random moment (FIN or RST)
  // https:// targets only: the TLS handshake misbehaves (raw bytes on the socket, no TLS under them).
  kTlsAbortHandshake,  // a real ClientHello, then FIN
  kTlsRstHandshake,    // a real ClientHello, then RST
  kTlsSlowHandshake,   // a real ClientHello, a few bytes per --trickle
  kTlsGarbage,         // random bytes where a ClientHello belongs
  kPlainToTls,         // a plain HTTP request on the TLS port; reads the answer
};
inline constexpr std::size_t kKindCount = 19;

// What the server did with a misbehaving client's attempt.
enum class Reaction : std::uint8_t {
  kAnswered,        // a response head arrived (any status but 408)
  kClosed408,       // a 408 response
  kClosedSilently,  // the server closed (FIN) without a response head
  kReset,           // the server reset the connection
  kNothing,         // no reaction by the end of the run
  kLeft,            // the client left by design before a reaction could be seen
  kConnectFailed,   // the connection was refused or timed out
  kTlsError,        // TLS failed at the client: the handshake (verification, no common cipher) or a record
};
inline constexpr std::size_t kReactionCount = 8;

std::string_view name(Kind k);
std::string_view describe(Kind k);
std::optional<Kind> parse_kind(std::string_view s);
// The kinds that make sense only against a TLS port (a one-line error with an http:// target).
bool tls_only(Kind k);
std::string_view name(Reaction r);

}  // namespace unbroken::chaos
