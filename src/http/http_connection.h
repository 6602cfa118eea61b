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
  [[nodiscard]] bool closed() const { return closed_; }
  [[nodiscard]] Phase phase() const { return phase_; }
  [[nodiscard]] std::uint64_t id() const { return id_; }

  // TransportHandler
  void on_data(net::Buffer& in) override;
  void on_peer_closed() override;
  void on_transport_error(net::SocketError e) override;
  void on_written(std::size_t n) override;
  // BodySink
  void on_body(std::string_view chunk) override;

 private:
  friend class Exchange;
  // Called by Exchange (loop thread).
  // content_type: a Content-Type header to send, unless empty.
  void ex_start(Exchange& ex, int status, std::optional<std::uint64_t> length, bool flush,
                std::string_view content_type);
  bool ex_write(Exchange& ex, std::string_view data, bool flush);
  void ex_finish(Exchange& ex);
  void ex_file(Exchange& ex, UniqueFd file, std::uint64_t offset, std::uint64_t length);
  [[nodiscard]] bool ex_writable() const;
  void ex_on_drain(Exchange& ex, std::function<void()> cb);

  void process();
  void begin_request();
  void on_head();
  void on_message();
  void dispatch();
  void run_handler(const Route& route);
  void handler_failed();
  bool flush_output();
  void schedule_flush();
  void account_written(std::size_t n);
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
  void fill_delivery(RequestRecord& rec, std::uint64_t bytes_before);
  // Counters, at the moment the request ends (the acknowledged bytes follow with the record).
  void count(const RequestRecord& rec, std::size_t route_slot);
  void emit_pending();
  void release_callbacks(ExchangePtr ex);
  void clear_deadlines_but_record();
  void graceful_close();
  void start_linger();
  void close_connection(bool abortive);

  void arm(TimerKind kind, std::chrono::milliseconds after);
  void disarm(TimerKind kind);
  void rearm_timer();
  void on_timer();
  [[nodiscard]] std::chrono::milliseconds timeout_of(TimerKind kind) const;

  LoopContext& ctx_;
  std::unique_ptr<net::Transport> transport_;
  std::uint64_t id_;
  std::unique_ptr<RequestParser> parser_;  // from ctx_.parsers while a request is being read
  net::TimerNode timer_;
  std::array<net::TimePoint, kTimerCount> deadlines_;
  net::TimePoint timer_armed_at_{};  // when timer_ fires, if armed (never after the earliest deadline)

  // An answered request's record, held until its delivery can be read (see end_request).
  struct PendingRecord {
    ExchangePtr exchange;  // owns the strings the record points into
    RequestRecord rec;
    std::uint64_t bytes_before;
    net::TimePoint ended;  // when the response was complete
  };
  PoolPtr<PendingRecord> pending_;  // null while there is none: idle connections stay small

  Phase phase_ = Phase::kIdle;
  ExchangePtr exchange_;
  const Route* route_ = nullptr;
  std::size_t route_slot_ = SIZE_MAX;  // per-route counters; SIZE_MAX before the head is read
  bool path_matched_ = false;
  bool dispatched_ = false;
  bool message_done_ = false;
  bool keep_alive_ = true;
  bool close_after_ = false;  // draining: no keep-alive after the current request
  bool closing_ = false;      // an error response is on its way; then linger and close
  bool lingering_ = false;
  bool closed_ = false;
  bool in_process_ = false;
  bool paused_for_output_ = false;
  bool flush_scheduled_ = false;

  int refuse_status_ = 0;
  std::string_view refuse_reason_;  // a literal
  std::uint64_t req_no_ = 0;
  int status_ = 0;
  std::uint64_t bytes_in_ = 0;
  std::uint64_t body_progress_ = 0;  // body bytes since the body timer was last re-armed
  std::uint64_t bytes_out_ = 0;
  std::uint64_t conn_bytes_out_ = 0;     // before the current request: to place the acknowledged bytes
  std::uint64_t rate_window_bytes_ = 0;  // conn_bytes_out_ when the send-rate window began
  net::TimePoint request_start_{};
  net::TimePoint handler_start_{};
  net::TimePoint handler_end_{};
};

}  // namespace unbroken::http
