#include "proxy/upstream_pool.h"

#include <algorithm>
#include <charconv>

#include "base/text.h"

namespace unbroken::proxy {

namespace {
constexpr std::chrono::milliseconds kSurplusGrace{50};
}  // namespace

// A parked connection's handler and idle timer. Slots are made once and reused, so parking and
// taking a connection allocate nothing once the pool has warmed up.
struct UpstreamPool::Slot final : net::TransportHandler {
  explicit Slot(UpstreamPool& p) : pool(p), timer([this] { pool.drop(this); }) {}
  // Anything from an idle connection ends it: a FIN (the application closed it), an error, or bytes
  // no request asked for.
  void on_data(net::Buffer&) override { pool.drop(this); }
  void on_peer_closed() override { pool.drop(this); }
  void on_transport_error(net::SocketError) override { pool.drop(this); }
  void on_written(std::size_t) override {}

  UpstreamPool& pool;
  std::size_t upstream = 0;
  std::unique_ptr<net::Transport> conn;
  net::TimerNode timer;
};

UpstreamPool::UpstreamPool(net::EventLoop& loop, std::size_t upstreams, std::size_t capacity,
                           std::atomic<std::int64_t>* idle_gauges)
    : loop_(loop), capacity_(capacity), gauges_(idle_gauges), parked_(upstreams) {}

UpstreamPool::~UpstreamPool() {
  // The loop is going: close what is parked here and now (no later turn will come).
  for (auto& list : parked_)
    for (Slot* s : list) {
      s->conn->set_handler(nullptr);
      s->conn->close(false);
      s->conn.reset();
      if (gauges_) gauges_[s->upstream].fetch_sub(1, std::memory_order_relaxed);
    }
}

std::unique_ptr<net::Transport> UpstreamPool::take(std::size_t i) {
  auto& list = parked_[i];
  if (list.empty()) return nullptr;
  Slot* s = list.back();
  unpark(s);
  std::unique_ptr<net::Transport> c = std::move(s->conn);
  c->set_handler(nullptr);
  free_.push_back(s);
  return c;
}

void UpstreamPool::park(std::size_t i, std::unique_ptr<net::Transport> c, std::chrono::milliseconds idle) {
  if (capacity_ == 0 || idle.count() <= 0) {
    c->set_handler(nullptr);
    c->close(false);
    net::Transport* raw = c.release();
    loop_.defer([raw] { delete raw; });
    return;
  }
  // Past the capacity a connection is kept only for a moment: under load the responses of one
  // loop turn park more connections at once than the next turn's requests take, and closing the
  // surplus at once (nginx's keepalive N does) means connecting again a few microseconds later.
  // Twice the capacity is the hard cap.
  if (parked_[i].size() >= 2 * capacity_) drop(parked_[i].front());
  if (parked_[i].size() >= capacity_) idle = std::min(idle, kSurplusGrace);
  if (free_.empty()) {
    slots_.push_back(std::make_unique<Slot>(*this));
    free_.push_back(slots_.back().get());
  }
  Slot* s = free_.back();
  free_.pop_back();
  s->upstream = i;
  s->conn = std::move(c);
  s->conn->set_handler(s);
  s->conn->set_reading(true);
  loop_.timers().arm(s->timer, loop_.now() + idle);
  parked_[i].push_back(s);
  if (gauges_) gauges_[i].fetch_add(1, std::memory_order_relaxed);
}

void UpstreamPool::unpark(Slot* s) {
  auto& list = parked_[s->upstream];
  list.erase(std::find(list.begin(), list.end(), s));  // a few dozen at most
  loop_.timers().cancel(s->timer);
  if (gauges_) gauges_[s->upstream].fetch_sub(1, std::memory_order_relaxed);
}

void UpstreamPool::drop(Slot* s) {
  unpark(s);
  s->conn->set_handler(nullptr);
  s->conn->close(false);
  // Maybe inside the connection's own callback: freed at the end of the turn.
  net::Transport* raw = s->conn.release();
  loop_.defer([raw] { delete raw; });
  free_.push_back(s);
}

std::optional<std::chrono::milliseconds> keep_alive_timeout(const http::HeaderList& headers) {
  std::string_view list = headers.find("keep-alive");
  while (!list.empty()) {
    std::string_view param = next_list_element(list);
    auto eq = param.find('=');
    if (eq == std::string_view::npos || !iequals(trim_ows(param.substr(0, eq)), "timeout")) continue;
    std::string_view v = trim_ows(param.substr(eq + 1));
    unsigned seconds = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), seconds);
    if (ec != std::errc{} || end != v.data() + v.size()) return std::nullopt;
    return std::chrono::seconds(std::min(seconds, 86'400u));
  }
  return std::nullopt;
}

}  // namespace unbroken::proxy
