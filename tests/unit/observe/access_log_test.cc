// Whatever bytes a client sends, a record is one line of valid JSON that gives them back.

#include "observe/access_log.h"

#include <gtest/gtest.h>
#include <simdjson.h>
#include <stdlib.h>

#include <cstdlib>
#include <ctime>
#include <optional>
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

}  // namespace
}  // namespace unbroken::observe
