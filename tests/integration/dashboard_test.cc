// The live dashboard as a browser sees it: the server takes a scripted mix of good and departing
// clients, then headless Chromium loads GET /dashboard from the admin listener, lets the page poll
// /dashboard/data a few times (virtual time), and the charts in the dumped DOM carry those departures.
// With the reverse proxy in front of gunicorn, the upstream panel has a row per upstream.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <thread>

#include "integration/gunicorn_fixture.h"

namespace unbroken::testing {
namespace {

constexpr const char* kChromium = "/usr/bin/chromium";
constexpr const char* kScreenshot = "/tmp/unbroken-dashboard.png";

ChildResult chromium(const std::string& url, const std::vector<std::string>& output_flags) {
  char tmpl[] = "/tmp/unbroken-chromium-XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  std::vector<std::string> argv{kChromium,
                                "--headless",
                                "--no-sandbox",
                                "--disable-gpu",
                                "--disable-quic",
                                "--no-first-run",
                                "--disable-background-networking",
                                "--disable-component-update",
                                "--disable-sync",
                                "--disable-dev-shm-usage",  // containers often have a tiny /dev/shm
                                "--user-data-dir=" + dir + "/profile",
                                "--virtual-time-budget=8000"};
  argv.insert(argv.end(), output_flags.begin(), output_flags.end());
  argv.push_back(url);
  ChildResult r = run_isolated(argv, dir, 45s);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return r;
}

// Whether the browser is here. In CI it is a dependency (scripts/install-deps): a missing one fails.
bool have_chromium() {
  if (::access(kChromium, X_OK) == 0) return true;
  if (std::getenv("CI") != nullptr)
    ADD_FAILURE() << kChromium << " is not installed (CI is set, so this test must run)";
  return false;
}

// The start tags of the elements inside <svg data-chart="chart"> (or the upstreams' <table>) that
// carry a data-series, in order.
std::vector<std::string> series_tags(const std::string& dom, const std::string& chart) {
  std::vector<std::string> tags;
  auto at = dom.find("data-chart=\"" + chart + "\"");
  if (at == std::string::npos) return tags;
  auto open = dom.rfind('<', at);
  std::string element = dom.substr(open + 1, dom.find_first_of(" >", open) - open - 1);
  auto end = dom.find("</" + element + ">", at);
  for (auto s = dom.find(" data-series=\"", at); s < end; s = dom.find(" data-series=\"", s + 1)) {
    auto open = dom.rfind('<', s);
    tags.push_back(dom.substr(open, dom.find('>', s) - open + 1));
  }
  return tags;
}

std::optional<std::string> attr(const std::string& tag, const std::string& name) {
  auto at = tag.find(" " + name + "=\"");
  if (at == std::string::npos) return std::nullopt;
  at += name.size() + 3;
  return tag.substr(at, tag.find('"', at) - at);
}

// data-value of a series in a chart; NaN when the chart or the series is missing.
double value(const std::string& dom, const std::string& chart, const std::string& series) {
  for (const std::string& tag : series_tags(dom, chart)) {
    if (attr(tag, "data-series") != series) continue;
    auto v = attr(tag, "data-value");
    return v ? std::strtod(v->c_str(), nullptr) : std::nan("");
  }
  return std::nan("");
}

// The start tag of a panel's card (upstreams, tls) carries `hidden` (serialised as hidden="").
bool card_hidden(const std::string& dom, const std::string& card = "upstreams") {
  auto at = dom.find("data-card=\"" + card + "\"");
  if (at == std::string::npos) {
    ADD_FAILURE() << "no " << card << " card in the page";
    return false;
  }
  auto open = dom.rfind('<', at);
  return attr(dom.substr(open, dom.find('>', at) - open + 1), "hidden").has_value();
}

class Dashboard : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_chromium()) GTEST_SKIP() << kChromium << " is not installed";
    server_ = Server::start({{"--header-timeout", "300ms"}});
    ASSERT_TRUE(server_->alive());
  }

  // Sends a request to a handler that would take 30 s, then leaves while it runs.
  void leave_during_handler(bool with_rst) {
    UniqueFd fd = connect_to(server_->port());
    send_all(fd.get(), "GET /diag/delay/30000 HTTP/1.1\r\nHost: t\r\n\r\n");
    if (with_rst) {
      reset(fd);
    } else {
      fd.reset();
    }
  }

  // Waits until a counter behind the dashboard reaches n. Scraped from /metrics, which sums the same
  // per-loop counters as /dashboard/data; no event announces a counter change, so this polls to a deadline.
  void expect_counter(const std::string& sample, double n) {
    auto deadline = std::chrono::steady_clock::now() + 10s;
    double v = server_->metric(sample);
    while (v < n && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(20ms);
      v = server_->metric(sample);
    }
    EXPECT_GE(v, n) << sample;
  }

  std::string dashboard_url() const {
    return "http://127.0.0.1:" + std::to_string(server_->admin_port()) + "/dashboard";
  }

  std::unique_ptr<Server> server_;
};

