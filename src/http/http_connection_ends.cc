// HttpConnection's ends (see http_connection.h): of a request (its record, an error answer) and of
// the connection (the lifecycle: draining, closing, lingering or closing at once, closed), and the
// peer's and the socket's ends that lead to them.

#include "base/check.h"
#include "http/http_connection.h"

namespace unbroken::http {
namespace {

Outcome outcome_of(net::SocketError e) {
  return e == net::SocketError::kBrokenPipe ? Outcome::kBrokenPipe
         : e == net::SocketError::kProtocol ? Outcome::kProtocolError
                                            : Outcome::kClientReset;
}

// How a handshake that ended in `o` is counted in unbroken_tls_handshakes_total.
TlsResult handshake_result(Outcome o) {
  switch (o) {
    case Outcome::kClientClosed: return TlsResult::kClientClosed;
    case Outcome::kClientReset:
    case Outcome::kBrokenPipe: return TlsResult::kClientReset;
    case Outcome::kTimeout: return TlsResult::kTimeout;
    case Outcome::kShutdown: return TlsResult::kShutdown;
    default: return TlsResult::kProtocolError;
  }
}

}  // namespace

void HttpConnection::end_request(Outcome outcome, std::optional<TimerKind> timer, int status_override) {
  const Request& req = current_request();
  RequestRecorder::End e{outcome,
                         timer,
                         timer ? timeout_of(*timer) : std::chrono::milliseconds{},
                         status_override != 0 ? status_override : status_,
                         phase_,
                         &req,
                         exchange_ ? std::string_view(req.client) : std::string_view(transport_->peer()),
                         route_slot_ == kNoRouteSlot ? RequestRecorder::kNoRoute : route_slot_,
                         dispatched_};
  // The held records go first: records keep the order of their requests.
  if (outcome != Outcome::kOk || !recorder_.can_hold_more()) emit_pending();
  if (phase_ == Phase::kTlsHandshake) {
    ctx().stats.count_handshake(handshake_result(outcome), 0);
    disarm(TimerKind::kTlsHandshake);
  }
  // Whichever side ended it, a tunnel's other half (the upstream) hears it through the token.
  bool tunnel = phase_ == Phase::kTunnel;
  client_done_ = outcome == Outcome::kOk && exchange_ && message_done_ && !exchange_->request_.keep_alive;
  bool cancelled = false;
  if (recorder_.end(e, exchange_, &cancelled)) arm(TimerKind::kRecord, kRecordDelay);

  // Detach before cancelling: cancellation callbacks see an inactive exchange.
  if (exchange_) {
    ExchangePtr ex = std::move(exchange_);
    ex->conn_ = nullptr;
    if (cancelled || tunnel) ex->token_.cancel();
    release_callbacks(std::move(ex));
  }
  phase_ = Phase::kIdle;
  dispatched_ = message_done_ = false;
  body_paused_ = body_end_held_ = false;
  held_body_.reset();  // an idle connection holds none
  disarm(TimerKind::kHandler);
  disarm(TimerKind::kBody);
  disarm(TimerKind::kHeader);
  disarm(TimerKind::kSendRate);  // the next response is judged from its own first wait
}

void HttpConnection::release_callbacks(ExchangePtr ex) {
  // Callbacks that capture the exchange (a drain callback resuming a producer, say) would keep it
  // alive forever. Drop them at the end of the turn, not now: one of them may be running. One
  // deferred task per loop turn serves every exchange that ended in it. An exchange with no
  // callbacks needs nothing (and stays free to be recycled by the next request at once).
  if (!ex->drain_ && !ex->body_chunk_ && !ex->body_end_ && !ex->tunnel_bytes_ && !ex->token_.has_callbacks()) return;
  std::vector<ExchangePtr>& releasing = ctx().releasing;
  releasing.push_back(std::move(ex));
  if (releasing.size() > 1) return;
  ctx().loop.defer([&releasing] {
    // A callback dropped here may end another exchange (and append to the list): index, not iterate.
    for (std::size_t i = 0; i < releasing.size(); ++i) {
      Exchange& e = *releasing[i];
      e.drain_ = nullptr;
      e.body_chunk_ = nullptr;
      e.body_end_ = nullptr;
      e.tunnel_bytes_ = nullptr;
      e.token_.clear();
    }
    releasing.clear();
  });
}

void HttpConnection::emit_pending() {
  if (!recorder_.has_pending()) return;
  disarm(TimerKind::kRecord);
  recorder_.emit_pending(closed());
}

const Request& HttpConnection::current_request() const {
  // The exchange's request, or the parser's before there is one (views in a record point into it).
  static const Request kNoRequest;
  return exchange_ ? exchange_->request_ : parser_ ? parser_->request() : kNoRequest;
}

void HttpConnection::reject(int status, Outcome outcome, std::string_view reason, std::optional<TimerKind> timer) {
  if (closing()) return;
  std::uint64_t bytes_out = recorder_.bytes_out();
  if (exchange_ && exchange_->started_) {
    Exchange& ex = *exchange_;
    if (bytes_out > ex.head_at_) {
      // Part of the response is out: there is no answering any more. Cut it where the kernel has
      // it (a chunked body gets no final chunk, so the client can tell) and close. The record keeps
      // the status the client saw, or 0 if not even the whole head reached it.
      transport_->discard_output_after(0);
      if (bytes_out < ex.head_at_ + ex.head_len_) status_ = 0;
      end_request(outcome, timer);
      keep_alive_ = false;
      graceful_close();
      return;
    }
    // Not a byte of the handler's head has left: the error answer takes its place.
    transport_->discard_output_after(static_cast<std::size_t>(ex.head_at_ - bytes_out));
  }
  keep_alive_ = false;
  status_ = status;
  std::string& out = ctx().scratch;
  out.clear();
  ResponseEncoder::error(out, current_request(), status, reason, ctx().date.get());
  transport_->queue(out);
  advance(Lifecycle::kClosing);
  flush_output();
  if (closed()) return;
  end_request(outcome, timer);
  graceful_close();
}

void HttpConnection::advance(Lifecycle to) {
  // Forward only, and lingering only after closing: it is the last step of a graceful close.
  UB_CHECK(to > lifecycle_);
  UB_CHECK(to != Lifecycle::kLingering || lifecycle_ == Lifecycle::kClosing);
  lifecycle_ = to;
}

void HttpConnection::graceful_close() {
  if (closed()) return;
  if (!closing()) advance(Lifecycle::kClosing);
  clear_deadlines_but_record();
  if (transport_->queued_bytes() == 0) {
    start_linger();
  } else {
    arm(TimerKind::kSend, ctx().limits.send_timeout);
  }
}

void HttpConnection::start_linger() {
  if (lifecycle_ >= Lifecycle::kLingering) return;
  if (can_close_at_once()) {
    // Within process() the handler's frames still hold the exchange: closing once they have
    // returned lets the record hand the request's storage back for the next connection's parser.
    if (in_process_) {
      close_when_processed_ = true;
    } else {
      close_connection(false);
    }
    return;
  }
  advance(Lifecycle::kLingering);
  transport_->shutdown_write();
  transport_->input().clear();
  clear_deadlines_but_record();
  arm(TimerKind::kLinger, ctx().limits.linger_timeout);
  update_reading();
}

bool HttpConnection::can_close_at_once() const {
  // The lingering close (FIN, then read and drop until the client's FIN) exists so that a close
  // never meets unread client bytes: the kernel would answer them with RST, which can destroy the
  // response before the client reads it (RFC 9112 9.6). A client that asked to close sends no more,
  // and when every byte it sent was read (the last read emptied the socket) a close sends FIN, not
  // RST. The record must still say what the client got: only once the kernel says every byte was
  // acknowledged (on loopback, as soon as it is sent) is there nothing left to learn by waiting.
  if (!client_done_ || !transport_->input_drained()) return false;
  std::optional<net::TcpDelivery> d = transport_->delivery();
  return d && d->bytes_acked >= recorder_.conn_bytes_out();
}

void HttpConnection::close_connection(bool abortive) {
  if (closed()) return;
  emit_pending();  // while the socket is still there to ask
  advance(Lifecycle::kClosed);
  ctx().loop.timers().cancel(timer_);
  if (exchange_) {
    ExchangePtr ex = std::move(exchange_);
    ex->conn_ = nullptr;
    ex->token_.cancel();
    release_callbacks(std::move(ex));
  }
  transport_->close(abortive);
  if (ctx().on_closed) ctx().on_closed(this);
}

void HttpConnection::on_peer_closed() {
  if (closed()) return;
  // FIN on an idle connection, or after we decided to close, is a normal end.
  if (closing() || (phase_ == Phase::kIdle && !exchange_)) {
    close_connection(false);
    return;
  }
  // EPOLLRDHUP while a request is in flight: the client left. Cancel the handler now.
  end_request(Outcome::kClientClosed);
  close_connection(false);
}

void HttpConnection::on_transport_error(net::SocketError e) {
  if (closed()) return;
  if (closing() || (phase_ == Phase::kIdle && !exchange_)) {
    close_connection(false);
    return;
  }
  // Plain HTTP on the TLS port: the transport now writes in plain text, and the client is told.
  if (const net::TlsSession* tls = transport_->tls(); tls && tls->plain_http && phase_ == Phase::kTlsHandshake) {
    reject(400, Outcome::kProtocolError, "The plain HTTP request was sent to HTTPS port\n");
    return;
  }
  end_request(outcome_of(e));
  close_connection(false);
}

void HttpConnection::begin_drain() {
  // A connection already closing goes on closing, bounded by its send or linger timer; its request
  // has its record, so a drain timer must not write a second one.
  if (closing()) return;
  if (lifecycle_ == Lifecycle::kOpen) advance(Lifecycle::kDraining);
  if (phase_ == Phase::kIdle && !exchange_) {
    close_connection(false);
    return;
  }
  // A tunnel has no end of its own to wait for: it closes now (what is queued still goes out).
  if (phase_ == Phase::kTunnel) {
    end_request(Outcome::kShutdown);
    graceful_close();
    return;
  }
  arm(TimerKind::kDrain, ctx().limits.drain_timeout);
}

}  // namespace unbroken::http
