#pragma once
// The HTTP/1.1 connection state machine. It always knows its Phase; every request or connection
// that ends without a complete response gets one Outcome and one record. It sees only a Transport,
// so tests and fuzzers can drive it in memory.

#include <array>
#include <memory>
#include <optional>

#include "base/block_pool.h"
#include "http/exchange.h"
#include "http/loop_context.h"
#include "http/record.h"
#include "http/request_parser.h"
#include "http/request_recorder.h"
#include "net/transport.h"

namespace unbroken::http {

class HttpConnection final : public net::TransportHandler, public BodySink {
 public:
  HttpConnection(LoopContext& ctx, std::unique_ptr<net::Transport> transport, std::uint64_t id);
  ~HttpConnection() override;
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  // Arms the wait for the first request.
  void start();
  // Answers the first request with `status` and `reason`, then closes (a limit was reached).
  void refuse(int status, std::string_view reason) {
    refuse_status_ = status;
    refuse_reason_ = reason;
  }
  // Graceful shutdown: an idle connection closes now; a busy one finishes its request (with
  // Connection: close) within the drain timeout.
  void begin_drain();
  [[nodiscard]] bool closed() const { return lifecycle_ == Lifecycle::kClosed; }
  [[nodiscard]] Phase phase() const { return phase_; }
  [[nodiscard]] std::uint64_t id() const { return recorder_.conn_id(); }
  // Where its owner keeps it (the server's per-loop list), so that removing it needs no search.
  [[nodiscard]] std::uint32_t owner_slot() const { return owner_slot_; }
  void set_owner_slot(std::uint32_t slot) { owner_slot_ = slot; }
  // From a per-thread free list (one loop per thread): a connection per request reuses the blocks
  // of the ones before it instead of going to malloc.
  static void* operator new(std::size_t size);
  static void operator delete(void* p, std::size_t size);

  // TransportHandler
  void on_data(net::Buffer& in) override;
  void on_peer_closed() override;
  void on_transport_error(net::SocketError e) override;
  void on_written(std::size_t n) override;
  void on_secured() override;
  // BodySink
  void on_body(std::string_view chunk) override;

 private:
  friend class Exchange;
  // Called by Exchange (loop thread).
  // content_type: a Content-Type header to send, unless empty.
  void ex_start(Exchange& ex, int status, std::optional<std::uint64_t> length, bool flush,
                std::string_view content_type);
  void ex_start_upstream(Exchange& ex, const UpstreamHead& up, std::optional<std::uint64_t> length);
  // Queues a serialised head (ours or an upstream's) and enters the response phase.
  void queue_head(Exchange& ex, const std::string& head, bool flush);
  void ex_own_timers(Exchange& ex);
  void ex_abort(Exchange& ex, Outcome outcome, int status, std::string_view text, std::optional<TimerKind> timer,
                std::chrono::milliseconds timeout);
  bool ex_write(Exchange& ex, std::string_view data, bool flush);
  void ex_finish(Exchange& ex);
  void ex_file(Exchange& ex, UniqueFd file, std::uint64_t offset, std::uint64_t length);
  [[nodiscard]] bool ex_writable() const;
  void ex_on_drain(Exchange& ex, std::function<void()> cb);
  void ex_pause_body(Exchange& ex);
  // The tunnel (Exchange::start_tunnel), in http_connection_tunnel.cc.
  bool ex_start_tunnel(Exchange& ex, const UpstreamHead& up, std::function<void(std::string_view)> client_bytes);
  bool ex_tunnel_write(Exchange& ex, std::string_view bytes);
  void ex_end_tunnel(Exchange& ex, Outcome outcome, std::optional<TimerKind> timer, std::chrono::milliseconds timeout);
  // Hands the client's buffered bytes to the tunnel (phase kTunnel), unless it paused them.
  void relay_client_input();
  void ex_resume_body(Exchange& ex);
  // Unpauses the body; delivers what was held while the handler still takes it (`deliver`).
  void resume_body(bool deliver);
  void deliver_body(std::string_view chunk);

  void process();
  void begin_request();
  void on_head();
  void on_message();
  void dispatch();
  void run_handler(const Route& route);
  void handler_failed();
  bool flush_output();
  void schedule_flush();
  // Below the low-water mark: reading resumes and a producer waiting (on_drain) goes on; false once closed.
  bool notify_drained();
  void account_written(std::size_t n);
  // Open -> Draining -> Closing -> Lingering -> Closed, never back, any step skippable but Lingering
  // (only after Closing): a connection that drains closes after its request; one that closes sends
  // what is queued, lingers (reads and drops) and closes. Anything else is a broken invariant and
  // aborts (advance).
  enum class Lifecycle : std::uint8_t { kOpen, kDraining, kClosing, kLingering, kClosed };
  void advance(Lifecycle to);
  // An error answer or a close is on its way (also while lingering and once closed).
  [[nodiscard]] bool closing() const { return lifecycle_ >= Lifecycle::kClosing; }
  void maybe_complete();
  // Arms or clears the send and send-rate timers after a write; `queued` is what still waits.
  void watch_delivery(std::size_t queued, bool progressed);
  void update_handler_timer(std::size_t queued);
  [[nodiscard]] const Request& current_request() const;
  void update_reading();

