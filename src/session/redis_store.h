#pragma once
// Sessions in Redis, shared by several unbroken instances behind one load balancer. Key `ub:sess:<id>`
// holds the values as one JSON object (values_json.h); expiry is Redis' own (SET ... PXAT, PEXPIREAT),
// so sweep() has nothing to do. Needs Redis >= 7.0 (PEXPIRETIME).
//
// One hiredis connection behind a mutex: store threads take turns, and a dead Redis is probed by one
// caller at a time. Every command is bounded by `timeout` (the connect, and each read and write); on an
// I/O error or a timeout the connection is dropped and a later call reconnects. A call makes at most one
// connection attempt, and for kReconnectBackoff after a failed one calls fail with ECONNREFUSED without
// touching the network, so a dead Redis costs callers little and unbroken reconnects by itself.

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "session/session_store.h"

struct redisContext;
struct redisReply;

namespace unbroken::session {

class RedisStore final : public SessionStore {
 public:
  static constexpr std::chrono::milliseconds kReconnectBackoff{100};

  // url: redis://HOST:PORT[/DB], HOST a name, an IPv4 address or a bracketed IPv6 address. EINVAL for
  // anything else (credentials included). Does not connect: unbroken starts even while Redis is down.
  static Result<std::unique_ptr<RedisStore>> open(const std::string& url,
                                                  std::chrono::milliseconds timeout = std::chrono::milliseconds(500));
  ~RedisStore() override;
  RedisStore(const RedisStore&) = delete;
  RedisStore& operator=(const RedisStore&) = delete;

  // Errors of every call: ECONNREFUSED (Redis unreachable, or within the back-off after a failed
  // connect), ETIMEDOUT (connect or command timed out), EIO (connection lost, or Redis answered an
  // error). save() also returns EINVAL for keys or values that are not UTF-8 (JSON could not hold them).
  [[nodiscard]] std::string_view name() const override { return "redis"; }
  Result<std::optional<StoredSession>> load(std::string_view id, Clock::time_point now) override;
  Result<void> save(std::string_view id, const StoredSession& s) override;
  Result<void> touch(std::string_view id, Clock::time_point expires_at) override;
  Result<void> remove(std::string_view id) override;
  // Always {0, false}: Redis expires keys itself.
  Result<SweepResult> sweep(Clock::time_point now, std::size_t max_batch) override;
  // The number of `ub:sess:*` keys in the database, by SCAN (COUNT 1000 per step, the lock released
  // between steps). Like any SCAN, a key may be counted twice while Redis resizes its table.
  Result<std::uint64_t> count_active(Clock::time_point now) override;

 private:
  struct FreeReply {
    void operator()(redisReply* r) const;
  };
  using Reply = std::unique_ptr<redisReply, FreeReply>;
  using Command = std::vector<std::string>;

  RedisStore(std::string host, int port, int db, std::chrono::milliseconds timeout);
  // Sends `commands` as one pipeline and returns their replies in order (error replies included: the
  // caller checks types). Connects first if needed. Caller holds mu_.
  Result<std::vector<Reply>> run(const std::vector<Command>& commands);
  // One connection attempt (plus SELECT), or ECONNREFUSED within the back-off. Caller holds mu_.
  Result<void> connect();
  // Writes and reads on ctx_; on failure drops the connection and sets *peer_closed when Redis had
  // closed it (EOF, reset). Caller holds mu_.
  Result<std::vector<Reply>> exchange(const std::vector<Command>& commands, bool* peer_closed);
  void drop();

  const std::string host_;
  const int port_;
  const int db_;
  const std::chrono::milliseconds timeout_;
  std::mutex mu_;
  redisContext* ctx_ = nullptr;                        // guarded by mu_; null while disconnected
  std::chrono::steady_clock::time_point retry_after_;  // guarded by mu_; no connect attempt before it
};

}  // namespace unbroken::session
