#include "http/blocking_exchange.h"

#include "net/event_loop.h"

namespace unbroken::http {

BlockingExchange::BlockingExchange(ExchangePtr ex) : ex_(std::move(ex)), ch_(std::make_shared<Channel>()) {
  ex_->token().on_cancel([ch = ch_] { ch->signal(); });
}

BlockingExchange::~BlockingExchange() {
  if (finished_) return;
  if (!started_) {
    respond(500, "handler produced no response\n");
  } else {
    finish();
  }
}

void BlockingExchange::respond(int status, std::string body, std::string content_type) {
  started_ = finished_ = true;
  ex_->loop().post([ex = ex_, status, body = std::move(body), ct = std::move(content_type)]() mutable {
    ex->respond(status, std::move(body), ct);
  });
}

void BlockingExchange::start(int status, std::optional<std::uint64_t> content_length) {
  started_ = true;
  ex_->loop().post([ex = ex_, status, content_length] { ex->start(status, content_length); });
}

bool BlockingExchange::write(std::string data) {
  if (cancelled()) return false;
  std::uint64_t want = ++sent_;
  ex_->loop().post([ex = ex_, ch = ch_, data = std::move(data)] {
    if (!ex->write(data)) return ch->signal();
    ex->on_drain([ch] { ch->signal(); });
  });
  std::unique_lock lock(ch_->mu);
  ch_->cv.wait(lock, [&] { return ch_->done >= want || cancelled(); });
  return !cancelled();
}

void BlockingExchange::finish() {
  finished_ = true;
  ex_->loop().post([ex = ex_] { ex->finish(); });
}

}  // namespace unbroken::http
