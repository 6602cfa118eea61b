#pragma once
// The request head the proxy sends upstream: the client's method, target and fields, less the
// hop-by-hop ones (RFC 9110 7.6.1) and the framing (ours, from the body we forward), Host kept, and
// the forwarding fields: X-Forwarded-For/-Proto/-Host, Forwarded (RFC 7239), X-Request-Id and
// Via: 1.1 unbroken. A peer in --trusted-proxies has its forwarding fields believed (appended to,
// or kept); anyone else's are dropped and replaced. Pure, so it is tested alone.

#include <string>
#include <string_view>

#include "http/request.h"

namespace unbroken::proxy {

// What the forwarded head says beyond the client's request.
struct ForwardParams {
  bool trusted = false;             // the peer is in --trusted-proxies
  std::string_view proto = "http";  // the scheme the client used ("https" once TLS is served)
  std::string_view request_id;      // X-Request-Id (track_request's); none when empty
  // False: Connection: close (no pool: the connection serves this request only).
  bool keep_alive = true;
  // The Host an HTTP/1.0 request without one gets (HTTP/1.1 requires it upstream): the upstream's
  // name, as nginx's $proxy_host.
  std::string_view default_host = "localhost";
};

// True for a field that is not forwarded as it came: hop-by-hop ones, those the request's
// Connection names, the framing (Content-Length, Transfer-Encoding: the serializer writes ours),
// credentials meant for us, and the forwarding fields, which append_forward_head writes itself.
[[nodiscard]] bool dropped_request_field(const http::Request& req, std::string_view name, bool trusted);

// "203.0.113.7" from "203.0.113.7:51234", "::1" from "[::1]:51234".
[[nodiscard]] std::string_view client_ip(std::string_view client);

// The client's X-Request-Id when it may be kept: from a trusted peer, exactly one, 1..128 visible
// ASCII characters none of which would break a URL path (/ ? # %). Empty otherwise: make one.
[[nodiscard]] std::string_view client_request_id(const http::Request& req, bool trusted);

// Appends the whole upstream request head for `req` to `out`.
void append_forward_head(std::string& out, const http::Request& req, const ForwardParams& params);

}  // namespace unbroken::proxy
