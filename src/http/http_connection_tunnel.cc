// HttpConnection as a tunnel (see Exchange::start_tunnel): after an upstream's 101 the connection
// relays bytes, unparsed and unframed, until one side closes. The other half (the upstream) is
// the caller's; this side keeps the client's bytes, its record and its close.

#include "http/http_connection.h"

namespace unbroken::http {

bool HttpConnection::ex_start_tunnel(Exchange& ex, const UpstreamHead& up,
                                     std::function<void(std::string_view)> client_bytes) {
  // Only a request read whole: what follows its head in the input is the tunnel's, not a body's.
  // Not while draining: a tunnel would outlive the drain it was begun in.
  if (closing() || lifecycle_ != Lifecycle::kOpen || ex.started_ || &ex != exchange_.get() || !message_done_)
    return false;
  // The handler's response is the head; what follows is a relay, not a body the handler owes.
  ex.started_ = ex.finished_ = true;
  ex.tunnel_bytes_ = std::move(client_bytes);
  recorder_.handler_finished();
  status_ = up.status;
  keep_alive_ = false;
  // The header, body, handler, send and keep-alive timers do not run on a live tunnel.
  clear_deadlines_but_record();
  std::string& head = ctx().scratch;
  head.clear();
  ex.encoder_.begin_tunnel(head, up, ctx().date.get());
  queue_head(ex, head, false);
  phase_ = Phase::kTunnel;
  ExchangePtr keep = exchange_;  // the client's bytes or a failed flush may end the tunnel
  relay_client_input();
  if (phase_ == Phase::kTunnel && !closing()) flush_output();
  return true;
}

void HttpConnection::relay_client_input() {
  net::Buffer& in = transport_->input();
  while (!closing() && phase_ == Phase::kTunnel && !body_paused_ && !in.empty()) {
    std::string_view bytes = in.readable();
    recorder_.add_in(bytes.size());
    exchange_->tunnel_bytes_(bytes);
    // Ended inside: the input may have been cleared (lingering) and is no longer the tunnel's.
    if (closing() || phase_ != Phase::kTunnel) return;
    in.consume(bytes.size());
  }
  update_reading();
}

bool HttpConnection::ex_tunnel_write(Exchange& ex, std::string_view bytes) {
  if (closing() || phase_ != Phase::kTunnel || &ex != exchange_.get()) return false;
  if (bytes.empty()) return true;
  transport_->queue(bytes);
  // A failed send ends the tunnel from here (client_reset, broken_pipe) before this returns.
  return flush_output() && phase_ == Phase::kTunnel;
}

void HttpConnection::ex_end_tunnel(Exchange& ex, Outcome outcome, std::optional<TimerKind> timer,
                                   std::chrono::milliseconds timeout) {
  if (closing() || phase_ != Phase::kTunnel || &ex != exchange_.get()) return;
  upstream_timeout_ = timeout;
  end_request(outcome, timer);
  // What the upstream sent last (a WebSocket close frame, say) still reaches the client, then FIN.
  graceful_close();
}

}  // namespace unbroken::http
