#include "proxy/upstream_connect.h"

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include "base/check.h"
#include "net/tls_transport.h"

namespace unbroken::proxy {

std::unique_ptr<net::Transport> connect_upstream(net::EventLoop& loop, const net::SocketAddress& to,
                                                 net::TlsClientContext* tls, std::string_view tls_host,
                                                 std::size_t max_buffered, std::chrono::milliseconds timeout) {
  std::unique_ptr<net::TcpConnection> tcp = net::TcpConnection::connect(loop, to, max_buffered, timeout);
  // Its FIN ends a response only once what came before it is read (reading pauses for a slow
  // client, and a close-delimited body ends with the FIN).
  tcp->report_hangup_after_input();
  if (!tls) return tcp;
  SSL* ssl = tls->new_ssl(tls_host);
  UB_CHECK(ssl != nullptr);  // OpenSSL is out of memory
  return std::make_unique<net::TlsTransport>(loop, std::move(tcp), ssl, net::TlsTransport::Role::kClient);
}

std::string_view tls_failure(const net::Transport& t) {
  const net::TlsSession* s = t.tls();
  if (!s || !s->failed) return {};
  // OpenSSL's reason for a certificate that did not verify is only "certificate verify failed";
  // the verification's own says which check failed. Static strings both.
  long v = SSL_get_verify_result(static_cast<const net::TlsTransport&>(t).ssl());
  return v != X509_V_OK ? std::string_view(X509_verify_cert_error_string(v)) : s->error;
}

}  // namespace unbroken::proxy
