// The connection state machine (see http_connection.h): reading and dispatching requests, the
// streamed body and its back-pressure, and how requests and the connection end (the lifecycle).
// The same class's timers are in http_connection_timers.cc and its response side in
// http_connection_output.cc; framing is the response encoder's (response_encoder.h), records and
// counters the request recorder's (request_recorder.h), the handler's side exchange.cc.
// It is past the house's ~500 lines: the ends (end_request, close, linger, close at once)
// are the next to move to a file of their own, with a whole make test run, not in a rushed split.

#include "http/http_connection.h"

#include <fmt/format.h>

#include "base/block_pool.h"
#include "base/check.h"
#include "http/blocking_exchange.h"
#include "http/worker_pool.h"

namespace unbroken::http {
namespace {

// Body bytes that count as progress for the body timeout (at 30 s, a floor of about 34 bytes/s).
constexpr std::uint64_t kMinBodyProgress = 1024;

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

Outcome outcome_of_status(int status) {
  return status == 413 || status == 431 ? Outcome::kLimitExceeded : Outcome::kProtocolError;
}

}  // namespace

void* HttpConnection::operator new(std::size_t size) {
  return size == sizeof(HttpConnection) ? BlockPool<sizeof(HttpConnection)>::take() : ::operator new(size);
}

void HttpConnection::operator delete(void* p, std::size_t size) {
  if (size == sizeof(HttpConnection)) return BlockPool<sizeof(HttpConnection)>::give(p);
  ::operator delete(p);
}

HttpConnection::HttpConnection(LoopContext& ctx, std::unique_ptr<net::Transport> transport, std::uint64_t id)
    : transport_(std::move(transport)), timer_([this] { on_timer(); }), recorder_(ctx, *transport_, id) {
  deadlines_.fill(kNever);
  transport_->set_handler(this);
}

HttpConnection::~HttpConnection() {
  if (exchange_) exchange_->conn_ = nullptr;
  if (parser_) ctx().parsers.give(std::move(parser_));
}

void HttpConnection::start() {
  // A TLS connection is in its handshake first, under its own timer; on_secured() ends it.
  if (const net::TlsSession* tls = transport_->tls(); tls && tls->handshaking) {
    phase_ = Phase::kTlsHandshake;
    arm(TimerKind::kTlsHandshake, ctx().limits.tls_handshake_timeout);
    return;
  }
  arm(TimerKind::kHeader, ctx().limits.header_timeout);
}

void HttpConnection::on_secured() {
  if (closed() || phase_ != Phase::kTlsHandshake) return;
  const net::TlsSession& tls = *transport_->tls();
  ctx().stats.count_handshake(tls.resumed ? TlsResult::kResumed : TlsResult::kOk,
                              std::chrono::duration<double>(ctx().loop.now() - tls.started).count());
  phase_ = Phase::kIdle;
  disarm(TimerKind::kTlsHandshake);
  if (lifecycle_ == Lifecycle::kDraining) {
    close_connection(false);  // a drain began during the handshake: idle now, so it ends
    return;
  }
  arm(TimerKind::kHeader, ctx().limits.header_timeout);
}

// ---- input -------------------------------------------------------------------------------------

void HttpConnection::on_data(net::Buffer& in) {
  if (lifecycle_ == Lifecycle::kLingering) {
    in.clear();
    return;
  }
  process();
}

void HttpConnection::process() {
  if (closing()) return;
  // A tunnel's bytes are not HTTP: no parser sees them.
  if (phase_ == Phase::kTunnel) return relay_client_input();
  net::Buffer& in = transport_->input();
  in_process_ = true;
  while (!closing() && !in.empty()) {
    // Pipelining: the next request waits until this one is answered; bytes stay buffered (bounded
    // by max_buffered_input, after which the transport stops reading).
    if (exchange_ && message_done_) break;
    // A paused body: what is buffered stays unparsed (and reading is off) until resume_body().
    if (body_paused_) break;
    if (!parser_) parser_ = ctx().parsers.take();
    if (phase_ == Phase::kIdle) begin_request();
    auto r = parser_->feed(in.readable(), this);
    in.consume(r.consumed);
    recorder_.add_in(r.consumed);
    if (closing()) break;
    switch (r.status) {
      case RequestParser::Status::kNeedMore: break;
      case RequestParser::Status::kError:
        in.clear();
        // With an exchange the head was read: the error is in the body, whatever the handler did.
        if (exchange_) phase_ = Phase::kRequestBody;
        reject(parser_->error_status(), outcome_of_status(parser_->error_status()),
               fmt::format("{}\n", parser_->error_reason()));
        break;
      case RequestParser::Status::kHead: on_head(); break;
      case RequestParser::Status::kMessage: on_message(); break;
    }
  }
  in_process_ = false;
  if (close_when_processed_) return close_connection(false);
  // Between requests with nothing buffered, the connection is idle: its parser goes back to the loop.
  if (parser_ && phase_ == Phase::kIdle && !closed() && in.empty() && !parser_->in_message())
    ctx().parsers.give(std::move(parser_));
  update_reading();
}

void HttpConnection::update_reading() {
  if (closed()) return;
  // A tunnel does not stop reading its client for its own output: each direction has its own
  // back-pressure (the upstream's output pauses the client, this output pauses the upstream).
  bool output_ok = !paused_for_output_ || phase_ == Phase::kTunnel;
  bool want = lifecycle_ == Lifecycle::kLingering || (!closing() && output_ok && !body_paused_ &&
                                                      transport_->input().size() < ctx().limits.max_buffered_input);
  transport_->set_reading(want);
}

void HttpConnection::begin_request() {
  if (!recorder_.can_hold_more()) emit_pending();
  phase_ = Phase::kRequestHeaders;
  recorder_.begin();
  status_ = 0;
  route_ = nullptr;
  route_slot_ = kNoRouteSlot;
  path_matched_ = dispatched_ = message_done_ = false;
  disarm(TimerKind::kKeepalive);
  // The whole head must arrive within header_timeout of its first byte (no re-arming on progress:
  // a slowloris trickling one byte a second still runs out).
  arm(TimerKind::kHeader, ctx().limits.header_timeout);
}

void HttpConnection::on_head() {
  disarm(TimerKind::kHeader);
  if (refuse_status_ != 0) {
    reject(refuse_status_, Outcome::kLimitExceeded, refuse_reason_);
    return;
  }
  phase_ = Phase::kRequestBody;
  exchange_ = std::allocate_shared<Exchange>(PoolAllocator<Exchange>{}, this, ctx().loop);
  Request& req = exchange_->request_;
  req = std::move(parser_->request());
  ctx().parsers.refill(*parser_);
  ctx().parsers.refill(exchange_->headers_);
  req.client = transport_->peer();
  req.secure = transport_->tls() != nullptr;
  auto m = ctx().router.match(req.method, req.path(), req.params);
  route_ = m.route;
  path_matched_ = m.path_matched;
  const Router& router = ctx().router;
  route_slot_ = static_cast<std::uint32_t>(route_ != nullptr                     ? route_->index
                                           : !path_matched_ && router.fallback() ? router.fallback_slot()
                                                                                 : router.unmatched_slot());
  if (!req.has_body()) return;
  body_progress_ = 0;
  arm(TimerKind::kBody, ctx().limits.body_timeout);
  if (req.expect_continue) {
    transport_->queue("HTTP/1.1 100 Continue\r\n\r\n");
    if (!flush_output()) return;
  }
  if (route_ && route_->body_mode == BodyMode::kStream && !route_->blocking) dispatch();
}

void HttpConnection::on_body(std::string_view chunk) {
  if (closed() || !exchange_) return;
  // Body timeout = no progress for that long, where progress is kMinBodyProgress bytes: a body
  // trickled a byte at a time (slow-body, slowhttptest -B) would otherwise hold the connection for
  // ever, as it does nginx's client_body_timeout.
  body_progress_ += chunk.size();
  if (body_progress_ >= kMinBodyProgress) {
    body_progress_ = 0;
    arm(TimerKind::kBody, ctx().limits.body_timeout);
  }
  if (!dispatched_) {
    exchange_->request_.body.append(chunk);
  } else if (holding_body()) {
    // Paused within this parse: the rest of what the parser takes now waits for resume_body().
    if (!held_body_) held_body_ = std::make_unique<std::string>();
    held_body_->append(chunk);
  } else {
    deliver_body(chunk);
  }
}

void HttpConnection::deliver_body(std::string_view chunk) {
  // A finished response takes no more body: the rest is read and dropped, never handed over with
  // a hole in it (pieces held while paused are dropped at finish, see ex_finish).
  if (exchange_->finished_) return;
  if (exchange_->body_chunk_) exchange_->body_chunk_(chunk);
}

void HttpConnection::ex_pause_body(Exchange& ex) {
  if (closing() || &ex != exchange_.get() || !dispatched_ || body_paused_) return;
  body_paused_ = true;
  disarm(TimerKind::kBody);  // we are the ones not reading
  if (!in_process_) update_reading();
}

void HttpConnection::ex_resume_body(Exchange& ex) {
  if (closing() || &ex != exchange_.get() || !body_paused_) return;
  resume_body(true);
}

void HttpConnection::resume_body(bool deliver) {
  body_paused_ = false;
  ExchangePtr ex = exchange_;  // a callback may end the request
  if (!deliver) held_body_.reset();
  while (held_body_ && !held_body_->empty() && !body_paused_) {
    std::string held = std::move(*held_body_);
    held_body_->clear();
    deliver_body(held);
    if (closing() || exchange_ != ex) return;
  }
  if (body_paused_) return;
  if (body_end_held_) {
    body_end_held_ = false;
    if (auto end = std::move(ex->body_end_); end && !ex->finished_) end();
    if (closing() || exchange_ != ex) return;
    maybe_complete();
    return;
  }
  if (!message_done_) {
    body_progress_ = 0;
    arm(TimerKind::kBody, ctx().limits.body_timeout);
  }
  if (!in_process_) process();
}

void HttpConnection::on_message() {
  if (!exchange_) on_head();
  if (closing()) return;
  message_done_ = true;
  disarm(TimerKind::kBody);
  if (!dispatched_) {
    dispatch();
  } else if (holding_body()) {
    body_end_held_ = true;
  } else if (exchange_ && exchange_->body_end_ && !exchange_->finished_) {
    auto end = std::move(exchange_->body_end_);
    end();
  }
  maybe_complete();
}

void HttpConnection::dispatch() {
  dispatched_ = true;
  phase_ = Phase::kHandler;
  recorder_.handler_started();
  arm(TimerKind::kHandler, ctx().limits.handler_timeout);
  ExchangePtr ex = exchange_;  // the handler may end the request (and drop exchange_) before returning
  if (route_ != nullptr) {
    run_handler(*route_);
  } else if (path_matched_) {
    ex->add_header("Allow", "GET, HEAD");
    ex->respond(405, "method not allowed\n");
  } else if (ctx().router.fallback()) {
    ctx().router.fallback()(ex);
  } else {
    ex->respond(404, "not found\n");
  }
}

void HttpConnection::run_handler(const Route& route) {
  ExchangePtr ex = exchange_;
  if (route.blocking) {
    auto bx = std::make_shared<BlockingExchange>(ex);
    const BlockingHandler* h = &route.blocking;
    bool queued = ctx().workers != nullptr && ctx().workers->submit([bx, h]() mutable {
      try {
        (*h)(*bx);
      } catch (...) {
        // Reported as a 500 by the destructor if nothing was sent yet.
      }
      bx.reset();
    });
    if (!queued) ex->respond(503, "server busy\n");
    return;
  }
  try {
    route.async(ex);
  } catch (...) {
    if (ex == exchange_) handler_failed();
  }
}

void HttpConnection::handler_failed() {
  if (closed()) return;
  if (exchange_ && !exchange_->started_) {
    reject(500, Outcome::kHandlerError, "internal error\n");
  } else {
    end_request(Outcome::kHandlerError);
    close_connection(true);
  }
}

// ---- ends --------------------------------------------------------------------------------------

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
