// The reverse proxy's metrics from the records the sink sees: names, labels and values in the
// Prometheus text, the gauges from a fake source, and the dashboard's upstream rows.

#include "observe/upstream_metrics.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "observe/metrics.h"

namespace unbroken::observe {
namespace {

using http::Outcome;

http::RequestRecord proxied(std::string_view upstream, int upstream_status, double header_ms, Outcome outcome,
                            int retries = 0) {
  http::RequestRecord r;
  r.req = 1;
  r.outcome = outcome;
  r.upstream.emplace();
  r.upstream->upstream = upstream;
  r.upstream->status = upstream_status;
  r.upstream->header_ms = header_ms;
  r.upstream->retries = retries;
  return r;
}

std::string scrape(const UpstreamMetrics& m) {
  MetricsSources src;
  src.upstreams = &m;
  return render_metrics(src);
}

// The lines of the exposition that start with `prefix`.
std::vector<std::string> lines(const std::string& text, const std::string& prefix) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at < text.size()) {
    std::size_t end = text.find('\n', at);
    std::string line = text.substr(at, end - at);
    if (line.rfind(prefix, 0) == 0) out.push_back(line);
    at = end == std::string::npos ? text.size() : end + 1;
  }
  return out;
}

TEST(UpstreamMetrics, CountsRecordsByUpstreamStatusOutcomeAndRetries) {
  UpstreamMetrics m;
  const std::vector<http::RequestRecord> records = {
      proxied("127.0.0.1:8000", 200, 3, Outcome::kOk),
      proxied("127.0.0.1:8000", 200, 40, Outcome::kOk, 1),
      proxied("127.0.0.1:8000", 404, 2, Outcome::kOk),
      // The upstream answered a head, then reset mid-body: its status counts, and the failure.
      proxied("127.0.0.1:8000", 200, 7, Outcome::kUpstreamReset),
      // No head: refused, timed out. Counted only as failures.
      proxied("127.0.0.1:8001", 0, 0, Outcome::kUpstreamRefused, 2),
      proxied("127.0.0.1:8001", 0, 0, Outcome::kUpstreamTimeout),
      // A client that left before the upstream's head: no upstream status, no upstream failure.
      proxied("unix:/run/app.sock", 0, 0, Outcome::kClientClosed),
  };
  for (const auto& r : records) m.observe(r);
  http::RequestRecord plain;  // not proxied: ignored
  plain.status = 200;
  m.observe(plain);

  std::string text = scrape(m);
  EXPECT_EQ(lines(text, "unbroken_upstream_requests_total{"),
            (std::vector<std::string>{R"(unbroken_upstream_requests_total{upstream="127.0.0.1:8000",status="200"} 3)",
                                      R"(unbroken_upstream_requests_total{upstream="127.0.0.1:8000",status="404"} 1)"}))
      << text;
  auto failures = lines(text, "unbroken_upstream_failures_total{");
  EXPECT_EQ(failures.size(), 3u * 5u) << text;  // every upstream seen, every upstream_* outcome
  for (const char* want :
       {R"(unbroken_upstream_failures_total{upstream="127.0.0.1:8000",outcome="upstream_reset"} 1)",
        R"(unbroken_upstream_failures_total{upstream="127.0.0.1:8000",outcome="upstream_refused"} 0)",
        R"(unbroken_upstream_failures_total{upstream="127.0.0.1:8001",outcome="upstream_refused"} 1)",
        R"(unbroken_upstream_failures_total{upstream="127.0.0.1:8001",outcome="upstream_timeout"} 1)",
        R"(unbroken_upstream_failures_total{upstream="unix:/run/app.sock",outcome="upstream_unavailable"} 0)"})
    EXPECT_NE(std::find(failures.begin(), failures.end(), want), failures.end()) << want << "\n" << text;
  for (const std::string& line : failures) EXPECT_EQ(line.find("client_closed"), std::string::npos) << line;

  EXPECT_EQ(lines(text, "unbroken_upstream_retries_total{"),
            (std::vector<std::string>{R"(unbroken_upstream_retries_total{upstream="127.0.0.1:8000"} 1)",
                                      R"(unbroken_upstream_retries_total{upstream="127.0.0.1:8001"} 2)",
                                      R"(unbroken_upstream_retries_total{upstream="unix:/run/app.sock"} 0)"}))
      << text;

  // Header times of the four requests that got a head: 2, 3, 7 and 40 ms.
  for (const char* want : {R"(unbroken_upstream_header_seconds_count{upstream="127.0.0.1:8000"} 4)",
                           R"(unbroken_upstream_header_seconds_sum{upstream="127.0.0.1:8000"} 0.052)",
                           R"(unbroken_upstream_header_seconds_bucket{upstream="127.0.0.1:8000",le="0.001"} 0)",
                           R"(unbroken_upstream_header_seconds_bucket{upstream="127.0.0.1:8000",le="0.005"} 2)",
                           R"(unbroken_upstream_header_seconds_bucket{upstream="127.0.0.1:8000",le="0.01"} 3)",
                           R"(unbroken_upstream_header_seconds_bucket{upstream="127.0.0.1:8000",le="0.05"} 4)",
                           R"(unbroken_upstream_header_seconds_bucket{upstream="127.0.0.1:8000",le="+Inf"} 4)",
                           R"(unbroken_upstream_header_seconds_count{upstream="127.0.0.1:8001"} 0)"})
    EXPECT_NE(text.find(std::string(want) + "\n"), std::string::npos) << want << "\n" << text;
  EXPECT_NE(text.find("# TYPE unbroken_upstream_header_seconds histogram"), std::string::npos);

  // No gauge source: the proxy's gauges are absent.
  EXPECT_EQ(text.find("unbroken_upstream_pool_idle"), std::string::npos) << text;
  EXPECT_EQ(text.find("unbroken_upstream_up"), std::string::npos) << text;
}

