#pragma once
// A listening socket on one loop. Accepts until the backlog is empty; when descriptors run out
// (EMFILE/ENFILE) it neither spins nor stalls: it pauses, counts the event, and retries after a short
// back-off or as soon as a connection of this loop closes.

#include <functional>

#include "net/event_loop.h"
#include "net/socket.h"

namespace unbroken::net {

class Listener final : public IoHandler {
 public:
  using AcceptFn = std::function<void(UniqueFd, const SocketAddress&)>;
  // Returns false when the connection limit is reached; accepting pauses until resume().
  using AdmitFn = std::function<bool()>;
  using ErrorFn = std::function<void(int err)>;
  // The backlog is empty: every client that waited has been accepted.
  using CaughtUpFn = std::function<void()>;

  Listener(EventLoop& loop, UniqueFd fd, AcceptFn on_accept, AdmitFn admit, ErrorFn on_error,
           CaughtUpFn on_caught_up = nullptr);
  ~Listener() override;
  // shared: the socket is one every loop accepts on (a duplicate each), not this loop's own, and
  // a new connection wakes one loop, not every one (kExclusive).
  [[nodiscard]] Result<void> start(bool shared = false);
  // Stops accepting for good and closes the socket (graceful shutdown).
  void close();
  // Accept again after a pause (a descriptor or a connection slot was freed).
  void resume();
  [[nodiscard]] bool paused() const { return paused_; }

  void on_events(std::uint32_t events) override;

 private:
  void accept_all();
  void pause();

  EventLoop& loop_;
  UniqueFd fd_;
  AcceptFn on_accept_;
  AdmitFn admit_;
  ErrorFn on_error_;
  CaughtUpFn on_caught_up_;
  TimerNode retry_;
  bool paused_ = false;
};

}  // namespace unbroken::net
