#include "session/session_manager.h"

#include <sys/random.h>

#include "base/text.h"
#include "http/request.h"
#include "net/event_loop.h"

namespace unbroken::session {
namespace {

constexpr std::size_t kIdBytes = 32;  // 256 bits from the kernel's CSPRNG
constexpr std::size_t kIdChars = 43;  // base64url without padding
constexpr std::size_t kMaxQueuedIo = 4096;
// The answer when the store cannot load or save a session: the handler's response never goes out.
constexpr std::string_view kUnavailable = "session store unavailable\n";

bool valid_id(std::string_view id) {
  if (id.size() != kIdChars) return false;
  for (char c : id)
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
      return false;
  return true;
}

http::Exchange::HookVerdict failure() {
  return http::Exchange::HookVerdict::fail(503, std::string(kUnavailable));
}

}  // namespace

std::optional<std::string_view> Session::get(std::string_view key) const {
  auto it = values_.find(key);
  if (it == values_.end()) return std::nullopt;
  return std::string_view(it->second);
}

void Session::set(std::string key, std::string value) {
  values_.insert_or_assign(std::move(key), std::move(value));
  dirty_ = true;
}

void Session::erase(std::string_view key) {
  if (auto it = values_.find(key); it != values_.end()) {
    values_.erase(it);
    dirty_ = true;
  }
}

// What a request knows about its session: loaded once, shared by every with_session() call.
struct SessionManager::State {
  std::optional<Session> session;
  bool loading = false;
  std::vector<std::function<void(Session&)>> waiting;
};

SessionManager::SessionManager(std::unique_ptr<SessionStore> store, SessionOptions options)
    : store_(std::move(store)), options_(std::move(options)), pool_(options_.threads, kMaxQueuedIo) {
  sweeper_ = std::make_unique<Periodic>(options_.sweep_interval, [this] { sweep(); });
  // A first sweep at once, off the caller's thread: the active gauge is right from the start.
  [[maybe_unused]] bool queued = pool_.submit([this] { sweep(); });
}

SessionManager::~SessionManager() {
  sweeper_.reset();
}

std::string SessionManager::new_id() const {
  unsigned char raw[kIdBytes];
  std::size_t got = 0;
  while (got < sizeof raw) {
    ssize_t n = ::getrandom(raw + got, sizeof raw - got, 0);
    if (n > 0) got += static_cast<std::size_t>(n);
  }
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string id;
  id.reserve(kIdChars);
  std::uint32_t acc = 0;
  int bits = 0;
  for (unsigned char b : raw) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 6) {
      id += kAlphabet[(acc >> (bits - 6)) & 63];
      bits -= 6;
    }
  }
  if (bits > 0) id += kAlphabet[(acc << (6 - bits)) & 63];
  return id;
}

std::string SessionManager::cookie_id(const http::Request& req) const {
  for (auto [name, value] : req.headers) {
    if (!http::iequals(name, "cookie")) continue;
    std::string_view rest = value;
    while (!rest.empty()) {
      auto semi = rest.find(';');
      std::string_view pair = trim_ows(rest.substr(0, semi));
      auto eq = pair.find('=');
      if (eq != std::string_view::npos && pair.substr(0, eq) == options_.cookie) {
        std::string_view id = trim_ows(pair.substr(eq + 1));
        if (valid_id(id)) return std::string(id);
      }
      if (semi == std::string_view::npos) break;
      rest.remove_prefix(semi + 1);
    }
  }
  return {};
}

void SessionManager::failed(const http::ExchangePtr& ex) {
  stats_.store_errors.fetch_add(1, std::memory_order_relaxed);
  // The waiters capture the exchange that owns them: drop them, or neither is ever freed.
  if (State* state = ex->state<State>()) state->waiting.clear();
  ex->respond(503, std::string(kUnavailable));
}

void SessionManager::with_session(const http::ExchangePtr& ex, std::function<void(Session&)> fn) {
  State* state = ex->state<State>();
  if (state == nullptr) state = &ex->emplace_state<State>();
  if (state->session) return fn(*state->session);
  state->waiting.push_back(std::move(fn));
  if (state->loading) return;
  state->loading = true;
  add_saver(*ex);
  std::string id = cookie_id(ex->request());
  if (!id.empty()) return start_load(ex, std::move(id));
  // No usable cookie: a new session, without touching the store.
  Session s;
  s.id_ = new_id();
  s.is_new_ = true;
  state->session = std::move(s);
  for (auto& waiter : std::exchange(state->waiting, {})) waiter(*state->session);
}

