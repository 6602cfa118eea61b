// /metrics and the dashboard's data: the TLS series summed over loops, in the exposition format, and
// one JSON object whatever an application names its routes.

#include "observe/metrics.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <sstream>

namespace unbroken::observe {
namespace {

TEST(DashboardData, RouteNamesAreEscaped) {
  const std::vector<std::string> names = {R"(GET /say/"hi")", R"(GET /back\slash)", "GET /tab\there", "GET /plain"};
  http::LoopStats loop(names.size());
  for (std::size_t i = 0; i < names.size(); ++i) {
    for (std::size_t n = 0; n <= i; ++n) loop.routes[i].requests.add();
    loop.routes[i].departures.add();
  }
  MetricsSources src;
  src.loops = {&loop};
  src.route_names = names;
  std::string json = render_dashboard_data(src);

  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(json).get(doc), simdjson::SUCCESS) << json;
  simdjson::dom::array rows;
  ASSERT_EQ(doc["top_routes"].get(rows), simdjson::SUCCESS) << json;
  std::vector<std::string> seen;
  for (simdjson::dom::element row : rows) {
    std::string_view route;
    std::uint64_t requests = 0;
    ASSERT_EQ(row["route"].get(route), simdjson::SUCCESS) << json;
    ASSERT_EQ(row["requests"].get(requests), simdjson::SUCCESS) << json;
    auto at = std::find(names.begin(), names.end(), route);
    ASSERT_NE(at, names.end()) << route;
    EXPECT_EQ(requests, static_cast<std::uint64_t>(at - names.begin()) + 1) << route;
    seen.emplace_back(route);
  }
  EXPECT_EQ(seen.size(), names.size());
}

// The sample lines of a Prometheus text exposition, "name{labels} value", comments left out.
std::vector<std::string> samples(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && line[0] != '#') out.push_back(line);
  return out;
}

bool has(const std::vector<std::string>& lines, const std::string& line) {
  return std::find(lines.begin(), lines.end(), line) != lines.end();
}

// Two loops' handshakes, summed: counts by result, and a histogram of the successful ones' durations
// (the failures are counted, not timed). The tls_handshake phase and timer are in the families that
// go by the schema's lists.
TEST(Metrics, TlsHandshakesSummedOverLoops) {
  http::LoopStats a, b;
  a.count_handshake(http::TlsResult::kOk, 0.0008);
  a.count_handshake(http::TlsResult::kOk, 0.003);
  b.count_handshake(http::TlsResult::kResumed, 0.0004);
  b.count_handshake(http::TlsResult::kOk, 20);  // past the last bound: +Inf only
  b.count_handshake(http::TlsResult::kProtocolError, 0);
  a.count_handshake(http::TlsResult::kTimeout, 0);
  a.disconnects[static_cast<std::size_t>(http::Outcome::kTimeout)][static_cast<std::size_t>(http::Phase::kTlsHandshake)]
      .add();
  a.timeouts[static_cast<std::size_t>(http::TimerKind::kTlsHandshake)].add();
  a.count_duration(0.002);
  MetricsSources src;
  src.loops = {&a, &b};
  auto lines = samples(render_metrics(src));
  for (const char* want : {
           R"(unbroken_tls_handshakes_total{result="ok"} 3)",
           R"(unbroken_tls_handshakes_total{result="resumed"} 1)",
           R"(unbroken_tls_handshakes_total{result="client_closed"} 0)",
           R"(unbroken_tls_handshakes_total{result="client_reset"} 0)",
           R"(unbroken_tls_handshakes_total{result="timeout"} 1)",
           R"(unbroken_tls_handshakes_total{result="protocol_error"} 1)",
           "unbroken_tls_handshake_seconds_count 4",
           "unbroken_tls_handshake_seconds_sum 20.0042",
           R"(unbroken_tls_handshake_seconds_bucket{le="0.0005"} 1)",
           R"(unbroken_tls_handshake_seconds_bucket{le="0.001"} 2)",
           R"(unbroken_tls_handshake_seconds_bucket{le="0.005"} 3)",
           R"(unbroken_tls_handshake_seconds_bucket{le="10"} 3)",
           R"(unbroken_tls_handshake_seconds_bucket{le="+Inf"} 4)",
           // The request histogram goes through the same code.
           "unbroken_request_duration_seconds_count 1",
           R"(unbroken_request_duration_seconds_bucket{le="0.001"} 0)",
           R"(unbroken_request_duration_seconds_bucket{le="0.005"} 1)",
           R"(unbroken_disconnects_total{outcome="timeout",phase="tls_handshake"} 1)",
           R"(unbroken_disconnects_total{outcome="client_reset",phase="tls_handshake"} 0)",
           R"(unbroken_timeouts_total{timer="tls_handshake"} 1)",
       }) {
    EXPECT_TRUE(has(lines, want)) << want << "\n" << render_metrics(src);
  }
}

// Before any TLS connection the series are there, at zero.
TEST(Metrics, TlsSeriesAreExportedAtZero) {
  http::LoopStats a;
  MetricsSources src;
  src.loops = {&a};
  auto lines = samples(render_metrics(src));
  EXPECT_TRUE(has(lines, R"(unbroken_tls_handshakes_total{result="ok"} 0)"));
  EXPECT_TRUE(has(lines, "unbroken_tls_handshake_seconds_count 0"));
  EXPECT_TRUE(has(lines, R"(unbroken_tls_handshake_seconds_bucket{le="+Inf"} 0)"));
}

TEST(DashboardData, CarriesTheTlsHandshakesAndTheirPhaseAndTimer) {
  http::LoopStats a, b;
  a.count_handshake(http::TlsResult::kOk, 0.001);
  b.count_handshake(http::TlsResult::kOk, 0.001);
  b.count_handshake(http::TlsResult::kClientReset, 0);
  b.disconnects[static_cast<std::size_t>(http::Outcome::kClientReset)]
               [static_cast<std::size_t>(http::Phase::kTlsHandshake)]
                   .add();
  b.timeouts[static_cast<std::size_t>(http::TimerKind::kTlsHandshake)].add();
  MetricsSources src;
  src.loops = {&a, &b};
  std::string json = render_dashboard_data(src);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(json).get(doc), simdjson::SUCCESS) << json;
  std::uint64_t n = 0;
  for (std::size_t k = 0; k < http::kTlsResultCount; ++k) {
    std::string_view result = http::name(static_cast<http::TlsResult>(k));
    ASSERT_EQ(doc["tls_handshakes"][result].get(n), simdjson::SUCCESS) << result << " " << json;
    EXPECT_EQ(n, result == "ok" ? 2U : result == "client_reset" ? 1U : 0U) << result;
  }
  ASSERT_EQ(doc["departures_by_phase"]["tls_handshake"].get(n), simdjson::SUCCESS) << json;
  EXPECT_EQ(n, 1U);
  ASSERT_EQ(doc["timeouts_by_timer"]["tls_handshake"].get(n), simdjson::SUCCESS) << json;
  EXPECT_EQ(n, 1U);
}

}  // namespace
}  // namespace unbroken::observe
