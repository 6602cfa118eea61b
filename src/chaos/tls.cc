#include "chaos/tls.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "chaos/chaos_config.h"
#include "net/tls_bio.h"

namespace unbroken::chaos {
namespace {

using net::kBioFailed;
using net::kBioRetry;

bool is_ip(const std::string& host) {
  unsigned char buf[sizeof(in6_addr)];
  return ::inet_pton(AF_INET, host.c_str(), buf) == 1 || ::inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

}  // namespace

std::vector<std::string> cleartext_alerts(std::string_view bytes) {
  // Only alerts and handshake records come before the first encrypted one: a change_cipher_spec
  // (20) or application_data (23) record ends what can be read.
  constexpr unsigned kAlert = 21, kHandshake = 22;
  auto byte = [&bytes](std::size_t i) { return static_cast<unsigned char>(bytes[i]); };
  std::vector<std::string> alerts;
  while (bytes.size() >= 5) {
    std::size_t length = (std::size_t{byte(3)} << 8) | byte(4);
    unsigned type = byte(0);
    if (bytes.size() < 5 + length || (type != kAlert && type != kHandshake)) break;
    if (type == kAlert && length >= 2) alerts.emplace_back(SSL_alert_desc_string_long(byte(6)));
    bytes.remove_prefix(5 + length);
  }
  return alerts;
}

std::shared_ptr<TlsSetup> TlsSetup::create(const std::string& cacert) {
  std::shared_ptr<TlsSetup> s(new TlsSetup);
  s->ctx_ = SSL_CTX_new(TLS_client_method());
  if (!s->ctx_) throw ChaosError("cannot create a TLS context (OpenSSL)");
  // Partial writes: send() hands over what the socket takes, a record at a time, and retries the
  // rest from its own buffer (which moves as it drains).
  SSL_CTX_set_mode(s->ctx_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // Every attempt is a new client: a full handshake each time, as a browser's first visit.
  SSL_CTX_set_session_cache_mode(s->ctx_, SSL_SESS_CACHE_OFF);
  static constexpr unsigned char kAlpn[] = "\x08http/1.1";
  SSL_CTX_set_alpn_protos(s->ctx_, kAlpn, sizeof kAlpn - 1);
  if (cacert.empty()) return s;
  if (std::FILE* f = std::fopen(cacert.c_str(), "r")) {
    std::fclose(f);
  } else {
    throw ChaosError(fmt::format("--cacert {}: {}", cacert, std::strerror(errno)));
  }
  if (SSL_CTX_load_verify_locations(s->ctx_, cacert.c_str(), nullptr) != 1) {
    ERR_clear_error();
    throw ChaosError(fmt::format("--cacert {}: no PEM certificate in it", cacert));
  }
  SSL_CTX_set_verify(s->ctx_, SSL_VERIFY_PEER, nullptr);
  s->verify_ = true;
  return s;
}

TlsSetup::~TlsSetup() {
  SSL_CTX_free(ctx_);
}

SSL* TlsSetup::new_ssl(const Target& t) const {
  SSL* ssl = SSL_new(ctx_);
  if (!ssl) return nullptr;
  bool ip = is_ip(t.name);
  // RFC 6066 3: SNI carries names only, never an address literal.
  if (!ip) SSL_set_tlsext_host_name(ssl, t.name.c_str());
  if (verify_) {
    if (ip) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), t.name.c_str());
    } else {
      SSL_set1_host(ssl, t.name.c_str());
    }
  }
  SSL_set_connect_state(ssl);
  return ssl;
}

std::string TlsSetup::client_hello(const Target& t) const {
  SSL* ssl = new_ssl(t);
  if (!ssl) return {};
  BIO* in = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl, in, out);
  ERR_clear_error();
  // Wants the ServerHello, which never comes: the ClientHello is all that was written.
  (void)SSL_connect(ssl);
  char* data = nullptr;
  long n = BIO_get_mem_data(out, &data);
  std::string hello(data, n > 0 ? static_cast<std::size_t>(n) : 0);
  SSL_free(ssl);
  ERR_clear_error();
  return hello;
}

TlsStream::TlsStream(SSL* ssl, int fd) : ssl_(ssl), fd_(fd) {
  BIO* bio = BIO_new(net::bio_method_for<TlsStream>("unbroken-chaos"));
  BIO_set_data(bio, this);
  SSL_set_bio(ssl_, bio, bio);
}

TlsStream::~TlsStream() {
  // No SSL_shutdown: how the connection ends (FIN, RST, close_notify or not) is the kind's choice.
  SSL_free(ssl_);
}

int TlsStream::bio_read(char* out, int len) {
  ssize_t n;
  do n = ::recv(fd_, out, static_cast<std::size_t>(len), 0);
  while (n < 0 && errno == EINTR);
  if (n >= 0) {
    if (n == 0) eof_ = true;
    return static_cast<int>(n);
  }
  if (errno == EAGAIN || errno == EWOULDBLOCK) return kBioRetry;
  sys_errno_ = errno;
  return kBioFailed;
}

int TlsStream::bio_write(const char* data, int len) {
  ssize_t n;
  do n = ::send(fd_, data, static_cast<std::size_t>(len), MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n >= 0) return static_cast<int>(n);
  if (errno == EAGAIN || errno == EWOULDBLOCK) return kBioRetry;
  sys_errno_ = errno;
  return kBioFailed;
}

int TlsStream::classify(int r) {
  int e = SSL_get_error(ssl_, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return EAGAIN;
  if (e == SSL_ERROR_ZERO_RETURN) return 0;
  unsigned long first = ERR_peek_error();
  ERR_clear_error();
  if (sys_errno_ != 0) return sys_errno_;
  // A FIN without close_notify: OpenSSL 3 calls it "unexpected eof while reading"; to chaos it
  // is the server closing, as on a plain connection.
  if (eof_) return 0;
  if (long v = SSL_get_verify_result(ssl_); v != X509_V_OK) {
    error_ = fmt::format("certificate verify failed: {}", X509_verify_cert_error_string(v));
  } else {
    const char* reason = first ? ERR_reason_error_string(first) : nullptr;
    error_ = reason ? reason : "unknown error";
  }
  return EPROTO;
}

int TlsStream::handshake(int& err) {
  ERR_clear_error();
  int r = SSL_connect(ssl_);
  if (r == 1) return 0;
  err = classify(r);
  return -1;
}

long TlsStream::write(std::string_view bytes, int& err) {
  ERR_clear_error();
  std::size_t n = 0;
  int r = SSL_write_ex(ssl_, bytes.data(), bytes.size(), &n);
  if (r == 1) return static_cast<long>(n);
  err = classify(r);
  if (err == 0) err = EPIPE;  // the server ended the stream: a write to it is a broken pipe
  return -1;
}

long TlsStream::read(char* out, std::size_t room, int& err) {
  ERR_clear_error();
  std::size_t n = 0;
  int r = SSL_read_ex(ssl_, out, room, &n);
  if (r == 1) return static_cast<long>(n);
  err = classify(r);
  return err == 0 ? 0 : -1;
}

}  // namespace unbroken::chaos
