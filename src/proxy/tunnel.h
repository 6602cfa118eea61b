#pragma once
// The reverse proxy's Upgrade (WebSocket and the like, RFC 9110 7.8): the client's Upgrade goes
// upstream, and when the upstream answers 101 the exchange becomes a byte tunnel both ways
// (Exchange::start_tunnel) with back-pressure both ways and one idle timer (tunnel_idle), until one
// side closes. Its end is one record, phase `tunnel`, status 101, whose outcome says who closed
// first:
//   client FIN -> client_closed, client RST -> client_reset (a failed send: broken_pipe); the
//     upstream connection is then closed (FIN), what the client had sent last forwarded first.
//   upstream FIN -> ok: what it sent reaches the client, then the client's connection closes.
//   upstream RST -> upstream_reset. No byte either way for tunnel_idle_timeout -> timeout, timer
//     tunnel_idle. A server drain -> shutdown. Each closes both sides.
// A half-close is a close: a tunnel does not relay one side's FIN and go on the other way.

#include <memory>
#include <string_view>

#include "http/exchange.h"
#include "http/response_parser.h"
#include "net/transport.h"
#include "proxy/proxy_handler.h"

namespace unbroken::proxy {

// The protocol the client asks to switch to: its Upgrade field when its Connection field also
// lists "upgrade", else "" (then Upgrade is an ordinary hop-by-hop field and is dropped).
[[nodiscard]] std::string_view requested_upgrade(const http::Request& req);

// Loop thread, after the upstream answered `ex`'s request with `head` (a 101) on `up`, whose input
// still holds what followed the head. Takes over `up` (its handler is the tunnel from now on) and
// the exchange's UpstreamRecord (bytes each way, ms). An unasked-for 101, or one the exchange cannot
// take (the client left, a head hook), is answered 502 upstream_protocol_error and `up` is closed.
void start_tunnel(std::shared_ptr<const ProxySettings> settings, http::ExchangePtr ex,
                  std::unique_ptr<net::Transport> up, const http::ParsedResponse& head);

}  // namespace unbroken::proxy
