#include "net/tls_transport.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "net/tls_bio.h"

namespace unbroken::net {
namespace {

// Plaintext per record: a record's ciphertext (plus at most 29 bytes of header, nonce and tag)
// then fits the loop's pooled 16 KiB buffers when the kernel cannot take it at once.
constexpr std::size_t kRecordPlain = 16 * 1024 - 64;
constexpr std::size_t kFileChunk = 4 * kRecordPlain;
constexpr std::size_t kReadChunk = 16 * 1024;
// Records whose delivery is not yet known beyond which the kernel is asked (SIOCOUTQ) to trim them.
constexpr std::size_t kMaxMarks = 1024;

// OpenSSL's reason for the error at the front of this thread's queue, which is then cleared. An
// alert the peer sent is named without OpenSSL's "tlsv1 alert " prefix: "unknown ca".
std::string_view take_reason() {
  unsigned long e = ERR_peek_error();
  ERR_clear_error();
  const char* r = e ? ERR_reason_error_string(e) : nullptr;
  std::string_view reason = r ? r : "unknown error";
  for (std::string_view prefix : {"tlsv1 alert ", "sslv3 alert ", "tlsv13 alert "})
    if (reason.starts_with(prefix)) reason.remove_prefix(prefix.size());
  return reason;
}

}  // namespace

TlsTransport::TlsTransport(EventLoop& loop, std::unique_ptr<TcpConnection> tcp, SSL* ssl, Role role)
    : loop_(loop), tcp_(std::move(tcp)), ssl_(ssl), role_(role), in_(0), out_(loop), resume_timer_([this] {
        decrypt();
      }) {
  // The BIO reads the TCP connection's input and queues on its output: OpenSSL never touches the socket.
  BIO* bio = BIO_new(bio_method_for<TlsTransport>("unbroken-tcp"));
  BIO_set_data(bio, this);
  SSL_set_bio(ssl_, bio, bio);
  if (role_ == Role::kServer) {
    SSL_set_accept_state(ssl_);
  } else {
    SSL_set_connect_state(ssl_);
  }
  session_.started = loop_.now();
  tcp_->set_handler(this);
}

TlsTransport::~TlsTransport() {
  loop_.timers().cancel(resume_timer_);
  tcp_.reset();
  out_.release();
  if (in_.has_storage()) loop_.give_buffer(in_.take_storage());
  SSL_free(ssl_);
}

bool TlsTransport::passthrough() const {
  return session_.plain_http;
}

int TlsTransport::bio_read(char* out, int len) {
  Buffer& in = tcp_->input();
  if (in.empty()) return kBioRetry;  // a FIN is the TCP connection's to report, not an EOF here
  std::size_t n = std::min(in.size(), static_cast<std::size_t>(len));
  std::memcpy(out, in.readable().data(), n);
  in.consume(n);
  return static_cast<int>(n);
}

int TlsTransport::bio_write(const char* data, int len) {
  // Straight from OpenSSL's buffer to the kernel while it keeps up; a send's error waits for the
  // caller (OpenSSL is told the bytes were taken: the connection is over either way).
  auto r = tcp_->write_through({data, static_cast<std::size_t>(len)});
  if (r) {
    cipher_written_ += *r;
  } else if (!write_error_) {
    write_error_ = r.error();
  }
  cipher_queued_ += static_cast<std::size_t>(len);
  return len;
}

// ---- reading

void TlsTransport::on_connected() {
  (void)handshake();  // a client's: the ClientHello goes now
}

void TlsTransport::on_data(Buffer& in) {
  if (closed_) return;
  if (session_.failed) {
    in.clear();  // lingering after a failed handshake: what comes is dropped
    return;
  }
  if (session_.handshaking && (!handshake() || session_.handshaking)) return;
  decrypt();
}

bool TlsTransport::handshake() {
  ERR_clear_error();
  int r = SSL_do_handshake(ssl_);
  int err = r == 1 ? SSL_ERROR_NONE : SSL_get_error(ssl_, r);
  if (err != SSL_ERROR_NONE && err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
    if (ERR_GET_REASON(ERR_peek_error()) == SSL_R_HTTP_REQUEST) {
      // Plain HTTP on the TLS port: the answer (a 400) goes out as plain text, as nginx does.
      session_.plain_http = true;
      tcp_->input().clear();
    }
    std::string_view reason = take_reason();
    // The alert OpenSSL wrote goes if the peer is still there; if it is not (garbage, then a
    // reset), what it did wrong is still the record's reason.
    write_error_.reset();
    [[maybe_unused]] auto sent = tcp_->flush();
    fail(SocketError::kProtocol, reason);
    return false;
  }
  // A server's handshake ends with the client's Finished, and the client's first request often
  // came with it: that is read (on_data's decrypt) before a failure to send what the handshake
  // wrote (the session tickets) is told, so a client that resets at once leaves a record of its
  // request, not of a handshake. A client's Finished must go before anything else.
  if (err == SSL_ERROR_NONE && role_ == Role::kServer) {
    on_handshake_done();
    return !closed_;
  }
  if (!send_cipher()) return false;
  if (err == SSL_ERROR_NONE) on_handshake_done();
  return !closed_;
}

void TlsTransport::on_handshake_done() {
  session_.handshaking = false;
  session_.version = SSL_get_version(ssl_);
  session_.cipher = SSL_get_cipher_name(ssl_);
  session_.resumed = SSL_session_reused(ssl_) == 1;
  const char* sni = SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name);
  session_.sni = sni ? sni : "";
  if (role_ == Role::kServer) {
    handler_->on_secured();
  } else {
    handler_->on_connected();
  }
  // Output the handler queued while the handshake ran (a client's request) goes now.
  if (!closed_ && !out_.empty()) report(flush());
}

