// `unbroken analyze` gives a picture of the traffic, not only of departures: status classes and codes,
// top routes, clients and user agents by requests, bytes served, requests over time, in text, JSON and
// HTML; a log with no departures still gets a useful report, and departure findings come first when
// there are some.

#include <gtest/gtest.h>
#include <simdjson.h>

#include "analyze_logs.h"

namespace unbroken::testing {
namespace {

class AnalyzeTraffic : public AnalyzeTest {
 protected:
  // Background traffic without departures, some of it 304 and 404; returns the bytes it served.
  std::uint64_t write_clean_log(const std::string& path) {
    std::string text;
    std::uint64_t bytes = 0;
    int i = 0;
    for (GenRecord r : generate({})) {
      if (r.outcome != "ok") continue;
      if (++i % 10 == 0) r.status = 304, r.bytes_out = 0;
      if (i % 25 == 0) r.status = 404, r.bytes_out = 150;
      bytes += static_cast<std::uint64_t>(r.bytes_out);
      text += nginx_line(r);
    }
    write_file(path, text);
    return bytes;
  }
};

TEST_F(AnalyzeTraffic, ALogWithoutDeparturesStillGetsAPictureOfItsTraffic) {
  const std::string log = dir_ + "/access.log";
  const std::uint64_t bytes = write_clean_log(log);
  RunResult json = run_analyze({log, "--format", "json"});
  ASSERT_EQ(json.status, 0) << json.err;
  simdjson::dom::parser parser;
  simdjson::padded_string doc(json.out);
  simdjson::dom::element root;
  ASSERT_EQ(parser.parse(doc).get(root), simdjson::SUCCESS);
  const uint64_t requests = root["totals"]["requests"];
  ASSERT_EQ(uint64_t(root["totals"]["departures"]), 0u);
  auto t = root["traffic"];
  EXPECT_EQ(uint64_t(t["bytes_out"]), bytes);
  auto classes = t["status_classes"];
  EXPECT_EQ(uint64_t(classes["2xx"]) + uint64_t(classes["3xx"]) + uint64_t(classes["4xx"]), requests);
  EXPECT_GT(uint64_t(classes["3xx"]), requests / 15);
  EXPECT_EQ(uint64_t(t["statuses"].at(0)["status"]), 200u);
  std::uint64_t routed = 0;
  for (auto row : t["routes"].get_array()) routed += uint64_t(row["requests"]);
  EXPECT_GT(routed, requests * 9 / 10);  // eight routes: the top twenty hold them all
  EXPECT_GT(uint64_t(t["routes"].at(0)["bytes"]), 0u);
  EXPECT_GT(t["clients"].get_array().size(), 10u);
  EXPECT_EQ(t["user_agents"].get_array().size(), 4u);
  std::uint64_t over_time = 0, bytes_over_time = 0;
  for (auto b : root["timeline"].get_array())
    over_time += uint64_t(b["requests"]), bytes_over_time += uint64_t(b["bytes"]);
  EXPECT_EQ(over_time, requests);
  EXPECT_EQ(bytes_over_time, bytes);

  RunResult text = run_analyze({log, "--width", "100"});
  for (const char* section : {"Traffic", "Requests over time (per ", "Top routes by requests",
                              "Top clients by requests", "User agents by requests", "3xx"}) {
    EXPECT_NE(text.out.find(section), std::string::npos) << section << "\n" << text.out;
  }
  EXPECT_EQ(text.out.find("Timeout cliffs"), std::string::npos) << "departure sections with no departure";

  RunResult html = run_analyze({log, "--format", "html", "--out", dir_ + "/report.html"});
  ASSERT_EQ(html.status, 0) << html.err;
  std::string page = slurp_file(dir_ + "/report.html");
  for (const char* part : {R"(data-chart="requests-over-time")", R"(data-table="status-classes")",
                           "Top routes by requests", "Top clients by requests", "User agents by requests"}) {
    EXPECT_NE(page.find(part), std::string::npos) << part;
  }
}

TEST_F(AnalyzeTraffic, DepartureFindingsComeFirstWhenThereAreAny) {
  std::string text;
  std::int64_t conn = 0;
  for (const GenRecord& r : generate({.cliff = true})) text += json_line(r, ++conn);
  write_file(dir_ + "/access.log", text);
  RunResult r = run_analyze({dir_ + "/access.log", "--width", "100"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto findings = r.out.find("Findings\n  1. ");
  ASSERT_NE(findings, std::string::npos);
  const auto departures = r.out.find("Departures by outcome and phase"), traffic = r.out.find("\nTraffic\n");
  ASSERT_NE(traffic, std::string::npos) << r.out;
  EXPECT_LT(findings, departures);
  EXPECT_LT(departures, traffic);
  ASSERT_EQ(run_analyze({dir_ + "/access.log", "--format", "html", "--out", dir_ + "/r.html"}).status, 0);
  std::string page = slurp_file(dir_ + "/r.html");
  const auto chart = page.find(R"(data-chart="departures-over-time")");
  const auto requests = page.find(R"(data-chart="requests-over-time")");
  ASSERT_NE(requests, std::string::npos);
  EXPECT_LT(page.find(R"(<ol class="findings">)"), chart);
  EXPECT_LT(chart, requests);
}

}  // namespace
}  // namespace unbroken::testing
