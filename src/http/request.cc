#include "http/request.h"

#include <algorithm>

namespace unbroken::http {

void HeaderList::add(std::string_view name, std::string_view value) {
  auto at = static_cast<std::uint32_t>(arena_.size());
  arena_.append(name).append(value);
  spans_.push_back(Span{at, static_cast<std::uint32_t>(name.size()), at + static_cast<std::uint32_t>(name.size()),
                        static_cast<std::uint32_t>(value.size())});
}

void HeaderList::set_value(std::size_t i, std::string_view value) {
  auto at = static_cast<std::uint32_t>(arena_.size());
  arena_.append(value);
  spans_[i].value_at = at;
  spans_[i].value_len = static_cast<std::uint32_t>(value.size());
}

bool HeaderList::operator==(const HeaderList& o) const {
  if (size() != o.size()) return false;
  for (std::size_t i = 0; i < size(); ++i) {
    Field a = (*this)[i], b = o[i];
    if (a.name != b.name || a.value != b.value) return false;
  }
  return true;
}

std::string_view HeaderList::find(std::string_view name) const {
  for (auto [k, v] : *this)
    if (iequals(k, name)) return v;
  return {};
}

std::string_view Request::path() const {
  std::string_view t = target;
  return t.substr(0, t.find('?'));
}

std::string_view Request::query() const {
  std::string_view t = target;
  auto q = t.find('?');
  return q == std::string_view::npos ? std::string_view{} : t.substr(q + 1);
}

std::optional<std::string_view> Request::query_param(std::string_view key) const {
  std::string_view q = query();
  while (!q.empty()) {
    auto amp = q.find('&');
    std::string_view pair = q.substr(0, amp);
    auto eq = pair.find('=');
    if (pair.substr(0, eq) == key) return eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
    if (amp == std::string_view::npos) break;
    q.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

void Request::clear() {
  method.clear();
  target.clear();
  version_major = version_minor = 1;
  headers.clear();
  content_length.reset();
  chunked = false;
  keep_alive = true;
  expect_continue = false;
  secure = false;
  body.clear();
  params.clear();
}

}  // namespace unbroken::http
