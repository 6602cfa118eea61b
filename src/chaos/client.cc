#include "chaos/client.h"

#include <fmt/format.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "chaos/runner.h"
#include "net/socket.h"

namespace unbroken::chaos {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kRetryAfterConnectFailure{100};
constexpr milliseconds kRefreshStormMaxWait{200};
constexpr std::size_t kSlowReadChunk = 1024;
constexpr int kSlowReadBuffer = 4096;
constexpr std::uint64_t kAbortBodyLength = 64 * 1024;
constexpr std::uint64_t kSlowBodyLength = 1024 * 1024;
// tls-slow-handshake: a ClientHello of some 250 bytes at 4 bytes per --trickle (1 s) takes a
// minute, beyond any handshake timer (unbroken's is 10 s).
constexpr std::size_t kHelloTrickleBytes = 4;

}  // namespace

Client::Client(Runner& runner, Kind kind, std::uint64_t seed)
    : runner_(runner), kind_(kind), rng_(seed), timer_([this] { on_timer(); }) {}

Client::~Client() {
  close_socket(false);
}

void Client::start_request(std::string& out, std::string_view method) const {
  const Target& t = runner_.config().target;
  http::append_request_line(out, method, t.path);
  http::append_field(out, "Host", t.host);
  http::append_field(out, "User-Agent", fmt::format("unbroken-chaos/{}", name(kind_)));
}

std::string Client::request(std::string_view method, http::BodyFraming framing, std::uint64_t length) const {
  std::string out;
  start_request(out, method);
  if (framing != http::BodyFraming::kNone) http::append_field(out, "Content-Type", "application/octet-stream");
  http::end_request_head(out, framing, length);
  return out;
}

double Client::since_attempt_ms() const {
  return std::chrono::duration<double, std::milli>(net::Clock::now() - attempt_start_).count();
}

void Client::arm(milliseconds after) {
  runner_.loop().timers().arm(timer_, runner_.loop().now() + after);
}

void Client::begin() {
  next_attempt();
}

void Client::next_attempt(milliseconds after) {
  close_socket(false);
  step_ = Step::kWaiting;
  if (!runner_.running()) return;
  net::TimePoint at = std::max(runner_.reserve_start(), runner_.loop().now() + after);
  if (at <= runner_.loop().now()) {
    start_attempt();
  } else {
    runner_.loop().timers().arm(timer_, at);
  }
}

