// The reverse proxy in front of an https:// upstream: gunicorn serving TLS (--certfile/--keyfile)
// with a certificate the test makes. Verified against --upstream-ca and answered over a pooled
// TLS connection (upstream_reused on the second request); the wrong CA and a certificate for
// another name are 502 upstream_protocol_error; an upstream that takes the TCP connection and
// never answers the ClientHello is 504 timer upstream_connect; a CA file that does not load is one
// line and exit 2.

#include <algorithm>

#include "common/test_certs.h"
#include "common/tls_client.h"
#include "integration/gunicorn_fixture.h"
#include "net/socket.h"

namespace unbroken::testing {
namespace {

class ProxyTlsTest : public GunicornTest {
 protected:
  // gunicorn's gthread workers (they keep connections alive) serving TLS with `cert`.
  std::unique_ptr<Child> tls_app(const TestCert& cert) {
    return gunicorn("127.0.0.1:0", "tls", 1,
                    {"--worker-class", "gthread", "--threads", "4", "--keep-alive", "5", "--certfile", cert.cert,
                     "--keyfile", cert.key});
  }
  static std::string https_upstream(const Child& c) {
    std::string out = c.output();
    constexpr std::string_view kAt = "Listening at: https://127.0.0.1:";
    auto at = out.find(kAt);
    EXPECT_NE(at, std::string::npos) << out;
    if (at == std::string::npos) return "";
    return "https://127.0.0.1:" + std::to_string(std::stoi(out.substr(at + kAt.size())));
  }

  CertMaker certs_;
};

TEST_F(ProxyTlsTest, VerifiedUpstreamAnswersOverAPooledTlsConnection) {
  TestCert cert = certs_.make(dir_, "app", {"localhost", "127.0.0.1"});
  auto app = tls_app(cert);
  std::string upstream = https_upstream(*app);
  // One loop: the pool is per loop.
  auto server = Server::start(
      {{"--proxy", "/=" + upstream, "--upstream-ca", cert.cert, "--upstream-idle-timeout", "5s", "--threads", "1"}});
  for (const char* tag : {"a", "b"}) {
    auto r = get(server->port(), std::string("/hello?") + tag);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "hello, proxy\n");
  }
  std::vector<std::string> reused;
  for (const char* tag : {"a", "b"}) {
    auto rec = server->wait_record([&](const Record& x) { return field(x, "path") == std::string("/hello?") + tag; });
    ASSERT_TRUE(rec);
    EXPECT_EQ(field(*rec, "outcome"), "ok");
    EXPECT_EQ(field(*rec, "upstream"), upstream);
    reused.push_back(field(*rec, "upstream_reused"));
  }
  // The second request went on the first one's TLS connection: no second handshake.
  EXPECT_EQ(reused, (std::vector<std::string>{"false", "true"}));
}

// X-Forwarded-Proto is the client's side: https from a --tls-listen client, http from a plain one,
// whatever the upstream's scheme (here TLS at both ends).
TEST_F(ProxyTlsTest, AClientOverTlsIsForwardedAsHttps) {
  TestCert cert = certs_.make(dir_, "app", {"localhost", "127.0.0.1"});
  TestCert front = certs_.make(dir_, "front", {"localhost"});
  auto app = tls_app(cert);
  auto server = Server::start({{"--proxy", "/=" + https_upstream(*app), "--upstream-ca", cert.cert, "--tls-listen",
                                "127.0.0.1:0", "--tls-cert", front.cert, "--tls-key", front.key}});
  std::string err = server->stderr_text();
  constexpr std::string_view kAt = "tls listening on https://127.0.0.1:";
  auto at = err.find(kAt);
  ASSERT_NE(at, std::string::npos) << err;
  auto tls_port = static_cast<std::uint16_t>(std::stoi(err.substr(at + kAt.size())));
  TlsClient c(tls_port, {.sni = "localhost", .ca_file = front.cert});
  ASSERT_TRUE(c.connected()) << c.error();
  ASSERT_TRUE(c.write("GET /headers HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"));
  // Two statements: the operands of + may be evaluated in either order.
  std::string over_tls = c.read_until("\r\n0\r\n\r\n");
  over_tls += c.read_some();
  EXPECT_TRUE(over_tls.starts_with("HTTP/1.1 200 ")) << over_tls;
  EXPECT_NE(over_tls.find("X-Forwarded-Proto: https\n"), std::string::npos) << over_tls;
  auto plain = get(server->port(), "/headers");
  ASSERT_TRUE(plain);
  EXPECT_NE(plain->body.find("X-Forwarded-Proto: http\n"), std::string::npos) << plain->body;
}

TEST_F(ProxyTlsTest, AnUnverifiedUpstreamIs502UpstreamProtocolError) {
  TestCert cert = certs_.make(dir_, "app", {"app.example"});  // no 127.0.0.1: the name does not match
  TestCert other = certs_.make(dir_, "other", {"localhost", "127.0.0.1"});
  auto app = tls_app(cert);
  std::string upstream = https_upstream(*app);
  struct Case {
    const char* name;
    std::string ca;
    const char* reason;  // the record's upstream_error: OpenSSL's verification message
  };
  const Case cases[] = {{"the wrong CA", other.cert, "self-signed certificate"},
                        {"a certificate for another name", cert.cert, "IP address mismatch"}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto server = Server::start({{"--proxy", "/=" + upstream, "--upstream-ca", c.ca}});
    auto r = get(server->port(), "/hello");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 502);
    auto rec = server->wait_record([](const Record& x) { return field(x, "path") == "/hello"; });
    ASSERT_TRUE(rec);
    EXPECT_EQ(field(*rec, "outcome"), "upstream_protocol_error");
    EXPECT_EQ(field(*rec, "status"), "502");
    EXPECT_EQ(field(*rec, "upstream_error"), c.reason);
  }
}

TEST_F(ProxyTlsTest, AHandshakeThatNeverFinishesIs504UpstreamConnect) {
  // Listening, never accepting: the kernel completes the TCP handshake, nobody reads the ClientHello.
  auto silent = net::listen_tcp(*net::SocketAddress::parse("127.0.0.1:0"), false);
  ASSERT_TRUE(silent);
  std::uint16_t silent_port = net::local_address(silent->get())->port();
  std::string upstream = "https://127.0.0.1:" + std::to_string(silent_port);
  auto server = Server::start({{"--proxy", "/=" + upstream, "--upstream-connect-timeout", "300ms"}});
  auto r = get(server->port(), "/hello");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 504);
  auto rec = server->wait_record([](const Record& x) { return field(x, "path") == "/hello"; });
  ASSERT_TRUE(rec);
  EXPECT_EQ(field(*rec, "outcome"), "upstream_timeout");
  EXPECT_EQ(field(*rec, "timer"), "upstream_connect");
}

TEST_F(ProxyTlsTest, ACaFileThatDoesNotLoadIsOneLineAndExit2) {
  std::string missing = dir_ + "/missing.pem";
  ChildResult r = run_isolated({UNBROKEN_BINARY, "serve", "--listen", "127.0.0.1:0", "--admin", "off", "--proxy",
                                "/=https://127.0.0.1:1", "--upstream-ca", missing},
                               dir_, 10s);
  EXPECT_EQ(r.status, 2) << r.err;
  std::string all = r.out + r.err;
  EXPECT_NE(all.find("--upstream-ca: " + missing + ": No such file or directory\n"), std::string::npos) << all;
  EXPECT_EQ(std::count(all.begin(), all.end(), '\n'), 1) << all;
}

}  // namespace
}  // namespace unbroken::testing