  // Answers `status` with Connection: close and closes gracefully.
  void reject(int status, Outcome outcome, std::string_view reason, std::optional<TimerKind> timer = std::nullopt);
  // Writes the record for the current request (or connection), updates counters, resets.
  void end_request(Outcome outcome, std::optional<TimerKind> timer = std::nullopt, int status_override = 0);
  void emit_pending();
  void release_callbacks(ExchangePtr ex);
  void clear_deadlines_but_record();
  void graceful_close();
  void start_linger();
  // The lingering close can be skipped: see start_linger().
  [[nodiscard]] bool can_close_at_once() const;
  void close_connection(bool abortive);

  void arm(TimerKind kind, std::chrono::milliseconds after);
  void disarm(TimerKind kind);
  void rearm_timer();
  void on_timer();
  [[nodiscard]] std::chrono::milliseconds timeout_of(TimerKind kind) const;

  static constexpr net::TimePoint kNever = net::TimePoint::max();
  // How long an answered request's record waits for the client's ACKs before SIOCOUTQ is first
  // read. A held record keeps its exchange (about 1 KiB) until then, so the first look is soon (two
  // wheel ticks: about a loopback or LAN round trip); while bytes are still unacknowledged the wait
  // doubles, up to kRecordMaxDelay, so a distant client is asked a few times, not every tick.
  static constexpr std::chrono::milliseconds kRecordDelay{16};
  static constexpr std::chrono::milliseconds kRecordMaxDelay{100};

  // The loop's context and the connection's id are the recorder's (an idle connection is this object).
  [[nodiscard]] LoopContext& ctx() const { return recorder_.ctx(); }
  std::unique_ptr<net::Transport> transport_;
  std::unique_ptr<RequestParser> parser_;  // from ctx().parsers while a request is being read
  net::TimerNode timer_;
  // The connection's own timers, a slot each: the upstream and tunnel kinds are the proxy's, never
  // armed here, and take no slot (rearm_timer scans every slot).
  static constexpr std::size_t kOwnTimerCount = static_cast<std::size_t>(TimerKind::kSendRate) + 4;
  static constexpr std::size_t slot(TimerKind k) {
    auto i = static_cast<std::size_t>(k);  // the upstream kinds past kSendRate never come here
    return k == TimerKind::kTlsHandshake ? kOwnTimerCount - 3
           : k == TimerKind::kLinger     ? kOwnTimerCount - 2
           : k == TimerKind::kRecord     ? kOwnTimerCount - 1
                                         : i;
  }
  net::TimePoint& deadline(TimerKind k) { return deadlines_[slot(k)]; }
  std::array<net::TimePoint, kOwnTimerCount> deadlines_;
  net::TimePoint timer_armed_at_{};  // when timer_ fires, if armed (never after the earliest deadline)
  RequestRecorder recorder_;

  ExchangePtr exchange_;
  const Route* route_ = nullptr;
  // Body bytes the parser had already taken when the handler paused, delivered on resume. At most one
  // parse of the input buffer (bounded by max_buffered_input); none on the steady path.
  std::unique_ptr<std::string> held_body_;
  [[nodiscard]] bool holding_body() const { return body_paused_ || (held_body_ && !held_body_->empty()); }
  std::string_view refuse_reason_;                // a literal
  std::uint64_t body_progress_ = 0;               // body bytes since the body timer was last re-armed
  std::uint64_t rate_window_bytes_ = 0;           // connection bytes out when the send-rate window began
  std::chrono::milliseconds upstream_timeout_{};  // the upstream timer's setting, for the record

  // The small fields together, without padding between them: an idle connection is this object.
  static constexpr std::uint32_t kNoRouteSlot = UINT32_MAX;
  std::uint32_t route_slot_ = kNoRouteSlot;  // per-route counters; none before the head is read
  std::uint32_t owner_slot_ = 0;
  std::int16_t status_ = 0;
  std::int16_t refuse_status_ = 0;
  Phase phase_ = Phase::kIdle;
  Lifecycle lifecycle_ = Lifecycle::kOpen;
  bool path_matched_ = false;
  bool dispatched_ = false;
  bool message_done_ = false;
  bool keep_alive_ = true;
  // The last request ended well, read whole, and asked to close (Connection: close, HTTP/1.0):
  // its client sends nothing more on this connection (RFC 9112 9.6).
  bool client_done_ = false;
  bool close_when_processed_ = false;  // closing at once, when process() returns (start_linger)
  bool in_process_ = false;
  bool paused_for_output_ = false;
  bool flush_scheduled_ = false;
  bool body_paused_ = false;    // the handler paused the body: no reading, no delivery (see pause_body)
  bool body_end_held_ = false;  // the body ended while paused: end() goes after held_body_
};

}  // namespace unbroken::http
