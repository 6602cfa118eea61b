#include "http/request_recorder.h"

#include "http/loop_context.h"

namespace unbroken::http {
namespace {

double ms_between(net::TimePoint a, net::TimePoint b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

}  // namespace

void RequestRecorder::begin() {
  ++req_no_;
  // Durations are read from the clock itself (a vDSO call), not the loop turn's cached time: a
  // request served within one turn would otherwise last 0 ms.
  request_start_ = net::Clock::now();
  bytes_in_ = bytes_out_ = 0;
}

void RequestRecorder::add_out(std::size_t n) {
  bytes_out_ += n;
  conn_bytes_out_ += n;
  ctx_.stats.response_bytes.add(n);
}

bool RequestRecorder::end(const End& e, const ExchangePtr& ex, bool* cancelled) {
  net::TimePoint now = net::Clock::now();
  bool head_sent = ex && ex->started_;
  int status = e.status;
  // A client that left before the response head is a 499, never a 5xx. One that left during its TLS
  // handshake never made a request: no status.
  bool handshaking = e.phase == Phase::kTlsHandshake;
  if (is_departure(e.outcome) && !head_sent && !handshaking) status = 499;

  const Request& req = *e.request;
  // An answered request's record is built where it will be held: a record is some 400 bytes, and
  // copying it in and out of the pool was a tenth of this layer's time per request.
  PendingRecord* slot = nullptr;
  RequestRecord local;
  if (e.outcome == Outcome::kOk) {
    if (held_ && held_->count == kMaxHeld) emit_pending(false);
    if (!held_) held_ = make_pooled<Held>();
    held_->at[held_->count] = make_pooled<PendingRecord>();
    slot = held_->at[held_->count].get();
  }
  RequestRecord& rec = slot != nullptr ? slot->rec : local;
  rec.ts = std::chrono::system_clock::now();
  rec.conn = conn_id_;
  rec.req = e.phase == Phase::kIdle || handshaking ? 0 : req_no_;
  rec.client = e.client;
  rec.method = req.method;
  rec.path = req.target;
  if (e.route_slot != kNoRoute) rec.route = ctx_.router.slot_name(e.route_slot);
  rec.status = status;
  rec.ua = req.header("user-agent");
  rec.referer = req.header("referer");
  rec.outcome = e.outcome;
  rec.phase = e.phase;
  rec.timer = e.timer;
  if (e.timer) rec.timeout_ms = static_cast<std::uint64_t>(e.timeout.count());
  rec.bytes_in = bytes_in_;
  rec.bytes_out = bytes_out_;
  if (ex) rec.encoding = ex->encoding_;
  if (ex)
    if (const UpstreamRecord* u = ex->state<UpstreamRecord>()) rec.upstream = *u;
  if (const net::TlsSession* tls = transport_.tls()) {
    rec.tls =
        TlsRecord{tls->version, tls->cipher, tls->sni, tls->error, tls->resumed, !tls->handshaking && !tls->failed};
    if (handshaking) rec.duration_ms = ms_between(tls->started, now);
  }
  if (e.phase != Phase::kIdle && !handshaking) rec.duration_ms = ms_between(request_start_, now);
  if (e.dispatched) {
    net::TimePoint end = ex && ex->finished_ ? handler_end_ : now;
    rec.handler_ms = ms_between(handler_start_, end);
  }
  bool handler_running = e.dispatched && ex && !ex->finished_;
  rec.cancelled = handler_running && e.outcome != Outcome::kOk;
  *cancelled = rec.cancelled;
  std::uint64_t bytes_before = conn_bytes_out_ - bytes_out_;

  count(rec, e.route_slot);
  if (e.outcome == Outcome::kOk) {
    // What the client acknowledged is known only after its ACKs arrive: keep the record until the
    // next request starts, the connection ends, or the record timer fires, then ask the kernel once.
    slot->exchange = ex;
    slot->bytes_before = bytes_before;
    held_->ended = ctx_.loop.now();
    // Anything beyond its request (a handler's or an upstream call's state, a gzip stream) is let
    // go when the next request begins, not kMaxHeld requests later.
    // So is a large buffered request body: the record never views it, but the exchange holds it.
    if (ex && (!ex->states_.empty() || ex->encoder_.gzipping() ||
               ex->request_.body.capacity() > RequestParser::kMaxKeptCapacity))
      held_->plain = false;
    return held_->count++ == 0;
  }
  fill_delivery(rec, bytes_before);
  if (rec.bytes_acked) ctx_.stats.response_bytes_acked.add(*rec.bytes_acked);
  // A handler still holding the exchange is still working for a client that left: the record
  // waits for it to let go, to say how long that was (wasted_ms).
  if (rec.cancelled && ex.use_count() > 1) {
    ex->departed_ = std::make_unique<Exchange::Departed>(Exchange::Departed{rec, now, &ctx_, {}});
    if (auto& tls = ex->departed_->rec.tls) {
      ex->departed_->sni.assign(tls->sni);
      tls->sni = ex->departed_->sni;
    }
  } else if (ctx_.record) {
    ctx_.record(rec);
  }
  return false;
}

bool RequestRecorder::emit_if_delivered(net::TimePoint now, std::chrono::milliseconds limit) {
  if (!held_) return true;
  std::optional<net::TcpDelivery> d = transport_.delivery();
  // The newest response is the last to be acknowledged: when it is, all are.
  const PendingRecord& newest = *held_->at[held_->count - 1];
  if (d && now - held_->ended < limit && d->bytes_acked < newest.bytes_before + newest.rec.bytes_out) return false;
  emit(d);
  return true;
}

void RequestRecorder::fill_delivery(RequestRecord& rec, std::uint64_t bytes_before) const {
  if (auto d = transport_.delivery()) fill_delivery(rec, bytes_before, *d);
}

void RequestRecorder::fill_delivery(RequestRecord& rec, std::uint64_t bytes_before, const net::TcpDelivery& d) const {
  // The acknowledged count runs from the start of the connection; this request's bytes come after
  // bytes_before.
  std::uint64_t acked = d.bytes_acked > bytes_before ? d.bytes_acked - bytes_before : 0;
  rec.bytes_acked = std::min(acked, rec.bytes_out);
  // What was written up to the end of this response and is not yet acknowledged: a held record
  // read after later responses went out does not count their bytes.
  std::uint64_t end = bytes_before + rec.bytes_out;
  rec.bytes_unsent = end > d.bytes_acked ? end - d.bytes_acked : 0;
}

void RequestRecorder::count(const RequestRecord& rec, std::size_t route_slot) {
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

void RequestRecorder::emit_pending(bool socket_gone) {
  if (!held_) return;
  std::optional<net::TcpDelivery> d;
  if (!socket_gone) d = transport_.delivery();  // one question for all of them
  emit(d);
}

void RequestRecorder::emit(const std::optional<net::TcpDelivery>& d) {
  PoolPtr<Held> held = std::move(held_);
  for (std::size_t i = 0; i < held->count; ++i) {
    PendingRecord& p = *held->at[i];
    if (d) fill_delivery(p.rec, p.bytes_before, *d);
    if (p.rec.bytes_acked) ctx_.stats.response_bytes_acked.add(*p.rec.bytes_acked);
    if (ctx_.record) ctx_.record(p.rec);
    // The last owner of a finished exchange hands its request back to the loop, for the next
    // request a parser reads: it reuses the strings' capacity instead of allocating them again.
    if (p.exchange.use_count() == 1) {
      ctx_.parsers.recycle(std::move(p.exchange->request_));
      ctx_.parsers.recycle(std::move(p.exchange->headers_));
    }
  }
}

}  // namespace unbroken::http
