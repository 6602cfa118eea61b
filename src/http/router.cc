#include "http/router.h"

namespace unbroken::http {
namespace {

// The non-empty segments of a path, in order ("//a/b/" is a, b), without building a list: routing
// runs for every request.
class Segments {
 public:
  explicit Segments(std::string_view path) : rest_(path) {}
  // The next segment, or false when there is none.
  bool next(std::string_view& seg) {
    while (!rest_.empty() && rest_.front() == '/') rest_.remove_prefix(1);
    if (rest_.empty()) return false;
    auto slash = rest_.find('/');
    seg = rest_.substr(0, slash);
    rest_ = slash == std::string_view::npos ? std::string_view{} : rest_.substr(slash);
    return true;
  }

 private:
  std::string_view rest_;
};

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> out;
  Segments segs(path);
  for (std::string_view seg; segs.next(seg);) out.push_back(seg);
  return out;
}

bool matches(const Route& r, std::string_view path, std::vector<std::string_view>& params) {
  params.clear();
  Segments parts(path);
  std::string_view part;
  for (const std::string& seg : r.segments) {
    if (!parts.next(part)) return false;
    if (seg.size() >= 2 && seg.front() == '{' && seg.back() == '}') {
      params.push_back(part);
    } else if (seg != part) {
      return false;
    }
  }
  // A trailing * takes whatever is left, even nothing; otherwise nothing may be left.
  return r.wildcard || !parts.next(part);
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
  for (const auto& r : routes_) {
    if (!matches(*r, path, params)) continue;
    // HEAD is served by GET routes; the connection drops the body. "*" takes every method (the proxy).
    if (r->method == method || r->method == "*" || (method == "HEAD" && r->method == "GET")) {
      m.route = r.get();
      return m;
    }
    m.path_matched = true;
  }
  params.clear();
  return m;
}

}  // namespace unbroken::http