void SessionManager::start_load(const http::ExchangePtr& ex, std::string id) {
  bool queued = pool_.submit([this, ex, id = std::move(id)] {
    auto loaded = store_->load(id, Clock::now());
    // The state is the exchange's, touched on the loop thread only.
    ex->loop().post([this, ex, id, loaded = std::move(loaded)]() mutable {
      State* state = ex->state<State>();
      if (!loaded.ok() || state == nullptr) return failed(ex);
      Session s;
      if (loaded->has_value()) {
        s.id_ = id;
        s.values_ = std::move((*loaded)->values);
      } else {
        s.id_ = new_id();  // unknown or expired: never trust or echo the client's id
        s.is_new_ = true;
      }
      state->session = std::move(s);
      for (auto& waiter : std::exchange(state->waiting, {})) waiter(*state->session);
    });
  });
  if (!queued) failed(ex);
}

void SessionManager::add_saver(http::Exchange& ex) {
  using Verdict = http::Exchange::HookVerdict;
  ex.add_head_hook([this](http::Exchange& exchange, http::Exchange::HookDone done) {
    State* state = exchange.state<State>();
    if (state == nullptr || !state->session) return done(Verdict::proceed());
    Session& s = *state->session;
    auto expires = Clock::now() + options_.ttl;
    if (!s.dirty_) {
      // Sliding expiry: every use extends the TTL; nobody waits for it.
      if (!s.is_new_) {
        if (!pool_.submit([this, id = s.id_, expires] {
              if (!store_->touch(id, expires).ok()) stats_.store_errors.fetch_add(1, std::memory_order_relaxed);
            }))
          stats_.store_errors.fetch_add(1, std::memory_order_relaxed);
      }
      return done(Verdict::proceed());
    }
    if (s.is_new_) {
      std::string cookie = options_.cookie + "=" + s.id_ + "; HttpOnly; SameSite=Lax; Path=/";
      if (options_.secure) cookie += "; Secure";
      exchange.add_header("Set-Cookie", std::move(cookie));
    }
    // Saved before the head: a client that saw the answer has a session that survives a crash.
    net::EventLoop& loop = exchange.loop();
    bool queued = pool_.submit(
        [this, &loop, id = s.id_, stored = StoredSession{s.values_, expires}, is_new = s.is_new_, done]() mutable {
          bool ok = store_->save(id, stored).ok();
          if (!ok) stats_.store_errors.fetch_add(1, std::memory_order_relaxed);
          if (ok && is_new) stats_.created.fetch_add(1, std::memory_order_relaxed);
          loop.post([done = std::move(done), ok] { done(ok ? Verdict::proceed() : failure()); });
        });
    if (!queued) {
      stats_.store_errors.fetch_add(1, std::memory_order_relaxed);
      done(failure());
    }
  });
}

void SessionManager::sweep() {
  auto start = std::chrono::steady_clock::now();
  auto now = Clock::now();
  for (;;) {
    auto r = store_->sweep(now, options_.sweep_batch);
    if (!r.ok()) {
      stats_.store_errors.fetch_add(1, std::memory_order_relaxed);
      break;
    }
    stats_.expired.fetch_add(r->removed, std::memory_order_relaxed);
    if (!r->more) break;
    std::this_thread::yield();  // between batches, requests get the store first
  }
  if (auto n = store_->count_active(Clock::now()); n.ok()) {
    stats_.active.store(*n, std::memory_order_relaxed);
  } else {
    stats_.store_errors.fetch_add(1, std::memory_order_relaxed);
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::size_t b = 0;
  while (b < kSweepBuckets.size() && secs > kSweepBuckets[b]) ++b;
  stats_.sweep_buckets[b].fetch_add(1, std::memory_order_relaxed);
  stats_.sweep_sum_us.fetch_add(static_cast<std::uint64_t>(secs * 1e6), std::memory_order_relaxed);
}

}  // namespace unbroken::session
