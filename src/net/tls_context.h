#pragma once
// OpenSSL contexts: the server's (certificates chosen by SNI, session tickets with keys rotated in
// memory, reloadable on SIGHUP) and the client's (the proxy's https:// upstreams, verified against
// the system store or a CA file). Every TLS connection's SSL object comes from here; the I/O is
// TlsTransport's.

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

using SSL = struct ssl_st;
using SSL_CTX = struct ssl_ctx_st;

namespace unbroken::net {

struct TlsCertFiles {
  std::string cert;  // PEM: the certificate, then its chain
  std::string key;   // PEM: its private key
};

struct TlsServerConfig {
  // The first is the default, for clients that send no SNI or a name no certificate has.
  std::vector<TlsCertFiles> certs;
  // Session ticket keys are made in memory and replaced this often; tickets of the previous key
  // still resume, so a ticket lives between one and two periods.
  std::chrono::seconds ticket_key_period{3600};
  // When the ticket keys' periods start and end; empty: steady_clock. Tests inject their own.
  std::function<std::chrono::steady_clock::time_point()> clock{};
};

// A failure to set up TLS, one line naming the file and the problem ("cert.pem: no such file",
// "key.pem: does not match the certificate in cert.pem").
struct TlsSetupError {
  std::string message;
};

// Once per process: kernel TLS (SSL_sendfile) is usable, or a line saying why not ("the kernel
// has no tls ULP", "OpenSSL was built without kTLS"), for the start-up log. `ulp_list` is the
// kernel's list of TCP upper-layer protocols (a test gives another file). Turns nothing on.
struct KtlsSupport {
  bool available = false;
  std::string reason;
};
KtlsSupport detect_ktls(const std::string& ulp_list = "/proc/sys/net/ipv4/tcp_available_ulp");

class TlsServerContext {
 public:
  // Reads and checks every certificate and key; the first error is returned.
  static std::unique_ptr<TlsServerContext> create(const TlsServerConfig& config, TlsSetupError& error);
  ~TlsServerContext();
  TlsServerContext(const TlsServerContext&) = delete;
  TlsServerContext& operator=(const TlsServerContext&) = delete;

  // Any thread. A new server-side SSL for an accepted connection, with the current certificates;
  // nullptr only when OpenSSL is out of memory.
  [[nodiscard]] SSL* new_ssl();
  // Any thread (SIGHUP). Reads the same files again; on success new connections get the new
  // certificates (open ones keep theirs), on failure the old ones stay and the error is returned.
  [[nodiscard]] bool reload(TlsSetupError& error);

  struct State;       // in tls_context.cc: the SSL_CTXs of one load
  struct TicketKeys;  // in tls_tickets.h: the session ticket key ring

 private:
  TlsServerContext() = default;
  TlsServerConfig config_;
  std::mutex mu_;  // guards current_ against reload
  std::shared_ptr<State> current_;
  std::shared_ptr<TicketKeys> tickets_;  // outlives reloads: tickets resume across them
};

struct TlsClientConfig {
  std::string ca_file;  // empty: the system store
};

class TlsClientContext {
 public:
  static std::unique_ptr<TlsClientContext> create(const TlsClientConfig& config, TlsSetupError& error);
  ~TlsClientContext();
  TlsClientContext(const TlsClientContext&) = delete;
  TlsClientContext& operator=(const TlsClientContext&) = delete;
  // Any thread. A client-side SSL that sends `host` as SNI (unless it is an IP address) and
  // verifies the server's certificate for it.
  // nullptr when OpenSSL is out of memory.
  [[nodiscard]] SSL* new_ssl(std::string_view host);
  // After a failed handshake: why the server's certificate was refused ("certificate has
  // expired", "hostname mismatch"), OpenSSL's static text; empty when it was not (or not checked).
  [[nodiscard]] static std::string_view verify_failure(SSL* ssl);

 private:
  TlsClientContext() = default;
  SSL_CTX* ctx_ = nullptr;
};

}  // namespace unbroken::net
