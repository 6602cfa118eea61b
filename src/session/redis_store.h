#pragma once
// Sessions in Redis, for several unbroken instances behind one load balancer. Expiry is Redis' own
// (PEXPIREAT), so there is nothing to sweep. Every command is bounded by a timeout; a dead Redis
// costs a caller at most one connection attempt, then fails fast for a short back-off, and the store
// reconnects by itself when Redis is back.

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "session/session_store.h"

struct redisContext;
struct redisReply;

namespace unbroken::session {

class RedisStore final : public SessionStore {
 public:
  // url: redis://HOST:PORT[/DB]. EINVAL for a malformed URL. Does not connect yet: unbroken starts
  // even while Redis is down.
  static Result<std::unique_ptr<RedisStore>> open(const std::string& url,
                                                  std::chrono::milliseconds timeout = std::chrono::milliseconds(500));
  ~RedisStore() override;

  [[nodiscard]] std::string_view name() const override { return "redis"; }
  Result<std::optional<StoredSession>> load(std::string_view id, Clock::time_point now) override;
  Result<void> save(std::string_view id, const StoredSession& s) override;
  Result<void> touch(std::string_view id, Clock::time_point expires_at) override;
  Result<void> remove(std::string_view id) override;
  Result<SweepResult> sweep(Clock::time_point now, std::size_t max_batch) override;
  Result<std::uint64_t> count_active(Clock::time_point now) override;

 private:
  RedisStore(std::string host, int port, int db, std::chrono::milliseconds timeout);
  // Connects if needed. Caller holds mu_.
  Result<void> connect();
  // Runs one command; on an I/O error drops the connection. Caller holds mu_.
  Result<std::unique_ptr<redisReply, void (*)(void*)>> command(int argc, const char** argv, const std::size_t* lens);
  void drop();

  std::string host_;
  int port_;
  int db_;
  std::chrono::milliseconds timeout_;
  std::mutex mu_;
  redisContext* ctx_ = nullptr;
  std::chrono::steady_clock::time_point retry_after_{};
};

}  // namespace unbroken::session
