#include "app/admin.h"

#include "observe/dashboard.h"

namespace unbroken::app {

void mount_admin_routes(http::Router& router, AdminSources sources) {
  router.add("GET", "/healthz", [draining = sources.draining](const http::ExchangePtr& ex) {
    // Load balancers take a draining instance out of rotation on the 503.
    if (draining()) {
      ex->respond(503, "draining\n");
    } else {
      ex->respond(200, "ok\n");
    }
  });
  router.add("GET", "/metrics", [metrics = sources.metrics](const http::ExchangePtr& ex) {
    ex->respond(200, observe::render_metrics(metrics()), "text/plain; version=0.0.4; charset=utf-8");
  });
  router.add("GET", "/dashboard", [](const http::ExchangePtr& ex) {
    ex->add_header("Cache-Control", "no-store");
    ex->respond(200, std::string(observe::dashboard_page()), "text/html; charset=utf-8");
  });
  router.add("GET", "/dashboard/data", [metrics = sources.metrics](const http::ExchangePtr& ex) {
    ex->add_header("Cache-Control", "no-store");
    ex->respond(200, observe::render_dashboard_data(metrics()), "application/json");
  });
}

}  // namespace unbroken::app
