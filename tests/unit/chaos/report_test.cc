#include "chaos/report.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <string>

namespace unbroken::chaos {
namespace {

// A report with a handshake kind: its reactions, the alerts the server sent and the client's TLS
// reasons are in both renderings, the JSON parseable.
TEST(ChaosReport, HandshakeKindsShowAlertsAndTlsReasons) {
  Report r;
  r.target = "https://127.0.0.1:8443/";
  KindStats& garbage = r.kinds[static_cast<std::size_t>(Kind::kTlsGarbage)];
  garbage.clients = 1;
  garbage.attempts = 3;
  garbage.reactions[static_cast<std::size_t>(Reaction::kClosedSilently)] = 2;
  garbage.alerts["handshake failure"] = 2;
  KindStats& idle = r.kinds[static_cast<std::size_t>(Kind::kIdle)];
  idle.clients = 1;
  idle.reactions[static_cast<std::size_t>(Reaction::kTlsError)] = 1;
  idle.tls_errors["certificate verify failed: self-signed certificate"] = 1;
  KindStats& plain = r.kinds[static_cast<std::size_t>(Kind::kPlainToTls)];
  plain.clients = 1;
  plain.statuses[400] = 4;

  std::string text = render_text(r);
  EXPECT_NE(text.find("tls-garbage"), std::string::npos) << text;
  EXPECT_NE(text.find("alert:handshake failurex2"), std::string::npos) << text;
  EXPECT_NE(text.find("(certificate verify failed: self-signed certificate 1)"), std::string::npos) << text;
  EXPECT_NE(text.find("400x4"), std::string::npos) << text;

  simdjson::dom::parser parser;
  auto doc = parser.parse(render_json(r));
  ASSERT_FALSE(doc.error()) << render_json(r);
  auto kinds = doc.value_unsafe()["kinds"];
  EXPECT_EQ(kinds["tls-garbage"]["closed_silently"].get_uint64().value_unsafe(), 2u);
  EXPECT_EQ(kinds["tls-garbage"]["alerts"]["handshake failure"].get_uint64().value_unsafe(), 2u);
  EXPECT_EQ(kinds["idle"]["tls_error"].get_uint64().value_unsafe(), 1u);
  EXPECT_EQ(
      kinds["idle"]["tls_errors"]["certificate verify failed: self-signed certificate"].get_uint64().value_unsafe(),
      1u);
  EXPECT_EQ(kinds["plain-to-tls"]["statuses"]["400"].get_uint64().value_unsafe(), 4u);
}

}  // namespace
}  // namespace unbroken::chaos
