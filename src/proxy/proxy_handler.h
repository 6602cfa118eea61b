#pragma once
// The reverse proxy's route handler: each request goes to one of the route's upstreams on a
// connection of its own (pooling is the next step), its body streamed through with back-pressure
// both ways, the upstream's response forwarded with our framing. Upstream failures end the request
// with an upstream_* outcome (502, 504 for timeouts); a client that leaves does not cut the
// upstream off: its response is read into nothing, within a budget, so the application's writes
// succeed (the `finish` policy).

#include <atomic>
#include <chrono>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "http/request_parser.h"
#include "http/router.h"
#include "net/socket.h"

namespace unbroken::proxy {

struct ProxySettings {
  std::vector<net::SocketAddress> upstreams;  // resolved at start-up, never empty
  std::vector<std::string> names;             // each as configured, for the record
  std::chrono::milliseconds connect_timeout{2'000};
  std::chrono::milliseconds header_timeout{60'000};  // request sent -> response head
  std::chrono::milliseconds read_timeout{60'000};    // without a byte of the response body
  // After the client left: close the upstream connection at once (--upstream-abort close), or (the
  // default, finish) read the rest of the response for at most this long / this many bytes.
  bool abort_close = false;
  std::chrono::milliseconds abort_budget{30'000};
  std::uint64_t abort_budget_bytes = 8 * 1024 * 1024;
  std::size_t max_buffered = 256 * 1024;       // upstream input held unread before reading stops
  std::size_t output_high_water = 256 * 1024;  // request body queued upstream: pause the client's body
  std::size_t output_low_water = 64 * 1024;
  http::ParserLimits limits{64 * 1024, 200, std::numeric_limits<std::uint64_t>::max()};  // no body cap
  mutable std::atomic<std::size_t> next{0};                                              // round robin
};

// Loop thread; the handler of a route with BodyMode::kStream and method "*".
[[nodiscard]] http::AsyncHandler make_proxy_handler(std::shared_ptr<const ProxySettings> settings);

}  // namespace unbroken::proxy
