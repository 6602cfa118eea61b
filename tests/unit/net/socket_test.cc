#include "net/socket.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/un.h>

#include <string>

namespace unbroken::net {
namespace {

struct GoodAddress {
  std::string text;
  int family;           // AF_UNSPEC: a name, either family
  std::string printed;  // to_string() of the parsed address; empty for a name
  std::uint16_t port;
};

struct BadAddress {
  std::string text;
  AddressError error;
};

const std::string kLongestPath(sizeof(sockaddr_un::sun_path) - 1, 'p');

TEST(SocketAddress, ParsesEveryForm) {
  const GoodAddress kCases[] = {
      {"127.0.0.1:8080", AF_INET, "127.0.0.1:8080", 8080},
      {"[::1]:8080", AF_INET6, "[::1]:8080", 8080},
      {"[::]:0", AF_INET6, "[::]:0", 0},
      {"localhost:80", AF_UNSPEC, "", 80},
      {"*:80", AF_INET, "0.0.0.0:80", 80},
      {":80", AF_INET, "0.0.0.0:80", 80},
      {"127.0.0.1:65535", AF_INET, "127.0.0.1:65535", 65535},
      {"255.255.255.255:1", AF_INET, "255.255.255.255:1", 1},  // IPv4 is printed by hand: each width
      {"10.20.0.9:443", AF_INET, "10.20.0.9:443", 443},
      {"unix:/p", AF_UNIX, "unix:/p", 0},
      {"unix:/run/app.sock", AF_UNIX, "unix:/run/app.sock", 0},
      {"unix:relative.sock", AF_UNIX, "unix:relative.sock", 0},
      {"unix:" + kLongestPath, AF_UNIX, "unix:" + kLongestPath, 0},
  };
  for (const auto& c : kCases) {
    SCOPED_TRACE(c.text);
    EXPECT_EQ(parse_address_syntax(c.text).error, AddressError::kNone);
    auto a = SocketAddress::parse(c.text);
    ASSERT_TRUE(a);
    if (c.family != AF_UNSPEC) {
      EXPECT_EQ(a->family(), c.family);
      EXPECT_EQ(a->to_string(), c.printed);
    }
    EXPECT_EQ(a->port(), c.port);
  }
}

TEST(SocketAddress, RejectsWhatTheSyntaxRejectsAndSaysWhy) {
  const BadAddress kCases[] = {
      {"unix:", AddressError::kEmptyUnixPath},
      {"unix:" + kLongestPath + "p", AddressError::kUnixPathTooLong},
      {"8080", AddressError::kNotHostPort},
      {"127.0.0.1:", AddressError::kNotHostPort},
      {"127.0.0.1:http", AddressError::kNotHostPort},
      {"127.0.0.1:-1", AddressError::kNotHostPort},
      {"127.0.0.1:+80", AddressError::kNotHostPort},
      {"127.0.0.1:80x", AddressError::kNotHostPort},
      {"a b:80", AddressError::kNotHostPort},
      {"127.0.0.1:65536", AddressError::kPortRange},
      {"127.0.0.1:99999999999999999999", AddressError::kPortRange},
      // These used to be taken by parse() and refused by the config.
      {"::1:8080", AddressError::kUnbracketedIpv6},
      {"[1.2.3.4]:80", AddressError::kNotIpv6InBrackets},
      {"[]:80", AddressError::kNotIpv6InBrackets},
      {"[*]:80", AddressError::kNotIpv6InBrackets},
      {"[fe80::1%lo]:80", AddressError::kNotIpv6InBrackets},
      {"[::1:8080", AddressError::kNotIpv6InBrackets},
  };
  for (const auto& c : kCases) {
    SCOPED_TRACE(c.text);
    EXPECT_EQ(parse_address_syntax(c.text).error, c.error);
    EXPECT_FALSE(SocketAddress::parse(c.text));
  }
}

TEST(SocketAddress, UnixAddressRoundTripsAndHasNoPort) {
  auto a = SocketAddress::parse("unix:/tmp/x.sock");
  ASSERT_TRUE(a);
  a->set_port(80);  // no port to set
  EXPECT_EQ(a->port(), 0);
  EXPECT_EQ(a->to_string(), "unix:/tmp/x.sock");
  auto copy = SocketAddress::from_sockaddr(a->get(), a->size());
  EXPECT_EQ(copy.to_string(), "unix:/tmp/x.sock");
  // An unnamed unix peer (what accept() reports for a client that never bound) has no path.
  sockaddr_un unnamed{};
  unnamed.sun_family = AF_UNIX;
  EXPECT_EQ(SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&unnamed), sizeof(sa_family_t)).to_string(),
            "unix:");
}

