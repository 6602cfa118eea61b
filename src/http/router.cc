#include "http/router.h"

namespace unbroken::http {
namespace {

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> out;
  while (!path.empty()) {
    if (path.front() == '/') {
      path.remove_prefix(1);
      continue;
    }
    auto slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash);
  }
  return out;
}

bool matches(const Route& r, const std::vector<std::string_view>& parts, std::vector<std::string_view>& params) {
  if (r.wildcard ? parts.size() < r.segments.size() : parts.size() != r.segments.size()) return false;
  params.clear();
  for (std::size_t i = 0; i < r.segments.size(); ++i) {
    const std::string& seg = r.segments[i];
    if (seg.size() >= 2 && seg.front() == '{' && seg.back() == '}') {
      params.push_back(parts[i]);
    } else if (seg != parts[i]) {
      return false;
    }
  }
  return true;
}

}  // namespace

Route& Router::add_route(std::string_view method, std::string_view pattern) {
  auto r = std::make_unique<Route>();
  r->method = method;
  r->pattern = pattern;
  r->name = std::string(method) + " " + std::string(pattern);
  r->index = routes_.size();
  for (auto seg : split_path(pattern)) {
    if (seg == "*") {
      r->wildcard = true;
      break;
    }
    r->segments.emplace_back(seg);
  }
  routes_.push_back(std::move(r));
  return *routes_.back();
}

void Router::add(std::string_view method, std::string_view pattern, AsyncHandler h, BodyMode mode) {
  Route& r = add_route(method, pattern);
  r.async = std::move(h);
  r.body_mode = mode;
}

void Router::add_blocking(std::string_view method, std::string_view pattern, BlockingHandler h) {
  add_route(method, pattern).blocking = std::move(h);
}

std::string_view Router::slot_name(std::size_t slot) const {
  if (slot < routes_.size()) return routes_[slot]->name;
  return slot == fallback_slot() ? "(static)" : "(unmatched)";
}

Router::Match Router::match(std::string_view method, std::string_view path,
                            std::vector<std::string_view>& params) const {
  Match m;
  auto parts = split_path(path);
  for (const auto& r : routes_) {
    if (!matches(*r, parts, params)) continue;
    // HEAD is served by GET routes; the connection drops the body.
    if (r->method == method || (method == "HEAD" && r->method == "GET")) {
      m.route = r.get();
      return m;
    }
    m.path_matched = true;
  }
  params.clear();
  return m;
}

}  // namespace unbroken::http
