// TLS records as analyze reads them: a failed handshake's tls_error into the Entry, failures counted
// by reason (or by outcome when the client left without one), one finding, and the phase
// tls_handshake in every output's phase table. The fixture is JSON lines as the server writes them.

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <simdjson.h>

#include <string>
#include <vector>

#include "analyze/analyzer.h"
#include "analyze/output.h"
#include "analyze/parsers.h"
#include "json_line.h"

namespace unbroken::analyze {
namespace {

// A handshake that ended before any request: req 0, no method or path, duration from accept.
std::string handshake(std::string_view outcome, std::string_view tls_error, int status = 0) {
  std::string timer = outcome == "timeout" ? R"("timer":"tls_handshake","timeout_ms":10000,)" : "";
  std::string error = tls_error.empty() ? "" : fmt::format(R"(,"tls_error":"{}")", tls_error);
  return fmt::format(
      R"({{"ts":"2026-12-01T10:00:00.000Z","conn":3,"req":0,"client":"203.0.113.9:41000","method":"","path":"",)"
      R"("status":{},"ua":"","referer":"","outcome":"{}","phase":"tls_handshake",{}"bytes_in":517,"bytes_out":0,)"
      R"("duration_ms":2.500,"handler_ms":0.000,"cancelled":false,"wasted_ms":0.000,"sni":"example.test"{}}})",
      status, outcome, timer, error);
}

// A request on an established TLS connection.
constexpr std::string_view kEstablished =
    R"({"ts":"2026-12-01T10:00:01.000Z","conn":4,"req":1,"client":"198.51.100.2:50000","method":"GET",)"
    R"("path":"/","route":"GET /","status":200,"ua":"curl/8","referer":"","outcome":"ok","phase":"response",)"
    R"("bytes_in":70,"bytes_out":120,"bytes_acked":120,"duration_ms":1.000,"handler_ms":0.100,"cancelled":false,)"
    R"("wasted_ms":0.000,"tls_version":"TLSv1.3","tls_cipher":"TLS_AES_128_GCM_SHA256","sni":"example.test",)"
    R"("tls_resumed":false})";

Report analyze_lines(const std::vector<std::string>& lines) {
  Analyzer a;
  JsonLineParser json;
  for (const std::string& line : lines) {
    Entry e;
    bool ok = parse_json(json, line, e);
    EXPECT_TRUE(ok) << line;
    if (ok) a.add(e);
  }
  return a.finish({});
}

TEST(TlsJson, ReadsTheHandshakesReasonAndPhase) {
  JsonLineParser p;
  Entry e;
  ASSERT_TRUE(parse_json(p, handshake("protocol_error", "no shared cipher"), e));
  EXPECT_EQ(e.outcome, Outcome::kProtocolError);
  EXPECT_EQ(e.phase, Phase::kTlsHandshake);
  EXPECT_EQ(e.tls_error, "no shared cipher");
  ASSERT_TRUE(parse_json(p, handshake("timeout", ""), e));
  EXPECT_EQ(e.timer, Timer::kTlsHandshake);
  EXPECT_EQ(name(e.timer), "tls_handshake");
  EXPECT_TRUE(e.tls_error.empty());
  ASSERT_TRUE(parse_json(p, kEstablished, e));
  EXPECT_EQ(e.outcome, Outcome::kOk);
  EXPECT_TRUE(e.tls_error.empty());
  // A wrong type is a line the reader cannot trust, as for every other field.
  EXPECT_FALSE(parse_json(p, R"({"status":0,"outcome":"protocol_error","tls_error":7})", e));
}

TEST(TlsFindings, HandshakeFailuresByReason) {
  std::vector<std::string> lines;
  for (int i = 0; i < 200; ++i) lines.emplace_back(kEstablished);
  for (int i = 0; i < 20; ++i) lines.push_back(handshake("protocol_error", "http request", 400));
  for (int i = 0; i < 12; ++i) lines.push_back(handshake("protocol_error", "no shared cipher"));
  for (int i = 0; i < 3; ++i) lines.push_back(handshake("protocol_error", "unknown ca"));
  for (int i = 0; i < 5; ++i) lines.push_back(handshake("client_closed", ""));
  for (int i = 0; i < 2; ++i) lines.push_back(handshake("timeout", ""));
  Report r = analyze_lines(lines);

  EXPECT_EQ(r.departures, 42u);
  EXPECT_EQ(r.by_phase[static_cast<std::size_t>(Phase::kTlsHandshake)], 42u);
  EXPECT_EQ(r.tls_failures.total, 42u);
  ASSERT_EQ(r.tls_failures.top.size(), 5u);
  const std::vector<std::pair<std::string, std::uint64_t>> want{
      {"http request", 20}, {"no shared cipher", 12}, {"client_closed", 5}, {"unknown ca", 3}, {"timeout", 2}};
  for (std::size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(r.tls_failures.top[i].key, want[i].first);
    EXPECT_EQ(r.tls_failures.top[i].count, want[i].second);
  }
  EXPECT_EQ(r.tls_failures.error, 0u);

  const Finding* found = nullptr;
  for (const Finding& f : r.findings)
    if (f.kind == "tls_handshake") found = &f;
  ASSERT_NE(found, nullptr) << render_text(r, 120);
  EXPECT_EQ(found->subject, "http request");
  EXPECT_EQ(found->text,
            "42 TLS handshakes failed (100.0% of departures): \"http request\" 20 (plain HTTP sent to the TLS port), "
            "\"no shared cipher\" 12 (clients offering none of the server's ciphers: old clients or scanners), "
            "client_closed 5, \"unknown ca\" 3 (clients that do not trust the certificate's issuer: is the chain "
            "complete?), timeout 2.");

  std::string text = render_text(r, 120);
  EXPECT_NE(text.find("42 TLS handshakes failed"), std::string::npos) << text;
  EXPECT_NE(text.find("tls_handshake"), std::string::npos) << "the phase column";

  std::string json = render_json(r);
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  ASSERT_EQ(parser.parse(json).get(root), simdjson::SUCCESS) << json.substr(0, 400);
  EXPECT_EQ(std::uint64_t(root["tls_handshake_failures"]["total"]), 42u);
  EXPECT_EQ(std::string_view(root["tls_handshake_failures"]["top"].at(1)["key"]), "no shared cipher");
  EXPECT_EQ(std::uint64_t(root["tls_handshake_failures"]["top"].at(1)["count"]), 12u);
  EXPECT_EQ(std::uint64_t(root["totals"]["departures_by_phase"]["tls_handshake"]), 42u);
  EXPECT_EQ(std::uint64_t(root["totals"]["outcome_phase"]["protocol_error"]["tls_handshake"]), 35u);
  EXPECT_EQ(std::uint64_t(root["upstream_errors"]["total"]), 0u);

  std::string html = render_html(r);
  EXPECT_NE(html.find(R"(data-outcome="protocol_error" data-phase="tls_handshake" data-value="35")"),
            std::string::npos);
  EXPECT_NE(html.find("42 TLS handshakes failed"), std::string::npos);
}

// No TLS failure in the log: no finding, and the JSON says zero.
TEST(TlsFindings, NoneWithoutFailures) {
  std::vector<std::string> lines(50, std::string(kEstablished));
  lines.push_back(
      std::string(kEstablished)
          .replace(std::string(kEstablished).find(R"("outcome":"ok")"), 14, R"("outcome":"client_closed")"));
  Report r = analyze_lines(lines);
  EXPECT_EQ(r.tls_failures.total, 0u);
  for (const Finding& f : r.findings) EXPECT_NE(f.kind, "tls_handshake") << f.text;
}

// An https:// upstream that failed verification says why: counted by reason like the handshakes.
TEST(UpstreamErrors, CountedByReason) {
  std::vector<std::string> lines;
  for (int i = 0; i < 10; ++i) {
    lines.push_back(
        R"({"ts":"2026-12-01T10:00:00.000Z","client":"198.51.100.2:1","method":"GET","path":"/a","status":502,)"
        R"("outcome":"upstream_protocol_error","phase":"handler","bytes_out":100,"duration_ms":5,)"
        R"("upstream":"10.0.0.5:8443","upstream_status":0,"upstream_ms":4,"upstream_retries":0,)"
        R"("upstream_error":"certificate verify failed: unable to get local issuer certificate"})");
  }
  for (int i = 0; i < 40; ++i) lines.emplace_back(kEstablished);
  Report r = analyze_lines(lines);
  EXPECT_EQ(r.upstream_errors.total, 10u);
  ASSERT_EQ(r.upstream_errors.top.size(), 1u);
  EXPECT_EQ(r.upstream_errors.top[0].key, "certificate verify failed: unable to get local issuer certificate");
  const Finding* found = nullptr;
  for (const Finding& f : r.findings)
    if (f.kind == "upstream_error") found = &f;
  ASSERT_NE(found, nullptr) << render_text(r, 120);
  EXPECT_EQ(found->text,
            "10 upstream failures gave a reason: \"certificate verify failed: unable to get local issuer "
            "certificate\" 10.");
}

}  // namespace
}  // namespace unbroken::analyze
