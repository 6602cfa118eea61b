#include "net/tcp_connection.h"

#include <sys/uio.h>

#include <algorithm>

namespace unbroken::net {
namespace {
constexpr int kMaxIov = 16;
constexpr std::size_t kReadChunk = 16 * 1024;
}  // namespace

TcpConnection::TcpConnection(EventLoop& loop, UniqueFd fd, std::string peer, std::size_t max_buffered)
    : loop_(loop), fd_(std::move(fd)), peer_(std::move(peer)), max_buffered_(max_buffered), in_(0) {}

TcpConnection::~TcpConnection() {
  close(false);
}

Result<void> TcpConnection::start() {
  interest_ = kReadable;
  return loop_.add(fd_.get(), interest_, this);
}

void TcpConnection::queue(std::string bytes) {
  if (bytes.empty()) return;
  queued_ += bytes.size();
  Segment s;
  s.remaining = bytes.size();
  s.bytes = std::move(bytes);
  out_.push_back(std::move(s));
}

void TcpConnection::queue_file(UniqueFd file, std::uint64_t offset, std::uint64_t length) {
  if (length == 0) return;
  queued_ += length;
  Segment s;
  s.file = std::move(file);
  s.offset = offset;
  s.remaining = length;
  out_.push_back(std::move(s));
}

Result<std::size_t> TcpConnection::flush() {
  std::size_t total = 0;
  while (!out_.empty() && fd_) {
    Result<std::size_t> r = std::size_t{0};
    std::size_t attempted = 0;
    if (out_.front().file) {
      Segment& s = out_.front();
      attempted = static_cast<std::size_t>(std::min<std::uint64_t>(s.remaining, 1u << 20));
      r = send_file(fd_.get(), s.file.get(), s.offset, attempted);
    } else {
      // Gather consecutive byte segments: head and body leave in one sendmsg.
      iovec iov[kMaxIov];
      int n = 0;
      auto it = out_.begin();
      for (; it != out_.end() && n < kMaxIov && !it->file; ++it, ++n) {
        iov[n].iov_base = it->bytes.data() + it->offset;
        iov[n].iov_len = it->remaining;
        attempted += it->remaining;
      }
      bool file_follows = it != out_.end() && it->file;
      r = send_iov(fd_.get(), iov, n, file_follows);
    }
    if (!r) {
      if (r.error().would_block()) break;
      return r.error();
    }
    std::size_t sent = *r;
    total += sent;
    queued_ -= sent;
    while (sent > 0) {
      Segment& s = out_.front();
      std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(sent, s.remaining));
      s.offset += take;
      s.remaining -= take;
      sent -= take;
      if (s.remaining == 0) out_.pop_front();
    }
    if (*r < attempted) break;  // the socket buffer is full
  }
  bool want = !out_.empty();
  if (want != want_write_) {
    want_write_ = want;
    update_interest();
  }
  return total;
}

void TcpConnection::update_interest() {
  if (!fd_) return;
  std::uint32_t interest = (reading_ ? std::uint32_t{kReadable} : 0u) | (want_write_ ? std::uint32_t{kWritable} : 0u);
  // Re-registering an edge-triggered fd re-checks readiness: bytes that arrived while reading was
  // paused produce a fresh event, so resuming needs no speculative read.
  interest_ = interest;
  [[maybe_unused]] auto r = loop_.modify(fd_.get(), interest_, this);
}

void TcpConnection::set_reading(bool on) {
  if (on == reading_) return;
  reading_ = on;
  update_interest();
}

void TcpConnection::shutdown_write() {
  if (fd_) net::shutdown_write(fd_.get());
}

void TcpConnection::close(bool abortive) {
  if (!fd_) return;
  loop_.remove(fd_.get());
  if (abortive) set_abortive_close(fd_.get());
  fd_.reset();
  out_.clear();
  queued_ = 0;
}

std::optional<TcpDelivery> TcpConnection::delivery() const {
  if (!fd_) return std::nullopt;
  return tcp_delivery(fd_.get());
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
      if (r.error().would_block()) break;
      handler_->on_transport_error(classify(r.error()));
      return;
    }
    if (*r == 0) {
      peer_closed_ = true;
      break;
    }
    in_.commit(*r);
    handler_->on_data(in_);
  }
}

void TcpConnection::on_events(std::uint32_t events) {
  if (!fd_) return;
  // Read first, even on an error: a request followed at once by RST arrives as one event, and the
  // bytes that came before the RST say which phase the client left in.
  if (events & (kReadable | kPeerClosed | kError)) read_available();
  if (!fd_) return;
  if (events & kError) {
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      handler_->on_transport_error(classify(Errno{err}));
      return;
    }
  }
  if ((events & kWritable) && want_write_) {
    auto r = flush();
    if (!r) {
      handler_->on_transport_error(classify(r.error()));
      return;
    }
    if (*r > 0) handler_->on_written(*r);
    if (!fd_) return;
  }
  // EPOLLRDHUP arrives even while reading is paused: report the hang-up now, not at the next write.
  if (((events & kPeerClosed) || peer_closed_) && !peer_close_reported_) {
    peer_closed_ = peer_close_reported_ = true;
    handler_->on_peer_closed();
  }
}

}  // namespace unbroken::net
