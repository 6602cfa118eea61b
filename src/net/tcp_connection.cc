#include "net/tcp_connection.h"

#include <sys/uio.h>

#include <algorithm>

#include "base/block_pool.h"

namespace unbroken::net {
namespace {
constexpr std::size_t kReadChunk = 16 * 1024;
}  // namespace

struct TcpConnection::ConnectState {
  explicit ConnectState(TcpConnection* c) : timer([c] { c->on_connect_timer(); }) {}
  // Armed for the connect timeout, or at once to report an error connect() met before any event.
  TimerNode timer;
  std::optional<SocketError> early_error;
  // shutdown_write() came before the connection did: the FIN follows the held output, all of it.
  bool shutdown_when_drained = false;
};

void* TcpConnection::operator new(std::size_t size) {
  return size == sizeof(TcpConnection) ? BlockPool<sizeof(TcpConnection)>::take() : ::operator new(size);
}

void TcpConnection::operator delete(void* p, std::size_t size) {
  if (size == sizeof(TcpConnection)) return BlockPool<sizeof(TcpConnection)>::give(p);
  ::operator delete(p);
}

TcpConnection::TcpConnection(EventLoop& loop, UniqueFd fd, std::string peer, std::size_t max_buffered)
    : loop_(loop), fd_(std::move(fd)), peer_(std::move(peer)), max_buffered_(max_buffered), in_(0), out_(loop) {}

TcpConnection::~TcpConnection() {
  close(false);
}

Result<void> TcpConnection::start() {
  interest_ = kReadable;
  return loop_.add(fd_.get(), interest_, this);
}

std::unique_ptr<TcpConnection> TcpConnection::connect(EventLoop& loop, const SocketAddress& to,
                                                      std::size_t max_buffered, std::chrono::milliseconds timeout) {
  std::unique_ptr<TcpConnection> c(new TcpConnection(loop, UniqueFd{}, to.to_string(), max_buffered));
  c->connect_ = std::make_unique<ConnectState>(c.get());
  c->connecting_ = true;
  auto fd = connect_tcp(to);
  // Writability alone says the connect finished; reading starts once it has.
  Result<void> added = fd ? loop.add(fd->get(), kWritable, c.get()) : Result<void>(fd.error());
  if (!added) {
    // Refused at once (unix sockets), or no descriptor: the handler hears it from the timer, in a
    // later turn, as it would hear any other outcome (never from inside this call).
    c->connect_->early_error = classify(added.error());
    loop.timers().arm(c->connect_->timer, loop.now());
    return c;
  }
  c->fd_ = std::move(*fd);
  c->interest_ = kWritable;
  loop.timers().arm(c->connect_->timer, loop.now() + timeout);
  return c;
}

void TcpConnection::on_connect_events(std::uint32_t events) {
  // SO_ERROR, not the event bits, says how it ended: a refusal comes as EPOLLOUT|EPOLLERR|EPOLLHUP.
  Errno err = socket_error(fd_.get());
  if (err.code != 0) {
    fail_connect(classify(err));
    return;
  }
  if (!(events & kWritable)) return;  // still in progress
  connecting_ = false;
  loop_.timers().cancel(connect_->timer);
  // Re-registering re-checks readiness: bytes or a FIN that came with the connect are reported
  // anew. flush() below asks for writability again if the held output does not all fit.
  want_write_ = false;
  update_interest();
  handler_->on_connected();
  if (!fd_) return;
  if (!out_.empty() && !flush_and_report()) return;
  shutdown_if_drained();
}

void TcpConnection::shutdown_if_drained() {
  if (!connect_ || !connect_->shutdown_when_drained || !out_.empty() || !fd_) return;
  connect_->shutdown_when_drained = false;
  shutdown_write();
}

void TcpConnection::on_connect_timer() {
  fail_connect(connect_->early_error.value_or(SocketError::kConnectTimeout));
}

void TcpConnection::fail_connect(SocketError e) {
  close(false);
  handler_->on_transport_error(e);
}

void TcpConnection::queue(std::string_view bytes) {
  out_.append(bytes);
}

Result<std::size_t> TcpConnection::write_through(std::string_view bytes) {
  if (connecting_ || !out_.empty() || !fd_) {
    queue(bytes);
    return std::size_t{0};
  }
  std::size_t attempted = std::min(bytes.size(), allowance());
  std::size_t sent = 0;
  if (attempted > 0) {
    iovec iov{const_cast<char*>(bytes.data()), attempted};
    auto r = send_iov(fd_.get(), &iov, 1);
    if (r) {
      sent = *r;
    } else if (!r.error().would_block()) {
      return r.error();
    }
  }
  written_ += sent;
  turn_sent_ += sent;
  if (sent < bytes.size()) {
    queue(bytes.substr(sent));
    // The budget stopped it, not a full socket: no EPOLLOUT would come.
    if (sent == attempted) loop_.make_ready(ready_);
    if (!want_write_) {
      want_write_ = true;
      update_interest();
    }
  }
  return sent;
}

void TcpConnection::queue_file(UniqueFd file, std::uint64_t offset, std::uint64_t length) {
  out_.append_file(std::move(file), offset, length);
}

void TcpConnection::discard_output_after(std::size_t keep) {
  out_.discard_after(keep);
  bool want = !out_.empty();
  if (want != want_write_) {
    want_write_ = want;
    update_interest();
  }
}

Result<std::size_t> TcpConnection::flush() {
  if (connecting_) return std::size_t{0};  // held until connected
  std::size_t total = 0;
  std::size_t allowed = allowance();
  bool full = false;
  while (!out_.empty() && fd_ && total < allowed) {
    OutputQueue::Segment& s = out_.front();
    std::size_t attempted = static_cast<std::size_t>(std::min<std::uint64_t>({s.remaining, 1u << 20, allowed - total}));
    Result<std::size_t> r = std::size_t{0};
    if (s.file) {
      r = send_file(fd_.get(), s.file.get(), s.offset, attempted);
    } else {
      // A file that follows its head goes out in the same packet (MSG_MORE).
      iovec iov{const_cast<char*>(out_.front_bytes().data()), attempted};
      r = send_iov(fd_.get(), &iov, 1, out_.more_after_front());
    }
    if (!r) {
      full = r.error().would_block();
      if (full) break;
      return r.error();
    }
    std::size_t sent = *r;
    total += sent;
    written_ += sent;
    out_.consume(sent);
    if (sent < attempted) {
      full = true;  // the socket buffer is: EPOLLOUT says when it has room
      break;
    }
  }
  turn_sent_ += total;
  // The budget ran out with the socket still writable: the next turn goes on from the ready list.
  if (!full && !out_.empty() && fd_) loop_.make_ready(ready_);
  bool want = !out_.empty();
  if (want != want_write_) {
    want_write_ = want;
    update_interest();
  }
  shutdown_if_drained();
  return total;
}

std::size_t TcpConnection::allowance() {
  if (budget_turn_ != loop_.turn()) {
    budget_turn_ = loop_.turn();
    turn_sent_ = 0;
  }
  std::size_t budget = loop_.write_budget();
  return turn_sent_ < budget ? budget - turn_sent_ : 0;
}

void TcpConnection::on_ready() {
  if (fd_ && !connecting_ && !out_.empty()) flush_and_report();
}

bool TcpConnection::flush_and_report() {
  auto r = flush();
  if (!r) {
    handler_->on_transport_error(classify(r.error()));
    return false;
  }
  if (*r > 0) handler_->on_written(*r);
  return static_cast<bool>(fd_);
}

void TcpConnection::update_interest() {
  if (!fd_ || connecting_) return;  // a connecting socket waits for writability only
  std::uint32_t interest = (reading_ ? std::uint32_t{kReadable} : 0u) | (want_write_ ? std::uint32_t{kWritable} : 0u);
  // Re-registering an edge-triggered fd re-checks readiness: bytes that arrived while reading was
  // paused produce a fresh event, so resuming needs no speculative read.
  interest_ = interest;
  [[maybe_unused]] auto r = loop_.modify(fd_.get(), interest_, this);
}

void TcpConnection::set_reading(bool on) {
  if (on == reading_) return;
  reading_ = on;
  // Not reading, arrivals go unseen: the last read's "drained" no longer says the socket is empty
  // (a close at once would meet unread bytes and send RST).
  if (!on) drained_ = false;
  update_interest();
}

void TcpConnection::shutdown_write() {
  if (!fd_) return;
  if (connecting_ || (connect_ && !out_.empty())) {
    connect_->shutdown_when_drained = true;
    return;
  }
  net::shutdown_write(fd_.get());
  fin_sent_ = true;
}

void TcpConnection::close(bool abortive) {
  if (connect_) loop_.timers().cancel(connect_->timer);  // no callback follows, not even an early error
  connecting_ = false;
  ready_.unlink();
  if (fd_) {
    loop_.remove(fd_.get());
    if (abortive) set_abortive_close(fd_.get());
    fd_.reset();
  }
  // Also without a descriptor: a connect that failed at once may hold output queued meanwhile.
  out_.release();
}

std::optional<TcpDelivery> TcpConnection::delivery() const {
  if (!fd_) return std::nullopt;
  // Acknowledged bytes stay acknowledged: once every byte written was, the kernel need not be asked
  // again until more is written (a close that checked delivery, then its record, ask once).
  if (written_ == all_acked_at_) return TcpDelivery{written_};
  auto d = tcp_delivery(fd_.get(), written_, fin_sent_);
  if (d && d->bytes_acked == written_) all_acked_at_ = written_;
  return d;
}

void TcpConnection::read_available() {
  if (!in_.has_storage()) in_.adopt_storage(loop_.take_buffer());
  read_loop();
  // Everything read was consumed: give the buffer back, an idle connection holds none.
  if (in_.empty() && in_.has_storage()) loop_.give_buffer(in_.take_storage());
}

void TcpConnection::read_loop() {
  // Edge-triggered: read until EAGAIN, or until the cap (then the rest waits in the kernel and a
  // later set_reading(true) re-arms the event).
  drained_ = false;
  while (fd_ && reading_ && !peer_closed_) {
    if (in_.size() >= max_buffered_) {
      reading_ = false;
      update_interest();
      break;
    }
    std::size_t room = std::min(kReadChunk, max_buffered_ - in_.size());
    char* p = in_.prepare(room, max_buffered_);
    room = std::min(room, in_.writable());
    auto r = read_some(fd_.get(), p, room);
    if (!r) {
      drained_ = r.error().would_block();
      if (drained_) break;
      handler_->on_transport_error(classify(r.error()));
      return;
    }
    if (*r == 0) {
      peer_closed_ = drained_ = true;
      break;
    }
    in_.commit(*r);
    drained_ = *r < room;
    handler_->on_data(in_);
    // A short read emptied the socket: under edge triggering every later arrival raises a new
    // event, so the read that would only say EAGAIN is saved (nginx does the same). A hang-up
    // raises one too (EPOLLRDHUP), so none is missed.
    if (*r < room) break;
  }
}

void TcpConnection::on_events(std::uint32_t events) {
  if (!fd_) return;
  if (connecting_) {
    on_connect_events(events);
    return;
  }
  // Read first, even on an error: a request followed at once by RST arrives as one event, and the
  // bytes that came before the RST say which phase the client left in.
  if (events & (kReadable | kPeerClosed | kError)) read_available();
  if (!fd_) return;
  if (events & kSocketError) {
    if (Errno err = socket_error(fd_.get()); err.code != 0) {
      handler_->on_transport_error(classify(err));
      return;
    }
  }
  if ((events & kWritable) && want_write_ && !flush_and_report()) return;
  // EPOLLRDHUP arrives even while reading is paused: report the hang-up now, not at the next write.
  bool hung_up = (events & kPeerClosed) || peer_closed_;
  if (hangup_after_input_) hung_up = peer_closed_ || ((events & kPeerClosed) && reading_ && drained_);
  if (hung_up && !peer_close_reported_) {
    peer_closed_ = peer_close_reported_ = true;
    handler_->on_peer_closed();
  }
}

}  // namespace unbroken::net
