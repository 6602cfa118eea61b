// Every way a client can leave a TLS connection: during the handshake (FIN, RST, a stall, garbage,
// plain HTTP, a client that rejects the certificate, no shared cipher) and in each later phase as
// the plain suite does (departure_test.cc). Each is one record saying who left and where.

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include "harness.h"

namespace unbroken::testing {
namespace {

class TlsDeparture : public SharedServerTest {
 protected:
  static void SetUpTestSuite() {
    files_ = new TlsTestFiles();
    std::vector<std::string> args = TlsTestFiles::serve_args({files_->localhost});
    args.insert(args.end(), {"--tls-handshake-timeout", "300ms", "--send-timeout", "500ms"});
    start_shared({args});
  }
  static void TearDownTestSuite() {
    SharedServerTest::TearDownTestSuite();
    delete files_;
    files_ = nullptr;
  }
  void TearDown() override {
    SharedServerTest::TearDown();
    // A request after each case: the server still serves TLS, and its record keeps this test's
    // records from the next one.
    std::size_t before = server_->records().size();
    auto ok = https_get(port(), "/hello.txt", verified());
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->status, 200);
    EXPECT_TRUE(server_->wait_record([](const Record& r) { return r.at("path") == "/hello.txt"; }, 10s, before));
  }
  static std::uint16_t port() { return server_->tls_port(); }
  // A verified connection whose writes go out at once. Without TCP_NODELAY, Nagle holds a request
  // written while the client's Finished is still unacknowledged, and an abortive close (SO_LINGER
  // 0) then drops it unsent: the server would see a handshake and a RST, and no request.
  static std::unique_ptr<TlsClient> connect() {
    auto c = std::make_unique<TlsClient>(port(), verified());
    int on = 1;
    ::setsockopt(c->fd(), IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    return c;
  }
  static TlsClientOptions verified() { return {"localhost", files_->localhost.cert}; }

  std::optional<Record> expect_record(const std::string& outcome, const std::string& phase) {
    auto r = record_since_start([&](const Record& r) { return r.at("outcome") == outcome && r.at("phase") == phase; });
    EXPECT_TRUE(r) << "no " << outcome << "/" << phase << " record, but: " << seen();
    std::string sample = "unbroken_disconnects_total{outcome=\"" + outcome + "\",phase=\"" + phase + "\"}";
    EXPECT_GE(server_->metric(sample), metric_at_start(sample) + 1) << sample;
    return r;
  }
  // The records since this test began, for a failure's message.
  std::string seen() const {
    std::string out;
    auto all = server_->records();
    for (std::size_t i = seen_; i < all.size(); ++i)
      out += all[i].at("outcome") + "/" + all[i].at("phase") + " " + all[i].at("path") + "; ";
    return out;
  }
  // A handshake that ended without a request: req 0, no status (400 for plain HTTP), and no TLS
  // facts but the error.
  std::optional<Record> expect_handshake_record(const std::string& outcome, const std::string& tls_error,
                                                const std::string& status = "0") {
    auto r = expect_record(outcome, "tls_handshake");
    if (!r) return r;
    EXPECT_EQ(r->at("req"), "0");
    EXPECT_EQ(r->at("status"), status);
    EXPECT_EQ(field(*r, "tls_error"), tls_error);
    EXPECT_EQ(field(*r, "tls_version"), "");
    // Counted by how it ended: the handshake results are the outcomes' names.
    std::string sample = "unbroken_tls_handshakes_total{result=\"" + outcome + "\"}";
    EXPECT_GE(server_->metric(sample), metric_at_start(sample) + 1) << sample;
    return r;
  }
  // An OpenSSL s_client run with `flags` that must fail the handshake.
  ChildResult s_client(std::vector<std::string> flags) {
    std::vector<std::string> argv{"/usr/bin/openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(port())};
    argv.insert(argv.end(), flags.begin(), flags.end());
    return run_isolated(argv, files_->dir, 15s);
  }

  static inline TlsTestFiles* files_ = nullptr;
};

TEST_F(TlsDeparture, ClientHelloThenFinIsClientClosed) {
  UniqueFd fd = connect_to(port());
  send_all(fd.get(), client_hello("localhost"));
  ::shutdown(fd.get(), SHUT_WR);
  read_until_close(fd.get());  // the ServerHello and what follows, so that our close is a FIN, not a RST
  expect_handshake_record("client_closed", "");
}

TEST_F(TlsDeparture, ClientHelloThenRstIsClientReset) {
  UniqueFd fd = connect_to(port());
  send_all(fd.get(), client_hello("localhost"));
  reset(fd);
  expect_handshake_record("client_reset", "");
}

TEST_F(TlsDeparture, StallMidClientHelloIsCutByTheHandshakeTimer) {
  UniqueFd fd = connect_to(port());
  send_all(fd.get(), client_hello("localhost").substr(0, 20));
  auto r = expect_handshake_record("timeout", "");
  ASSERT_TRUE(r);
  EXPECT_EQ(field(*r, "timer"), "tls_handshake");
  EXPECT_EQ(field(*r, "timeout_ms"), "300");
  std::string sample = "unbroken_timeouts_total{timer=\"tls_handshake\"}";
  EXPECT_GE(server_->metric(sample), metric_at_start(sample) + 1) << sample;
}

TEST_F(TlsDeparture, GarbageIsAProtocolErrorWithOpenSslsReason) {
  UniqueFd fd = connect_to(port());
  send_all(fd.get(), std::string(64, '\x55'));
  read_until_close(fd.get());
  auto r = expect_record("protocol_error", "tls_handshake");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->at("req"), "0");
  EXPECT_NE(field(*r, "tls_error"), "") << "OpenSSL's reason";
}

TEST_F(TlsDeparture, PlainHttpOnTheTlsPortGetsA400InPlainText) {
  UniqueFd fd = connect_to(port());
  send_all(fd.get(), "GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n");
  auto resp = read_response(fd.get());
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->status, 400);
  EXPECT_TRUE(resp->closed);
  expect_handshake_record("protocol_error", "http request", "400");
}

TEST_F(TlsDeparture, AClientThatRejectsTheCertificateSaysUnknownCa) {
  ChildResult c = s_client({"-servername", "localhost", "-verify_return_error", "-CAfile", files_->other.cert});
  EXPECT_NE(c.status, 0);
  expect_handshake_record("protocol_error", "unknown ca");
}

TEST_F(TlsDeparture, NoSharedCipher) {
  ChildResult c = s_client({"-tls1_2", "-cipher", "AES128-SHA"});
  EXPECT_NE(c.status, 0);
  expect_handshake_record("protocol_error", "no shared cipher");
}

TEST_F(TlsDeparture, FinDuringRequestHead) {
  TlsClient c(port(), verified());
  ASSERT_TRUE(c.connected()) << c.error();
  ASSERT_TRUE(c.write("GET /hello.txt HTTP/1.1\r\nHo"));
  ::shutdown(c.fd(), SHUT_WR);
  auto r = expect_record("client_closed", "request_headers");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->at("status"), "499");
  EXPECT_EQ(field(*r, "tls_version"), "TLSv1.3");
  EXPECT_EQ(field(*r, "sni"), "localhost");
}

