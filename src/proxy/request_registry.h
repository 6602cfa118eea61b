#pragma once
// The departure signal: which proxied requests are still waiting for their client, and which the
// client has left, by X-Request-Id. The admin listener answers GET /requests/{id} from it, so that
// a WSGI handler (which cannot see a disconnect) polls and stops. One registry per process, used by
// every loop and by the admin loop: thread-safe, sharded so the loops rarely meet on one lock.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "http/types.h"

namespace unbroken::http {
class Exchange;
}

namespace unbroken::proxy {

class RequestRegistry {
 public:
  using Clock = std::chrono::steady_clock;
  // Departed entries are kept this long (a handler polling every few seconds still sees its 410),
  // and at most this many (the oldest go first).
  struct Limits {
    std::chrono::milliseconds keep_departed{5 * 60'000};
    std::size_t max_departed = 100'000;
  };
  enum class State : std::uint8_t { kUnknown, kWaiting, kDeparted };
  struct Lookup {
    State state = State::kUnknown;
    http::Outcome outcome = http::Outcome::kOk;  // why it departed
  };

  RequestRegistry();
  explicit RequestRegistry(Limits limits);

  // A proxied request starts: `id` is waiting. The ticket names this registration, so that the end
  // of an earlier request with the same id (a trusted client may reuse one) leaves it alone.
  [[nodiscard]] std::uint64_t add(std::string_view id);
  // The client left, or a server timer cut the request: the entry keeps `outcome` until it expires.
  void depart(std::string_view id, std::uint64_t ticket, http::Outcome outcome, Clock::time_point now);
  // The request is over: a waiting entry goes (404 from then on); a departed one stays.
  void end(std::string_view id, std::uint64_t ticket);
  // The state of `id`; expired departed entries are dropped on the way.
  [[nodiscard]] Lookup find(std::string_view id, Clock::time_point now);
  [[nodiscard]] std::size_t size() const;

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct Entry {
    std::uint64_t ticket;
    bool departed;
    http::Outcome outcome;
  };
  struct Departure {
    std::string id;
    std::uint64_t ticket;
    Clock::time_point at;
  };
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<std::string, Entry, Hash, std::equal_to<>> entries;
    std::deque<Departure> departures;  // oldest first
  };
  static constexpr std::size_t kShards = 16;
  Shard& shard(std::string_view id);
  void expire(Shard& s, Clock::time_point now) const;  // s.mu held

  Limits limits_;
  std::size_t max_per_shard_;
  std::atomic<std::uint64_t> next_ticket_{1};
  std::array<Shard, kShards> shards_;
};

// A fresh X-Request-Id: 32 hex digits of 128 random bits from a per-thread generator seeded once
// per thread, so unique within a run and across restarts, and no syscall per request. Not a
// secret: the admin listener that answers for it is the operator's.
[[nodiscard]] std::string new_request_id();

// One proxied request's id, kept as its exchange's typed state: it owns the string the record
// (UpstreamRecord::request_id) and the forwarded head point into, and ends the registration when
// the exchange goes (on whichever thread lets it go last).
class TrackedRequest {
 public:
  TrackedRequest(std::shared_ptr<RequestRegistry> registry, std::string id);
  ~TrackedRequest();
  TrackedRequest(const TrackedRequest&) = delete;
  TrackedRequest& operator=(const TrackedRequest&) = delete;
  [[nodiscard]] const std::string& id() const { return id_; }
  void depart(http::Outcome outcome, RequestRegistry::Clock::time_point now);

 private:
  std::shared_ptr<RequestRegistry> registry_;  // null: ids without the departure signal
  std::string id_;
  std::uint64_t ticket_ = 0;
};

// Loop thread, as a proxied request starts: its X-Request-Id (the client's when `trusted` and sane,
// see client_request_id, otherwise a new one), kept in a TrackedRequest on `ex` and registered,
// marked departed when the exchange's token is cancelled. The view lives as long as the exchange.
std::string_view track_request(http::Exchange& ex, std::shared_ptr<RequestRegistry> registry, bool trusted);

}  // namespace unbroken::proxy
