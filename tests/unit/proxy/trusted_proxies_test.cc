// --trusted-proxies: CIDRs and plain addresses, v4 and v6, matched against the peer's address;
// a bad element is one message quoting it.

#include "proxy/trusted_proxies.h"

#include <gtest/gtest.h>

namespace unbroken::proxy {
namespace {

TrustedProxies parsed(std::string_view list) {
  std::string error;
  auto t = TrustedProxies::parse(list, error);
  EXPECT_TRUE(t) << list << ": " << error;
  return t ? *t : TrustedProxies{};
}

TEST(TrustedProxiesTest, Matches) {
  struct Case {
    std::string_view list;
    std::string_view ip;
    bool trusted;
  };
  const Case cases[] = {
      {"", "127.0.0.1", false},  // the default trusts nobody
      {"127.0.0.1", "127.0.0.1", true},
      {"127.0.0.1", "127.0.0.2", false},
      {"10.0.0.0/8", "10.255.3.4", true},
      {"10.0.0.0/8", "11.0.0.1", false},
      {"192.168.1.0/25", "192.168.1.127", true},
      {"192.168.1.0/25", "192.168.1.128", false},
      {"10.0.0.1/8", "10.9.9.9", true},  // host bits cleared
      {"0.0.0.0/0", "203.0.113.7", true},
      {"0.0.0.0/0", "2001:db8::1", false},      // an IPv4 range holds no IPv6 peer
      {"10.0.0.0/8", "::ffff:10.1.2.3", true},  // a dual-stack listener's IPv4 peer
      {"::1", "::1", true},
      {"::1", "::2", false},
      {"fd00::/8", "fdab:1::9", true},
      {"fd00::/8", "fe80::1", false},
      {"2001:db8::/33", "2001:db8:7fff::1", true},
      {"2001:db8::/33", "2001:db8:8000::1", false},
      {"10.0.0.0/8, ::1 ,192.0.2.1", "192.0.2.1", true},  // a list, with OWS
      {"10.0.0.0/8,,::1", "::1", true},                   // empty members skipped
      {"10.0.0.0/8", "not-an-ip", false},
      {"10.0.0.0/8", "", false},
  };
  for (const auto& c : cases) EXPECT_EQ(parsed(c.list).contains(c.ip), c.trusted) << c.list << " / " << c.ip;
  EXPECT_TRUE(parsed("").empty());
  EXPECT_FALSE(parsed("::1").empty());
}

TEST(TrustedProxiesTest, BadElementsAreNamed) {
  struct Case {
    std::string_view list;
    std::string_view error;
  };
  const Case cases[] = {
      {"10.0.0.0/33", "invalid trusted proxy '10.0.0.0/33' (an IPv4 prefix is 0..32)"},
      {"::/129", "invalid trusted proxy '::/129' (an IPv6 prefix is 0..128)"},
      {"10.0.0.0/", "invalid trusted proxy '10.0.0.0/' (the prefix length after '/' is not a number)"},
      {"10.0.0.0/8x", "invalid trusted proxy '10.0.0.0/8x' (the prefix length after '/' is not a number)"},
      {"10.0.0.0/-1", "invalid trusted proxy '10.0.0.0/-1' (the prefix length after '/' is not a number)"},
      {"/8", "invalid trusted proxy '/8' (use an IPv4 or IPv6 address or CIDR, e.g. 10.0.0.0/8 or fd00::/8)"},
      {"10.1", "invalid trusted proxy '10.1' (use an IPv4 or IPv6 address or CIDR, e.g. 10.0.0.0/8 or fd00::/8)"},
      {"::1,lb.internal",
       "invalid trusted proxy 'lb.internal' (use an IPv4 or IPv6 address or CIDR, e.g. 10.0.0.0/8 or fd00::/8)"},
      {"[::1]", "invalid trusted proxy '[::1]' (use an IPv4 or IPv6 address or CIDR, e.g. 10.0.0.0/8 or fd00::/8)"},
      {"1.2.3.4:80",
       "invalid trusted proxy '1.2.3.4:80' (use an IPv4 or IPv6 address or CIDR, e.g. 10.0.0.0/8 or fd00::/8)"},
  };
  for (const auto& c : cases) {
    std::string error;
    EXPECT_FALSE(TrustedProxies::parse(c.list, error)) << c.list;
    EXPECT_EQ(error, c.error);
  }
}

}  // namespace
}  // namespace unbroken::proxy
