#include "proxy/upstream_group.h"

#include <algorithm>

#include "base/check.h"
#include "http/request_serializer.h"
#include "http/response_parser.h"
#include "proxy/proxy_route.h"
#include "proxy/upstream_connect.h"

namespace unbroken::proxy {
namespace {

constexpr std::size_t kCheckMaxBuffered = 16 * 1024;

std::int64_t ticks(net::TimePoint t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

bool contains(std::span<const std::size_t> list, std::size_t i) {
  return std::find(list.begin(), list.end(), i) != list.end();
}

}  // namespace

// One active check: GET health_path on one upstream, on a connection of its own, until a head
// arrives, something fails, or the deadline passes. Loop thread only.
class UpstreamGroup::Probe final : public net::TransportHandler {
 public:
  Probe(UpstreamGroup& group, std::size_t i, net::EventLoop& loop)
      : group_(group), i_(i), loop_(loop), parser_(group.limits_) {}
  ~Probe() override { stop(); }

  void start() {
    const std::string& tls_host = group_.tls_hosts_[i_];
    conn_ = connect_upstream(loop_, group_.addresses_[i_], tls_host.empty() ? nullptr : group_.tls_.get(), tls_host,
                             kCheckMaxBuffered, group_.check_timeout_);
    conn_->set_handler(this);
    parser_.expect_response_to("GET");
    std::string head;
    http::append_request_line(head, "GET", group_.health_path_);
    // A unix socket has no host name of its own; the application may still want one.
    const std::string& name = group_.names_[i_];
    http::append_field(head, "Host",
                       name.rfind("unix:", 0) == 0 ? std::string_view("localhost") : split_upstream(name).address);
    http::append_field(head, "User-Agent", "unbroken-health-check");
    http::append_field(head, "Connection", "close");
    http::end_request_head(head, http::BodyFraming::kNone);
    conn_->queue(head);
    timer_ = loop_.run_after(group_.check_timeout_, [this] {
      timer_ = 0;
      done(false);
    });
  }
  [[nodiscard]] bool finished() const { return finished_; }
  // Closes without a verdict (the checks stop).
  void stop() {
    if (timer_ != 0) loop_.cancel_timer(timer_);
    timer_ = 0;
    if (conn_) {
      conn_->set_handler(nullptr);
      conn_->close(false);
    }
    finished_ = true;
  }

  void on_connected() override {}
  void on_data(net::Buffer& in) override {
    auto o = parser_.feed(in.readable(), nullptr);
    in.consume(o.consumed);
    switch (o.status) {
      case http::ResponseParser::Status::kNeedMore:
      case http::ResponseParser::Status::kInterim: return;  // the final head is still to come
      case http::ResponseParser::Status::kHead:
      case http::ResponseParser::Status::kMessage:
      case http::ResponseParser::Status::kUpgrade: {
        int status = parser_.response().status;
        return done(status >= 200 && status < 400);
      }
      case http::ResponseParser::Status::kError: return done(false);
    }
  }
  void on_peer_closed() override {
    bool complete = parser_.finish() == http::ResponseParser::Status::kMessage;
    done(complete && parser_.response().status >= 200 && parser_.response().status < 400);
  }
  void on_transport_error(net::SocketError) override { done(false); }
  void on_written(std::size_t) override {}

 private:
  void done(bool passed) {
    if (finished_) return;
    stop();
    group_.checked(i_, passed);
  }

