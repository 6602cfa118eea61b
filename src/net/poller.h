#pragma once
// The poller seam: the only code that knows epoll. Five calls, as small as Redis' ae_epoll.c.

#include <sys/epoll.h>

#include <cstdint>
#include <span>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"

namespace unbroken::net {

// Interest and readiness bits, independent of epoll's spelling.
enum : std::uint32_t {
  kReadable = 1u << 0,
  kWritable = 1u << 1,
  kPeerClosed = 1u << 2,  // peer sent FIN (EPOLLRDHUP), reported even if we stopped reading
  kError = 1u << 3,       // RST or another socket error (EPOLLERR / EPOLLHUP)
  // EPOLLERR alone: SO_ERROR has something to say. A hang-up without it (both directions shut, as
  // at the end of a lingering close) has none, and asking would cost a getsockopt for nothing.
  kSocketError = 1u << 4,
  // add() only (EPOLLEXCLUSIVE): of the pollers watching one shared descriptor, an event wakes one
  // or a few rather than all (a listening socket every loop accepts on, with no SO_REUSEPORT group).
  kExclusive = 1u << 5,
};

struct PollEvent {
  void* owner;
  std::uint32_t events;
};

class Poller {
 public:
  static Result<Poller> create(std::size_t max_events = 256);

  // Edge-triggered registration: `owner` comes back in every PollEvent for fd.
  [[nodiscard]] Result<void> add(int fd, std::uint32_t interest, void* owner);
  [[nodiscard]] Result<void> modify(int fd, std::uint32_t interest, void* owner);
  void remove(int fd);
  // Waits up to timeout_ms (-1 forever). The span points into storage owned by the poller and is
  // valid until the next poll(). EINTR returns an empty span.
  std::span<const PollEvent> poll(int timeout_ms);

 private:
  Poller(UniqueFd fd, std::size_t max_events);
  UniqueFd epfd_;
  std::vector<epoll_event> raw_;
  std::vector<PollEvent> events_;
};

}  // namespace unbroken::net
