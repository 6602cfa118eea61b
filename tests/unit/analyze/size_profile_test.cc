// The size profile that infers cut-short 200s from a combined log: a short 200 on a path served at one
// full size is a cut; dynamic sizes, a recurring second size, ranges, HEAD and 304 are not; a busy
// path keeps its profile in a bounded table; and the precision and recall on a generated combined log
// whose cuts are known.

#include "analyze/size_profile.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "analyze/parsers.h"

namespace unbroken::analyze {
namespace {

Entry get(std::string_view path, std::int64_t bytes, int status = 200, std::string_view method = "GET") {
  Entry e;
  e.method = method;
  e.path = path;
  e.status = status;
  e.bytes_out = bytes;
  return e;
}

using Verdict = SizeProfile::Verdict;

TEST(SizeProfile, AShortTwoHundredOnAFixedSizePathIsACut) {
  SizeProfile p;
  for (int i = 0; i < 3; ++i) p.learn(get("/media/7.mp4", 1 << 20));
  p.learn(get("/media/7.mp4", 720896));
  EXPECT_EQ(p.judge(get("/media/7.mp4", 720896)), Verdict::kCut);
  EXPECT_EQ(p.judge(get("/media/7.mp4", 0)), Verdict::kCut);
  EXPECT_EQ(p.judge(get("/media/7.mp4", 1 << 20)), Verdict::kFull);
  EXPECT_EQ(p.judge(get("/media/8.mp4", 10)), Verdict::kNotJudged);  // never seen
  EXPECT_EQ(p.sized_paths(), 1u);
}

TEST(SizeProfile, TooFewFullSamplesAreNoFullSize) {
  SizeProfile p;
  p.learn(get("/a.zip", 1000));
  p.learn(get("/a.zip", 1000));
  p.learn(get("/a.zip", 10));
  EXPECT_EQ(p.judge(get("/a.zip", 10)), Verdict::kNotJudged);
  EXPECT_EQ(p.sized_paths(), 0u);
}

TEST(SizeProfile, DynamicSizesRangesHeadAnd304AreNotJudged) {
  SizeProfile p;
  std::mt19937 rng(5);
  std::uniform_int_distribution<std::int64_t> size(5000, 6000);
  for (int i = 0; i < 500; ++i) p.learn(get("/", size(rng)));  // a page whose size varies
  for (int i = 0; i < 500; ++i) {
    EXPECT_EQ(p.judge(get("/", size(rng))), Verdict::kNotJudged);
  }
  for (int i = 0; i < 5; ++i) p.learn(get("/f.iso", 4096));
  p.learn(get("/f.iso", 100, 206));
  p.learn(get("/f.iso", 0, 304));
  p.learn(get("/f.iso", 0, 200, "HEAD"));
  EXPECT_EQ(p.judge(get("/f.iso", 100, 206)), Verdict::kNotJudged);
  EXPECT_EQ(p.judge(get("/f.iso", 0, 304)), Verdict::kNotJudged);
  EXPECT_EQ(p.judge(get("/f.iso", 0, 200, "HEAD")), Verdict::kNotJudged);
  EXPECT_EQ(p.judge(get("/f.iso", 4096)), Verdict::kFull);
}

TEST(SizeProfile, ARecurringSecondSizeIsAVariantNotACut) {
  SizeProfile p;
  // Identity and gzip copies of one script, and a few real cuts of it.
  for (int i = 0; i < 40; ++i) p.learn(get("/app.js", 120'000));
  for (int i = 0; i < 60; ++i) p.learn(get("/app.js", 30'000));
  for (int i = 0; i < 20; ++i) p.learn(get("/app.js", 1000 + i));
  EXPECT_EQ(p.judge(get("/app.js", 30'000)), Verdict::kNotJudged);
  EXPECT_EQ(p.judge(get("/app.js", 1005)), Verdict::kCut);
  EXPECT_EQ(p.judge(get("/app.js", 120'000)), Verdict::kFull);
}

TEST(SizeProfile, ABusyPathKeepsItsFullSizeThroughAMillionOneOffPaths) {
  SizeProfile p;
  for (int i = 0; i < 1'000'000; ++i) {
    if (i % 100 == 0) p.learn(get("/media/hot.mp4", 5'000'000));
    p.learn(get(fmt::format("/page/{}", i), 1000));
  }
  EXPECT_EQ(p.judge(get("/media/hot.mp4", 4'000'000)), Verdict::kCut);
  EXPECT_LE(p.sized_paths(), SizeProfile::kPathCapacity);
}

// A combined log of downloads whose cuts are known, with the traffic that must not be flagged:
// pages whose size varies, a script served in two encodings, ranges, HEAD, 304, and files fetched too
// rarely to have a full size. Lines go through the real combined parser.
struct Line {
  std::string text;
  bool cut = false;
  bool rare = false;  // a file fetched once or twice: no inference can see its cut
};

std::vector<Line> generated_combined_log(unsigned seed) {
  std::mt19937 rng(seed);
  auto uni = [&](double a, double b) { return std::uniform_real_distribution<double>(a, b)(rng); };
  auto pick = [&](int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); };
  auto line = [&](int i, bool bad_net, std::string_view method, const std::string& path, int status,
                  std::int64_t bytes) {
    std::string ip =
        bad_net ? fmt::format("203.0.113.{}", 1 + pick(250)) : fmt::format("198.51.{}.{}", pick(200), 1 + pick(250));
    return fmt::format(
        R"({} - - [26/Nov/2026:{:02d}:{:02d}:{:02d} +0000] "{} {} HTTP/1.1" {} {} "-" "Mozilla/5.0 Firefox/121.0")", ip,
        i / 3600 % 24, i / 60 % 60, i % 60, method, path, status, bytes);
  };
  auto file_size = [](int id) { return std::int64_t{1'000'000} + std::int64_t{id} * 104'729; };
  std::vector<Line> out;
  for (int i = 0; i < 20'000; ++i) {
    int kind = pick(100);
    bool bad = pick(5) == 0;  // a fifth of the clients, in one network
    if (kind < 50) {
      // A download of one of 300 files; the bad network abandons 70%, the rest 3%. Some cuts stop on a
      // 64 KiB buffer boundary, so cut sizes can repeat.
      int id = 1 + pick(300);
      std::string path = fmt::format("/media/{}.mp4", id);
      bool cut = uni(0, 1) < (bad ? 0.7 : 0.03);
      std::int64_t full = file_size(id), bytes = full;
      if (cut)
        bytes = pick(4) == 0 ? (full / 65536 / (1 + pick(4))) * 65536 : static_cast<std::int64_t>(uni(0, 0.99) * full);
      out.push_back({line(i, bad, "GET", path, 200, bytes), cut});
    } else if (kind < 52) {
      // 400 files fetched once or twice: never a full size, so their cuts cannot be seen.
      std::string path = fmt::format("/archive/{}.tar", pick(400));
      bool cut = pick(3) == 0;
      out.push_back({line(i, bad, "GET", path, 200, cut ? pick(50'000) : 80'000), cut, true});
    } else if (kind < 75) {
      out.push_back({line(i, bad, "GET", fmt::format("/api/items/{}", pick(50)), 200, 2000 + pick(3000)), false});
    } else if (kind < 85) {
      out.push_back({line(i, bad, "GET", "/app.js", 200, pick(10) < 4 ? 120'000 : 31'000), false});
    } else if (kind < 90) {
      int id = 1 + pick(300);
      out.push_back({line(i, bad, "GET", fmt::format("/media/{}.mp4", id), 206, 1 + pick(65536)), false});
    } else if (kind < 95) {
      out.push_back({line(i, bad, "HEAD", fmt::format("/media/{}.mp4", 1 + pick(300)), 200, 0), false});
    } else {
      out.push_back({line(i, bad, "GET", fmt::format("/media/{}.mp4", 1 + pick(300)), 304, 0), false});
    }
  }
  return out;
}

struct Confusion {
  std::uint64_t tp = 0, fp = 0, fn = 0;
  [[nodiscard]] double precision() const {
    return tp + fp ? static_cast<double>(tp) / static_cast<double>(tp + fp) : 1;
  }
  [[nodiscard]] double recall() const { return tp + fn ? static_cast<double>(tp) / static_cast<double>(tp + fn) : 1; }
  void count(bool truth, bool flagged) {
    tp += truth && flagged;
    fp += !truth && flagged;
    fn += truth && !flagged;
  }
};

// Prints the figures quoted in docs/analyze.md:
//   build/release/tests/unit_tests --gtest_filter='SizeProfile.PrecisionAndRecall*'
TEST(SizeProfile, PrecisionAndRecallOnAGeneratedCombinedLog) {
  std::string error;
  auto parser = NginxParser::compile(NginxParser::kCombined, &error);
  ASSERT_TRUE(parser) << error;
  const std::vector<Line> lines = generated_combined_log(11);
  std::vector<Entry> entries(lines.size());
  std::uint64_t planted = 0, rare = 0;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    ASSERT_TRUE(parser->parse(lines[i].text, entries[i])) << lines[i].text;
    planted += lines[i].cut;
    rare += lines[i].cut && lines[i].rare;
  }
  // Two passes, as for a file: the whole log's sizes first. One pass, as for stdin: the sizes so far.
  SizeProfile learned, online;
  for (const Entry& e : entries) learned.learn(e);
  Confusion two_pass, one_pass, seen;  // seen: two passes, without the files fetched once or twice
  for (std::size_t i = 0; i < entries.size(); ++i) {
    two_pass.count(lines[i].cut, learned.judge(entries[i]) == Verdict::kCut);
    if (!lines[i].rare) seen.count(lines[i].cut, learned.judge(entries[i]) == Verdict::kCut);
    online.learn(entries[i]);
    one_pass.count(lines[i].cut, online.judge(entries[i]) == Verdict::kCut);
  }
  std::printf("cut-short inference on %zu combined lines, %llu planted cuts (%llu on files fetched once or twice)\n",
              lines.size(), static_cast<unsigned long long>(planted), static_cast<unsigned long long>(rare));
  for (auto [name, c] : {std::pair{"two passes (file)", two_pass}, std::pair{"  without rare files", seen},
                         std::pair{"one pass (stdin)", one_pass}}) {
    std::printf("  %-20s tp %llu fp %llu fn %llu  precision %.3f recall %.3f\n", name,
                static_cast<unsigned long long>(c.tp), static_cast<unsigned long long>(c.fp),
                static_cast<unsigned long long>(c.fn), c.precision(), c.recall());
  }
  EXPECT_GE(two_pass.precision(), 0.99);
  EXPECT_GE(two_pass.recall(), 0.9);  // the misses: files fetched too rarely to have a full size
  EXPECT_GE(seen.recall(), 0.99);
  EXPECT_GE(one_pass.precision(), 0.99);
  EXPECT_GE(one_pass.recall(), 0.75);  // the first downloads of each file come before its full size
}

}  // namespace
}  // namespace unbroken::analyze
