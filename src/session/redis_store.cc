#include "session/redis_store.h"

#include <hiredis/hiredis.h>

#include <charconv>
#include <string_view>
#include <vector>

#include "session/values_json.h"

namespace unbroken::session {
namespace {

constexpr std::chrono::milliseconds kReconnectBackoff{100};
constexpr std::string_view kPrefix = "ub:sess:";

std::int64_t to_ms(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

timeval to_timeval(std::chrono::milliseconds ms) {
  return timeval{static_cast<time_t>(ms.count() / 1000), static_cast<suseconds_t>(ms.count() % 1000 * 1000)};
}

// A command's arguments, kept alive for the call.
struct Args {
  std::vector<std::string> parts;
  Args(std::initializer_list<std::string> p) : parts(p) {}
  std::vector<const char*> ptrs() const {
    std::vector<const char*> v;
    for (const auto& p : parts) v.push_back(p.data());
    return v;
  }
  std::vector<std::size_t> lens() const {
    std::vector<std::size_t> v;
    for (const auto& p : parts) v.push_back(p.size());
    return v;
  }
};

std::string key(std::string_view id) {
  return std::string(kPrefix) + std::string(id);
}

}  // namespace

Result<std::unique_ptr<RedisStore>> RedisStore::open(const std::string& url, std::chrono::milliseconds timeout) {
  std::string_view rest = url;
  if (rest.rfind("redis://", 0) != 0) return Errno{EINVAL};
  rest.remove_prefix(8);
  int db = 0;
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    std::string_view d = rest.substr(slash + 1);
    auto [p, ec] = std::from_chars(d.data(), d.data() + d.size(), db);
    if (ec != std::errc() || p != d.data() + d.size() || db < 0) return Errno{EINVAL};
    rest = rest.substr(0, slash);
  }
  auto colon = rest.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return Errno{EINVAL};
  int port = 0;
  std::string_view ps = rest.substr(colon + 1);
  auto [p, ec] = std::from_chars(ps.data(), ps.data() + ps.size(), port);
  if (ec != std::errc() || p != ps.data() + ps.size() || port <= 0 || port > 65535) return Errno{EINVAL};
  return std::unique_ptr<RedisStore>(new RedisStore(std::string(rest.substr(0, colon)), port, db, timeout));
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
  if (ctx_ != nullptr) return {};
  auto now = std::chrono::steady_clock::now();
  if (now < retry_after_) return Errno{ECONNREFUSED};  // failed a moment ago: fail fast
  retry_after_ = now + kReconnectBackoff;
  ctx_ = redisConnectWithTimeout(host_.c_str(), port_, to_timeval(timeout_));
  if (ctx_ == nullptr || ctx_->err != 0) {
    // hiredis 0.14 reports a timeout as REDIS_ERR_IO with errno EAGAIN / EINPROGRESS.
    int err = ctx_ != nullptr && ctx_->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EINPROGRESS) ? ETIMEDOUT
                                                                                                        : ECONNREFUSED;
    drop();
    return Errno{err};
  }
  redisSetTimeout(ctx_, to_timeval(timeout_));
  if (db_ != 0) {
    auto* r = static_cast<redisReply*>(redisCommand(ctx_, "SELECT %d", db_));
    bool ok = r != nullptr && r->type != REDIS_REPLY_ERROR;
    if (r != nullptr) freeReplyObject(r);
    if (!ok) {
      drop();
      return Errno{EIO};
    }
  }
  return {};
}

Result<std::unique_ptr<redisReply, void (*)(void*)>> RedisStore::command(int argc, const char** argv,
                                                                         const std::size_t* lens) {
  if (auto c = connect(); !c) return c.error();
  auto* r = static_cast<redisReply*>(redisCommandArgv(ctx_, argc, argv, lens));
  if (r == nullptr) {
    // I/O error or timeout: this connection's state is unknown; the next call reconnects.
    int err = ctx_->err == REDIS_ERR_IO && errno == EAGAIN ? ETIMEDOUT : EIO;
    drop();
    return Errno{err};
  }
  std::unique_ptr<redisReply, void (*)(void*)> reply(r, freeReplyObject);
  if (r->type == REDIS_REPLY_ERROR) return Errno{EIO};
  return reply;
}

Result<std::optional<StoredSession>> RedisStore::load(std::string_view id, Clock::time_point) {
  Args get{"GET", key(id)};
  Args ttl{"PEXPIRETIME", key(id)};
  std::lock_guard lock(mu_);
  auto value = command(2, get.ptrs().data(), get.lens().data());
  if (!value) return value.error();
  if ((*value)->type != REDIS_REPLY_STRING) return std::optional<StoredSession>{};  // absent or expired
  auto values = decode_values(std::string_view((*value)->str, (*value)->len));
  if (!values) return std::optional<StoredSession>{};
  auto expiry = command(2, ttl.ptrs().data(), ttl.lens().data());
  if (!expiry) return expiry.error();
  StoredSession s{std::move(*values), Clock::time_point(std::chrono::milliseconds((*expiry)->integer))};
  return std::optional<StoredSession>{std::move(s)};
}

Result<void> RedisStore::save(std::string_view id, const StoredSession& s) {
  Args set{"SET", key(id), encode_values(s.values), "PXAT", std::to_string(to_ms(s.expires_at))};
  std::lock_guard lock(mu_);
  auto r = command(5, set.ptrs().data(), set.lens().data());
  if (!r) return r.error();
  return {};
}

Result<void> RedisStore::touch(std::string_view id, Clock::time_point expires_at) {
  Args expire{"PEXPIREAT", key(id), std::to_string(to_ms(expires_at))};
  std::lock_guard lock(mu_);
  auto r = command(3, expire.ptrs().data(), expire.lens().data());
  if (!r) return r.error();
  return {};
}

Result<void> RedisStore::remove(std::string_view id) {
  Args del{"DEL", key(id)};
  std::lock_guard lock(mu_);
  auto r = command(2, del.ptrs().data(), del.lens().data());
  if (!r) return r.error();
  return {};
}

Result<SweepResult> RedisStore::sweep(Clock::time_point, std::size_t) {
  return SweepResult{};
}

Result<std::uint64_t> RedisStore::count_active(Clock::time_point) {
  // SCAN in steps of 1000: bounded work per command, no KEYS that would block Redis.
  std::uint64_t n = 0;
  std::string cursor = "0";
  std::lock_guard lock(mu_);
  do {
    Args scan{"SCAN", cursor, "MATCH", std::string(kPrefix) + "*", "COUNT", "1000"};
    auto r = command(6, scan.ptrs().data(), scan.lens().data());
    if (!r) return r.error();
    if ((*r)->type != REDIS_REPLY_ARRAY || (*r)->elements != 2) return Errno{EIO};
    cursor.assign((*r)->element[0]->str, (*r)->element[0]->len);
    n += (*r)->element[1]->elements;
  } while (cursor != "0");
  return n;
}

}  // namespace unbroken::session
