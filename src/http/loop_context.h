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
#include "http/http_limits.h"
#include "http/record.h"
#include "http/request_parser.h"
#include "http/response_head.h"
#include "http/router.h"
#include "http/stats.h"
#include "net/event_loop.h"

namespace unbroken::http {

class HttpConnection;
class WorkerPool;

using RecordSink = std::function<void(const RequestRecord&)>;

// Parsers for the connections of one loop that are reading a request. An idle keep-alive connection
// holds none (nginx frees its header buffer the same way), so 10,000 idle clients do not keep
// 10,000 parsers and their request strings; a returned parser keeps its capacity for the next
// request, so steady serving allocates nothing.
class ParserPool {
 public:
  explicit ParserPool(const HttpLimits& limits)
      : limits_{limits.max_header_bytes, limits.max_headers, limits.max_body} {
    free_.reserve(kMaxFree);
    spare_.reserve(kMaxSpare);
    spare_headers_.reserve(kMaxSpare);
  }
  std::unique_ptr<RequestParser> take() {
    if (free_.empty()) return std::make_unique<RequestParser>(limits_);
    std::unique_ptr<RequestParser> p = std::move(free_.back());
    free_.pop_back();
    return p;
  }
  // A finished request's storage, kept for a parser whose own went to an exchange (see refill).
  void recycle(Request&& r) {
    if (spare_.size() >= kMaxSpare) return;
    RequestParser::trim(r);
    spare_.push_back(std::move(r));
  }
  // After p's request moved to an exchange: a spare storage in its place, when there is one.
  void refill(RequestParser& p) {
    if (spare_.empty()) return;
    p.recycle(std::move(spare_.back()));
    spare_.pop_back();
  }
  // The same for a finished exchange's response headers, and a new exchange's.
  void recycle(Headers&& h) {
    if (spare_headers_.size() >= kMaxSpare || h.arena_capacity() > RequestParser::kMaxKeptCapacity) return;
    h.clear();
    spare_headers_.push_back(std::move(h));
  }
  void refill(Headers& h) {
    if (spare_headers_.empty()) return;
    h = std::move(spare_headers_.back());
    spare_headers_.pop_back();
  }
  void give(std::unique_ptr<RequestParser> p) {
    if (free_.size() >= kMaxFree) return;
    p->reset();
    free_.push_back(std::move(p));
  }

 private:
  static constexpr std::size_t kMaxFree = 1024;
  // Requests in flight between an exchange and the next parser: a few per busy connection.
  static constexpr std::size_t kMaxSpare = 256;
  ParserLimits limits_;
  std::vector<std::unique_ptr<RequestParser>> free_;
  std::vector<Request> spare_;
  std::vector<Headers> spare_headers_;
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
  // Called once when a connection has closed; the owner frees it at the end of the loop turn.
  std::function<void(HttpConnection*)> on_closed;
};

}  // namespace unbroken::http
