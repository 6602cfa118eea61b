#pragma once
// Socket calls, normalised at the boundary (libuv): EINTR is retried here, EAGAIN is "would block",
// sends never raise SIGPIPE. Above net/, nobody reads errno.

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "base/unique_fd.h"

namespace unbroken::net {

// Why an address is not well formed, before any name is resolved.
enum class AddressError {
  kNone,
  kNotHostPort,        // no ":PORT", a port that is not a number, or a host with characters no name has
  kPortRange,          // a port above 65535
  kUnbracketedIpv6,    // "::1:80": an IPv6 address needs brackets to tell it from its port
  kNotIpv6InBrackets,  // "[1.2.3.4]:80", "[::1", a scope id ("%lo")
  kEmptyUnixPath,      // "unix:"
  kUnixPathTooLong,    // longer than sockaddr_un's sun_path holds
};
// One line saying what is wrong, for the messages of those who parse addresses from their users.
std::string_view describe(AddressError e);

// The syntax of an address, one definition for SocketAddress::parse and the config's checks:
// "HOST:PORT" with HOST an IPv4 address, a name, "[IPv6]", "*" or empty (every IPv4 interface), or
// "unix:PATH". "unix:" always starts a path, so a host named "unix" cannot be written.
struct AddressSyntax {
  AddressError error = AddressError::kNone;
  bool is_unix = false;    // "unix:...", set even when error says what is wrong with the path
  bool bracketed = false;  // host is the inside of "[...]", an IPv6 literal
  std::string_view host;   // the path when is_unix; empty or "*" for every interface
  std::uint16_t port = 0;
};
[[nodiscard]] AddressSyntax parse_address_syntax(std::string_view text);

class SocketAddress {
 public:
  SocketAddress() = default;
  // "127.0.0.1:8080", "[::1]:8080", "localhost:80", "*:80" / ":80" (all IPv4 interfaces),
  // "unix:/run/app.sock". Names are resolved here (getaddrinfo, blocking): start-up and config only.
  // nullopt when parse_address_syntax() rejects the text or the name does not resolve.
  static std::optional<SocketAddress> parse(std::string_view host_port);
  static SocketAddress from_sockaddr(const sockaddr* sa, socklen_t len);

  [[nodiscard]] const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&ss_); }
  [[nodiscard]] socklen_t size() const { return len_; }
  [[nodiscard]] int family() const { return ss_.ss_family; }
  // 0 for a unix socket, which has none (and set_port() leaves it alone).
  [[nodiscard]] std::uint16_t port() const;
  void set_port(std::uint16_t port);
  // "ip:port", IPv6 in brackets; "unix:/path" for a unix socket.
  [[nodiscard]] std::string to_string() const;

 private:
  sockaddr_storage ss_{};
  socklen_t len_ = 0;
};

// What happened to a connection, as far as the transport can tell.
enum class SocketError {
  kReset,           // ECONNRESET: the peer sent RST
  kBrokenPipe,      // EPIPE: we wrote after the peer was gone
  kTimedOut,        // ETIMEDOUT: the kernel gave up retransmitting
  kRefused,         // connect: ECONNREFUSED (no listener, TCP or unix), ENOENT (no such unix socket file)
  kUnreachable,     // connect: ENETUNREACH, EHOSTUNREACH
  kConnectTimeout,  // connect: our own timeout expired first (no errno; TcpConnection's timer)
  kProtocol,        // TLS: the peer broke the protocol or the handshake failed (TlsSession::error says how)
  kOther,
};
// The one place an errno becomes a SocketError.
SocketError classify(Errno e);

// Listening socket, SOCK_NONBLOCK|SOCK_CLOEXEC, SO_REUSEADDR, TCP_NODELAY (for the sockets it
// accepts, which inherit it), and SO_REUSEPORT when asked.
Result<UniqueFd> listen_tcp(const SocketAddress& addr, bool reuse_port, int backlog = 1024);
// A duplicate (CLOEXEC) of a listening socket made elsewhere (systemd's socket activation), with what
// listen_tcp sets on its own: O_NONBLOCK (on the socket, so every duplicate has it) and TCP_NODELAY.
Result<UniqueFd> share_listener(int fd);
Result<SocketAddress> local_address(int fd);
// accept4 with NONBLOCK|CLOEXEC (TCP_NODELAY comes from the listener). ECONNABORTED and EINTR are retried; EAGAIN means
// the backlog is empty; EMFILE/ENFILE/ENOBUFS/ENOMEM are returned for the caller to count.
Result<UniqueFd> accept_tcp(int listen_fd, SocketAddress* peer);
// A stream socket (TCP, with TCP_NODELAY, or unix), NONBLOCK|CLOEXEC, connecting to addr. The
// descriptor comes back while the connect is still in progress (EINPROGRESS): writability says it
// finished and SO_ERROR how. Errors known at once are returned (ECONNREFUSED or ENOENT on a unix
// socket; EAGAIN there means the listener's backlog is full, not "in progress").
Result<UniqueFd> connect_tcp(const SocketAddress& addr);
// SO_ERROR: the outcome of a finished non-blocking connect, 0 when it succeeded.
Errno socket_error(int fd);
// 0 means EOF.
Result<std::size_t> read_some(int fd, char* buf, std::size_t len);
// sendmsg with MSG_NOSIGNAL: a vanished peer is EPIPE, never a signal. `more` (MSG_MORE) holds a
// partial segment back for what follows at once (a file body after its head: one packet, not two).
Result<std::size_t> send_iov(int fd, const iovec* iov, int count, bool more = false);
// sendfile(2); it has no MSG_NOSIGNAL, hence SIGPIPE is also ignored process-wide.
Result<std::size_t> send_file(int sock, int file, std::uint64_t offset, std::size_t len);
void shutdown_write(int fd);
// Makes close() send RST instead of FIN (SO_LINGER 0): for abortive closes.
void set_abortive_close(int fd);

// The kernel's view of delivery, from SIOCOUTQ (one ioctl).
struct TcpDelivery {
  std::uint64_t bytes_acked = 0;  // of the bytes_written, counted from the start of the connection
};
// What the peer acknowledged of the `bytes_written` sent on fd so far (a FIN after them if fin_sent).
std::optional<TcpDelivery> tcp_delivery(int fd, std::uint64_t bytes_written, bool fin_sent);

}  // namespace unbroken::net
