#include "proxy/proxy_handler.h"

#include "http/request_serializer.h"
#include "http/response_parser.h"
#include "net/tcp_connection.h"
#include "proxy/forward_head.h"
#include "proxy/upstream_pool.h"

namespace unbroken::proxy {
namespace {

using http::Outcome;
using http::TimerKind;

// RFC 9110 9.2.2: a request that may be sent twice. Only these are retried after a pooled
// connection turned out to be dead (RFC 9112 9.3.1).
bool idempotent(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "PUT" || method == "DELETE" || method == "OPTIONS" ||
         method == "TRACE";
}

UpstreamPool& pool_of(net::EventLoop& loop, const ProxySettings& s) {
  return loop.local<UpstreamPool>(
      &s, [&] { return std::make_shared<UpstreamPool>(loop, s.upstreams.size(), s.keepalive, s.pool_idle.get()); });
}

// One request and its response, on a pooled upstream connection or a new one. It keeps itself
// alive (self_) until it is done with the upstream connection (closed, or parked in the pool); the
// exchange's callbacks hold it weakly.
class UpstreamCall final : public net::TransportHandler,
                           public http::BodySink,
                           public std::enable_shared_from_this<UpstreamCall> {
 public:
  UpstreamCall(std::shared_ptr<const ProxySettings> s, http::ExchangePtr ex)
      : s_(std::move(s)), ex_(std::move(ex)), parser_(s_->limits), timer_([this] { on_timer(); }) {}

  void start();

  // TransportHandler (the upstream connection)
  void on_connected() override;
  void on_data(net::Buffer& in) override;
  void on_peer_closed() override;
  void on_transport_error(net::SocketError e) override;
  void on_written(std::size_t) override;
  // BodySink (the upstream's response body)
  void on_body(std::string_view chunk) override;

 private:
  void attempt(std::size_t upstream, bool fresh);
  bool retry_after_failure(net::SocketError e);
  void send_body(std::string_view chunk);
  void end_body();
  void request_complete();
  void forward_head();
  void message_complete(const net::Buffer& left);
  void watch_client_output();
  void resume_reading();
  void client_left();
  void arm(TimerKind kind, std::chrono::milliseconds after);
  void on_timer();
  void fail(Outcome outcome, int status, std::string_view text);
  void timed_out(TimerKind timer, std::chrono::milliseconds timeout);
  void release_upstream(bool park);
  void queue_upstream(std::string_view bytes);
  double ms_since_start() const;
  bool flush();
  void watch_send();

  std::shared_ptr<const ProxySettings> s_;
  http::ExchangePtr ex_;
  std::shared_ptr<UpstreamCall> self_;
  std::unique_ptr<net::TcpConnection> up_;
  http::ResponseParser parser_;
  std::string head_;  // the upstream request head, kept for a retry
  std::string scratch_;
  http::UpstreamRecord* rec_ = nullptr;  // the exchange's typed state, read by the recorder
  std::size_t upstream_ = 0;
  net::TimePoint started_{};
  // One timer for the phase the call is in: connect is the connection's own; then send (while the
  // request body goes up), header (request sent -> response head), read (a pause in the response),
  // and the abort budget after the client left. Re-armed lazily from the last progress.
  net::TimerNode timer_;
  TimerKind timer_kind_ = TimerKind::kUpstreamHeader;
  bool budget_timer_ = false;
  net::TimePoint last_read_{};
  net::TimePoint last_write_{};
  std::uint64_t discarded_ = 0;
  std::uint64_t attempt_bytes_in_ = 0;  // rec_->bytes_in when this attempt began
  bool connected_ = false;
  bool request_sent_ = false;
  bool head_sent_ = false;
  bool body_paused_ = false;
  bool reading_paused_ = false;  // by us, while the client is slower than the upstream
  bool client_gone_ = false;
  bool done_ = false;
};

void UpstreamCall::start() {
  self_ = shared_from_this();
  const http::Request& req = ex_->request();
  rec_ = &ex_->emplace_state<http::UpstreamRecord>();
  started_ = ex_->loop().now();
  parser_.expect_response_to(req.method);
  append_forward_head(head_, req, s_->keepalive > 0);
  std::weak_ptr<UpstreamCall> weak = self_;
  if (req.has_body()) {
    ex_->on_body(
        [weak](std::string_view c) {
          if (auto self = weak.lock()) self->send_body(c);
        },
        [weak] {
          if (auto self = weak.lock()) self->end_body();
        });
  } else {
    request_sent_ = true;
  }
  ex_->token().on_cancel([weak] {
    if (auto self = weak.lock()) self->client_left();
  });
  attempt(s_->next.fetch_add(1, std::memory_order_relaxed) % s_->upstreams.size(), false);
}

// Sends the request head (and, for a request without a body, the whole request) on a pooled
// connection to `upstream`, or on a new one when none is parked or `fresh` is asked for.
void UpstreamCall::attempt(std::size_t upstream, bool fresh) {
  upstream_ = upstream;
  rec_->upstream = s_->names[upstream];
  attempt_bytes_in_ = rec_->bytes_in;
  up_ = fresh ? nullptr : pool_of(ex_->loop(), *s_).take(upstream);
  rec_->reused = up_ != nullptr;
  connected_ = rec_->reused;
  if (!up_)
    up_ = net::TcpConnection::connect(ex_->loop(), s_->upstreams[upstream], s_->max_buffered, s_->connect_timeout);
  up_->set_handler(this);
  queue_upstream(head_);
  if (!connected_) return;  // on_connected() goes on
  rec_->connect_ms = ms_since_start();
  if (!flush()) return;
  if (request_sent_) request_complete();
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
  watch_send();
  return true;
}

// The request's bytes wait for the upstream to take them: the send timer runs (from the last
// progress) until they are all taken; the header timer takes over once the whole request is.
void UpstreamCall::watch_send() {
  if (!request_sent_ && up_->queued_bytes() > 0 && !timer_.armed()) arm(TimerKind::kUpstreamSend, s_->send_timeout);
}

void UpstreamCall::on_connected() {
  connected_ = true;
  rec_->connect_ms = ms_since_start();
  last_write_ = ex_->loop().now();
  if (request_sent_) return request_complete();
  watch_send();  // what was held while connecting is being sent
}

void UpstreamCall::send_body(std::string_view chunk) {
  if (done_) return;
  if (ex_->request().chunked) {
    scratch_.clear();
    http::append_chunk(scratch_, chunk);
    queue_upstream(scratch_);
  } else {
    queue_upstream(chunk);
  }
  if (!flush()) return;
  // The application reads slower than the client sends: stop reading the client.
  if (up_->queued_bytes() >= s_->output_high_water && !body_paused_) {
    body_paused_ = true;
    ex_->pause_body();
  }
}

void UpstreamCall::end_body() {
  if (done_) return;
  if (ex_->request().chunked) {
    scratch_.clear();
    http::append_last_chunk(scratch_);
    queue_upstream(scratch_);
  }
  request_sent_ = true;
  if (!flush()) return;
  if (connected_) request_complete();
}

// The whole request is queued on a connected upstream: its answer is awaited from now.
void UpstreamCall::request_complete() {
  if (!head_sent_) arm(TimerKind::kUpstreamHeader, s_->header_timeout);
}

void UpstreamCall::on_written(std::size_t) {
  last_write_ = ex_->loop().now();
  if (body_paused_ && up_->queued_bytes() < s_->output_low_water) {
    body_paused_ = false;
    ex_->resume_body();
  }
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
      case http::ResponseParser::Status::kUpgrade:
        return fail(Outcome::kUpstreamProtocolError, 502, "upstream switched protocols (not supported yet)\n");
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
  ex_->finish();
  // Reused only when the exchange is over on both sides: the whole request went up (a response
  // that came before the body's end leaves the upstream reading a body we would have to send),
  // nothing followed the response, and the upstream keeps the connection.
  bool reusable = parser_.response().keep_alive && request_sent_ && up_->queued_bytes() == 0 && left.size() == 0 &&
                  s_->keepalive > 0;
  release_upstream(reusable);
}

void UpstreamCall::forward_head() {
  head_sent_ = true;
  rec_->status = parser_.response().status;
  rec_->header_ms = ms_since_start();
  if (!budget_timer_) arm(TimerKind::kUpstreamRead, s_->read_timeout);
  if (client_gone_) return;
  const http::ParsedResponse& r = parser_.response();
  std::optional<std::uint64_t> length;
  if (r.framing == http::ResponseFraming::kLength) length = r.content_length;
  if (r.framing == http::ResponseFraming::kNone) length = r.content_length.value_or(0);
  ex_->start_upstream({r.status, r.reason, &r.headers}, length);
}

void UpstreamCall::on_body(std::string_view chunk) {
  if (client_gone_ || !ex_->active()) {
    // Past the byte budget the application is cut off after all (its next write fails).
    discarded_ += chunk.size();
    if (discarded_ >= s_->abort_budget_bytes) release_upstream(false);
    return;
  }
  ex_->write(chunk);
}

void UpstreamCall::watch_client_output() {
  // The client reads slower than the application writes: stop reading the upstream until it drains.
  if (done_ || client_gone_ || ex_->writable() || !ex_->active()) return;
  up_->set_reading(false);
  reading_paused_ = true;
  std::weak_ptr<UpstreamCall> weak = self_;
  ex_->on_drain([weak] {
    if (auto self = weak.lock(); self && !self->done_) self->resume_reading();
  });
}

void UpstreamCall::resume_reading() {
  reading_paused_ = false;
  last_read_ = ex_->loop().now();  // the pause was the client's, not the upstream's
  up_->set_reading(true);
}

void UpstreamCall::client_left() {
  if (done_ || client_gone_) return;
  client_gone_ = true;
  // A request the upstream has not got whole cannot be answered: nothing to finish.
  if (!request_sent_ || s_->abort_close) return release_upstream(false);
  resume_reading();
  if (discarded_ >= s_->abort_budget_bytes) return release_upstream(false);
  budget_timer_ = true;
  net::EventLoop& loop = ex_->loop();
  loop.timers().arm(timer_, loop.now() + s_->abort_budget);
}

void UpstreamCall::arm(TimerKind kind, std::chrono::milliseconds after) {
  timer_kind_ = kind;
  net::EventLoop& loop = ex_->loop();
  loop.timers().arm(timer_, loop.now() + after);
}

void UpstreamCall::on_timer() {
  if (done_) return;
  if (budget_timer_) return release_upstream(false);  // the budget for nobody is spent
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
  timed_out(timer_kind_, timeout);
}

// A pooled connection the upstream had already given up on fails before any byte of the answer:
// the request is sent again, once, on a new connection, when that is safe (RFC 9112 9.3.1). A
// refused connect moves on to the next upstream. Nothing is retried once the client has a byte of
// the response, or when the request's body has started up (it is not kept to send again).
bool UpstreamCall::retry_after_failure(net::SocketError e) {
  if (head_sent_ || client_gone_ || rec_->bytes_in != attempt_bytes_in_ || rec_->retries > 0) return false;
  const http::Request& req = ex_->request();
  if (req.has_body()) return false;
  bool stale = connected_ && rec_->reused && idempotent(req.method);
  bool refused = !connected_ && e == net::SocketError::kRefused && s_->upstreams.size() > 1;
  if (!stale && !refused) return false;
  release_upstream(false);
  done_ = false;
  self_ = shared_from_this();
  ++rec_->retries;
  parser_.reset();
  parser_.expect_response_to(req.method);
  attempt(refused ? (upstream_ + 1) % s_->upstreams.size() : upstream_, true);
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
    if (e == net::SocketError::kConnectTimeout) return timed_out(TimerKind::kUpstreamConnect, s_->connect_timeout);
    return fail(Outcome::kUpstreamRefused, 502, "upstream refused the connection\n");
  }
  fail(Outcome::kUpstreamReset, 502, "upstream reset the connection\n");
}

void UpstreamCall::fail(Outcome outcome, int status, std::string_view text) {
  if (done_) return;
  rec_->ms = ms_since_start();
  if (!client_gone_) ex_->abort(outcome, status, text);
  release_upstream(false);
}

void UpstreamCall::timed_out(TimerKind timer, std::chrono::milliseconds timeout) {
  if (done_) return;
  rec_->ms = ms_since_start();
  if (!client_gone_) ex_->abort(Outcome::kUpstreamTimeout, 504, "upstream timed out\n", timer, timeout);
  release_upstream(false);
}

// Done with the upstream connection: parked for the next request, or closed. Either way the
// connection is no longer ours, and we are freed at the end of the turn (never inside one of our
// own callbacks); the exchange goes with us.
void UpstreamCall::release_upstream(bool park) {
  if (done_) return;
  done_ = true;
  if (rec_->ms == 0) rec_->ms = ms_since_start();  // cut off (budget, close policy): as far as it went
  net::EventLoop& loop = ex_->loop();
  loop.timers().cancel(timer_);
  up_->set_handler(nullptr);
  if (park) {
    std::chrono::milliseconds idle = s_->idle_timeout;
    if (auto said = keep_alive_timeout(parser_.response().headers)) idle = std::min(idle, *said);
    pool_of(loop, *s_).park(upstream_, std::move(up_), idle);
  } else {
    up_->close(false);
    net::TcpConnection* c = up_.release();
    loop.defer([c] { delete c; });
  }
  loop.defer([keep = std::move(self_)] {});
}

}  // namespace

http::AsyncHandler make_proxy_handler(std::shared_ptr<const ProxySettings> settings) {
  if (!settings->pool_idle)
    settings->pool_idle = std::make_unique<std::atomic<std::int64_t>[]>(settings->upstreams.size());
  return [settings = std::move(settings)](const http::ExchangePtr& ex) {
    std::make_shared<UpstreamCall>(settings, ex)->start();
  };
}

}  // namespace unbroken::proxy
