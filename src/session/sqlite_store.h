#pragma once
// Sessions in an SQLite file (the default store): WAL mode, one row per session, expiry indexed so
// that a sweep deletes expired rows in small batches.

#include <sqlite3.h>

#include <memory>
#include <mutex>
#include <string>

#include "session/session_store.h"

namespace unbroken::session {

class SqliteStore final : public SessionStore {
 public:
  // Opens (creating the file, its directory and the table as needed). Errno EIO with the reason
  // in *error when SQLite refuses.
  static Result<std::unique_ptr<SqliteStore>> open(const std::string& path, std::string* error = nullptr);
  ~SqliteStore() override;

  [[nodiscard]] std::string_view name() const override { return "sqlite"; }
  Result<std::optional<StoredSession>> load(std::string_view id, Clock::time_point now) override;
  Result<void> save(std::string_view id, const StoredSession& s) override;
  Result<void> touch(std::string_view id, Clock::time_point expires_at) override;
  Result<void> remove(std::string_view id) override;
  Result<SweepResult> sweep(Clock::time_point now, std::size_t max_batch) override;
  Result<std::uint64_t> count_active(Clock::time_point now) override;

 private:
  explicit SqliteStore(sqlite3* db) : db_(db) {}
  sqlite3_stmt* prepare(const char* sql);

  // One connection, one statement at a time. Store calls come from a few store threads, and SQLite
  // serialises writers anyway; the batches are small so nobody waits long.
  std::mutex mu_;
  sqlite3* db_;
  sqlite3_stmt* load_ = nullptr;
  sqlite3_stmt* save_ = nullptr;
  sqlite3_stmt* touch_ = nullptr;
  sqlite3_stmt* remove_ = nullptr;
  sqlite3_stmt* sweep_ = nullptr;
  sqlite3_stmt* count_ = nullptr;
};

}  // namespace unbroken::session
