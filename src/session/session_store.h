#pragma once
// Where sessions live. Every call blocks and may take a while (a disk, a network), so the HTTP side
// never calls a store from an event loop: SessionManager runs them on its own threads.
// Implementations must be safe to call from several threads at once.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace unbroken::session {

using Clock = std::chrono::system_clock;

// A session's contents: string keys to values that are plain strings or JSON text.
using SessionValues = std::map<std::string, std::string, std::less<>>;

struct StoredSession {
  SessionValues values;
  Clock::time_point expires_at;
};

struct SweepResult {
  std::uint64_t removed = 0;  // expired sessions deleted by this call
  bool more = false;          // expired sessions remain: call again
};

class SessionStore {
 public:
  virtual ~SessionStore() = default;

  // "memory", "sqlite" or "redis": the label of unbroken_session_store_errors_total{store}.
  [[nodiscard]] virtual std::string_view name() const = 0;

  // The session, if it exists and has not expired at `now`. Errors: the store is unreachable (e.g.
  // ECONNREFUSED, ETIMEDOUT) or failed (EIO).
  virtual Result<std::optional<StoredSession>> load(std::string_view id, Clock::time_point now) = 0;
  // Creates or replaces the session. Durable when it returns (a crash right after keeps it).
  virtual Result<void> save(std::string_view id, const StoredSession& s) = 0;
  // Sliding expiry without a change of contents. Unknown ids are ignored.
  virtual Result<void> touch(std::string_view id, Clock::time_point expires_at) = 0;
  virtual Result<void> remove(std::string_view id) = 0;

  // Deletes at most `max_batch` sessions expired at `now`, quickly enough not to hold up concurrent
  // load/save calls for long. Stores that expire by themselves (Redis TTLs) remove nothing.
  virtual Result<SweepResult> sweep(Clock::time_point now, std::size_t max_batch) = 0;
  // Sessions not expired at `now` (exact or, for Redis, the number of keys the store holds).
  virtual Result<std::uint64_t> count_active(Clock::time_point now) = 0;
};

}  // namespace unbroken::session
