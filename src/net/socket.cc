#include "net/socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstring>

namespace unbroken::net {

static_assert(sizeof(sockaddr_un::sun_path) == 108, "describe(kUnixPathTooLong) names the limit");

std::string_view describe(AddressError e) {
  switch (e) {
    case AddressError::kNone: return "a valid address";
    case AddressError::kNotHostPort: return "use HOST:PORT";
    case AddressError::kPortRange: return "port must be 0..65535";
    case AddressError::kUnbracketedIpv6: return "put an IPv6 address in brackets, e.g. [::1]:8080";
    case AddressError::kNotIpv6InBrackets: return "not an IPv6 address in brackets";
    case AddressError::kEmptyUnixPath: return "unix: needs a socket path, e.g. unix:/run/app.sock";
    case AddressError::kUnixPathTooLong: return "unix socket path longer than 107 bytes";
  }
  return "invalid address";
}

AddressSyntax parse_address_syntax(std::string_view text) {
  AddressSyntax out;
  constexpr std::string_view kUnix = "unix:";
  out.is_unix = text.starts_with(kUnix);
  // A failed unix: address still says it was one: a caller that takes none can say so first.
  auto fail = [&out](AddressError e) {
    AddressSyntax bad;
    bad.error = e;
    bad.is_unix = out.is_unix;
    return bad;
  };
  if (out.is_unix) {
    out.host = text.substr(kUnix.size());
    if (out.host.empty()) return fail(AddressError::kEmptyUnixPath);
    // sun_path also holds the terminating NUL.
    if (out.host.size() >= sizeof(sockaddr_un::sun_path)) return fail(AddressError::kUnixPathTooLong);
    return out;
  }
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos) return fail(AddressError::kNotHostPort);
  std::string_view host = text.substr(0, colon);
  std::string_view port = text.substr(colon + 1);
  unsigned number = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), number);
  if (port.empty() || ec == std::errc::invalid_argument || end != port.data() + port.size())
    return fail(AddressError::kNotHostPort);
  if (ec == std::errc::result_out_of_range || number > 65535) return fail(AddressError::kPortRange);
  out.port = static_cast<std::uint16_t>(number);
  if (host.starts_with('[')) {
    in6_addr a6{};
    std::string inner(host.substr(1, host.size() >= 2 ? host.size() - 2 : 0));
    // inet_pton takes no scope id ("%lo"), and neither do we.
    if (host.size() < 2 || !host.ends_with(']') || ::inet_pton(AF_INET6, inner.c_str(), &a6) != 1)
      return fail(AddressError::kNotIpv6InBrackets);
    out.bracketed = true;
    out.host = host.substr(1, host.size() - 2);
    return out;
  }
  if (host.find(':') != std::string_view::npos) return fail(AddressError::kUnbracketedIpv6);
  if (host != "*") {
    for (char c : host) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
                c == '_';
      if (!ok) return fail(AddressError::kNotHostPort);
    }
  }
  out.host = host;
  return out;
}

