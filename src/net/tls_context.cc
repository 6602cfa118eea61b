#include "net/tls_context.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

namespace unbroken::net {
namespace {

// Mozilla's "intermediate" list for TLS 1.2 (forward secrecy, AEAD only); TLS 1.3's suites are
// OpenSSL's defaults, all of them strong.
constexpr const char* kCiphers12 =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

std::string last_error() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  const char* r = e ? ERR_reason_error_string(e) : nullptr;
  return r ? r : "unknown error";
}

}  // namespace

struct TlsServerContext::State {
  ~State() {
    for (SSL_CTX* c : ctxs) SSL_CTX_free(c);
  }
  std::vector<SSL_CTX*> ctxs;  // one per certificate, the first the default
};
struct TlsServerContext::TicketKeys {};

KtlsSupport detect_ktls() {
  return {false, "not checked yet"};
}

std::unique_ptr<TlsServerContext> TlsServerContext::create(const TlsServerConfig& config, TlsSetupError& error) {
  std::unique_ptr<TlsServerContext> c(new TlsServerContext);
  c->config_ = config;
  if (!c->reload(error)) return nullptr;
  return c;
}

TlsServerContext::~TlsServerContext() = default;

bool TlsServerContext::reload(TlsSetupError& error) {
  auto state = std::make_shared<State>();
  for (const TlsCertFiles& files : config_.certs) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    state->ctxs.push_back(ctx);
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_cipher_list(ctx, kCiphers12);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (SSL_CTX_use_certificate_chain_file(ctx, files.cert.c_str()) != 1) {
      error.message = files.cert + ": " + last_error();
      return false;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, files.key.c_str(), SSL_FILETYPE_PEM) != 1) {
      error.message = files.key + ": " + last_error();
      return false;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
      error.message = files.key + ": does not match the certificate in " + files.cert;
      ERR_clear_error();
      return false;
    }
  }
  if (state->ctxs.empty()) {
    error.message = "no certificate";
    return false;
  }
  std::lock_guard lock(mu_);
  current_ = std::move(state);
  return true;
}

SSL* TlsServerContext::new_ssl() {
  std::shared_ptr<State> s;
  {
    std::lock_guard lock(mu_);
    s = current_;
  }
  return SSL_new(s->ctxs.front());
}

std::unique_ptr<TlsClientContext> TlsClientContext::create(const TlsClientConfig& config, TlsSetupError& error) {
  std::unique_ptr<TlsClientContext> c(new TlsClientContext);
  c->ctx_ = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_min_proto_version(c->ctx_, TLS1_2_VERSION);
  SSL_CTX_set_verify(c->ctx_, SSL_VERIFY_PEER, nullptr);
  int ok = config.ca_file.empty() ? SSL_CTX_set_default_verify_paths(c->ctx_)
                                  : SSL_CTX_load_verify_locations(c->ctx_, config.ca_file.c_str(), nullptr);
  if (ok != 1) {
    error.message = (config.ca_file.empty() ? std::string("the system store") : config.ca_file) + ": " + last_error();
    return nullptr;
  }
  return c;
}

TlsClientContext::~TlsClientContext() {
  SSL_CTX_free(ctx_);
}

SSL* TlsClientContext::new_ssl(std::string_view host) {
  SSL* ssl = SSL_new(ctx_);
  std::string h(host);
  SSL_set_tlsext_host_name(ssl, h.c_str());
  SSL_set1_host(ssl, h.c_str());
  return ssl;
}

}  // namespace unbroken::net
