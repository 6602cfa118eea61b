// https:// upstreams through the library: a TLS front (so X-Forwarded-Proto is https) proxying to a
// TLS upstream on loopback, both http::Servers in this process. The upstream's certificate is
// verified (CA file, host name) with the reason in the record's upstream error, pooled TLS
// connections are reused without a new handshake, and a handshake that never finishes is the
// connect timer's.

#include <gtest/gtest.h>
#include <openssl/x509_vfy.h>

#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <vector>

#include "../../common/test_certs.h"
#include "../../common/tls_client.h"
#include "http/server.h"
#include "net/socket.h"
#include "proxy/proxy_handler.h"
#include "proxy/upstream_group.h"

namespace unbroken::proxy {
namespace {

using namespace std::chrono_literals;
using testing::TlsClient;

// What a front record says of its upstream side, copied out of the callback.
struct Seen {
  http::Outcome outcome;
  int status;
  std::optional<http::TimerKind> timer;
  bool has_upstream = false;
  bool reused = false;
  int retries = 0;
  std::string upstream, error;
};

std::unique_ptr<http::Server> tls_server(http::Router& router, const testing::TestCert& cert,
                                         http::RecordSink on_record) {
  net::TlsSetupError error;
  auto tls = net::TlsServerContext::create({.certs = {{cert.cert, cert.key}}}, error);
  EXPECT_TRUE(tls) << error.message;
  http::ServerOptions opts;
  opts.tls_listen = {*net::SocketAddress::parse("127.0.0.1:0")};
  opts.tls = std::move(tls);
  opts.threads = 1;
  auto s = std::make_unique<http::Server>(opts, router, std::move(on_record));
  EXPECT_TRUE(s->start().ok());
  return s;
}

class UpstreamTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("unbroken-upstream-tls-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    app_cert_ = certs_.make(dir_.string(), "app", {"localhost", "127.0.0.1"});
    other_ca_ = certs_.make(dir_.string(), "other", {"localhost", "127.0.0.1"});
    front_cert_ = certs_.make(dir_.string(), "front", {"localhost"});
    app_router_.add("GET", "/hello", [](const http::ExchangePtr& ex) {
      ex->respond(200, "proto=" + std::string(ex->request().header("x-forwarded-proto")) + "\n");
    });
    app_ = tls_server(app_router_, app_cert_, [](const http::RequestRecord&) {});
    app_port_ = app_->tls_addresses()[0].port();
  }
  void TearDown() override {
    for (auto* s : {front_.get(), app_.get()}) {
      if (!s) continue;
      s->drain();
      s->wait();
    }
    front_.reset();
    app_.reset();
    std::filesystem::remove_all(dir_);
  }

  struct Upstream {
    std::string name;  // "https://127.0.0.1:PORT"
    std::string host;  // the name its certificate is verified for
  };
  // The front, proxying every path to `upstreams`, verified against `ca`.
  void start_front(const std::vector<Upstream>& upstreams, const std::string& ca) {
    auto s = std::make_shared<ProxySettings>();
    for (const Upstream& u : upstreams) {
      s->upstreams.push_back(*net::SocketAddress::parse(u.name.substr(8)));
      s->names.push_back(u.name);
      s->tls_hosts.push_back(u.host);
    }
    s->group_name = upstreams[0].name;
    s->default_host = upstreams[0].name.substr(8);
    net::TlsSetupError error;
    s->tls = net::TlsClientContext::create({ca}, error);
    ASSERT_TRUE(s->tls) << error.message;
    s->connect_timeout = 300ms;
    s->group = std::make_shared<UpstreamGroup>(*s);
    front_router_ = std::make_unique<http::Router>();
    front_router_->add("*", "/*", make_proxy_handler(s), http::BodyMode::kStream);
    front_ = tls_server(*front_router_, front_cert_, [this](const http::RequestRecord& r) { on_record(r); });
    front_port_ = front_->tls_addresses()[0].port();
  }
  void start_front(const std::string& upstream, const std::string& ca, const std::string& host) {
    start_front({{upstream, host}}, ca);
  }

  void on_record(const http::RequestRecord& r) {
    if (r.phase == http::Phase::kTlsHandshake) return;  // the handshake records of closing clients
    std::lock_guard lock(mu_);
    Seen s{r.outcome, r.status, r.timer, false, false, 0, {}, {}};
    if (r.upstream) {
      s.has_upstream = true;
      s.reused = r.upstream->reused;
      s.retries = r.upstream->retries;
      s.upstream = std::string(r.upstream->upstream);
      s.error = std::string(r.upstream->error);
    }
    seen_.push_back(std::move(s));
    cv_.notify_all();
  }
  std::vector<Seen> wait_records(std::size_t n) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, 5s, [&] { return seen_.size() >= n; });
    return seen_;
  }

  // GET /hello on `c`; the response up to the end of its one-line body.
  static std::string get(TlsClient& c) {
    EXPECT_TRUE(c.write("GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n"));
    std::string r = c.read_until("\r\n\r\n");
    if (r.find("\r\n\r\n") + 4 >= r.size() || r.back() != '\n') r += c.read_until("\n");
    return r;
  }
  TlsClient client() { return TlsClient(front_port_, {.sni = "localhost", .ca_file = front_cert_.cert}); }

  std::filesystem::path dir_;
  testing::CertMaker certs_;
  testing::TestCert app_cert_, other_ca_, front_cert_;
  http::Router app_router_;
  std::unique_ptr<http::Router> front_router_;  // one per front: a case of a table makes its own
  std::unique_ptr<http::Server> app_, front_;
  std::uint16_t app_port_ = 0, front_port_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Seen> seen_;
};