TEST_F(Dashboard, ChartsShowTheDeparturesInABrowser) {
  // The page itself comes from the binary.
  auto page = get(server_->admin_port(), "/dashboard");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->headers["content-type"].find("text/html"), std::string::npos);
  EXPECT_NE(page->body.find("/dashboard/data"), std::string::npos);

  // A scripted mix: good clients, clients that leave while the handler runs (FIN, then RST), and a
  // client too slow with its request head for the 300 ms header timer.
  for (int i = 0; i < 20; ++i) {
    auto ok = get(server_->port(), "/hello.txt");
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->status, 200);
  }
  for (int i = 0; i < 3; ++i) leave_during_handler(false);
  for (int i = 0; i < 2; ++i) leave_during_handler(true);
  {
    UniqueFd slow = connect_to(server_->port());
    send_all(slow.get(), "GET /hello.txt HTTP/1.1\r\n");  // and nothing more
    auto r = read_response(slow.get());
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 408);
  }
  expect_counter(R"(unbroken_disconnects_total{outcome="client_closed",phase="handler"})", 3);
  expect_counter(R"(unbroken_disconnects_total{outcome="client_reset",phase="handler"})", 2);
  expect_counter(R"(unbroken_disconnects_total{outcome="timeout",phase="request_headers"})", 1);
  expect_counter(R"(unbroken_timeouts_total{timer="header"})", 1);

  ChildResult dump = chromium(dashboard_url(), {"--dump-dom"});
  ASSERT_EQ(dump.status, 0) << dump.err.substr(dump.err.size() > 4000 ? dump.err.size() - 4000 : 0);
  const std::string& dom = dump.out;
  ASSERT_NE(dom.find("<body"), std::string::npos) << dom;

  std::smatch m;
  ASSERT_TRUE(std::regex_search(dom, m, std::regex(R"re(<body[^>]*\bdata-updates="(\d+)")re"))) << dom.substr(0, 2000);
  EXPECT_GE(std::stoi(m[1]), 2) << "the page polled /dashboard/data fewer than twice";

  EXPECT_GE(value(dom, "departures-by-outcome", "client_closed"), 3);
  EXPECT_GE(value(dom, "departures-by-outcome", "client_reset"), 2);
  EXPECT_GE(value(dom, "departures-by-outcome", "timeout"), 1);
  EXPECT_EQ(value(dom, "departures-by-outcome", "shutdown"), 0);
  EXPECT_GE(value(dom, "departures-by-phase", "handler"), 5);
  EXPECT_GE(value(dom, "departures-by-phase", "request_headers"), 1);
  EXPECT_GE(value(dom, "timeouts-by-timer", "header"), 1);
  EXPECT_EQ(value(dom, "timeouts-by-timer", "drain"), 0);

  // The route that clients left leads the top routes (its name is the method and the pattern, e.g.
  // "GET /diag/delay/{ms}"), with its requests alongside.
  auto routes = series_tags(dom, "top-routes");
  ASSERT_FALSE(routes.empty()) << "no bars in the top-routes chart";
  EXPECT_NE(attr(routes[0], "data-series").value_or("").find("/diag/delay/"), std::string::npos) << routes[0];
  EXPECT_GE(std::strtod(attr(routes[0], "data-value").value_or("0").c_str(), nullptr), 5);
  EXPECT_GE(std::strtod(attr(routes[0], "data-requests").value_or("0").c_str(), nullptr), 5);

  // Every chart is drawn, and the rate charts have their series (rates: zero or more, but present).
  for (const char* chart :
       {"request-rate", "departure-rate-by-outcome", "departure-rate-by-phase", "departures-by-outcome",
        "departures-by-phase", "timeouts-by-timer", "top-routes", "handler-cancellations", "wasted-time", "bytes-rate",
        "bytes-total", "tls-handshake-rate", "tls-handshakes"}) {
    EXPECT_NE(dom.find(std::string("data-chart=\"") + chart + "\""), std::string::npos) << chart;
  }
  EXPECT_GE(value(dom, "request-rate", "requests"), 0);
  EXPECT_GE(value(dom, "departure-rate-by-outcome", "client_closed"), 0);
  EXPECT_GE(value(dom, "handler-cancellations", "cancelled"), 0);
  EXPECT_GE(value(dom, "bytes-total", "acked") + value(dom, "bytes-total", "unacked"), 20 * 13);
  // Nothing proxied: the upstream panel stays hidden; no TLS handshake: so does the TLS panel, drawn at zero.
  EXPECT_TRUE(card_hidden(dom));
  EXPECT_TRUE(card_hidden(dom, "tls"));
  EXPECT_EQ(value(dom, "tls-handshakes", "ok"), 0);
  EXPECT_EQ(value(dom, "tls-handshakes", "protocol_error"), 0);
  EXPECT_EQ(value(dom, "departures-by-phase", "tls_handshake"), 0);
  EXPECT_EQ(value(dom, "timeouts-by-timer", "tls_handshake"), 0);

  // A picture for people: what the page looked like after those polls.
  ::unlink(kScreenshot);
  ChildResult shot = chromium(
      dashboard_url(), {std::string("--screenshot=") + kScreenshot, "--window-size=1400,1000", "--hide-scrollbars"});
  EXPECT_EQ(shot.status, 0) << shot.err.substr(shot.err.size() > 4000 ? shot.err.size() - 4000 : 0);
  struct stat st {};
  EXPECT_EQ(::stat(kScreenshot, &st), 0) << "no screenshot at " << kScreenshot;
  EXPECT_GT(st.st_size, 10'000);

  EXPECT_TRUE(server_->alive());
}

