// serve's proxy setup: every configured setting lands in the route's ProxySettings, the config's
// defaults are the proxy's own, and the routes are mounted longest prefix first.

#include "app/proxy_setup.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "proxy/upstream_group.h"

namespace unbroken::app {
namespace {

using std::chrono::milliseconds;

TEST(ProxySetupTest, TheConfigDefaultsAreTheProxysOwn) {
  const proxy::ProxySettings p;
  const UpstreamConfig u;
  EXPECT_EQ(u.connect_timeout, p.connect_timeout);
  EXPECT_EQ(u.header_timeout, p.header_timeout);
  EXPECT_EQ(u.read_timeout, p.read_timeout);
  EXPECT_EQ(u.send_timeout, p.send_timeout);
  EXPECT_EQ(u.abort == "close", p.abort_close);
  EXPECT_EQ(u.abort_budget.time, p.abort_budget);
  EXPECT_EQ(u.abort_budget.bytes, p.abort_budget_bytes);
  EXPECT_EQ(u.keepalive, p.keepalive);
  EXPECT_EQ(u.idle_timeout, p.idle_timeout);
  EXPECT_EQ(u.max_fails, static_cast<std::uint64_t>(p.max_fails));
  EXPECT_EQ(u.fail_timeout, p.fail_timeout);
  EXPECT_EQ(u.health, p.health_path);
  EXPECT_EQ(u.health_interval, p.health_interval);
  EXPECT_EQ(u.request_buffering, p.request_buffering);
  EXPECT_EQ(u.buffering, p.buffering);
  EXPECT_EQ(u.buffer, p.response_buffer_memory);
  EXPECT_EQ(u.max_temp, p.response_max_temp);
  EXPECT_EQ(u.tunnel_idle_timeout, p.tunnel_idle_timeout);
  EXPECT_EQ(u.balance == "least_conn", p.balance == proxy::Balance::kLeastConn);
}

TEST(ProxySetupTest, EverySettingReachesTheProxy) {
  ServeConfig cfg;
  cfg.limits.max_body = 12345;
  cfg.temp_dir = "/var/tmp";
  ProxyRouteConfig r;
  r.route = {"/api", {"127.0.0.1:8000", "unix:/run/app.sock"}};
  UpstreamConfig& u = r.upstream;
  u.connect_timeout = milliseconds{1};
  u.header_timeout = milliseconds{2};
  u.read_timeout = milliseconds{3};
  u.send_timeout = milliseconds{4};
  u.abort = "close";
  u.abort_budget = {milliseconds{5}, 6};
  u.keepalive = 7;
  u.idle_timeout = milliseconds{8};
  u.max_fails = 9;
  u.fail_timeout = milliseconds{10};
  u.request_buffering = false;
  u.buffer = 11;
  u.max_temp = 12;
  u.tunnel_idle_timeout = milliseconds{13};
  u.balance = "least_conn";
  u.health = "/healthz";
  u.health_interval = milliseconds{14};
  u.buffering = false;
  auto s = make_proxy_settings(r, cfg);
  EXPECT_EQ(s->names, (std::vector<std::string>{"127.0.0.1:8000", "unix:/run/app.sock"}));
  ASSERT_EQ(s->upstreams.size(), 2u);
  EXPECT_EQ(s->upstreams[0].to_string(), "127.0.0.1:8000");
  EXPECT_EQ(s->connect_timeout, milliseconds{1});
  EXPECT_EQ(s->header_timeout, milliseconds{2});
  EXPECT_EQ(s->read_timeout, milliseconds{3});
  EXPECT_EQ(s->send_timeout, milliseconds{4});
  EXPECT_TRUE(s->abort_close);
  EXPECT_EQ(s->abort_budget, milliseconds{5});
  EXPECT_EQ(s->abort_budget_bytes, 6u);
  EXPECT_EQ(s->keepalive, 7u);
  EXPECT_EQ(s->idle_timeout, milliseconds{8});
  EXPECT_EQ(s->max_fails, 9);
  EXPECT_EQ(s->fail_timeout, milliseconds{10});
  EXPECT_FALSE(s->request_buffering);
  EXPECT_EQ(s->response_buffer_memory, 11u);
  EXPECT_EQ(s->response_max_temp, 12u);
  EXPECT_EQ(s->tunnel_idle_timeout, milliseconds{13});
  EXPECT_EQ(s->balance, proxy::Balance::kLeastConn);
  EXPECT_EQ(s->health_path, "/healthz");
  EXPECT_EQ(s->health_interval, milliseconds{14});
  EXPECT_FALSE(s->buffering);
  EXPECT_EQ(s->max_body, 12345u);
  EXPECT_EQ(s->temp_dir, "/var/tmp");
  ASSERT_NE(s->group, nullptr);
  EXPECT_EQ(s->group->size(), 2u);
  EXPECT_TRUE(s->group->has_health_check());
}

TEST(ProxySetupTest, HttpsUpstreamsGetTheirHostNameAndOneClientContext) {
  ServeConfig cfg;
  ProxyRouteConfig r;
  r.route = {"/", {"https://localhost:8443", "127.0.0.1:8000"}};  // mixed: each upstream its own
  auto s = make_proxy_settings(r, cfg);                           // no CA file: the system store
  EXPECT_EQ(s->names, (std::vector<std::string>{"https://localhost:8443", "127.0.0.1:8000"}));
  EXPECT_EQ(s->tls_hosts, (std::vector<std::string>{"localhost", ""}));
  ASSERT_NE(s->tls, nullptr);
  EXPECT_EQ(s->tls_host(0), "localhost");
  EXPECT_EQ(s->tls_host(1), "");
  EXPECT_EQ(s->default_host, "localhost:8443");  // the Host of a request without one: no scheme
  EXPECT_EQ(s->upstreams[0].port(), 8443);

  r.route = {"/", {"127.0.0.1:8000"}};  // no https upstream: no context, the CA file is not read
  r.upstream.ca = "/nonexistent/ca.pem";
  EXPECT_EQ(make_proxy_settings(r, cfg)->tls, nullptr);
}

TEST(ProxySetupTest, ACaFileThatDoesNotLoadIsOneLineNamingIt) {
  ServeConfig cfg;
  ProxyRouteConfig r;
  r.route = {"/", {"https://localhost:8443"}};
  r.upstream.ca = "/nonexistent/ca.pem";
  try {
    (void)make_proxy_settings(r, cfg);
    ADD_FAILURE() << "no error";
  } catch (const ProxySetupError& e) {
    std::string what = e.what();
    EXPECT_EQ(what, "--upstream-ca: /nonexistent/ca.pem: No such file or directory");
  }
  // A file that is there but holds no certificate: OpenSSL's reason.
  r.upstream.ca = std::filesystem::temp_directory_path() / ("unbroken-not-a-ca-" + std::to_string(::getpid()));
  std::ofstream(r.upstream.ca) << "not a certificate\n";
  try {
    (void)make_proxy_settings(r, cfg);
    ADD_FAILURE() << "no error";
  } catch (const ProxySetupError& e) {
    std::string what = e.what();
    EXPECT_TRUE(what.starts_with("--upstream-ca: " + r.upstream.ca + ": ")) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }
  std::filesystem::remove(r.upstream.ca);
}

TEST(ProxySetupTest, RoutesAreMountedLongestPrefixFirst) {
  ServeConfig cfg;
  cfg.proxy_routes.push_back({{"/", {"127.0.0.1:1"}}, {}});
  cfg.proxy_routes.push_back({{"/a/b", {"127.0.0.1:2"}}, {}});
  cfg.proxy_routes.push_back({{"/a", {"127.0.0.1:3"}}, {}});
  http::Router router;
  auto mounted = mount_proxies(router, cfg);
  ASSERT_EQ(mounted.size(), 3u);
  EXPECT_EQ(mounted[0]->names[0], "127.0.0.1:2");
  EXPECT_EQ(mounted[1]->names[0], "127.0.0.1:3");
  EXPECT_EQ(mounted[2]->names[0], "127.0.0.1:1");
  HealthChecks none(mounted);  // no route has a health path: no thread, nothing to stop
}

}  // namespace
}  // namespace unbroken::app
