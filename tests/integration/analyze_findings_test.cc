// `unbroken analyze` on generated JSON-lines logs with planted patterns: each pattern is found and
// ranked first, all three together take the first three places, and background traffic alone
// produces no cliff and no timer finding.

#include <gtest/gtest.h>
#include <simdjson.h>

#include <set>

#include "analyze_logs.h"

namespace unbroken::testing {
namespace {

class AnalyzeFindings : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = temp_dir(); }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::string write_json(const Planted& p, const std::string& name = "access.log") {
    std::string text;
    std::int64_t conn = 0;
    for (const GenRecord& r : generate(p)) text += json_line(r, ++conn);
    std::string path = dir_ + "/" + name;
    write_file(path, text);
    return path;
  }

  // The report as parsed JSON; fails the test if the run or the document is bad.
  simdjson::dom::element report(const std::vector<std::string>& args) {
    RunResult r = run_analyze(args);
    EXPECT_EQ(r.status, 0) << r.err;
    doc_ = simdjson::padded_string(r.out);
    simdjson::dom::element root;
    auto err = parser_.parse(doc_).get(root);
    EXPECT_EQ(err, simdjson::SUCCESS) << r.out.substr(0, 500);
    return root;
  }

  static std::vector<std::string> kinds(simdjson::dom::element root) {
    std::vector<std::string> out;
    for (auto f : root["findings"].get_array()) out.emplace_back(std::string_view(f["kind"]));
    return out;
  }

  std::string dir_;
  simdjson::dom::parser parser_;
  simdjson::padded_string doc_;
};

TEST_F(AnalyzeFindings, ThirtySecondCliffOnOneRouteIsFirst) {
  auto root = report({write_json({.cliff = true}), "--format", "json"});
  auto f = root["findings"].at(0);
  EXPECT_EQ(std::string_view(f["kind"]), "cliff");
  std::string_view text = f["text"];
  EXPECT_NE(text.find("GET /reports/{id}/export"), std::string_view::npos) << text;
  EXPECT_NE(text.find("30 s"), std::string_view::npos) << text;
  EXPECT_NE(text.find("No server timer fired"), std::string_view::npos) << text;
  auto c = root["cliffs"].at(0);
  EXPECT_NEAR(double(c["seconds"]), 30.0, 0.1);
  EXPECT_GE(uint64_t(c["count"]), 300u);
  EXPECT_LE(uint64_t(c["count"]), 310u);  // the pile, not the background around it
  EXPECT_TRUE(c["server_timer"].is_null());
  EXPECT_NE(std::string_view(c["known"]).find("30 s"), std::string_view::npos);
  EXPECT_EQ(std::string_view(c["routes"].at(0)["key"]), "GET /reports/{id}/export");
  EXPECT_EQ(uint64_t(c["routes"].at(0)["count"]), 300u);
}

TEST_F(AnalyzeFindings, NetworkThatAbortsSeventyPercentOfDownloadsIsFirst) {
  auto root = report({write_json({.network = true}), "--format", "json"});
  auto f = root["findings"].at(0);
  EXPECT_EQ(std::string_view(f["kind"]), "client_network");
  EXPECT_EQ(std::string_view(f["subject"]), "203.0.113.0/24");
  std::string_view text = f["text"];
  EXPECT_NE(text.find("70%"), std::string_view::npos) << text;
  EXPECT_NE(text.find("mid-response"), std::string_view::npos) << text;
  auto top = root["networks"]["by_ratio"].at(0);
  EXPECT_EQ(std::string_view(top["key"]), "203.0.113.0/24");
  EXPECT_EQ(uint64_t(top["requests"]), 600u);
  EXPECT_EQ(uint64_t(top["departures"]), 420u);
  // Delivery: written vs acknowledged for the partial responses.
  EXPECT_GE(uint64_t(root["delivery"]["partial"]), 420u);
  EXPECT_GT(uint64_t(root["delivery"]["bytes_acked"]), 0u);
  EXPECT_LT(uint64_t(root["delivery"]["bytes_acked"]), uint64_t(root["delivery"]["bytes_out_with_acked"]));
}

TEST_F(AnalyzeFindings, TimerThatFiresTooOftenIsFirst) {
  auto root = report({write_json({.header_timer = true}), "--format", "json"});
  auto f = root["findings"].at(0);
  EXPECT_EQ(std::string_view(f["kind"]), "timer");
  EXPECT_EQ(std::string_view(f["subject"]), "header");
  std::string_view text = f["text"];
  EXPECT_NE(text.find("2 s"), std::string_view::npos) << text;
  EXPECT_NE(text.find("400 requests"), std::string_view::npos) << text;
  // Its pile at 2 s is the server's own timer, not reported as somebody else's cliff.
  for (auto c : root["cliffs"].get_array()) {
    if (std::abs(double(c["seconds"]) - 2.0) < 0.1) {
      EXPECT_EQ(std::string_view(c["server_timer"]["timer"]), "header");
    }
  }
  for (const auto& k : kinds(root)) EXPECT_NE(k, "cliff");
}

