#include "app/session_setup.h"

#include <charconv>
#include <stdexcept>

#include "session/memory_store.h"
#include "session/redis_store.h"
#include "session/sqlite_store.h"

namespace unbroken::app {

std::unique_ptr<session::SessionManager> make_session_manager(const ServeConfig& cfg) {
  std::unique_ptr<session::SessionStore> store;
  const std::string& spec = cfg.session_store;
  if (spec == "memory") {
    store = std::make_unique<session::MemoryStore>();
  } else if (spec.rfind("sqlite:", 0) == 0) {
    std::string error;
    auto s = session::SqliteStore::open(spec.substr(7), &error);
    if (!s) throw std::runtime_error("--session-store: cannot open '" + spec.substr(7) + "': " + error);
    store = std::move(*s);
  } else {
    auto s = session::RedisStore::open(spec);
    if (!s) throw std::runtime_error("--session-store: invalid Redis URL '" + spec + "' (use redis://HOST:PORT[/DB])");
    store = std::move(*s);
  }
  session::SessionOptions opts;
  opts.cookie = cfg.session_cookie;
  opts.ttl = cfg.session_ttl;
  opts.sweep_interval = cfg.session_sweep;
  return std::make_unique<session::SessionManager>(std::move(store), opts);
}

void mount_session_diag(http::Router& router, session::SessionManager& sessions) {
  router.add("GET", "/diag/session", [&sessions](const http::ExchangePtr& ex) {
    sessions.with_session(ex, [ex](session::Session& s) {
      std::uint64_t count = 0;
      if (auto v = s.get("count")) std::from_chars(v->data(), v->data() + v->size(), count);
      s.set("count", std::to_string(++count));
      ex->respond(200, "{\"count\": " + std::to_string(count) + "}\n", "application/json");
    });
  });
}

observe::SessionMetrics session_metrics(const session::SessionManager& sessions) {
  const session::SessionStats& st = sessions.stats();
  observe::SessionMetrics m;
  m.store = std::string(sessions.store_name());
  m.active = st.active.load();
  m.created = st.created.load();
  m.expired = st.expired.load();
  m.store_errors = st.store_errors.load();
  m.sweep_bounds.assign(session::kSweepBuckets.begin(), session::kSweepBuckets.end());
  for (const auto& b : st.sweep_buckets) m.sweep_counts.push_back(b.load());
  m.sweep_sum_seconds = static_cast<double>(st.sweep_sum_us.load()) / 1e6;
  return m;
}

}  // namespace unbroken::app
