#pragma once
// The admin listener's routes: GET /healthz (200 "ok", 503 while draining) and GET /metrics.

#include <functional>
#include <string>

#include "http/router.h"

namespace unbroken::app {

struct AdminSources {
  std::function<bool()> draining;
  std::function<std::string()> metrics;  // Prometheus text
};

void mount_admin_routes(http::Router& router, AdminSources sources);

}  // namespace unbroken::app
