#pragma once
// The reverse proxy for `serve`: each configured route's proxy::ProxySettings (with its upstream
// group), mounted on the router, and the thread that runs the routes' active health checks.

#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include "app/serve_config.h"
#include "http/router.h"
#include "net/event_loop.h"
#include "observe/upstream_metrics.h"
#include "proxy/proxy_handler.h"

namespace unbroken::app {

// A route that cannot be set up for a reason in its config (a CA file that does not load): serve
// says it in one line and exits 2, as for a bad flag.
struct ProxySetupError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// One route's settings from its config and the server's (--max-body, --temp-dir), the upstreams
// resolved, the TLS client context of its https:// upstreams and the group made. Throws
// std::runtime_error naming an upstream that does not resolve, ProxySetupError for a CA file
// (--upstream-ca) that does not load.
[[nodiscard]] std::shared_ptr<proxy::ProxySettings> make_proxy_settings(const ProxyRouteConfig& route,
                                                                        const ServeConfig& cfg);

// Mounts every proxy route after the diag routes (they keep their paths) and before the static
// fallback, the longest prefix first so that it wins. Returns the routes' settings (for the health
// checks and the metrics), in mounting order. Every route registers its requests' ids in `requests`
// (the departure signal the admin listener answers; null: none).
std::vector<std::shared_ptr<const proxy::ProxySettings>> mount_proxies(
    http::Router& router, const ServeConfig& cfg, const std::shared_ptr<proxy::RequestRegistry>& requests = nullptr);

// The pool and balancer gauges of every route's upstreams, for observe::UpstreamMetrics: idle
// pooled connections summed over the loops, and whether the balancer has the upstream in rotation.
// Safe from the admin thread (relaxed atomics only).
[[nodiscard]] observe::UpstreamGaugeSource upstream_gauges(
    std::vector<std::shared_ptr<const proxy::ProxySettings>> routes);

// The active checks of every route with a `health` path, on one loop thread of their own (none is
// started when no route has one): a check never waits behind client traffic, and the groups are
// shared by every loop anyway. Stops and joins on destruction, before the settings may go.
class HealthChecks {
 public:
  explicit HealthChecks(std::vector<std::shared_ptr<const proxy::ProxySettings>> routes);
  ~HealthChecks();
  HealthChecks(const HealthChecks&) = delete;
  HealthChecks& operator=(const HealthChecks&) = delete;

 private:
  std::vector<std::shared_ptr<const proxy::ProxySettings>> routes_;
  std::unique_ptr<net::EventLoop> loop_;
  std::thread thread_;
};

}  // namespace unbroken::app
