// TlsTransport on both ends of real connections, on one loop: the handshake both ways, output held
// until the handshake is done, a verification failure's reason, and no SIGPIPE from any TLS write
// to a peer that has gone (unix sockets, where such a write is EPIPE at once), with SIGPIPE at its
// default action.

#include "net/tls_transport.h"

#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/socket.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "../../common/test_certs.h"
#include "../../common/tls_client.h"
#include "net/listener.h"
#include "net/tls_context.h"

namespace unbroken::net {
namespace {

using std::chrono::milliseconds;
constexpr std::size_t kMaxBuffered = 64 * 1024;

struct Side : TransportHandler {
  void on_data(Buffer& in) override {
    if (hold) {
      held = in.size();  // left for later: the transport's input fills to its cap
    } else {
      data.append(in.readable());
      in.consume(in.size());
    }
    changed();
  }
  void on_peer_closed() override {
    peer_closed = true;
    changed();
  }
  void on_transport_error(SocketError e) override {
    error = e;
    changed();
  }
  void on_written(std::size_t n) override { written += n; }
  void on_connected() override {
    secured = true;
    changed();
  }
  void on_secured() override {
    secured = true;
    changed();
  }
  bool hold = false;
  std::size_t held = 0;
  std::string data;
  std::optional<SocketError> error;
  bool secured = false;
  bool peer_closed = false;
  std::size_t written = 0;
  std::function<void()> changed = [] {};
};

class TlsTransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ub-tls-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    cert_ = certs_.make(dir_, "localhost", {"localhost"});
    other_ = certs_.make(dir_, "other", {"other"});
    TlsSetupError e;
    server_ctx_ = TlsServerContext::create({.certs = {{cert_.cert, cert_.key}}}, e);
    ASSERT_TRUE(server_ctx_) << e.message;
    loop_ = std::move(*EventLoop::create());
  }
  void TearDown() override {
    client_.reset();
    server_.reset();
    listener_.reset();
    std::filesystem::remove_all(dir_);
  }

  // A unix listener whose accepted connection becomes server_; client_ connects to it over TLS,
  // verified against `ca`.
  void connect(const std::string& ca) {
    std::string path = dir_ + "/tls.sock";
    auto fd = listen_tcp(*SocketAddress::parse("unix:" + path), false);
    ASSERT_TRUE(fd);
    listener_ = std::make_unique<Listener>(
        *loop_, std::move(*fd),
        [this](UniqueFd c, const SocketAddress&) {
          auto tcp = std::make_unique<TcpConnection>(*loop_, std::move(c), "client", kMaxBuffered);
          EXPECT_TRUE(tcp->start());
          server_ = std::make_unique<TlsTransport>(*loop_, std::move(tcp), server_ctx_->new_ssl(),
                                                   TlsTransport::Role::kServer);
          server_->set_handler(&s_);
        },
        [] { return true; }, [](int) {});
    ASSERT_TRUE(listener_->start());
    TlsSetupError e;
    client_ctx_ = TlsClientContext::create({.ca_file = ca}, e);
    ASSERT_TRUE(client_ctx_) << e.message;
    auto tcp = TcpConnection::connect(*loop_, *SocketAddress::parse("unix:" + path), kMaxBuffered, milliseconds{5000});
    client_ = std::make_unique<TlsTransport>(*loop_, std::move(tcp), client_ctx_->new_ssl("localhost"),
                                             TlsTransport::Role::kClient);
    client_->set_handler(&c_);
  }

  // Runs the loop until done() holds after an event of either side; false at the deadline.
  bool run_until(const std::function<bool()>& done) {
    bool in_time = true;
    auto check = [this, &done] {
      if (done()) loop_->stop();
    };
    c_.changed = s_.changed = check;
    auto id = loop_->run_after(milliseconds{5000}, [&] {
      in_time = false;
      loop_->stop();
    });
    loop_->run();
    loop_->cancel_timer(id);
    return in_time;
  }

  std::string dir_;
  testing::CertMaker certs_;
  testing::TestCert cert_, other_;
  std::unique_ptr<TlsServerContext> server_ctx_;
  std::unique_ptr<TlsClientContext> client_ctx_;
  std::unique_ptr<EventLoop> loop_;
  std::unique_ptr<Listener> listener_;
  std::unique_ptr<TlsTransport> server_, client_;
  Side s_, c_;
};

