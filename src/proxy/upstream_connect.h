#pragma once
// A new connection to one upstream: plain TCP, or TLS over it for an https:// upstream
// (net::TlsTransport, Role::kClient). The pool, the call, the tunnel and the active check hold
// either as a net::Transport; what is TCP's own (report_hangup_after_input) is set here.

#include <chrono>
#include <memory>
#include <string_view>

#include "net/event_loop.h"
#include "net/tcp_connection.h"
#include "net/tls_context.h"
#include "net/transport.h"

namespace unbroken::proxy {

// Loop thread. A connection under way to `to`, over TLS when `tls` is set (verified for
// `tls_host`, which is also sent as SNI). The handler, set before the loop's next turn, hears
// on_connected() once it is established (after the handshake, over TLS) or on_transport_error():
// a failed handshake is kProtocol, and tls()->error says why. `timeout` bounds the TCP connect
// only: the caller's own timer must bound the handshake too.
[[nodiscard]] std::unique_ptr<net::Transport> connect_upstream(net::EventLoop& loop, const net::SocketAddress& to,
                                                               net::TlsClientContext* tls, std::string_view tls_host,
                                                               std::size_t max_buffered,
                                                               std::chrono::milliseconds timeout);

// Why an https upstream's handshake failed: the certificate verification's reason ("hostname
// mismatch", "certificate has expired"), or OpenSSL's for any other failure; "" for a plain
// connection or one whose handshake did not fail. Static text.
[[nodiscard]] std::string_view tls_failure(const net::Transport& t);

}  // namespace unbroken::proxy
