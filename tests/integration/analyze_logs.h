#pragma once
// Generated access logs with known, planted patterns for the `unbroken analyze` tests, and a runner
// for the real binary. Deterministic (a fixed seed), small (a few thousand lines), written to files.

#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <simdjson.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace unbroken::testing {

struct Planted {
  bool cliff = false;         // 300 departures at 29.9-30.1 s on GET /reports/{id}/export
  bool network = false;       // 203.0.113.0/24 aborts 70% of its 600 downloads mid-response
  bool header_timer = false;  // the header timer (2 s) cuts 400 requests
  double odd_cliff_s = 0;     // when > 0: 200 departures at this value on GET /search
};

inline constexpr std::int64_t kLogStartMs = 1'795'000'000'000;  // 2026-11-18T...Z

// One generated request, in the vocabulary of unbroken's record.
struct GenRecord {
  std::int64_t ts_ms;
  std::string client, method, path, ua, outcome = "ok", phase = "response", timer;
  int status = 200;
  std::int64_t timeout_ms = 0, bytes_out = 512, bytes_acked = 512;
  double duration_ms = 20;
  double wasted_ms = 0;
  bool cancelled = false;
};

inline std::string iso(std::int64_t ms) {
  std::time_t secs = ms / 1000;
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  return fmt::format("{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}.{:03d}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
}

// Background traffic (4000 requests, about 3% departures at durations spread from 0.1 to 20 s) plus
// the planted patterns, in time order over about an hour.
inline std::vector<GenRecord> generate(const Planted& p, unsigned seed = 7) {
  std::mt19937 rng(seed);
  auto uni = [&](double a, double b) { return std::uniform_real_distribution<double>(a, b)(rng); };
  auto pick = [&](int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); };
  static const char* kRoutes[] = {
      "/",      "/index.html", "/api/users/{}", "/api/users/{}/orders", "/static/app.js", "/api/items/{}",
      "/login", "/api/cart"};
  static const char* kAgents[] = {"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36",
                                  "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
                                  "curl/7.88.1", "python-requests/2.31"};
  std::vector<GenRecord> out;
  auto base = [&](std::int64_t i, std::int64_t n) {
    GenRecord r;
    r.ts_ms = kLogStartMs + i * 3'600'000 / n + pick(1000);
    r.client = fmt::format("198.51.{}.{}", pick(200), 1 + pick(250));
    r.method = "GET";
    r.path = fmt::format(fmt::runtime(kRoutes[pick(8)]), 1 + pick(5000));
    r.ua = kAgents[pick(4)];
    r.duration_ms = uni(1, 300);
    return r;
  };
  for (int i = 0; i < 4000; ++i) {
    GenRecord r = base(i, 4000);
    if (uni(0, 1) < 0.03) {
      r.status = 499;
      r.outcome = pick(2) ? "client_closed" : "client_reset";
      r.phase = "handler";
      r.bytes_out = r.bytes_acked = 0;
      r.duration_ms = uni(100, 20000);
    }
    out.push_back(r);
  }
  if (p.cliff) {
    for (int i = 0; i < 300; ++i) {
      GenRecord r = base(i, 300);
      r.method = "GET";
      r.path = fmt::format("/reports/{}/export", 1000 + pick(9000));
      r.status = 499;
      r.outcome = "client_closed";
      r.phase = "handler";
      r.bytes_out = r.bytes_acked = 0;
      r.duration_ms = uni(29900, 30100);
      r.cancelled = true;
      r.wasted_ms = uni(1, 50);
      out.push_back(r);
    }
  }
  if (p.network) {
    for (int i = 0; i < 600; ++i) {
      GenRecord r = base(i, 600);
      r.client = fmt::format("203.0.113.{}:{}", 10 + pick(20), 40000 + pick(20000));
      r.path = fmt::format("/downloads/{}.zip", 100 + pick(50));
      r.bytes_out = r.bytes_acked = 5'000'000;
      r.duration_ms = uni(2000, 20000);
      if (i % 10 < 7) {
        r.outcome = "client_reset";
        r.phase = "response";
        r.bytes_out = static_cast<std::int64_t>(uni(100'000, 4'000'000));
        r.bytes_acked = r.bytes_out / 2;
      }
      out.push_back(r);
    }
  }
  if (p.header_timer) {
    for (int i = 0; i < 400; ++i) {
      GenRecord r = base(i, 400);
      r.method = "";
      r.path = "";
      r.status = 408;
      r.outcome = "timeout";
      r.phase = "request_headers";
      r.timer = "header";
      r.timeout_ms = 2000;
      r.bytes_out = 0;
      r.bytes_acked = 0;
      r.duration_ms = 2000 + uni(0, 3);
      out.push_back(r);
    }
  }
  if (p.odd_cliff_s > 0) {
    for (int i = 0; i < 200; ++i) {
      GenRecord r = base(i, 200);
      r.path = "/search";
      r.status = 499;
      r.outcome = "client_closed";
      r.phase = "handler";
      r.bytes_out = r.bytes_acked = 0;
      r.duration_ms = p.odd_cliff_s * 1000 + uni(-50, 50);
      out.push_back(r);
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const GenRecord& a, const GenRecord& b) { return a.ts_ms < b.ts_ms; });
  return out;
}

inline std::string json_line(const GenRecord& r, std::int64_t conn) {
  std::string s = fmt::format(
      R"({{"ts":"{}","conn":{},"req":1,"client":"{}","method":"{}","path":"{}","status":{},"ua":"{}","referer":"",)"
      R"("outcome":"{}","phase":"{}")",
      iso(r.ts_ms), conn, r.client.find(':') == std::string::npos ? r.client + ":50000" : r.client, r.method, r.path,
      r.status, r.ua, r.outcome, r.phase);
  if (!r.timer.empty()) s += fmt::format(R"(,"timer":"{}","timeout_ms":{})", r.timer, r.timeout_ms);
  s += fmt::format(R"(,"bytes_in":80,"bytes_out":{},"bytes_acked":{},"duration_ms":{:.3f},"handler_ms":{:.3f},)"
                   R"("cancelled":{},"wasted_ms":{:.3f}}})",
                   r.bytes_out, r.bytes_acked, r.duration_ms, r.duration_ms, r.cancelled, r.wasted_ms);
  return s + "\n";
}

// nginx combined plus $request_time: a departure is a 499, a header timeout a 408.
inline std::string nginx_line(const GenRecord& r) {
  std::time_t secs = r.ts_ms / 1000;
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char when[64];
  std::strftime(when, sizeof when, "%d/%b/%Y:%H:%M:%S +0000", &tm);
  std::string ip = r.client.substr(0, r.client.find(':'));
  std::string request = r.method.empty() ? "-" : fmt::format("{} {} HTTP/1.1", r.method, r.path);
  int status = r.outcome == "ok" ? r.status : r.outcome == "timeout" ? 408 : r.bytes_out > 0 ? 200 : 499;
  return fmt::format("{} - - [{}] \"{}\" {} {} \"-\" \"{}\" {:.3f}\n", ip, when, request, status, r.bytes_out, r.ua,
                     r.duration_ms / 1000);
}

// HAProxy's default httplog with a syslog prefix; the termination state carries outcome and phase.
inline std::string haproxy_line(const GenRecord& r) {
  std::time_t secs = r.ts_ms / 1000;
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char when[64], sys[32];
  std::strftime(when, sizeof when, "%d/%b/%Y:%H:%M:%S", &tm);
  std::strftime(sys, sizeof sys, "%b %e %H:%M:%S", &tm);
  std::string state = "----";
  if (r.outcome == "timeout")
    state = "cR--";
  else if (r.outcome != "ok")
    state = r.phase == "response" ? "CD--" : "CH--";
  std::string client = r.client.find(':') == std::string::npos ? r.client + ":50000" : r.client;
  auto d = static_cast<long>(r.duration_ms);
  std::string timers = r.outcome == "timeout" ? fmt::format("{}/-1/-1/-1/{}", d, d) : fmt::format("0/0/1/{}/{}", d, d);
  std::string request = r.method.empty() ? "<BADREQ>" : fmt::format("{} {} HTTP/1.1", r.method, r.path);
  return fmt::format("{} lb1 haproxy[4242]: {} [{}.{:03d}] www app/srv1 {} {} {} - - {} 10/10/2/1/0 0/0 \"{}\"\n", sys,
                     client, when, static_cast<int>(r.ts_ms % 1000), timers, r.outcome == "timeout" ? 408 : r.status,
                     r.bytes_out, state, request);
}

inline std::string temp_dir() {
  char tmpl[] = "/tmp/unbroken-analyze-XXXXXX";
  return ::mkdtemp(tmpl);
}

inline void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
}

inline std::string slurp_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

struct RunResult {
  int status = -1;
  std::string out, err;
};

// Runs `unbroken analyze ARGS` with stdin from a file; stdout and stderr captured through files.
inline RunResult run_analyze(const std::vector<std::string>& args, const std::string& stdin_path = "/dev/null") {
  std::string dir = temp_dir();
  std::string out_path = dir + "/stdout", err_path = dir + "/stderr";
  pid_t pid = ::fork();
  if (pid == 0) {
    int in = ::open(stdin_path.c_str(), O_RDONLY);
    int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    std::vector<std::string> argv{UNBROKEN_BINARY, "analyze"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> cargs;
    for (auto& a : argv) cargs.push_back(a.data());
    cargs.push_back(nullptr);
    ::execv(cargs[0], cargs.data());
    ::_exit(127);
  }
  RunResult r;
  int status = 0;
  if (pid > 0 && ::waitpid(pid, &status, 0) == pid) {
    r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  r.out = slurp_file(out_path);
  r.err = slurp_file(err_path);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return r;
}

// tests/fixtures/analyze, found from this header's own path.
inline std::string fixture(const std::string& name) {
  return (std::filesystem::path(__FILE__).parent_path().parent_path() / "fixtures" / "analyze" / name).string();
}

// A test with its own temporary directory, and the JSON reports of its runs kept parsed for its life.
class AnalyzeTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = temp_dir(); }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // `unbroken analyze ARGS --format json`; fails the test if the run or the document is bad.
  simdjson::dom::element report(const std::vector<std::string>& args, const std::string& stdin_path = "/dev/null") {
    std::vector<std::string> all = args;
    all.insert(all.end(), {"--format", "json"});
    RunResult r = run_analyze(all, stdin_path);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.err, "");
    docs_.emplace_back(std::make_unique<simdjson::padded_string>(r.out));
    parsers_.emplace_back(std::make_unique<simdjson::dom::parser>());
    simdjson::dom::element root;
    EXPECT_EQ(parsers_.back()->parse(*docs_.back()).get(root), simdjson::SUCCESS) << r.out.substr(0, 300);
    return root;
  }

  std::string dir_;

 private:
  std::vector<std::unique_ptr<simdjson::padded_string>> docs_;
  std::vector<std::unique_ptr<simdjson::dom::parser>> parsers_;
};

}  // namespace unbroken::testing
