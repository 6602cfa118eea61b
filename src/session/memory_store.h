#pragma once
// Sessions in this process only: for tests and single instances that may lose sessions on restart.
// Sharded so that concurrent requests on different sessions rarely share a lock.

#include <array>
#include <mutex>
#include <unordered_map>

#include "session/session_store.h"

namespace unbroken::session {

class MemoryStore final : public SessionStore {
 public:
  [[nodiscard]] std::string_view name() const override { return "memory"; }
  Result<std::optional<StoredSession>> load(std::string_view id, Clock::time_point now) override;
  Result<void> save(std::string_view id, const StoredSession& s) override;
  Result<void> touch(std::string_view id, Clock::time_point expires_at) override;
  Result<void> remove(std::string_view id) override;
  Result<SweepResult> sweep(Clock::time_point now, std::size_t max_batch) override;
  Result<std::uint64_t> count_active(Clock::time_point now) override;

 private:
  static constexpr std::size_t kShards = 16;
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, StoredSession> map;
  };
  Shard& shard_of(std::string_view id) { return shards_[std::hash<std::string_view>{}(id) % kShards]; }
  std::array<Shard, kShards> shards_;
};

}  // namespace unbroken::session
