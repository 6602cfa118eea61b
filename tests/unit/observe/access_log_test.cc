// Whatever bytes a client sends, a record is one line of valid JSON that gives them back.

#include "observe/access_log.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <simdjson.h>
#include <stdlib.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <thread>
#include <vector>

namespace unbroken::observe {
namespace {

std::string json_of(std::string_view path, std::string_view ua) {
  http::RequestRecord r;
  r.ts = std::chrono::system_clock::time_point(std::chrono::milliseconds(1'795'000'000'123));
  r.path = path;
  r.ua = ua;
  r.client = "127.0.0.1:1";
  r.outcome = http::Outcome::kClientClosed;
  r.phase = http::Phase::kHandler;
  r.timer = http::TimerKind::kSend;
  r.timeout_ms = 30000;
  fmt::memory_buffer buf;
  append_json(buf, r);
  return fmt::to_string(buf);
}

TEST(AccessLogJson, HostileBytesStayOneValidLine) {
  struct Input {
    std::string bytes;
    bool round_trips;  // invalid UTF-8 is escaped byte by byte, so it cannot come back as is
  };
  const Input inputs[] = {
      {"a\"b\\c\r\nd\te", true},
      {std::string("nul\0byte", 8), true},
      {"\x01\x1f\x7f", true},
      {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", true},
      {"\xc3\x28 \xa0\xa1 \xed\xa0\x80 \xf8\x88\x80\x80\x80 \xc0\xaf", false},
      {"\"},{\"outcome\":\"ok\"}", true},
  };
  simdjson::dom::parser parser;
  for (const Input& in : inputs) {
    std::string line = json_of(in.bytes, in.bytes);
    ASSERT_EQ(line.back(), '\n');
    EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line";
    simdjson::dom::element doc;
    ASSERT_EQ(parser.parse(line).get(doc), simdjson::SUCCESS) << line;
    std::string_view path, outcome;
    ASSERT_EQ(doc["path"].get_string().get(path), simdjson::SUCCESS);
    if (in.round_trips) {
      EXPECT_EQ(path, in.bytes);
    }
    ASSERT_EQ(doc["outcome"].get_string().get(outcome), simdjson::SUCCESS);
    EXPECT_EQ(outcome, "client_closed") << "nothing forged";
  }
}

TEST(AccessLogJson, FieldsAndTimestamp) {
  std::string line = json_of("/x", "ua");
  EXPECT_NE(line.find("\"ts\":\"2026-11-18T11:06:40.123Z\""), std::string::npos) << line;
  EXPECT_NE(line.find("\"timer\":\"send\",\"timeout_ms\":30000"), std::string::npos) << line;
}

// fmt 9 formats a system_clock time in local time: the record must say UTC whatever TZ says.
TEST(AccessLogJson, TimestampIsUtcUnderAnyTimeZone) {
  const char* saved = std::getenv("TZ");
  std::string old = saved ? saved : "";
  ::setenv("TZ", "UNB-14", 1);  // 14 hours east of UTC, no zone files needed
  ::tzset();
  std::string line = json_of("/x", "ua");
  fmt::memory_buffer text;
  http::RequestRecord r;
  r.ts = std::chrono::system_clock::time_point(std::chrono::seconds(1'795'003'600));  // an hour later
  append_text(text, r);
  saved ? ::setenv("TZ", old.c_str(), 1) : ::unsetenv("TZ");
  ::tzset();
  EXPECT_NE(line.find("\"ts\":\"2026-11-18T11:06:40.123Z\""), std::string::npos) << line;
  EXPECT_EQ(fmt::to_string(text).rfind("2026-11-18T12:06:40.000Z ", 0), 0U) << fmt::to_string(text);
}

// The text format's TLS and upstream_error parts, in its key=value style; client text is quoted.
TEST(AccessLogText, TlsAndUpstreamError) {
  struct Case {
    std::optional<http::TlsRecord> tls;
    std::string_view upstream_error;
    std::vector<std::string_view> has, lacks;
  };
  const Case cases[] = {
      {http::TlsRecord{"TLSv1.3", "TLS_AES_128_GCM_SHA256", "ex\"ample.test", {}, true, true},
       {},
       {R"( tls="TLSv1.3" cipher="TLS_AES_128_GCM_SHA256" resumed sni="ex\"ample.test" conn=)"},
       {"tls_error", "upstream_error"}},
      {http::TlsRecord{"TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256", {}, {}, false, true},
       {},
       {R"( tls="TLSv1.2" cipher="ECDHE-RSA-AES128-GCM-SHA256" conn=)"},
       {"resumed", "sni=", "tls_error"}},
      {http::TlsRecord{{}, {}, "example.test", "no shared cipher", false, false},
       {},
       {R"( sni="example.test" tls_error="no shared cipher" conn=)"},
       {"tls=", "cipher="}},
      {std::nullopt, "certificate verify failed", {R"( upstream_error="certificate verify failed")"}, {"tls", "sni"}},
      {std::nullopt, {}, {}, {"tls", "sni", "upstream_error"}},
  };
  for (const Case& c : cases) {
    http::RequestRecord r;
    r.client = "127.0.0.1:1";
    r.tls = c.tls;
    if (!c.upstream_error.empty()) {
      r.upstream.emplace();
      r.upstream->upstream = "10.0.0.5:8443";
      r.upstream->error = c.upstream_error;
    }
    fmt::memory_buffer text;
    append_text(text, r);
    std::string line = fmt::to_string(text);
    for (std::string_view want : c.has) EXPECT_NE(line.find(want), std::string::npos) << want << " in " << line;
    for (std::string_view not_want : c.lacks)
      EXPECT_EQ(line.find(not_want), std::string::npos) << not_want << " in " << line;
  }
}

http::RequestRecord keep_alive_record() {
  http::RequestRecord r;
  r.ts = std::chrono::system_clock::time_point(std::chrono::milliseconds(1'795'000'000'123));
  r.conn = 12345;
  r.req = 678;
  r.client = "127.0.0.1:53248";
  r.method = "GET";
  r.path = "/diag/bytes/13";
  r.route = "GET /diag/bytes/{n}";
  r.status = 200;
  r.ua = "ApacheBench/2.3";
  r.outcome = http::Outcome::kOk;
  r.phase = http::Phase::kResponse;
  r.bytes_in = 92;
  r.bytes_out = 147;
  r.bytes_acked = 147;
  r.bytes_unsent = 0;
  r.duration_ms = 0.0415;
  r.handler_ms = 0.0125;
  return r;
}

// The lines the fmt-based writer wrote before the writer was made cheap (issue 15), byte for byte:
// what the tests and `unbroken analyze` read must not change with it.
TEST(AccessLogJson, SameBytesAsTheFmtWriter) {
  std::vector<std::pair<http::RequestRecord, std::string_view>> cases;
  cases.emplace_back(
      http::RequestRecord{},
      R"({"ts":"1970-01-01T00:00:00.000Z","conn":0,"req":0,"client":"","method":"","path":"","status":0,"ua":"","referer":"","outcome":"ok","phase":"idle","bytes_in":0,"bytes_out":0,"duration_ms":0.000,"handler_ms":0.000,"cancelled":false,"wasted_ms":0.000})");
  cases.emplace_back(
      keep_alive_record(),
      R"({"ts":"2026-11-18T11:06:40.123Z","conn":12345,"req":678,"client":"127.0.0.1:53248","method":"GET","path":"/diag/bytes/13","route":"GET /diag/bytes/{n}","status":200,"ua":"ApacheBench/2.3","referer":"","outcome":"ok","phase":"response","bytes_in":92,"bytes_out":147,"bytes_acked":147,"bytes_unsent":0,"duration_ms":0.042,"handler_ms":0.013,"cancelled":false,"wasted_ms":0.000})");
  http::RequestRecord full;
  full.ts = std::chrono::system_clock::time_point(std::chrono::milliseconds(1'795'000'000'999));
  full.conn = std::numeric_limits<std::uint64_t>::max();
  full.req = 3;
  full.client = "[2001:db8::1]:443";
  full.method = "POST";
  full.path = "/up/\"q\"\\load?x=1\x01\x7f";
  full.route = "POST /up/{name}";
  full.status = 499;
  full.ua = "curl/8.0 \xc3\xa9 \xff";
  full.referer = "https://example.test/a-long-referer-that-is-longer-than-sixteen-bytes";
  full.outcome = http::Outcome::kClientClosed;
  full.phase = http::Phase::kHandler;
  full.timer = http::TimerKind::kSend;
  full.timeout_ms = 30000;
  full.bytes_in = 1234;
  full.bytes_out = 567;
  full.bytes_acked = 500;
  full.bytes_unsent = 67;
  full.encoding = "gzip";
  full.duration_ms = 412.301;
  full.handler_ms = 0.0625;  // a tie: to even
  full.cancelled = true;
  full.wasted_ms = 1e15;
  full.upstream = http::UpstreamRecord{
      "unix:/run/app.sock",       200, 1.25, 30.5, 410.125, 4096, 1234, true, 1, "4bf92f3577b34da6",
      "certificate verify failed"};
  full.tls = http::TlsRecord{"TLSv1.3", "TLS_AES_128_GCM_SHA256", "ex\"ample.test", {}, true, true};
  cases.emplace_back(
      full,
      R"({"ts":"2026-11-18T11:06:40.999Z","conn":18446744073709551615,"req":3,"client":"[2001:db8::1]:443","method":"POST","path":"/up/\"q\"\\load?x=1\u0001\u007f","route":"POST /up/{name}","status":499,"ua":"curl/8.0 é \u00ff","referer":"https://example.test/a-long-referer-that-is-longer-than-sixteen-bytes","outcome":"client_closed","phase":"handler","timer":"send","timeout_ms":30000,"bytes_in":1234,"bytes_out":567,"bytes_acked":500,"bytes_unsent":67,"encoding":"gzip","duration_ms":412.301,"handler_ms":0.062,"cancelled":true,"wasted_ms":1000000000000000.000,"upstream":"unix:/run/app.sock","upstream_status":200,"upstream_connect_ms":1.250,"upstream_header_ms":30.500,"upstream_ms":410.125,"upstream_bytes_in":4096,"upstream_bytes_out":1234,"upstream_reused":true,"upstream_retries":1,"upstream_error":"certificate verify failed","request_id":"4bf92f3577b34da6","tls_version":"TLSv1.3","tls_cipher":"TLS_AES_128_GCM_SHA256","sni":"ex\"ample.test","tls_resumed":true})");
  http::RequestRecord handshake;
  handshake.ts = std::chrono::system_clock::time_point(std::chrono::milliseconds(-1));
  handshake.client = "192.0.2.7:50112";
  handshake.outcome = http::Outcome::kProtocolError;
  handshake.phase = http::Phase::kTlsHandshake;
  handshake.bytes_in = 517;
  handshake.duration_ms = -0.0;
  handshake.handler_ms = 2.0005;
  handshake.wasted_ms = 0.0005;
  handshake.tls = http::TlsRecord{{}, {}, "sni\n", "no shared cipher", false, false};
  cases.emplace_back(
      handshake,
      R"({"ts":"1969-12-31T23:59:59.999Z","conn":0,"req":0,"client":"192.0.2.7:50112","method":"","path":"","status":0,"ua":"","referer":"","outcome":"protocol_error","phase":"tls_handshake","bytes_in":517,"bytes_out":0,"duration_ms":-0.000,"handler_ms":2.001,"cancelled":false,"wasted_ms":0.001,"sni":"sni\n","tls_error":"no shared cipher"})");
  for (const auto& [rec, want] : cases) {
    fmt::memory_buffer buf;
    append_json(buf, rec);
    EXPECT_EQ(fmt::to_string(buf), std::string(want) + "\n");
    // Written after other text, as the access log appends: the same line, nothing before it touched.
    fmt::memory_buffer after;
    after.append(std::string_view("x"));
    append_json(after, rec);
    EXPECT_EQ(fmt::to_string(after), "x" + std::string(want) + "\n");
  }
}

// The durations' three decimals are fmt's "{:.3f}" (the exact value rounded, ties to even) for
// every value, the fast path's and the fallback's (near ties, negative zero, huge, NaN, infinity).
TEST(AccessLogJson, MillisAsFmtWritesThem) {
  std::vector<double> values{0,
                             0.0005,
                             0.0015,
                             0.0625,
                             0.1,
                             0.3,
                             1.0005,
                             2.5e-4,
                             4.9e-4,
                             12.3455,
                             999.9995,
                             1e-9,
                             3.14159,
                             412.301,
                             1e9 - 1,
                             1e9,
                             123456789.0125,
                             1e15,
                             1e300,
                             -1.5,
                             -0.0,
                             std::numeric_limits<double>::infinity(),
                             std::numeric_limits<double>::quiet_NaN()};
  for (std::uint64_t n = 0; n < 20000; ++n) values.push_back(static_cast<double>(n * 7919 % 100003) / 2000);
  for (double v : values) {
    http::RequestRecord r;
    r.duration_ms = v;
    fmt::memory_buffer buf;
    append_json(buf, r);
    std::string line = fmt::to_string(buf);
    std::string want = fmt::format("\"duration_ms\":{:.3f},", v);
    EXPECT_NE(line.find(want), std::string::npos) << v << ": " << line;
  }
}

std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Waits until the file at path holds `needle` (inotify on its directory, with a deadline).
bool wait_for_text(const std::filesystem::path& path, std::string_view needle, std::chrono::seconds within) {
  int fd = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (fd < 0) return false;
  ::inotify_add_watch(fd, path.parent_path().c_str(), IN_MODIFY | IN_CREATE | IN_MOVED_TO);
  auto deadline = std::chrono::steady_clock::now() + within;
  bool found = false;
  while (!found && std::chrono::steady_clock::now() < deadline) {
    found = read_text(path).find(needle) != std::string::npos;
    if (found) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) > 0) {
      char events[4096];
      [[maybe_unused]] auto n = ::read(fd, events, sizeof events);
    }
  }
  ::close(fd);
  return found;
}

class AccessLogFile : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/unbroken-access-log-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  static http::RequestRecord numbered(std::uint64_t conn, std::uint64_t req) {
    http::RequestRecord r = keep_alive_record();
    r.conn = conn;
    r.req = req;
    return r;
  }
  std::filesystem::path dir_;
};

// The flush rule: one record, then nothing (the loop idle, no later request, no shutdown), and the
// record is in the file within the flush interval; awaited, with a deadline far past it.
TEST_F(AccessLogFile, ARecordReachesTheFileWhileNothingElseHappens) {
  auto path = dir_ / "access.log";
  AccessLog log(path.string());
  log.write(numbered(41, 1));
  EXPECT_TRUE(wait_for_text(path, "\"conn\":41,\"req\":1,", std::chrono::seconds(5))) << read_text(path);
  // And the next one, after the writer has gone back to waiting.
  log.write(numbered(41, 2));
  EXPECT_TRUE(wait_for_text(path, "\"conn\":41,\"req\":2,", std::chrono::seconds(5))) << read_text(path);
}

// Records from several threads, written right up to the log's end: every one is in the file, each
// thread's in the order it wrote them.
TEST_F(AccessLogFile, NothingIsLostAtTheEnd) {
  auto path = dir_ / "access.log";
  constexpr int kThreads = 4;
  constexpr int kEach = 5000;
  {
    AccessLog log(path.string());
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
      threads.emplace_back([&log, t] {
        for (int i = 1; i <= kEach; ++i)
          log.write(numbered(static_cast<std::uint64_t>(t), static_cast<std::uint64_t>(i)));
      });
    for (auto& t : threads) t.join();
    EXPECT_EQ(log.dropped(), 0U);
  }
  std::ifstream in(path);
  std::vector<std::uint64_t> last(kThreads, 0);
  std::string line;
  int lines = 0;
  simdjson::dom::parser parser;
  while (std::getline(in, line)) {
    simdjson::dom::element doc;
    ASSERT_EQ(parser.parse(line).get(doc), simdjson::SUCCESS) << line;
    std::uint64_t conn = 0, req = 0;
    ASSERT_EQ(doc["conn"].get_uint64().get(conn), simdjson::SUCCESS);
    ASSERT_EQ(doc["req"].get_uint64().get(req), simdjson::SUCCESS);
    ASSERT_LT(conn, static_cast<std::uint64_t>(kThreads));
    EXPECT_EQ(req, last[conn] + 1) << "thread " << conn;
    last[conn] = req;
    ++lines;
  }
  EXPECT_EQ(lines, kThreads * kEach);
}

// SIGHUP after logrotate moved the file: what was written before the reopen stays in the moved file,
// what comes after goes to a new file at the path, and nothing is lost or written twice.
TEST_F(AccessLogFile, ReopenAfterTheFileWasMoved) {
  auto path = dir_ / "access.log";
  auto moved = dir_ / "access.log.1";
  AccessLog log(path.string());
  log.write(numbered(7, 1));
  ASSERT_TRUE(wait_for_text(path, "\"conn\":7,\"req\":1,", std::chrono::seconds(5)));
  std::filesystem::rename(path, moved);
  log.reopen();
  log.write(numbered(7, 2));
  ASSERT_TRUE(wait_for_text(path, "\"conn\":7,\"req\":2,", std::chrono::seconds(5)));
  std::string old_text = read_text(moved), new_text = read_text(path);
  EXPECT_NE(old_text.find("\"conn\":7,\"req\":1,"), std::string::npos) << old_text;
  EXPECT_EQ(old_text.find("\"req\":2,"), std::string::npos) << old_text;
  EXPECT_EQ(new_text.find("\"req\":1,"), std::string::npos) << new_text;
}

}  // namespace
}  // namespace unbroken::observe
