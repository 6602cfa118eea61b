#pragma once
// Idle keep-alive connections to one proxy route's upstreams, kept by one event loop (nginx's
// `keepalive N` in an upstream block, per worker). A parked connection is watched: when the
// application closes it (gunicorn's 2 s keep-alive, uWSGI's) or sends anything, it leaves the pool
// at once, so the next request is not handed a connection that is already dead. That leaves only
// the race of a close crossing our request on the wire, which the proxy answers with a retry.
// A connection is a plain TCP one or TLS over it (an https:// upstream's, reused without a new
// handshake); a TLS 1.3 ticket that comes while parked is the transport's own, never data.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "http/request.h"
#include "net/event_loop.h"
#include "net/transport.h"

namespace unbroken::proxy {

class UpstreamPool {
 public:
  // `capacity` idle connections per upstream at most; `idle_gauges` (one per upstream, shared by
  // every loop's pool of the route) count the parked connections for the metrics.
  UpstreamPool(net::EventLoop& loop, std::size_t upstreams, std::size_t capacity,
               std::atomic<std::int64_t>* idle_gauges);
  UpstreamPool(const UpstreamPool&) = delete;
  UpstreamPool& operator=(const UpstreamPool&) = delete;
  ~UpstreamPool();

  // The most recently parked live connection to upstream `i` (it has the most keep-alive time left),
  // or null. The caller sets its handler before the loop's next turn.
  [[nodiscard]] std::unique_ptr<net::Transport> take(std::size_t i);
  // Keeps `c` (its last response ended cleanly, nothing left unread) for at most `idle`. Beyond
  // `capacity` parked connections it is kept for 50 ms at most (a burst's surplus, taken again by
  // the next requests or closed); at twice the capacity the oldest parked one is closed.
  void park(std::size_t i, std::unique_ptr<net::Transport> c, std::chrono::milliseconds idle);
  [[nodiscard]] std::size_t idle(std::size_t i) const { return parked_[i].size(); }

 private:
  struct Slot;
  void drop(Slot* s);  // closes the slot's connection and frees the slot
  void unpark(Slot* s);

  net::EventLoop& loop_;
  std::size_t capacity_;
  std::atomic<std::int64_t>* gauges_;
  std::vector<std::unique_ptr<Slot>> slots_;  // every slot made so far; made once, reused
  std::vector<Slot*> free_;
  std::vector<std::vector<Slot*>> parked_;  // per upstream, oldest first
};

// How long the upstream keeps an idle connection open by its `Keep-Alive: timeout=N` (seconds),
// if it said so.
[[nodiscard]] std::optional<std::chrono::milliseconds> keep_alive_timeout(const http::HeaderList& headers);

}  // namespace unbroken::proxy
