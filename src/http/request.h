#pragma once
// A parsed request head and, for routes that buffer it, the body.

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/text.h"

namespace unbroken::http {

using unbroken::iequals;  // base/text.h

// Header fields as received, in order. Names and values live in one arena, so a connection's
// requests stop allocating once it has grown to their usual size (clear() keeps the capacity).
class HeaderList {
 public:
  struct Field {
    std::string_view name;
    std::string_view value;
  };
  class Iterator {
   public:
    Iterator(const HeaderList* list, std::size_t i) : list_(list), i_(i) {}
    Field operator*() const { return (*list_)[i_]; }
    Iterator& operator++() {
      ++i_;
      return *this;
    }
    bool operator==(const Iterator& o) const { return i_ == o.i_; }

   private:
    const HeaderList* list_;
    std::size_t i_;
  };

  HeaderList() = default;
  HeaderList(std::initializer_list<std::pair<std::string_view, std::string_view>> fields) {
    for (auto [name, value] : fields) add(name, value);
  }
  // name and value must not view this list's own storage (add may move it).
  void add(std::string_view name, std::string_view value);
  // Replaces field i's value (the old bytes stay in the arena until clear()).
  void set_value(std::size_t i, std::string_view value);
  [[nodiscard]] std::size_t size() const { return spans_.size(); }
  [[nodiscard]] bool empty() const { return spans_.empty(); }
  [[nodiscard]] std::size_t arena_capacity() const { return arena_.capacity(); }
  // The same fields in the same order (the arena may differ: set_value leaves old bytes in it).
  bool operator==(const HeaderList& o) const;
  [[nodiscard]] Field operator[](std::size_t i) const {
    const Span& s = spans_[i];
    std::string_view a = arena_;
    return {a.substr(s.name_at, s.name_len), a.substr(s.value_at, s.value_len)};
  }
  // The first field called `name` (ASCII case-insensitive), or "" when there is none.
  [[nodiscard]] std::string_view find(std::string_view name) const;
  [[nodiscard]] Iterator begin() const { return {this, 0}; }
  [[nodiscard]] Iterator end() const { return {this, spans_.size()}; }
  void clear() {
    arena_.clear();
    spans_.clear();
  }

 private:
  struct Span {
    std::uint32_t name_at, name_len, value_at, value_len;
  };
  std::string arena_;
  std::vector<Span> spans_;
};

struct Request {
  std::string method;
  std::string target;  // the request-target as received, query included
  int version_major = 1;
  int version_minor = 1;
  HeaderList headers;
  std::optional<std::uint64_t> content_length;  // absent for chunked or no body
  bool chunked = false;
  bool keep_alive = true;
  bool expect_continue = false;
  std::string body;     // filled only for routes that buffer the body
  std::string client;   // "ip:port"
  bool secure = false;  // it came over TLS (the connection's transport has tls()): the proxy's X-Forwarded-Proto
  // Path parameters captured by the router, in pattern order ({n} in /diag/bytes/{n}).
  std::vector<std::string_view> params;

  // First header with this name (case-insensitive), or empty.
  [[nodiscard]] std::string_view header(std::string_view name) const { return headers.find(name); }
  [[nodiscard]] std::string_view path() const;   // target without the query
  [[nodiscard]] std::string_view query() const;  // after '?', or empty
  // Value of a query parameter (no percent-decoding), if present.
  [[nodiscard]] std::optional<std::string_view> query_param(std::string_view key) const;
  [[nodiscard]] bool has_body() const { return chunked || content_length.value_or(0) > 0; }

  void clear();
};

}  // namespace unbroken::http
