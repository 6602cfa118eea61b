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

class SocketAddress {
 public:
  SocketAddress() = default;
  // "127.0.0.1:8080", "[::1]:8080", "localhost:80", "*:80" / ":80" (all IPv4 interfaces).
  static std::optional<SocketAddress> parse(std::string_view host_port);
  static SocketAddress from_sockaddr(const sockaddr* sa, socklen_t len);

  [[nodiscard]] const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&ss_); }
  [[nodiscard]] socklen_t size() const { return len_; }
  [[nodiscard]] int family() const { return ss_.ss_family; }
  [[nodiscard]] std::uint16_t port() const;
  void set_port(std::uint16_t port);
  // "ip:port", IPv6 in brackets.
  [[nodiscard]] std::string to_string() const;

 private:
  sockaddr_storage ss_{};
  socklen_t len_ = 0;
};

// What happened to a connection, as far as the transport can tell.
enum class SocketError {
  kReset,       // ECONNRESET: the peer sent RST
  kBrokenPipe,  // EPIPE: we wrote after the peer was gone
  kTimedOut,    // ETIMEDOUT: the kernel gave up retransmitting
  kOther,
};
SocketError classify(Errno e);

// Listening socket, SOCK_NONBLOCK|SOCK_CLOEXEC, SO_REUSEADDR, and SO_REUSEPORT when asked.
Result<UniqueFd> listen_tcp(const SocketAddress& addr, bool reuse_port, int backlog = 1024);
Result<SocketAddress> local_address(int fd);
// accept4 with NONBLOCK|CLOEXEC and TCP_NODELAY. ECONNABORTED and EINTR are retried; EAGAIN means
// the backlog is empty; EMFILE/ENFILE/ENOBUFS/ENOMEM are returned for the caller to count.
Result<UniqueFd> accept_tcp(int listen_fd, SocketAddress* peer);
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