TEST(UpstreamMetrics, GaugesComeFromTheSourceAndAreAbsentWithoutOne) {
  UpstreamMetrics m;
  m.observe(proxied("a:1", 200, 1, Outcome::kOk));
  int calls = 0;
  m.set_gauge_source([&calls] {
    ++calls;
    return std::vector<UpstreamGauge>{{"a:1", 3, true}, {"b:2", 0, false}};
  });
  std::string text = scrape(m);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(lines(text, "unbroken_upstream_pool_idle{"),
            (std::vector<std::string>{R"(unbroken_upstream_pool_idle{upstream="a:1"} 3)",
                                      R"(unbroken_upstream_pool_idle{upstream="b:2"} 0)"}))
      << text;
  EXPECT_EQ(lines(text, "unbroken_upstream_up{"),
            (std::vector<std::string>{R"(unbroken_upstream_up{upstream="a:1"} 1)",
                                      R"(unbroken_upstream_up{upstream="b:2"} 0)"}))
      << text;
  EXPECT_NE(text.find("# TYPE unbroken_upstream_up gauge"), std::string::npos);
  // An upstream the source names before any request has its counters, at zero.
  EXPECT_NE(text.find(R"(unbroken_upstream_retries_total{upstream="b:2"} 0)"), std::string::npos) << text;

  // Two routes sharing an upstream: one row of it, idle connections summed, down if either is down.
  m.set_gauge_source([] { return std::vector<UpstreamGauge>{{"a:1", 3, true}, {"a:1", 2, false}}; });
  text = scrape(m);
  EXPECT_EQ(lines(text, "unbroken_upstream_pool_idle{"),
            (std::vector<std::string>{R"(unbroken_upstream_pool_idle{upstream="a:1"} 5)"}))
      << text;
  EXPECT_EQ(lines(text, "unbroken_upstream_up{"),
            (std::vector<std::string>{R"(unbroken_upstream_up{upstream="a:1"} 0)"}))
      << text;

  // A source that names nothing, and an empty one: no gauges.
  m.set_gauge_source([] { return std::vector<UpstreamGauge>{}; });
  EXPECT_EQ(scrape(m).find("unbroken_upstream_up"), std::string::npos);
  m.set_gauge_source(nullptr);
  EXPECT_EQ(scrape(m).find("unbroken_upstream_pool_idle"), std::string::npos);
}

TEST(UpstreamMetrics, NoProxyNoFamilies) {
  UpstreamMetrics m;
  EXPECT_EQ(scrape(m).find("unbroken_upstream_"), std::string::npos);
  EXPECT_EQ(render_metrics(MetricsSources{}).find("unbroken_upstream_"), std::string::npos);
}

TEST(UpstreamMetrics, HeaderQuantilesInterpolateWithinTheirBucket) {
  UpstreamSample s;
  EXPECT_FALSE(s.header_quantile(0.5));
  s.header_buckets[0] = 50;  // <= 1 ms
  s.header_buckets[1] = 50;  // (1, 5] ms
  EXPECT_DOUBLE_EQ(*s.header_quantile(0.5), 0.001);
  EXPECT_DOUBLE_EQ(*s.header_quantile(0.75), 0.003);
  EXPECT_DOUBLE_EQ(*s.header_quantile(0.25), 0.0005);
  s.header_buckets.back() = 100;  // beyond the last bound: the highest finite one, as histogram_quantile
  EXPECT_DOUBLE_EQ(*s.header_quantile(0.99), http::kDurationBuckets.back());
}

