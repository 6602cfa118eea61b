// The Client's TLS side: its socket I/O (plain or through TlsStream), the handshake that comes
// before every kind's behaviour on an https:// target, and the handshake kinds, which put raw
// bytes where the handshake belongs and watch what the server does.

#include <fmt/format.h>
#include <sys/socket.h>

#include <cerrno>

#include "chaos/client.h"
#include "chaos/runner.h"

namespace unbroken::chaos {
namespace {

constexpr std::size_t kGarbageBytes = 517;  // as long as a browser's ClientHello
constexpr std::size_t kKeptServerBytes = 16 * 1024;

}  // namespace

long Client::write_some(std::string_view bytes, int& err) {
  if (tls_) return tls_->write(bytes, err);
  ssize_t n;
  do n = ::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n < 0) err = errno;
  return n;
}

long Client::read_some(char* out, std::size_t room, int& err) {
  if (tls_) return tls_->read(out, room, err);
  ssize_t n;
  do n = ::recv(fd_.get(), out, room, 0);
  while (n < 0 && errno == EINTR);
  if (n < 0) err = errno;
  return n;
}

bool Client::speaks_tls() const {
  return runner_.config().target.tls && !tls_only(kind_);
}

void Client::start_handshake() {
  SSL* ssl = runner_.config().tls->new_ssl(runner_.config().target);
  if (!ssl) {
    handshake_failed(ENOMEM);
    return;
  }
  tls_ = std::make_unique<TlsStream>(ssl, fd_.get());
  step_ = Step::kHandshaking;
  continue_handshake();
}

void Client::continue_handshake() {
  int err = 0;
  if (tls_->handshake(err) == 0) {
    on_connected();
    return;
  }
  if (err != EAGAIN) handshake_failed(err);
}

void Client::handshake_failed(int err) {
  if (err == EPROTO) {
    tls_failed(tls_->error());
    return;
  }
  if (kind_ == Kind::kGood) {
    good_error(err == 0 ? "tls: closed" : err == ECONNRESET ? "tls: reset" : fmt::format("tls: errno_{}", err));
    return;
  }
  // The server hung up in the handshake: what it did, as for a plain connection.
  react(err == 0 ? Reaction::kClosedSilently : Reaction::kReset);
}

void Client::tls_failed(std::string_view reason) {
  if (kind_ == Kind::kGood) {
    good_error(fmt::format("tls: {}", reason));
    return;
  }
  ++runner_.stats(kind_).tls_errors[std::string(reason)];
  react(Reaction::kTlsError);
}

void Client::start_tls_kind() {
  const ChaosConfig& cfg = runner_.config();
  switch (kind_) {
    case Kind::kTlsAbortHandshake:
    case Kind::kTlsRstHandshake:
      if (!send(cfg.tls->client_hello(cfg.target))) return;
      if (kind_ == Kind::kTlsRstHandshake) {
        leave(true);
      } else {
        // A bare FIN, no alert: the client gave up.
        ::shutdown(fd_.get(), SHUT_WR);
      }
      break;
    case Kind::kTlsSlowHandshake:
      trickle_ = cfg.tls->client_hello(cfg.target);
      on_timer();
      break;
    case Kind::kTlsGarbage: {
      std::string garbage(kGarbageBytes, '\0');
      for (char& c : garbage) c = static_cast<char>(rng_());
      // Random, but never the start of a record OpenSSL would wait for the rest of (a TLS header,
      // major version 3; an SSLv2 ClientHello's), so the server judges the first bytes at once.
      if (garbage[1] == '\x03') garbage[1] = '\0';
      if ((garbage[0] & '\x80') != 0 && garbage[2] == '\x01') garbage[2] = '\0';
      send(garbage);
      break;
    }
    case Kind::kPlainToTls: send(request("GET")); break;
    default: break;
  }
}

void Client::keep_server_bytes(std::string_view data) {
  std::size_t room = kKeptServerBytes - std::min(kKeptServerBytes, server_bytes_.size());
  server_bytes_.append(data.substr(0, room));
}

}  // namespace unbroken::chaos
