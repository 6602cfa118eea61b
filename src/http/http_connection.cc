// The connection state machine (see http_connection.h). Over 500 lines because it still does five
// jobs: state and timers, response framing, records and delivery, counters, and Exchange. Issue 12
// splits it by job into a response encoder, a request recorder and exchange.cc.

#include "http/http_connection.h"

#include <fmt/format.h>

#include <charconv>

#include "base/block_pool.h"
#include "http/blocking_exchange.h"
#include "http/gzip_response.h"
#include "http/worker_pool.h"

namespace unbroken::http {
namespace {

constexpr net::TimePoint kNever = net::TimePoint::max();
constexpr std::size_t kNoRoute = SIZE_MAX;
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

double ms_between(net::TimePoint a, net::TimePoint b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

void queue_body(net::Transport& t, bool chunked, std::string_view data) {
  if (!chunked) {
    t.queue(data);
    return;
  }
  char size[24];
  char* end = std::to_chars(size, size + sizeof size - 2, data.size(), 16).ptr;
  *end++ = '\r';
  *end++ = '\n';
  t.queue(std::string_view(size, static_cast<std::size_t>(end - size)));
  t.queue(data);
  t.queue("\r\n");
}

}  // namespace

HttpConnection::HttpConnection(LoopContext& ctx, std::unique_ptr<net::Transport> transport, std::uint64_t id)
    : ctx_(ctx), transport_(std::move(transport)), id_(id), timer_([this] { on_timer(); }) {
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
  if (closed_) {
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
        if (pending_ && !closed_ && ctx_.loop.now() - pending_->ended < timeout_of(TimerKind::kSend)) {
          RequestRecord probe = pending_->rec;
          fill_delivery(probe, pending_->bytes_before);
          if (probe.bytes_acked && *probe.bytes_acked < probe.bytes_out) {
            arm(TimerKind::kRecord, kRecordDelay);
            break;
          }
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
        if (conn_bytes_out_ - rate_window_bytes_ >=
            ctx_.limits.min_send_rate * static_cast<std::uint64_t>(timeout_of(kind).count()) / 1000) {
          rate_window_bytes_ = conn_bytes_out_;
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
  if (!closed_) rearm_timer();
}

// ---- input -------------------------------------------------------------------------------------

void HttpConnection::on_data(net::Buffer& in) {
  if (lingering_) {
    in.clear();
    return;
  }
  process();
}

void HttpConnection::process() {
  if (closing_) return;
  net::Buffer& in = transport_->input();
  in_process_ = true;
  while (!closed_ && !closing_ && !in.empty()) {
    // Pipelining: the next request waits until this one is answered; bytes stay buffered (bounded
    // by max_buffered_input, after which the transport stops reading).
    if (exchange_ && message_done_) break;
    if (!parser_) parser_ = ctx_.parsers.take();
    if (phase_ == Phase::kIdle) begin_request();
    auto r = parser_->feed(in.readable(), this);
    in.consume(r.consumed);
    bytes_in_ += r.consumed;
    if (closed_ || closing_) break;
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
  if (parser_ && phase_ == Phase::kIdle && !closed_ && in.empty() && !parser_->in_message())
    ctx_.parsers.give(std::move(parser_));
  update_reading();
}

void HttpConnection::update_reading() {
  if (closed_) return;
  bool want =
      lingering_ || (!closing_ && !paused_for_output_ && transport_->input().size() < ctx_.limits.max_buffered_input);
  transport_->set_reading(want);
}

void HttpConnection::begin_request() {
  emit_pending();
  phase_ = Phase::kRequestHeaders;
  ++req_no_;
  // Durations are read from the clock itself (a vDSO call), not the loop turn's cached time: a
  // request served within one turn would otherwise last 0 ms.
  request_start_ = net::Clock::now();
  bytes_in_ = bytes_out_ = 0;
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
  if (closed_ || !exchange_) return;
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
  } else if (exchange_->body_chunk_) {
    exchange_->body_chunk_(chunk);
  }
}

void HttpConnection::on_message() {
  if (!exchange_) on_head();
  if (closed_ || closing_) return;
  message_done_ = true;
  disarm(TimerKind::kBody);
  if (!dispatched_) {
    dispatch();
  } else if (exchange_ && exchange_->body_end_) {
    auto end = std::move(exchange_->body_end_);
    end();
  }
  maybe_complete();
}

void HttpConnection::dispatch() {
  dispatched_ = true;
  phase_ = Phase::kHandler;
  handler_start_ = net::Clock::now();
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
  if (closed_) return;
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
  if (closed_ || closing_ || ex.started_ || &ex != exchange_.get()) return;
  const Request& req = ex.request_;
  ex.started_ = true;
  // HEAD, 204 and 304 send the head only: body bytes a handler writes anyway are dropped.
  ex.head_only_ = req.method == "HEAD" || status == 204 || status == 304 || status < 200;
  // A body compressed as it goes has no length known in advance: chunked, or to the close.
  if (should_gzip(ctx_.limits.gzip, req, ex.headers_, status, length, content_type) &&
      (ex.gzip_ = start_gzip(ex.headers_, length)))
    length = std::nullopt;
  ex.encoding_ = content_encoding_of(ex.headers_);
  ex.length_ = length;
  keep_alive_ = req.keep_alive && !ctx_.draining && !close_after_;
  ex.chunked_ = !length && req.version_minor == 1;
  // HTTP/1.0 without a length: the body ends when the connection does.
  if (!length && !ex.chunked_) keep_alive_ = false;
  // A body we did not read yet cannot be skipped if the response ends the exchange early:
  // only keep the connection if the request body will still be read to its end.
  status_ = status;
  std::string& head = ctx_.scratch;
  head.clear();
  append_head(head, HeadSpec{status, &ex.headers_, length, ex.chunked_, keep_alive_, req.version_minor, content_type},
              ctx_.date.get());
  ex.head_at_ = bytes_out_ + transport_->queued_bytes();
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
    if (!closed_ && transport_->queued_bytes() > 0 && flush_output()) maybe_complete();
  });
}

bool HttpConnection::ex_write(Exchange& ex, std::string_view data, bool flush) {
  if (closed_ || !ex.started_ || ex.finished_) return false;
  if (ex.head_only_ || data.empty()) return true;
  if (ex.gzip_ && (data = ex.gzip_->write(data, flush)).empty()) return !flush || flush_output();
  if (ex.length_) {
    std::uint64_t room = *ex.length_ - ex.body_written_;
    if (data.size() > room) data = data.substr(0, room);  // never send more than we announced
  }
  ex.body_written_ += data.size();
  queue_body(*transport_, ex.chunked_, data);
  return !flush || flush_output();
}

void HttpConnection::ex_file(Exchange& ex, UniqueFd file, std::uint64_t offset, std::uint64_t length) {
  if (closed_ || !ex.started_ || ex.finished_) return;
  if (ex.gzip_) {
    pump_file(ex.shared_from_this(), std::move(file), offset, length);
    return;
  }
  if (!ex.head_only_) {
    transport_->queue_file(std::move(file), offset, length);
    ex.body_written_ += length;
  }
  ex_finish(ex);
}

void HttpConnection::ex_finish(Exchange& ex) {
  if (closed_ || ex.finished_ || &ex != exchange_.get()) return;
  if (!ex.started_) ex_start(ex, 200, 0, false, {});
  if (closed_ || closing_) return;
  ex.finished_ = true;
  handler_end_ = net::Clock::now();
  disarm(TimerKind::kHandler);
  // A body shorter than its Content-Length cannot be framed any more: end with the connection.
  if (ex.length_ && ex.body_written_ < *ex.length_ && !ex.head_only_) keep_alive_ = false;
  if (std::string_view tail = ex.gzip_ ? ex.gzip_->finish() : ""; !tail.empty())
    queue_body(*transport_, ex.chunked_, tail);
  if (ex.chunked_ && !ex.head_only_) transport_->queue("0\r\n\r\n");
  if (flush_output()) maybe_complete();
}

bool HttpConnection::ex_writable() const {
  return !closed_ && transport_->queued_bytes() < ctx_.limits.output_high_water;
}

void HttpConnection::ex_on_drain(Exchange& ex, std::function<void()> cb) {
  if (closed_) return;
  if (transport_->queued_bytes() < ctx_.limits.output_low_water) {
    cb();
    return;
  }
  ex.drain_ = std::move(cb);
}

void HttpConnection::account_written(std::size_t n) {
  bytes_out_ += n;
  conn_bytes_out_ += n;
  ctx_.stats.response_bytes.add(n);
}

bool HttpConnection::flush_output() {
  if (closed_) return false;
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
  if (closed_) return;
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
      if (closed_) return;
    }
  }
  if (closing_ && transport_->queued_bytes() == 0) {
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
    rate_window_bytes_ = conn_bytes_out_;
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
  if (closed_ || !exchange_ || !exchange_->finished_ || !message_done_ || transport_->queued_bytes() > 0) return;
  bool keep = keep_alive_ && !close_after_ && !ctx_.draining;
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
  net::TimePoint now = net::Clock::now();
  bool head_sent = exchange_ && exchange_->started_;
  int status = status_override != 0 ? status_override : status_;
  // A client that left before the response head is a 499, never a 5xx.
  if (is_departure(outcome) && !head_sent) status = 499;

  const Request& req = current_request();
  RequestRecord rec;
  rec.ts = std::chrono::system_clock::now();
  rec.conn = id_;
  rec.req = phase_ == Phase::kIdle ? 0 : req_no_;
  rec.client = exchange_ ? std::string_view(req.client) : std::string_view(transport_->peer());
  rec.method = req.method;
  rec.path = req.target;
  if (route_slot_ != kNoRoute) rec.route = ctx_.router.slot_name(route_slot_);
  rec.status = status;
  rec.ua = req.header("user-agent");
  rec.referer = req.header("referer");
  rec.outcome = outcome;
  rec.phase = phase_;
  rec.timer = timer;
  if (timer) rec.timeout_ms = static_cast<std::uint64_t>(timeout_of(*timer).count());
  rec.bytes_in = bytes_in_;
  rec.bytes_out = bytes_out_;
  if (exchange_) rec.encoding = exchange_->encoding_;
  if (phase_ != Phase::kIdle) rec.duration_ms = ms_between(request_start_, now);
  if (dispatched_) {
    net::TimePoint end = exchange_ && exchange_->finished_ ? handler_end_ : now;
    rec.handler_ms = ms_between(handler_start_, end);
  }
  bool handler_running = dispatched_ && exchange_ && !exchange_->finished_;
  rec.cancelled = handler_running && outcome != Outcome::kOk;
  std::uint64_t bytes_before = conn_bytes_out_ - bytes_out_;

  count(rec, route_slot_);
  if (outcome == Outcome::kOk) {
    // What the client acknowledged is known only after its ACKs arrive: keep the record until the
    // next request starts, the connection ends, or kRecordDelay passes, then ask the kernel once.
    emit_pending();
    pending_ = make_pooled<PendingRecord>(exchange_, rec, bytes_before, ctx_.loop.now());
    arm(TimerKind::kRecord, kRecordDelay);
  } else {
    fill_delivery(rec, bytes_before);
    if (rec.bytes_acked) ctx_.stats.response_bytes_acked.add(*rec.bytes_acked);
    // A handler still holding the exchange is still working for a client that left: the record
    // waits for it to let go, to say how long that was (wasted_ms).
    if (rec.cancelled && exchange_.use_count() > 1) {
      exchange_->departed_ = std::make_unique<Exchange::Departed>(Exchange::Departed{rec, now, &ctx_});
    } else if (ctx_.record) {
      ctx_.record(rec);
    }
  }

  // Detach before cancelling: cancellation callbacks see an inactive exchange.
  if (exchange_) {
    ExchangePtr ex = std::move(exchange_);
    ex->conn_ = nullptr;
    if (rec.cancelled) ex->token_.cancel();
    release_callbacks(std::move(ex));
  }
  phase_ = Phase::kIdle;
  dispatched_ = message_done_ = false;
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

void HttpConnection::fill_delivery(RequestRecord& rec, std::uint64_t bytes_before) {
  auto d = transport_->delivery();
  if (!d) return;
  // The acknowledged count runs from the start of the connection; this request's bytes come after
  // bytes_before.
  std::uint64_t acked = d->bytes_acked > bytes_before ? d->bytes_acked - bytes_before : 0;
  rec.bytes_acked = std::min(acked, rec.bytes_out);
  rec.bytes_unsent = conn_bytes_out_ > d->bytes_acked ? conn_bytes_out_ - d->bytes_acked : 0;
}

void HttpConnection::count(const RequestRecord& rec, std::size_t route_slot) {
  LoopStats& s = ctx_.stats;
  if (rec.status > 0 && rec.status < 600) s.requests_by_status[static_cast<std::size_t>(rec.status)].add();
  if (rec.outcome != Outcome::kOk)
    s.disconnects[static_cast<std::size_t>(rec.outcome)][static_cast<std::size_t>(rec.phase)].add();
  if (rec.timer) s.timeouts[static_cast<std::size_t>(*rec.timer)].add();
  if (rec.cancelled) s.handler_cancelled.add();
  if (rec.req != 0) s.count_duration(rec.duration_ms / 1000);
  if (route_slot < s.route_slots) {
    s.routes[route_slot].requests.add();
    if (rec.outcome != Outcome::kOk) s.routes[route_slot].departures.add();
  }
}

void HttpConnection::emit_pending() {
  if (!pending_) return;
  PendingRecord p = std::move(*pending_);
  pending_.reset();
  disarm(TimerKind::kRecord);
  if (!closed_) fill_delivery(p.rec, p.bytes_before);
  if (p.rec.bytes_acked) ctx_.stats.response_bytes_acked.add(*p.rec.bytes_acked);
  if (ctx_.record) ctx_.record(p.rec);
  // The last owner of a finished exchange hands its request back to the parser: the next request
  // reuses the strings' capacity instead of allocating them again.
  // (An idle connection holds no parser: the storage goes to one in the loop's pool.)
  if (p.exchange.use_count() == 1) {
    if (!parser_) {
      ctx_.parsers.recycle(std::move(p.exchange->request_));
    } else if (!parser_->in_message()) {
      parser_->recycle(std::move(p.exchange->request_));
    }
  }
}

const Request& HttpConnection::current_request() const {
  // The exchange's request, or the parser's before there is one (views in a record point into it).
  static const Request kNoRequest;
  return exchange_ ? exchange_->request_ : parser_ ? parser_->request() : kNoRequest;
}

void HttpConnection::reject(int status, Outcome outcome, std::string_view reason, std::optional<TimerKind> timer) {
  if (closed_ || closing_) return;
  if (exchange_ && exchange_->started_) {
    Exchange& ex = *exchange_;
    if (bytes_out_ > ex.head_at_) {
      // Part of the response is out: there is no answering any more. Cut it where the kernel has
      // it (a chunked body gets no final chunk, so the client can tell) and close. The record keeps
      // the status the client saw, or 0 if not even the whole head reached it.
      transport_->discard_output_after(0);
      if (bytes_out_ < ex.head_at_ + ex.head_len_) status_ = 0;
      end_request(outcome, timer);
      keep_alive_ = false;
      graceful_close();
      return;
    }
    // Not a byte of the handler's head has left: the error answer takes its place.
    transport_->discard_output_after(static_cast<std::size_t>(ex.head_at_ - bytes_out_));
  }
  keep_alive_ = false;
  status_ = status;
  std::string& out = ctx_.scratch;
  out.clear();
  const Request& req = current_request();
  append_head(out,
              HeadSpec{status, nullptr, reason.size(), false, false, req.version_minor, "text/plain; charset=utf-8"},
              ctx_.date.get());
  // RFC 9110 9.3.2: a response to HEAD carries no content, errors included.
  if (req.method != "HEAD") out.append(reason);
  transport_->queue(out);
  closing_ = true;
  flush_output();
  if (closed_) return;
  end_request(outcome, timer);
  graceful_close();
}

void HttpConnection::graceful_close() {
  if (closed_) return;
  closing_ = true;
  clear_deadlines_but_record();
  if (transport_->queued_bytes() == 0) {
    start_linger();
  } else {
    arm(TimerKind::kSend, ctx_.limits.send_timeout);
  }
}

void HttpConnection::start_linger() {
  if (lingering_ || closed_) return;
  lingering_ = true;
  transport_->shutdown_write();
  transport_->input().clear();
  clear_deadlines_but_record();
  arm(TimerKind::kLinger, ctx_.limits.linger_timeout);
  update_reading();
}

void HttpConnection::close_connection(bool abortive) {
  if (closed_) return;
  emit_pending();  // while the socket is still there to ask
  closed_ = true;
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
  if (closed_) return;
  // FIN on an idle connection, or after we decided to close, is a normal end.
  if (lingering_ || closing_ || (phase_ == Phase::kIdle && !exchange_)) {
    close_connection(false);
    return;
  }
  // EPOLLRDHUP while a request is in flight: the client left. Cancel the handler now.
  end_request(Outcome::kClientClosed);
  close_connection(false);
}

void HttpConnection::on_transport_error(net::SocketError e) {
  if (closed_) return;
  if (lingering_ || closing_ || (phase_ == Phase::kIdle && !exchange_)) {
    close_connection(false);
    return;
  }
  end_request(outcome_of(e));
  close_connection(false);
}

void HttpConnection::begin_drain() {
  if (closed_) return;
  close_after_ = true;
  if (!lingering_ && !closing_ && phase_ == Phase::kIdle && !exchange_) {
    close_connection(false);
    return;
  }
  arm(TimerKind::kDrain, ctx_.limits.drain_timeout);
}

// ---- Exchange ----------------------------------------------------------------------------------

Exchange::~Exchange() {
  if (!departed_) return;
  // May run on a worker thread: the sink is thread-safe, and wasted_us is the one multi-writer counter.
  RequestRecord& rec = departed_->rec;
  rec.wasted_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - departed_->at).count();
  departed_->ctx->stats.wasted_us.fetch_add(static_cast<std::uint64_t>(rec.wasted_ms * 1000),
                                            std::memory_order_relaxed);
  if (departed_->ctx->record) departed_->ctx->record(rec);
}

bool Exchange::held(std::function<void()> op) {
  if (!gated_ && !head_hook_) return false;
  held_ops_.push_back(std::move(op));
  if (!gated_) {
    gated_ = true;
    auto hook = std::move(head_hook_);
    head_hook_ = nullptr;
    hook(*this, [self = shared_from_this()](bool ok) {
      self->gated_ = false;
      auto ops = std::move(self->held_ops_);
      self->held_ops_.clear();
      if (!ok) {
        self->headers_.clear();
        self->respond(503, "session store unavailable\n");
        return;
      }
      for (auto& op : ops) op();
    });
  }
  return true;
}

void Exchange::respond(int status, std::string_view body, std::string_view content_type) {
  if (conn_ == nullptr || started_) return;
  if (gated_ || head_hook_) {
    held([this, status, b = std::string(body), ct = std::string(content_type)] { respond(status, b, ct); });
    return;
  }
  HttpConnection* c = conn_;
  c->ex_start(*this, status, body.size(), false, content_type);
  if (conn_ == nullptr) return;
  c->ex_write(*this, body, false);
  c->ex_finish(*this);
}

void Exchange::respond_file(int status, UniqueFd file, std::uint64_t offset, std::uint64_t length) {
  if (conn_ == nullptr || started_) return;
  if (gated_ || head_hook_) {
    auto shared = std::make_shared<UniqueFd>(std::move(file));
    held([this, status, shared, offset, length] { respond_file(status, std::move(*shared), offset, length); });
    return;
  }
  HttpConnection* c = conn_;
  c->ex_start(*this, status, length, false, {});
  if (conn_ == nullptr) return;
  c->ex_file(*this, std::move(file), offset, length);
}

void Exchange::start(int status, std::optional<std::uint64_t> content_length) {
  if (conn_ == nullptr || held([this, status, content_length] { start(status, content_length); })) return;
  conn_->ex_start(*this, status, content_length, true, {});
}

bool Exchange::write(std::string_view data) {
  if (conn_ == nullptr) return false;
  if (gated_) return held([this, d = std::string(data)] { write(d); });
  return conn_->ex_write(*this, data, true);
}

bool Exchange::writable() const {
  return conn_ != nullptr && !gated_ && conn_->ex_writable();
}

void Exchange::on_drain(std::function<void()> cb) {
  if (conn_ == nullptr) return;
  if (gated_) {
    held([this, cb = std::move(cb)]() mutable { on_drain(std::move(cb)); });
    return;
  }
  conn_->ex_on_drain(*this, std::move(cb));
}

void Exchange::finish() {
  if (conn_ == nullptr || held([this] { finish(); })) return;
  conn_->ex_finish(*this);
}

void Exchange::on_body(std::function<void(std::string_view)> chunk, std::function<void()> end) {
  body_chunk_ = std::move(chunk);
  body_end_ = std::move(end);
}

}  // namespace unbroken::http
