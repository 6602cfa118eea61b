#pragma once
// A --proxy route as configured: the path prefix it takes and the upstreams that answer it. Pure
// parsing, so that the config can reject a bad one before anything starts.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace unbroken::proxy {

struct ProxyRoute {
  std::string prefix;  // "/api", or "/" for every path; no trailing slash otherwise
  // parse_upstream's form: "HOST:PORT" (from http://HOST:PORT), "https://HOST:PORT" or "unix:/path"
  std::vector<std::string> upstreams;
};

// One upstream, "http://HOST:PORT", "https://HOST:PORT" or "unix:/path": a plain one in net's
// syntax ("HOST:PORT" or "unix:/path"), an https one as "https://HOST:PORT" (split_upstream takes
// it apart). nullopt with `error` set to one line that quotes it. Also for a [[proxy]] table's
// `upstreams`. A route may mix plain and https upstreams: each connection is its upstream's own.
[[nodiscard]] std::optional<std::string> parse_upstream(std::string_view text, std::string& error);

// A parsed upstream taken apart: its address in net's syntax, and for an https:// one the host
// name its certificate is verified for and sent as SNI. Views into `parsed`.
struct UpstreamTarget {
  std::string_view address;  // "HOST:PORT" or "unix:/path"
  bool tls = false;
  std::string_view host;  // https only: HOST without the port (an IPv6 address without brackets)
};
[[nodiscard]] UpstreamTarget split_upstream(std::string_view parsed);

// A path prefix ("/api", "/api/" -> "/api", "/"), or nullopt with `error` set to one line quoting it.
[[nodiscard]] std::optional<std::string> parse_prefix(std::string_view text, std::string& error);

// Parses "PREFIX=UPSTREAM[,UPSTREAM...]" (UPSTREAM is http://HOST:PORT or unix:/path). nullopt with
// `error` set to one line that quotes the bad part.
[[nodiscard]] std::optional<ProxyRoute> parse_proxy_route(std::string_view spec, std::string& error);

// The router pattern that takes the prefix and every path under it, segment-wise: "/api" ->
// "/api/*" (matches /api, /api/x, not /apix); "/" -> "/*".
[[nodiscard]] std::string route_pattern(std::string_view prefix);

// How many path segments the prefix has: longer prefixes are mounted first, so the longest wins.
[[nodiscard]] std::size_t prefix_depth(std::string_view prefix);

}  // namespace unbroken::proxy
