#pragma once
// The admin listener's routes: GET /healthz (200 "ok", 503 while draining), GET /metrics (Prometheus
// text), GET /dashboard (the live page) and GET /dashboard/data (what the page polls).

#include <functional>

#include "http/router.h"
#include "observe/metrics.h"

namespace unbroken::app {

struct AdminSources {
  std::function<bool()> draining;
  // Called on the admin loop for each scrape; reads the serving loops' counters.
  std::function<observe::MetricsSources()> metrics;
};

void mount_admin_routes(http::Router& router, AdminSources sources);

}  // namespace unbroken::app
