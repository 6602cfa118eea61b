#include "proxy/proxy_handler.h"

#include "http/request_serializer.h"
#include "http/response_parser.h"
#include "net/tcp_connection.h"
#include "proxy/forward_head.h"

namespace unbroken::proxy {
namespace {

using http::Outcome;

// One request and its response on an upstream connection of its own. It keeps itself alive
// (self_) until the upstream connection is closed; the exchange's callbacks hold it weakly.
class UpstreamCall final : public net::TransportHandler,
                           public http::BodySink,
                           public std::enable_shared_from_this<UpstreamCall> {
 public:
  UpstreamCall(std::shared_ptr<const ProxySettings> s, http::ExchangePtr ex)
      : s_(std::move(s)), ex_(std::move(ex)), parser_(s_->limits) {}

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
  void send_body(std::string_view chunk);
  void end_body();
  void forward_head();
  void watch_client_output();
  void client_left();
  void arm(std::chrono::milliseconds after, void (UpstreamCall::*fire)());
  void header_timer_fired();
  void read_timer_fired();
  void budget_spent();
  void fail(Outcome outcome, int status, std::string_view text);
  void timed_out(http::TimerKind timer, std::chrono::milliseconds timeout);
  void close_upstream();
  void queue_upstream(std::string_view bytes);
  double ms_since_start() const;
  bool flush();

  std::shared_ptr<const ProxySettings> s_;
  http::ExchangePtr ex_;
  std::shared_ptr<UpstreamCall> self_;
  std::unique_ptr<net::TcpConnection> up_;
  http::ResponseParser parser_;
  std::string scratch_;
  http::UpstreamRecord* rec_ = nullptr;  // the exchange's typed state, read by the recorder
  net::TimePoint started_{};
  net::EventLoop::TimerId timer_ = 0;
  net::TimePoint last_read_{};
  std::uint64_t discarded_ = 0;
  bool connected_ = false;
  bool request_sent_ = false;
  bool head_sent_ = false;
  bool body_paused_ = false;
  bool client_gone_ = false;
  bool done_ = false;
};

void UpstreamCall::start() {
  self_ = shared_from_this();
  const http::Request& req = ex_->request();
  std::size_t i = s_->next.fetch_add(1, std::memory_order_relaxed) % s_->upstreams.size();
  rec_ = &ex_->emplace_state<http::UpstreamRecord>();
  rec_->upstream = s_->names[i];
  started_ = ex_->loop().now();
  up_ = net::TcpConnection::connect(ex_->loop(), s_->upstreams[i], s_->max_buffered, s_->connect_timeout);
  up_->set_handler(this);
  parser_.expect_response_to(req.method);
  scratch_.clear();
  append_forward_head(scratch_, req);
  queue_upstream(scratch_);
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
  return true;
}

void UpstreamCall::on_connected() {
  connected_ = true;
  rec_->connect_ms = ms_since_start();
  if (request_sent_) arm(s_->header_timeout, &UpstreamCall::header_timer_fired);
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
  if (connected_ && !head_sent_) arm(s_->header_timeout, &UpstreamCall::header_timer_fired);
}

void UpstreamCall::on_written(std::size_t) {
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
      case http::ResponseParser::Status::kMessage:
        if (!head_sent_) forward_head();
        rec_->ms = ms_since_start();  // before finish(): the record may be taken inside it
        ex_->finish();
        close_upstream();
        return;
      case http::ResponseParser::Status::kUpgrade:
        return fail(Outcome::kUpstreamProtocolError, 502, "upstream switched protocols (not supported yet)\n");
      case http::ResponseParser::Status::kError:
        return fail(Outcome::kUpstreamProtocolError, 502, "bad response from upstream\n");
    }
    break;
  }
  watch_client_output();
}

void UpstreamCall::forward_head() {
  head_sent_ = true;
  rec_->status = parser_.response().status;
  rec_->header_ms = ms_since_start();
  arm(s_->read_timeout, &UpstreamCall::read_timer_fired);
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
    if (discarded_ >= s_->abort_budget_bytes) close_upstream();
    return;
  }
  ex_->write(chunk);
}

