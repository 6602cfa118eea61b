#pragma once
// The real Transport: one socket registered edge-triggered with its loop, accepted or connecting.

#include <chrono>
#include <memory>
#include <vector>

#include "net/event_loop.h"
#include "net/output_queue.h"
#include "net/transport.h"

namespace unbroken::net {

class TcpConnection final : public Transport, public IoHandler {
 public:
  // Reads stop once `max_buffered` unconsumed bytes are waiting (back-pressure on the peer).
  TcpConnection(EventLoop& loop, UniqueFd fd, std::string peer, std::size_t max_buffered);
  ~TcpConnection() override;
  // From a per-thread free list (one loop per thread), like HttpConnection: no malloc per accept.
  static void* operator new(std::size_t size);
  static void operator delete(void* p, std::size_t size);
  [[nodiscard]] Result<void> start();

  // Loop thread. An outgoing connection to `to` (TCP or unix:), already under way. The handler, set
  // before the loop's next turn, hears on_connected() or on_transport_error() with what failed
  // (kRefused, kUnreachable, kConnectTimeout once `timeout` passes, ...; also errors known at once,
  // reported from a later turn like the rest). Output queued meanwhile is held and sent once
  // connected. Like an accepted one, free it at the end of a turn (EventLoop::defer), not inside a
  // callback.
  static std::unique_ptr<TcpConnection> connect(EventLoop& loop, const SocketAddress& to, std::size_t max_buffered,
                                                std::chrono::milliseconds timeout);
  [[nodiscard]] bool connecting() const { return connecting_; }
  // A server learns of a client's hang-up at once, even while it is not reading (EPOLLRDHUP): the
  // client is gone. A client of a server (the proxy's upstream connection) must first read what
  // came before the FIN, which may still wait in the kernel while reading is paused: with this,
  // on_peer_closed() comes only once the input before the FIN has been read.
  void report_hangup_after_input() { hangup_after_input_ = true; }

  [[nodiscard]] std::size_t max_buffered() const { return max_buffered_; }

  void set_handler(TransportHandler* h) override { handler_ = h; }
  Buffer& input() override { return in_; }
  void queue(std::string_view bytes) override;
  // Sends `bytes` now when nothing is queued before them, and queues what the kernel did not take
  // (the TLS transport's records: no copy while the kernel keeps up). The count is what was sent in
  // this call; an error leaves nothing queued.
  [[nodiscard]] Result<std::size_t> write_through(std::string_view bytes);
  void queue_file(UniqueFd file, std::uint64_t offset, std::uint64_t length) override;
  Result<std::size_t> flush() override;
  [[nodiscard]] std::size_t queued_bytes() const override { return out_.size(); }
  void discard_output_after(std::size_t keep) override;
  void set_reading(bool on) override;
  void shutdown_write() override;
  [[nodiscard]] bool input_drained() const override { return fd_ && drained_ && in_.empty(); }
  void close(bool abortive) override;
  [[nodiscard]] std::optional<TcpDelivery> delivery() const override;
  [[nodiscard]] const std::string& peer() const override { return peer_; }

  void on_events(std::uint32_t events) override;
  void on_ready() override;

 private:
  struct ConnectState;
  void on_connect_events(std::uint32_t events);
  void on_connect_timer();
  void fail_connect(SocketError e);
  // An outgoing connection's deferred shutdown_write(), once no output is held any more.
  void shutdown_if_drained();
  // Sends what it can and tells the handler; false once the handler heard an error or closed.
  bool flush_and_report();
  void update_interest();
  // Bytes this turn's write budget still allows (EventLoop::write_budget).
  std::size_t allowance();
  void read_available();
  void read_loop();

  EventLoop& loop_;
  UniqueFd fd_;
  std::uint32_t interest_ = 0;  // next to the descriptor: no padding in an idle connection
  std::string peer_;
  std::size_t max_buffered_;
  TransportHandler* handler_ = nullptr;
  Buffer in_;
  OutputQueue out_;            // bytes segments go with send, file segments with sendfile
  std::uint64_t written_ = 0;  // bytes the kernel took, since the connection began
  // written_ when the kernel last said every byte was acknowledged (delivery() asks no more then).
  mutable std::uint64_t all_acked_at_ = UINT64_MAX;
  // The write budget's turn and what was sent in it; past the budget, the ready list takes over.
  std::uint64_t budget_turn_ = 0;
  std::size_t turn_sent_ = 0;
  ReadyNode ready_{this};
  bool fin_sent_ = false;
  bool reading_ = true;
  bool want_write_ = false;
  bool peer_closed_ = false;
  bool peer_close_reported_ = false;
  bool hangup_after_input_ = false;
  bool drained_ = false;  // the last read loop emptied the socket (EAGAIN, a short read or EOF)
  // Outgoing only: accepted connections leave connect_ empty, so their path costs no allocation.
  bool connecting_ = false;
  std::unique_ptr<ConnectState> connect_;
};

}  // namespace unbroken::net
