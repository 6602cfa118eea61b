// HttpConnection's response side (see http_connection.h): the Exchange's calls carried out through
// the response encoder, flushing, and charging a stalled response to whoever owes bytes (the client:
// send timers; the handler: the handler timer).

#include "http/gzip_response.h"
#include "http/http_connection.h"

namespace unbroken::http {

void HttpConnection::ex_start(Exchange& ex, int status, std::optional<std::uint64_t> length, bool flush,
                              std::string_view content_type) {
  if (closing() || ex.started_ || &ex != exchange_.get()) return;
  const Request& req = ex.request_;
  ex.started_ = true;
  ResponseEncoder& enc = ex.encoder_;
  // A body compressed as it goes has no length known in advance: chunked, or to the close.
  if (should_gzip(ctx().limits.gzip, req, ex.headers_, status, length, content_type) &&
      enc.start_gzip(ex.headers_, length))
    length = std::nullopt;
  ex.encoding_ = content_encoding_of(ex.headers_);
  status_ = status;
  std::string& head = ctx().scratch;
  head.clear();
  // Only an open connection keeps alive: a draining one closes after this response.
  keep_alive_ = enc.begin(head, req, {status, &ex.headers_, length, content_type},
                          req.keep_alive && lifecycle_ == Lifecycle::kOpen, ctx().date.get());
  queue_head(ex, head, flush);
}

void HttpConnection::queue_head(Exchange& ex, const std::string& head, bool flush) {
  ex.head_at_ = recorder_.bytes_out() + transport_->queued_bytes();
  ex.head_len_ = head.size();
  transport_->queue(head);
  phase_ = Phase::kResponse;
  if (flush) schedule_flush();
}

void HttpConnection::ex_start_upstream(Exchange& ex, const UpstreamHead& up, std::optional<std::uint64_t> length) {
  if (closing() || ex.started_ || &ex != exchange_.get()) return;
  const Request& req = ex.request_;
  ex.started_ = true;
  status_ = up.status;
  if (up.headers) ex.encoding_ = up.headers->find("content-encoding");
  std::string& head = ctx().scratch;
  head.clear();
  keep_alive_ = ex.encoder_.begin_upstream(head, req, up, length, req.keep_alive && lifecycle_ == Lifecycle::kOpen,
                                           ctx().date.get());
  queue_head(ex, head, true);
}

void HttpConnection::ex_abort(Exchange& ex, Outcome outcome, int status, std::string_view text,
                              std::optional<TimerKind> timer, std::chrono::milliseconds timeout) {
  if (closing() || &ex != exchange_.get()) return;
  upstream_timeout_ = timeout;
  // The handler ends its own request: it is not a handler cancelled by a departure (no
  // `cancelled`, no token callbacks: the client is still there and gets the answer).
  ex.finished_ = true;
  recorder_.handler_finished();
  disarm(TimerKind::kHandler);
  if (!ex.started_) {
    reject(status, outcome, text, timer);
    return;
  }
  keep_alive_ = false;
  bool reset = ex.encoder_.close_delimited();
  end_request(outcome, timer);
  // After the head: no final chunk, no padding; what is queued goes out, then the FIN. A body that
  // ends with the connection (HTTP/1.0) would look complete that way: it is reset instead.
  if (reset) return close_connection(true);
  graceful_close();
}

void HttpConnection::ex_own_timers(Exchange& ex) {
  if (&ex != exchange_.get()) return;
  ex.own_timers_ = true;
  disarm(TimerKind::kHandler);
}

void HttpConnection::schedule_flush() {
  // A handler that starts a response usually writes its body in the same turn: send the head with
  // it in one sendmsg instead of one each. A write or finish flushes at once; this catches a head
  // left alone until the end of the turn.
  if (flush_scheduled_) return;
  flush_scheduled_ = true;
  ctx().loop.defer([this] {
    flush_scheduled_ = false;
    if (closed() || transport_->queued_bytes() == 0 || !flush_output()) return;
    // What this flush sent is not heard through on_written: a producer that waits for the
    // low-water mark hears it here, or it waits for an EPOLLOUT that an emptied queue never asks for.
    if (notify_drained()) maybe_complete();
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
  if (holding_body()) {
    resume_body(false);
    if (closing() || exchange_.get() != &ex) return;
  }
  if (flush_output()) maybe_complete();
}

bool HttpConnection::ex_writable() const {
  return !closed() && transport_->queued_bytes() < ctx().limits.output_high_water;
}

void HttpConnection::ex_on_drain(Exchange& ex, std::function<void()> cb) {
  if (closed()) return;
  if (transport_->queued_bytes() < ctx().limits.output_low_water) {
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
  bool over = queued >= ctx().limits.output_high_water;
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
  if (!notify_drained()) return;
  if (closing() && transport_->queued_bytes() == 0) {
    start_linger();
    return;
  }
  maybe_complete();
}

bool HttpConnection::notify_drained() {
  if (transport_->queued_bytes() >= ctx().limits.output_low_water) return true;
  if (paused_for_output_) {
    paused_for_output_ = false;
    update_reading();
  }
  if (exchange_ && exchange_->drain_) {
    auto cb = std::move(exchange_->drain_);
    cb();
  }
  return !closed();
}

void HttpConnection::watch_delivery(std::size_t queued, bool progressed) {
  // A tunnel's client may leave output waiting as long as it likes: its idle timer (the caller's,
  // on bytes that move) is the only one on a live tunnel.
  if (phase_ == Phase::kTunnel) return;
  if (queued == 0) {
    disarm(TimerKind::kSend);
    return;
  }
  // Send timeout: no write progress for that long while output waits for the client.
  if (progressed || deadline(TimerKind::kSend) == kNever) arm(TimerKind::kSend, ctx().limits.send_timeout);
  // Minimum rate: what the client took over a window of one send timeout, from when output began
  // to wait for it. A queue that empties for a moment (a streaming producer refilling it after each
  // wake-up) does not restart the window, or a steady slow reader would never be judged.
  if (ctx().limits.min_send_rate > 0 && deadline(TimerKind::kSendRate) == kNever) {
    rate_window_bytes_ = recorder_.conn_bytes_out();
    arm(TimerKind::kSendRate, ctx().limits.send_timeout);
  }
}

void HttpConnection::update_handler_timer(std::size_t queued) {
  // Once a response streams, a stall is charged to whoever owes bytes: while output is queued the
  // client is slow (send timeout); while the queue is empty the handler is (handler timeout, counted
  // from its last write).
  if (!exchange_ || !exchange_->started_ || exchange_->finished_ || exchange_->own_timers_) return;
  if (queued == 0) {
    arm(TimerKind::kHandler, ctx().limits.handler_timeout);
  } else {
    disarm(TimerKind::kHandler);
  }
}

void HttpConnection::maybe_complete() {
  // A tunnel's exchange is finished from its start; the tunnel ends only by end_tunnel() or a close.
  if (phase_ == Phase::kTunnel) return;
  if (closed() || !exchange_ || !exchange_->finished_ || !message_done_ || transport_->queued_bytes() > 0) return;
  bool keep = keep_alive_ && lifecycle_ == Lifecycle::kOpen;
  end_request(Outcome::kOk);
  if (!keep) {
    graceful_close();
    return;
  }
  arm(TimerKind::kKeepalive, ctx().limits.keepalive_timeout);
  if (!in_process_) process();
}

}  // namespace unbroken::http
