#pragma once
// The worker-pool side of an Exchange. Every call is carried to the connection's loop by post();
// write() waits until the loop has queued the bytes and the connection's output is below its
// high-water mark, so a slow client slows the handler instead of growing a buffer.

#include <condition_variable>
#include <memory>
#include <mutex>

#include "http/exchange.h"

namespace unbroken::http {

class BlockingExchange {
 public:
  // Loop thread: wires cancellation to wake a waiting write().
  explicit BlockingExchange(ExchangePtr ex);
  // Worker thread: a handler that returned without finishing gets its response finished (or a 500).
  ~BlockingExchange();
  BlockingExchange(const BlockingExchange&) = delete;
  BlockingExchange& operator=(const BlockingExchange&) = delete;

  // Read-only here: the loop does not touch the request while the handler runs.
  [[nodiscard]] const Request& request() const { return ex_->request(); }
  [[nodiscard]] bool cancelled() const { return ex_->token().cancelled(); }

  void respond(int status, std::string body, std::string content_type = "text/plain; charset=utf-8");
  void start(int status, std::optional<std::uint64_t> content_length = std::nullopt);
  // Blocks while the client is slow; false once the request is cancelled.
  bool write(std::string data);
  void finish();

 private:
  struct Channel {
    std::mutex mu;
    std::condition_variable cv;
    std::uint64_t done = 0;
    void signal() {
      {
        std::lock_guard lock(mu);
        ++done;
      }
      cv.notify_all();
    }
  };
  ExchangePtr ex_;
  std::shared_ptr<Channel> ch_;
  std::uint64_t sent_ = 0;
  bool started_ = false;
  bool finished_ = false;
};

}  // namespace unbroken::http
