#include "session/sqlite_store.h"

#include <filesystem>

#include "session/values_json.h"

namespace unbroken::session {
namespace {

std::int64_t to_ms(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// Resets a statement however the caller leaves, so the next use starts clean.
struct Reset {
  sqlite3_stmt* s;
  ~Reset() {
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
  }
};

Errno failed() {
  return Errno{EIO};
}

}  // namespace

Result<std::unique_ptr<SqliteStore>> SqliteStore::open(const std::string& path, std::string* error) {
  std::error_code ec;
  auto dir = std::filesystem::path(path).parent_path();
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    if (error) *error = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return failed();
  }
  std::unique_ptr<SqliteStore> store(new SqliteStore(db));
  // WAL: readers do not block the writer. synchronous=NORMAL: in WAL mode a commit is in the OS
  // before it returns, so a killed process (kill -9) loses nothing it answered; only a power cut
  // can lose the last commits (FULL would fsync each one).
  const char* setup =
      "PRAGMA journal_mode=WAL;"
      "PRAGMA synchronous=NORMAL;"
      "PRAGMA busy_timeout=2000;"
      "CREATE TABLE IF NOT EXISTS sessions ("
      "  id TEXT PRIMARY KEY, data TEXT NOT NULL, expires_at INTEGER NOT NULL) WITHOUT ROWID;"
      "CREATE INDEX IF NOT EXISTS sessions_expiry ON sessions(expires_at);";
  char* msg = nullptr;
  if (sqlite3_exec(db, setup, nullptr, nullptr, &msg) != SQLITE_OK) {
    if (error) *error = msg ? msg : "setup failed";
    sqlite3_free(msg);
    return failed();
  }
  store->load_ = store->prepare("SELECT data, expires_at FROM sessions WHERE id = ?1 AND expires_at > ?2");
  store->save_ = store->prepare(
      "INSERT INTO sessions(id, data, expires_at) VALUES(?1, ?2, ?3) "
      "ON CONFLICT(id) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at");
  store->touch_ = store->prepare("UPDATE sessions SET expires_at = ?2 WHERE id = ?1");
  store->remove_ = store->prepare("DELETE FROM sessions WHERE id = ?1");
  // Batches by the expiry index: each DELETE is short, and load/save get the lock in between.
  store->sweep_ =
      store->prepare("DELETE FROM sessions WHERE id IN (SELECT id FROM sessions WHERE expires_at <= ?1 LIMIT ?2)");
  store->count_ = store->prepare("SELECT COUNT(*) FROM sessions WHERE expires_at > ?1");
  for (sqlite3_stmt* s : {store->load_, store->save_, store->touch_, store->remove_, store->sweep_, store->count_}) {
    if (s == nullptr) {
      if (error) *error = sqlite3_errmsg(db);
      return failed();
    }
  }
  return store;
}

SqliteStore::~SqliteStore() {
  for (sqlite3_stmt* s : {load_, save_, touch_, remove_, sweep_, count_}) sqlite3_finalize(s);
  sqlite3_close(db_);
}

sqlite3_stmt* SqliteStore::prepare(const char* sql) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK) return nullptr;
  return s;
}

Result<std::optional<StoredSession>> SqliteStore::load(std::string_view id, Clock::time_point now) {
  std::lock_guard lock(mu_);
  Reset r{load_};
  sqlite3_bind_text(load_, 1, id.data(), static_cast<int>(id.size()), SQLITE_STATIC);
  sqlite3_bind_int64(load_, 2, to_ms(now));
  int rc = sqlite3_step(load_);
  if (rc == SQLITE_DONE) return std::optional<StoredSession>{};
  if (rc != SQLITE_ROW) return failed();
  auto data = reinterpret_cast<const char*>(sqlite3_column_text(load_, 0));
  auto values = decode_values(std::string_view(data, static_cast<std::size_t>(sqlite3_column_bytes(load_, 0))));
  if (!values) return std::optional<StoredSession>{};  // a corrupt row is no session
  StoredSession s{std::move(*values), Clock::time_point(std::chrono::milliseconds(sqlite3_column_int64(load_, 1)))};
  return std::optional<StoredSession>{std::move(s)};
}

Result<void> SqliteStore::save(std::string_view id, const StoredSession& session) {
  std::string data = encode_values(session.values);
  std::lock_guard lock(mu_);
  Reset r{save_};
  sqlite3_bind_text(save_, 1, id.data(), static_cast<int>(id.size()), SQLITE_STATIC);
  sqlite3_bind_text(save_, 2, data.data(), static_cast<int>(data.size()), SQLITE_STATIC);
  sqlite3_bind_int64(save_, 3, to_ms(session.expires_at));
  if (sqlite3_step(save_) != SQLITE_DONE) return failed();
  return {};
}

Result<void> SqliteStore::touch(std::string_view id, Clock::time_point expires_at) {
  std::lock_guard lock(mu_);
  Reset r{touch_};
  sqlite3_bind_text(touch_, 1, id.data(), static_cast<int>(id.size()), SQLITE_STATIC);
  sqlite3_bind_int64(touch_, 2, to_ms(expires_at));
  if (sqlite3_step(touch_) != SQLITE_DONE) return failed();
  return {};
}

Result<void> SqliteStore::remove(std::string_view id) {
  std::lock_guard lock(mu_);
  Reset r{remove_};
  sqlite3_bind_text(remove_, 1, id.data(), static_cast<int>(id.size()), SQLITE_STATIC);
  if (sqlite3_step(remove_) != SQLITE_DONE) return failed();
  return {};
}

Result<SweepResult> SqliteStore::sweep(Clock::time_point now, std::size_t max_batch) {
  std::lock_guard lock(mu_);
  Reset r{sweep_};
  sqlite3_bind_int64(sweep_, 1, to_ms(now));
  sqlite3_bind_int64(sweep_, 2, static_cast<std::int64_t>(max_batch));
  if (sqlite3_step(sweep_) != SQLITE_DONE) return failed();
  auto removed = static_cast<std::uint64_t>(sqlite3_changes(db_));
  return SweepResult{removed, removed == max_batch};
}

Result<std::uint64_t> SqliteStore::count_active(Clock::time_point now) {
  std::lock_guard lock(mu_);
  Reset r{count_};
  sqlite3_bind_int64(count_, 1, to_ms(now));
  if (sqlite3_step(count_) != SQLITE_ROW) return failed();
  return static_cast<std::uint64_t>(sqlite3_column_int64(count_, 0));
}

}  // namespace unbroken::session
