// The reverse proxy's fields, as analyze reads them: unbroken's upstream_* record fields and nginx's
// $upstream_* variables (lists after retries, "-" when absent) into the same Entry, and the findings
// they give: failures piling up at one duration per upstream and route, failures by outcome.

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <simdjson.h>

#include <functional>
#include <string>
#include <vector>

#include "analyze/analyzer.h"
#include "analyze/output.h"
#include "analyze/parsers.h"
#include "json_line.h"

namespace unbroken::analyze {
namespace {

constexpr std::string_view kProxied =
    R"({"ts":"2026-11-26T23:50:01.123Z","conn":7,"req":1,"client":"127.0.0.1:53114","method":"GET",)"
    R"("path":"/api/reports/17","route":"GET /api/*","status":504,"ua":"curl/7.88.1","referer":"",)"
    R"("outcome":"upstream_timeout","phase":"handler","timer":"upstream_header","timeout_ms":60000,"bytes_in":89,)"
    R"("bytes_out":160,"duration_ms":60001.5,"handler_ms":60001.4,"cancelled":false,"wasted_ms":0.000,)"
    R"("upstream":"10.0.0.5:8000","upstream_status":0,"upstream_connect_ms":0.750,"upstream_header_ms":0.000,)"
    R"("upstream_ms":60000.250,"upstream_bytes_in":0,"upstream_bytes_out":120,"upstream_reused":true,)"
    R"("upstream_retries":1,"request_id":"4bf92f3577b34da6"})";

TEST(UpstreamJson, ReadsTheUpstreamFields) {
  JsonLineParser p;
  Entry e;
  ASSERT_TRUE(parse_json(p, kProxied, e));
  EXPECT_EQ(e.outcome, Outcome::kUpstreamTimeout);
  EXPECT_EQ(e.timer, Timer::kUpstreamHeader);
  EXPECT_EQ(e.upstream, "10.0.0.5:8000");
  EXPECT_EQ(e.upstream_status, 0);
  EXPECT_DOUBLE_EQ(e.upstream_connect_ms, 0.75);
  EXPECT_DOUBLE_EQ(e.upstream_header_ms, 0);
  EXPECT_DOUBLE_EQ(e.upstream_ms, 60000.25);
  EXPECT_EQ(e.upstream_retries, 1);
  EXPECT_TRUE(e.upstream_reused);
  EXPECT_TRUE(upstream_failure(e.outcome));
  // A request that was not proxied has none of them.
  ASSERT_TRUE(parse_json(p, R"({"status":200,"outcome":"ok","path":"/"})", e));
  EXPECT_TRUE(e.upstream.empty());
  EXPECT_EQ(e.upstream_ms, -1);
}

TEST(UpstreamJson, EveryTruncationIsRejectedAndAWrongTypeToo) {
  JsonLineParser p;
  Entry e;
  for (std::size_t n = 0; n < kProxied.size(); ++n) EXPECT_FALSE(parse_json(p, kProxied.substr(0, n), e)) << n;
  std::string bad(kProxied);
  bad.replace(bad.find(R"("upstream_status":0)"), 19, R"("upstream_status":"0")");
  EXPECT_FALSE(parse_json(p, bad, e));
  EXPECT_TRUE(parse_json(p, kProxied, e));
}

constexpr std::string_view kNginxUpstreamFormat =
    R"($remote_addr - - [$time_local] "$request" $status $body_bytes_sent $request_time "$upstream_addr" )"
    R"("$upstream_status" "$upstream_connect_time" "$upstream_header_time" "$upstream_response_time")";

NginxParser upstream_format() {
  std::string error;
  auto p = NginxParser::compile(kNginxUpstreamFormat, &error);
  EXPECT_TRUE(p) << error;
  return *p;
}

std::string nginx_line(int status, std::string_view addr, std::string_view up_status, std::string_view connect,
                       std::string_view header, std::string_view response, std::string_view path = "/api/reports/17") {
  return fmt::format(
      R"(10.0.0.1 - - [26/Nov/2026:23:50:01 +0000] "GET {} HTTP/1.1" {} 160 60.002 "{}" "{}" "{}" "{}" "{}")", path,
      status, addr, up_status, connect, header, response);
}

// nginx's own 502/504 (no $upstream_header_time) become upstream_* outcomes; an upstream's own 502
// stays a response; lists after retries give the last upstream and count the others.
TEST(UpstreamNginx, VariablesIntoTheSameFields) {
  struct Case {
    int status;
    std::string_view addr, up_status, connect, header, response;
    std::string_view upstream;
    int upstream_status, retries;
    double connect_ms, header_ms, ms;
    Outcome outcome;
    Timer timer;
  };
  const Case cases[] = {
      {200, "10.0.0.5:8000", "200", "0.001", "0.050", "0.120", "10.0.0.5:8000", 200, 0, 1, 50, 120, Outcome::kOk,
       Timer::kNone},
      {200, "-", "-", "-", "-", "-", "", 0, 0, -1, -1, -1, Outcome::kOk, Timer::kNone},
      {200, "10.0.0.5:8000, 10.0.0.6:8000", "502, 200", "-, 0.001", "-, 0.040", "0.000, 0.041", "10.0.0.6:8000", 200, 1,
       1, 40, 41, Outcome::kOk, Timer::kNone},
      {200, "10.0.0.5:8000, 10.0.0.6:8000, unix:/run/app.sock", "502, 504, 200", "-, 0.001, 0.002", "-, -, 0.003",
       "0.000, 1.000, 0.004", "unix:/run/app.sock", 200, 2, 2, 3, 4, Outcome::kOk, Timer::kNone},
      // An internal redirect (" : ") is another request, not a retry.
      {200, "10.0.0.5:8000 : unix:/run/app.sock", "404 : 200", "0.001 : 0.002", "0.003 : 0.004", "0.005 : 0.006",
       "unix:/run/app.sock", 200, 0, 2, 4, 6, Outcome::kOk, Timer::kNone},
      {504, "10.0.0.5:8000", "504", "0.001", "-", "60.001", "10.0.0.5:8000", 504, 0, 1, -1, 60001,
       Outcome::kUpstreamTimeout, Timer::kUpstreamHeader},
      {504, "[2001:db8::5]:8000", "504", "-", "-", "2.000", "[2001:db8::5]:8000", 504, 0, -1, -1, 2000,
       Outcome::kUpstreamTimeout, Timer::kUpstreamConnect},
      {502, "10.0.0.5:8000", "502", "-", "-", "0.000", "10.0.0.5:8000", 502, 0, -1, -1, 0, Outcome::kUpstreamRefused,
       Timer::kNone},
      {502, "10.0.0.5:8000", "502", "0.001", "-", "0.500", "10.0.0.5:8000", 502, 0, 1, -1, 500, Outcome::kUpstreamReset,
       Timer::kNone},
      {502, "10.0.0.5:8000", "502", "0.001", "0.010", "0.011", "10.0.0.5:8000", 502, 0, 1, 10, 11, Outcome::kOk,
       Timer::kNone},
      {502, "backend", "502", "-", "-", "-", "backend", 502, 0, -1, -1, -1, Outcome::kUpstreamUnavailable,
       Timer::kNone},
  };
  NginxParser p = upstream_format();
  for (const Case& c : cases) {
    std::string line = nginx_line(c.status, c.addr, c.up_status, c.connect, c.header, c.response);
    SCOPED_TRACE(line);
    Entry e;
    ASSERT_TRUE(p.parse(line, e));
    EXPECT_EQ(e.upstream, c.upstream);
    EXPECT_EQ(e.upstream_status, c.upstream_status);
    EXPECT_EQ(e.upstream_retries, c.retries);
    EXPECT_NEAR(e.upstream_connect_ms, c.connect_ms, 1e-9);
    EXPECT_NEAR(e.upstream_header_ms, c.header_ms, 1e-9);
    EXPECT_NEAR(e.upstream_ms, c.ms, 1e-9);
    EXPECT_EQ(name(e.outcome), name(c.outcome));
    EXPECT_EQ(name(e.timer), name(c.timer));
    EXPECT_FALSE(e.repaired);
  }
}

// Without $upstream_header_time nginx's log cannot tell its own 504 from the application's: a 504
// with an upstream is taken as the proxy's. Without $upstream_addr nothing changes.
TEST(UpstreamNginx, FormatsWithFewerVariables) {
  std::string error;
  auto addr_only = NginxParser::compile(R"($remote_addr [$time_local] "$request" $status "$upstream_addr")", &error);
  ASSERT_TRUE(addr_only) << error;
  Entry e;
  ASSERT_TRUE(addr_only->parse(R"(10.0.0.1 [26/Nov/2026:23:50:01 +0000] "GET / HTTP/1.1" 504 "10.0.0.5:8000")", e));
  EXPECT_EQ(e.outcome, Outcome::kUpstreamTimeout);
  EXPECT_EQ(e.timer, Timer::kUpstreamHeader);
  auto time_only =
      NginxParser::compile(R"($remote_addr [$time_local] "$request" $status $upstream_response_time)", &error);
  ASSERT_TRUE(time_only) << error;
  ASSERT_TRUE(time_only->parse(R"(10.0.0.1 [26/Nov/2026:23:50:01 +0000] "GET / HTTP/1.1" 504 60.001)", e));
  EXPECT_EQ(e.outcome, Outcome::kTimeout);  // classified by status, as before
  EXPECT_DOUBLE_EQ(e.upstream_ms, 60001);
  EXPECT_DOUBLE_EQ(e.handler_ms, 60001);
}

// One unbroken record of a proxied request.
std::string record(std::string_view upstream, std::string_view path, int status, std::string_view outcome,
                   std::string_view timer, double upstream_ms, bool reused = false) {
  std::string t = timer.empty() ? "" : fmt::format(R"("timer":"{}","timeout_ms":60000,)", timer);
  return fmt::format(
      R"({{"ts":"2026-11-26T23:50:01.123Z","client":"198.51.100.7:4000","method":"GET","path":"{}","route":"* /*",)"
      R"("status":{},)"
      R"("ua":"curl","outcome":"{}","phase":"{}",{}"bytes_out":10,"duration_ms":{},"handler_ms":{},)"
      R"("cancelled":false,"wasted_ms":0,"upstream":"{}","upstream_status":{},"upstream_connect_ms":0.5,)"
      R"("upstream_header_ms":{},"upstream_ms":{},"upstream_reused":{},"upstream_retries":0}})",
      path, status, outcome, outcome == "ok" ? "response" : "handler", t, upstream_ms + 0.5, upstream_ms, upstream,
      outcome == "ok" ? status : 0, outcome == "ok" ? 1.0 : 0.0, upstream_ms, reused);
}

struct Log {
  std::vector<std::string> lines;
  bool nginx = false;
};

Report analyze_lines(const Log& log) {
  Analyzer a;
  JsonLineParser json;
  NginxParser nginx = upstream_format();
  for (const std::string& line : log.lines) {
    Entry e;
    bool ok = log.nginx ? nginx.parse(line, e) : parse_json(json, line, e);
    EXPECT_TRUE(ok) << line;
    if (ok) a.add(e);
  }
  return a.finish({});
}

// Healthy traffic on other routes, the background every case stands out from.
void healthy(Log& log, int n) {
  for (int i = 0; i < n; ++i) {
    std::string upstream = i % 2 ? "10.0.0.5:8000" : "10.0.0.6:8000";
    log.lines.push_back(record(upstream, "/api/users/" + std::to_string(i), 200, "ok", "", 20 + i % 30));
  }
}

TEST(UpstreamFindings, TableOfLogsToFindings) {
  struct Case {
    std::string_view name;
    std::function<void(Log&)> make;
    std::string_view kind, subject, text;
  };
  const Case cases[] = {
      {"unbroken's header timer at 60 s on one route",
       [](Log& log) {
         healthy(log, 2000);
         for (int i = 0; i < 200; ++i)
           log.lines.push_back(record("10.0.0.5:8000", "/api/reports/" + std::to_string(i), 504, "upstream_timeout",
                                      "upstream_header", 60'000 + i % 50));
       },
       "upstream_pile", "10.0.0.5:8000 GET /api/reports/{id}",
       "upstream 10.0.0.5:8000 answers 504 at 60 s on GET /api/reports/{id}: 200 requests ended between 59.7 and "
       "60.4 s, cut by the proxy's upstream_header timer (60 s). The application takes longer than that on this "
       "route"},
      {"nginx's 504s at its proxy_read_timeout",
       [](Log& log) {
         log.nginx = true;
         for (int i = 0; i < 1000; ++i)
           log.lines.push_back(nginx_line(200, "10.0.0.6:8000", "200", "0.001", "0.020", "0.030", "/ok"));
         for (int i = 0; i < 100; ++i) {
           log.lines.push_back(nginx_line(504, "10.0.0.5:8000", "504", "0.001", "-",
                                          fmt::format("{:.3f}", 60.0 + 0.001 * (i % 20)),
                                          "/api/reports/" + std::to_string(i)));
         }
       },
       "upstream_pile", "10.0.0.5:8000 GET /api/reports/{id}",
       "upstream 10.0.0.5:8000 answers 504 at 60 s on GET /api/reports/{id}: 100 requests ended between 59.7 and "
       "60.4 s, cut by the proxy's upstream_header timer (setting not logged). The application takes longer than "
       "that on this route: make it answer sooner, or give the route a longer timer. 60 s is nginx's default "
       "proxy_read_timeout"},
      {"gunicorn kills its sync worker at 30 s",
       [](Log& log) {
         healthy(log, 1000);
         for (int i = 0; i < 60; ++i)
           log.lines.push_back(record("unix:/run/app.sock", "/export", 502, "upstream_reset", "", 30'010 + i));
       },
       "upstream_pile", "unix:/run/app.sock GET /export",
       "upstream unix:/run/app.sock answers 502 at 30 s on GET /export: 60 requests ended between 29.8 and 30.3 s, "
       "with no timer of the proxy's firing: the upstream ended them itself. 30 s is gunicorn's default worker "
       "timeout"},
      {"refusals at no particular time",
       [](Log& log) {
         healthy(log, 1000);
         for (int i = 0; i < 40; ++i)
           log.lines.push_back(record("10.0.0.7:8000", "/api/x", 502, "upstream_refused", "", i % 3));
         for (int i = 0; i < 160; ++i) log.lines.push_back(record("10.0.0.7:8000", "/api/x", 200, "ok", "", 5));
       },
       "upstream", "10.0.0.7:8000",
       "upstream 10.0.0.7:8000 failed 40 of its 200 requests (20.0%): upstream_refused 40."},
      {"resets on reused connections: the stale keep-alive race",
       [](Log& log) {
         healthy(log, 1000);
         for (int i = 0; i < 25; ++i)
           log.lines.push_back(record("10.0.0.6:8000", "/api/y", 502, "upstream_reset", "", 1, true));
       },
       "upstream", "10.0.0.6:8000",
       "upstream 10.0.0.6:8000 failed 25 of its 525 requests (4.8%): upstream_reset 25; 25 on a reused keep-alive "
       "connection"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Log log;
    c.make(log);
    Report r = analyze_lines(log);
    const Finding* found = nullptr;
    for (const Finding& f : r.findings) {
      if (f.kind == c.kind && f.subject == c.subject) found = &f;
      // The proxy's timer is the application's slowness, not the clients': no "timer" finding.
      EXPECT_FALSE(f.kind == "timer" && f.subject.starts_with("upstream")) << f.text;
      EXPECT_NE(f.kind, "cliff") << f.text;
    }
    ASSERT_NE(found, nullptr) << render_text(r, 120);
    EXPECT_TRUE(found->text.starts_with(c.text)) << found->text;
  }
}

// The upstream table in all three outputs.
TEST(UpstreamFindings, EveryOutputShowsTheUpstreams) {
  Log log;
  healthy(log, 100);
  for (int i = 0; i < 30; ++i)
    log.lines.push_back(record("10.0.0.5:8000", "/slow", 504, "upstream_timeout", "upstream_header", 60'000 + i));
  Report r = analyze_lines(log);
  ASSERT_EQ(r.upstreams.size(), 2u);
  const UpstreamRow& u = r.upstreams[0];
  EXPECT_EQ(u.upstream, "10.0.0.5:8000");
  EXPECT_EQ(u.requests, 80u);
  EXPECT_EQ(u.failures, 30u);
  EXPECT_EQ(u.by_outcome[static_cast<std::size_t>(Outcome::kUpstreamTimeout)], 30u);
  EXPECT_NEAR(u.connect_ms, 0.5, 1e-9);
  EXPECT_EQ(r.upstreams[1].failures, 0u);
  EXPECT_EQ(r.delivery.partial, 0u);  // a 504 answered before the head is no cut response
  ASSERT_EQ(r.upstream_piles.size(), 1u);
  EXPECT_EQ(r.upstream_piles[0].route, "GET /slow");
  EXPECT_EQ(r.upstream_piles[0].status, 504);

  std::string text = render_text(r, 120);
  EXPECT_NE(text.find("Upstreams (proxied requests)"), std::string::npos) << text;
  EXPECT_NE(text.find("10.0.0.5:8000: upstream_timeout 30"), std::string::npos) << text;
  EXPECT_NE(text.find("pile: 10.0.0.5:8000 GET /slow: 30 answered 504"), std::string::npos) << text;
  std::string json = render_json(r);
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  ASSERT_EQ(parser.parse(json).get(root), simdjson::SUCCESS) << json.substr(0, 400);
  EXPECT_EQ(std::string_view(root["upstreams"].at(0)["upstream"]), "10.0.0.5:8000");
  EXPECT_EQ(std::uint64_t(root["upstreams"].at(0)["by_outcome"]["upstream_timeout"]), 30u);
  EXPECT_EQ(std::string_view(root["upstream_piles"].at(0)["timer"]), "upstream_header");
  std::string html = render_html(r);
  EXPECT_NE(html.find(R"(<tr data-upstream="10.0.0.5:8000">)"), std::string::npos);
}

}  // namespace
}  // namespace unbroken::analyze
