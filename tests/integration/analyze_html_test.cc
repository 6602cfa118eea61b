// The HTML report as a browser sees it: headless Chromium opens the file `unbroken analyze --format
// html --out` wrote, the dumped DOM has the four charts drawn from the planted log, and a screenshot
// is kept for people to look at.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <regex>
#include <set>

#include "analyze_logs.h"
#include "integration/harness.h"

namespace unbroken::testing {
namespace {

constexpr const char* kChromium = "/usr/bin/chromium";
constexpr const char* kScreenshot = "/tmp/unbroken-analyze-report.png";

// Runs Chromium isolated in dir (see run_isolated), with the flags for one output.
RunResult chromium(const std::string& url, const std::vector<std::string>& flags, const std::string& dir) {
  std::vector<std::string> argv{kChromium,
                                "--headless",
                                "--no-sandbox",
                                "--disable-gpu",
                                "--no-first-run",
                                "--disable-background-networking",
                                "--disable-component-update",
                                "--disable-sync",
                                "--disable-dev-shm-usage",
                                "--user-data-dir=" + dir + "/profile"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  argv.push_back(url);
  ChildResult c = run_isolated(argv, dir, std::chrono::seconds(45));
  return RunResult{c.status, c.out, c.err};
}

// The start tags of the elements inside <svg data-chart="chart"> that carry `attribute`.
std::vector<std::string> tags_in_chart(const std::string& dom, const std::string& chart, const std::string& attribute) {
  std::vector<std::string> tags;
  auto at = dom.find("data-chart=\"" + chart + "\"");
  if (at == std::string::npos) return tags;
  auto end = dom.find("</svg>", at);
  for (auto s = dom.find(" " + attribute + "=\"", at); s < end; s = dom.find(" " + attribute + "=\"", s + 1)) {
    auto open = dom.rfind('<', s);
    tags.push_back(dom.substr(open, dom.find('>', s) - open + 1));
  }
  return tags;
}

std::string attr(const std::string& tag, const std::string& name) {
  auto at = tag.find(" " + name + "=\"");
  if (at == std::string::npos) return "";
  at += name.size() + 3;
  return tag.substr(at, tag.find('"', at) - at);
}

double sum_values(const std::vector<std::string>& tags) {
  double s = 0;
  for (const auto& t : tags) s += std::strtod(attr(t, "data-value").c_str(), nullptr);
  return s;
}

TEST(AnalyzeHtml, ReportOpensInABrowserWithItsFourCharts) {
  if (::access(kChromium, X_OK) != 0) {
    if (std::getenv("CI") == nullptr) GTEST_SKIP() << kChromium << " is not installed";
    FAIL() << kChromium << " is not installed (CI is set, so this test must run)";
  }
  std::string dir = temp_dir();
  std::string text;
  std::int64_t conn = 0;
  for (const GenRecord& r : generate({.cliff = true, .network = true, .header_timer = true}))
    text += json_line(r, ++conn);
  write_file(dir + "/access.log", text);
  std::string html = dir + "/report.html";
  RunResult run = run_analyze({dir + "/access.log", "--format", "html", "--out", html});
  ASSERT_EQ(run.status, 0) << run.err;
  std::string file = slurp_file(html);
  // Self-contained: nothing fetched from anywhere.
  for (const char* external : {"<script", "src=", "href=", "@import", "url("}) {
    EXPECT_EQ(file.find(external), std::string::npos) << external;
  }

  RunResult dump = chromium("file://" + html, {"--dump-dom"}, dir);
  ASSERT_EQ(dump.status, 0) << dump.err.substr(dump.err.size() > 4000 ? dump.err.size() - 4000 : 0);
  const std::string& dom = dump.out;
  ASSERT_NE(dom.find("data-report=\"unbroken-analyze/1\""), std::string::npos) << dom.substr(0, 1000);

  // Findings first, the three planted ones on top.
  std::vector<std::string> kinds;
  std::regex li(R"re(<li data-kind="([a-z_]+)")re");
  for (auto it = std::sregex_iterator(dom.begin(), dom.end(), li); it != std::sregex_iterator(); ++it) {
    kinds.push_back((*it)[1]);
  }
  ASSERT_GE(kinds.size(), 3u);
  EXPECT_EQ(std::set<std::string>(kinds.begin(), kinds.begin() + 3),
            (std::set<std::string>{"cliff", "client_network", "timer"}));
  EXPECT_LT(dom.find("<ol class=\"findings\">"), dom.find("data-chart="));

  // 1. Departures over time: stacked bars whose values add up to every departure.
  auto over_time = tags_in_chart(dom, "departures-over-time", "data-value");
  EXPECT_GE(over_time.size(), 20u);
  double departures =
      std::strtod(attr(dom.substr(dom.find("<p class=\"summary\"")), "data-departures").c_str(), nullptr);
  EXPECT_GT(departures, 1000);
  EXPECT_DOUBLE_EQ(sum_values(over_time), departures);

  // 2. The outcome x phase heat map: the planted cells.
  double reset_in_response = -1, timeout_in_headers = -1;
  for (const auto& t : tags_in_chart(dom, "outcome-phase", "data-value")) {
    double v = std::strtod(attr(t, "data-value").c_str(), nullptr);
    if (attr(t, "data-outcome") == "client_reset" && attr(t, "data-phase") == "response") reset_in_response = v;
    if (attr(t, "data-outcome") == "timeout" && attr(t, "data-phase") == "request_headers") timeout_in_headers = v;
  }
  EXPECT_EQ(reset_in_response, 420);
  EXPECT_EQ(timeout_in_headers, 400);

  // 3. The duration histogram, with the 30 s cliff marked where its bars are.
  auto bins = tags_in_chart(dom, "duration-histogram", "data-from");
  EXPECT_GE(bins.size(), 10u);
  auto cliffs = tags_in_chart(dom, "duration-histogram", "data-cliff");
  bool thirty = false;
  for (const auto& c : cliffs) thirty |= std::abs(std::strtod(attr(c, "data-cliff").c_str(), nullptr) - 30.0) < 0.2;
  EXPECT_TRUE(thirty) << cliffs.size() << " cliffs marked";

  // 4. Top routes: the downloads, the header timeouts (no request line) and the cliff's route lead.
  auto routes = tags_in_chart(dom, "top-routes", "data-series");
  ASSERT_GE(routes.size(), 3u);
  std::set<std::string> top3;
  for (int i = 0; i < 3; ++i) top3.insert(attr(routes[i], "data-series"));
  EXPECT_EQ(top3, (std::set<std::string>{"GET /downloads/{id}.zip", "(no request line)", "GET /reports/{id}/export"}));
  EXPECT_EQ(attr(routes[0], "data-value"), "420");
  EXPECT_EQ(attr(routes[0], "data-requests"), "600");

  // A picture for people.
  ::unlink(kScreenshot);
  RunResult shot =
      chromium("file://" + html,
               {std::string("--screenshot=") + kScreenshot, "--window-size=1000,2400", "--hide-scrollbars"}, dir);
  EXPECT_EQ(shot.status, 0) << shot.err.substr(shot.err.size() > 4000 ? shot.err.size() - 4000 : 0);
  struct stat st {};
  EXPECT_EQ(::stat(kScreenshot, &st), 0) << "no screenshot at " << kScreenshot;
  EXPECT_GT(st.st_size, 20'000);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace
}  // namespace unbroken::testing
