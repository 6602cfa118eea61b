#pragma once
// A parsed request head and, for routes that buffer it, the body.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace unbroken::http {

bool iequals(std::string_view a, std::string_view b);

struct Request {
  std::string method;
  std::string target;  // the request-target as received, query included
  int version_major = 1;
  int version_minor = 1;
  std::vector<std::pair<std::string, std::string>> headers;
  std::optional<std::uint64_t> content_length;  // absent for chunked or no body
  bool chunked = false;
  bool keep_alive = true;
  bool expect_continue = false;
  std::string body;    // filled only for routes that buffer the body
  std::string client;  // "ip:port"
  // Path parameters captured by the router, in pattern order ({n} in /diag/bytes/{n}).
  std::vector<std::string_view> params;

  // First header with this name (case-insensitive), or empty.
  [[nodiscard]] std::string_view header(std::string_view name) const;
  [[nodiscard]] std::string_view path() const;   // target without the query
  [[nodiscard]] std::string_view query() const;  // after '?', or empty
  // Value of a query parameter (no percent-decoding), if present.
  [[nodiscard]] std::optional<std::string_view> query_param(std::string_view key) const;
  [[nodiscard]] bool has_body() const { return chunked || content_length.value_or(0) > 0; }

  void clear();
};

}  // namespace unbroken::http
