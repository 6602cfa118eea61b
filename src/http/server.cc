#include "http/server.h"

#include "net/tcp_connection.h"
#include "net/tls_transport.h"

namespace unbroken::http {

struct Server::Loop {
  explicit Loop(std::size_t route_slots) : stats(route_slots) {}
  std::unique_ptr<net::EventLoop> loop;
  LoopStats stats;
  std::unique_ptr<LoopContext> ctx;
  std::vector<std::unique_ptr<net::Listener>> listeners;
  // The open connections, each at its owner_slot(): removing one swaps the last into its place. No
  // node per connection (a hash map's costs an allocation and 80 bytes an idle client keeps).
  std::vector<std::unique_ptr<HttpConnection>> conns;
  // Closed during this turn; freed together at its end (free_closed).
  std::vector<HttpConnection*> closed;
  // The client address each open connection is counted under in per_ip_ (max_connections_per_ip).
  std::unordered_map<HttpConnection*, std::string> ips;
  std::thread thread;
  bool stopping = false;
};

Server::Server(ServerOptions options, const Router& router, RecordSink record)
    : options_(std::move(options)), router_(router), record_(std::move(record)) {}

Server::~Server() {
  drain();
  wait();
}

Result<void> Server::start() {
  if (options_.workers > 0) workers_ = std::make_unique<WorkerPool>(options_.workers, options_.max_queued_work);
  bound_ = options_.listen;
  tls_bound_ = options_.tls_listen;
  for (unsigned i = 0; i < std::max(1u, options_.threads); ++i) {
    auto l = std::make_unique<Loop>(router_.route_count() + 2);
    auto loop = net::EventLoop::create();
    if (!loop) return loop.error();
    l->loop = std::move(*loop);
    l->ctx = std::make_unique<LoopContext>(*l->loop, options_.limits, router_, l->stats);
    l->ctx->workers = workers_.get();
    l->ctx->record = record_;
    Loop* raw = l.get();
    l->ctx->on_closed = [this, raw](HttpConnection* c) { on_closed(*raw, c); };
    for (bool tls : {false, true}) {
      for (auto& addr : tls ? tls_bound_ : bound_) {
        auto listener = listen_on(*raw, addr, tls);
        if (!listener) return listener.error();
        l->listeners.push_back(std::move(*listener));
      }
      for (int fd : tls ? options_.adopt_tls : options_.adopt) {
        auto listener = adopt_on(*raw, fd, tls);
        if (!listener) return listener.error();
        l->listeners.push_back(std::move(*listener));
      }
    }
    loops_.push_back(std::move(l));
  }
  for (bool tls : {false, true}) {
    for (int fd : tls ? options_.adopt_tls : options_.adopt) {
      auto local = net::local_address(fd);
      if (!local) return local.error();
      (tls ? tls_bound_ : bound_).push_back(*local);
    }
  }
  for (auto& l : loops_) {
    Loop* raw = l.get();
    l->thread = std::thread([raw] {
      raw->loop->run();
      // Whatever is left after a stop is closed on its own thread.
      raw->conns.clear();
      raw->listeners.clear();
    });
  }
  return {};
}

Result<std::unique_ptr<net::Listener>> Server::listen_on(Loop& l, net::SocketAddress& addr, bool tls) {
  auto fd = net::listen_tcp(addr, /*reuse_port=*/true);
  if (!fd) return fd.error();
  // Port 0: the first loop's bind picks the port; the other loops join it.
  if (addr.port() == 0) {
    auto local = net::local_address(fd->get());
    if (!local) return local.error();
    addr = *local;
  }
  return make_listener(l, std::move(*fd), tls, /*shared=*/false);
}

Result<std::unique_ptr<net::Listener>> Server::adopt_on(Loop& l, int fd, bool tls) {
  auto dup = net::share_listener(fd);
  if (!dup) return dup.error();
  return make_listener(l, std::move(*dup), tls, /*shared=*/true);
}

Result<std::unique_ptr<net::Listener>> Server::make_listener(Loop& l, UniqueFd fd, bool tls, bool shared) {
  Loop* raw = &l;
  auto listener = std::make_unique<net::Listener>(
      *raw->loop, std::move(fd),
      [this, raw, tls](UniqueFd cfd, const net::SocketAddress& peer) { accept(*raw, std::move(cfd), peer, tls); },
      [this, raw] { return admit(*raw); },
      [raw](int err) {
        AcceptError e = err == EMFILE    ? AcceptError::kEmfile
                        : err == ENFILE  ? AcceptError::kEnfile
                        : err == ENOBUFS ? AcceptError::kEnobufs
                        : err == ENOMEM  ? AcceptError::kEnomem
                                         : AcceptError::kOther;
        raw->stats.accept_errors[static_cast<std::size_t>(e)].add();
      },
      [this] { caught_up(); });
  if (auto r = listener->start(shared); !r) return r.error();
  return listener;
}

void Server::accept(Loop& l, UniqueFd fd, const net::SocketAddress& peer, bool tls) {
  auto tcp = std::make_unique<net::TcpConnection>(*l.loop, std::move(fd), peer.to_string(),
                                                  options_.limits.max_buffered_input);
  if (auto r = tcp->start(); !r) return;  // the socket closes with the transport
  std::unique_ptr<net::Transport> transport;
  if (tls) {
    SSL* ssl = options_.tls->new_ssl();
    if (!ssl) return;  // out of memory: the client sees a close
    transport = std::make_unique<net::TlsTransport>(*l.loop, std::move(tcp), ssl, net::TlsTransport::Role::kServer);
  } else {
    transport = std::move(tcp);
  }
  auto conn = std::make_unique<HttpConnection>(*l.ctx, std::move(transport), next_conn_id_.fetch_add(1));
  HttpConnection* raw = conn.get();
  if (options_.max_connections_per_ip > 0) {
    // The address without the port: "10.0.0.1:5000" -> "10.0.0.1", "[::1]:5000" -> "[::1]".
    std::string ip = peer.to_string();
    ip.erase(ip.rfind(':'));
    {
      std::lock_guard lock(per_ip_mu_);
      // Over the limit: the connection still gets an answer (503 to its first request) rather
      // than a reset it cannot tell from a crash.
      if (++per_ip_[ip] > options_.max_connections_per_ip) raw->refuse(503, "too many connections from your address\n");
    }
    l.ips.emplace(raw, std::move(ip));
  }
  raw->set_owner_slot(static_cast<std::uint32_t>(l.conns.size()));
  l.conns.push_back(std::move(conn));
  active_.fetch_add(1, std::memory_order_relaxed);
  l.stats.connections_active.add();
  l.stats.connections_accepted.add();
  raw->start();
}

bool Server::admit(Loop& l) {
  std::uint64_t open = active_.load(std::memory_order_relaxed);
  if (open < options_.max_connections) return true;
  // Every loop's listener pauses and retries every 100 ms while at the limit: one report per
  // episode, not one per retry or per loop.
  if (!limit_paused_.exchange(true)) {
    l.stats.accept_pauses.add();
    if (options_.on_accept_limit) options_.on_accept_limit(true, open);
  }
  return false;
}

void Server::caught_up() {
  // A pause ends when the clients that waited in the backlog are all in, not at the first free
  // slot: a server held at its limit by churn reports one pause, not one per closed connection.
  if (limit_paused_.load(std::memory_order_relaxed) && limit_paused_.exchange(false) && options_.on_accept_limit)
    options_.on_accept_limit(false, active_.load(std::memory_order_relaxed));
}

void Server::on_closed(Loop& l, HttpConnection* c) {
  active_.fetch_sub(1, std::memory_order_relaxed);
  l.stats.connections_active.sub();
  // Freed at the end of the turn: the connection may be deep in its own callback right now, and a
  // task it deferred (its end-of-turn flush) may not have run yet. One task, after every deferred
  // one, serves every connection that closed in the turn.
  l.closed.push_back(c);
  if (l.closed.size() == 1) l.loop->defer_last([this, &l] { free_closed(l); });
}

void Server::free_closed(Loop& l) {
  // By index: a connection freed here could close another (which then joins this list).
  for (std::size_t k = 0; k < l.closed.size(); ++k) {
    HttpConnection* c = l.closed[k];
    if (auto it = l.ips.find(c); it != l.ips.end()) {
      std::lock_guard lock(per_ip_mu_);
      auto n = per_ip_.find(it->second);
      if (n != per_ip_.end() && --n->second == 0) per_ip_.erase(n);
      l.ips.erase(it);
    }
    std::size_t i = c->owner_slot();
    std::swap(l.conns[i], l.conns.back());
    l.conns[i]->set_owner_slot(static_cast<std::uint32_t>(i));
    l.conns.pop_back();
  }
  l.closed.clear();
  if (l.stopping && l.conns.empty()) l.loop->stop();
  // A descriptor or a connection slot was freed: accept again if we had to pause.
  for (auto& listener : l.listeners)
    if (listener->paused()) listener->resume();
}

void Server::drain_loop(Loop& l) {
  l.stopping = true;
  for (auto& listener : l.listeners) listener->close();
  std::vector<HttpConnection*> snapshot;
  snapshot.reserve(l.conns.size());
  for (auto& c : l.conns) snapshot.push_back(c.get());
  for (HttpConnection* c : snapshot) c->begin_drain();
  l.loop->defer([&l] {
    if (l.conns.empty()) l.loop->stop();
  });
}

void Server::drain() {
  if (draining_.exchange(true)) return;
  for (auto& l : loops_) {
    Loop* raw = l.get();
    l->loop->post([this, raw] { drain_loop(*raw); });
  }
}

void Server::wait() {
  for (auto& l : loops_)
    if (l->thread.joinable()) l->thread.join();
  workers_.reset();
}

std::vector<net::EventLoop*> Server::event_loops() const {
  std::vector<net::EventLoop*> out;
  for (const auto& l : loops_) out.push_back(l->loop.get());
  return out;
}

std::vector<const LoopStats*> Server::stats() const {
  std::vector<const LoopStats*> out;
  for (const auto& l : loops_) out.push_back(&l->stats);
  return out;
}

}  // namespace unbroken::http
