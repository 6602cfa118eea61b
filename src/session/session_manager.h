#pragma once
// Server-side sessions for handlers: a cookie names a session, the store keeps it, a sweeper expires
// it. Store I/O runs on the manager's own threads, never on an event loop; a session is loaded only
// when a handler asks for it, and saved before the response head only when it changed.

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "base/periodic.h"
#include "http/exchange.h"
#include "http/worker_pool.h"
#include "session/session_store.h"

namespace unbroken::session {

struct SessionOptions {
  std::string cookie = "ub_session";
  std::chrono::milliseconds ttl = std::chrono::minutes(30);
  std::chrono::milliseconds sweep_interval = std::chrono::minutes(1);
  std::size_t sweep_batch = 1000;
  bool secure = false;   // adds Secure to the cookie (TLS)
  unsigned threads = 2;  // store I/O threads
};

// A request's session, on the loop thread.
class Session {
 public:
  [[nodiscard]] const std::string& id() const { return id_; }
  [[nodiscard]] bool is_new() const { return is_new_; }
  [[nodiscard]] std::optional<std::string_view> get(std::string_view key) const;
  // Values are strings or JSON text; a change is saved before the response head.
  void set(std::string key, std::string value);
  void erase(std::string_view key);
  [[nodiscard]] const SessionValues& values() const { return values_; }

 private:
  friend class SessionManager;
  std::string id_;
  SessionValues values_;
  bool is_new_ = false;
  bool dirty_ = false;
};

// Buckets for unbroken_session_sweep_seconds.
inline constexpr std::array<double, 10> kSweepBuckets{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60};

struct SessionStats {
  std::atomic<std::uint64_t> active{0};  // as counted after the last sweep
  std::atomic<std::uint64_t> created{0};
  std::atomic<std::uint64_t> expired{0};
  std::atomic<std::uint64_t> store_errors{0};
  std::array<std::atomic<std::uint64_t>, kSweepBuckets.size() + 1> sweep_buckets{};
  std::atomic<std::uint64_t> sweep_sum_us{0};
};

class SessionManager {
 public:
  SessionManager(std::unique_ptr<SessionStore> store, SessionOptions options);
  ~SessionManager();  // stops the sweeper, finishes store work in progress
  SessionManager(const SessionManager&) = delete;
  SessionManager& operator=(const SessionManager&) = delete;

  // Loop thread. Calls fn on the loop thread with the request's session: the client's if its cookie
  // names a live one, else a new one (an unknown, expired or malformed id is never reused or echoed).
  // If the store fails, fn is not called and the client gets 503 within the store's time bound.
  void with_session(const http::ExchangePtr& ex, std::function<void(Session&)> fn);

  // Runs one full sweep now (the sweeper calls it every sweep_interval), in bounded batches.
  void sweep();

  [[nodiscard]] const SessionStats& stats() const { return stats_; }
  [[nodiscard]] std::string_view store_name() const { return store_->name(); }

 private:
  // The request's session state, the exchange's typed state (Exchange::state<State>()).
  struct State;
  void start_load(const http::ExchangePtr& ex, std::string id);
  // The head hook that saves a changed session (or extends its expiry) before the head leaves.
  void add_saver(http::Exchange& ex);
  std::string new_id() const;
  std::string cookie_id(const http::Request& req) const;
  void failed(const http::ExchangePtr& ex);

  std::unique_ptr<SessionStore> store_;
  SessionOptions options_;
  SessionStats stats_;
  http::WorkerPool pool_;
  std::unique_ptr<Periodic> sweeper_;
};

}  // namespace unbroken::session
