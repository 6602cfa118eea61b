// The connection state machine (see http_connection.h): reading and dispatching requests, and the
// streamed body and its back-pressure. The same class's ends (of a request, and of the connection:
// the lifecycle) are in http_connection_ends.cc, its timers in http_connection_timers.cc and its
// response side in http_connection_output.cc; framing is the response encoder's
// (response_encoder.h), records and counters the request recorder's (request_recorder.h), the
// handler's side exchange.cc.

#include "http/http_connection.h"

#include <fmt/format.h>

#include "base/block_pool.h"
#include "http/blocking_exchange.h"
#include "http/worker_pool.h"

namespace unbroken::http {
namespace {

// Body bytes that count as progress for the body timeout (at 30 s, a floor of about 34 bytes/s).
constexpr std::uint64_t kMinBodyProgress = 1024;

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

}  // namespace unbroken::http
