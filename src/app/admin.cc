#include "app/admin.h"

#include "net/event_loop.h"
#include "observe/dashboard.h"

namespace unbroken::app {
namespace {

constexpr std::string_view kJson = "application/json";

}  // namespace

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
  router.add("GET", "/requests/{id}", [requests = sources.requests](const http::ExchangePtr& ex) {
    // Polled every few seconds by a handler in a long loop: never cached, one small answer.
    ex->add_header("Cache-Control", "no-store");
    auto found =
        requests ? requests->find(ex->request().params[0], ex->loop().now()) : proxy::RequestRegistry::Lookup{};
    switch (found.state) {
      case proxy::RequestRegistry::State::kWaiting: return ex->respond(200, "{\"state\":\"waiting\"}\n", kJson);
      case proxy::RequestRegistry::State::kDeparted:
        return ex->respond(
            410, "{\"state\":\"departed\",\"outcome\":\"" + std::string(http::name(found.outcome)) + "\"}\n", kJson);
      case proxy::RequestRegistry::State::kUnknown: return ex->respond(404, "{\"state\":\"unknown\"}\n", kJson);
    }
  });
}

}  // namespace unbroken::app