TEST(SocketAddress, EveryErrorIsDescribed) {
  for (auto e : {AddressError::kNotHostPort, AddressError::kPortRange, AddressError::kUnbracketedIpv6,
                 AddressError::kNotIpv6InBrackets, AddressError::kEmptyUnixPath, AddressError::kUnixPathTooLong}) {
    EXPECT_FALSE(describe(e).empty());
    EXPECT_NE(describe(e), describe(AddressError::kNone));
  }
}

TEST(Socket, ClassifyNamesWhatFailed) {
  const std::pair<int, SocketError> kCases[] = {
      {ECONNRESET, SocketError::kReset},         {EPIPE, SocketError::kBrokenPipe},
      {ETIMEDOUT, SocketError::kTimedOut},       {ECONNREFUSED, SocketError::kRefused},
      {ENOENT, SocketError::kRefused},           {ENETUNREACH, SocketError::kUnreachable},
      {EHOSTUNREACH, SocketError::kUnreachable}, {EINVAL, SocketError::kOther},
  };
  for (auto [err, kind] : kCases) EXPECT_EQ(classify(Errno{err}), kind) << err;
}

// Waits for fd to become writable: the end of a non-blocking connect.
bool writable_within(int fd, int timeout_ms) {
  pollfd p{fd, POLLOUT, 0};
  return ::poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLOUT);
}

TEST(Socket, ConnectTcpIsNonBlockingCloexecAndNoDelay) {
  auto lfd = listen_tcp(*SocketAddress::parse("127.0.0.1:0"), false);
  ASSERT_TRUE(lfd);
  auto addr = local_address(lfd->get());
  ASSERT_TRUE(addr);
  auto fd = connect_tcp(*addr);
  ASSERT_TRUE(fd) << fd.error().message();
  EXPECT_TRUE(::fcntl(fd->get(), F_GETFL) & O_NONBLOCK);
  EXPECT_TRUE(::fcntl(fd->get(), F_GETFD) & FD_CLOEXEC);
  int nodelay = 0;
  socklen_t len = sizeof nodelay;
  ASSERT_EQ(::getsockopt(fd->get(), IPPROTO_TCP, TCP_NODELAY, &nodelay, &len), 0);
  EXPECT_NE(nodelay, 0);
  ASSERT_TRUE(writable_within(fd->get(), 5000));
  EXPECT_EQ(socket_error(fd->get()).code, 0);
}

TEST(Socket, AcceptedSocketsInheritNoDelayFromTheListener) {
  // accept_tcp sets no option: TCP_NODELAY comes with the listener (one setsockopt, not one per
  // connection), and the sockets it returns are non-blocking and close-on-exec.
  auto lfd = listen_tcp(*SocketAddress::parse("127.0.0.1:0"), false);
  ASSERT_TRUE(lfd);
  auto fd = connect_tcp(*local_address(lfd->get()));
  ASSERT_TRUE(fd);
  pollfd p{lfd->get(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 5000), 1);
  SocketAddress peer;
  auto accepted = accept_tcp(lfd->get(), &peer);
  ASSERT_TRUE(accepted) << accepted.error().message();
  EXPECT_EQ(peer.to_string(), local_address(fd->get())->to_string());
  EXPECT_TRUE(::fcntl(accepted->get(), F_GETFL) & O_NONBLOCK);
  EXPECT_TRUE(::fcntl(accepted->get(), F_GETFD) & FD_CLOEXEC);
  int nodelay = 0;
  socklen_t len = sizeof nodelay;
  ASSERT_EQ(::getsockopt(accepted->get(), IPPROTO_TCP, TCP_NODELAY, &nodelay, &len), 0);
  EXPECT_NE(nodelay, 0);
  EXPECT_TRUE(accept_tcp(lfd->get(), nullptr).error().would_block());  // the backlog is empty
}

TEST(Socket, ConnectTcpToAClosedPortIsRefusedThroughSoError) {
  SocketAddress addr;
  {
    auto lfd = listen_tcp(*SocketAddress::parse("127.0.0.1:0"), false);
    ASSERT_TRUE(lfd);
    addr = *local_address(lfd->get());
  }  // closed: nobody listens on the port now
  auto fd = connect_tcp(addr);
  ASSERT_TRUE(fd);  // in progress; the RST comes back later
  ASSERT_TRUE(writable_within(fd->get(), 5000));
  EXPECT_EQ(classify(socket_error(fd->get())), SocketError::kRefused);
}

TEST(Socket, ConnectToAMissingUnixSocketFailsAtOnce) {
  char tmpl[] = "/tmp/ub-socket-XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  auto fd = connect_tcp(*SocketAddress::parse("unix:" + dir + "/none.sock"));
  ASSERT_FALSE(fd);
  EXPECT_EQ(fd.error().code, ENOENT);
  EXPECT_EQ(classify(fd.error()), SocketError::kRefused);
  ::rmdir(dir.c_str());
}

}  // namespace
}  // namespace unbroken::net
