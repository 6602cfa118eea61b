#pragma once
// One chaos client: a connection slot that performs its kind's behaviour again and again until the
// run ends, recording what the server did each time.

#include <chrono>
#include <cstdint>
#include <memory>
#include <random>
#include <string>

#include "base/unique_fd.h"
#include "chaos/kind.h"
#include "chaos/tls.h"
#include "http/request_serializer.h"
#include "http/response_parser.h"
#include "net/event_loop.h"

namespace unbroken::chaos {

class Runner;

class Client final : public net::IoHandler {
 public:
  Client(Runner& runner, Kind kind, std::uint64_t seed);
  ~Client() override;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Starts the first attempt (or waits for the runner's rate limit).
  void begin();
  // The run is over: an attempt still waiting for the server counts as `nothing`; closes.
  void end_of_run();
  void on_events(std::uint32_t events) override;

 private:
  enum class Step : std::uint8_t { kWaiting, kConnecting, kHandshaking, kActive, kStalled, kDone };
  // Chaos counts body bytes and never keeps them: no limit on the body, the usual ones on the head.
  static constexpr http::ParserLimits kResponseLimits{64 * 1024, 256, UINT64_MAX};

  void start_attempt();
  void on_connected();
  void on_timer();
  void read_available();
  void on_response_bytes(std::string_view data);
  void on_eof();
  void on_error(int err);
  // Sends what the socket takes now; the rest waits for writability. False when the socket failed.
  bool send(std::string_view bytes);
  void flush_pending();
  // The one place bytes meet the socket: through TLS when tls_ is set. Bytes done, or -1 and err
  // (EAGAIN: not now; EPROTO: TLS failed, tls_->error() says how); read_some: 0 at the end.
  long write_some(std::string_view bytes, int& err);
  long read_some(char* out, std::size_t room, int& err);

  // TLS (client_tls.cc). An https:// target: every kind but the handshake kinds runs over TLS.
  [[nodiscard]] bool speaks_tls() const;
  // The handshake kinds: raw bytes where the handshake belongs; what the server sends is kept, not parsed.
  [[nodiscard]] bool raw_handshake() const { return tls_only(kind_) && kind_ != Kind::kPlainToTls; }
  void start_handshake();
  void continue_handshake();
  void handshake_failed(int err);
  void tls_failed(std::string_view reason);
  // The first flight of a handshake kind.
  void start_tls_kind();
  // What the server sent to a handshake kind: its first bytes, for the alerts among them.
  void keep_server_bytes(std::string_view data);

  // Misbehaving kinds: the attempt ends with what the server did.
  void react(Reaction r, int status = 0);
  // The client leaves by design: FIN, or RST when `reset`.
  void leave(bool reset);
  // Good clients.
  void send_good_request();
  void good_answered();
  void good_error(std::string_view kind);

  void close_socket(bool reset);
  void next_attempt(std::chrono::milliseconds after = std::chrono::milliseconds{0});
  void arm(std::chrono::milliseconds after);
  // A whole request head of this kind's; with a body framing, an octet-stream body of `length` follows.
  std::string request(std::string_view method, http::BodyFraming framing = http::BodyFraming::kNone,
                      std::uint64_t length = 0) const;
  // The request line, Host and User-Agent, the head not yet ended.
  void start_request(std::string& out, std::string_view method) const;
  double since_attempt_ms() const;

  Runner& runner_;
  Kind kind_;
  std::mt19937_64 rng_;
  UniqueFd fd_;
  std::unique_ptr<TlsStream> tls_;  // https: over fd_, from the handshake on; reset with the socket
  std::string server_bytes_;        // handshake kinds: what the server sent (its first bytes)
  Step step_ = Step::kWaiting;
  net::TimerNode timer_;
  std::string out_;  // bytes the socket did not take yet
  http::ResponseParser reader_{kResponseLimits};
  net::TimePoint attempt_start_{};
  // Per attempt.
  std::uint64_t read_so_far_ = 0;
  std::uint64_t read_target_ = 0;  // abort-response, rst-response: leave after this many bytes
  std::string trickle_;            // slowloris, slow-body, tls-slow-handshake: what is still to be sent
  std::size_t trickle_pos_ = 0;
  bool paced_ = false;  // slow-read: reading waits for the next tick
  // Good clients.
  net::TimePoint sent_at_{};
  bool waiting_ = false;  // a good request is out
  std::uint32_t requests_on_connection_ = 0;
  std::uint64_t generation_ = 0;  // one more for every socket closed
};

}  // namespace unbroken::chaos
