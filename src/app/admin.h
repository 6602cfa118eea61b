#pragma once
// The admin listener's routes: GET /healthz (200 "ok", 503 while draining), GET /metrics (Prometheus
// text), GET /dashboard (the live page), GET /dashboard/data (what the page polls) and
// GET /requests/{id}, the departure signal: 200 {"state":"waiting"} while a proxied request's client
// is there, 410 {"state":"departed","outcome":"client_closed"} once it has left, 404 for an id not
// known (never seen, over, or departed long enough ago to be forgotten).

#include <functional>
#include <memory>

#include "http/router.h"
#include "observe/metrics.h"
#include "proxy/request_registry.h"

namespace unbroken::app {

struct AdminSources {
  std::function<bool()> draining;
  // Called on the admin loop for each scrape; reads the serving loops' counters.
  std::function<observe::MetricsSources()> metrics;
  // The proxy routes' request ids; null: every id is unknown.
  std::shared_ptr<proxy::RequestRegistry> requests;
};

void mount_admin_routes(http::Router& router, AdminSources sources);

}  // namespace unbroken::app
