#pragma once
// The socket abstraction the HTTP layer sees (h2o: http1.c never calls read()). A TcpConnection is
// the real one; tests and fuzzers drive the HTTP layer through an in-memory one.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "base/unique_fd.h"
#include "net/buffer.h"
#include "net/socket.h"

namespace unbroken::net {

// What the HTTP layer may know of a TLS connection (Transport::tls()): enough for the handshake
// phase and the record's TLS fields. The views are OpenSSL's static strings or the transport's own.
struct TlsSession {
  bool handshaking = true;   // the handshake has not finished (nor failed)
  bool failed = false;       // it failed; `error` says why
  bool plain_http = false;   // it failed because the client spoke plain HTTP: output now goes out unencrypted
  bool resumed = false;      // the session was resumed (a ticket), not a full handshake
  std::string_view version;  // "TLSv1.3", once established
  std::string_view cipher;   // "TLS_AES_128_GCM_SHA256", once established
  std::string_view sni;      // the server name the client asked for; empty without one
  std::string_view error;    // OpenSSL's reason ("no shared cipher", "http request", "unknown ca")
  std::chrono::steady_clock::time_point started{};  // when the handshake began (accept), for its duration
};

// Receives the transport's events, always on the loop thread and never from inside a Transport call.
class TransportHandler {
 public:
  virtual ~TransportHandler() = default;
  // New bytes were appended to `in`; consume() what was used, leave the rest for later.
  virtual void on_data(Buffer& in) = 0;
  // The peer sent FIN (EPOLLRDHUP or EOF), whether or not we were reading.
  virtual void on_peer_closed() = 0;
  // The socket failed (RST, EPIPE, ...). The transport is unusable; close it.
  virtual void on_transport_error(SocketError e) = 0;
  // `n` more bytes of queued output reached the kernel.
  virtual void on_written(std::size_t n) = 0;
  // An outgoing connection was established (accepted ones never hear this); output queued while it
  // was connecting is sent after this returns. A failed connect is on_transport_error() instead.
  // Over TLS, "established" means the handshake finished too.
  virtual void on_connected() {}
  // A TLS transport's handshake finished (accepted connections; tls() has the details). A failed
  // one is on_transport_error(): kProtocol, kReset, ..., or on_peer_closed() for a FIN.
  virtual void on_secured() {}
};

class Transport {
 public:
  virtual ~Transport() = default;
  virtual void set_handler(TransportHandler* h) = 0;
  // Bytes read and not yet consumed by the handler.
  virtual Buffer& input() = 0;
  // Queues a copy of `bytes`; nothing is sent until flush().
  virtual void queue(std::string_view bytes) = 0;
  virtual void queue_file(UniqueFd file, std::uint64_t offset, std::uint64_t length) = 0;
  // Sends what the kernel takes now. The count is what reached the kernel in this call; the
  // rest goes when the socket is writable, reported through on_written().
  [[nodiscard]] virtual Result<std::size_t> flush() = 0;
  [[nodiscard]] virtual std::size_t queued_bytes() const = 0;
  // Drops queued output after its first `keep` bytes, unsent (a response cut short, or one that is
  // replaced before any byte of it left).
  virtual void discard_output_after(std::size_t keep) = 0;
  // Reading stops while paused (the kernel buffers, the peer is slowed by TCP); hang-ups are
  // still reported. Resuming reports bytes that arrived meanwhile.
  virtual void set_reading(bool on) = 0;
  virtual void shutdown_write() = 0;
  // Everything the peer sent so far was read and consumed: the last read emptied the socket and
  // input() is empty. A close now sends FIN, not RST (false when the transport cannot tell: TLS).
  [[nodiscard]] virtual bool input_drained() const { return false; }
  // Closes the descriptor; with `abortive` the peer gets RST. No callback follows.
  virtual void close(bool abortive) = 0;
  [[nodiscard]] virtual std::optional<TcpDelivery> delivery() const = 0;
  [[nodiscard]] virtual const std::string& peer() const = 0;
  // nullptr on a plain connection.
  [[nodiscard]] virtual const TlsSession* tls() const { return nullptr; }
};

}  // namespace unbroken::net
