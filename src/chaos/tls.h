#pragma once
// TLS for `unbroken chaos https://...`: the client context of a run (certificate checking off
// unless --cacert), a real ClientHello's bytes for the handshake kinds, and TlsStream, OpenSSL
// over one of the Client's non-blocking sockets.
//
// No SIGPIPE from any TLS write, whatever the process's disposition: OpenSSL never touches the
// socket itself; TlsStream's own BIO recv()s and send()s with MSG_NOSIGNAL (OpenSSL's socket BIO
// writes with write(2): OpenSSL issue 16399).

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

using SSL = struct ssl_st;
using SSL_CTX = struct ssl_ctx_st;

namespace unbroken::chaos {

struct Target;

// The alerts among the records a server sent before any encrypted one (TLS 1.3 encrypts all after
// its ServerHello, 1.2 after ChangeCipherSpec), by OpenSSL's name ("handshake failure"); stops at
// the first record cut short or not TLS.
std::vector<std::string> cleartext_alerts(std::string_view bytes);

class TlsSetup {
 public:
  // `cacert` empty: no certificate checking (a test target's certificate is seldom trusted).
  // Otherwise the server's chain must lead to a certificate in that PEM file and name the URL's
  // host. Throws ChaosError (one line naming the file) when the file cannot be used.
  static std::shared_ptr<TlsSetup> create(const std::string& cacert);
  ~TlsSetup();
  TlsSetup(const TlsSetup&) = delete;
  TlsSetup& operator=(const TlsSetup&) = delete;

  // A client SSL for `t`: SNI when the host is a name, the host checked when verifying; nullptr
  // only when OpenSSL is out of memory.
  [[nodiscard]] SSL* new_ssl(const Target& t) const;
  // The bytes a real client's handshake starts with: SSL_connect on memory BIOs, its first flight
  // taken. Fresh randoms and key shares each call; empty only when OpenSSL fails.
  [[nodiscard]] std::string client_hello(const Target& t) const;
  [[nodiscard]] bool verifies() const { return verify_; }

 private:
  TlsSetup() = default;
  SSL_CTX* ctx_ = nullptr;
  bool verify_ = false;
};

// One TLS connection over a non-blocking socket that the caller owns, connects and closes. The
// calls look like send()/recv(): bytes done, or -1 with an errno. EAGAIN: call again when the
// socket is ready (either way: a read may need to write and the reverse, so the caller retries on
// any event). EPROTO: TLS itself failed (error() says how, OpenSSL's reason).
class TlsStream {
 public:
  // Takes `ssl` (from TlsSetup::new_ssl), in the connect state.
  TlsStream(SSL* ssl, int fd);
  ~TlsStream();
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;

  // 0 once the handshake is done; -1 and err as above (a close by the server is err = 0).
  [[nodiscard]] int handshake(int& err);
  // Plaintext taken (part of `bytes`: a record at a time), or -1.
  [[nodiscard]] long write(std::string_view bytes, int& err);
  // Plaintext read, 0 at the end of the stream (close_notify or a bare FIN), or -1.
  [[nodiscard]] long read(char* out, std::size_t room, int& err);
  [[nodiscard]] const std::string& error() const { return error_; }

  // For the BIO (tls.cc).
  int bio_read(char* out, int len);
  int bio_write(const char* data, int len);

 private:
  // The errno of an OpenSSL call that returned `r`; 0 for a clean end of stream.
  int classify(int r);

  SSL* ssl_;
  int fd_;
  int sys_errno_ = 0;  // what the socket said, when it failed
  bool eof_ = false;   // recv() returned 0
  std::string error_;
};

}  // namespace unbroken::chaos