TEST_F(AnalyzeFindings, AllThreePlantedPatternsTakeTheFirstThreePlaces) {
  auto root = report({write_json({.cliff = true, .network = true, .header_timer = true}), "--format", "json"});
  auto k = kinds(root);
  ASSERT_GE(k.size(), 3u);
  EXPECT_EQ(std::set<std::string>(k.begin(), k.begin() + 3),
            (std::set<std::string>{"cliff", "client_network", "timer"}));
  EXPECT_EQ(uint64_t(root["totals"]["unparsed"]), 0u);
  EXPECT_EQ(uint64_t(root["totals"]["requests"]), 4000u + 300 + 600 + 400);
}

TEST_F(AnalyzeFindings, CliffsComeFromTheDataNotFromAList) {
  // 47 s is nobody's default: found, not named.
  auto root = report({write_json({.odd_cliff_s = 47}), "--format", "json"});
  EXPECT_EQ(std::string_view(root["findings"].at(0)["kind"]), "cliff");
  auto c = root["cliffs"].at(0);
  EXPECT_NEAR(double(c["seconds"]), 47.0, 0.2);
  EXPECT_TRUE(c["known"].is_null());
}

TEST_F(AnalyzeFindings, BackgroundAloneHasNoCliffAndNoTimerFinding) {
  auto root = report({write_json({}), "--format", "json"});
  EXPECT_EQ(root["cliffs"].get_array().size(), 0u);
  for (const auto& k : kinds(root)) {
    EXPECT_NE(k, "cliff");
    EXPECT_NE(k, "timer");
    EXPECT_NE(k, "client_network");
  }
}

TEST_F(AnalyzeFindings, TextReportPutsFindingsFirstAndFitsTheWidth) {
  RunResult r = run_analyze({write_json({.cliff = true, .network = true, .header_timer = true}), "--width", "90"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto findings = r.out.find("Findings\n  1. ");
  ASSERT_NE(findings, std::string::npos) << r.out;
  EXPECT_LT(findings, r.out.find("Departures by outcome and phase"));
  EXPECT_LT(r.out.find("Departures by outcome and phase"), r.out.find("Top routes by departures"));
  for (const char* section : {"Departures over time (per ", "Top client networks (/24, /64)", "User-agent families",
                              "Timeout cliffs", "Delivery of partial responses", "Wasted work", "Space-Saving"}) {
    EXPECT_NE(r.out.find(section), std::string::npos) << section;
  }
  std::istringstream lines(r.out);
  std::string line;
  while (std::getline(lines, line)) {
    std::size_t cols = 0;
    for (unsigned char c : line) cols += (c & 0xC0) != 0x80;
    EXPECT_LE(cols, 90u) << line;
  }
}

TEST_F(AnalyzeFindings, FiltersNarrowTheReport) {
  std::string log = write_json({.cliff = true, .network = true});
  auto only_net = report({log, "--format", "json", "--client", "203.0.113.0/24"});
  EXPECT_EQ(uint64_t(only_net["totals"]["requests"]), 600u);
  EXPECT_EQ(uint64_t(only_net["totals"]["filtered_out"]), 4300u);

  auto only_reports = report({log, "--format", "json", "--route", "/reports/*"});
  EXPECT_EQ(uint64_t(only_reports["totals"]["requests"]), 300u);
  EXPECT_EQ(uint64_t(only_reports["totals"]["departures"]), 300u);

  // The first ten minutes of an hour-long log: about a sixth of it.
  auto early = report({log, "--format", "json", "--since", iso(kLogStartMs), "--until", iso(kLogStartMs + 600'000)});
  uint64_t n = early["totals"]["requests"];
  EXPECT_GT(n, 4900u / 6 - 150);
  EXPECT_LT(n, 4900u / 6 + 150);
  EXPECT_LE(early["timeline"].get_array().size(), 11u);
}

TEST_F(AnalyzeFindings, BadFlagsAndFilesAreOneLineAndExitTwo) {
  std::string log = write_json({});
  const std::vector<std::vector<std::string>> bad{
      {log, "--format", "yaml"},
      {log, "--since", "yesterday"},
      {log, "--since", "2026-11-27", "--until", "2026-11-26"},
      {log, "--client", "10.0.0.0/99"},
      {log, "--nginx-format", "$remote_addr $request"},
      {dir_ + "/missing.log"},
      {dir_ + "/*.nothing"},
      {dir_},
      {log, "--out", dir_ + "/no/such/dir/report.txt"},
      {},
  };
  for (const auto& args : bad) {
    RunResult r = run_analyze(args);
    std::string shown = args.empty() ? "(no input)" : args.back();
    EXPECT_EQ(r.status, 2) << shown;
    ASSERT_FALSE(r.err.empty()) << shown;
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "not one line: " << r.err;
    EXPECT_EQ(r.err.rfind("unbroken: ", 0), 0u) << r.err;
  }
}

}  // namespace
}  // namespace unbroken::testing