void TlsTransport::fail(SocketError e, std::string_view reason) {
  if (session_.handshaking) {
    session_.handshaking = false;
    session_.failed = true;
    session_.error = reason;
  }
  handler_->on_transport_error(e);
}

void TlsTransport::decrypt() {
  if (closed_ || session_.handshaking || session_.failed) return;
  std::size_t max = tcp_->max_buffered();
  bool peer_done = false;
  while (reading_ && !closed_) {
    if (in_.size() >= max) {
      // The handler has not taken what it has: paused, as TcpConnection pauses itself, so that
      // the handler's set_reading(true) resumes both.
      reading_ = false;
      tcp_->set_reading(false);
      break;
    }
    if (!in_.has_storage()) in_.adopt_storage(loop_.take_buffer());
    std::size_t room = std::min(kReadChunk, max - in_.size());
    char* p = in_.prepare(room, max);
    room = std::min(room, in_.writable());
    ERR_clear_error();
    int n = SSL_read(ssl_, p, static_cast<int>(room));
    if (n > 0) {
      in_.commit(static_cast<std::size_t>(n));
      handler_->on_data(in_);
      continue;
    }
    int err = SSL_get_error(ssl_, n);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) break;
    if (err == SSL_ERROR_ZERO_RETURN) {
      peer_done = true;  // close_notify: the client's FIN follows, or it is as good as one
      ERR_clear_error();
      break;
    }
    std::string_view reason = take_reason();
    fail(SocketError::kProtocol, reason);
    return;
  }
  if (closed_) return;
  // Reading may have written (a KeyUpdate's answer, an alert): it goes now.
  if (write_error_ && !send_cipher()) return;
  // Reading may have written (a KeyUpdate's answer, an alert), and our own records may wait in
  // the TCP queue: the TCP connection reads before it writes, so a flush here that empties its
  // queue turns its write interest off, and only this call can go on (on_written, then more).
  if (tcp_->queued_bytes() > 0) {
    report(flush());
    if (closed_) return;
  }
  if (in_.empty() && in_.has_storage()) loop_.give_buffer(in_.take_storage());
  // Read to the end (what is left is at most part of a record, which the FIN cuts): its FIN now.
  if (peer_close_pending_ && reading_ && in_.size() < max) peer_done = true;
  if (peer_done && !peer_close_reported_) {
    peer_close_reported_ = true;
    handler_->on_peer_closed();
  }
}

