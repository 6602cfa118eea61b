#pragma once
// The request head the proxy sends upstream: the client's method, target and fields, less the
// hop-by-hop ones (RFC 9110 7.6.1) and the framing (ours, from the body we forward), Host kept,
// X-Forwarded-For carrying the client's address, Via: 1.1 unbroken. Pure, so it is tested alone.

#include <string>
#include <string_view>

#include "http/request.h"

namespace unbroken::proxy {

// True for a field that is not forwarded: hop-by-hop ones, those the request's Connection names,
// the framing (Content-Length, Transfer-Encoding: the serializer writes ours), and the forwarding
// fields this proxy writes itself.
[[nodiscard]] bool dropped_request_field(const http::Request& req, std::string_view name);

// "203.0.113.7" from "203.0.113.7:51234", "::1" from "[::1]:51234".
[[nodiscard]] std::string_view client_ip(std::string_view client);

// Appends the whole upstream request head for `req` to `out`; with `keep_alive` false it says
// Connection: close (no pool: the connection serves this request only).
void append_forward_head(std::string& out, const http::Request& req, bool keep_alive);

}  // namespace unbroken::proxy
