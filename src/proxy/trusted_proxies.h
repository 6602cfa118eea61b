#pragma once
// --trusted-proxies: the peers whose forwarding fields (X-Forwarded-For, Forwarded, X-Request-Id)
// are believed, as IPv4 and IPv6 ranges. Parsed once at start-up; read-only afterwards, so every
// loop may ask it at once.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace unbroken::proxy {

class TrustedProxies {
 public:
  // "10.0.0.0/8,192.168.1.7,::1,fd00::/8" (CIDRs and plain addresses, v4 and v6, comma-separated;
  // empty: trust nobody). nullopt with `error` one line quoting the bad element.
  [[nodiscard]] static std::optional<TrustedProxies> parse(std::string_view list, std::string& error);

  // Whether `ip` (an address as client_ip() gives it: "203.0.113.7", "::1") is in a range. An
  // IPv4-mapped IPv6 peer ("::ffff:10.0.0.1", from a dual-stack listener) matches the IPv4 ranges.
  [[nodiscard]] bool contains(std::string_view ip) const;
  [[nodiscard]] bool empty() const { return ranges_.empty(); }

 private:
  using Bytes = std::array<std::uint8_t, 16>;  // IPv4 stored mapped (::ffff:a.b.c.d), its prefix + 96
  struct Range {
    Bytes net;
    unsigned bits;
  };
  static std::optional<Bytes> address(std::string_view ip, bool& v4);
  std::vector<Range> ranges_;
};

}  // namespace unbroken::proxy
