#include "session/redis_store.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>
#include <simdjson.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <string_view>

#include "session/values_json.h"

namespace unbroken::session {
namespace {

using std::chrono::steady_clock;

constexpr std::string_view kPrefix = "ub:sess:";
constexpr long long kMaxUnixMs = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::duration::max()).count();

std::string key(std::string_view id) {
  std::string k(kPrefix);
  k += id;
  return k;
}

// Unix milliseconds for PXAT / PEXPIREAT. Redis rejects a non-positive time; 1 is as expired as any.
std::string unix_ms(Clock::time_point t) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  return std::to_string(std::max<std::int64_t>(ms, 1));
}

timeval to_timeval(std::chrono::milliseconds ms) {
  return timeval{static_cast<time_t>(ms.count() / 1000), static_cast<suseconds_t>(ms.count() % 1000 * 1000)};
}

bool is_timeout(int err) {
  return err == EAGAIN || err == EWOULDBLOCK || err == ETIMEDOUT || err == EINPROGRESS;
}

// hiredis 0.14 writes with write(2), not send(MSG_NOSIGNAL): a write to a connection Redis has reset
// raises SIGPIPE. serve ignores SIGPIPE process-wide, but the store must not depend on its host, so
// SIGPIPE is blocked in this thread for the call and one it raised meanwhile is discarded.
class SigpipeBlock {
 public:
  SigpipeBlock() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
    sigset_t pending;
    sigpending(&pending);
    // Blocked or pending before us: a SIGPIPE pending afterwards is not necessarily ours to discard.
    discard_ = sigismember(&old_, SIGPIPE) == 0 && sigismember(&pending, SIGPIPE) == 0;
  }
  ~SigpipeBlock() {
    sigset_t pending;
    if (discard_ && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) != 0) {
      timespec zero{};
      while (sigtimedwait(&pipe_, nullptr, &zero) == -1 && errno == EINTR) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeBlock(const SigpipeBlock&) = delete;
  SigpipeBlock& operator=(const SigpipeBlock&) = delete;

 private:
  sigset_t pipe_;
  sigset_t old_;
  bool discard_ = false;
};

}  // namespace

void RedisStore::FreeReply::operator()(redisReply* r) const {
  freeReplyObject(r);
}

Result<std::unique_ptr<RedisStore>> RedisStore::open(const std::string& url, std::chrono::milliseconds timeout) {
  constexpr std::string_view kScheme = "redis://";
  std::string_view rest = url;
  if (!rest.starts_with(kScheme)) return Errno{EINVAL};
  rest.remove_prefix(kScheme.size());

  int db = 0;
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    std::string_view d = rest.substr(slash + 1);
    auto [end, ec] = std::from_chars(d.data(), d.data() + d.size(), db);
    if (!d.empty() && (ec != std::errc() || end != d.data() + d.size() || db < 0)) return Errno{EINVAL};
    rest = rest.substr(0, slash);
  }

  auto colon = rest.rfind(':');
  if (colon == std::string_view::npos) return Errno{EINVAL};
  std::string_view host = rest.substr(0, colon);
  std::string_view port_text = rest.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);  // [::1]
  } else if (host.find_first_of("[]:") != std::string_view::npos) {
    return Errno{EINVAL};
  }
  if (host.empty() || host.find_first_of("@/?# ") != std::string_view::npos) return Errno{EINVAL};
  int port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port <= 0 || port > 65535) {
    return Errno{EINVAL};
  }
  return std::unique_ptr<RedisStore>(new RedisStore(std::string(host), port, db, timeout));
}

RedisStore::RedisStore(std::string host, int port, int db, std::chrono::milliseconds timeout)
    : host_(std::move(host)), port_(port), db_(db), timeout_(timeout) {}

RedisStore::~RedisStore() {
  drop();
}

void RedisStore::drop() {
  if (ctx_ != nullptr) redisFree(ctx_);
  ctx_ = nullptr;
}

