#include "app/proxy_setup.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "proxy/upstream_group.h"

namespace unbroken::app {

std::shared_ptr<proxy::ProxySettings> make_proxy_settings(const ProxyRouteConfig& route, const ServeConfig& cfg) {
  auto s = std::make_shared<proxy::ProxySettings>();
  bool any_tls = false;
  for (const auto& u : route.route.upstreams) {
    proxy::UpstreamTarget t = proxy::split_upstream(u);
    auto a = net::SocketAddress::parse(t.address);
    if (!a) throw std::runtime_error("proxy " + route.route.prefix + ": cannot resolve upstream '" + u + "'");
    s->upstreams.push_back(*a);
    s->names.push_back(u);
    s->tls_hosts.emplace_back(t.host);
    any_tls = any_tls || t.tls;
    s->group_name += (s->group_name.empty() ? "" : ",") + u;
    if (s->names.size() == 1 && !u.starts_with("unix:")) s->default_host = t.address;
  }
  const UpstreamConfig& u = route.upstream;
  // One client context for the route's https:// upstreams, made once here: a CA file that does not
  // load stops the start (the system store is only read when some upstream needs it).
  if (any_tls) {
    // OpenSSL names no reason for a file it cannot open.
    if (!u.ca.empty() && ::access(u.ca.c_str(), R_OK) != 0)
      throw ProxySetupError("--upstream-ca: " + u.ca + ": " + std::strerror(errno));
    net::TlsSetupError error;
    s->tls = net::TlsClientContext::create({u.ca}, error);
    if (!s->tls) throw ProxySetupError("--upstream-ca: " + error.message);
  }
  s->balance = u.balance == "least_conn" ? proxy::Balance::kLeastConn : proxy::Balance::kRoundRobin;
  s->connect_timeout = u.connect_timeout;
  s->header_timeout = u.header_timeout;
  s->read_timeout = u.read_timeout;
  s->send_timeout = u.send_timeout;
  s->abort_close = u.abort == "close";
  s->abort_budget = u.abort_budget.time;
  s->abort_budget_bytes = u.abort_budget.bytes;
  s->keepalive = u.keepalive;
  s->idle_timeout = u.idle_timeout;
  s->max_fails = static_cast<int>(std::min<std::uint64_t>(u.max_fails, 1'000'000));
  s->fail_timeout = u.fail_timeout;
  s->health_path = u.health;
  s->health_interval = u.health_interval;
  s->request_buffering = u.request_buffering;
  s->buffering = u.buffering;
  s->max_body = cfg.limits.max_body;
  s->response_buffer_memory = u.buffer;
  s->response_max_temp = u.max_temp;
  s->temp_dir = cfg.temp_dir;
  s->tunnel_idle_timeout = u.tunnel_idle_timeout;
  std::string bad;
  auto trusted = proxy::TrustedProxies::parse(cfg.trusted_proxies, bad);
  if (!trusted) throw std::runtime_error("--trusted-proxies: " + bad);  // checked by the config already
  s->trusted_proxies = std::move(*trusted);
  s->group = std::make_shared<proxy::UpstreamGroup>(*s);
  return s;
}

std::vector<std::shared_ptr<const proxy::ProxySettings>> mount_proxies(
    http::Router& router, const ServeConfig& cfg, const std::shared_ptr<proxy::RequestRegistry>& requests) {
  std::vector<const ProxyRouteConfig*> routes;
  for (const auto& r : cfg.proxy_routes) routes.push_back(&r);
  std::stable_sort(routes.begin(), routes.end(), [](const auto* a, const auto* b) {
    return proxy::prefix_depth(a->route.prefix) > proxy::prefix_depth(b->route.prefix);
  });
  std::vector<std::shared_ptr<const proxy::ProxySettings>> out;
  for (const ProxyRouteConfig* r : routes) {
    std::shared_ptr<proxy::ProxySettings> s = make_proxy_settings(*r, cfg);
    s->requests = requests;
    router.add("*", proxy::route_pattern(r->route.prefix), proxy::make_proxy_handler(s), http::BodyMode::kStream);
    out.push_back(std::move(s));
  }
  return out;
}

HealthChecks::HealthChecks(std::vector<std::shared_ptr<const proxy::ProxySettings>> routes)
    : routes_(std::move(routes)) {
  std::erase_if(routes_, [](const auto& s) { return !s->group->has_health_check(); });
  if (routes_.empty()) return;
  auto loop = net::EventLoop::create();
  if (!loop) throw std::runtime_error("health checks: cannot create an event loop: " + loop.error().message());
  loop_ = std::move(*loop);
  // Started before the loop runs, which is as good as on its thread.
  for (const auto& s : routes_) s->group->start_health_checks(*loop_);
  thread_ = std::thread([this] { loop_->run(); });
}

HealthChecks::~HealthChecks() {
  if (!loop_) return;
  // On the loop's thread, then stop from inside that turn: a stop() from here could end the loop
  // before a posted task ran.
  loop_->post([this] {
    for (const auto& s : routes_) s->group->stop_health_checks();
    loop_->stop();
  });
  thread_.join();
}

observe::UpstreamGaugeSource upstream_gauges(std::vector<std::shared_ptr<const proxy::ProxySettings>> routes) {
  return [routes = std::move(routes)] {
    std::vector<observe::UpstreamGauge> out;
    net::TimePoint now = net::Clock::now();
    for (const auto& s : routes)
      for (std::size_t i = 0; i < s->upstreams.size(); ++i) {
        auto idle = s->pool_idle ? s->pool_idle[i].load(std::memory_order_relaxed) : 0;
        out.push_back({s->names[i], static_cast<std::size_t>(std::max<std::int64_t>(idle, 0)), s->group->up(i, now)});
      }
    return out;
  };
}

}  // namespace unbroken::app
