#pragma once
// The upstreams of one proxy route as the balancer sees them, shared by every event loop: which one
// the next attempt goes to (round robin over those that are up, or the least loaded with
// least_conn), passive health (max_fails refusals or timeouts in a row take an upstream out for
// fail_timeout; then one probe request is let through, and its outcome decides, as in nginx) and
// the optional active check (GET health_path every health_interval).
//
// Thread-safe without a lock: a few relaxed atomics per upstream, each on its own cache line, so
// the once-per-request calls cost an atomic add or two and never wait for another loop.
//
// Use, per attempt of a proxied request, on any loop thread:
//   auto i = group.pick(tried, loop.now());   // nullopt: every upstream is down -> 502 at once
//   group.started(*i);                         // right after pick: least_conn counts it
//   ... connect, send, read ...
//   group.failed(*i, loop.now()) on a refused / timed-out connect or header/read timeout,
//   or group.succeeded(*i) once a response head arrived;
//   group.ended(*i);                           // always, once the attempt is over

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "http/request_parser.h"
#include "net/event_loop.h"
#include "net/socket.h"
#include "proxy/proxy_handler.h"

namespace unbroken::proxy {

class UpstreamGroup {
 public:
  // Reads upstreams, names, tls_hosts and tls, balance, max_fails (0: never taken out), fail_timeout, health_path,
  // health_interval, connect_timeout (the active check's whole deadline) and limits; keeps copies.
  explicit UpstreamGroup(const ProxySettings& s);
  ~UpstreamGroup();
  UpstreamGroup(const UpstreamGroup&) = delete;
  UpstreamGroup& operator=(const UpstreamGroup&) = delete;

  [[nodiscard]] std::size_t size() const { return states_.size(); }

  // The upstream for the next attempt, skipping the indexes in `tried`: an upstream due for its
  // probe first (it is claimed: no other request probes it within the next fail_timeout), else
  // round robin over those that are up or the least in-flight among them. nullopt when none is.
  [[nodiscard]] std::optional<std::size_t> pick(std::span<const std::size_t> tried, net::TimePoint now);
  // In-flight attempts on upstream i, for least_conn: started() right after pick(), ended() once.
  void started(std::size_t i);
  void ended(std::size_t i);
  // A refused connect or a timeout: max_fails of them in a row take it out until now + fail_timeout.
  void failed(std::size_t i, net::TimePoint now);
  // It answered: the run of failures ends (and a probe brings it back).
  void succeeded(std::size_t i);
  // Whether pick() may choose it now (for the unbroken_upstream_up{upstream} gauge): the active
  // check did not mark it down, and it is not taken out by failures (or its probe is due).
  [[nodiscard]] bool up(std::size_t i, net::TimePoint now) const;
  [[nodiscard]] std::size_t in_flight(std::size_t i) const;

  // When health_path is set: GETs it on every upstream now and every health_interval from `loop`
  // (a check still under way from the last round is not doubled); a 2xx or 3xx head marks the
  // upstream up (and ends its run of failures), anything else, a failed connect or no head within
  // connect_timeout marks it down until a later check passes. Call on `loop`'s thread or before it
  // runs; call stop_health_checks() (or destroy the group) on that thread before the loop goes. No-op
  // without a health_path.
  void start_health_checks(net::EventLoop& loop);
  void stop_health_checks();
  [[nodiscard]] bool has_health_check() const { return !health_path_.empty(); }

 private:
  struct alignas(64) State {
    std::atomic<std::uint32_t> in_flight{0};
    std::atomic<std::uint32_t> fails{0};      // refusals and timeouts in a row
    std::atomic<std::int64_t> down_until{0};  // steady-clock ns; meaningful while fails >= max_fails
    std::atomic<bool> check_failed{false};    // the active check's verdict
  };
  class Probe;
  struct Checks;

  [[nodiscard]] bool taken_out(const State& s) const;
  [[nodiscard]] bool usable(std::size_t i, std::span<const std::size_t> tried) const;
  std::optional<std::size_t> claim_probe(std::span<const std::size_t> tried, std::int64_t now);
  void check_all();
  void checked(std::size_t i, bool passed);

  std::vector<State> states_;
  std::vector<net::SocketAddress> addresses_;
  std::vector<std::string> names_;
  std::vector<std::string> tls_hosts_;  // the check of an https:// upstream goes over TLS too
  std::shared_ptr<net::TlsClientContext> tls_;
  Balance balance_;
  std::uint32_t max_fails_;
  std::int64_t fail_timeout_ns_;
  std::string health_path_;
  std::chrono::milliseconds health_interval_;
  std::chrono::milliseconds check_timeout_;
  http::ParserLimits limits_;
  std::atomic<std::size_t> next_{0};
  std::unique_ptr<Checks> checks_;  // the active check's state, on its loop's thread only
};

}  // namespace unbroken::proxy
