// The analyzer on entries built in the test: cliffs from the data, the server's own timer told apart,
// hostile numbers that cannot break the report, a timeline that stays bounded.

#include "analyze/analyzer.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <cmath>
#include <limits>
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
      a.add(request(kStart + i, "/pile/" + std::to_string(i), seconds * 1000 * (1 + jitter(rng)), Outcome::kClientReset));
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

}  // namespace
}  // namespace unbroken::analyze