  UpstreamGroup& group_;
  std::size_t i_;
  net::EventLoop& loop_;
  http::ResponseParser parser_;
  std::unique_ptr<net::Transport> conn_;
  net::EventLoop::TimerId timer_ = 0;
  bool finished_ = false;
};

struct UpstreamGroup::Checks {
  net::EventLoop* loop = nullptr;
  net::EventLoop::TimerId timer = 0;
  std::vector<std::unique_ptr<Probe>> probes;  // one slot per upstream; empty when no check is under way
};

UpstreamGroup::UpstreamGroup(const ProxySettings& s)
    : states_(s.upstreams.size()),
      addresses_(s.upstreams),
      names_(s.names),
      tls_hosts_(s.tls_hosts),
      tls_(s.tls),
      balance_(s.balance),
      max_fails_(static_cast<std::uint32_t>(std::max(0, s.max_fails))),
      fail_timeout_ns_(std::chrono::duration_cast<std::chrono::nanoseconds>(s.fail_timeout).count()),
      health_path_(s.health_path),
      health_interval_(s.health_interval),
      check_timeout_(s.connect_timeout),
      limits_(s.limits) {
  UB_CHECK(!states_.empty() && names_.size() == states_.size());
  tls_hosts_.resize(states_.size());  // none given: all plain
}

UpstreamGroup::~UpstreamGroup() {
  stop_health_checks();
}

bool UpstreamGroup::taken_out(const State& s) const {
  return max_fails_ > 0 && s.fails.load(std::memory_order_relaxed) >= max_fails_;
}

bool UpstreamGroup::usable(std::size_t i, std::span<const std::size_t> tried) const {
  const State& s = states_[i];
  return !taken_out(s) && !s.check_failed.load(std::memory_order_relaxed) && !contains(tried, i);
}

std::optional<std::size_t> UpstreamGroup::claim_probe(std::span<const std::size_t> tried, std::int64_t now) {
  for (std::size_t i = 0; i < states_.size(); ++i) {
    State& s = states_[i];
    if (!taken_out(s) || s.check_failed.load(std::memory_order_relaxed) || contains(tried, i)) continue;
    std::int64_t until = s.down_until.load(std::memory_order_relaxed);
    // Moving the window on claims the probe: the other loops keep skipping it meanwhile, and a
    // probe that ends without a verdict (its client left) is simply retried a window later.
    if (now >= until && s.down_until.compare_exchange_strong(until, now + fail_timeout_ns_, std::memory_order_relaxed))
      return i;
  }
  return std::nullopt;
}

std::optional<std::size_t> UpstreamGroup::pick(std::span<const std::size_t> tried, net::TimePoint now) {
  if (max_fails_ > 0) {
    if (auto probe = claim_probe(tried, ticks(now))) return probe;
  }
  const std::size_t n = states_.size();
  const std::size_t start = next_.fetch_add(1, std::memory_order_relaxed);
  if (balance_ == Balance::kLeastConn) {
    // Ties go round robin, so that an idle group still spreads its requests.
    std::optional<std::size_t> best;
    std::uint32_t least = 0;
    for (std::size_t k = 0; k < n; ++k) {
      std::size_t i = (start + k) % n;
      if (!usable(i, tried)) continue;
      std::uint32_t load = states_[i].in_flight.load(std::memory_order_relaxed);
      if (!best || load < least) {
        best = i;
        least = load;
      }
    }
    return best;
  }
  // The k-th usable one, so that the next up upstream does not take a down one's share as well.
  std::size_t count = 0;
  for (std::size_t i = 0; i < n; ++i) count += usable(i, tried) ? 1 : 0;
  if (count == 0) return std::nullopt;
  std::size_t k = start % count;
  std::optional<std::size_t> last;
  for (std::size_t i = 0; i < n; ++i) {
    if (!usable(i, tried)) continue;
    if (k-- == 0) return i;
    last = i;
  }
  return last;  // another loop's failure took one out between the two passes
}

void UpstreamGroup::started(std::size_t i) {
  states_[i].in_flight.fetch_add(1, std::memory_order_relaxed);
}

void UpstreamGroup::ended(std::size_t i) {
  states_[i].in_flight.fetch_sub(1, std::memory_order_relaxed);
}

void UpstreamGroup::failed(std::size_t i, net::TimePoint now) {
  State& s = states_[i];
  std::uint32_t fails = s.fails.fetch_add(1, std::memory_order_relaxed) + 1;
  if (max_fails_ > 0 && fails >= max_fails_)
    s.down_until.store(ticks(now) + fail_timeout_ns_, std::memory_order_relaxed);
}

void UpstreamGroup::succeeded(std::size_t i) {
  State& s = states_[i];
  // Read first: the common case (no failures) writes nothing to a line every loop shares.
  if (s.fails.load(std::memory_order_relaxed) != 0) s.fails.store(0, std::memory_order_relaxed);
}

bool UpstreamGroup::up(std::size_t i, net::TimePoint now) const {
  const State& s = states_[i];
  if (s.check_failed.load(std::memory_order_relaxed)) return false;
  return !taken_out(s) || ticks(now) >= s.down_until.load(std::memory_order_relaxed);
}

std::size_t UpstreamGroup::in_flight(std::size_t i) const {
  return states_[i].in_flight.load(std::memory_order_relaxed);
}

void UpstreamGroup::start_health_checks(net::EventLoop& loop) {
  if (health_path_.empty() || checks_) return;
  checks_ = std::make_unique<Checks>();
  checks_->loop = &loop;
  checks_->probes.resize(states_.size());
  check_all();
  checks_->timer = loop.run_every(health_interval_, [this] { check_all(); });
}

void UpstreamGroup::stop_health_checks() {
  if (!checks_) return;
  checks_->loop->cancel_timer(checks_->timer);
  checks_.reset();  // each probe closes its connection and cancels its timer
}

void UpstreamGroup::check_all() {
  for (std::size_t i = 0; i < states_.size(); ++i) {
    std::unique_ptr<Probe>& slot = checks_->probes[i];
    if (slot && !slot->finished()) continue;  // a slow upstream is not checked twice at once
    // A finished probe's connection is closed and none of its callbacks is running: free it now.
    slot = std::make_unique<Probe>(*this, i, *checks_->loop);
    slot->start();
  }
}

void UpstreamGroup::checked(std::size_t i, bool passed) {
  State& s = states_[i];
  s.check_failed.store(!passed, std::memory_order_relaxed);
  if (passed) s.fails.store(0, std::memory_order_relaxed);
}

}  // namespace unbroken::proxy