void UpstreamCall::watch_client_output() {
  // The client reads slower than the application writes: stop reading the upstream until it drains.
  if (done_ || client_gone_ || ex_->writable() || !ex_->active()) return;
  up_->set_reading(false);
  std::weak_ptr<UpstreamCall> weak = self_;
  ex_->on_drain([weak] {
    if (auto self = weak.lock(); self && !self->done_) self->up_->set_reading(true);
  });
}

void UpstreamCall::client_left() {
  if (done_ || client_gone_) return;
  client_gone_ = true;
  // A request the upstream has not got whole cannot be answered: nothing to finish.
  if (!request_sent_ || s_->abort_close) return close_upstream();
  up_->set_reading(true);
  if (discarded_ >= s_->abort_budget_bytes) return close_upstream();
  arm(s_->abort_budget, &UpstreamCall::budget_spent);
}

void UpstreamCall::arm(std::chrono::milliseconds after, void (UpstreamCall::*fire)()) {
  net::EventLoop& loop = ex_->loop();
  if (timer_ != 0) loop.cancel_timer(timer_);
  std::weak_ptr<UpstreamCall> weak = self_;
  timer_ = loop.run_after(after, [weak, fire] {
    if (auto self = weak.lock()) {
      self->timer_ = 0;
      ((*self).*fire)();
    }
  });
}

void UpstreamCall::header_timer_fired() {
  timed_out(http::TimerKind::kUpstreamHeader, s_->header_timeout);
}

void UpstreamCall::read_timer_fired() {
  if (client_gone_) return;  // the budget's timer runs instead
  // Re-armed lazily: a timer per read would cost a map entry each time.
  auto idle = ex_->loop().now() - last_read_;
  if (idle < s_->read_timeout)
    return arm(
        std::chrono::duration_cast<std::chrono::milliseconds>(s_->read_timeout - idle) + std::chrono::milliseconds(1),
        &UpstreamCall::read_timer_fired);
  fail(Outcome::kUpstreamTimeout, 504, "upstream timed out\n");
}

void UpstreamCall::budget_spent() {
  close_upstream();
}

void UpstreamCall::on_peer_closed() {
  if (done_) return;
  if (parser_.finish() == http::ResponseParser::Status::kMessage) {
    if (!head_sent_) forward_head();
    rec_->ms = ms_since_start();
    ex_->finish();
    return close_upstream();
  }
  fail(Outcome::kUpstreamReset, 502, "upstream closed the connection\n");
}

void UpstreamCall::on_transport_error(net::SocketError e) {
  if (done_) return;
  if (!connected_) {
    if (e == net::SocketError::kConnectTimeout)
      return timed_out(http::TimerKind::kUpstreamConnect, s_->connect_timeout);
    return fail(Outcome::kUpstreamRefused, 502, "upstream refused the connection\n");
  }
  fail(Outcome::kUpstreamReset, 502, "upstream reset the connection\n");
}

void UpstreamCall::fail(Outcome outcome, int status, std::string_view text) {
  if (done_) return;
  rec_->ms = ms_since_start();
  if (!client_gone_) ex_->abort(outcome, status, text);
  close_upstream();
}

void UpstreamCall::timed_out(http::TimerKind timer, std::chrono::milliseconds timeout) {
  if (done_) return;
  rec_->ms = ms_since_start();
  if (!client_gone_) ex_->abort(Outcome::kUpstreamTimeout, 504, "upstream timed out\n", timer, timeout);
  close_upstream();
}

void UpstreamCall::close_upstream() {
  if (done_) return;
  done_ = true;
  if (rec_->ms == 0) rec_->ms = ms_since_start();  // cut off (budget, close policy): as far as it went
  net::EventLoop& loop = ex_->loop();
  if (timer_ != 0) loop.cancel_timer(timer_);
  timer_ = 0;
  up_->set_handler(nullptr);
  up_->close(false);
  // Freed at the end of the turn, never inside one of its own callbacks; the exchange goes with us.
  net::TcpConnection* c = up_.release();
  loop.defer([c, keep = std::move(self_)] { delete c; });
}

}  // namespace

http::AsyncHandler make_proxy_handler(std::shared_ptr<const ProxySettings> settings) {
  return [settings = std::move(settings)](const http::ExchangePtr& ex) {
    std::make_shared<UpstreamCall>(settings, ex)->start();
  };
}

}  // namespace unbroken::proxy
