// The reverse proxy in front of an https:// upstream: gunicorn serving TLS (--certfile/--keyfile)
// with a certificate the test makes. Verified against --upstream-ca and answered over a pooled
// TLS connection (upstream_reused on the second request); the wrong CA and a certificate for
// another name are 502 upstream_protocol_error; an upstream that takes the TCP connection and
// never answers the ClientHello is 504 timer upstream_connect; a CA file that does not load is one
// line and exit 2.

#include <algorithm>
#include <cstdio>

#include "common/test_certs.h"
#include "integration/gunicorn_fixture.h"

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
  auto server = Server::start({{"--proxy", "/=" + upstream, "--upstream-ca", cert.cert}});
  for (int i = 0; i < 2; ++i) {
    auto r = get(server->port(), "/hello");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "hello, proxy\n");
  }
  // The second request went on the first one's TLS connection: no second handshake.
  EXPECT_TRUE(server->wait_record([](const Record& x) { return field(x, "upstream_reused") == "true"; }));
  auto recs = server->records();
  std::erase_if(recs, [](const Record& x) { return field(x, "path") != "/hello"; });
  ASSERT_EQ(recs.size(), 2u);
  for (const Record& x : recs) {
    EXPECT_EQ(field(x, "outcome"), "ok");
    EXPECT_EQ(field(x, "upstream"), upstream);
  }
  EXPECT_EQ(field(recs[0], "upstream_reused"), "false");
  EXPECT_EQ(field(recs[1], "upstream_reused"), "true");
}

TEST_F(ProxyTlsTest, AnUnverifiedUpstreamIs502UpstreamProtocolError) {
  TestCert cert = certs_.make(dir_, "app", {"app.example"});  // no 127.0.0.1: the name does not match
  TestCert other = certs_.make(dir_, "other", {"localhost", "127.0.0.1"});
  auto app = tls_app(cert);
  std::string upstream = https_upstream(*app);
  struct Case {
    const char* name;
    std::string ca;
  };
  const Case cases[] = {{"the wrong CA", other.cert}, {"a certificate for another name", cert.cert}};
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
  }
}

TEST_F(ProxyTlsTest, AHandshakeThatNeverFinishesIs504UpstreamConnect) {
  // Listening, never accepting: the kernel completes the TCP handshake, nobody reads the ClientHello.
  UniqueFd silent(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(silent.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(silent.get(), 8), 0);
  socklen_t len = sizeof a;
  ::getsockname(silent.get(), reinterpret_cast<sockaddr*>(&a), &len);
  std::string upstream = "https://127.0.0.1:" + std::to_string(ntohs(a.sin_port));
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
  std::string cmd = std::string(UNBROKEN_BINARY) +
                    " serve --listen 127.0.0.1:0 --admin off --proxy /=https://127.0.0.1:1 --upstream-ca " + dir_ +
                    "/missing.pem 2>&1; echo \"exit=$?\"";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  ::pclose(p);
  EXPECT_NE(out.find("exit=2"), std::string::npos) << out;
  auto lines = std::count(out.begin(), out.end(), '\n');
  EXPECT_NE(out.find("--upstream-ca: " + dir_ + "/missing.pem: No such file or directory"), std::string::npos) << out;
  EXPECT_LE(lines, 3) << out;  // at most the start-up line before it, the error, and exit=
}

}  // namespace
}  // namespace unbroken::testing
