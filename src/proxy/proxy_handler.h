#pragma once
// The reverse proxy's route handler: each request goes to one of the route's upstreams (the
// balancer's pick) on a pooled keep-alive connection or a new one, its body buffered or streamed,
// the upstream's response forwarded with our framing, held for a slow client. Upstream failures
// end the request with an upstream_* outcome (502, 504 for timeouts); a client that leaves does
// not cut the upstream off: its response is read into nothing, within a budget, so the
// application's writes succeed (the `finish` policy). See upstream_call.h and docs/proxy.md.

#include <atomic>
#include <chrono>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "http/request_parser.h"
#include "http/router.h"
#include "net/socket.h"
#include "net/tls_context.h"
#include "proxy/request_registry.h"
#include "proxy/trusted_proxies.h"

namespace unbroken::proxy {

enum class Balance : std::uint8_t { kRoundRobin, kLeastConn };

class UpstreamGroup;  // proxy/upstream_group.h

// One proxy route's settings, built at start-up from the flags and the route's [[proxy]] table and
// shared read-only by every loop (the group and the pool gauges keep their own atomics).
struct ProxySettings {
  std::vector<net::SocketAddress> upstreams;  // resolved at start-up, never empty
  std::vector<std::string> names;             // each as configured, for the record and the metrics
  // Per upstream (or none: all plain): the host name an https:// one's certificate is verified for
  // (and its SNI); empty for a plain one. `tls` makes their connections (from --upstream-ca, else
  // the system store); null when the route has no https:// upstream.
  std::vector<std::string> tls_hosts;
  std::shared_ptr<net::TlsClientContext> tls;
  // The route's upstreams together ("a,b"): the record's and the metrics' `upstream` when none
  // could be tried (upstream_unavailable), and the Host of a request that came without one.
  std::string group_name;
  std::string default_host = "localhost";  // the first upstream's HOST:PORT (https too); localhost for unix:
  Balance balance = Balance::kRoundRobin;
  std::chrono::milliseconds connect_timeout{2'000};  // to on_connected: over TLS, the handshake too
  std::chrono::milliseconds header_timeout{60'000};  // request sent -> response head
  std::chrono::milliseconds read_timeout{60'000};    // without a byte of the response body
  std::chrono::milliseconds send_timeout{30'000};    // without a byte of the request taken by the upstream
  // After the client left: close the upstream connection at once (--upstream-abort close), or (the
  // default, finish) read the rest of the response for at most this long / this many bytes.
  bool abort_close = false;
  std::chrono::milliseconds abort_budget{30'000};
  std::uint64_t abort_budget_bytes = 8 * 1024 * 1024;
  // The pool, per loop and upstream: idle keep-alive connections kept, and for how long (never
  // longer than a Keep-Alive: timeout= the upstream sent).
  std::size_t keepalive = 32;
  std::chrono::milliseconds idle_timeout{1'000};
  // Passive health: this many refusals or timeouts in a row take an upstream out for fail_timeout.
  int max_fails = 3;
  std::chrono::milliseconds fail_timeout{10'000};
  std::string health_path;  // active check (GET, every health_interval) when not empty
  std::chrono::milliseconds health_interval{5'000};
  // Buffering: the request body read whole before the upstream is chosen (memory up to
  // request_buffer_memory, then a file under temp_dir, at most max_body); the response read as fast
  // as the upstream sends (response_buffer_memory, then a file up to response_max_temp). `buffering`
  // false (per route) streams both ways with back-pressure, as text/event-stream and a response
  // with X-Accel-Buffering: no always do.
  bool request_buffering = true;
  bool buffering = true;
  std::size_t request_buffer_memory = 64 * 1024;
  std::uint64_t max_body = 0;  // 0: no limit of the proxy's own (the server's --max-body still applies)
  std::size_t response_buffer_memory = 1024 * 1024;
  std::uint64_t response_max_temp = 1024ull * 1024 * 1024;
  std::string temp_dir = "/tmp";
  std::chrono::milliseconds tunnel_idle_timeout{60'000};  // after a 101, without a byte either way
  std::size_t max_buffered = 256 * 1024;                  // upstream input held unread before reading stops
  std::size_t output_high_water = 256 * 1024;             // request body queued upstream: pause the client's body
  std::size_t output_low_water = 64 * 1024;
  // --trusted-proxies: peers whose X-Forwarded-*, Forwarded and X-Request-Id are believed.
  TrustedProxies trusted_proxies;
  // The departure signal (GET /requests/{id} on the admin listener), one for the process; null: none.
  std::shared_ptr<RequestRegistry> requests;
  http::ParserLimits limits{64 * 1024, 200, std::numeric_limits<std::uint64_t>::max()};  // no body cap
  // The balancer and the health of `upstreams`, shared by every loop (thread-safe); set by serve
  // after the fields above, from them.
  std::shared_ptr<UpstreamGroup> group;
  // Parked connections per upstream, summed over the loops' pools (the pool_idle gauge); made by
  // make_proxy_handler.
  mutable std::unique_ptr<std::atomic<std::int64_t>[]> pool_idle;

  // Upstream i's host name for TLS, or "" when its connections are plain.
  [[nodiscard]] std::string_view tls_host(std::size_t i) const {
    return tls && i < tls_hosts.size() ? std::string_view(tls_hosts[i]) : std::string_view();
  }
};

// Loop thread; the handler of a route with BodyMode::kStream and method "*".
[[nodiscard]] http::AsyncHandler make_proxy_handler(std::shared_ptr<const ProxySettings> settings);

}  // namespace unbroken::proxy
