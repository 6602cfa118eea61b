// HttpConnection's timers (see http_connection.h): one node per connection, armed at the earliest
// of the per-phase deadlines, and what each timeout does when it fires.

#include <algorithm>

#include "http/http_connection.h"

namespace unbroken::http {
namespace {

// Checked in this order when the connection's one timer fires.
constexpr std::array kTimerPriority{
    TimerKind::kDrain,  TimerKind::kHandler,   TimerKind::kSend,         TimerKind::kSendRate, TimerKind::kBody,
    TimerKind::kHeader, TimerKind::kKeepalive, TimerKind::kTlsHandshake, TimerKind::kLinger,   TimerKind::kRecord};

}  // namespace

std::chrono::milliseconds HttpConnection::timeout_of(TimerKind kind) const {
  const HttpLimits& l = ctx().limits;
  switch (kind) {
    case TimerKind::kHeader: return l.header_timeout;
    case TimerKind::kBody: return l.body_timeout;
    case TimerKind::kHandler: return l.handler_timeout;
    case TimerKind::kSend:
    case TimerKind::kSendRate: return l.send_timeout;
    case TimerKind::kKeepalive: return l.keepalive_timeout;
    case TimerKind::kDrain: return l.drain_timeout;
    case TimerKind::kLinger: return l.linger_timeout;
    case TimerKind::kTlsHandshake: return l.tls_handshake_timeout;
    case TimerKind::kRecord: return kRecordDelay;
    case TimerKind::kUpstreamConnect:
    case TimerKind::kUpstreamHeader:
    case TimerKind::kUpstreamRead:
    case TimerKind::kUpstreamSend:
    case TimerKind::kTunnelIdle: return upstream_timeout_;  // the proxy's, given with Exchange::abort
  }
  return {};
}

// The node is armed no later than every deadline (rearm_timer keeps it so): a deadline moved to
// after it, or taken away, leaves it as it is, with no scan of the others.
void HttpConnection::arm(TimerKind kind, std::chrono::milliseconds after) {
  auto& d = deadline(kind);
  d = ctx().loop.now() + after;
  if (!closed() && timer_.armed() && timer_armed_at_ <= d) return;
  rearm_timer();
}

void HttpConnection::disarm(TimerKind kind) {
  auto& d = deadline(kind);
  if (d == kNever) return;
  d = kNever;
  if (!closed() && timer_.armed()) return;
  rearm_timer();
}

void HttpConnection::clear_deadlines_but_record() {
  for (std::size_t k = 0; k < kOwnTimerCount; ++k)
    if (k != slot(TimerKind::kRecord)) deadlines_[k] = kNever;
}

void HttpConnection::rearm_timer() {
  if (closed()) {
    ctx().loop.timers().cancel(timer_);
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
  ctx().loop.timers().arm(timer_, earliest);
}

void HttpConnection::on_timer() {
  net::TimePoint now = ctx().loop.now();
  for (TimerKind kind : kTimerPriority) {
    if (deadline(kind) > now) continue;
    deadline(kind) = kNever;
    switch (kind) {
      case TimerKind::kLinger: close_connection(false); break;
      case TimerKind::kRecord:
        // Still unacknowledged bytes (a large response the client is still reading): look again
        // later rather than log a delivery that is only in progress, up to the send timeout.
        if (closed()) {
          emit_pending();
        } else if (!recorder_.emit_if_delivered(now, timeout_of(TimerKind::kSend))) {
          auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(recorder_.held_for(now));
          arm(TimerKind::kRecord, std::clamp(waited, kRecordDelay, kRecordMaxDelay));
        }
        break;
      case TimerKind::kKeepalive:
        // An idle keep-alive connection timing out is a normal end: counted, not recorded.
        ctx().stats.timeouts[static_cast<std::size_t>(kind)].add();
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
            ctx().limits.min_send_rate * static_cast<std::uint64_t>(timeout_of(kind).count()) / 1000) {
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
        // No 503 for a handshake cut short: the client never made a request.
        end_request(Outcome::kShutdown, kind,
                    phase_ == Phase::kTlsHandshake || (exchange_ && exchange_->started_) ? 0 : 503);
        close_connection(false);
        break;
      case TimerKind::kTlsHandshake:
        // A client that stalls in its handshake gets no answer (there is no channel to send it on).
        end_request(Outcome::kTimeout, kind);
        close_connection(false);
        break;
      case TimerKind::kUpstreamConnect:
      case TimerKind::kUpstreamHeader:
      case TimerKind::kUpstreamRead:
      case TimerKind::kUpstreamSend:
      case TimerKind::kTunnelIdle: break;  // never armed here
    }
    break;
  }
  if (!closed()) rearm_timer();
}

}  // namespace unbroken::http