void TlsTransport::on_peer_closed() {
  if (closed_ || peer_close_reported_) return;
  // A client of a server (the proxy's upstream connection) reads what came before the FIN first:
  // ciphertext still waiting while its reading is paused is delivered before the FIN, which
  // decrypt() reports once reading resumes and has gone through it.
  if (role_ == Role::kClient && !reading_ && !session_.handshaking &&
      (!tcp_->input().empty() || SSL_has_pending(ssl_) == 1)) {
    peer_close_pending_ = true;
    return;
  }
  peer_close_reported_ = true;
  handler_->on_peer_closed();
}

void TlsTransport::on_transport_error(SocketError e) {
  if (closed_) return;
  fail(e, {});
}

void TlsTransport::set_reading(bool on) {
  if (on == reading_) return;
  reading_ = on;
  tcp_->set_reading(on);
  // Ciphertext already read, or decrypted by OpenSSL and not yet taken, raises no new event.
  if (on && !resume_timer_.armed() && (!tcp_->input().empty() || SSL_has_pending(ssl_) == 1))
    loop_.timers().arm(resume_timer_, loop_.now());
}

// ---- writing

void TlsTransport::queue(std::string_view bytes) {
  if (passthrough()) return tcp_->queue(bytes);
  out_.append(bytes);
}

void TlsTransport::queue_file(UniqueFd file, std::uint64_t offset, std::uint64_t length) {
  if (passthrough()) return tcp_->queue_file(std::move(file), offset, length);
  out_.append_file(std::move(file), offset, length);
}

std::size_t TlsTransport::queued_bytes() const {
  if (passthrough()) return tcp_->queued_bytes();
  return out_.size() + static_cast<std::size_t>(plain_encrypted_ - plain_written_);
}

void TlsTransport::discard_output_after(std::size_t keep) {
  if (passthrough()) return tcp_->discard_output_after(keep);
  // Encrypted records cannot be taken back (the next one's sequence number would not match), so
  // only plaintext still waiting to be encrypted is dropped.
  std::size_t encrypted = static_cast<std::size_t>(plain_encrypted_ - plain_written_);
  out_.discard_after(keep > encrypted ? keep - encrypted : 0);
}

Result<std::size_t> TlsTransport::flush() {
  if (passthrough()) return tcp_->flush();
  if (closed_ || session_.handshaking || session_.failed || tcp_->connecting()) return std::size_t{0};
  if (auto r = encrypt(); !r) return r.error();
  return take_written();
}

Result<void> TlsTransport::encrypt() {
  for (;;) {
    // What the kernel takes first: only once it has taken all is the next record made, so
    // plaintext waits unencrypted (and discardable) while the client is slow.
    if (tcp_->queued_bytes() > 0) {
      auto r = tcp_->flush();
      if (!r) return r.error();
      cipher_written_ += *r;
      if (tcp_->queued_bytes() > 0) break;
    }
    if (out_.empty()) break;
    OutputQueue::Segment& s = out_.front();
    std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(s.remaining, kRecordPlain));
    if (s.file) {
      auto r = encrypt_file(s);
      if (!r) return r.error();
      n = *r;
    } else if (!encrypt_one(out_.front_bytes().substr(0, n))) {
      return Errno{EPROTO};
    }
    if (write_error_) return *std::exchange(write_error_, std::nullopt);
    out_.consume(n);
  }
  if (out_.empty() && shutdown_pending_) send_close_notify();
  if (fin_pending_ && tcp_->queued_bytes() == 0) {
    fin_pending_ = false;
    tcp_->shutdown_write();
  }
  return {};
}

Result<std::size_t> TlsTransport::encrypt_file(OutputQueue::Segment& s) {
  // Read ahead a few records at once (fewer preads); what the kernel has no room for is dropped and
  // read again later, which happens only while the client is slower than the disk.
  thread_local char chunk[kFileChunk];
  std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(s.remaining, kFileChunk));
  ssize_t got = ::pread(s.file.get(), chunk, want, static_cast<off_t>(s.offset));
  if (got <= 0) return Errno{got == 0 ? EIO : errno};  // the file shrank under us, or failed
  std::size_t done = 0;
  auto have = static_cast<std::size_t>(got);
  while (done < have) {
    std::size_t n = std::min(kRecordPlain, have - done);
    if (!encrypt_one({chunk + done, n})) return Errno{EPROTO};
    done += n;
    if (write_error_ || tcp_->queued_bytes() > 0) break;  // the kernel is full: the rest waits
  }
  return done;
}

