#pragma once
// A connection's meter: the bytes and times of the current request, the record written when it
// ends, the counters it updates, and what the kernel says was delivered. An answered request's
// record is held until its client's ACKs can have arrived (see end()); a departure's goes out at once,
// or when the handler that still works for the departed client lets go.
//
// Up to kMaxHeld answered records are held together and their delivery read with one question to
// the kernel (SIOCOUTQ): what was acknowledged only grows, so a later reading is as exact for an
// earlier response, and a keep-alive connection asks once per kMaxHeld requests instead of once per
// request (the ioctl was 5% of the server's CPU on 13-byte responses).

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

#include "base/block_pool.h"
#include "http/exchange.h"
#include "http/record.h"
#include "http/request_parser.h"
#include "http/types.h"
#include "net/timer_wheel.h"
#include "net/transport.h"

namespace unbroken::http {

struct LoopContext;

class RequestRecorder {
 public:
  static constexpr std::size_t kNoRoute = SIZE_MAX;

  // How the current request ended, as the connection knows it.
  struct End {
    Outcome outcome = Outcome::kOk;
    std::optional<TimerKind> timer;
    std::chrono::milliseconds timeout{};  // the timer's, when there is one
    int status = 0;                       // the status sent or decided (a departure before the head: 499)
    Phase phase = Phase::kIdle;
    const Request* request = nullptr;  // the exchange's, or the parser's before there is one
    std::string_view client;
    std::size_t route_slot = kNoRoute;
    bool dispatched = false;
  };

  // transport: the connection's, for the delivery figures; it outlives the recorder.
  RequestRecorder(LoopContext& ctx, const net::Transport& transport, std::uint64_t conn_id)
      : ctx_(ctx), transport_(transport), conn_id_(conn_id) {}

  // A request's first byte: counting starts again (the connection emits the held record first).
  void begin();
  void add_in(std::size_t n) { bytes_in_ += n; }
  // Bytes the transport wrote, for this request and the connection.
  void add_out(std::size_t n);
  void handler_started() { handler_start_ = net::Clock::now(); }
  void handler_finished() { handler_end_ = net::Clock::now(); }

  static constexpr std::size_t kMaxHeld = 4;
  // Builds the record, counts it, and holds it (returns true when it is the first held: arm the
  // record timer), emits it, or leaves it with `ex` for its handler's last owner
  // (Exchange::~Exchange). Sets *cancelled when a handler was still running for a request that did
  // not end well.
  bool end(const End& e, const ExchangePtr& ex, bool* cancelled);
  // The held records, if any, oldest first: delivery read now (unless the socket is gone), then
  // written. The last owner of an exchange hands the request's storage back to the loop's pool.
  void emit_pending(bool socket_gone);
  // The record timer's question: emits the held records unless the newest response still has
  // unacknowledged bytes and ended less than `limit` ago. One reading of the kernel's figures
  // serves both the question and the records. True when they went out (or there were none).
  bool emit_if_delivered(net::TimePoint now, std::chrono::milliseconds limit);
  [[nodiscard]] bool has_pending() const { return held_ != nullptr; }
  // How long ago the newest held response was complete (has_pending() only).
  [[nodiscard]] net::TimePoint::duration held_for(net::TimePoint now) const { return now - held_->ended; }
  // False when the next request must see the held records out first: the ring is full, or an
  // exchange in it holds more than its request (a handler's state, an upstream's, a gzip stream),
  // which is let go as soon as the next request begins, as before the ring.
  [[nodiscard]] bool can_hold_more() const { return held_ == nullptr || (held_->count < kMaxHeld && held_->plain); }

  [[nodiscard]] LoopContext& ctx() const { return ctx_; }
  [[nodiscard]] std::uint64_t conn_id() const { return conn_id_; }
  [[nodiscard]] std::uint64_t req_no() const { return req_no_; }
  [[nodiscard]] std::uint64_t bytes_out() const { return bytes_out_; }
  [[nodiscard]] std::uint64_t conn_bytes_out() const { return conn_bytes_out_; }

 private:
  struct PendingRecord {
    ExchangePtr exchange;  // owns the strings the record points into
    RequestRecord rec;
    std::uint64_t bytes_before;
  };
  // Pointers, each record in a block of its own: a connection holding one record (most often an
  // idle one's last) takes one record's memory, not kMaxHeld's.
  struct Held {
    std::array<PoolPtr<PendingRecord>, kMaxHeld> at;
    std::size_t count = 0;
    bool plain = true;
    net::TimePoint ended;  // when the newest response was complete
  };
  void emit(const std::optional<net::TcpDelivery>& d);
  void fill_delivery(RequestRecord& rec, std::uint64_t bytes_before) const;
  void fill_delivery(RequestRecord& rec, std::uint64_t bytes_before, const net::TcpDelivery& d) const;
  // Counters, at the moment the request ends (the acknowledged bytes follow with the record).
  void count(const RequestRecord& rec, std::size_t route_slot);

  LoopContext& ctx_;
  const net::Transport& transport_;
  std::uint64_t conn_id_;
  PoolPtr<Held> held_;  // null while there is none: idle connections stay small
  std::uint64_t req_no_ = 0;
  std::uint64_t bytes_in_ = 0;
  std::uint64_t bytes_out_ = 0;
  std::uint64_t conn_bytes_out_ = 0;  // before the current request: to place the acknowledged bytes
  net::TimePoint request_start_{};
  net::TimePoint handler_start_{};
  net::TimePoint handler_end_{};
};

}  // namespace unbroken::http
