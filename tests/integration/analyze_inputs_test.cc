// `unbroken analyze` on each input format's fixtures (tests/fixtures/analyze), malformed and cut-off
// lines included; gzip told by content; globs, stdin and a mix of formats in one run; and the planted
// patterns found in nginx and HAProxy logs as in unbroken's own.

#include <gtest/gtest.h>
#include <simdjson.h>

#include "analyze_logs.h"

namespace unbroken::testing {
namespace {

class AnalyzeInputs : public AnalyzeTest {
 protected:
  static std::vector<std::uint64_t> unparsed_lines(simdjson::dom::element input) {
    std::vector<std::uint64_t> v;
    for (auto n : input["first_unparsed_lines"].get_array()) v.push_back(uint64_t(n));
    return v;
  }

  static std::uint64_t outcome(simdjson::dom::element root, const char* o, const char* p) {
    return uint64_t(root["totals"]["outcome_phase"][o][p]);
  }
};

TEST_F(AnalyzeInputs, UnbrokenJsonLinesWithABadAndACutOffLine) {
  auto root = report({fixture("unbroken.jsonl")});
  simdjson::dom::element in = root["inputs"].at(0);
  EXPECT_EQ(std::string_view(in["format"]), "json");
  EXPECT_EQ(uint64_t(in["lines"]), 8u);  // the blank line is no log line
  EXPECT_EQ(uint64_t(in["unparsed"]), 2u);
  EXPECT_EQ(unparsed_lines(in), (std::vector<std::uint64_t>{5, 9}));
  EXPECT_EQ(uint64_t(root["totals"]["requests"]), 6u);
  EXPECT_EQ(outcome(root, "client_closed", "handler"), 1u);
  EXPECT_EQ(outcome(root, "client_reset", "response"), 1u);
  EXPECT_EQ(outcome(root, "broken_pipe", "handler"), 1u);
  EXPECT_EQ(outcome(root, "timeout", "request_headers"), 1u);
  EXPECT_EQ(std::string_view(root["timers"].at(0)["timer"]), "header");
  EXPECT_EQ(int64_t(root["timers"].at(0)["timeout_ms"]), 10000);
  EXPECT_EQ(uint64_t(root["delivery"]["bytes_out_with_acked"]), 262144u);
  EXPECT_EQ(uint64_t(root["delivery"]["bytes_acked"]), 131072u);
  EXPECT_EQ(uint64_t(root["delivery"]["bytes_unsent"]), 131072u);
  EXPECT_DOUBLE_EQ(double(root["wasted"]["total_ms"]), 80.0);
  EXPECT_EQ(std::string_view(root["wasted"]["by_route"].at(0)["key"]), "GET /diag/work/{id}");
}

TEST_F(AnalyzeInputs, NginxCombinedWithRequestTime) {
  auto root = report({fixture("nginx_combined.log")});
  simdjson::dom::element in = root["inputs"].at(0);
  EXPECT_EQ(std::string_view(in["format"]), "combined");  // named by its format: Apache writes it too
  EXPECT_EQ(std::string_view(in["completion"]), "inferred");
  EXPECT_EQ(uint64_t(in["lines"]), 10u);
  EXPECT_EQ(unparsed_lines(in), (std::vector<std::uint64_t>{7, 10}));  // garbage, 32 November
  // Line 8's user agent has no closing quote: read as far as it goes, counted as repaired.
  EXPECT_EQ(uint64_t(in["repaired"]), 1u);
  EXPECT_EQ(uint64_t(in["first_repaired_lines"].at(0)), 8u);
  EXPECT_EQ(uint64_t(root["totals"]["repaired"]), 1u);
  EXPECT_EQ(uint64_t(root["totals"]["requests"]), 8u);
  EXPECT_EQ(outcome(root, "client_closed", "handler"), 3u);    // 499, line 8's among them
  EXPECT_EQ(outcome(root, "timeout", "request_body"), 1u);     // 408 after a request line
  EXPECT_EQ(outcome(root, "timeout", "request_headers"), 1u);  // 408 without one
  EXPECT_EQ(outcome(root, "timeout", "handler"), 1u);          // 504
  auto route = root["routes"]["by_departures"].at(0);
  EXPECT_EQ(std::string_view(route["key"]), "GET /users/{id}/orders");  // /users/42 and /users/10 as one
  EXPECT_EQ(uint64_t(route["departures"]), 3u);
  EXPECT_EQ(uint64_t(route["requests"]), 4u);
  EXPECT_EQ(uint64_t(root["duration_histogram"]["departures_with_duration"]), 5u);
}

TEST_F(AnalyzeInputs, NginxCustomLogFormat) {
  auto root = report({fixture("nginx_custom.log"), "--nginx-format",
                      R"($time_iso8601 $remote_addr "$request" $status $request_time "$http_user_agent")"});
  simdjson::dom::element in = root["inputs"].at(0);
  EXPECT_EQ(unparsed_lines(in), (std::vector<std::uint64_t>{3}));
  EXPECT_EQ(uint64_t(root["totals"]["requests"]), 3u);
  EXPECT_EQ(uint64_t(root["totals"]["by_outcome"]["client_closed"]), 2u);
  EXPECT_EQ(std::string_view(root["user_agents"].at(0)["key"]), "Go-http-client");
  EXPECT_EQ(std::string_view(root["span"]["from"]), "2026-11-26T23:50:01.000Z");
}

TEST_F(AnalyzeInputs, HaproxyTerminationStates) {
  auto root = report({fixture("haproxy.log")});
  simdjson::dom::element in = root["inputs"].at(0);
  EXPECT_EQ(std::string_view(in["format"]), "haproxy");
  EXPECT_EQ(unparsed_lines(in), (std::vector<std::uint64_t>{7, 8}));  // cut at the length limit, not HTTP
  EXPECT_EQ(outcome(root, "client_closed", "handler"), 1u);           // CH
  EXPECT_EQ(outcome(root, "client_closed", "response"), 1u);          // CD
  EXPECT_EQ(outcome(root, "timeout", "request_headers"), 1u);         // cR
  EXPECT_EQ(outcome(root, "timeout", "handler"), 1u);                 // sH
  EXPECT_EQ(outcome(root, "handler_error", "handler"), 1u);           // SC
  EXPECT_EQ(outcome(root, "ok", "response"), 1u);                     // ----
}

TEST_F(AnalyzeInputs, GzipGlobsStdinAndMixedFormatsInOneRun) {
  std::filesystem::copy(fixture("unbroken.jsonl.gz"), dir_ + "/a.log.1");  // gzip without the name saying so
  std::filesystem::copy(fixture("haproxy.log"), dir_ + "/a.log.2");
  auto root = report({dir_ + "/a.log.*", fixture("haproxy.log.gz"), "-", fixture("truncated.log.gz")},
                     fixture("nginx_combined.log"));
  auto inputs = root["inputs"].get_array();
  ASSERT_EQ(inputs.size(), 5u);
  const std::pair<const char*, const char*> want[] = {{"json", "a.log.1"},
                                                      {"haproxy", "a.log.2"},
                                                      {"haproxy", "haproxy.log.gz"},
                                                      {"combined", "(stdin)"},
                                                      {"haproxy", "truncated.log.gz"}};
  for (std::size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(std::string_view(inputs.at(i)["format"]), want[i].first) << i;
    EXPECT_TRUE(std::string_view(inputs.at(i)["name"]).ends_with(want[i].second)) << i;
  }
  EXPECT_TRUE(bool(inputs.at(0)["gzip"]));
  EXPECT_FALSE(bool(inputs.at(1)["gzip"]));
  EXPECT_TRUE(inputs.at(2)["error"].is_null());
  // The cut-off gzip file: what could be read is counted, and the reason it stopped is named.
  EXPECT_EQ(std::string_view(inputs.at(4)["error"]), "the gzip stream is truncated");
  EXPECT_GE(uint64_t(inputs.at(4)["lines"]), 3u);
  EXPECT_EQ(uint64_t(root["totals"]["requests"]),
            6u + 6 + 6 + 8 + (uint64_t(inputs.at(4)["lines"]) - uint64_t(inputs.at(4)["unparsed"])));
}

TEST_F(AnalyzeInputs, PlantedPatternsInNginxAndHaproxyLogs) {
  std::string nginx, haproxy;
  for (const GenRecord& r : generate({.cliff = true, .network = true})) {
    nginx += nginx_line(r);
    haproxy += haproxy_line(r);
  }
  write_file(dir_ + "/nginx.log", nginx);
  write_file(dir_ + "/haproxy.log", haproxy);
  for (const char* name : {"nginx.log", "haproxy.log"}) {
    auto root = report({dir_ + "/" + name});
    EXPECT_EQ(uint64_t(root["totals"]["unparsed"]), 0u) << name;
    auto f = root["findings"].at(0);
    EXPECT_EQ(std::string_view(f["kind"]), "cliff") << name;
    EXPECT_NE(std::string_view(f["text"]).find("GET /reports/{id}/export"), std::string_view::npos) << name;
    EXPECT_NEAR(double(root["cliffs"].at(0)["seconds"]), 30.0, 0.2) << name;
    // HAProxy's termination state (CD) shows the abandoned downloads; the combined log has them as
    // 200s with fewer bytes, inferred as cut short from the size each file is served at in full.
    std::string kind;
    for (auto g : root["findings"].get_array()) {
      if (std::string_view(g["subject"]).starts_with("203.0.113.0/24")) kind = std::string_view(g["kind"]);
      if (!kind.empty()) break;
    }
    EXPECT_EQ(kind, std::string_view(name) == "haproxy.log" ? "client_network" : "cut_short") << name;
  }
}

}  // namespace
}  // namespace unbroken::testing