TEST_F(TlsTransportTest, OutputQueuedDuringTheHandshakeGoesOnceItIsDone) {
  connect(cert_.cert);
  client_->queue("ping");
  ASSERT_TRUE(client_->flush());  // held: nothing is sent before the handshake
  EXPECT_EQ(client_->queued_bytes(), 4u);
  ASSERT_TRUE(run_until([&] { return s_.data == "ping"; }));
  EXPECT_TRUE(c_.secured);
  EXPECT_TRUE(s_.secured);
  EXPECT_EQ(c_.written, 4u);  // plaintext bytes, reported once their record was in the kernel
  EXPECT_EQ(client_->tls()->version, "TLSv1.3");
  EXPECT_EQ(server_->tls()->sni, "localhost");
  server_->queue(std::string(100'000, 'p'));
  ASSERT_TRUE(server_->flush());
  ASSERT_TRUE(run_until([&] { return c_.data.size() == 100'000; }));
}

// The TCP connection reads before it writes: bytes from the client while our records wait in the
// TCP queue must not leave the rest of the output stranded (the read's flush emptied the queue and
// turned the write interest off, so no writable event would come again).
TEST_F(TlsTransportTest, ClientBytesWhileOurOutputIsQueuedDoNotStallIt) {
  connect(cert_.cert);
  ASSERT_TRUE(run_until([&] { return c_.secured && s_.secured; }));
  constexpr std::size_t kTotal = 2 << 20;
  server_->queue(std::string(kTotal, 'p'));
  auto first = server_->flush();
  ASSERT_TRUE(first);
  ASSERT_GT(server_->queued_bytes(), 0u);  // more than the kernel takes at once
  std::size_t seen = 0;
  auto answer = [&] {
    if (c_.data.size() == seen) return c_.data.size() == kTotal;
    seen = c_.data.size();
    client_->queue("x");  // a byte back for every read
    [[maybe_unused]] auto r = client_->flush();
    return seen == kTotal;
  };
  ASSERT_TRUE(run_until(answer)) << "stalled at " << c_.data.size() << " of " << kTotal;
  EXPECT_EQ(*first + s_.written, kTotal);  // the flush's count, then every on_written: all of it
}

// Input the handler leaves where it is fills the transport to its cap and pauses reading; the
// handler's set_reading(true) after taking it must resume it (as it does on plain TCP).
TEST_F(TlsTransportTest, InputLeftAtTheCapResumesWhenTheHandlerAsks) {
  connect(cert_.cert);
  ASSERT_TRUE(run_until([&] { return c_.secured && s_.secured; }));
  s_.hold = true;
  constexpr std::size_t kSend = 1 << 20;
  client_->queue(std::string(kSend, 'q'));
  ASSERT_TRUE(client_->flush());
  ASSERT_TRUE(run_until([&] { return s_.held >= kMaxBuffered; }));
  s_.hold = false;
  s_.data.assign(server_->input().readable());
  server_->input().clear();
  server_->set_reading(true);
  ASSERT_TRUE(run_until([&] { return s_.data.size() == kSend; })) << s_.data.size();
}

TEST_F(TlsTransportTest, AnUntrustedCertificateFailsTheClientsHandshakeWithTheReason) {
  connect(other_.cert);  // trusts a CA that did not sign the server's certificate
  ASSERT_TRUE(run_until([&] { return c_.error.has_value(); }));
  EXPECT_EQ(*c_.error, SocketError::kProtocol);
  EXPECT_TRUE(client_->tls()->failed);
  EXPECT_EQ(client_->tls()->error, "certificate verify failed");
  EXPECT_FALSE(c_.secured);
}

TEST_F(TlsTransportTest, WritesToAPeerThatIsGoneNeverRaiseSigpipe) {
  struct sigaction dfl {
  }, old{};
  dfl.sa_handler = SIG_DFL;
  ::sigaction(SIGPIPE, &dfl, &old);  // a write(2) to the closed socket would end this process
  connect(cert_.cert);
  ASSERT_TRUE(run_until([&] { return c_.secured && s_.secured; }));
  server_->close(false);
  // Application data, then close_notify, to a socket whose peer is gone: EPIPE, never a signal.
  client_->queue(std::string(64 * 1024, 'x'));
  auto r = client_->flush();
  if (r) r = client_->flush();
  client_->shutdown_write();
  ::sigaction(SIGPIPE, &old, nullptr);
  EXPECT_FALSE(r.ok());
}

TEST_F(TlsTransportTest, AServersHandshakeFlightToAClientThatLeftNeverRaisesSigpipe) {
  struct sigaction dfl {
  }, old{};
  dfl.sa_handler = SIG_DFL;
  ::sigaction(SIGPIPE, &dfl, &old);
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
  auto tcp = std::make_unique<TcpConnection>(*loop_, UniqueFd(fds[0]), "client", kMaxBuffered);
  ASSERT_TRUE(tcp->start());
  server_ = std::make_unique<TlsTransport>(*loop_, std::move(tcp), server_ctx_->new_ssl(), TlsTransport::Role::kServer);
  server_->set_handler(&s_);
  // The ClientHello, and the client is gone before the server answers it: its flight is EPIPE.
  std::string hello = testing::client_hello("localhost");
  ASSERT_EQ(::send(fds[1], hello.data(), hello.size(), MSG_NOSIGNAL), static_cast<ssize_t>(hello.size()));
  ::close(fds[1]);
  ASSERT_TRUE(run_until([&] { return s_.error.has_value() || s_.peer_closed; }));
  ::sigaction(SIGPIPE, &old, nullptr);
  EXPECT_FALSE(s_.secured);
}

}  // namespace
}  // namespace unbroken::net
