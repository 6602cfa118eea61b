#include "proxy/proxy_route.h"

#include "base/text.h"
#include "net/socket.h"

namespace unbroken::proxy {

namespace {
constexpr std::string_view kHttp = "http://";
constexpr std::string_view kHttps = "https://";
}  // namespace

std::optional<std::string> parse_upstream(std::string_view text, std::string& error) {
  std::string_view addr = text;
  bool tls = addr.starts_with(kHttps);
  if (tls || addr.starts_with(kHttp)) {
    addr.remove_prefix(tls ? kHttps.size() : kHttp.size());
    if (!addr.empty() && addr.back() == '/') addr.remove_suffix(1);  // http://host:port/ is the same
    if (addr.starts_with("unix:")) {
      error = "invalid upstream '" + std::string(text) + "' (use unix:/path without a scheme)";
      return std::nullopt;
    }
  } else if (!addr.starts_with("unix:")) {
    error = "invalid upstream '" + std::string(text) + "' (use http://HOST:PORT, https://HOST:PORT or unix:/path)";
    return std::nullopt;
  }
  net::AddressSyntax a = net::parse_address_syntax(addr);
  if (a.error != net::AddressError::kNone) {
    error = "invalid upstream '" + std::string(text) + "' (" + std::string(net::describe(a.error)) + ")";
    return std::nullopt;
  }
  if (!a.is_unix && (a.port == 0 || a.host.empty() || a.host == "*")) {
    error = "invalid upstream '" + std::string(text) + "' (use http://HOST:PORT with a host and a port)";
    return std::nullopt;
  }
  return tls ? std::string(kHttps) + std::string(addr) : std::string(addr);
}

UpstreamTarget split_upstream(std::string_view parsed) {
  if (!parsed.starts_with(kHttps)) return {parsed, false, {}};
  std::string_view address = parsed.substr(kHttps.size());
  return {address, true, net::parse_address_syntax(address).host};
}

std::optional<std::string> parse_prefix(std::string_view prefix, std::string& error) {
  if (prefix.empty() || prefix.front() != '/' || prefix.find_first_of("?#* \t") != std::string_view::npos) {
    error = "invalid proxy prefix '" + std::string(prefix) + "' (a path such as /api or /)";
    return std::nullopt;
  }
  while (prefix.size() > 1 && prefix.back() == '/') prefix.remove_suffix(1);
  return std::string(prefix);
}

std::optional<ProxyRoute> parse_proxy_route(std::string_view spec, std::string& error) {
  auto eq = spec.find('=');
  if (eq == std::string_view::npos) {
    error = "invalid proxy '" + std::string(spec) + "' (use PREFIX=UPSTREAM[,UPSTREAM...])";
    return std::nullopt;
  }
  ProxyRoute route;
  auto prefix = parse_prefix(spec.substr(0, eq), error);
  if (!prefix) return std::nullopt;
  route.prefix = std::move(*prefix);
  std::string_view list = spec.substr(eq + 1);
  while (!list.empty()) {
    std::string_view one = next_list_element(list);
    if (one.empty()) continue;
    auto addr = parse_upstream(one, error);
    if (!addr) return std::nullopt;
    route.upstreams.push_back(std::move(*addr));
  }
  if (route.upstreams.empty()) {
    error = "invalid proxy '" + std::string(spec) + "' (no upstream after '=')";
    return std::nullopt;
  }
  return route;
}

std::string route_pattern(std::string_view prefix) {
  if (prefix == "/") return "/*";
  return std::string(prefix) + "/*";
}

std::size_t prefix_depth(std::string_view prefix) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < prefix.size(); ++i)
    if (prefix[i] != '/' && (i == 0 || prefix[i - 1] == '/')) ++n;
  return n;
}

}  // namespace unbroken::proxy