TEST_F(UpstreamTlsTest, VerifiedUpstreamAnswersAndItsConnectionIsReused) {
  std::string upstream = "https://127.0.0.1:" + std::to_string(app_port_);
  start_front(upstream, app_cert_.cert, "localhost");
  TlsClient c = client();
  ASSERT_TRUE(c.connected()) << c.error();
  for (int i = 0; i < 2; ++i) {
    std::string r = get(c);
    EXPECT_TRUE(r.starts_with("HTTP/1.1 200 ")) << r;
    // The client spoke TLS to the front: the application is told so.
    EXPECT_TRUE(r.ends_with("proto=https\n")) << r;
  }
  auto seen = wait_records(2);
  ASSERT_GE(seen.size(), 2u);
  for (const Seen& s : seen) {
    EXPECT_EQ(s.outcome, http::Outcome::kOk);
    ASSERT_TRUE(s.has_upstream);
    EXPECT_EQ(s.upstream, upstream);
    EXPECT_EQ(s.error, "");
  }
  EXPECT_FALSE(seen[0].reused);
  EXPECT_TRUE(seen[1].reused);  // the pooled TLS connection: no second handshake
}

TEST_F(UpstreamTlsTest, AFailedVerificationIsAProtocolErrorWithTheReason) {
  testing::TestCert expired = certs_.make(dir_.string(), "expired", {"localhost", "127.0.0.1"}, nullptr, false, -1);
  http::Router expired_router;
  expired_router.add("GET", "/hello", [](const http::ExchangePtr& ex) { ex->respond(200, "never\n"); });
  auto expired_app = tls_server(expired_router, expired, [](const http::RequestRecord&) {});
  struct Case {
    const char* name;
    std::uint16_t port;
    std::string ca, host;
    long reason;
  };
  const Case cases[] = {
      {"unknown CA", app_port_, other_ca_.cert, "localhost", X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT},
      {"name mismatch", app_port_, app_cert_.cert, "other.example", X509_V_ERR_HOSTNAME_MISMATCH},
      {"expired", expired_app->tls_addresses()[0].port(), expired.cert, "localhost", X509_V_ERR_CERT_HAS_EXPIRED},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(k.name);
    seen_.clear();
    start_front("https://127.0.0.1:" + std::to_string(k.port), k.ca, k.host);
    {
      TlsClient c = client();
      ASSERT_TRUE(c.connected()) << c.error();
      std::string r = get(c);
      EXPECT_TRUE(r.starts_with("HTTP/1.1 502 ")) << r;
    }
    auto seen = wait_records(1);
    ASSERT_GE(seen.size(), 1u);
    EXPECT_EQ(seen[0].outcome, http::Outcome::kUpstreamProtocolError);
    EXPECT_EQ(seen[0].status, 502);
    EXPECT_EQ(seen[0].error, X509_verify_cert_error_string(k.reason));
    front_->drain();
    front_->wait();
    front_.reset();
  }
  expired_app->drain();
  expired_app->wait();
}

// Nothing reached the application: the request moves on to the route's next upstream, as after a
// refused connect, and the failure counts against the upstream that did not verify.
TEST_F(UpstreamTlsTest, AFailedVerificationMovesOnToTheNextUpstream) {
  std::string app = "https://127.0.0.1:" + std::to_string(app_port_);
  start_front({{app, "other.example"}, {app, "localhost"}}, app_cert_.cert);
  TlsClient c = client();
  ASSERT_TRUE(c.connected()) << c.error();
  for (int i = 0; i < 2; ++i) EXPECT_TRUE(get(c).starts_with("HTTP/1.1 200 ")) << i;
  auto seen = wait_records(2);
  ASSERT_GE(seen.size(), 2u);
  // Round robin: a pick of the mismatched name was retried once, on the other.
  EXPECT_GE(seen[0].retries + seen[1].retries, 1);
  for (const Seen& s : seen) EXPECT_LE(s.retries, 1);
  for (const Seen& s : seen) EXPECT_EQ(s.outcome, http::Outcome::kOk);
}

TEST_F(UpstreamTlsTest, AHandshakeThatNeverFinishesIsTheConnectTimer) {
  // Listening, never accepting: the kernel completes the TCP handshake, nobody answers the ClientHello.
  auto silent = net::listen_tcp(*net::SocketAddress::parse("127.0.0.1:0"), false);
  ASSERT_TRUE(silent);
  std::uint16_t silent_port = net::local_address(silent->get())->port();
  start_front("https://127.0.0.1:" + std::to_string(silent_port), app_cert_.cert, "localhost");
  TlsClient c = client();
  ASSERT_TRUE(c.connected()) << c.error();
  std::string r = get(c);
  EXPECT_TRUE(r.starts_with("HTTP/1.1 504 ")) << r;
  auto seen = wait_records(1);
  ASSERT_GE(seen.size(), 1u);
  EXPECT_EQ(seen[0].outcome, http::Outcome::kUpstreamTimeout);
  EXPECT_EQ(seen[0].timer, http::TimerKind::kUpstreamConnect);
}

}  // namespace
}  // namespace unbroken::proxy
