#pragma once
// Routes: method + path pattern. `{name}` matches one non-empty segment, a trailing `*` the rest
// (so "/api/*" is the prefix /api, segment-wise); method "*" is any method. Routes are tried in the
// order they were added: the first that matches wins.
// Built before serving starts, then read-only and shared by every loop.

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "http/exchange.h"

namespace unbroken::http {

class BlockingExchange;

// How a route wants its request body.
enum class BodyMode {
  kBuffer,  // the handler runs once the whole body is in request().body (up to --max-body)
  kStream,  // the handler runs when the head is read; the body streams through Exchange::on_body
};

using AsyncHandler = std::function<void(const ExchangePtr&)>;
using BlockingHandler = std::function<void(BlockingExchange&)>;

struct Route {
  std::string method;
  std::string pattern;    // as registered
  std::string name;       // "GET /diag/delay/{ms}": the route in metrics, records and the dashboard
  std::size_t index = 0;  // position in the router, for per-route counters
  std::vector<std::string> segments;
  bool wildcard = false;
  BodyMode body_mode = BodyMode::kBuffer;
  AsyncHandler async;
  BlockingHandler blocking;  // runs on the worker pool when set
};

class Router {
 public:
  // Runs on the loop thread; must not block.
  void add(std::string_view method, std::string_view pattern, AsyncHandler h, BodyMode mode = BodyMode::kBuffer);
  // Runs on the bounded worker pool, for code that blocks or burns CPU.
  void add_blocking(std::string_view method, std::string_view pattern, BlockingHandler h);
  // Answers requests no route matches (static files, or 404 when unset).
  void set_fallback(AsyncHandler h) { fallback_ = std::move(h); }

  struct Match {
    const Route* route = nullptr;
    bool path_matched = false;  // some route has this path, with another method (405)
  };
  // params receives views into `path`.
  Match match(std::string_view method, std::string_view path, std::vector<std::string_view>& params) const;
  [[nodiscard]] const AsyncHandler& fallback() const { return fallback_; }

  // Per-route counters are indexed 0..route_count()-1 by Route::index, then these two slots.
  [[nodiscard]] std::size_t route_count() const { return routes_.size(); }
  [[nodiscard]] std::size_t fallback_slot() const { return routes_.size(); }
  [[nodiscard]] std::size_t unmatched_slot() const { return routes_.size() + 1; }
  // "GET /diag/delay/{ms}", "(static)" for the fallback, "(unmatched)".
  [[nodiscard]] std::string_view slot_name(std::size_t slot) const;

 private:
  Route& add_route(std::string_view method, std::string_view pattern);
  std::vector<std::unique_ptr<Route>> routes_;
  AsyncHandler fallback_;
};

}  // namespace unbroken::http
