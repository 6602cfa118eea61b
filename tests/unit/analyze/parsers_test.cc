// Each input format: a full line gives the right entry; a line cut anywhere is rejected, not misread.

#include "analyze/parsers.h"

#include <gtest/gtest.h>

#include <string>

#include "analyze/time_parse.h"
#include "base/record_schema.h"
#include "json_line.h"

namespace unbroken::analyze {
namespace {

constexpr std::string_view kJson =
    R"({"ts":"2026-11-26T23:50:01.123Z","conn":7,"req":1,"client":"127.0.0.1:53114","method":"GET",)"
    R"("path":"/diag/delay/2000","status":499,"ua":"curl/7.88.1","referer":"","outcome":"client_closed",)"
    R"("phase":"handler","timer":"send","timeout_ms":30000,"bytes_in":89,"bytes_out":100,"bytes_acked":60,)"
    R"("bytes_unsent":40,"duration_ms":412.301,"handler_ms":412.290,"cancelled":true,"wasted_ms":1.5})";

TEST(JsonLineParser, ReadsEveryField) {
  JsonLineParser p;
  Entry e;
  ASSERT_TRUE(parse_json(p, kJson, e));
  EXPECT_EQ(e.ts_ms, parse_iso8601("2026-11-26T23:50:01.123Z"));
  EXPECT_EQ(e.client, "127.0.0.1:53114");
  EXPECT_EQ(e.method, "GET");
  EXPECT_EQ(e.path, "/diag/delay/2000");
  EXPECT_EQ(e.status, 499);
  EXPECT_EQ(e.ua, "curl/7.88.1");
  EXPECT_EQ(e.outcome, Outcome::kClientClosed);
  EXPECT_EQ(e.phase, Phase::kHandler);
  EXPECT_EQ(e.timer, Timer::kSend);
  EXPECT_EQ(e.timeout_ms, 30000);
  EXPECT_EQ(e.bytes_out, 100);
  EXPECT_EQ(e.bytes_acked, 60);
  EXPECT_EQ(e.bytes_unsent, 40);
  EXPECT_DOUBLE_EQ(e.duration_ms, 412.301);
  EXPECT_DOUBLE_EQ(e.handler_ms, 412.290);
  EXPECT_TRUE(e.cancelled);
  EXPECT_DOUBLE_EQ(e.wasted_ms, 1.5);
}

// Every timer the server can write in a record (base/record_schema.h), housekeeping ones included,
// reads back as the same name: a timer the server gains and the analyzer lacks fails here.
TEST(JsonLineParser, ReadsEveryTimerTheServerWrites) {
  JsonLineParser p;
  for (std::size_t t = 0; t < schema::kTimerCount; ++t) {
    std::string server_name(schema::name(static_cast<schema::TimerKind>(t)));
    std::string line(kJson);
    line.replace(line.find(R"("timer":"send")"), 14, R"("timer":")" + server_name + "\"");
    Entry e;
    ASSERT_TRUE(parse_json(p, line, e)) << server_name;
    EXPECT_EQ(name(e.timer), server_name);
  }
}

TEST(JsonLineParser, EveryTruncationIsRejected) {
  JsonLineParser p;
  Entry e;
  for (std::size_t n = 0; n < kJson.size(); ++n) EXPECT_FALSE(parse_json(p, kJson.substr(0, n), e)) << n;
  EXPECT_TRUE(parse_json(p, kJson, e));  // the parser is still usable after all those failures
}

TEST(JsonLineParser, RejectsWhatIsNotARecord) {
  JsonLineParser p;
  Entry e;
  for (const char* bad : {"[1,2]", "\"text\"", "{}", R"({"path":"/x"})", R"({"status":"200"})",
                          R"({"status":200,"outcome":"vanished"})", "not json"}) {
    EXPECT_FALSE(parse_json(p, bad, e)) << bad;
  }
  // Another JSON logger's record: classified by status.
  ASSERT_TRUE(parse_json(p, R"({"status":499,"path":"/x","request_time":1})", e));
  EXPECT_EQ(e.outcome, Outcome::kClientClosed);
}

constexpr std::string_view kNginx =
    R"(203.0.113.9 - - [26/Nov/2026:23:50:01 +0000] "GET /users/17/orders?x=1 HTTP/1.1" 499 0 "-" "curl/7.88.1")";

NginxParser combined() {
  std::string error;
  auto p = NginxParser::compile(NginxParser::kCombined, &error);
  EXPECT_TRUE(p) << error;
  return *p;
}

TEST(NginxParser, CombinedWithAppendedTimes) {
  NginxParser p = combined();
  Entry e;
  ASSERT_TRUE(p.parse(kNginx, e));
  EXPECT_EQ(e.client, "203.0.113.9");
  EXPECT_EQ(e.ts_ms, parse_iso8601("2026-11-26T23:50:01Z"));
  EXPECT_EQ(e.method, "GET");
  EXPECT_EQ(e.path, "/users/17/orders?x=1");
  EXPECT_EQ(e.status, 499);
  EXPECT_EQ(e.outcome, Outcome::kClientClosed);
  EXPECT_EQ(e.duration_ms, -1);
  ASSERT_TRUE(p.parse(std::string(kNginx) + " 30.001 29.999", e));
  EXPECT_DOUBLE_EQ(e.duration_ms, 30001);
  EXPECT_DOUBLE_EQ(e.handler_ms, 29999);
  ASSERT_TRUE(p.parse(std::string(kNginx) + " 1.500 -", e));
  EXPECT_DOUBLE_EQ(e.duration_ms, 1500);
  EXPECT_EQ(e.handler_ms, -1);
}

TEST(NginxParser, StatusesMapToOutcomes) {
  NginxParser p = combined();
  Entry e;
  ASSERT_TRUE(p.parse(R"(10.0.0.1 - - [26/Nov/2026:23:50:01 +0000] "-" 408 0 "-" "-")", e));
  EXPECT_EQ(e.outcome, Outcome::kTimeout);
  EXPECT_EQ(e.timer, Timer::kHeader);
  EXPECT_EQ(e.phase, Phase::kRequestHeaders);
  ASSERT_TRUE(p.parse(R"(10.0.0.1 - - [26/Nov/2026:23:50:01 +0000] "POST /up HTTP/1.1" 408 0 "-" "-")", e));
  EXPECT_EQ(e.timer, Timer::kBody);
  ASSERT_TRUE(p.parse(R"(10.0.0.1 - - [26/Nov/2026:23:50:01 +0000] "GET / HTTP/1.1" 200 5 "-" "-")", e));
  EXPECT_EQ(e.outcome, Outcome::kOk);
}

// A line cut before its last quoted field is rejected; one cut inside it (a user agent without its
// closing quote, as published Apache and nginx logs have) is read as far as it goes and marked repaired.
TEST(NginxParser, EveryTruncationBeforeTheUserAgentIsRejectedAndOneInsideItRepaired) {
  NginxParser p = combined();
  Entry e;
  const std::size_t ua = kNginx.rfind('"', kNginx.size() - 2) + 1;  // the user agent's first byte
  for (std::size_t n = 0; n < kNginx.size(); ++n) {
    if (n < ua) {
      EXPECT_FALSE(p.parse(kNginx.substr(0, n), e)) << n;
      continue;
    }
    ASSERT_TRUE(p.parse(kNginx.substr(0, n), e)) << n;
    EXPECT_TRUE(e.repaired) << n;
    EXPECT_EQ(e.ua, kNginx.substr(ua, n - ua)) << n;
    EXPECT_EQ(e.status, 499) << n;
    EXPECT_EQ(e.path, "/users/17/orders?x=1") << n;
  }
  ASSERT_TRUE(p.parse(kNginx, e));
  EXPECT_FALSE(e.repaired);
  EXPECT_EQ(e.ua, "curl/7.88.1");
}

TEST(NginxParser, ACutOffUserAgentInTheMiddleOfAFormatIsNotGuessed) {
  std::string error;
  // The user agent is quoted but not last: a missing quote there leaves the rest unknowable.
  auto p =
      NginxParser::compile(R"($remote_addr [$time_local] "$request" $status "$http_user_agent" $request_time)", &error);
  ASSERT_TRUE(p) << error;
  Entry e;
  EXPECT_TRUE(p->parse(R"(10.0.0.1 [26/Nov/2026:23:50:01 +0000] "GET / HTTP/1.1" 200 "curl/8" 0.010)", e));
  EXPECT_FALSE(p->parse(R"(10.0.0.1 [26/Nov/2026:23:50:01 +0000] "GET / HTTP/1.1" 200 "curl/8)", e));
}

TEST(NginxParser, NamedByItsFormatNotByAServer) {
  std::string error;
  EXPECT_EQ(combined().format_name(), "combined");
  EXPECT_FALSE(combined().logs_completion());
  auto custom = NginxParser::compile(R"($remote_addr "$request" $status)", &error);
  ASSERT_TRUE(custom) << error;
  EXPECT_EQ(custom->format_name(), "custom");
}

// $request_completion and $sent_http_content_length tell a cut-short 200 exactly.
TEST(NginxParser, RequestCompletionAndContentLengthMarkCutsExactly) {
  std::string error;
  auto completion = NginxParser::compile(std::string(NginxParser::kCombined) + " $request_completion", &error);
  ASSERT_TRUE(completion) << error;
  EXPECT_TRUE(completion->logs_completion());
  EXPECT_EQ(completion->format_name(), "custom");
  const std::string head = R"(10.0.0.1 - - [26/Nov/2026:23:50:01 +0000] "GET /f.mp4 HTTP/1.1" )";
  Entry e;
  ASSERT_TRUE(completion->parse(head + R"(200 720896 "-" "curl/8" -)", e));
  EXPECT_EQ(e.outcome, Outcome::kClientClosed);
  EXPECT_EQ(e.phase, Phase::kResponse);
  EXPECT_EQ(e.cut, Cut::kExact);
  ASSERT_TRUE(completion->parse(head + R"(200 1048576 "-" "curl/8" OK)", e));
  EXPECT_EQ(e.outcome, Outcome::kOk);
  EXPECT_EQ(e.cut, Cut::kNone);
  ASSERT_TRUE(completion->parse(head + R"(304 0 "-" "curl/8" -)", e));  // no body to complete
  EXPECT_EQ(e.cut, Cut::kNone);

  auto length = NginxParser::compile(std::string(NginxParser::kCombined) + " $sent_http_content_length", &error);
  ASSERT_TRUE(length) << error;
  EXPECT_TRUE(length->logs_completion());
  ASSERT_TRUE(length->parse(head + R"(200 720896 "-" "curl/8" 1048576)", e));
  EXPECT_EQ(e.cut, Cut::kExact);
  ASSERT_TRUE(length->parse(head + R"(200 1048576 "-" "curl/8" 1048576)", e));
  EXPECT_EQ(e.cut, Cut::kNone);
  ASSERT_TRUE(length->parse(head + R"(200 720896 "-" "curl/8" -)", e));  // chunked: no length to compare
  EXPECT_EQ(e.cut, Cut::kNone);
  // $bytes_sent counts the header too: it cannot be compared with Content-Length.
  auto total = NginxParser::compile(R"($remote_addr "$request" $status $bytes_sent $sent_http_content_length)", &error);
  ASSERT_TRUE(total) << error;
  EXPECT_FALSE(total->logs_completion());
}

TEST(NginxParser, CustomFormat) {
  std::string error;
  auto p = NginxParser::compile(
      R"($remote_addr [$time_iso8601] $request_method $request_uri $status $request_time $bytes_sent "$http_user_agent")",
      &error);
  ASSERT_TRUE(p) << error;
  Entry e;
  ASSERT_TRUE(p->parse(R"(10.1.2.3 [2026-11-26T23:50:01+00:00] GET /a/1 499 29.950 0 "Go-http-client/1.1")", e));
  EXPECT_EQ(e.client, "10.1.2.3");
  EXPECT_EQ(e.path, "/a/1");
  EXPECT_EQ(e.status, 499);
  EXPECT_DOUBLE_EQ(e.duration_ms, 29950);
  EXPECT_EQ(e.ua, "Go-http-client/1.1");
  EXPECT_FALSE(p->parse(R"(10.1.2.3 [2026-11-26T23:50:01+00:00] GET /a/1 abc 29.950 0 "x")", e));
  for (const char* bad : {"$remote_addr $request", "$remote_addr$status", "${status", "$ $status"}) {
    EXPECT_FALSE(NginxParser::compile(bad, &error)) << bad;
    EXPECT_EQ(error.rfind("--nginx-format: ", 0), 0u) << error;
  }
}

constexpr std::string_view kHaproxy =
    R"(Nov 26 23:50:01 lb1 haproxy[4242]: 198.51.100.7:51234 [26/Nov/2026:23:50:01.123] www app/srv1 )"
    R"(0/0/1/-1/30001 -1 0 - - CH-- 10/10/2/1/0 0/0 "GET /reports/77/export HTTP/1.1")";

TEST(HaproxyParser, TerminationStateGivesOutcomeAndPhase) {
  Entry e;
  ASSERT_TRUE(parse_haproxy(kHaproxy, e));
  EXPECT_EQ(e.client, "198.51.100.7:51234");
  EXPECT_EQ(e.ts_ms, parse_iso8601("2026-11-26T23:50:01.123Z"));
  EXPECT_EQ(e.method, "GET");
  EXPECT_EQ(e.path, "/reports/77/export");
  EXPECT_EQ(e.outcome, Outcome::kClientClosed);
  EXPECT_EQ(e.phase, Phase::kHandler);
  EXPECT_DOUBLE_EQ(e.duration_ms, 30001);
  struct Case {
    const char* state;
    Outcome outcome;
    Phase phase;
    Timer timer;
  };
  const Case cases[] = {
      {"CD--", Outcome::kClientClosed, Phase::kResponse, Timer::kNone},
      {"cD--", Outcome::kTimeout, Phase::kResponse, Timer::kSend},
      {"cR--", Outcome::kTimeout, Phase::kRequestHeaders, Timer::kHeader},
      {"sH--", Outcome::kTimeout, Phase::kHandler, Timer::kHandler},
      {"SC--", Outcome::kHandlerError, Phase::kHandler, Timer::kNone},
      {"PR--", Outcome::kProtocolError, Phase::kRequestHeaders, Timer::kNone},
      {"----", Outcome::kOk, Phase::kResponse, Timer::kNone},
  };
  for (const Case& c : cases) {
    std::string line(kHaproxy);
    line.replace(line.find("CH--"), 4, c.state);
    ASSERT_TRUE(parse_haproxy(line, e)) << c.state;
    EXPECT_EQ(e.outcome, c.outcome) << c.state;
    EXPECT_EQ(e.phase, c.phase) << c.state;
    EXPECT_EQ(e.timer, c.timer) << c.state;
  }
}

TEST(HaproxyParser, EveryTruncationIsRejected) {
  Entry e;
  for (std::size_t n = 0; n < kHaproxy.size(); ++n) EXPECT_FALSE(parse_haproxy(kHaproxy.substr(0, n), e)) << n;
}

TEST(DetectFormat, ByContent) {
  EXPECT_EQ(detect_format(kJson), Format::kJson);
  EXPECT_EQ(detect_format(kNginx), Format::kNginx);
  EXPECT_EQ(detect_format(kHaproxy), Format::kHaproxy);
  // Without the syslog prefix: the date with milliseconds and no zone.
  EXPECT_EQ(detect_format(kHaproxy.substr(kHaproxy.find("198.51"))), Format::kHaproxy);
}

}  // namespace
}  // namespace unbroken::analyze
