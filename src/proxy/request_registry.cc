#include "proxy/request_registry.h"

#include <random>

#include "http/exchange.h"
#include "net/event_loop.h"
#include "proxy/forward_head.h"

namespace unbroken::proxy {

RequestRegistry::RequestRegistry() : RequestRegistry(Limits{}) {}

RequestRegistry::RequestRegistry(Limits limits)
    : limits_(limits), max_per_shard_(std::max<std::size_t>(1, limits.max_departed / kShards)) {}

RequestRegistry::Shard& RequestRegistry::shard(std::string_view id) {
  return shards_[Hash{}(id) % kShards];
}

std::uint64_t RequestRegistry::add(std::string_view id) {
  std::uint64_t ticket = next_ticket_.fetch_add(1, std::memory_order_relaxed);
  Shard& s = shard(id);
  std::lock_guard lock(s.mu);
  if (auto it = s.entries.find(id); it != s.entries.end()) {
    it->second = {ticket, false, http::Outcome::kOk};
  } else {
    s.entries.emplace(std::string(id), Entry{ticket, false, http::Outcome::kOk});
  }
  return ticket;
}

void RequestRegistry::depart(std::string_view id, std::uint64_t ticket, http::Outcome outcome, Clock::time_point now) {
  Shard& s = shard(id);
  std::lock_guard lock(s.mu);
  auto it = s.entries.find(id);
  if (it == s.entries.end() || it->second.ticket != ticket || it->second.departed) return;
  it->second.departed = true;
  it->second.outcome = outcome;
  s.departures.push_back({std::string(id), ticket, now});
  expire(s, now);
}

void RequestRegistry::end(std::string_view id, std::uint64_t ticket) {
  Shard& s = shard(id);
  std::lock_guard lock(s.mu);
  auto it = s.entries.find(id);
  if (it != s.entries.end() && it->second.ticket == ticket && !it->second.departed) s.entries.erase(it);
}

RequestRegistry::Lookup RequestRegistry::find(std::string_view id, Clock::time_point now) {
  Shard& s = shard(id);
  std::lock_guard lock(s.mu);
  expire(s, now);
  auto it = s.entries.find(id);
  if (it == s.entries.end()) return {};
  if (!it->second.departed) return {State::kWaiting, http::Outcome::kOk};
  return {State::kDeparted, it->second.outcome};
}

std::size_t RequestRegistry::size() const {
  std::size_t n = 0;
  for (const Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    n += s.entries.size();
  }
  return n;
}

void RequestRegistry::expire(Shard& s, Clock::time_point now) const {
  // Departures are queued in the order they happened (loops' clocks differ by at most a turn), so
  // the expired ones are at the front: no scan of the map.
  while (!s.departures.empty() &&
         (s.departures.size() > max_per_shard_ || s.departures.front().at + limits_.keep_departed <= now)) {
    const Departure& d = s.departures.front();
    auto it = s.entries.find(d.id);
    // A later request may have taken the id again: its entry is not this departure's.
    if (it != s.entries.end() && it->second.ticket == d.ticket) s.entries.erase(it);
    s.departures.pop_front();
  }
}

std::string new_request_id() {
  thread_local std::mt19937_64 gen = [] {
    std::random_device rd;
    std::seed_seq seed{rd(), rd(), rd(), rd(), rd(), rd(), rd(), rd()};
    return std::mt19937_64(seed);
  }();
  constexpr std::string_view kHex = "0123456789abcdef";
  std::string id(32, '0');
  for (std::size_t half = 0; half < 2; ++half) {
    std::uint64_t v = gen();
    for (std::size_t i = 0; i < 16; ++i) id[half * 16 + i] = kHex[(v >> (60 - 4 * i)) & 0xf];
  }
  return id;
}

TrackedRequest::TrackedRequest(std::shared_ptr<RequestRegistry> registry, std::string id)
    : registry_(std::move(registry)), id_(std::move(id)) {
  if (registry_) ticket_ = registry_->add(id_);
}

TrackedRequest::~TrackedRequest() {
  if (registry_) registry_->end(id_, ticket_);
}

void TrackedRequest::depart(http::Outcome outcome, RequestRegistry::Clock::time_point now) {
  if (registry_) registry_->depart(id_, ticket_, outcome, now);
}

std::string_view track_request(http::Exchange& ex, std::shared_ptr<RequestRegistry> registry, bool trusted) {
  // A second attempt at the same request (a retry) keeps its id.
  if (const TrackedRequest* t = ex.state<TrackedRequest>()) return t->id();
  std::string_view theirs = client_request_id(ex.request(), trusted);
  bool signal = registry != nullptr;
  auto& t =
      ex.emplace_state<TrackedRequest>(std::move(registry), theirs.empty() ? new_request_id() : std::string(theirs));
  if (signal) {
    // The token lives in the exchange, and so does the state: the reference outlives the callback.
    ex.token().on_cancel([&ex] {
      std::optional<http::Outcome> left = ex.departure();
      // A tunnel's end cancels the token whichever side ended it: only a departure the record
      // names counts there.
      const http::UpstreamRecord* up = ex.state<http::UpstreamRecord>();
      if (!left && up && up->status == 101) return;
      if (TrackedRequest* tracked = ex.state<TrackedRequest>())
        tracked->depart(left.value_or(http::Outcome::kClientClosed), ex.loop().now());
    });
  }
  return t.id();
}

}  // namespace unbroken::proxy
