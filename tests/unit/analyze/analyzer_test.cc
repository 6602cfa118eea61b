// The analyzer on entries built in the test: cliffs from the data, the server's own timer told apart,
// hostile numbers that cannot break the report, a timeline that stays bounded.

#include "analyze/analyzer.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <cmath>
#include <limits>
#include <map>
#include <random>

#include "analyze/output.h"

namespace unbroken::analyze {
namespace {

constexpr std::int64_t kStart = 1'795'000'000'000;

Entry request(std::int64_t ts, std::string_view path, double duration_ms, Outcome outcome = Outcome::kOk) {
  Entry e;
  e.ts_ms = ts;
  e.client = "198.51.100.7:4000";
  e.method = "GET";
  e.path = path;
  e.status = outcome == Outcome::kOk ? 200 : 499;
  e.outcome = outcome;
  e.phase = outcome == Outcome::kOk ? Phase::kResponse : Phase::kHandler;
  e.duration_ms = duration_ms;
  return e;
}

// Background departures spread evenly over 0.1 .. 100 s.
void background(Analyzer& a, int n, std::mt19937& rng) {
  std::uniform_real_distribution<double> d(100, 100'000);
  for (int i = 0; i < n; ++i) a.add(request(kStart + i, "/spread", d(rng), Outcome::kClientClosed));
}

TEST(Analyzer, FindsAPileAtAnyValueAndTheRoutesInIt) {
  for (double seconds : {3.0, 47.0, 59.9, 100.0, 240.0}) {
    Analyzer a;
    std::mt19937 rng(3);
    background(a, 3000, rng);
    std::uniform_real_distribution<double> jitter(-0.002, 0.002);  // ±0.2%
    for (int i = 0; i < 150; ++i) {
      a.add(
          request(kStart + i, "/pile/" + std::to_string(i), seconds * 1000 * (1 + jitter(rng)), Outcome::kClientReset));
    }
    Report r = a.finish({});
    ASSERT_FALSE(r.cliffs.empty()) << seconds;
    const Cliff& c = r.cliffs[0];
    EXPECT_NEAR(c.seconds, seconds, seconds * 0.005) << seconds;
    EXPECT_GE(c.count, 150u) << seconds;
    EXPECT_LT(c.count, 175u) << seconds;
    ASSERT_FALSE(c.routes.empty());
    EXPECT_EQ(c.routes[0].key, "GET /pile/{id}");
    EXPECT_EQ(c.known.empty(), seconds != 59.9 && seconds != 100.0) << seconds << ": " << c.known;
    EXPECT_EQ(r.cliffs.size(), 1u) << "the evenly spread background made a cliff of its own";
  }
}

TEST(Analyzer, APileTheServerTimerMadeIsAttributedToIt) {
  Analyzer a;
  std::mt19937 rng(4);
  background(a, 2000, rng);
  for (int i = 0; i < 200; ++i) {
    Entry e = request(kStart + i, "/upload", 30'000 + i % 7, Outcome::kTimeout);
    e.timer = Timer::kBody;
    e.timeout_ms = 30'000;
    a.add(e);
  }
  Report r = a.finish({});
  ASSERT_FALSE(r.cliffs.empty());
  EXPECT_EQ(r.cliffs[0].server_timer, Timer::kBody);
  EXPECT_EQ(r.cliffs[0].server_timeout_ms, 30'000);
  ASSERT_FALSE(r.findings.empty());
  EXPECT_EQ(r.findings[0].kind, "timer");
  for (const Finding& f : r.findings) EXPECT_NE(f.kind, "cliff") << f.text;
}

TEST(Analyzer, HostileNumbersLeaveTheReportValid) {
  Analyzer a;
  const double inf = std::numeric_limits<double>::infinity();
  for (double d : {-1.0, 0.0, 1e308, std::nan(""), inf, -inf, 599'999.0, 600'000.0}) {
    Entry e = request(kStart, "/x", d, Outcome::kBrokenPipe);
    e.wasted_ms = d;
    e.bytes_out = 10;
    e.bytes_acked = std::numeric_limits<std::int64_t>::max();
    a.add(e);
  }
  Entry far = request(std::numeric_limits<std::int64_t>::max(), "/x", 1);
  a.add(far);
  Report r = a.finish({});
  std::string json = render_json(r);
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  ASSERT_EQ(parser.parse(json).get(root), simdjson::SUCCESS) << json.substr(0, 400);
  EXPECT_EQ(uint64_t(root["totals"]["requests"]), 9u);
  EXPECT_FALSE(render_text(r, 100).empty());
  EXPECT_FALSE(render_html(r).empty());
}

TEST(Analyzer, TimelineRollsUpToHoursBeyondAWeek) {
  Analyzer a;
  constexpr std::int64_t kMinute = 60'000;
  for (std::int64_t m = 0; m < 14 * 24 * 60; ++m) a.add(request(kStart + m * kMinute, "/", 5));
  Report r = a.finish({});
  EXPECT_EQ(r.bucket, "hour");
  EXPECT_LE(r.timeline.size(), 14u * 24 + 1);
  std::uint64_t total = 0;
  for (const auto& b : r.timeline) total += b.requests;
  EXPECT_EQ(total, 14u * 24 * 60);
}

// A log without a departure still says what the traffic was: statuses, routes, clients, bytes, time.
TEST(Analyzer, TrafficPictureOfALogWithoutDepartures) {
  Analyzer a;
  const std::pair<int, int> statuses[] = {{200, 70}, {304, 15}, {404, 10}, {500, 5}};
  std::int64_t ts = kStart;
  for (auto [status, n] : statuses) {
    for (int i = 0; i < n; ++i) {
      // The entry's path is a view: the string it points into must outlive add().
      std::string path = status == 200 ? "/api/users/" + std::to_string(i) : "/static/app.js";
      Entry e = request(ts, path, 5);
      e.status = status;
      e.bytes_out = status == 200 ? 1000 : 0;
      e.client = i % 2 ? "198.51.100.7:1" : "203.0.113.9:2";
      a.add(e);
      ts += 60'000 / 4;  // four requests a minute
    }
  }
  Report r = a.finish({});
  ASSERT_EQ(r.departures, 0u);
  const Traffic& t = r.traffic;
  EXPECT_EQ(t.status_classes[2], 70u);
  EXPECT_EQ(t.status_classes[3], 15u);
  EXPECT_EQ(t.status_classes[4], 10u);
  EXPECT_EQ(t.status_classes[5], 5u);
  ASSERT_EQ(t.statuses.size(), 4u);
  EXPECT_EQ(t.statuses[0].key, "200");
  EXPECT_EQ(t.statuses[3].key, "500");
  EXPECT_EQ(t.bytes_out, 70'000u);
  ASSERT_GE(t.routes.size(), 2u);
  EXPECT_EQ(t.routes[0].key, "GET /api/users/{id}");
  EXPECT_EQ(t.routes[0].requests, 70u);
  EXPECT_EQ(t.routes[0].bytes, 70'000u);
  EXPECT_EQ(t.routes[1].requests, 30u);
  ASSERT_EQ(t.clients.size(), 2u);
  EXPECT_EQ(t.clients[0].requests + t.clients[1].requests, 100u);
  EXPECT_GE(r.timeline.size(), 25u);
  EXPECT_LE(r.timeline.size(), 26u);
  std::uint64_t requests = 0, bytes = 0;
  for (const TimeBucket& b : r.timeline) requests += b.requests, bytes += b.bytes;
  EXPECT_EQ(requests, 100u);
  EXPECT_EQ(bytes, 70'000u);
  std::string text = render_text(r, 100);
  for (const char* section : {"Traffic", "Requests over time (per minute)", "Top routes by requests",
                              "Top clients by requests", "User agents by requests"}) {
    EXPECT_NE(text.find(section), std::string::npos) << section;
  }
  EXPECT_EQ(text.find("Timeout cliffs"), std::string::npos) << "departure sections in a report without departures";
}

// unbroken's records name their route ("GET /users/{name}"): requests are grouped by its pattern,
// under their own method; a route without a pattern ("(static)") groups by the normalised path.
TEST(Analyzer, GroupsByTheServersRoutePattern) {
  Analyzer a;
  struct Row {
    std::string_view method, path, route;
  };
  const Row rows[] = {{"GET", "/users/alice", "GET /users/{name}"},
                      {"GET", "/users/bob", "GET /users/{name}"},
                      {"HEAD", "/users/carol", "GET /users/{name}"},
                      {"GET", "/files/17.zip", "(static)"},
                      {"GET", "/nowhere", "(unmatched)"}};
  for (const Row& row : rows) {
    Entry e = request(kStart, row.path, 5);
    e.method = row.method;
    e.route = row.route;
    a.add(e);
  }
  Report r = a.finish({});
  std::map<std::string, std::uint64_t> keys;
  for (const auto& k : r.traffic.routes) keys[k.key] = k.requests;
  const std::map<std::string, std::uint64_t> want{
      {"GET /users/{name}", 2}, {"HEAD /users/{name}", 1}, {"GET /files/{id}.zip", 1}, {"GET /nowhere", 1}};
  EXPECT_EQ(keys, want);
}

Entry download(std::int64_t ts, std::string_view client, std::string_view path, std::int64_t bytes) {
  Entry e = request(ts, path, -1);  // combined logs have no duration
  e.client = client;
  e.bytes_out = bytes;
  return e;
}

// Cut-short 200s inferred from sizes are departures in phase response, with their own finding.
TEST(Analyzer, InferredCutsAreDeparturesInPhaseResponseWithTheirOwnFinding) {
  // Entries hold views: their strings live here for the whole test.
  std::vector<std::string> clients, paths;
  std::vector<std::int64_t> sizes;
  std::mt19937 rng(9);
  std::uniform_int_distribution<std::int64_t> cut(0, 999'999);
  std::uint64_t planted = 0;
  for (int i = 0; i < 2000; ++i) {
    bool bad = i % 5 == 0;  // a fifth of the downloads, from one network that abandons 70% of them
    bool cut_short = bad ? (i / 5) % 10 < 7 : i % 50 == 1;
    planted += cut_short;
    clients.push_back((bad ? "203.0.113." : "198.51.100.") + std::to_string(1 + i % 200));
    paths.push_back("/media/" + std::to_string(i % 40) + ".mp4");
    sizes.push_back(cut_short ? cut(rng) : 1'000'000);
  }
  std::vector<Entry> log;
  for (std::size_t i = 0; i < paths.size(); ++i) {
    log.push_back(download(kStart + static_cast<std::int64_t>(i) * 1000, clients[i], paths[i], sizes[i]));
  }
  Analyzer a;
  a.set_cut_inference(CutInference::kLearned);
  for (const Entry& e : log) a.learn_size(e);
  for (const Entry& e : log) a.add(e);
  Report r = a.finish({});
  EXPECT_EQ(r.cut_short.inferred, planted);
  EXPECT_EQ(r.departures, planted);
  EXPECT_EQ(r.by_phase[static_cast<std::size_t>(Phase::kResponse)], planted);
  EXPECT_EQ(r.by_outcome[static_cast<std::size_t>(Outcome::kClientClosed)], planted);
  ASSERT_FALSE(r.findings.empty());
  const Finding& f = r.findings[0];
  EXPECT_EQ(f.kind, "cut_short");
  EXPECT_EQ(f.subject, "203.0.113.0/24 GET /media/{id}.mp4");
  EXPECT_NE(f.text.find("203.0.113.0/24 abandons 70% of /media/{id}.mp4 downloads"), std::string::npos) << f.text;
  EXPECT_NE(f.text.find("inferred"), std::string::npos) << f.text;
}

}  // namespace
}  // namespace unbroken::analyze
