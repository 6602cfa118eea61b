#include "session/memory_store.h"

namespace unbroken::session {

Result<std::optional<StoredSession>> MemoryStore::load(std::string_view id, Clock::time_point now) {
  Shard& s = shard_of(id);
  std::lock_guard lock(s.mu);
  auto it = s.map.find(std::string(id));
  if (it == s.map.end() || it->second.expires_at <= now) return std::optional<StoredSession>{};
  return std::optional<StoredSession>{it->second};
}

Result<void> MemoryStore::save(std::string_view id, const StoredSession& session) {
  Shard& s = shard_of(id);
  std::lock_guard lock(s.mu);
  s.map.insert_or_assign(std::string(id), session);
  return {};
}

Result<void> MemoryStore::touch(std::string_view id, Clock::time_point expires_at) {
  Shard& s = shard_of(id);
  std::lock_guard lock(s.mu);
  if (auto it = s.map.find(std::string(id)); it != s.map.end()) it->second.expires_at = expires_at;
  return {};
}

Result<void> MemoryStore::remove(std::string_view id) {
  Shard& s = shard_of(id);
  std::lock_guard lock(s.mu);
  s.map.erase(std::string(id));
  return {};
}

Result<SweepResult> MemoryStore::sweep(Clock::time_point now, std::size_t max_batch) {
  SweepResult r;
  // One shard at a time, so a large sweep holds any one lock only for its own shard's batch.
  for (Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    for (auto it = s.map.begin(); it != s.map.end();) {
      if (r.removed == max_batch) {
        r.more = true;
        return r;
      }
      if (it->second.expires_at <= now) {
        it = s.map.erase(it);
        ++r.removed;
      } else {
        ++it;
      }
    }
  }
  return r;
}

Result<std::uint64_t> MemoryStore::count_active(Clock::time_point now) {
  std::uint64_t n = 0;
  for (Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    for (const auto& [id, session] : s.map)
      if (session.expires_at > now) ++n;
  }
  return n;
}

}  // namespace unbroken::session
