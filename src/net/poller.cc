#include "net/poller.h"

namespace unbroken::net {
namespace {

std::uint32_t to_epoll(std::uint32_t interest) {
  // EPOLLRDHUP is always on: a client that leaves while its handler runs must be seen at once,
  // even when we are not reading (body unread, pipelined requests waiting).
  // EPOLLEXCLUSIVE takes no EPOLLRDHUP (EINVAL): only listeners ask for it, and they have no peer.
  std::uint32_t e = EPOLLET | ((interest & kExclusive) ? EPOLLEXCLUSIVE : EPOLLRDHUP);
  if (interest & kReadable) e |= EPOLLIN;
  if (interest & kWritable) e |= EPOLLOUT;
  return e;
}

std::uint32_t from_epoll(std::uint32_t e) {
  std::uint32_t r = 0;
  if (e & EPOLLIN) r |= kReadable;
  if (e & EPOLLOUT) r |= kWritable;
  if (e & EPOLLRDHUP) r |= kPeerClosed;
  if (e & (EPOLLERR | EPOLLHUP)) r |= kError;
  if (e & EPOLLERR) r |= kSocketError;
  return r;
}

}  // namespace

Poller::Poller(UniqueFd fd, std::size_t max_events) : epfd_(std::move(fd)), raw_(max_events), events_(max_events) {}

Result<Poller> Poller::create(std::size_t max_events) {
  int fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) return Errno{errno};
  return Poller(UniqueFd(fd), max_events);
}

Result<void> Poller::add(int fd, std::uint32_t interest, void* owner) {
  epoll_event ev{};
  ev.events = to_epoll(interest);
  ev.data.ptr = owner;
  if (::epoll_ctl(epfd_.get(), EPOLL_CTL_ADD, fd, &ev) < 0) return Errno{errno};
  return {};
}

Result<void> Poller::modify(int fd, std::uint32_t interest, void* owner) {
  epoll_event ev{};
  ev.events = to_epoll(interest);
  ev.data.ptr = owner;
  if (::epoll_ctl(epfd_.get(), EPOLL_CTL_MOD, fd, &ev) < 0) return Errno{errno};
  return {};
}

void Poller::remove(int fd) {
  ::epoll_ctl(epfd_.get(), EPOLL_CTL_DEL, fd, nullptr);
}

std::span<const PollEvent> Poller::poll(int timeout_ms) {
  int n = ::epoll_wait(epfd_.get(), raw_.data(), static_cast<int>(raw_.size()), timeout_ms);
  if (n <= 0) return {};
  for (int i = 0; i < n; ++i) events_[i] = PollEvent{raw_[i].data.ptr, from_epoll(raw_[i].events)};
  return {events_.data(), static_cast<std::size_t>(n)};
}

}  // namespace unbroken::net