Result<void> RedisStore::connect() {
  if (steady_clock::now() < retry_after_) return Errno{ECONNREFUSED};  // failed a moment ago: fail fast
  // The connect is bounded by `timeout_`; resolving HOST is not (getaddrinfo has no timeout): use an
  // address or a name /etc/hosts answers.
  redisContext* c = redisConnectWithTimeout(host_.c_str(), port_, to_timeval(timeout_));
  int saved_errno = errno;
  auto failed = [this](Errno e) {
    drop();
    retry_after_ = steady_clock::now() + kReconnectBackoff;  // counted from the end of the attempt
    return e;
  };
  if (c == nullptr) return failed(Errno{EIO});
  ctx_ = c;
  if (c->err != 0) {
    // hiredis 0.14 has no timeout error type: a connect timeout is REDIS_ERR_IO with errno ETIMEDOUT.
    return failed(Errno{c->err == REDIS_ERR_IO && is_timeout(saved_errno) ? ETIMEDOUT : ECONNREFUSED});
  }
  // SO_RCVTIMEO / SO_SNDTIMEO: a blocked read or write of any later command gives up after timeout_.
  if (redisSetTimeout(c, to_timeval(timeout_)) != REDIS_OK) return failed(Errno{EIO});
  if (db_ != 0) {
    bool peer_closed = false;
    auto r = exchange({{"SELECT", std::to_string(db_)}}, &peer_closed);
    if (!r) return failed(r.error());
    if ((*r)[0]->type == REDIS_REPLY_ERROR) return failed(Errno{EIO});  // e.g. DB index out of range
  }
  return {};
}

Result<std::vector<RedisStore::Reply>> RedisStore::exchange(const std::vector<Command>& commands, bool* peer_closed) {
  *peer_closed = false;
  std::vector<const char*> argv;
  std::vector<std::size_t> lens;
  for (const Command& command : commands) {
    argv.clear();
    lens.clear();
    for (const std::string& arg : command) {
      argv.push_back(arg.data());
      lens.push_back(arg.size());
    }
    // Only formats into hiredis' output buffer: fails on allocation alone.
    if (redisAppendCommandArgv(ctx_, static_cast<int>(argv.size()), argv.data(), lens.data()) != REDIS_OK) {
      drop();
      return Errno{EIO};
    }
  }
  std::vector<Reply> replies;
  replies.reserve(commands.size());
  for (std::size_t i = 0; i < commands.size(); ++i) {
    void* r = nullptr;
    int status = redisGetReply(ctx_, &r);  // the first call also flushes the whole pipeline
    int saved_errno = errno;
    if (status != REDIS_OK || r == nullptr) {
      // The connection's state is unknown (a reply may still arrive): never reuse it.
      int err = ctx_->err;
      drop();
      if (err == REDIS_ERR_IO && is_timeout(saved_errno)) return Errno{ETIMEDOUT};
      *peer_closed =
          err == REDIS_ERR_EOF || (err == REDIS_ERR_IO && (saved_errno == ECONNRESET || saved_errno == EPIPE));
      return Errno{EIO};
    }
    replies.emplace_back(static_cast<redisReply*>(r));
  }
  return replies;
}

Result<std::vector<RedisStore::Reply>> RedisStore::run(const std::vector<Command>& commands) {
  SigpipeBlock no_sigpipe;
  bool fresh = ctx_ == nullptr;
  if (fresh) {
    if (auto c = connect(); !c) return c.error();
  }
  bool peer_closed = false;
  auto replies = exchange(commands, &peer_closed);
  // A connection from an earlier call that Redis has closed since (restart, failover, client idle
  // timeout) fails at once with EOF or a reset. Every command sent here is idempotent (GET, SET,
  // PEXPIREAT, DEL, SCAN), so it is safe to retry once on a new connection: the first caller after a
  // Redis restart does not see an error. A timeout is not retried: that would double the wait.
  if (!replies && peer_closed && !fresh) {
    if (auto c = connect(); !c) return c.error();
    replies = exchange(commands, &peer_closed);
  }
  return replies;
}

