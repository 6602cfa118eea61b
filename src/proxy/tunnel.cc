#include "proxy/tunnel.h"

#include "http/wire.h"
#include "net/event_loop.h"

namespace unbroken::proxy {
namespace {

using http::Outcome;

// One tunnel: the client's side is the exchange's connection, the upstream's is up_. It keeps
// itself alive (self_) until the upstream connection is closed; the exchange's callbacks hold it
// weakly.
class Tunnel final : public net::TransportHandler, public std::enable_shared_from_this<Tunnel> {
 public:
  Tunnel(std::shared_ptr<const ProxySettings> s, http::ExchangePtr ex, std::unique_ptr<net::Transport> up)
      : s_(std::move(s)), ex_(std::move(ex)), up_(std::move(up)), timer_([this] { idle_timer_fired(); }) {}

  void start(const http::ParsedResponse& head);

  // TransportHandler (the upstream connection)
  void on_data(net::Buffer& in) override;
  void on_peer_closed() override;
  void on_transport_error(net::SocketError e) override;
  void on_written(std::size_t) override;

 private:
  void from_client(std::string_view bytes);
  void watch_client_output();
  void idle_timer_fired();
  // Ends the client's side with `outcome` (unless it ended already), then closes the upstream.
  void end(Outcome outcome, std::optional<http::TimerKind> timer = std::nullopt);
  void close_upstream();
  // A byte moved either way: the idle timer starts again, and upstream_ms runs to here. (The record
  // of an end from the client's side is taken before we hear of it, so it cannot wait for the end.)
  void moved();

  std::shared_ptr<const ProxySettings> s_;
  http::ExchangePtr ex_;
  std::unique_ptr<net::Transport> up_;
  std::shared_ptr<Tunnel> self_;
  http::UpstreamRecord* rec_ = nullptr;  // the exchange's typed state, read by the recorder
  net::TimePoint started_{};
  net::TimePoint last_byte_{};  // either way
  // The idle timer, moved lazily from the last byte: a wheel operation per read or write would
  // cost more than the timer is worth.
  net::TimerNode timer_;
  bool client_paused_ = false;  // the upstream's output is above the high-water mark
  bool done_ = false;
};

void Tunnel::start(const http::ParsedResponse& head) {
  self_ = shared_from_this();
  // The proxy's record of this request, with the upstream's name and times so far.
  rec_ = ex_->state<http::UpstreamRecord>();
  if (rec_ == nullptr) rec_ = &ex_->emplace_state<http::UpstreamRecord>();
  started_ = ex_->loop().now();
  moved();
  up_->set_handler(this);
  std::weak_ptr<Tunnel> weak = self_;
  // The client's side ended (FIN, RST, drain, or our own end()): the upstream goes with it.
  ex_->token().on_cancel([weak] {
    if (auto self = weak.lock()) self->close_upstream();
  });
  if (done_) return;
  bool asked = !requested_upgrade(ex_->request()).empty();
  if (!asked || !ex_->start_tunnel({head.status, head.reason, &head.headers}, [weak](std::string_view bytes) {
        if (auto self = weak.lock()) self->from_client(bytes);
      })) {
    ex_->abort(Outcome::kUpstreamProtocolError, 502, "upstream switched protocols, and this request cannot\n");
    return close_upstream();
  }
  if (done_) return;
  ex_->loop().timers().arm(timer_, last_byte_ + s_->tunnel_idle_timeout);
  // What the upstream sent right after its 101 head.
  if (!up_->input().empty()) on_data(up_->input());
}

void Tunnel::from_client(std::string_view bytes) {
  if (done_) return;
  moved();
  up_->queue(bytes);
  rec_->bytes_out += bytes.size();
  auto r = up_->flush();
  if (!r) return on_transport_error(net::classify(r.error()));
  // The application reads slower than the client sends: stop reading the client.
  if (up_->queued_bytes() >= s_->output_high_water && !client_paused_) {
    client_paused_ = true;
    ex_->pause_body();
  }
}

void Tunnel::on_written(std::size_t) {
  if (!done_ && client_paused_ && up_->queued_bytes() < s_->output_low_water) {
    client_paused_ = false;
    ex_->resume_body();
  }
}

void Tunnel::on_data(net::Buffer& in) {
  if (done_) return;
  std::string_view bytes = in.readable();
  moved();
  rec_->bytes_in += bytes.size();
  bool sent = ex_->tunnel_write(bytes);
  // A failed send ended the tunnel (the token closed us): `in` is no longer ours to consume.
  if (done_) return;
  in.consume(bytes.size());
  if (!sent) return close_upstream();
  watch_client_output();
}

void Tunnel::watch_client_output() {
  // The client reads slower than the application writes: stop reading the upstream until it drains.
  if (ex_->writable()) return;
  up_->set_reading(false);
  std::weak_ptr<Tunnel> weak = self_;
  ex_->on_drain([weak] {
    if (auto self = weak.lock(); self && !self->done_) self->up_->set_reading(true);
  });
}

void Tunnel::on_peer_closed() {
  end(Outcome::kOk);
}

void Tunnel::on_transport_error(net::SocketError) {
  end(Outcome::kUpstreamReset);
}

void Tunnel::idle_timer_fired() {
  if (done_) return;
  net::TimePoint due = last_byte_ + s_->tunnel_idle_timeout;
  if (ex_->loop().now() < due) return ex_->loop().timers().arm(timer_, due);
  end(Outcome::kTimeout, http::TimerKind::kTunnelIdle);
}

void Tunnel::end(Outcome outcome, std::optional<http::TimerKind> timer) {
  if (done_) return;
  moved();  // not a byte, but the end: upstream_ms runs to it
  // Cancels the token, which closes the upstream; a client side that ended already did that.
  ex_->end_tunnel(outcome, timer, timer ? s_->tunnel_idle_timeout : std::chrono::milliseconds{});
  close_upstream();
}

void Tunnel::moved() {
  last_byte_ = ex_->loop().now();
  rec_->ms = rec_->header_ms + std::chrono::duration<double, std::milli>(last_byte_ - started_).count();
}

void Tunnel::close_upstream() {
  if (done_) return;
  done_ = true;
  net::EventLoop& loop = ex_->loop();
  loop.timers().cancel(timer_);
  // What the client sent last was flushed with it (from_client); a FIN, not a reset, so the
  // application sees an ordinary close.
  up_->set_handler(nullptr);
  up_->close(false);
  // Freed at the end of the turn, never inside one of its own callbacks; the exchange goes with us.
  net::Transport* c = up_.release();
  loop.defer([c, keep = std::move(self_)] { delete c; });
}

}  // namespace

std::string_view requested_upgrade(const http::Request& req) {
  std::string_view upgrade = req.header("upgrade");
  if (upgrade.empty() || !http::named_by_connection(req.headers, "upgrade")) return {};
  return upgrade;
}

void start_tunnel(std::shared_ptr<const ProxySettings> settings, http::ExchangePtr ex,
                  std::unique_ptr<net::Transport> up, const http::ParsedResponse& head) {
  std::make_shared<Tunnel>(std::move(settings), std::move(ex), std::move(up))->start(head);
}

}  // namespace unbroken::proxy
