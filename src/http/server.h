#pragma once
// An HTTP server: N loop threads, each with its own SO_REUSEPORT listening socket per address and
// its own connections, sharing nothing but the read-only router, the record sink and the worker pool.
// A listening socket made elsewhere (socket activation) cannot join a SO_REUSEPORT group: every
// loop accepts on a duplicate of it, registered EPOLLEXCLUSIVE so a connection wakes one loop.

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "http/http_connection.h"
#include "http/loop_context.h"
#include "http/worker_pool.h"
#include "net/listener.h"
#include "net/socket.h"
#include "net/tls_context.h"

namespace unbroken::http {

struct ServerOptions {
  std::vector<net::SocketAddress> listen;
  // TLS listeners, served with `tls` (required when there are any); the same handlers, limits and
  // records as the plain ones.
  std::vector<net::SocketAddress> tls_listen;
  std::shared_ptr<net::TlsServerContext> tls;
  // Listening sockets to accept on besides `listen` and `tls_listen`, already bound (systemd's).
  // The server keeps duplicates from start() on; the caller still owns these.
  std::vector<int> adopt;
  std::vector<int> adopt_tls;
  unsigned threads = 1;
  unsigned workers = 0;  // 0: no worker pool (blocking routes answer 503)
  std::size_t max_queued_work = 1024;
  HttpLimits limits;
  std::uint64_t max_connections = 10'000;
  // Connections from one client address beyond this many are answered 503 and closed (0: no limit).
  std::uint64_t max_connections_per_ip = 0;
  // Told once when accepting pauses at max_connections (paused = true) and once when the pause is
  // over (the clients that waited are all accepted), with the open count; any loop thread.
  std::function<void(bool paused, std::uint64_t open)> on_accept_limit;
};

class Server {
 public:
  Server(ServerOptions options, const Router& router, RecordSink record);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds every address on every loop (port 0 resolves once and is shared) and starts the
  // threads. Errno names the failing bind.
  [[nodiscard]] Result<void> start();
  // The addresses actually bound, ports resolved.
  [[nodiscard]] const std::vector<net::SocketAddress>& addresses() const { return bound_; }
  [[nodiscard]] const std::vector<net::SocketAddress>& tls_addresses() const { return tls_bound_; }
  // Any thread. Closes the listeners, closes idle connections, lets in-flight requests finish
  // within the drain timeout; the loops stop when their last connection is gone.
  void drain();
  [[nodiscard]] bool draining() const { return draining_.load(); }
  // Blocks until every loop has stopped.
  void wait();
  [[nodiscard]] std::vector<const LoopStats*> stats() const;
  [[nodiscard]] std::uint64_t active_connections() const { return active_.load(std::memory_order_relaxed); }
  // The loops, for a caller that posts to each (the systemd watchdog's probes); valid after start()
  // until the server is destroyed.
  [[nodiscard]] std::vector<net::EventLoop*> event_loops() const;

 private:
  struct Loop;
  // Binds `addr` for loop l (a port 0 is resolved in place) and starts accepting on it.
  Result<std::unique_ptr<net::Listener>> listen_on(Loop& l, net::SocketAddress& addr, bool tls);
  // Accepts on a duplicate of `fd`, shared by every loop (ServerOptions::adopt).
  Result<std::unique_ptr<net::Listener>> adopt_on(Loop& l, int fd, bool tls);
  Result<std::unique_ptr<net::Listener>> make_listener(Loop& l, UniqueFd fd, bool tls, bool shared);
  void accept(Loop& l, UniqueFd fd, const net::SocketAddress& peer, bool tls);
  void on_closed(Loop& l, HttpConnection* c);
  // Frees the connections that closed in this turn (loop thread, end of the turn).
  void free_closed(Loop& l);
  void drain_loop(Loop& l);
  // The admission check of loop l's listeners: false at max_connections (a pause begins).
  bool admit(Loop& l);
  // A listener's backlog is empty (ends a pause).
  void caught_up();

  ServerOptions options_;
  const Router& router_;
  RecordSink record_;
  std::unique_ptr<WorkerPool> workers_;
  std::vector<std::unique_ptr<Loop>> loops_;
  std::vector<net::SocketAddress> bound_;
  std::vector<net::SocketAddress> tls_bound_;
  std::atomic<std::uint64_t> active_{0};
  std::atomic<std::uint64_t> next_conn_id_{1};
  std::atomic<bool> draining_{false};
  std::atomic<bool> limit_paused_{false};  // a pause at max_connections is under way (reported once)
  // Open connections by client address, for max_connections_per_ip (all loops share it).
  std::mutex per_ip_mu_;
  std::unordered_map<std::string, std::uint64_t> per_ip_;
};

}  // namespace unbroken::http
