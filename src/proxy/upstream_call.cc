#include "proxy/upstream_call.h"

#include "http/request_serializer.h"
#include "proxy/forward_head.h"
#include "proxy/tunnel.h"
#include "proxy/upstream_connect.h"
#include "proxy/upstream_group.h"
#include "proxy/upstream_pool.h"

namespace unbroken::proxy {

using http::Outcome;
using http::TimerKind;

namespace {

// RFC 9110 9.2.2: a request that may be sent twice. Only these are retried after a pooled
// connection turned out to be dead (RFC 9112 9.3.1).
bool idempotent(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "PUT" || method == "DELETE" || method == "OPTIONS" ||
         method == "TRACE";
}

}  // namespace

UpstreamPool& pool_of(net::EventLoop& loop, const ProxySettings& s) {
  return loop.local<UpstreamPool>(
      &s, [&] { return std::make_shared<UpstreamPool>(loop, s.upstreams.size(), s.keepalive, s.pool_idle.get()); });
}

void UpstreamCall::start() {
  self_ = shared_from_this();
  ex_->own_timers();  // connect, send, header, read: each wait has its upstream timer
  const http::Request& req = ex_->request();
  rec_ = &ex_->emplace_state<http::UpstreamRecord>();
  bool trusted = s_->trusted_proxies.contains(client_ip(req.client));
  rec_->request_id = track_request(*ex_, s_->requests, trusted);
  started_ = ex_->loop().now();
  parser_.expect_response_to(req.method);
  append_forward_head(head_, req,
                      {trusted, req.secure ? "https" : "http", rec_->request_id, s_->keepalive > 0, s_->default_host});
  std::weak_ptr<UpstreamCall> weak = self_;
  ex_->token().on_cancel([weak] {
    if (auto self = weak.lock()) self->client_left();
  });
  if (!req.has_body()) request_sent_ = true;
  take_body();
  // A buffered body is read whole first: its end makes the first attempt.
  if (!body_) first_attempt();
}

void UpstreamCall::first_attempt() {
  auto i = s_->group->pick({}, ex_->loop().now());
  if (!i) {
    rec_->upstream = s_->group_name;
    return fail(Outcome::kUpstreamUnavailable, 502, "no upstream is available\n");
  }
  attempt(*i, false);
}

// Sends the request head (and whatever of the request is ready) on a pooled connection to
// `upstream`, or on a new one when none is parked or `fresh` is asked for.
void UpstreamCall::attempt(std::size_t upstream, bool fresh) {
  upstream_ = upstream;
  s_->group->started(upstream);
  in_flight_ = true;
  rec_->upstream = s_->names[upstream];
  attempt_bytes_in_ = rec_->bytes_in;
  up_ = fresh ? nullptr : pool_of(ex_->loop(), *s_).take(upstream);
  rec_->reused = up_ != nullptr;
  connected_ = rec_->reused;
  if (!up_) {
    std::string_view tls_host = s_->tls_host(upstream);
    up_ = connect_upstream(ex_->loop(), s_->upstreams[upstream], tls_host.empty() ? nullptr : s_->tls.get(), tls_host,
                           s_->max_buffered, s_->connect_timeout);
    // The TCP connection's own timer stops at its connect; a TLS upstream that takes the
    // connection and never finishes the handshake is cut by this one (upstream_connect).
    if (up_->tls()) arm(TimerKind::kUpstreamConnect, s_->connect_timeout);
  }
  up_->set_handler(this);
  queue_upstream(head_);
  if (connected_) on_connected();  // else the connection calls it
}

void UpstreamCall::queue_upstream(std::string_view bytes) {
  up_->queue(bytes);
  rec_->bytes_out += bytes.size();
}

double UpstreamCall::ms_since_start() const {
  return std::chrono::duration<double, std::milli>(ex_->loop().now() - started_).count();
}

bool UpstreamCall::flush() {
  if (done_ || !connected_) return !done_;
  auto r = up_->flush();
  if (!r) {
    on_transport_error(net::classify(r.error()));
    return false;
  }
  if (*r > 0) last_write_ = ex_->loop().now();  // progress on_written() does not hear of
  watch_send();
  return true;
}

// The request's bytes wait for the upstream to take them: the send timer runs (from the last
// progress) until they are all taken; the header timer takes over once the whole request is.
void UpstreamCall::watch_send() {
  if (!request_sent_ && up_->queued_bytes() > 0 && !timer_.armed()) arm(TimerKind::kUpstreamSend, s_->send_timeout);
}

void UpstreamCall::on_connected() {
  if (timer_kind_ == TimerKind::kUpstreamConnect) ex_->loop().timers().cancel(timer_);
  connected_ = true;
  rec_->connect_ms = ms_since_start();
  last_write_ = ex_->loop().now();
  // A buffered body goes up only now, so that a refused connect leaves it whole for the next try.
  if (body_ && !request_sent_) return send_buffered_body();
  if (!flush()) return;
  if (request_sent_) request_complete();
}

// The whole request is queued on a connected upstream: its answer is awaited from now.
void UpstreamCall::request_complete() {
  if (!head_sent_) arm(TimerKind::kUpstreamHeader, s_->header_timeout);
}

void UpstreamCall::on_data(net::Buffer& in) {
  last_read_ = ex_->loop().now();
  while (!done_ && in.size() > 0) {
    auto o = parser_.feed(in.readable(), this);
    in.consume(o.consumed);
    rec_->bytes_in += o.consumed;
    if (done_) return;
    switch (o.status) {
      case http::ResponseParser::Status::kNeedMore: break;
      case http::ResponseParser::Status::kInterim: continue;  // 100 Continue and the like: ours to drop
      case http::ResponseParser::Status::kHead: forward_head(); continue;
      case http::ResponseParser::Status::kMessage: return message_complete(in);
      case http::ResponseParser::Status::kUpgrade: {
        // A 101: the tunnel takes the connection over (and what follows the head in `in`); we are
        // done with it first, so that the tunnel's end finds us done.
        rec_->status = parser_.response().status;
        rec_->header_ms = ms_since_start();
        s_->group->succeeded(upstream_);
        auto up = std::move(up_);  // release_upstream ends the attempt: a tunnel is not in flight
        release_upstream(false);
        return start_tunnel(s_, ex_, std::move(up), parser_.response());
      }
      case http::ResponseParser::Status::kError:
        return fail(Outcome::kUpstreamProtocolError, 502, "bad response from upstream\n");
    }
    break;
  }
  watch_client_output();
}

void UpstreamCall::message_complete(const net::Buffer& left) {
  if (!head_sent_) forward_head();
  rec_->ms = ms_since_start();  // before finish(): the record may be taken inside it
  if (held_ && !held_->empty() && !client_gone_) {
    message_done_ = true;  // finished once the client has what is held
  } else {
    ex_->finish();
  }
  // Reused only when the exchange is over on both sides: the whole request went up (a response
  // that came before the body's end leaves the upstream reading a body we would have to send),
  // nothing followed the response, and the upstream keeps the connection.
  bool reusable = parser_.response().keep_alive && request_sent_ && up_->queued_bytes() == 0 && left.size() == 0 &&
                  s_->keepalive > 0;
  release_upstream(reusable);
}

void UpstreamCall::forward_head() {
  head_sent_ = true;
  s_->group->succeeded(upstream_);
  const http::ParsedResponse& r = parser_.response();
  rec_->status = r.status;
  rec_->header_ms = ms_since_start();
  if (!budget_timer_) arm(TimerKind::kUpstreamRead, s_->read_timeout);
  if (client_gone_) return;
  // Held for a slow client unless the route streams, or the response is a stream of events the
  // client must see as they come (SSE; nginx's X-Accel-Buffering: no for the rest).
  buffer_response_ =
      s_->buffering && !iequals(r.header("x-accel-buffering"), "no") &&
      !iequals(trim_ows(r.header("content-type").substr(0, r.header("content-type").find(';'))), "text/event-stream");
  std::optional<std::uint64_t> length;
  if (r.framing == http::ResponseFraming::kLength) length = r.content_length;
  if (r.framing == http::ResponseFraming::kNone) length = r.content_length.value_or(0);
  ex_->start_upstream({r.status, r.reason, &r.headers}, length);
}

void UpstreamCall::resume_reading() {
  reading_paused_ = false;
  last_read_ = ex_->loop().now();  // the pause was the client's, not the upstream's
  up_->set_reading(true);
}

void UpstreamCall::client_left() {
  if (client_gone_) return;
  client_gone_ = true;
  held_.reset();  // nobody to write it to
  if (done_) return end_if_done();
  // A request the upstream has not got whole cannot be answered: nothing to finish.
  // Nor one still connecting: the application never saw it.
  if (!request_sent_ || !connected_ || s_->abort_close || !up_) return release_upstream(false);
  resume_reading();
  if (discarded_ >= s_->abort_budget_bytes) return release_upstream(false);
  budget_timer_ = true;
  net::EventLoop& loop = ex_->loop();
  loop.timers().arm(timer_, loop.now() + s_->abort_budget);
}

void UpstreamCall::arm(TimerKind kind, std::chrono::milliseconds after) {
  if (budget_timer_) return;  // the client left: only the abort budget runs
  timer_kind_ = kind;
  net::EventLoop& loop = ex_->loop();
  loop.timers().arm(timer_, loop.now() + after);
}

void UpstreamCall::on_timer() {
  if (done_) return;
  if (budget_timer_) return release_upstream(false);  // the budget for nobody is spent
  if (timer_kind_ == TimerKind::kUpstreamConnect)
    return fail(Outcome::kUpstreamTimeout, 504, "upstream timed out\n", timer_kind_, s_->connect_timeout);
  net::EventLoop& loop = ex_->loop();
  std::chrono::milliseconds timeout = s_->header_timeout;
  net::TimePoint since = loop.now() - timeout;  // the header timer is never moved
  if (timer_kind_ == TimerKind::kUpstreamRead)
    timeout = s_->read_timeout, since = reading_paused_ ? loop.now() : last_read_;
  if (timer_kind_ == TimerKind::kUpstreamSend) {
    if (request_sent_ || up_->queued_bytes() == 0) return;  // caught up; flush() arms it again
    timeout = s_->send_timeout, since = last_write_;
  }
  // Moved lazily: a wheel operation per read or write would cost more than the timer is worth.
  if (loop.now() - since < timeout) return loop.timers().arm(timer_, since + timeout);
  fail(Outcome::kUpstreamTimeout, 504, "upstream timed out\n", timer_kind_, timeout);
}

// A pooled connection the upstream had already given up on fails before any byte of the answer:
// the request is sent again, once, on a new connection, when that is safe (RFC 9112 9.3.1). A
// refused connect moves on to the next upstream. Nothing is retried once the client has a byte of
// the response, or once a byte of a body we cannot send again went up.
bool UpstreamCall::retry_after_failure(net::SocketError e) {
  if (head_sent_ || client_gone_ || rec_->bytes_in != attempt_bytes_in_ || rec_->retries > 0 || !replayable())
    return false;
  const http::Request& req = ex_->request();
  bool stale = connected_ && rec_->reused && idempotent(req.method);
  // A refused connect, or an https upstream whose handshake failed (its certificate did not
  // verify): nothing reached the application, so any method may go to another upstream.
  bool refused =
      !connected_ && (e == net::SocketError::kRefused || e == net::SocketError::kProtocol) && s_->upstreams.size() > 1;
  if (!stale && !refused) return false;
  std::size_t next = upstream_;
  if (refused) {
    std::size_t tried[] = {upstream_};
    auto other = s_->group->pick(tried, ex_->loop().now());
    if (!other) return false;
    s_->group->failed(upstream_, ex_->loop().now());
    next = *other;
  }
  close_connection();
  ++rec_->retries;
  parser_.reset();
  parser_.expect_response_to(req.method);
  attempt(next, true);
  return true;
}

void UpstreamCall::on_peer_closed() {
  if (done_) return;
  if (parser_.finish() == http::ResponseParser::Status::kMessage) return message_complete(up_->input());
  if (retry_after_failure(net::SocketError::kReset)) return;
  fail(Outcome::kUpstreamReset, 502, "upstream closed the connection\n");
}

void UpstreamCall::on_transport_error(net::SocketError e) {
  if (done_) return;
  if (retry_after_failure(e)) return;
  if (!connected_) {
    if (e == net::SocketError::kConnectTimeout)
      return fail(Outcome::kUpstreamTimeout, 504, "upstream timed out\n", TimerKind::kUpstreamConnect,
                  s_->connect_timeout);
    if (e == net::SocketError::kProtocol) {
      // The TLS handshake failed: the certificate did not verify ("hostname mismatch", "unable to
      // get local issuer certificate", "certificate has expired") or OpenSSL's reason. Like a
      // refusal, the upstream cannot be used: it counts for passive health (nginx counts it under
      // proxy_next_upstream error too).
      rec_->error = tls_failure(*up_);
      if (in_flight_) s_->group->failed(upstream_, ex_->loop().now());
      return fail(Outcome::kUpstreamProtocolError, 502, "upstream TLS handshake failed\n");
    }
    return fail(Outcome::kUpstreamRefused, 502, "upstream refused the connection\n");
  }
  // A TLS record that does not decrypt, or the like: the upstream broke the protocol.
  if (e == net::SocketError::kProtocol)
    return fail(Outcome::kUpstreamProtocolError, 502, "bad response from upstream\n");
  fail(Outcome::kUpstreamReset, 502, "upstream reset the connection\n");
}

void UpstreamCall::fail(Outcome outcome, int status, std::string_view text, std::optional<TimerKind> timer,
                        std::chrono::milliseconds timeout) {
  if (done_) return;
  rec_->ms = ms_since_start();
  // Passive health: a refusal or a timeout counts against the upstream (a reset or a bad response
  // is the application's answer, not its absence).
  if (in_flight_ && (outcome == Outcome::kUpstreamRefused || outcome == Outcome::kUpstreamTimeout))
    s_->group->failed(upstream_, ex_->loop().now());
  // Done with the upstream first: the answer cancels the exchange's token, and client_left() must
  // find nothing left to finish.
  bool answer = !client_gone_;
  release_upstream(false);
  if (answer) end_response({outcome, status, text, timer, timeout});
}

// Done with the upstream connection: parked for the next request, or closed. It is no longer
// ours; the call itself ends when the client has what it is owed (end_if_done).
void UpstreamCall::release_upstream(bool park) {
  if (done_) return;
  done_ = true;
  if (rec_->ms == 0) rec_->ms = ms_since_start();  // cut off (budget, close policy): as far as it went
  net::EventLoop& loop = ex_->loop();
  loop.timers().cancel(timer_);
  end_attempt();
  if (up_ && park) {
    up_->set_handler(nullptr);
    std::chrono::milliseconds idle = s_->idle_timeout;
    // Shorter than the upstream's own keep-alive, so that we close first and the stale race stays
    // the exception: half a second less, or half of it when it is that short.
    if (auto said = keep_alive_timeout(parser_.response().headers))
      idle = std::min(idle, *said > std::chrono::seconds(1) ? *said - std::chrono::milliseconds(500) : *said / 2);
    pool_of(loop, *s_).park(upstream_, std::move(up_), idle);
  } else if (up_) {
    close_connection();
  }
  end_if_done();
}

// Maybe inside one of the connection's callbacks: it is freed at the end of the turn.
void UpstreamCall::close_connection() {
  end_attempt();
  ex_->loop().timers().cancel(timer_);
  up_->set_handler(nullptr);
  up_->close(false);
  net::Transport* c = up_.release();
  ex_->loop().defer([c] { delete c; });
}

// least_conn counts what is in flight: every started() has its ended().
void UpstreamCall::end_attempt() {
  if (!in_flight_) return;
  in_flight_ = false;
  s_->group->ended(upstream_);
}

// Freed at the end of the turn, never inside one of our own callbacks; the exchange goes with us.
void UpstreamCall::end_if_done() {
  if (ended_ || !done_ || (held_ && !held_->empty() && !client_gone_)) return;
  ended_ = true;
  ex_->loop().defer([keep = std::move(self_)] {});
}

}  // namespace unbroken::proxy