TEST_F(TlsDeparture, RstDuringRequestHead) {
  auto c = connect();
  ASSERT_TRUE(c->connected()) << c->error();
  ASSERT_TRUE(c->write("GET /hello.txt HTTP/1.1\r\nHo"));
  c->reset();
  expect_record("client_reset", "request_headers");
}

TEST_F(TlsDeparture, FinDuringHandlerCancelsIt) {
  TlsClient c(port(), verified());
  ASSERT_TRUE(c.connected()) << c.error();
  ASSERT_TRUE(c.write("GET /diag/delay/30000 HTTP/1.1\r\nHost: t\r\n\r\n"));
  ::shutdown(c.fd(), SHUT_WR);
  auto r = expect_record("client_closed", "handler");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->at("status"), "499");
  EXPECT_EQ(r->at("cancelled"), "true");
  EXPECT_LT(std::stod(r->at("duration_ms")), 10'000);
}

TEST_F(TlsDeparture, RstDuringHandler) {
  auto c = connect();
  ASSERT_TRUE(c->connected()) << c->error();
  ASSERT_TRUE(c->write("GET /diag/delay/30000 HTTP/1.1\r\nHost: t\r\n\r\n"));
  c->reset();
  auto r = expect_record("client_reset", "handler");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->at("cancelled"), "true");
}

