#pragma once
// Serialising a response head, and the Date header formatted once a second.

#include <chrono>
#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace unbroken::http {

using Headers = std::vector<std::pair<std::string, std::string>>;

std::string_view reason_phrase(int status);

// Caches the IMF-fixdate string; re-formats only when the second changes.
class DateCache {
 public:
  std::string_view get();

 private:
  std::time_t second_ = 0;
  char buf_[40] = {};
  std::size_t len_ = 0;
};

struct HeadSpec {
  int status = 200;
  const Headers* headers = nullptr;
  // nullopt: length unknown; chunked when `chunked`, else delimited by closing the connection.
  std::optional<std::uint64_t> content_length;
  bool chunked = false;
  bool keep_alive = true;
  int version_minor = 1;
  std::string_view content_type;  // sent as Content-Type unless empty
};

void append_head(std::string& out, const HeadSpec& spec, std::string_view date);

}  // namespace unbroken::http
