#pragma once
// TLS as a Transport over a TcpConnection. OpenSSL never touches the socket: its BIO reads the
// ciphertext the TCP connection has read and queues what it writes on the TCP connection, whose
// sends are MSG_NOSIGNAL. So no TLS path can raise SIGPIPE, whatever the process's disposition
// (OpenSSL's socket BIO writes with write(2): OpenSSL issue 16399).
//
// Plaintext queued by the handler is encrypted as the TCP connection drains (a record at most
// 16 KiB), so back-pressure works as on a plain connection: queued_bytes() and on_written() count
// plaintext. A record's plaintext counts as written once all its ciphertext reached the kernel,
// and as acknowledged (delivery()) once the peer acknowledged all of it: a record the client
// could not decrypt in full was not received.

#include <memory>
#include <vector>

#include "net/event_loop.h"
#include "net/output_queue.h"
#include "net/tcp_connection.h"
#include "net/transport.h"

using SSL = struct ssl_st;

namespace unbroken::net {

class TlsTransport final : public Transport, public TransportHandler {
 public:
  enum class Role : std::uint8_t { kServer, kClient };
  // Takes `ssl` (from a TlsServerContext or TlsClientContext) and `tcp`: an accepted connection,
  // started, or an outgoing one, connecting. The handshake starts with the first bytes the client
  // sends (server) or once the TCP connect is done (client).
  TlsTransport(EventLoop& loop, std::unique_ptr<TcpConnection> tcp, SSL* ssl, Role role);
  ~TlsTransport() override;
  TlsTransport(const TlsTransport&) = delete;
  TlsTransport& operator=(const TlsTransport&) = delete;

  // The TCP connection underneath (the proxy's pool asks it whether it is connecting, and so on).
  [[nodiscard]] TcpConnection& tcp() { return *tcp_; }
  // The SSL itself, for what TlsSession does not say (a client's SSL_get_verify_result).
  [[nodiscard]] const SSL* ssl() const { return ssl_; }

  // Transport
  void set_handler(TransportHandler* h) override { handler_ = h; }
  Buffer& input() override { return in_; }
  void queue(std::string_view bytes) override;
  void queue_file(UniqueFd file, std::uint64_t offset, std::uint64_t length) override;
  Result<std::size_t> flush() override;
  [[nodiscard]] std::size_t queued_bytes() const override;
  void discard_output_after(std::size_t keep) override;
  void set_reading(bool on) override;
  // Sends close_notify after the queued output, then FIN.
  void shutdown_write() override;
  void close(bool abortive) override;
  [[nodiscard]] std::optional<TcpDelivery> delivery() const override;
  [[nodiscard]] const std::string& peer() const override { return tcp_->peer(); }
  [[nodiscard]] const TlsSession* tls() const override { return &session_; }

  // TransportHandler: the TCP connection's events.
  void on_data(Buffer& in) override;
  void on_peer_closed() override;
  void on_transport_error(SocketError e) override;
  void on_written(std::size_t n) override;
  void on_connected() override;

  // For the custom BIO (tls_transport.cc): ciphertext in and out.
  int bio_read(char* out, int len);
  int bio_write(const char* data, int len);

 private:
  // A record written: its ciphertext ends at `cipher_end` (bytes queued on the TCP connection since
  // it began), its plaintext at `plain_end`.
  struct Mark {
    std::uint64_t cipher_end;
    std::uint64_t plain_end;
  };
  // The client spoke plain HTTP: output goes straight to the TCP connection, unencrypted.
  [[nodiscard]] bool passthrough() const;
  // Runs the handshake as far as the bytes allow; false once it failed or the handler closed.
  bool handshake();
  void on_handshake_done();
  void fail(SocketError e, std::string_view reason);
  // Decrypts what the TCP connection read and hands it to the handler.
  void decrypt();
  // Encrypts queued plaintext while the TCP connection's queue is short; the error of a failed send.
  Result<void> encrypt();
  [[nodiscard]] bool encrypt_one(std::string_view plain);
  // Encrypts the next records of a file segment; the plaintext bytes done.
  Result<std::size_t> encrypt_file(OutputQueue::Segment& s);
  // Plaintext whose ciphertext reached the kernel since the last call (marks consumed).
  std::size_t take_written();
  // Sends the ciphertext queued on the TCP connection; false once that failed (the handler was told).
  bool send_cipher();
  // A flush's outcome, told to the handler (from an event, never from a Transport call).
  void report(Result<std::size_t> r);
  void send_close_notify();

  EventLoop& loop_;
  std::unique_ptr<TcpConnection> tcp_;
  SSL* ssl_;
  Role role_;
  TransportHandler* handler_ = nullptr;
  TlsSession session_;
  Buffer in_;                          // plaintext read, not yet consumed by the handler
  OutputQueue out_;                    // plaintext not yet encrypted
  std::uint64_t cipher_queued_ = 0;    // ciphertext bytes handed to the TCP connection, ever
  std::uint64_t cipher_written_ = 0;   // of those, what reached the kernel
  std::uint64_t plain_encrypted_ = 0;  // plaintext bytes encrypted, ever
  std::uint64_t plain_written_ = 0;    // of those, in records wholly in the kernel
  // Records not yet known to be acknowledged; [marks_written_, end) are not yet wholly in the kernel.
  // delivery() trims them as it learns what the peer acknowledged.
  mutable std::vector<Mark> marks_;
  mutable std::size_t marks_head_ = 0;
  mutable std::size_t marks_written_ = 0;
  mutable std::uint64_t plain_acked_ = 0;  // plaintext of the records the peer acknowledged
  TimerNode resume_timer_;                 // a resumed read's decrypt, in a later turn (never inside set_reading)
  bool reading_ = true;
  bool shutdown_pending_ = false;  // shutdown_write() came while output was queued
  bool close_notify_sent_ = false;
  std::optional<Errno> write_error_;  // a send from inside OpenSSL's write failed: told at the next step
  bool fin_pending_ = false;          // close_notify is queued: the FIN follows once it reached the kernel
  bool peer_close_reported_ = false;
  bool peer_close_pending_ = false;  // a client's FIN, held until the input before it is decrypted
  bool closed_ = false;
};

}  // namespace unbroken::net