std::optional<SocketAddress> SocketAddress::parse(std::string_view host_port) {
  AddressSyntax syntax = parse_address_syntax(host_port);
  if (syntax.error != AddressError::kNone) return std::nullopt;
  SocketAddress out;
  if (syntax.is_unix) {
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    std::memcpy(un.sun_path, syntax.host.data(), syntax.host.size());
    std::memcpy(&out.ss_, &un, sizeof un);
    out.len_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + syntax.host.size() + 1);
    return out;
  }
  std::string h(syntax.host.empty() || syntax.host == "*" ? std::string_view("0.0.0.0") : syntax.host);
  sockaddr_in v4{};
  sockaddr_in6 v6{};
  if (syntax.bracketed) {
    if (::inet_pton(AF_INET6, h.c_str(), &v6.sin6_addr) != 1) return std::nullopt;
    v6.sin6_family = AF_INET6;
    std::memcpy(&out.ss_, &v6, sizeof v6);
    out.len_ = sizeof v6;
  } else if (::inet_pton(AF_INET, h.c_str(), &v4.sin_addr) == 1) {
    v4.sin_family = AF_INET;
    std::memcpy(&out.ss_, &v4, sizeof v4);
    out.len_ = sizeof v4;
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
  out.set_port(syntax.port);
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
    // By hand: inet_ntop formats IPv4 through sprintf, 8% of the user time of a connection per
    // request (every accepted connection names its peer).
    const auto* in = reinterpret_cast<const sockaddr_in*>(&ss_);
    const auto* octet = reinterpret_cast<const unsigned char*>(&in->sin_addr);
    auto put = [](char* p, unsigned v) {  // v < 100000
      char digits[5];
      int n = 0;
      do {
        digits[n++] = static_cast<char>('0' + v % 10);
        v /= 10;
      } while (v != 0);
      while (n > 0) *p++ = digits[--n];
      return p;
    };
    char text[sizeof "255.255.255.255:65535"];
    char* p = put(text, octet[0]);
    for (int i = 1; i < 4; ++i) {
      *p++ = '.';
      p = put(p, octet[i]);
    }
    *p++ = ':';
    p = put(p, ntohs(in->sin_port));
    return std::string(text, p);
  } else if (ss_.ss_family == AF_INET6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&ss_)->sin6_addr, buf, sizeof buf);
    out.append("[").append(buf).append("]");
  } else if (ss_.ss_family == AF_UNIX) {
    // The path is what the length covers, NUL-terminated or not (an unnamed peer has none).
    const auto* un = reinterpret_cast<const sockaddr_un*>(&ss_);
    std::size_t room = len_ > offsetof(sockaddr_un, sun_path) ? len_ - offsetof(sockaddr_un, sun_path) : 0;
    return "unix:" + std::string(un->sun_path, ::strnlen(un->sun_path, std::min(room, sizeof un->sun_path)));
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
    case ECONNREFUSED:
    case ENOENT: return SocketError::kRefused;
    case ENETUNREACH:
    case EHOSTUNREACH: return SocketError::kUnreachable;
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
  // Accepted sockets inherit TCP_NODELAY from their listener (Linux clones the listener's TCP
  // state): set once here, it saves a setsockopt per connection.
  if (addr.family() == AF_INET || addr.family() == AF_INET6)
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (::bind(fd.get(), addr.get(), addr.size()) < 0) return Errno{errno};
  if (::listen(fd.get(), backlog) < 0) return Errno{errno};
  return fd;
}

Result<UniqueFd> share_listener(int fd) {
  UniqueFd dup(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
  if (!dup) return Errno{errno};
  int flags = ::fcntl(dup.get(), F_GETFL);
  if (flags < 0 || ::fcntl(dup.get(), F_SETFL, flags | O_NONBLOCK) < 0) return Errno{errno};
  int domain = 0;
  socklen_t len = sizeof domain;
  if (::getsockopt(dup.get(), SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 && (domain == AF_INET || domain == AF_INET6)) {
    int one = 1;
    ::setsockopt(dup.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  return dup;
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
      // No TCP_NODELAY here: it came with the listener (listen_tcp).
      if (peer) *peer = SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
      return UniqueFd(fd);
    }
    // The client gave up while in the backlog: not our error, take the next one.
    if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
    return Errno{errno};
  }
}

Result<UniqueFd> connect_tcp(const SocketAddress& addr) {
  UniqueFd fd(::socket(addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return Errno{errno};
  if (addr.family() == AF_INET || addr.family() == AF_INET6) {
    int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  // EINTR does not abort a non-blocking connect: it goes on in the background, like EINPROGRESS.
  if (::connect(fd.get(), addr.get(), addr.size()) < 0 && errno != EINPROGRESS && errno != EINTR) return Errno{errno};
  return fd;
}

Errno socket_error(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) return Errno{errno};
  return Errno{err};
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
  int flags = MSG_NOSIGNAL | (more ? MSG_MORE : 0);
  for (;;) {
    // One buffer (a whole small response) goes by sendto: the kernel then copies no msghdr and
    // imports no iovec array.
    auto n = count == 1
                 ? static_cast<ssize_t>(::syscall(SYS_sendto, fd, iov[0].iov_base, iov[0].iov_len, flags, nullptr, 0))
                 : static_cast<ssize_t>(::syscall(SYS_sendmsg, fd, &msg, flags));
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