bool TlsTransport::encrypt_one(std::string_view plain) {
  ERR_clear_error();
  // Our BIO takes every byte and partial writes are off (a client's max_fragment_length would
  // otherwise end a write after its first small record), so a write is done whole or failed.
  std::size_t written = 0;
  if (SSL_write_ex(ssl_, plain.data(), plain.size(), &written) != 1 || written != plain.size()) {
    ERR_clear_error();
    return false;
  }
  plain_encrypted_ += plain.size();
  marks_.push_back(Mark{cipher_queued_, plain_encrypted_});
  return true;
}

std::size_t TlsTransport::take_written() {
  std::uint64_t before = plain_written_;
  while (marks_written_ < marks_.size() && marks_[marks_written_].cipher_end <= cipher_written_)
    plain_written_ = marks_[marks_written_++].plain_end;
  if (marks_.size() - marks_head_ > kMaxMarks) {
    [[maybe_unused]] auto d = delivery();  // trims what the peer acknowledged
    // Still too many (a send buffer of over 16 MiB): the oldest are dropped, and what the peer
    // acknowledged is reported a little low, never high.
    while (marks_.size() - marks_head_ > kMaxMarks && marks_head_ < marks_written_)
      plain_acked_ = marks_[marks_head_++].plain_end;
  }
  return static_cast<std::size_t>(plain_written_ - before);
}

bool TlsTransport::send_cipher() {
  if (write_error_) {
    fail(classify(*std::exchange(write_error_, std::nullopt)), {});
    return false;
  }
  auto r = tcp_->flush();
  if (!r) {
    fail(classify(r.error()), {});
    return false;
  }
  cipher_written_ += *r;
  return true;
}

void TlsTransport::report(Result<std::size_t> r) {
  if (!r) {
    fail(classify(r.error()), {});
    return;
  }
  if (*r > 0) handler_->on_written(*r);
}

void TlsTransport::on_written(std::size_t n) {
  if (closed_) return;
  if (passthrough()) return handler_->on_written(n);
  cipher_written_ += n;
  if (session_.handshaking) return;
  report(flush());
}

void TlsTransport::shutdown_write() {
  if (passthrough() || session_.handshaking || session_.failed) return tcp_->shutdown_write();
  if (closed_ || close_notify_sent_) return;
  if (!out_.empty()) {
    shutdown_pending_ = true;  // after the queued output, from encrypt()
    return;
  }
  send_close_notify();
}

void TlsTransport::send_close_notify() {
  if (close_notify_sent_) return;
  close_notify_sent_ = true;
  shutdown_pending_ = false;
  ERR_clear_error();
  SSL_shutdown(ssl_);  // queues close_notify; the peer's is not waited for
  ERR_clear_error();
  write_error_.reset();  // a peer that is gone does not need it
  auto r = tcp_->flush();
  if (r) cipher_written_ += *r;
  // The FIN goes after every queued byte, close_notify included.
  if (tcp_->queued_bytes() == 0) {
    tcp_->shutdown_write();
  } else {
    fin_pending_ = true;
  }
}

void TlsTransport::close(bool abortive) {
  if (closed_) return;
  closed_ = true;
  loop_.timers().cancel(resume_timer_);
  tcp_->close(abortive);
  out_.release();
}

std::optional<TcpDelivery> TlsTransport::delivery() const {
  if (passthrough()) return tcp_->delivery();
  auto d = tcp_->delivery();
  if (!d) return std::nullopt;
  // A record counts once the peer acknowledged all of it: it cannot decrypt less.
  while (marks_head_ < marks_written_ && marks_[marks_head_].cipher_end <= d->bytes_acked)
    plain_acked_ = marks_[marks_head_++].plain_end;
  if (marks_head_ == marks_.size()) {
    marks_.clear();  // keeps its capacity: steady traffic does not allocate
    marks_head_ = marks_written_ = 0;
  } else if (marks_head_ > 64 && marks_head_ * 2 > marks_.size()) {
    marks_.erase(marks_.begin(), marks_.begin() + static_cast<std::ptrdiff_t>(marks_head_));
    marks_written_ -= marks_head_;
    marks_head_ = 0;
  }
  return TcpDelivery{plain_acked_};
}

}  // namespace unbroken::net
