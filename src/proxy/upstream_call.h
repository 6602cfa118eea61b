#pragma once
// One proxied request and its response (ub_proxy's own; the rest of the server sees only
// make_proxy_handler). The call keeps itself alive (self_) until it is done with the upstream
// connection (closed, or parked in the pool) and the client has every byte it is owed or has
// gone; the exchange's callbacks hold it weakly.
//
// upstream_call.cc is the upstream side: attempts (pooled or new connection, retries), the
// response parser, the timers, failures. upstream_call_body.cc is what flows between the two
// sides: the request body (streamed with back-pressure, or read whole into a spool first) and the
// response body (written as it comes, or held in a spool while the client is slower than the
// upstream, so the upstream is released as soon as it has answered).

#include <memory>
#include <optional>
#include <string>

#include "http/exchange.h"
#include "http/response_parser.h"
#include "net/event_loop.h"
#include "net/transport.h"
#include "proxy/proxy_handler.h"
#include "proxy/spool.h"

namespace unbroken::proxy {

class UpstreamPool;
UpstreamPool& pool_of(net::EventLoop& loop, const ProxySettings& s);

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
  // How the response ends for the client once what is held for it has been written.
  struct Ending {
    http::Outcome outcome;
    int status;
    std::string_view text;
    std::optional<http::TimerKind> timer;
    std::chrono::milliseconds timeout;
  };

  // upstream_call.cc
  void first_attempt();
  void attempt(std::size_t upstream, bool fresh);
  bool retry_after_failure(net::SocketError e);
  void request_complete();
  void forward_head();
  void message_complete(const net::Buffer& left);
  void client_left();
  void arm(http::TimerKind kind, std::chrono::milliseconds after);
  void on_timer();
  void fail(http::Outcome outcome, int status, std::string_view text,
            std::optional<http::TimerKind> timer = std::nullopt, std::chrono::milliseconds timeout = {});
  void release_upstream(bool park);
  void close_connection();
  void end_attempt();
  void end_if_done();
  void queue_upstream(std::string_view bytes);
  double ms_since_start() const;
  bool flush();
  void watch_send();
  void resume_reading();

  // upstream_call_body.cc
  void take_body();
  void stream_body(std::string_view chunk);
  void end_streamed_body();
  void buffer_body(std::string_view chunk);
  void send_buffered_body();
  void queue_body_bytes(std::string_view chunk);
  void end_body();
  void hold(std::string_view chunk);
  void write_held();
  void watch_client_output();
  void end_response(const Ending& e);
  [[nodiscard]] bool replayable() const;

  std::shared_ptr<const ProxySettings> s_;
  http::ExchangePtr ex_;
  std::shared_ptr<UpstreamCall> self_;
  std::unique_ptr<net::Transport> up_;  // plain TCP or TLS over it (upstream_connect.h)
  http::ResponseParser parser_;
  std::string head_;  // the upstream request head, kept for a retry
  std::string scratch_;
  http::UpstreamRecord* rec_ = nullptr;  // the exchange's typed state, read by the recorder
  std::size_t upstream_ = 0;
  net::TimePoint started_{};
  // One timer for the phase the call is in: connect (the TCP connect is also bounded by the
  // connection's own timer; this one covers an https upstream's handshake too); then send (while
  // the request goes up), header (request sent -> response head), read (a pause in the response),
  // and the abort budget after the client left. Moved lazily from the last progress.
  net::TimerNode timer_;
  http::TimerKind timer_kind_ = http::TimerKind::kUpstreamHeader;
  bool budget_timer_ = false;
  net::TimePoint last_read_{};
  net::TimePoint last_write_{};
  std::uint64_t discarded_ = 0;
  std::uint64_t attempt_bytes_in_ = 0;  // rec_->bytes_in when this attempt began
  // The request body read whole before an upstream is chosen (request buffering), and the
  // response bytes the client has not taken yet (response buffering); made when first needed.
  std::optional<Spool> body_;
  std::optional<Spool> held_;
  std::optional<Ending> ending_;  // the upstream failed after the head: cut once held_ is written
  bool buffer_response_ = false;
  bool body_sent_any_ = false;  // a byte of the body went to the current attempt
  bool drain_watched_ = false;
  bool message_done_ = false;  // the upstream's response is complete; finish() once held_ is written
  bool in_flight_ = false;     // started() told to the group, ended() not yet
  bool connected_ = false;
  bool request_sent_ = false;
  bool head_sent_ = false;
  bool body_paused_ = false;
  bool reading_paused_ = false;  // by us, while the client is slower than the upstream
  bool client_gone_ = false;
  bool done_ = false;  // done with the upstream connection
  bool ended_ = false;
};

}  // namespace unbroken::proxy