Result<std::optional<StoredSession>> RedisStore::load(std::string_view id, Clock::time_point now) {
  std::string k = key(id);
  std::lock_guard lock(mu_);
  auto r = run({{"GET", k}, {"PEXPIRETIME", k}});
  if (!r) return r.error();
  const redisReply& value = *(*r)[0];
  const redisReply& expiry = *(*r)[1];
  if (value.type == REDIS_REPLY_NIL) return std::optional<StoredSession>{};
  // An error reply: WRONGTYPE (someone else's key), or PEXPIRETIME unknown (Redis < 7).
  if (value.type != REDIS_REPLY_STRING || expiry.type != REDIS_REPLY_INTEGER) return Errno{EIO};
  // PEXPIRETIME -2: expired between GET and PEXPIRETIME. -1: no TTL (a key set by hand): never expires,
  // as does a time past what Clock can hold.
  if (expiry.integer < -1) return std::optional<StoredSession>{};
  Clock::time_point expires_at = Clock::time_point::max();
  if (expiry.integer >= 0 && expiry.integer < kMaxUnixMs) {
    expires_at = Clock::time_point(std::chrono::milliseconds(expiry.integer));
  }
  if (expires_at <= now) return std::optional<StoredSession>{};  // the caller's clock is ahead of Redis'
  auto values = decode_values(std::string_view(value.str, value.len));
  if (!values) return std::optional<StoredSession>{};  // not ours or corrupt: no session, as in SQLite
  return std::optional<StoredSession>{StoredSession{std::move(*values), expires_at}};
}

Result<void> RedisStore::save(std::string_view id, const StoredSession& s) {
  std::string json = encode_values(s.values);
  // The encoder passes bytes >= 0x20 through, and the decoder (simdjson) rejects invalid UTF-8: such a
  // session would be saved and then read back as absent. Refuse it here, where the caller learns why.
  if (!simdjson::validate_utf8(json.data(), json.size())) return Errno{EINVAL};
  std::lock_guard lock(mu_);
  // SET ... PXAT replaces the value and its TTL in one command; a time in the past deletes the key.
  auto r = run({{"SET", key(id), std::move(json), "PXAT", unix_ms(s.expires_at)}});
  if (!r) return r.error();
  if ((*r)[0]->type == REDIS_REPLY_ERROR) return Errno{EIO};
  return {};
}

Result<void> RedisStore::touch(std::string_view id, Clock::time_point expires_at) {
  std::lock_guard lock(mu_);
  auto r = run({{"PEXPIREAT", key(id), unix_ms(expires_at)}});  // 0 for an unknown key: ignored
  if (!r) return r.error();
  if ((*r)[0]->type == REDIS_REPLY_ERROR) return Errno{EIO};
  return {};
}

Result<void> RedisStore::remove(std::string_view id) {
  std::lock_guard lock(mu_);
  auto r = run({{"DEL", key(id)}});
  if (!r) return r.error();
  if ((*r)[0]->type == REDIS_REPLY_ERROR) return Errno{EIO};
  return {};
}

Result<SweepResult> RedisStore::sweep(Clock::time_point, std::size_t) {
  return SweepResult{};
}

Result<std::uint64_t> RedisStore::count_active(Clock::time_point) {
  // SCAN, not KEYS (which blocks Redis for the whole keyspace) nor DBSIZE (which would count other
  // applications' keys in a shared database). SCAN skips keys whose TTL has passed.
  const std::string pattern = std::string(kPrefix) + "*";
  std::uint64_t n = 0;
  std::string cursor = "0";
  do {
    std::lock_guard lock(mu_);  // per step: a long count does not hold up loads and saves
    auto r = run({{"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"}});
    if (!r) return r.error();
    const redisReply& page = *(*r)[0];
    if (page.type != REDIS_REPLY_ARRAY || page.elements != 2 || page.element[0]->type != REDIS_REPLY_STRING ||
        page.element[1]->type != REDIS_REPLY_ARRAY) {
      return Errno{EIO};
    }
    cursor.assign(page.element[0]->str, page.element[0]->len);
    n += page.element[1]->elements;
  } while (cursor != "0");
  return n;
}

}  // namespace unbroken::session