// The upstream panel with the reverse proxy in front of gunicorn and of a port nobody listens on: a
// row per upstream with its requests, its failures, and the upstreams' names as the log has them.
class ProxiedDashboard : public GunicornTest {};

TEST_F(ProxiedDashboard, TheUpstreamPanelShowsEachUpstream) {
  if (!have_chromium()) GTEST_SKIP() << kChromium << " is not installed";
  auto app = gunicorn("127.0.0.1:0", "dashboard");
  std::uint16_t nobody = free_port();
  auto server = Server::start(
      {{"--proxy", "/=" + upstream(*app), "--proxy", "/nobody=http://127.0.0.1:" + std::to_string(nobody)}});
  const std::vector<std::string> targets = {"/hello?n=0", "/hello?n=1", "/hello?n=2", "/nobody/x"};
  for (const std::string& t : targets) ASSERT_TRUE(get(server->port(), t));
  // A record in the log has been counted (the sink counts before it logs); its upstream names the row.
  std::map<std::string, std::string> upstream_of;
  for (const std::string& t : targets) {
    auto rec = server->wait_record([&t](const Record& r) { return r.count("path") && r.at("path") == t; });
    ASSERT_TRUE(rec && rec->count("upstream")) << t;
    upstream_of[t] = (*rec)["upstream"];
  }

  ChildResult dump =
      chromium("http://127.0.0.1:" + std::to_string(server->admin_port()) + "/dashboard", {"--dump-dom"});
  ASSERT_EQ(dump.status, 0) << dump.err.substr(dump.err.size() > 4000 ? dump.err.size() - 4000 : 0);
  const std::string& dom = dump.out;
  EXPECT_FALSE(card_hidden(dom));
  auto rows = series_tags(dom, "upstreams");
  ASSERT_EQ(rows.size(), 2u) << ::testing::PrintToString(rows);
  std::map<std::string, std::string> row_of;
  for (const std::string& tag : rows) row_of[attr(tag, "data-series").value_or("")] = tag;
  ASSERT_TRUE(row_of.count(upstream_of["/hello?n=0"])) << rows[0] << "\n" << rows[1];
  ASSERT_TRUE(row_of.count(upstream_of["/nobody/x"])) << rows[0] << "\n" << rows[1];
  const std::string& app_row = row_of[upstream_of["/hello?n=0"]];
  const std::string& nobody_row = row_of[upstream_of["/nobody/x"]];
  EXPECT_EQ(attr(app_row, "data-value"), "3") << app_row;
  EXPECT_EQ(attr(app_row, "data-failures"), "0") << app_row;
  EXPECT_EQ(attr(nobody_row, "data-value"), "0") << nobody_row;
  EXPECT_EQ(attr(nobody_row, "data-failures"), "1") << nobody_row;
  EXPECT_NE(dom.find("data-outcome=\"upstream_refused\""), std::string::npos);
  EXPECT_TRUE(server->alive());
}

}  // namespace
}  // namespace unbroken::testing
