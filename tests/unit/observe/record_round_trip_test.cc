// One record schema (base/record_schema.h): what the server's access log writes, analyze reads back.
// Every outcome, phase and timer goes through the real writer (observe::append_json) and the real
// reader (analyze::JsonLineParser), and every field must survive the trip.

#include <gtest/gtest.h>
#include <simdjson.h>

#include <set>
#include <string>

#include "analyze/parsers.h"
#include "base/record_schema.h"
#include "observe/access_log.h"

namespace unbroken {
namespace {

namespace f = schema::field;

// The fields the analyzer has no use for: the writer writes them, the reader skips them, and this
// test checks them from the JSON instead. A finished handshake's version, cipher, SNI and resumption
// say nothing about how a request ended, which is what analyze reports on; tls_error does.
const std::set<std::string_view> kNotRead{
    f::kConn,      f::kReq,        f::kReferer,   f::kBytesIn, f::kEncoding,  f::kUpstreamBytesIn, f::kUpstreamBytesOut,
    f::kRequestId, f::kTlsVersion, f::kTlsCipher, f::kSni,     f::kTlsResumed};

http::RequestRecord full_record(schema::Outcome o, schema::Phase p, std::optional<schema::TimerKind> t) {
  http::RequestRecord r;
  r.ts = std::chrono::system_clock::time_point(std::chrono::milliseconds(1'795'000'000'123));
  r.conn = 7;
  r.req = 3;
  r.client = "[2001:db8::1]:443";
  r.method = "POST";
  r.path = "/up/\"q\"\\load?x=1";
  r.route = "POST /up/{name}";
  r.status = 499;
  r.ua = "curl/8.0 \xc3\xa9";
  r.referer = "https://example.test/";
  r.outcome = o;
  r.phase = p;
  r.timer = t;
  r.timeout_ms = 30000;
  r.bytes_in = 1234;
  r.bytes_out = 567;
  r.bytes_acked = 500;
  r.bytes_unsent = 67;
  r.encoding = "gzip";
  r.duration_ms = 412.301;
  r.handler_ms = 400.25;
  r.cancelled = true;
  r.wasted_ms = 1.5;
  r.upstream = http::UpstreamRecord{"unix:/run/app.sock",
                                    200,
                                    1.25,
                                    30.5,
                                    410.125,
                                    4096,
                                    1234,
                                    true,
                                    1,
                                    "4bf92f3577b34da6",
                                    "certificate verify failed: unable to get local issuer certificate"};
  r.tls = http::TlsRecord{"TLSv1.3", "TLS_AES_128_GCM_SHA256", "ex\"ample.test", {}, true, true};
  return r;
}

// A handshake that failed: no request, no version or cipher, the reason.
http::RequestRecord failed_handshake(std::string_view sni) {
  http::RequestRecord r;
  r.ts = std::chrono::system_clock::time_point(std::chrono::milliseconds(1'795'000'000'123));
  r.conn = 9;
  r.client = "192.0.2.7:50112";
  r.outcome = schema::Outcome::kProtocolError;
  r.phase = schema::Phase::kTlsHandshake;
  r.bytes_in = 517;
  r.duration_ms = 2.5;
  r.tls = http::TlsRecord{{}, {}, sni, "no shared cipher", false, false};
  return r;
}

std::string write_line(const http::RequestRecord& r) {
  fmt::memory_buffer buf;
  observe::append_json(buf, r);
  return fmt::to_string(buf);
}

// The reader's buffer has simdjson's padding after the line; so does this one. Entry's views point
// into *buf.
bool read_line(analyze::JsonLineParser& p, const std::string& line, std::string& buf, analyze::Entry& e) {
  buf.assign(line);
  buf.append(simdjson::SIMDJSON_PADDING, ' ');
  return p.parse(std::string_view(buf.data(), line.size()), buf.size(), e);
}

void expect_read_back(const http::RequestRecord& r, const analyze::Entry& e) {
  EXPECT_EQ(e.ts_ms, 1'795'000'000'123);
  EXPECT_EQ(e.client, r.client);
  EXPECT_EQ(e.method, r.method);
  EXPECT_EQ(e.path, r.path);
  EXPECT_EQ(e.route, r.route);
  EXPECT_EQ(e.ua, r.ua);
  EXPECT_EQ(e.status, r.status);
  EXPECT_EQ(e.outcome, r.outcome);
  EXPECT_EQ(e.phase, analyze::to_phase(r.phase));
  EXPECT_EQ(e.timer, r.timer ? analyze::to_timer(*r.timer) : analyze::Timer::kNone);
  EXPECT_EQ(e.timeout_ms, r.timer ? static_cast<std::int64_t>(r.timeout_ms) : -1);
  EXPECT_EQ(e.bytes_out, static_cast<std::int64_t>(r.bytes_out));
  EXPECT_EQ(e.bytes_acked, r.bytes_acked ? static_cast<std::int64_t>(*r.bytes_acked) : -1);
  EXPECT_EQ(e.bytes_unsent, r.bytes_unsent ? static_cast<std::int64_t>(*r.bytes_unsent) : -1);
  EXPECT_DOUBLE_EQ(e.duration_ms, r.duration_ms);
  EXPECT_DOUBLE_EQ(e.handler_ms, r.handler_ms);
  EXPECT_EQ(e.cancelled, r.cancelled);
  EXPECT_DOUBLE_EQ(e.wasted_ms, r.wasted_ms);
  if (const auto& u = r.upstream) {
    EXPECT_EQ(e.upstream, u->upstream);
    EXPECT_EQ(e.upstream_status, u->status);
    EXPECT_DOUBLE_EQ(e.upstream_connect_ms, u->connect_ms);
    EXPECT_DOUBLE_EQ(e.upstream_header_ms, u->header_ms);
    EXPECT_DOUBLE_EQ(e.upstream_ms, u->ms);
    EXPECT_EQ(e.upstream_retries, u->retries);
    EXPECT_EQ(e.upstream_reused, u->reused);
    EXPECT_EQ(e.upstream_error, u->error);
  } else {
    EXPECT_EQ(e.upstream_error, "");
  }
  EXPECT_EQ(e.tls_error, r.tls ? r.tls->error : std::string_view());
}

// The keys of the written line are exactly the schema's, in the schema's order, and the fields the
// reader skips still carry their values.
void expect_schema_keys(const http::RequestRecord& r, const std::string& line) {
  simdjson::dom::parser parser;
  simdjson::dom::object obj;
  ASSERT_EQ(parser.parse(line).get(obj), simdjson::SUCCESS) << line;
  std::vector<std::string_view> keys;
  for (auto [k, v] : obj) keys.push_back(k);
  std::vector<std::string_view> want;
  for (std::string_view k : schema::kFieldNames) {
    bool present = (k != f::kTimer && k != f::kTimeoutMs) || r.timer;
    present &= k != f::kRoute || !r.route.empty();
    present &= k != f::kBytesAcked || r.bytes_acked;
    present &= k != f::kBytesUnsent || r.bytes_unsent;
    present &= k != f::kEncoding || !r.encoding.empty();
    present &= !k.starts_with("upstream") || r.upstream;
    present &= k != f::kRequestId || (r.upstream && !r.upstream->request_id.empty());
    present &= k != f::kUpstreamError || (r.upstream && !r.upstream->error.empty());
    const bool established = r.tls && r.tls->established;
    present &= (k != f::kTlsVersion && k != f::kTlsCipher && k != f::kTlsResumed) || established;
    present &= k != f::kSni || (r.tls && !r.tls->sni.empty());
    present &= k != f::kTlsError || (r.tls && !r.tls->error.empty());
    if (present) want.push_back(k);
  }
  EXPECT_EQ(keys, want) << line;
  std::uint64_t conn = 0, req = 0, bytes_in = 0;
  std::string_view referer, encoding;
  EXPECT_EQ(obj[f::kConn].get(conn), simdjson::SUCCESS);
  EXPECT_EQ(obj[f::kReq].get(req), simdjson::SUCCESS);
  EXPECT_EQ(obj[f::kBytesIn].get(bytes_in), simdjson::SUCCESS);
  EXPECT_EQ(obj[f::kReferer].get(referer), simdjson::SUCCESS);
  EXPECT_EQ(conn, r.conn);
  EXPECT_EQ(req, r.req);
  EXPECT_EQ(bytes_in, r.bytes_in);
  EXPECT_EQ(referer, r.referer);
  if (!r.encoding.empty()) {
    EXPECT_EQ(obj[f::kEncoding].get(encoding), simdjson::SUCCESS);
    EXPECT_EQ(encoding, r.encoding);
  }
  std::string_view text;
  if (r.tls && !r.tls->sni.empty()) {
    EXPECT_EQ(obj[f::kSni].get(text), simdjson::SUCCESS);
    EXPECT_EQ(text, r.tls->sni);
  }
  if (r.tls && r.tls->established) {
    bool resumed = !r.tls->resumed;
    EXPECT_EQ(obj[f::kTlsVersion].get(text), simdjson::SUCCESS);
    EXPECT_EQ(text, r.tls->version);
    EXPECT_EQ(obj[f::kTlsCipher].get(text), simdjson::SUCCESS);
    EXPECT_EQ(text, r.tls->cipher);
    EXPECT_EQ(obj[f::kTlsResumed].get(resumed), simdjson::SUCCESS) << "a JSON bool";
    EXPECT_EQ(resumed, r.tls->resumed);
  }
}

// Writes r, reads it back into e, and checks it both ways; false when the line could not be read.
bool round_trip(analyze::JsonLineParser& parser, std::string& buf, const http::RequestRecord& r, analyze::Entry& e) {
  std::string line = write_line(r);
  SCOPED_TRACE(line);
  if (!read_line(parser, line, buf, e)) return false;
  expect_read_back(r, e);
  expect_schema_keys(r, line);
  return true;
}

TEST(RecordRoundTrip, EveryOutcomePhaseAndTimerSurvives) {
  analyze::JsonLineParser parser;
  std::string buf;
  for (std::size_t o = 0; o < schema::kOutcomeCount; ++o) {
    for (std::size_t p = 0; p < schema::kPhaseCount; ++p) {
      for (std::size_t t = 0; t <= schema::kTimerCount; ++t) {
        std::optional<schema::TimerKind> timer;
        if (t < schema::kTimerCount) timer = static_cast<schema::TimerKind>(t);
        auto r = full_record(static_cast<schema::Outcome>(o), static_cast<schema::Phase>(p), timer);
        analyze::Entry e;
        ASSERT_TRUE(round_trip(parser, buf, r, e));
        // The names are the schema's, as text, not only as values that happen to agree.
        EXPECT_EQ(analyze::name(e.outcome), schema::kOutcomeNames[o]);
        EXPECT_EQ(analyze::name(e.phase), schema::kPhaseNames[p]);
        if (timer) {
          EXPECT_EQ(analyze::name(e.timer), schema::kTimerNames[t]);
        }
      }
    }
  }
}

// The optional fields left out: a connection that ended before its head was routed.
TEST(RecordRoundTrip, OptionalFieldsLeftOutReadAsUnknown) {
  auto r = full_record(schema::Outcome::kClientClosed, schema::Phase::kIdle, std::nullopt);
  r.route = {};
  r.bytes_acked.reset();
  r.bytes_unsent.reset();
  r.encoding = {};
  r.cancelled = false;
  analyze::JsonLineParser parser;
  std::string buf;
  analyze::Entry e;
  EXPECT_TRUE(round_trip(parser, buf, r, e));
}

// TLS records: established (resumed or not, with and without SNI), failed (with and without SNI),
// a plain connection; and upstream_error present or absent.
TEST(RecordRoundTrip, TlsAndUpstreamErrorFieldsSurvive) {
  std::vector<http::RequestRecord> records;
  records.push_back(full_record(schema::Outcome::kOk, schema::Phase::kResponse, std::nullopt));
  auto r = records.back();
  r.tls->resumed = false;
  r.tls->sni = {};
  r.upstream->error = {};
  records.push_back(r);
  r.tls.reset();
  records.push_back(r);
  records.push_back(failed_handshake("example.test"));
  records.push_back(failed_handshake({}));
  r = failed_handshake({});
  r.outcome = schema::Outcome::kTimeout;
  r.timer = schema::TimerKind::kTlsHandshake;
  r.timeout_ms = 10000;
  r.tls->error = {};
  records.push_back(r);
  analyze::JsonLineParser parser;
  std::string buf;
  for (const auto& rec : records) {
    analyze::Entry e;
    EXPECT_TRUE(round_trip(parser, buf, rec, e));
  }
}

// All an Entry holds, as text, to tell two apart.
std::string describe(const analyze::Entry& e) {
  return fmt::format("{} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} | {} {} {} {} {} {} {} {} | {}", e.ts_ms,
                     e.client, e.method, e.path, e.route, e.ua, e.status, analyze::name(e.outcome),
                     analyze::name(e.phase), analyze::name(e.timer), e.timeout_ms, e.bytes_out, e.bytes_acked,
                     e.bytes_unsent, e.duration_ms, e.handler_ms, e.cancelled, e.wasted_ms, e.upstream,
                     e.upstream_status, e.upstream_connect_ms, e.upstream_header_ms, e.upstream_ms, e.upstream_retries,
                     e.upstream_reused, e.upstream_error, e.tls_error);
}

// Each key of obj left out in turn: the entry read differs unless the key is one the reader skips.
// Keys in `done` were checked on an earlier record (an empty method reads as no method at all).
void expect_dropping_each(simdjson::dom::object obj, analyze::JsonLineParser& parser, std::string& buf,
                          const std::string& full, const std::set<std::string, std::less<>>& done) {
  analyze::Entry e;
  for (auto [key, unused] : obj) {
    if (done.contains(key)) continue;
    std::string without = "{";
    for (auto [k, v] : obj) {
      if (k == key) continue;
      if (without.size() > 1) without += ',';
      without += fmt::format("\"{}\":{}", k, simdjson::minify(v));
    }
    without += "}";
    std::string dropped = read_line(parser, without, buf, e) ? describe(e) : "rejected";
    if (kNotRead.contains(key)) {
      EXPECT_EQ(dropped, full) << key << " is read after all: take it out of kNotRead";
    } else {
      EXPECT_NE(dropped, full) << key << " is written but not read";
    }
  }
}

// Every field the reader knows is one the writer writes, and the other way round but for kNotRead:
// a line without a field the reader reads gives a different Entry; without one it skips, the same.
// Two records between them write every field: a request on an established TLS connection, and a
// failed handshake (tls_error).
TEST(RecordRoundTrip, ReaderKnowsEveryWrittenField) {
  std::set<std::string, std::less<>> written;
  for (const auto& r : {full_record(schema::Outcome::kTimeout, schema::Phase::kHandler, schema::TimerKind::kHandler),
                        failed_handshake("example.test")}) {
    std::string line = write_line(r);
    SCOPED_TRACE(line);
    simdjson::dom::parser dom;
    simdjson::dom::object obj;
    ASSERT_EQ(dom.parse(line).get(obj), simdjson::SUCCESS);
    analyze::JsonLineParser parser;
    std::string buf;
    analyze::Entry e;
    ASSERT_TRUE(read_line(parser, line, buf, e));
    const std::string full = describe(e);
    expect_dropping_each(obj, parser, buf, full, written);
    for (auto [k, v] : obj) written.emplace(k);
  }
  for (std::string_view key : schema::kFieldNames) EXPECT_TRUE(written.contains(key)) << key << " never written";
}
}  // namespace
}  // namespace unbroken
