// The reverse proxy's metrics as a scrape sees them: a few requests through gunicorn (answered 200
// and 404) and one to a port nobody listens on, then /metrics counts them per upstream, labelled
// with the upstream the access log names.

#include "integration/gunicorn_fixture.h"

namespace unbroken::testing {
namespace {

class ProxyMetricsTest : public GunicornTest {};

std::string label_of(const Server& server, const std::string& path) {
  auto rec = server.wait_record([&path](const Record& r) { return r.count("path") && r.at("path") == path; });
  if (!rec || !rec->count("upstream")) {
    ADD_FAILURE() << "no record with an upstream for " << path;
    return {};
  }
  return (*rec)["upstream"];
}

TEST_F(ProxyMetricsTest, RequestsAndFailuresAreCountedPerUpstream) {
  auto app = gunicorn("127.0.0.1:0", "metrics");
  std::uint16_t nobody = free_port();
  auto server =
      Server::start({{"--proxy", "/=" + upstream(*app), "--proxy", "/nobody=http://127.0.0.1:" + std::to_string(nobody),
                      "--upstream-connect-timeout", "2s"}});
  // Distinct targets, so that each request's record can be awaited (connections end in any order).
  const std::vector<std::string> hellos = {"/hello?n=0", "/hello?n=1", "/hello?n=2"};
  for (const std::string& target : hellos) {
    auto r = get(server->port(), target);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
  }
  auto missing = get(server->port(), "/no-such-page");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  auto refused = get(server->port(), "/nobody/x");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 502);

  // The sink counts a record before it logs it: once the records are in the log, a scrape has them all.
  std::string app_label = label_of(*server, "/no-such-page");
  for (const std::string& target : hellos) EXPECT_EQ(label_of(*server, target), app_label);
  std::string nobody_label = label_of(*server, "/nobody/x");
  ASSERT_FALSE(app_label.empty());
  EXPECT_NE(app_label.find(std::to_string(port_of(*app))), std::string::npos) << app_label;
  EXPECT_NE(nobody_label.find(std::to_string(nobody)), std::string::npos) << nobody_label;

  auto sample = [](const std::string& name, const std::string& upstream, const std::string& more) {
    return name + "{upstream=\"" + upstream + "\"" + more + "}";
  };
  EXPECT_EQ(server->metric(sample("unbroken_upstream_requests_total", app_label, ",status=\"200\"")), 3);
  EXPECT_EQ(server->metric(sample("unbroken_upstream_requests_total", app_label, ",status=\"404\"")), 1);
  EXPECT_EQ(server->metric(sample("unbroken_upstream_failures_total", nobody_label, ",outcome=\"upstream_refused\"")),
            1);
  EXPECT_EQ(server->metric(sample("unbroken_upstream_failures_total", app_label, ",outcome=\"upstream_refused\"")), 0);
  // A refused connect got no upstream status: it is a failure, never a request by status.
  std::string text = server->metrics_text();
  EXPECT_EQ(text.find("unbroken_upstream_requests_total{upstream=\"" + nobody_label + "\""), std::string::npos) << text;
  EXPECT_EQ(server->metric(sample("unbroken_upstream_header_seconds_count", app_label, "")), 4);
  EXPECT_EQ(server->metric(sample("unbroken_upstream_header_seconds_count", nobody_label, "")), 0);
  EXPECT_GE(server->metric(sample("unbroken_upstream_retries_total", app_label, "")), 0);
  // The server-wide counters are the client's view: the 502 is ours.
  EXPECT_EQ(server->metric_or_zero("unbroken_requests_total{status=\"502\"}"), 1);
}

// Passive health: an upstream that refused --upstream-max-fails times in a row is out for
// --upstream-fail-timeout; with no other, a request gets 502 upstream_unavailable at once, and
// the up gauge says so while the live upstream's says 1.
TEST_F(ProxyMetricsTest, AnUpstreamOutOfRotationIsUnavailableAtOnceAndItsGaugeSaysSo) {
  auto app = gunicorn("127.0.0.1:0", "health");
  std::uint16_t nobody = free_port();
  auto server =
      Server::start({{"--proxy", "/=" + upstream(*app), "--proxy", "/nobody=http://127.0.0.1:" + std::to_string(nobody),
                      "--upstream-max-fails", "2", "--upstream-fail-timeout", "60s"}});
  for (const char* n : {"1", "2", "3"}) {
    auto r = get(server->port(), std::string("/nobody/") + n);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 502);
  }
  ASSERT_TRUE(get(server->port(), "/hello"));
  std::vector<std::string> outcomes;
  for (const char* n : {"1", "2", "3"}) {
    auto rec = server->wait_record([&](const Record& x) { return x.at("path") == std::string("/nobody/") + n; });
    ASSERT_TRUE(rec);
    outcomes.push_back((*rec)["outcome"]);
  }
  EXPECT_EQ(outcomes, (std::vector<std::string>{"upstream_refused", "upstream_refused", "upstream_unavailable"}));
  std::string nobody_label = label_of(*server, "/nobody/1");
  std::string app_label = label_of(*server, "/hello");
  EXPECT_EQ(server->metric("unbroken_upstream_up{upstream=\"" + nobody_label + "\"}"), 0);
  EXPECT_EQ(server->metric("unbroken_upstream_up{upstream=\"" + app_label + "\"}"), 1);
  EXPECT_EQ(server->metric("unbroken_upstream_pool_idle{upstream=\"" + app_label + "\"}"), 0);  // sync workers close
}

}  // namespace
}  // namespace unbroken::testing
