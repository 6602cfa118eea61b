#include "net/socket.h"

#include <arpa/inet.h>
#include <linux/sockios.h>
#include <netinet/tcp.h>
#include <netdb.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace unbroken::net {

std::optional<SocketAddress> SocketAddress::parse(std::string_view host_port) {
  auto colon = host_port.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  std::string_view host = host_port.substr(0, colon);
  std::string_view port_s = host_port.substr(colon + 1);
  unsigned port = 0;
  auto [p, ec] = std::from_chars(port_s.data(), port_s.data() + port_s.size(), port);
  if (ec != std::errc() || p != port_s.data() + port_s.size() || port > 65535 || port_s.empty()) return std::nullopt;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty() || host == "*") host = "0.0.0.0";

  SocketAddress out;
  std::string h(host);
  sockaddr_in v4{};
  sockaddr_in6 v6{};
  if (::inet_pton(AF_INET, h.c_str(), &v4.sin_addr) == 1) {
    v4.sin_family = AF_INET;
    std::memcpy(&out.ss_, &v4, sizeof v4);
    out.len_ = sizeof v4;
  } else if (::inet_pton(AF_INET6, h.c_str(), &v6.sin6_addr) == 1) {
    v6.sin6_family = AF_INET6;
    std::memcpy(&out.ss_, &v6, sizeof v6);
    out.len_ = sizeof v6;
  } else {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (::getaddrinfo(h.c_str(), nullptr, &hints, &res) != 0 || res == nullptr) return std::nullopt;
    std::memcpy(&out.ss_, res->ai_addr, res->ai_addrlen);
    out.len_ = res->ai_addrlen;
    ::freeaddrinfo(res);
  }
  out.set_port(static_cast<std::uint16_t>(port));
  return out;
}

SocketAddress SocketAddress::from_sockaddr(const sockaddr* sa, socklen_t len) {
  SocketAddress out;
  std::memcpy(&out.ss_, sa, std::min<std::size_t>(len, sizeof out.ss_));
  out.len_ = len;
  return out;
}

std::uint16_t SocketAddress::port() const {
  if (ss_.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&ss_)->sin_port);
  if (ss_.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&ss_)->sin6_port);
  return 0;
}

void SocketAddress::set_port(std::uint16_t port) {
  if (ss_.ss_family == AF_INET) reinterpret_cast<sockaddr_in*>(&ss_)->sin_port = htons(port);
  if (ss_.ss_family == AF_INET6) reinterpret_cast<sockaddr_in6*>(&ss_)->sin6_port = htons(port);
}

std::string SocketAddress::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  std::string out;
  if (ss_.ss_family == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&ss_)->sin_addr, buf, sizeof buf);
    out.append(buf);
  } else if (ss_.ss_family == AF_INET6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&ss_)->sin6_addr, buf, sizeof buf);
    out.append("[").append(buf).append("]");
  } else {
    return "unknown";
  }
  out.append(":").append(std::to_string(port()));
  return out;
}

SocketError classify(Errno e) {
  switch (e.code) {
    case ECONNRESET: return SocketError::kReset;
    case EPIPE: return SocketError::kBrokenPipe;
    case ETIMEDOUT: return SocketError::kTimedOut;
    default: return SocketError::kOther;
  }
}

Result<UniqueFd> listen_tcp(const SocketAddress& addr, bool reuse_port, int backlog) {
  UniqueFd fd(::socket(addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return Errno{errno};
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (reuse_port && ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) return Errno{errno};
  if (addr.family() == AF_INET6) ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (::bind(fd.get(), addr.get(), addr.size()) < 0) return Errno{errno};
  if (::listen(fd.get(), backlog) < 0) return Errno{errno};
  return fd;
}

Result<SocketAddress> local_address(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) < 0) return Errno{errno};
  return SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
}

Result<UniqueFd> accept_tcp(int listen_fd, SocketAddress* peer) {
  for (;;) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    int fd = ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      if (peer) *peer = SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
      return UniqueFd(fd);
    }
    // The client gave up while in the backlog: not our error, take the next one.
    if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
    return Errno{errno};
  }
}

// recv and sendmsg through syscall(): glibc's wrappers are thread-cancellation points and pay for
// switching cancellation on and off around every call (2% of a small response's CPU); nothing here
// uses thread cancellation.
Result<std::size_t> read_some(int fd, char* buf, std::size_t len) {
  for (;;) {
    auto n = static_cast<ssize_t>(::syscall(SYS_recvfrom, fd, buf, len, 0, nullptr, nullptr));
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno != EINTR) return Errno{errno};
  }
}

Result<std::size_t> send_iov(int fd, const iovec* iov, int count, bool more) {
  msghdr msg{};
  msg.msg_iov = const_cast<iovec*>(iov);
  msg.msg_iovlen = static_cast<std::size_t>(count);
  for (;;) {
    auto n = static_cast<ssize_t>(::syscall(SYS_sendmsg, fd, &msg, MSG_NOSIGNAL | (more ? MSG_MORE : 0)));
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno != EINTR) return Errno{errno};
  }
}

Result<std::size_t> send_file(int sock, int file, std::uint64_t offset, std::size_t len) {
  off_t off = static_cast<off_t>(offset);
  for (;;) {
    ssize_t n = ::sendfile(sock, file, &off, len);
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno != EINTR) return Errno{errno};
  }
}

void shutdown_write(int fd) {
  ::shutdown(fd, SHUT_WR);
}

void set_abortive_close(int fd) {
  linger lg{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
}

std::optional<TcpDelivery> tcp_delivery(int fd, std::uint64_t bytes_written, bool fin_sent) {
  // SIOCOUTQ is write_seq - snd_una, read without taking the socket lock: far cheaper than
  // TCP_INFO, and together with what we wrote it gives exactly what the peer acknowledged.
  int outq = 0;
  if (::ioctl(fd, SIOCOUTQ, &outq) < 0) return std::nullopt;
  auto unacked = static_cast<std::uint64_t>(std::max(outq, 0));
  if (fin_sent && unacked > 0) --unacked;  // our FIN takes a sequence number until it is acked
  TcpDelivery d;
  d.bytes_acked = bytes_written - std::min(unacked, bytes_written);
  return d;
}

}  // namespace unbroken::net
