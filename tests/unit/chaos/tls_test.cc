#include "chaos/tls.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "chaos/chaos_config.h"

namespace unbroken::chaos {
namespace {

std::string record(unsigned char type, const std::string& body) {
  std::string r{static_cast<char>(type), '\x03', '\x03', static_cast<char>(body.size() >> 8),
                static_cast<char>(body.size() & 0xff)};
  return r + body;
}

std::string alert(unsigned char description) {
  return record(21, std::string{'\x02', static_cast<char>(description)});
}

TEST(ChaosTlsAlerts, OnlyTheCleartextOnesBeforeAnyEncryptedRecord) {
  struct Case {
    std::string bytes;
    std::vector<std::string> alerts;
  };
  const std::string server_hello = record(22, std::string(80, '\x02'));
  const std::vector<Case> cases{
      {alert(40), {"handshake failure"}},
      {server_hello + alert(10), {"unexpected_message"}},
      // After change_cipher_spec or application_data, alerts are encrypted: nothing to read.
      {server_hello + record(20, "\x01") + alert(40), {}},
      {record(23, "xxxx") + alert(40), {}},
      // Not TLS at all (a plain HTTP answer): no alerts.
      {"HTTP/1.1 400 Bad Request\r\n\r\n", {}},
      {"", {}},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(cleartext_alerts(c.bytes), c.alerts) << c.bytes.size();
    // Cut anywhere, what was read whole is reported and a record cut short is not.
    for (std::size_t cut = 0; cut < c.bytes.size(); ++cut) {
      auto seen = cleartext_alerts(std::string_view(c.bytes).substr(0, cut));
      ASSERT_LE(seen.size(), c.alerts.size()) << cut;
      for (std::size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], c.alerts[i]);
    }
  }
  EXPECT_EQ(cleartext_alerts(alert(40).substr(0, 6)), std::vector<std::string>{});
}

TEST(ChaosTlsHello, ARealClientHelloWithSniForNamesOnly) {
  auto tls = TlsSetup::create("");
  Target named = parse_url("https://localhost:8443/");
  Target ip = parse_url("https://127.0.0.1:8443/");
  std::string hello = tls->client_hello(named);
  ASSERT_GT(hello.size(), 100u);
  EXPECT_EQ(hello[0], '\x16') << "a handshake record";
  EXPECT_EQ(hello[1], '\x03');
  EXPECT_EQ(hello[5], '\x01') << "a ClientHello";
  std::size_t length = (static_cast<unsigned char>(hello[3]) << 8) | static_cast<unsigned char>(hello[4]);
  EXPECT_EQ(hello.size(), 5 + length) << "one whole record, nothing after it";
  EXPECT_NE(hello.find("localhost"), std::string::npos) << "SNI";
  EXPECT_NE(hello.find("http/1.1"), std::string::npos) << "ALPN";
  std::string by_ip = tls->client_hello(ip);
  EXPECT_EQ(by_ip.find("127.0.0.1"), std::string::npos) << "no SNI for an address";
  EXPECT_NE(tls->client_hello(named), hello) << "fresh random and key share each time";
}

}  // namespace
}  // namespace unbroken::chaos