// A cut download: what was acknowledged, in plaintext bytes, is at most what was written.
TEST_F(TlsDeparture, CutDownloadShowsAckedAtMostOut) {
  TlsClient c(port(), verified());
  ASSERT_TRUE(c.connected()) << c.error();
  ASSERT_TRUE(c.write("GET /diag/bytes/200000000 HTTP/1.1\r\nHost: t\r\n\r\n"));
  ASSERT_GE(c.read_at_least(1'000'000).size(), 1'000'000u);
  c.reset();
  auto r = record_since_start([](const Record& r) { return r.at("phase") == "response" && r.at("outcome") != "ok"; });
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->at("outcome") == "client_reset" || r->at("outcome") == "client_closed") << r->at("outcome");
  EXPECT_EQ(r->at("status"), "200");
  EXPECT_GE(std::stoull(r->at("bytes_out")), 1'000'000u);
  EXPECT_LE(std::stoull(r->at("bytes_acked")), std::stoull(r->at("bytes_out")));
}

TEST_F(TlsDeparture, FullyReadResponseIsAllAcked) {
  TlsClient c(port(), verified());
  ASSERT_TRUE(c.connected()) << c.error();
  ASSERT_TRUE(c.write("GET /diag/bytes/1000000 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
  auto resp = read_response(c);
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->body.size(), 1'000'000u);
  auto r = record_since_start([](const Record& r) { return r.at("path") == "/diag/bytes/1000000"; });
  ASSERT_TRUE(r);
  EXPECT_EQ(r->at("outcome"), "ok");
  EXPECT_EQ(r->at("bytes_acked"), r->at("bytes_out"));
}

TEST_F(TlsDeparture, StalledReaderIsCutByTheSendTimer) {
  TlsClient c(port(), verified());
  ASSERT_TRUE(c.connected()) << c.error();
  int small = 4096;
  ::setsockopt(c.fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  ASSERT_TRUE(c.write("GET /diag/bytes/10000000000 HTTP/1.1\r\nHost: t\r\n\r\n"));  // never read
  auto r = record_since_start([](const Record& r) { return field(r, "timer") == "send"; });
  ASSERT_TRUE(r);
  EXPECT_EQ(r->at("outcome"), "timeout");
  EXPECT_EQ(r->at("phase"), "response");
  EXPECT_EQ(r->at("timeout_ms"), "500");
  EXPECT_LT(std::stoull(r->at("bytes_out")), 64u << 20);
}

// The lingering close of an error response: the client still reads its 4xx over TLS.
TEST_F(TlsDeparture, MalformedRequestOverTlsStillReadsTheFourHundred) {
  TlsClient c(port(), verified());
  ASSERT_TRUE(c.connected()) << c.error();
  ASSERT_TRUE(c.write("GET\r\n\r\n" + std::string(100'000, 'x')));
  auto resp = read_response(c);
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->status, 400);
  EXPECT_TRUE(resp->closed);
  auto r = expect_record("protocol_error", "request_headers");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->at("status"), "400");
}

}  // namespace
}  // namespace unbroken::testing
