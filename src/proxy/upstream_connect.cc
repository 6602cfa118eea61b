#include "proxy/upstream_connect.h"

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
  return s && s->failed ? s->error : std::string_view();
}

}  // namespace unbroken::proxy
