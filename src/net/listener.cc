#include "net/listener.h"

namespace unbroken::net {
namespace {
constexpr std::chrono::milliseconds kAcceptRetry{100};
}

Listener::Listener(EventLoop& loop, UniqueFd fd, AcceptFn on_accept, AdmitFn admit, ErrorFn on_error,
                   CaughtUpFn on_caught_up)
    : loop_(loop),
      fd_(std::move(fd)),
      on_accept_(std::move(on_accept)),
      admit_(std::move(admit)),
      on_error_(std::move(on_error)),
      on_caught_up_(std::move(on_caught_up)),
      retry_([this] { resume(); }) {}

Listener::~Listener() {
  close();
}

Result<void> Listener::start(bool shared) {
  return loop_.add(fd_.get(), shared ? kReadable | kExclusive : kReadable, this);
}

void Listener::close() {
  if (!fd_) return;
  loop_.timers().cancel(retry_);
  loop_.remove(fd_.get());
  fd_.reset();
}

void Listener::pause() {
  paused_ = true;
  loop_.timers().arm(retry_, loop_.now() + kAcceptRetry);
}

void Listener::resume() {
  if (!paused_ || !fd_) return;
  paused_ = false;
  loop_.timers().cancel(retry_);
  accept_all();
}

void Listener::on_events(std::uint32_t) {
  if (!paused_) accept_all();
}

void Listener::accept_all() {
  while (fd_) {
    if (!admit_()) {
      // At the connection limit: leave clients in the kernel backlog until a slot frees up.
      pause();
      return;
    }
    SocketAddress peer;
    auto r = accept_tcp(fd_.get(), &peer);
    if (!r) {
      Errno e = r.error();
      if (e.would_block()) {
        if (on_caught_up_) on_caught_up_();
        return;
      }
      on_error_(e.code);
      // EMFILE, ENFILE, ENOBUFS, ENOMEM: the pending connection stays in the backlog; with an
      // edge-triggered fd no new event would come, so retry on a timer instead of spinning.
      pause();
      return;
    }
    on_accept_(std::move(*r), peer);
  }
}

}  // namespace unbroken::net
