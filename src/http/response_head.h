#pragma once
// Response vocabulary: header lists, reason phrases, and the Date header formatted once a second
// (the head itself is the response encoder's).

#include <ctime>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/http_date.h"
#include "http/request.h"

namespace unbroken::http {

// A response's header fields, in one arena like a request's: a response adding a few fields costs
// no allocation once its storage has been round a connection once (see ParserPool).
using Headers = HeaderList;

std::string_view reason_phrase(int status);

// Caches the IMF-fixdate string; re-formats only when the second changes.
class DateCache {
 public:
  std::string_view get();

 private:
  std::time_t second_ = 0;
  char buf_[kHttpDateLength] = {};
  std::size_t len_ = 0;
};

}  // namespace unbroken::http
