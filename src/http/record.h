#pragma once
// What is known about one request (or one connection that ended without a request) when it ends.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

#include "http/types.h"

namespace unbroken::http {

// The reverse proxy's side of a proxied request, kept as the exchange's typed state by the proxy
// and copied into the record; absent on every other request.
struct UpstreamRecord {
  std::string_view upstream;    // as configured: "127.0.0.1:8000", "unix:/run/app.sock"
  int status = 0;               // the upstream's status; 0 before its head
  double connect_ms = 0;        // from the request to the upstream connection established
  double header_ms = 0;         // from the request to the upstream's response head
  double ms = 0;                // from the request to the end of the upstream's response (or its failure)
  std::uint64_t bytes_in = 0;   // read from the upstream
  std::uint64_t bytes_out = 0;  // written to the upstream
  bool reused = false;          // the (last) attempt went on a pooled keep-alive connection
  int retries = 0;              // attempts after the first (a stale pooled connection, a refused connect)
  std::string_view request_id;  // the X-Request-Id sent upstream; owned by the exchange's state
  std::string_view error;       // why it failed beyond the outcome (a TLS verification's reason); static text
};

// A TLS connection's side of the record; absent on plain connections. The views are OpenSSL's
// static strings or the transport's (net::TlsSession), which outlives the record.
struct TlsRecord {
  std::string_view version;  // "TLSv1.3"; empty if the handshake did not finish
  std::string_view cipher;   // "TLS_AES_128_GCM_SHA256"; empty if the handshake did not finish
  std::string_view sni;      // empty without one
  std::string_view error;    // why the handshake failed ("no shared cipher", "http request"); empty if it did not
  bool resumed = false;      // a resumed session (only meaningful once established)
  bool established = false;  // the handshake finished: version, cipher and resumed are written
};

struct RequestRecord {
  std::chrono::system_clock::time_point ts;
  std::uint64_t conn = 0;
  std::uint64_t req = 0;  // 1-based request number on the connection; 0 without a request
  std::string_view client;
  std::string_view method;
  std::string_view path;   // the request target as received
  std::string_view route;  // the router's name for it ("GET /diag/delay/{ms}"), empty before the head
  int status = 0;
  std::string_view ua;
  std::string_view referer;
  Outcome outcome = Outcome::kOk;
  Phase phase = Phase::kIdle;
  std::optional<TimerKind> timer;
  std::uint64_t timeout_ms = 0;
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  std::optional<std::uint64_t> bytes_acked;
  std::optional<std::uint64_t> bytes_unsent;
  std::string_view encoding;  // the response's Content-Encoding ("gzip", "br"); empty for identity
  double duration_ms = 0;
  double handler_ms = 0;
  bool cancelled = false;
  double wasted_ms = 0;
  std::optional<UpstreamRecord> upstream;
  std::optional<TlsRecord> tls;
};

}  // namespace unbroken::http