TEST(UpstreamMetrics, ManyThreadsCountEveryRecord) {
  UpstreamMetrics m;
  constexpr int kThreads = 4, kEach = 5000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&m, t] {
      // Each thread's own upstream and a shared one: slots are added while others count.
      std::string own = "own:" + std::to_string(t);
      for (int i = 0; i < kEach; ++i) {
        m.observe(proxied("shared:1", 200, 1, Outcome::kOk, 1));
        m.observe(proxied(own, 0, 0, Outcome::kUpstreamRefused));
      }
    });
  for (auto& t : threads) t.join();
  auto snap = m.snapshot();
  ASSERT_EQ(snap.size(), 1u + kThreads);
  for (const auto& u : snap) {
    if (u.upstream == "shared:1") {
      EXPECT_EQ(u.requests(), std::uint64_t{kThreads} * kEach);
      EXPECT_EQ(u.retries, std::uint64_t{kThreads} * kEach);
    } else {
      EXPECT_EQ(u.failures[static_cast<std::size_t>(Outcome::kUpstreamRefused)], std::uint64_t{kEach}) << u.upstream;
    }
  }
}

TEST(UpstreamMetrics, PastTheLimitRecordsCountUnderOther) {
  UpstreamMetrics m;
  for (std::size_t i = 0; i < UpstreamMetrics::kMaxUpstreams + 10; ++i)
    m.observe(proxied("u" + std::to_string(i), 200, 1, Outcome::kOk));
  auto snap = m.snapshot();
  ASSERT_EQ(snap.size(), UpstreamMetrics::kMaxUpstreams);
  auto other = std::find_if(snap.begin(), snap.end(), [](const auto& u) { return u.upstream == "other"; });
  ASSERT_NE(other, snap.end());
  EXPECT_EQ(other->requests(), 11u);
}

// GET /dashboard/data's "upstreams" array (json keeps the text it points into); nullopt when the
// JSON does not parse or has no such array.
std::optional<simdjson::dom::array> upstream_rows(simdjson::dom::parser& parser, const UpstreamMetrics* m,
                                                  std::string& json) {
  MetricsSources src;
  src.upstreams = m;
  json = render_dashboard_data(src);
  simdjson::dom::array rows;
  if (parser.parse(json)["upstreams"].get(rows) != simdjson::SUCCESS) return std::nullopt;
  return rows;
}

TEST(DashboardData, UpstreamRowsAreEscapedAndCarryTheirFigures) {
  UpstreamMetrics m;
  const std::string odd = R"(unix:/run/"odd"\app.sock)";
  m.observe(proxied(odd, 200, 3, Outcome::kOk));
  m.observe(proxied(odd, 502, 4, Outcome::kOk));
  m.observe(proxied("127.0.0.1:9", 0, 0, Outcome::kUpstreamRefused));
  m.set_gauge_source([&odd] { return std::vector<UpstreamGauge>{{odd, 2, true}}; });
  simdjson::dom::parser parser;
  std::string json;
  auto rows = upstream_rows(parser, &m, json);
  ASSERT_TRUE(rows) << json;
  ASSERT_EQ(rows->size(), 2u) << json;
  // Sorted by name: "127.0.0.1:9" first.
  simdjson::dom::element refused = rows->at(0), app = rows->at(1);
  EXPECT_EQ(std::string_view(refused["upstream"]), "127.0.0.1:9");
  EXPECT_EQ(std::uint64_t(refused["requests"]), 0u);
  EXPECT_EQ(std::uint64_t(refused["failures"]["upstream_refused"]), 1u);
  EXPECT_TRUE(refused["header_p50_ms"].is_null());
  EXPECT_TRUE(refused["up"].is_null());
  EXPECT_TRUE(refused["pool_idle"].is_null());

  EXPECT_EQ(std::string_view(app["upstream"]), odd);
  EXPECT_EQ(std::uint64_t(app["requests"]), 2u);
  EXPECT_EQ(std::uint64_t(app["by_status"]["502"]), 1u);
  EXPECT_EQ(std::uint64_t(app["failures"]["upstream_reset"]), 0u);
  EXPECT_GT(double(app["header_p50_ms"]), 1.0);
  EXPECT_LE(double(app["header_p99_ms"]), 5.0);
  EXPECT_TRUE(bool(app["up"]));
  EXPECT_EQ(std::uint64_t(app["pool_idle"]), 2u);
}

TEST(DashboardData, NoProxyNoUpstreamRows) {
  UpstreamMetrics none_seen;
  for (const UpstreamMetrics* m : std::vector<const UpstreamMetrics*>{nullptr, &none_seen}) {
    simdjson::dom::parser parser;
    std::string json;
    auto rows = upstream_rows(parser, m, json);
    ASSERT_TRUE(rows) << json;
    EXPECT_EQ(rows->size(), 0u);
  }
}

}  // namespace
}  // namespace unbroken::observe