void Client::start_attempt() {
  const Target& t = runner_.config().target;
  UniqueFd fd(::socket(t.address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) {
    // Out of descriptors or memory: count it as a failed connection and try again later.
    on_error(errno);
    return;
  }
  int one = 1;
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (kind_ == Kind::kSlowRead) {
    // Set before connect, so that the window the client announces is small from the start.
    int size = kSlowReadBuffer;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  }
  attempt_start_ = net::Clock::now();
  read_so_far_ = 0;
  reader_.reset();
  out_.clear();
  trickle_.clear();
  trickle_pos_ = 0;
  server_bytes_.clear();
  paced_ = false;
  requests_on_connection_ = 0;
  step_ = Step::kConnecting;
  if (kind_ != Kind::kGood) ++runner_.stats(kind_).attempts;
  int r = ::connect(fd.get(), t.address.get(), t.address.size());
  if (r < 0 && errno != EINPROGRESS) {
    fd_ = std::move(fd);
    on_error(errno);
    return;
  }
  fd_ = std::move(fd);
  if (auto added = runner_.loop().add(fd_.get(), net::kReadable | net::kWritable, this); !added) {
    on_error(added.error().code);
  }
}

void Client::on_events(std::uint32_t events) {
  if (!fd_) return;
  // Any step below may end this connection and start the next one on a new socket: stop then,
  // the events were for the old one.
  const std::uint64_t generation = generation_;
  if (step_ == Step::kConnecting) {
    if (!(events & (net::kWritable | net::kError))) return;
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    sockaddr_storage peer{};
    socklen_t peer_len = sizeof peer;
    if (err == 0 && ::getpeername(fd_.get(), reinterpret_cast<sockaddr*>(&peer), &peer_len) < 0) {
      // Not connected yet (a stale event for an earlier socket with this number): wait.
      if (errno == ENOTCONN) return;
      err = errno;
    }
    if (err != 0) {
      on_error(err);
      return;
    }
    if (speaks_tls()) {
      start_handshake();
    } else {
      on_connected();
    }
    if (generation != generation_ || !fd_) return;
  } else if (step_ == Step::kHandshaking) {
    continue_handshake();
    if (generation != generation_ || !fd_) return;
  }
  if (step_ == Step::kHandshaking) return;
  // TLS: a write may wait for a read (and the reverse), so any event may let pending bytes go.
  if ((events & net::kWritable || tls_) && !out_.empty()) {
    flush_pending();
    if (generation != generation_ || !fd_) return;
  }
  if (step_ == Step::kStalled) {
    // Not reading: only the server's hang-up can be seen, and it is the reaction.
    if (events & net::kError) {
      react(Reaction::kReset);
    } else if (events & net::kPeerClosed) {
      react(Reaction::kClosedSilently);
    }
    return;
  }
  if (events & (net::kReadable | net::kPeerClosed | net::kError)) read_available();
}

void Client::on_connected() {
  step_ = Step::kActive;
  switch (kind_) {
    case Kind::kGood: send_good_request(); break;
    case Kind::kHangupWait:
      if (send(request("GET"))) leave(false);
      break;
    case Kind::kAbortHead:
    case Kind::kRstHead: {
      std::string head = request("GET");
      // Cut in the middle of the header block: after the request line and part of a field.
      std::size_t cut = std::min(head.size() - 3, head.find("\r\n") + 2 + 8);
      if (!send(std::string_view(head).substr(0, cut))) return;
      if (kind_ == Kind::kRstHead) {
        leave(true);
      } else {
        ::shutdown(fd_.get(), SHUT_WR);
      }
      break;
    }
    case Kind::kAbortBody: {
      std::string head = request("POST", http::BodyFraming::kContentLength, kAbortBodyLength);
      head.append(1024, 'x');
      if (send(head)) ::shutdown(fd_.get(), SHUT_WR);
      break;
    }
    case Kind::kAbortResponse:
    case Kind::kRstResponse: {
      // Leave somewhere in the first 64 KiB (at once if the response is shorter: then it was answered).
      read_target_ = std::uniform_int_distribution<std::uint64_t>(1, 64 * 1024)(rng_);
      send(request("GET"));
      break;
    }
    case Kind::kSlowloris:
      // A head that never ends.
      start_request(trickle_, "GET");
      for (int i = 0; i < 1000; ++i) http::append_field(trickle_, fmt::format("X-Slowloris-{}", i), std::to_string(i));
      on_timer();
      break;
    case Kind::kSlowBody:
      if (!send(request("POST", http::BodyFraming::kContentLength, kSlowBodyLength))) return;
      trickle_.assign(kSlowBodyLength, 'x');
      arm(runner_.config().trickle);
      break;
    case Kind::kSlowRead:
      paced_ = true;
      if (send(request("GET"))) arm(runner_.config().trickle);
      break;
    case Kind::kStall: send(request("GET")); break;
    case Kind::kPipelineClose: {
      std::string r = request("GET");
      if (send(r + r + r)) leave(false);
      break;
    }
    case Kind::kIdle: break;
    case Kind::kRefreshStorm:
      if (send(request("GET"))) {
        arm(milliseconds(std::uniform_int_distribution<long>(0, kRefreshStormMaxWait.count())(rng_)));
      }
      break;
    case Kind::kTlsAbortHandshake:
    case Kind::kTlsRstHandshake:
    case Kind::kTlsSlowHandshake:
    case Kind::kTlsGarbage:
    case Kind::kPlainToTls: start_tls_kind(); break;
  }
}

void Client::on_timer() {
  if (step_ == Step::kWaiting) {
    if (runner_.running()) start_attempt();
    return;
  }
  if (!fd_ || step_ != Step::kActive) return;
  switch (kind_) {
    case Kind::kGood:
      // The request is still unanswered after --good-timeout.
      good_error("timeout");
      break;
    case Kind::kSlowloris:
    case Kind::kSlowBody:
    case Kind::kTlsSlowHandshake:
      if (trickle_pos_ < trickle_.size()) {
        std::size_t n = kind_ == Kind::kTlsSlowHandshake ? kHelloTrickleBytes : 1;
        std::string_view piece = std::string_view(trickle_).substr(trickle_pos_, n);
        trickle_pos_ += piece.size();
        if (!send(piece)) return;
      }
      arm(runner_.config().trickle);
      break;
    case Kind::kSlowRead:
      paced_ = false;
      read_available();
      if (fd_ && step_ == Step::kActive) {
        paced_ = true;
        arm(runner_.config().trickle);
      }
      break;
    case Kind::kRefreshStorm: leave(std::uniform_int_distribution<int>(0, 1)(rng_) == 1); break;
    default: break;
  }
}

bool Client::send(std::string_view bytes) {
  if (!out_.empty()) {
    out_.append(bytes);
    return true;
  }
  while (!bytes.empty()) {
    int err = 0;
    long n = write_some(bytes, err);
    if (n < 0) {
      if (err == EAGAIN || err == EWOULDBLOCK) break;
      on_error(err);
      return false;
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  out_.assign(bytes);
  return true;
}

void Client::flush_pending() {
  std::string rest = std::move(out_);
  out_.clear();
  send(rest);
}

void Client::read_available() {
  char buf[16 * 1024];
  while (fd_ && (step_ == Step::kActive)) {
    std::size_t room = sizeof buf;
    if (kind_ == Kind::kSlowRead) {
      if (paced_) return;
      room = kSlowReadChunk;
    }
    int err = 0;
    long n = read_some(buf, room, err);
    if (n < 0) {
      if (err == EAGAIN || err == EWOULDBLOCK) return;
      on_error(err);
      return;
    }
    if (n == 0) {
      on_eof();
      return;
    }
    read_so_far_ += static_cast<std::size_t>(n);
    on_response_bytes({buf, static_cast<std::size_t>(n)});
    if (kind_ == Kind::kSlowRead) return;  // one chunk per tick
  }
}

void Client::on_response_bytes(std::string_view data) {
  using Status = http::ResponseParser::Status;
  if (raw_handshake()) {
    keep_server_bytes(data);
    return;
  }
  while (fd_ && step_ == Step::kActive && !data.empty()) {
    // Body bytes are only counted (body_bytes()): no sink.
    auto [st, used] = reader_.feed(data, nullptr);
    data.remove_prefix(used);
    if (st == Status::kError || (st == Status::kUpgrade && kind_ == Kind::kGood)) {
      // We never ask to switch protocols: a 101 is no answer to a good client either.
      if (kind_ == Kind::kGood) {
        good_error("bad_response");
      } else {
        react(Reaction::kAnswered, 0);
      }
      return;
    }
    if (st == Status::kInterim) continue;  // a 1xx: the answer is still to come
    bool complete = st == Status::kMessage || st == Status::kUpgrade;
    if (kind_ == Kind::kGood) {
      if (st == Status::kHead) continue;  // the body follows
      if (!complete) return;
      good_answered();
      // Bytes after the answer (a server bug) are read by the reset parser as the answer to the
      // request just sent.
      continue;
    }
    if (!reader_.head_complete()) break;
    int status = reader_.response().status;
    if (kind_ == Kind::kStall && !complete) {
      // The head is here: stop reading, and see what the server does about a client that does not read.
      step_ = Step::kStalled;
      return;
    }
    bool waits_for_the_end = kind_ == Kind::kSlowRead || kind_ == Kind::kAbortResponse || kind_ == Kind::kRstResponse ||
                             kind_ == Kind::kRefreshStorm;
    if (waits_for_the_end && !complete) {
      if (st == Status::kHead) continue;  // the body follows, perhaps in these bytes
      break;
    }
    react(status == 408 ? Reaction::kClosed408 : Reaction::kAnswered, status);
    return;
  }
  if (fd_ && step_ == Step::kActive && (kind_ == Kind::kAbortResponse || kind_ == Kind::kRstResponse) &&
      read_so_far_ >= read_target_) {
    leave(kind_ == Kind::kRstResponse);
  }
}

void Client::on_eof() {
  if (kind_ == Kind::kGood) {
    if (!waiting_) {
      next_attempt();
      return;
    }
    auto end = reader_.finish();
    if (end == http::ResponseParser::Status::kMessage) {  // a body delimited by the close
      good_answered();
      if (fd_) next_attempt();
      return;
    }
    // A reused connection closed before any byte of the answer: the server's keep-alive close
    // raced our request. Clients retry that (RFC 9112 9.3.1); so do we, without an error.
    if (end == http::ResponseParser::Status::kNeedMore && requests_on_connection_ > 1) {
      waiting_ = false;
      runner_.good_abandoned();
      next_attempt();
      return;
    }
    good_error("closed");
    return;
  }
  if (reader_.head_complete()) {
    int status = reader_.response().status;
    react(status == 408 ? Reaction::kClosed408 : Reaction::kAnswered, status);
  } else {
    react(Reaction::kClosedSilently);
  }
}

void Client::on_error(int err) {
  if (err == EPROTO && tls_) {
    tls_failed(tls_->error());
    return;
  }
  bool connecting = step_ == Step::kConnecting || !fd_;
  if (kind_ == Kind::kGood) {
    good_error(connecting ? "connect" : err == ECONNRESET ? "reset" : fmt::format("errno_{}", err));
    return;
  }
  if (connecting) {
    ++runner_.stats(kind_).reactions[static_cast<std::size_t>(Reaction::kConnectFailed)];
    next_attempt(kRetryAfterConnectFailure);
    return;
  }
  // Writes to a server that already closed fail with EPIPE: that is a reset as far as we can tell.
  react(Reaction::kReset);
}

void Client::react(Reaction r, int status) {
  KindStats& s = runner_.stats(kind_);
  ++s.reactions[static_cast<std::size_t>(r)];
  if (r == Reaction::kAnswered || r == Reaction::kClosed408) ++s.statuses[status];
  if (r != Reaction::kNothing) s.reaction_ms.add(since_attempt_ms(), runner_.rng());
  if (raw_handshake())
    for (const std::string& alert : cleartext_alerts(server_bytes_)) ++s.alerts[alert];
  step_ = Step::kDone;
  next_attempt();
}

void Client::leave(bool reset) {
  ++runner_.stats(kind_).reactions[static_cast<std::size_t>(Reaction::kLeft)];
  close_socket(reset);
  step_ = Step::kDone;
  next_attempt();
}

void Client::send_good_request() {
  reader_.reset();
  ++requests_on_connection_;
  waiting_ = true;
  sent_at_ = net::Clock::now();
  runner_.good_sent();
  arm(runner_.config().good_timeout);
  send(request("GET"));
}

void Client::good_answered() {
  waiting_ = false;
  int status = reader_.response().status;
  if (status >= 400) {
    good_error(fmt::format("status_{}", status));
    return;
  }
  GoodStats& g = runner_.good();
  ++g.requests;
  g.body_bytes += reader_.body_bytes();
  g.latency_ms.add(std::chrono::duration<double, std::milli>(net::Clock::now() - sent_at_).count(), runner_.rng());
  runner_.good_answered();
  if (!runner_.running()) return;
  if (reader_.response().keep_alive) {
    send_good_request();
  } else {
    next_attempt();
  }
}

void Client::good_error(std::string_view kind) {
  ++runner_.good().errors[std::string(kind)];
  if (waiting_) runner_.good_abandoned();
  waiting_ = false;
  // Back off a little after a failure to connect (or to shake hands), so that a dead target is not
  // hammered.
  next_attempt(kind == "connect" || kind.starts_with("tls") ? kRetryAfterConnectFailure : milliseconds{0});
}

void Client::end_of_run() {
  // An attempt still waiting for the server (or still reading, not yet at its point of leaving)
  // saw no reaction within the run.
  if (fd_ && kind_ != Kind::kGood && (step_ == Step::kHandshaking || step_ == Step::kActive || step_ == Step::kStalled))
    ++runner_.stats(kind_).reactions[static_cast<std::size_t>(Reaction::kNothing)];
  if (waiting_) runner_.good_abandoned();
  waiting_ = false;
  runner_.loop().timers().cancel(timer_);
  close_socket(false);
  step_ = Step::kDone;
}

void Client::close_socket(bool reset) {
  runner_.loop().timers().cancel(timer_);
  if (!fd_) return;
  ++generation_;
  runner_.loop().remove(fd_.get());
  // No close_notify: a kind's FIN is a bare FIN and its RST a real one (SO_LINGER 0), under TLS too.
  tls_.reset();
  if (reset) net::set_abortive_close(fd_.get());
  fd_.reset();
  out_.clear();
}

}  // namespace unbroken::chaos
