#include "proxy/trusted_proxies.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

#include "base/text.h"

namespace unbroken::proxy {

std::optional<TrustedProxies::Bytes> TrustedProxies::address(std::string_view ip, bool& v4) {
  char text[INET6_ADDRSTRLEN];
  if (ip.empty() || ip.size() >= sizeof text) return std::nullopt;
  std::memcpy(text, ip.data(), ip.size());
  text[ip.size()] = '\0';
  Bytes b{};
  v4 = ip.find(':') == std::string_view::npos;
  if (v4) {
    // inet_pton takes dotted quads only (no "10.1", no octal), the strictness wanted here.
    if (::inet_pton(AF_INET, text, b.data() + 12) != 1) return std::nullopt;
    b[10] = b[11] = 0xff;
    return b;
  }
  if (::inet_pton(AF_INET6, text, b.data()) != 1) return std::nullopt;
  return b;
}

std::optional<TrustedProxies> TrustedProxies::parse(std::string_view list, std::string& error) {
  TrustedProxies out;
  while (!list.empty()) {
    std::string_view one = next_list_element(list);
    if (one.empty()) continue;
    auto bad = [&](std::string_view why) {
      error = "invalid trusted proxy '" + std::string(one) + "' (" + std::string(why) + ")";
      return std::nullopt;
    };
    std::string_view ip = one;
    std::optional<unsigned> bits;
    if (auto slash = one.find('/'); slash != std::string_view::npos) {
      ip = one.substr(0, slash);
      std::string_view digits = one.substr(slash + 1);
      unsigned n = 0;
      auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
      if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size())
        return bad("the prefix length after '/' is not a number");
      bits = n;
    }
    bool v4 = false;
    auto net = address(ip, v4);
    if (!net) return bad("use an IPv4 or IPv6 address or CIDR, e.g. 10.0.0.0/8 or fd00::/8");
    unsigned max = v4 ? 32 : 128;
    if (bits.value_or(max) > max) return bad(v4 ? "an IPv4 prefix is 0..32" : "an IPv6 prefix is 0..128");
    unsigned total = bits.value_or(max) + (v4 ? 96 : 0);
    // Host bits set ("10.0.0.1/8") are cleared, as nginx's set_real_ip_from does.
    for (unsigned i = 0; i < 16; ++i) {
      unsigned keep = total > i * 8 ? std::min(8u, total - i * 8) : 0;
      net->at(i) &= static_cast<std::uint8_t>(0xff00u >> keep);
    }
    out.ranges_.push_back({*net, total});
  }
  return out;
}

bool TrustedProxies::contains(std::string_view ip) const {
  if (ranges_.empty()) return false;  // the default: no parse per request
  bool v4 = false;
  auto a = address(ip, v4);
  if (!a) return false;
  for (const Range& r : ranges_) {
    unsigned whole = r.bits / 8, rest = r.bits % 8;
    if (std::memcmp(a->data(), r.net.data(), whole) != 0) continue;
    if (rest == 0 || ((a->at(whole) ^ r.net[whole]) & static_cast<std::uint8_t>(0xff00u >> rest)) == 0) return true;
  }
  return false;
}

}  // namespace unbroken::proxy
