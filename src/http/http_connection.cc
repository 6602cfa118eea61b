// The connection state machine (see http_connection.h): phases, timers, input, output and the
// lifecycle. Framing is the response encoder's (response_encoder.h), records and counters the
// request recorder's (request_recorder.h), the handler's side is exchange.cc.

#include "http/http_connection.h"

#include <fmt/format.h>

#include "base/block_pool.h"
#include "base/check.h"
#include "http/blocking_exchange.h"
#include "http/gzip_response.h"
#include "http/worker_pool.h"

namespace unbroken::http {
namespace {

constexpr net::TimePoint kNever = net::TimePoint::max();
constexpr std::size_t kNoRoute = RequestRecorder::kNoRoute;
// Checked in this order when the connection's one timer fires.
constexpr std::array kTimerPriority{TimerKind::kDrain,     TimerKind::kHandler, TimerKind::kSend,
                                    TimerKind::kSendRate,  TimerKind::kBody,    TimerKind::kHeader,
                                    TimerKind::kKeepalive, TimerKind::kLinger,  TimerKind::kRecord};
// How long an answered request's record waits for the client's ACKs before SIOCOUTQ is read.
constexpr std::chrono::milliseconds kRecordDelay{100};
// Body bytes that count as progress for the body timeout (at 30 s, a floor of about 34 bytes/s).
constexpr std::uint64_t kMinBodyProgress = 1024;

Outcome outcome_of(net::SocketError e) {
  return e == net::SocketError::kBrokenPipe ? Outcome::kBrokenPipe : Outcome::kClientReset;
}

Outcome outcome_of_status(int status) {
  return status == 413 || status == 431 ? Outcome::kLimitExceeded : Outcome::kProtocolError;
}

}  // namespace

HttpConnection::HttpConnection(LoopContext& ctx, std::unique_ptr<net::Transport> transport, std::uint64_t id)
    : ctx_(ctx),
      transport_(std::move(transport)),
      id_(id),
      timer_([this] { on_timer(); }),
      recorder_(ctx, *transport_, id) {
  deadlines_.fill(kNever);
  transport_->set_handler(this);
}

HttpConnection::~HttpConnection() {
  if (exchange_) exchange_->conn_ = nullptr;
  if (parser_) ctx_.parsers.give(std::move(parser_));
}

void HttpConnection::start() {
  arm(TimerKind::kHeader, ctx_.limits.header_timeout);
}

// ---- timers: one node, armed at the earliest of the per-phase deadlines -------------------------

std::chrono::milliseconds HttpConnection::timeout_of(TimerKind kind) const {
  const HttpLimits& l = ctx_.limits;
  switch (kind) {
    case TimerKind::kHeader: return l.header_timeout;
    case TimerKind::kBody: return l.body_timeout;
    case TimerKind::kHandler: return l.handler_timeout;
    case TimerKind::kSend:
    case TimerKind::kSendRate: return l.send_timeout;
    case TimerKind::kKeepalive: return l.keepalive_timeout;
    case TimerKind::kDrain: return l.drain_timeout;
    case TimerKind::kLinger: return l.linger_timeout;
    case TimerKind::kRecord: return kRecordDelay;
  }
  return {};
}

void HttpConnection::arm(TimerKind kind, std::chrono::milliseconds after) {
  deadlines_[static_cast<std::size_t>(kind)] = ctx_.loop.now() + after;
  rearm_timer();
}

void HttpConnection::disarm(TimerKind kind) {
  auto& d = deadlines_[static_cast<std::size_t>(kind)];
  if (d == kNever) return;
  d = kNever;
  rearm_timer();
}

void HttpConnection::clear_deadlines_but_record() {
  for (std::size_t k = 0; k < kTimerCount; ++k)
    if (static_cast<TimerKind>(k) != TimerKind::kRecord) deadlines_[k] = kNever;
}

void HttpConnection::rearm_timer() {
  if (closed()) {
    ctx_.loop.timers().cancel(timer_);
    return;
  }
  net::TimePoint earliest = kNever;
  for (auto d : deadlines_) earliest = std::min(earliest, d);
  // Lazy: a node already armed no later than the earliest deadline stays as it is. If it fires
  // early, on_timer finds nothing due and arms it again. A request moves several deadlines, and
  // most moves are later: this saves a wheel operation for each.
  if (timer_.armed() && timer_armed_at_ <= earliest) return;
  if (earliest == kNever) return;
  timer_armed_at_ = earliest;
  ctx_.loop.timers().arm(timer_, earliest);
}

void HttpConnection::on_timer() {
  net::TimePoint now = ctx_.loop.now();
  for (TimerKind kind : kTimerPriority) {
    if (deadlines_[static_cast<std::size_t>(kind)] > now) continue;
    deadlines_[static_cast<std::size_t>(kind)] = kNever;
    switch (kind) {
      case TimerKind::kLinger: close_connection(false); break;
      case TimerKind::kRecord:
        // Still unacknowledged bytes (a large response the client is still reading): look again
        // later rather than log a delivery that is only in progress, up to the send timeout.
        if (!closed() && recorder_.still_delivering(ctx_.loop.now(), timeout_of(TimerKind::kSend))) {
          arm(TimerKind::kRecord, kRecordDelay);
          break;
        }
        emit_pending();
        break;
      case TimerKind::kKeepalive:
        // An idle keep-alive connection timing out is a normal end: counted, not recorded.
        ctx_.stats.timeouts[static_cast<std::size_t>(kind)].add();
        close_connection(false);
        break;
      case TimerKind::kHeader:
        if (phase_ == Phase::kIdle) {
          // Connected and never sent a byte: close silently, like nginx, but keep the record.
          end_request(Outcome::kTimeout, kind, 408);
          close_connection(false);
        } else {
          reject(408, Outcome::kTimeout, "request head timed out\n", kind);
        }
        break;
      case TimerKind::kBody:
      case TimerKind::kHandler:
        if (exchange_ && exchange_->started_) {
          end_request(Outcome::kTimeout, kind);
          close_connection(true);
        } else {
          reject(kind == TimerKind::kBody ? 408 : 503, Outcome::kTimeout,
                 kind == TimerKind::kBody ? "request body timed out\n" : "handler timed out\n", kind);
        }
        break;
      case TimerKind::kSendRate:
        // Each read of a few bytes is progress to the send timer; the rate over a whole window
        // is not. Judged only if output still waits for the client at the window's end (if not,
        // the client has caught up, and the next window starts when output waits again).
        if (transport_->queued_bytes() == 0) break;
        if (recorder_.conn_bytes_out() - rate_window_bytes_ >=
            ctx_.limits.min_send_rate * static_cast<std::uint64_t>(timeout_of(kind).count()) / 1000) {
          rate_window_bytes_ = recorder_.conn_bytes_out();
          arm(TimerKind::kSendRate, timeout_of(kind));
          break;
        }
        [[fallthrough]];
      case TimerKind::kSend:
        // The client stopped reading: reset, so the kernel frees the queued bytes at once. (After
        // an error answer the request has its record already.)
        if (phase_ != Phase::kIdle || exchange_) end_request(Outcome::kTimeout, kind);
        close_connection(true);
        break;
      case TimerKind::kDrain:
        end_request(Outcome::kShutdown, kind, exchange_ && exchange_->started_ ? 0 : 503);
        close_connection(false);
        break;
    }
    break;
  }
  if (!closed()) rearm_timer();
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
  net::Buffer& in = transport_->input();
  in_process_ = true;
  while (!closing() && !in.empty()) {
    // Pipelining: the next request waits until this one is answered; bytes stay buffered (bounded
    // by max_buffered_input, after which the transport stops reading).
    if (exchange_ && message_done_) break;
    // A paused body: what is buffered stays unparsed (and reading is off) until resume_body().
    if (body_paused_) break;
    if (!parser_) parser_ = ctx_.parsers.take();
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
  // Between requests with nothing buffered, the connection is idle: its parser goes back to the loop.
  if (parser_ && phase_ == Phase::kIdle && !closed() && in.empty() && !parser_->in_message())
    ctx_.parsers.give(std::move(parser_));
  update_reading();
}

void HttpConnection::update_reading() {
  if (closed()) return;
  bool want = lifecycle_ == Lifecycle::kLingering || (!closing() && !paused_for_output_ && !body_paused_ &&
                                                      transport_->input().size() < ctx_.limits.max_buffered_input);
  transport_->set_reading(want);
}

void HttpConnection::begin_request() {
  emit_pending();
  phase_ = Phase::kRequestHeaders;
  recorder_.begin();
  status_ = 0;
  route_ = nullptr;
  route_slot_ = kNoRoute;
  path_matched_ = dispatched_ = message_done_ = false;
  disarm(TimerKind::kKeepalive);
  // The whole head must arrive within header_timeout of its first byte (no re-arming on progress:
  // a slowloris trickling one byte a second still runs out).
  arm(TimerKind::kHeader, ctx_.limits.header_timeout);
}

void HttpConnection::on_head() {
  disarm(TimerKind::kHeader);
  if (refuse_status_ != 0) {
    reject(refuse_status_, Outcome::kLimitExceeded, refuse_reason_);
    return;
  }
  phase_ = Phase::kRequestBody;
  exchange_ = std::allocate_shared<Exchange>(PoolAllocator<Exchange>{}, this, ctx_.loop);
  Request& req = exchange_->request_;
  req = std::move(parser_->request());
  req.client = transport_->peer();
  auto m = ctx_.router.match(req.method, req.path(), req.params);
  route_ = m.route;
  path_matched_ = m.path_matched;
  const Router& router = ctx_.router;
  route_slot_ = route_ != nullptr                     ? route_->index
                : !path_matched_ && router.fallback() ? router.fallback_slot()
                                                      : router.unmatched_slot();
  if (!req.has_body()) return;
  body_progress_ = 0;
  arm(TimerKind::kBody, ctx_.limits.body_timeout);
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
    arm(TimerKind::kBody, ctx_.limits.body_timeout);
  }
  if (!dispatched_) {
    exchange_->request_.body.append(chunk);
  } else if (body_paused_ || !held_body_.empty()) {
    // Paused within this parse: the rest of what the parser takes now waits for resume_body().
    held_body_.append(chunk);
  } else {
    deliver_body(chunk);
  }
}

void HttpConnection::deliver_body(std::string_view chunk) {
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
  if (!deliver) {
    held_body_.clear();
  }
  while (!held_body_.empty() && !body_paused_) {
    std::string held = std::move(held_body_);
    held_body_.clear();
    deliver_body(held);
    if (closing() || exchange_ != ex) return;
  }
  if (body_paused_) return;
  if (body_end_held_) {
    body_end_held_ = false;
    if (auto end = std::move(ex->body_end_); end) end();
    if (closing() || exchange_ != ex) return;
    maybe_complete();
    return;
  }
  if (!message_done_) {
    body_progress_ = 0;
    arm(TimerKind::kBody, ctx_.limits.body_timeout);
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
  } else if (body_paused_ || !held_body_.empty()) {
    body_end_held_ = true;
  } else if (exchange_ && exchange_->body_end_) {
    auto end = std::move(exchange_->body_end_);
    end();
  }
  maybe_complete();
}

void HttpConnection::dispatch() {
  dispatched_ = true;
  phase_ = Phase::kHandler;
  recorder_.handler_started();
  arm(TimerKind::kHandler, ctx_.limits.handler_timeout);
  ExchangePtr ex = exchange_;  // the handler may end the request (and drop exchange_) before returning
  if (route_ != nullptr) {
    run_handler(*route_);
  } else if (path_matched_) {
    ex->add_header("Allow", "GET, HEAD");
    ex->respond(405, "method not allowed\n");
  } else if (ctx_.router.fallback()) {
    ctx_.router.fallback()(ex);
  } else {
    ex->respond(404, "not found\n");
  }
}

void HttpConnection::run_handler(const Route& route) {
  ExchangePtr ex = exchange_;
  if (route.blocking) {
    auto bx = std::make_shared<BlockingExchange>(ex);
    const BlockingHandler* h = &route.blocking;
    bool queued = ctx_.workers != nullptr && ctx_.workers->submit([bx, h]() mutable {
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

// ---- output ------------------------------------------------------------------------------------

void HttpConnection::ex_start(Exchange& ex, int status, std::optional<std::uint64_t> length, bool flush,
                              std::string_view content_type) {
  if (closing() || ex.started_ || &ex != exchange_.get()) return;
  const Request& req = ex.request_;
  ex.started_ = true;
  ResponseEncoder& enc = ex.encoder_;
  // A body compressed as it goes has no length known in advance: chunked, or to the close.
  if (should_gzip(ctx_.limits.gzip, req, ex.headers_, status, length, content_type) &&
      enc.start_gzip(ex.headers_, length))
    length = std::nullopt;
  ex.encoding_ = content_encoding_of(ex.headers_);
  status_ = status;
  std::string& head = ctx_.scratch;
  head.clear();
  // Only an open connection keeps alive: a draining one closes after this response.
  keep_alive_ = enc.begin(head, req, {status, &ex.headers_, length, content_type},
                          req.keep_alive && !ctx_.draining && lifecycle_ == Lifecycle::kOpen, ctx_.date.get());
  ex.head_at_ = recorder_.bytes_out() + transport_->queued_bytes();
  ex.head_len_ = head.size();
  transport_->queue(head);
  phase_ = Phase::kResponse;
  if (flush) schedule_flush();
}

void HttpConnection::schedule_flush() {
  // A handler that starts a response usually writes its body in the same turn: send the head with
  // it in one sendmsg instead of one each. A write or finish flushes at once; this catches a head
  // left alone until the end of the turn.
  if (flush_scheduled_) return;
  flush_scheduled_ = true;
  ctx_.loop.defer([this] {
    flush_scheduled_ = false;
    if (!closed() && transport_->queued_bytes() > 0 && flush_output()) maybe_complete();
  });
}

bool HttpConnection::ex_write(Exchange& ex, std::string_view data, bool flush) {
  if (closed() || !ex.started_ || ex.finished_) return false;
  if (ex.encoder_.head_only() || data.empty()) return true;
  ex.encoder_.write(*transport_, data, flush);
  return !flush || flush_output();
}

void HttpConnection::ex_file(Exchange& ex, UniqueFd file, std::uint64_t offset, std::uint64_t length) {
  if (closed() || !ex.started_ || ex.finished_) return;
  if (ex.encoder_.gzipping()) {
    pump_file(ex.shared_from_this(), std::move(file), offset, length);
    return;
  }
  ex.encoder_.file(*transport_, std::move(file), offset, length);
  ex_finish(ex);
}

void HttpConnection::ex_finish(Exchange& ex) {
  if (closed() || ex.finished_ || &ex != exchange_.get()) return;
  if (!ex.started_) ex_start(ex, 200, 0, false, {});
  if (closing()) return;
  ex.finished_ = true;
  recorder_.handler_finished();
  disarm(TimerKind::kHandler);
  // A body shorter than its Content-Length cannot be framed any more: end with the connection.
  if (!ex.encoder_.finish(*transport_)) keep_alive_ = false;
  // A finished response takes no more body: the rest is read (and dropped) so the request can end.
  if (body_paused_ || !held_body_.empty()) {
    resume_body(false);
    if (closing() || exchange_.get() != &ex) return;
  }
  if (flush_output()) maybe_complete();
}

bool HttpConnection::ex_writable() const {
  return !closed() && transport_->queued_bytes() < ctx_.limits.output_high_water;
}

void HttpConnection::ex_on_drain(Exchange& ex, std::function<void()> cb) {
  if (closed()) return;
  if (transport_->queued_bytes() < ctx_.limits.output_low_water) {
    cb();
    return;
  }
  ex.drain_ = std::move(cb);
}

void HttpConnection::account_written(std::size_t n) {
  recorder_.add_out(n);
}

bool HttpConnection::flush_output() {
  if (closed()) return false;
  auto r = transport_->flush();
  if (!r) {
    on_transport_error(net::classify(r.error()));
    return false;
  }
  account_written(*r);
  std::size_t queued = transport_->queued_bytes();
  watch_delivery(queued, *r > 0);
  update_handler_timer(queued);
  bool over = queued >= ctx_.limits.output_high_water;
  if (over != paused_for_output_) {
    paused_for_output_ = over;
    update_reading();
  }
  return true;
}

void HttpConnection::on_written(std::size_t n) {
  if (closed()) return;
  account_written(n);
  std::size_t queued = transport_->queued_bytes();
  watch_delivery(queued, true);
  update_handler_timer(queued);
  if (queued < ctx_.limits.output_low_water) {
    if (paused_for_output_) {
      paused_for_output_ = false;
      update_reading();
    }
    if (exchange_ && exchange_->drain_) {
      auto cb = std::move(exchange_->drain_);
      cb();
      if (closed()) return;
    }
  }
  if (closing() && transport_->queued_bytes() == 0) {
    start_linger();
    return;
  }
  maybe_complete();
}

void HttpConnection::watch_delivery(std::size_t queued, bool progressed) {
  if (queued == 0) {
    disarm(TimerKind::kSend);
    return;
  }
  // Send timeout: no write progress for that long while output waits for the client.
  if (progressed || deadlines_[static_cast<std::size_t>(TimerKind::kSend)] == kNever)
    arm(TimerKind::kSend, ctx_.limits.send_timeout);
  // Minimum rate: what the client took over a window of one send timeout, from when output began
  // to wait for it. A queue that empties for a moment (a streaming producer refilling it after each
  // wake-up) does not restart the window, or a steady slow reader would never be judged.
  if (ctx_.limits.min_send_rate > 0 && deadlines_[static_cast<std::size_t>(TimerKind::kSendRate)] == kNever) {
    rate_window_bytes_ = recorder_.conn_bytes_out();
    arm(TimerKind::kSendRate, ctx_.limits.send_timeout);
  }
}

void HttpConnection::update_handler_timer(std::size_t queued) {
  // Once a response streams, a stall is charged to whoever owes bytes: while output is queued the
  // client is slow (send timeout); while the queue is empty the handler is (handler timeout, counted
  // from its last write).
  if (!exchange_ || !exchange_->started_ || exchange_->finished_) return;
  if (queued == 0) {
    arm(TimerKind::kHandler, ctx_.limits.handler_timeout);
  } else {
    disarm(TimerKind::kHandler);
  }
}

void HttpConnection::maybe_complete() {
  if (closed() || !exchange_ || !exchange_->finished_ || !message_done_ || transport_->queued_bytes() > 0) return;
  bool keep = keep_alive_ && lifecycle_ == Lifecycle::kOpen && !ctx_.draining;
  end_request(Outcome::kOk);
  if (!keep) {
    graceful_close();
    return;
  }
  arm(TimerKind::kKeepalive, ctx_.limits.keepalive_timeout);
  if (!in_process_) process();
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
                         route_slot_,
                         dispatched_};
  if (outcome == Outcome::kOk) emit_pending();
  bool cancelled = false;
  if (recorder_.end(e, exchange_, &cancelled)) arm(TimerKind::kRecord, kRecordDelay);

  // Detach before cancelling: cancellation callbacks see an inactive exchange.
  if (exchange_) {
    ExchangePtr ex = std::move(exchange_);
    ex->conn_ = nullptr;
    if (cancelled) ex->token_.cancel();
    release_callbacks(std::move(ex));
  }
  phase_ = Phase::kIdle;
  dispatched_ = message_done_ = false;
  body_paused_ = body_end_held_ = false;
  if (held_body_.capacity() > 0) std::string().swap(held_body_);  // an idle connection holds none
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
  if (!ex->drain_ && !ex->body_chunk_ && !ex->body_end_ && !ex->token_.has_callbacks()) return;
  std::vector<ExchangePtr>& releasing = ctx_.releasing;
  releasing.push_back(std::move(ex));
  if (releasing.size() > 1) return;
  ctx_.loop.defer([&releasing] {
    // A callback dropped here may end another exchange (and append to the list): index, not iterate.
    for (std::size_t i = 0; i < releasing.size(); ++i) {
      Exchange& e = *releasing[i];
      e.drain_ = nullptr;
      e.body_chunk_ = nullptr;
      e.body_end_ = nullptr;
      e.token_.clear();
    }
    releasing.clear();
  });
}

void HttpConnection::emit_pending() {
  if (!recorder_.has_pending()) return;
  disarm(TimerKind::kRecord);
  recorder_.emit_pending(parser_.get(), closed());
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
  std::string& out = ctx_.scratch;
  out.clear();
  ResponseEncoder::error(out, current_request(), status, reason, ctx_.date.get());
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
    arm(TimerKind::kSend, ctx_.limits.send_timeout);
  }
}

void HttpConnection::start_linger() {
  if (lifecycle_ >= Lifecycle::kLingering) return;
  advance(Lifecycle::kLingering);
  transport_->shutdown_write();
  transport_->input().clear();
  clear_deadlines_but_record();
  arm(TimerKind::kLinger, ctx_.limits.linger_timeout);
  update_reading();
}

void HttpConnection::close_connection(bool abortive) {
  if (closed()) return;
  emit_pending();  // while the socket is still there to ask
  advance(Lifecycle::kClosed);
  ctx_.loop.timers().cancel(timer_);
  if (exchange_) {
    ExchangePtr ex = std::move(exchange_);
    ex->conn_ = nullptr;
    ex->token_.cancel();
    release_callbacks(std::move(ex));
  }
  transport_->close(abortive);
  if (ctx_.on_closed) ctx_.on_closed(this);
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
  end_request(outcome_of(e));
  close_connection(false);
}

void HttpConnection::begin_drain() {
  if (closed()) return;
  // A connection already closing goes on closing; only an open one starts to drain.
  if (lifecycle_ == Lifecycle::kOpen) advance(Lifecycle::kDraining);
  if (!closing() && phase_ == Phase::kIdle && !exchange_) {
    close_connection(false);
    return;
  }
  arm(TimerKind::kDrain, ctx_.limits.drain_timeout);
}

}  // namespace unbroken::http
