#pragma once
// What the connections of one loop share: configuration, routes, counters, the record sink.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "http/content_encoding.h"
#include "http/exchange.h"
#include "http/record.h"
#include "http/request_parser.h"
#include "http/response_head.h"
#include "http/router.h"
#include "http/stats.h"
#include "net/event_loop.h"

namespace unbroken::http {

class HttpConnection;
class WorkerPool;

struct HttpLimits {
  std::chrono::milliseconds header_timeout{10'000};
  std::chrono::milliseconds body_timeout{30'000};
  std::chrono::milliseconds handler_timeout{60'000};
  std::chrono::milliseconds send_timeout{30'000};
  std::chrono::milliseconds keepalive_timeout{15'000};
  std::chrono::milliseconds drain_timeout{10'000};
  // Below this many bytes a second, averaged over send_timeout while output waits for the client,
  // the connection is cut (timer send_rate); 0: no minimum.
  std::uint64_t min_send_rate = 1024;
  // After an error response, how long to read and discard what the client still sends, so that
  // closing does not turn into a RST that destroys the response (nginx lingering_close).
  std::chrono::milliseconds linger_timeout{2'000};
  std::uint64_t max_header_bytes = 16 * 1024;
  std::uint64_t max_body = 8 * 1024 * 1024;
  // Unparsed input held per connection (pipelined requests, body not yet consumed).
  std::size_t max_buffered_input = 64 * 1024;
  GzipSettings gzip;  // on-the-fly compression (off by default)
  // Output queued per connection: producers pause above high, resume below low.
  std::size_t output_high_water = 256 * 1024;
  std::size_t output_low_water = 64 * 1024;
};

using RecordSink = std::function<void(const RequestRecord&)>;

// Parsers for the connections of one loop that are reading a request. An idle keep-alive connection
// holds none (nginx frees its header buffer the same way), so 10,000 idle clients do not keep
// 10,000 parsers and their request strings; a returned parser keeps its capacity for the next
// request, so steady serving allocates nothing.
class ParserPool {
 public:
  explicit ParserPool(const HttpLimits& limits) : limits_{limits.max_header_bytes, 100, limits.max_body} {
    free_.reserve(kMaxFree);
  }
  std::unique_ptr<RequestParser> take() {
    if (free_.empty()) return std::make_unique<RequestParser>(limits_);
    std::unique_ptr<RequestParser> p = std::move(free_.back());
    free_.pop_back();
    return p;
  }
  // A finished request's storage, for the next parser taken (dropped when none is free).
  void recycle(Request&& r) {
    if (!free_.empty()) free_.back()->recycle(std::move(r));
  }
  void give(std::unique_ptr<RequestParser> p) {
    if (free_.size() >= kMaxFree) return;
    p->reset();
    free_.push_back(std::move(p));
  }

 private:
  static constexpr std::size_t kMaxFree = 1024;
  ParserLimits limits_;
  std::vector<std::unique_ptr<RequestParser>> free_;
};

struct LoopContext {
  LoopContext(net::EventLoop& l, const HttpLimits& lim, const Router& r, LoopStats& s)
      : loop(l), limits(lim), router(r), stats(s), parsers(lim) {}
  net::EventLoop& loop;
  const HttpLimits& limits;
  const Router& router;
  LoopStats& stats;
  ParserPool parsers;
  WorkerPool* workers = nullptr;
  RecordSink record;
  DateCache date;
  // Response heads are serialised here before they are copied to the connection's output.
  std::string scratch;
  // Exchanges that ended this turn; their callbacks are dropped at its end (release_callbacks).
  std::vector<ExchangePtr> releasing;
  bool draining = false;
  // Called once when a connection has closed; the owner frees it at the end of the loop turn.
  std::function<void(HttpConnection*)> on_closed;
};

}  // namespace unbroken::http
